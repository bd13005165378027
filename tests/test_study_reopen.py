"""Reopening a study by name alone: its space and mode come from storage; a new study needs its space."""

from __future__ import annotations

import pytest

from lightning_hpo import Categorical, Float, Int, Study, TrialState
from lightning_hpo.exceptions import StudyMismatchError, StudyNotFoundError

SPACE = {"x": Float(-2.0, 2.0), "n": Int(1, 8, log=True), "kind": Categorical(["a", "b"])}


def objective(params: dict) -> float:
    return (params["x"] - 0.5) ** 2 + params["n"] / 8 + (params["kind"] == "b")


def finished_study(url: str, **kwargs) -> Study:
    study = Study("finished", search_space=SPACE, storage=url, seed=0, **kwargs)
    study.optimize(objective, n_trials=4)
    return study


def test_a_finished_study_reopens_without_its_space_or_mode(shared_storage_url):
    finished = finished_study(shared_storage_url, mode="max")

    reopened = Study("finished", storage=shared_storage_url)

    assert reopened.space == finished.space
    assert reopened.directions == ("max",)
    assert [(t.number, t.params, t.value) for t in reopened.trials] == [
        (t.number, t.params, t.value) for t in finished.trials
    ]
    assert reopened.best_trial.number == finished.best_trial.number
    assert reopened.trials[0].params["kind"] in ("a", "b")  # decoded with the stored space


def test_a_study_with_choices_json_cannot_hold_reopens_without_its_space(shared_storage_url):
    """Tuple choices are stored by repr and come back as strings; the reopened study reads them (it
    refused, comparing the space it had just read to its own record)."""
    space = {"shape": Categorical([(1, 2), (3, 4)]), "x": Float(0.0, 1.0)}
    Study("shapes", search_space=space, storage=shared_storage_url, seed=0).optimize(
        lambda p: p["x"] + p["shape"][0], n_trials=3
    )
    reopened = Study("shapes", storage=shared_storage_url)
    assert reopened.space["shape"].choices == ("(1, 2)", "(3, 4)")
    assert {t.params["shape"] for t in reopened.trials} <= {"(1, 2)", "(3, 4)"}
    with pytest.raises(StudyMismatchError, match="mode 'min'"):
        Study("shapes", storage=shared_storage_url, mode="max")


def test_numpy_choices_are_stored_as_numbers_and_reopen_as_such(shared_storage_url):
    import numpy as np

    space = {"batch": Categorical(np.array([16, 32, 64])), "wd": Categorical(list(np.logspace(-3, -1, 3)))}
    assert space["batch"].choices == (16, 32, 64) and type(space["batch"].choices[0]) is int
    Study("numpy", search_space=space, storage=shared_storage_url, seed=0).optimize(
        lambda p: p["batch"] * p["wd"], n_trials=3
    )
    reopened = Study("numpy", storage=shared_storage_url)
    assert reopened.space == Study("numpy", search_space=space, storage=shared_storage_url).space
    assert all(type(t.params["batch"]) is int and type(t.params["wd"]) is float for t in reopened.trials)


def test_a_reopened_study_resumes_where_it_stopped(shared_storage_url):
    finished_study(shared_storage_url)

    reopened = Study("finished", storage=shared_storage_url, seed=0)
    reopened.optimize(objective, n_trials=6)

    assert [t.number for t in reopened.trials] == [0, 1, 2, 3, 4, 5]
    assert all(t.state is TrialState.COMPLETE for t in reopened.trials)


def test_mode_omitted_takes_the_stored_one_also_with_a_space(shared_storage_url):
    finished_study(shared_storage_url, mode="max")

    assert Study("finished", search_space=SPACE, storage=shared_storage_url).directions == ("max",)


def test_several_objectives_reopen_as_stored(shared_storage_url):
    Study("pareto", search_space=SPACE, mode=["min", "max"], storage=shared_storage_url).optimize(
        lambda p: (p["x"] ** 2, p["n"]), n_trials=3
    )

    reopened = Study("pareto", storage=shared_storage_url)

    assert reopened.directions == ("min", "max")
    assert len(reopened.best_trials) >= 1


def test_a_new_study_without_mode_minimizes(shared_storage_url):
    assert Study("new", search_space=SPACE, storage=shared_storage_url).directions == ("min",)


def test_a_study_that_does_not_exist_needs_its_space(shared_storage_url):
    finished_study(shared_storage_url)

    with pytest.raises(StudyNotFoundError) as info:
        Study("finsihed", storage=shared_storage_url)

    message = str(info.value)
    assert "No study named 'finsihed'" in message
    assert "'finished'" in message  # the studies that do exist
    assert "to create 'finsihed', pass search_space=..." in message


def test_reopening_with_another_mode_is_still_an_error(shared_storage_url):
    finished_study(shared_storage_url, mode="max")

    with pytest.raises(StudyMismatchError, match="created with mode 'max' \\(now 'min'\\)"):
        Study("finished", mode="min", storage=shared_storage_url)


def test_reopening_with_another_space_is_still_an_error(shared_storage_url):
    finished_study(shared_storage_url)

    with pytest.raises(StudyMismatchError, match="a different search space"):
        Study("finished", search_space={**SPACE, "x": Float(-1.0, 1.0)}, storage=shared_storage_url)
