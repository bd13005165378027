"""OptunaSampler: Optuna's samplers drive a Study, with the Optuna sampler's state kept in storage."""

from __future__ import annotations

import logging
import math

import pytest

from lightning_hpo import Categorical, Float, Int, OptunaSampler, Study
from lightning_hpo.exceptions import ArgumentTypeError
from lightning_hpo.samplers.optuna import _distribution, _frozen_trials
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import SAMPLER_STATE, TrialState

optuna = pytest.importorskip("optuna")

SPACE = {
    "x": Float(-3.0, 3.0),
    "lr": Float(1e-4, 1e-1, log=True),
    "units": Int(8, 64, step=8),
    "opt": Categorical(["adam", "sgd", ("nesterov", 0.9)]),
}


def objective(params: dict) -> float:
    return (
        (params["x"] - 1.0) ** 2 + abs(math.log10(params["lr"]) + 2) + params["units"] / 64 + (params["opt"] == "sgd")
    )


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # CMA-ES warns on every categorical it samples at random
    yield
    optuna.logging.set_verbosity(optuna.logging.INFO)


@pytest.mark.parametrize(
    "make",
    [
        lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=5),
        lambda: optuna.samplers.CmaEsSampler(seed=0, n_startup_trials=2),
        lambda: optuna.samplers.NSGAIISampler(seed=0, population_size=4),
        lambda: optuna.samplers.QMCSampler(seed=0),
    ],
    ids=["tpe", "cmaes", "nsga2", "qmc"],
)
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_each_sampler_suggests_what_it_suggests_in_optuna_itself(make, tmp_path):
    """Through storage (SQLite file) and back, the same suggestions as Optuna's own study loop with that sampler."""
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = Study("o", search_space=SPACE, storage=storage, sampler=OptunaSampler(make()))
    study.optimize(objective, n_trials=10)
    trials = study.trials
    assert len(trials) == 10 and all(t.state is TrialState.COMPLETE for t in trials)

    def own_objective(trial):  # suggests in our order (sorted names), which independent draws depend on
        params = {
            "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
            "opt": SPACE["opt"].choices[trial.suggest_categorical("opt", [0, 1, 2])],
            "units": trial.suggest_int("units", 8, 64, step=8),
            "x": trial.suggest_float("x", -3.0, 3.0),
        }
        return objective(params)

    own = optuna.create_study(sampler=make())
    own.optimize(own_objective, n_trials=10)
    for ours, theirs in zip(trials, own.trials):
        assert ours.params["x"] == pytest.approx(theirs.params["x"])
        assert ours.params["units"] == theirs.params["units"]
        assert ours.params["opt"] == SPACE["opt"].choices[theirs.params["opt"]]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_qmc_continues_its_sequence_across_reopened_studies(tmp_path):
    """The QMC sample counter lives in Optuna's study attributes: stored with our trials, it survives a new process."""
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    space = {"x": Float(0.0, 1.0)}

    def run(n: int) -> list[float]:
        sampler = OptunaSampler(optuna.samplers.QMCSampler(seed=0, warn_independent_sampling=False))
        study = Study("qmc", search_space=space, storage=storage, sampler=sampler)
        study.optimize(lambda p: p["x"], n_trials=n)
        return [t.params["x"] for t in study.trials]

    run(3)
    resumed = run(6)
    reference = optuna.create_study(sampler=optuna.samplers.QMCSampler(seed=0, warn_independent_sampling=False))
    reference.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=6)
    assert resumed == pytest.approx([t.params["x"] for t in reference.trials])
    assert any("study" in (t.attrs.get(SAMPLER_STATE) or {}) for t in Study("qmc", storage=storage).trials)


def test_tpe_multi_objective():
    sampler = OptunaSampler(optuna.samplers.TPESampler(seed=0, n_startup_trials=4))
    study = Study("mo", search_space=SPACE, mode=["min", "max"], storage=":memory:", sampler=sampler)
    study.optimize(lambda p: (objective(p), p["units"]), n_trials=10)
    assert study.best_trials and all(t.state is TrialState.COMPLETE for t in study.trials)


def test_pruned_running_and_failed_trials_pass_through_with_their_reports():
    space = SearchSpace({"x": Float(0.0, 1.0), "opt": Categorical(["a", ("b", 1)])})
    study = Study(
        "pass", search_space=space, storage=":memory:", sampler=OptunaSampler(optuna.samplers.RandomSampler(0))
    )
    done = study.ask()
    study.report(done, 1, 0.5)
    study.tell(done, 0.4)
    pruned = study.ask()
    study.report(pruned, 1, 0.9)
    study.tell(pruned, state=TrialState.PRUNED)
    failed = study.ask()
    study.tell(failed, state=TrialState.FAIL, error="x")
    running = study.ask()
    frozen, _ = _frozen_trials(optuna, space, {n: _distribution(d) for n, d in space.items()}, study.trials)
    states = [f.state.name for f in frozen]
    assert states == ["COMPLETE", "PRUNED", "FAIL", "RUNNING"]
    assert frozen[0].values == [0.4] and frozen[1].intermediate_values == {1: 0.9} and frozen[1].values is None
    assert frozen[3].params == space.to_stored(running.params)  # choices by index


def test_a_non_optuna_sampler_is_refused():
    with pytest.raises(ArgumentTypeError, match="must be an Optuna sampler instance"):
        OptunaSampler("tpe")  # type: ignore[arg-type]


def test_no_optuna_log_line_per_suggestion(caplog):
    optuna.logging.set_verbosity(optuna.logging.INFO)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.INFO, logger="optuna"):
            Study(
                "q", search_space=SPACE, storage=":memory:", sampler=OptunaSampler(optuna.samplers.TPESampler(seed=0))
            ).optimize(objective, n_trials=3)
    finally:
        optuna.logging.disable_propagation()
    assert "A new study created" not in caplog.text
