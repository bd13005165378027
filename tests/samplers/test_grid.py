"""GridSampler: every point once, in a seeded order, across workers (storage decides), then the study stops."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lightning_hpo import Categorical, Float, GridSampler, Int, Study
from lightning_hpo.exceptions import GridExhaustedError, InvalidArgumentError
from lightning_hpo.space import SearchSpace
from lightning_hpo.storage.sql import SQLStorage
from lightning_hpo.trial import GRID_POINT, TrialState

SPACE = {"lr": Float(1e-4, 1e-1, log=True), "opt": Categorical(["adam", "sgd"]), "layers": Int(1, 3)}
GRID = {"lr": [1e-3, 1e-2]}  # 2 x 2 x 3 = 12 points


def grid_study(storage: str = ":memory:", seed: int = 0, name: str = "grid") -> Study:
    return Study(name, search_space=SPACE, storage=storage, sampler=GridSampler(GRID, seed=seed))


def point_of(params: dict) -> tuple:
    return tuple(sorted(params.items()))


def test_n_trials_none_runs_every_point_once_then_stops_with_a_message(capsys):
    study = grid_study()
    study.optimize(lambda p: p["lr"] * p["layers"], n_trials=None)
    trials = study.trials
    assert len(trials) == 12 and all(t.state is TrialState.COMPLETE for t in trials)
    assert len({point_of(t.params) for t in trials}) == 12
    assert sorted(t.attrs[GRID_POINT] for t in trials) == list(range(12))
    assert "has run all 12 points of its grid" in capsys.readouterr().err
    with pytest.raises(GridExhaustedError, match="all 12 points") as raised:
        study.ask()
    assert raised.value.running == 0


def test_the_order_is_shuffled_by_the_seed_and_reproducible():
    orders = []
    for seed in (0, 0, 1):
        study = grid_study(seed=seed)
        study.optimize(lambda p: 0.0, n_trials=5)
        orders.append([point_of(t.params) for t in study.trials])
    assert orders[0] == orders[1] != orders[2]
    index_order = [grid_study(seed=0).sampler.point(SearchSpace(SPACE), i) for i in range(12)]
    assert [point_of(p) for p in index_order] != orders[0][:12]  # shuffled, not index order


def test_a_failed_point_runs_again():
    study = grid_study()
    first = study.ask()
    study.tell(first, state=TrialState.FAIL, error="out of memory")
    again = study.ask()
    assert again.attrs[GRID_POINT] == first.attrs[GRID_POINT] and again.params == first.params


def test_points_running_elsewhere_are_not_handed_out_and_exhaustion_says_so():
    study = grid_study()
    running = [study.ask() for _ in range(12)]
    with pytest.raises(GridExhaustedError, match=r"still run, and a failed one frees its point") as raised:
        study.ask()
    assert raised.value.running == 12
    study.tell(running[3], state=TrialState.FAIL, error="x")
    assert study.ask().params == running[3].params


def test_n_trials_smaller_than_the_grid_stops_at_n_trials():
    study = grid_study()
    study.optimize(lambda p: 0.0, n_trials=5)
    assert len(study.trials) == 5


def test_enqueued_configs_run_before_the_grid():
    study = grid_study()
    study.enqueue({"lr": 0.05, "opt": "sgd", "layers": 1})
    study.optimize(lambda p: 0.0, n_trials=None)
    assert study.trials[0].params == {"lr": 0.05, "opt": "sgd", "layers": 1}
    assert len(study.trials) == 13


def test_defaults_are_categorical_choices_and_int_values():
    sampler = GridSampler({"lr": [1e-3]})
    assert sampler.values_of(SearchSpace(SPACE)) == {"layers": (1, 2, 3), "lr": (1e-3,), "opt": ("adam", "sgd")}
    assert sampler.size(SearchSpace(SPACE)) == 6


@pytest.mark.parametrize(
    ("grid", "space", "message"),
    [
        ({}, SPACE, r"parameter 'lr' needs its values in `grid` \(a Float parameter has no finite set of values\)"),
        ({"lr": [1e-3, 0.5]}, SPACE, r"grid\['lr'\] holds \[0.5\], outside the parameter's domain Float"),
        ({"lr": [1e-3], "layers": [4]}, SPACE, r"grid\['layers'\] holds \[4\], outside"),
        ({"lr": [1e-3], "opt": ["rmsprop"]}, SPACE, r"grid\['opt'\] holds \['rmsprop'\]"),
        ({"lr": [1e-3], "momentum": [0.9]}, SPACE, r"grid names \['momentum'\] are not parameters"),
        ({"lr": [1e-3, 1e-3]}, SPACE, r"must not repeat a value"),
        ({}, {"n": Int(0, 5000)}, r"parameter 'n' needs its values in `grid` \(Int\(0, 5000\) has more than 1000"),
    ],
)
def test_a_grid_that_does_not_fit_the_space_is_refused_with_the_parameter_named(grid, space, message):
    study = Study("bad", search_space=space, storage=":memory:", sampler=GridSampler(grid))
    with pytest.raises(InvalidArgumentError, match=message):
        study.ask()


@pytest.mark.parametrize("grid", [[1, 2], {"lr": 0.1}, {"lr": []}, {"lr": "abc"}])
def test_grid_must_map_names_to_non_empty_lists(grid):
    with pytest.raises((InvalidArgumentError, TypeError), match="GridSampler: `?grid"):
        GridSampler(grid)


WORKER = textwrap.dedent(
    """
    import sys, time
    from lightning_hpo import Categorical, Float, GridSampler, Int, Study
    space = {"lr": Float(1e-4, 1e-1, log=True), "opt": Categorical(["adam", "sgd"]), "layers": Int(1, 3)}
    grid = {"lr": [1e-4, 1e-3, 1e-2, 1e-1]}
    study = Study("shared", search_space=space, storage=sys.argv[1], sampler=GridSampler(grid, seed=int(sys.argv[2])))
    study.optimize(lambda p: time.sleep(0.01) or p["lr"], n_trials=None)
    """
)


@pytest.mark.slow
def test_two_processes_share_one_grid_without_duplicates(shared_storage_url, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    # Different seeds too: uniqueness comes from storage, not from the two workers agreeing on an order.
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), shared_storage_url, str(seed)], stderr=subprocess.PIPE, text=True
        )
        for seed in (0, 1)
    ]
    errors = [w.communicate(timeout=240)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errors
    assert all("has run all 24 points of its grid" in e for e in errors)
    storage = SQLStorage(shared_storage_url)
    trials = storage.get_trials(storage.get_study("shared").id)
    assert len(trials) == 24 and all(t.state is TrialState.COMPLETE for t in trials)
    assert sorted(t.attrs[GRID_POINT] for t in trials) == list(range(24))
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 24
    assert len({t.worker for t in trials}) == 2
