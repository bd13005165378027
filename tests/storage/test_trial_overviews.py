"""Storage.get_trial_overviews: what the SQL storage reads agrees with the generic path over get_trials."""

from __future__ import annotations

import functools
import json
import math
from datetime import timedelta

from lightning_hpo import Float, Study, TrialState
from lightning_hpo.storage import SQLStorage, Storage
from lightning_hpo.trial import ENQUEUED, MONITOR, PRUNED_STEP


def _as_data(overviews: list) -> list:
    return [(o.trial, json.loads(o.curve_json)) for o in overviews]


def _fill(url: str, mode: str | list[str] = "min") -> Study:
    study = Study("s", search_space={"x": Float(0.0, 1.0)}, storage=url, mode=mode, seed=0)
    several = isinstance(mode, list)
    for i in range(4):
        trial = study.ask()
        for step in (3, 1, 2):  # out of order: the curve comes back in step order
            value = [math.nan, math.inf][i % 2] if step == 2 and i >= 2 else 1.0 / step + i
            study.report(trial, step, [value, -value] if several else value)
        if i == 1:
            study.tell(trial, state=TrialState.PRUNED)
            study.storage.update_trial(trial.id, attrs={PRUNED_STEP: 3, "config": "a: 1\n" * 50})
        elif i < 3:
            study.tell(trial, [i, -i] if several else float(i))
    study.enqueue({"x": 0.5})
    enqueued = study.ask()
    study.storage.update_trial(enqueued.id, attrs={MONITOR: ["val_loss"] * (2 if several else 1)})
    return study


def test_the_sql_read_agrees_with_get_trials(storage_url: str) -> None:
    study = _fill(storage_url)
    storage, keys = study.storage, [MONITOR, PRUNED_STEP, ENQUEUED, "missing"]
    fast = storage.get_trial_overviews(study._study_id, attr_keys=keys)
    assert _as_data(fast) == _as_data(Storage.get_trial_overviews(storage, study._study_id, attr_keys=keys))
    assert [o.trial.number for o in fast] == [0, 1, 2, 3, 4]
    assert json.loads(fast[3].curve_json) == [[1, 4.0], [2, None], [3, 3.0 + 1 / 3]]  # inf as null
    assert json.loads(fast[2].curve_json)[1] == [2, None]  # nan as null
    assert fast[1].trial.attrs == {PRUNED_STEP: 3}  # only the keys asked for
    assert fast[4].trial.attrs == {ENQUEUED: ["x"], MONITOR: ["val_loss"]}
    assert fast[0].trial.values == (0.0,) and fast[0].trial.datetime_complete is not None


def test_a_multi_objective_curve_holds_the_vectors(storage_url: str) -> None:
    study = _fill(storage_url, mode=["min", "max"])
    fast = study.storage.get_trial_overviews(study._study_id)
    assert _as_data(fast) == _as_data(Storage.get_trial_overviews(study.storage, study._study_id))
    assert json.loads(fast[0].curve_json)[0] == [1, [1.0, -1.0]]
    assert fast[2].trial.values == (2.0, -2.0)


def test_selectors_pick_new_chosen_and_lately_finished_trials(storage_url: str) -> None:
    study = _fill(storage_url)
    storage: SQLStorage = study.storage
    trials = study.trials
    finished = trials[2].datetime_complete
    for read in (storage.get_trial_overviews, lambda *a, **k: Storage.get_trial_overviews(storage, *a, **k)):
        numbers = [o.trial.number for o in read(study._study_id, after_id=trials[3].id, ids=[trials[0].id])]
        assert numbers == [0, 4]
        later = read(study._study_id, finished_since=finished + timedelta(microseconds=1))
        assert [o.trial.number for o in later] == [
            n for n, t in enumerate(trials) if t.datetime_complete and t.datetime_complete > finished
        ]
        assert [o.trial.number for o in read(study._study_id, finished_since=finished)][0] == 2


def test_curves_read_apart_are_the_overviews_curves(storage_url: str) -> None:
    for mode in ("min", ["min", "max"]):
        study = _fill(storage_url, mode=mode)
        storage, study_id = study.storage, study._study_id
        with_curves = {o.trial.id: o.curve_json for o in storage.get_trial_overviews(study_id)}
        assert all(o.curve_json is None for o in storage.get_trial_overviews(study_id, curves=False))
        for read in (storage.get_trial_curves, functools.partial(Storage.get_trial_curves, storage)):
            curves = read(study_id)
            assert {i: json.loads(c) for i, c in curves.items()} == {
                i: json.loads(c) for i, c in with_curves.items() if c != "[]"
            }  # the enqueued trial has no values: left out
            trials = study.trials
            assert set(read(study_id, up_to_id=trials[1].id)) == {trials[0].id, trials[1].id}
            assert set(read(study_id, after_id=trials[2].id, ids=[trials[0].id])) == {trials[0].id, trials[3].id}
        storage.delete_study("s")
