"""A study's reads fetch the intermediate values of finished trials once; they stay right across workers."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from lightning_hpo import ASHAPruner, Float, NopPruner, SobolSampler, Study
from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import TrialState

SPACE = {"x": Float(0.0, 1.0)}


def _study(url: str, pruner=None) -> Study:
    return Study("cache", search_space=SPACE, storage=url, sampler=SobolSampler(seed=0), pruner=pruner or NopPruner())


def _run(study: Study, reports: list[float], state: TrialState = TrialState.COMPLETE) -> int:
    trial = study.ask()
    for step, value in enumerate(reports, start=1):
        study.report(trial, step, value)
    study.tell(trial, state=state)
    return trial.number


def _curves(study: Study) -> dict[int, tuple[TrialState, dict[int, float]]]:
    return {t.number: (t.state, dict(t.intermediate_values)) for t in study.trials}


def _fresh_curves(url: str) -> dict[int, tuple[TrialState, dict[int, float]]]:
    """What a storage with nothing cached reads."""
    fresh = SQLStorage(url)
    try:
        study_id = fresh.get_study("cache").id
        return {t.number: (t.state, dict(t.intermediate_values)) for t in fresh.get_trials(study_id)}
    finally:
        fresh.close()


def test_two_workers_see_each_others_trials_finish(shared_storage_url: str):
    first, second = _study(shared_storage_url), _study(shared_storage_url)
    _run(first, [0.9, 0.8])
    assert _curves(second) == _fresh_curves(shared_storage_url)  # second caches trial 0

    running = second.ask()  # trial 1: RUNNING, read (and not cached) by first
    second.report(running, 1, 0.7)
    assert _curves(first)[1] == (TrialState.RUNNING, {1: 0.7})
    second.report(running, 2, 0.6)
    second.tell(running, state=TrialState.PRUNED)
    _run(first, [0.5, 0.4, 0.3])  # trial 2, after the one first read RUNNING

    expected = _fresh_curves(shared_storage_url)
    assert expected[1] == (TrialState.PRUNED, {1: 0.7, 2: 0.6})
    assert _curves(first) == expected
    assert _curves(second) == expected
    assert _curves(first) == expected  # a second read, from the cache, is the same
    assert [t.number for t in first.get_trials([TrialState.COMPLETE])] == [0, 2]
    assert first.get_trials([TrialState.PRUNED])[0].intermediate_values == {1: 0.7, 2: 0.6}


def test_rows_of_finished_trials_are_read_again(shared_storage_url: str):
    """Only intermediate values are cached: paths and attrs set after a trial finished are seen."""
    first, second = _study(shared_storage_url), _study(shared_storage_url)
    number = _run(first, [0.5])
    assert first.trials[number].checkpoint_path is None
    trial_id = second.trials[number].id
    second.storage.update_trial(trial_id, checkpoint_path="best.ckpt", attrs={"retried_by": 3})
    reread = first.trials[number]
    assert (reread.checkpoint_path, reread.attrs["retried_by"]) == ("best.ckpt", 3)
    assert reread.intermediate_values == {1: 0.5}


def test_a_deleted_and_recreated_study_is_read_afresh(tmp_path: Path):
    """SQLite reuses the ids of deleted rows: a cached trial's id may come to name another trial."""
    url = f"sqlite:///{tmp_path / 'reuse.db'}"
    study = _study(url)
    _run(study, [0.1, 0.2])
    assert _curves(study) == {0: (TrialState.COMPLETE, {1: 0.1, 2: 0.2})}
    other = SQLStorage(url)  # another process deletes the study and creates it again
    other.delete_study("cache")
    other.close()
    again = _study(url)
    _run(again, [0.7])
    assert (again._study_id, again.trials[0].id) == (study._study_id, study.trials[0].id)  # the same ids
    assert _curves(study) == {0: (TrialState.COMPLETE, {1: 0.7})}


def test_finished_trials_values_are_not_fetched_again(shared_storage_url: str):
    """Proof by a change no lightning_hpo code makes: a finished trial's stored values, edited behind its back."""
    study = _study(shared_storage_url, pruner=ASHAPruner(min_resource=1, reduction_factor=3))
    for number in range(3):
        _run(study, [1.0 + number, 0.5 + number])
    running = study.ask()
    study.report(running, 1, 0.1)
    assert study.should_prune(running) is False  # caches trials 0 to 2, not the running one
    engine = study.storage._engine_for_use()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE hpo_intermediate_values SET value = value + 100"))
    curves = _curves(study)
    assert [curves[n][1] for n in range(4)] == [{1: 1.0, 2: 0.5}, {1: 2.0, 2: 1.5}, {1: 3.0, 2: 2.5}, {1: 100.1}]
    assert _fresh_curves(shared_storage_url)[0] == (TrialState.COMPLETE, {1: 101.0, 2: 100.5})
