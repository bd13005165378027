"""Outcome constraints: Study(constraints=...), tell(metrics=...), feasibility of best trials, the
constrained GP, and the Tuner's logged and built-in metrics."""

from __future__ import annotations

import math

import pytest

from lightning_hpo import Float, GPSampler, Int, NopPruner, SobolSampler, Study, TrialState, Tuner
from lightning_hpo.exceptions import InvalidArgumentError, MetricNotFoundError, StudyMismatchError
from lightning_hpo.plots import plot_optimization_history
from lightning_hpo.storage import open_storage
from lightning_hpo.trial import CONSTRAINT_VIOLATIONS
from tests.lightning_models import LinearRegression, RegressionData

SPACE = {"x": Float(0.0, 1.0)}


def _study(name: str = "c", storage=":memory:", **kwargs) -> Study:
    kwargs.setdefault("sampler", SobolSampler(seed=0))
    return Study(name, search_space=SPACE, storage=storage, **kwargs)


@pytest.mark.parametrize(
    "constraints,message",
    [
        ({"m": ("<", 1.0)}, r"operator '<'; the operator must be '<=' or '>='"),
        ({"m": ("<=", "big")}, r"'m' needs a number as its bound, but got 'big'"),
        ({"m": ("<=", float("nan"))}, r"'m' needs a finite bound, but got nan"),
        ({"m": "<= 1"}, r"must be a pair \(operator, bound\)"),
        ({"": ("<=", 1.0)}, r"metric name must be a non-empty string"),
        ([("m", "<=", 1.0)], r"`constraints` must map metric names"),
    ],
)
def test_bad_constraints_are_refused_before_anything_is_stored(tmp_path, constraints, message):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    with pytest.raises((ValueError, TypeError), match=message):
        _study(storage=url, constraints=constraints)
    assert open_storage(url).list_studies() == []


def test_best_trial_is_the_best_feasible_one_and_infeasible_ones_say_so():
    study = _study(constraints={"size": ("<=", 0.5)})
    # The objective x is smallest where the size 1 - x breaks its bound.
    study.optimize(lambda p: (p["x"], {"size": 1.0 - p["x"], "other": 3}), n_trials=8)
    feasible = [t for t in study.trials if t.feasible]
    assert 0 < len(feasible) < len(study.trials)
    assert study.best_trial == min(feasible, key=lambda t: t.value)
    assert study.best_trials == [study.best_trial]
    for trial in study.trials:
        assert trial.metrics == {"size": 1.0 - trial.params["x"], "other": 3.0}
        assert trial.attrs[CONSTRAINT_VIOLATIONS] == {"size": pytest.approx(0.5 - trial.params["x"])}
        assert trial.feasible is (trial.params["x"] >= 0.5)
    legend = [text.get_text() for text in plot_optimization_history(study).legends[0].get_texts()]
    assert f"infeasible ({len(study.trials) - len(feasible)})" in legend and f"complete ({len(feasible)})" in legend


@pytest.mark.slow
def test_greater_or_equal_and_several_objectives_with_the_gp():
    study = Study(
        "mo",
        search_space=SPACE,
        mode=["min", "min"],
        storage=":memory:",
        sampler=GPSampler(seed=0, n_startup_trials=4),  # qLogNEHVI on the feasible front, weighted
        constraints={"accuracy": (">=", 0.3)},
    )
    study.optimize(lambda p: ((p["x"], 1 - p["x"]), {"accuracy": p["x"]}), n_trials=7)
    assert study.best_trials and all(t.metrics["accuracy"] >= 0.3 for t in study.best_trials)
    assert any(not t.feasible for t in study.trials)


def test_a_missing_constrained_metric_is_an_error_that_lists_the_given_ones():
    study = _study(constraints={"n_params": ("<=", 10)})
    trial = study.ask()
    with pytest.raises(MetricNotFoundError, match=r"constrains 'n_params'.*metrics given: 'params', 'size'"):
        study.tell(trial, 1.0, metrics={"size": 1, "params": 2})
    assert study.get_trial(trial.number).state is TrialState.RUNNING  # nothing stored half-done
    study.tell(trial, 1.0, metrics={"n_params": 3})
    with pytest.raises(MetricNotFoundError, match=r"metrics given: none"):
        study.optimize(lambda p: p["x"], n_trials=2)
    assert study.trials[-1].fail_kind == "infrastructure"


def test_a_nan_constrained_metric_fails_the_trial_as_nan():
    study = _study(constraints={"m": ("<=", 1.0)})
    failed = study.tell(study.ask(), 0.1, metrics={"m": float("nan")})
    assert (failed.state, failed.fail_kind) == (TrialState.FAIL, "nan")
    assert math.isnan(float(failed.attrs["metrics"]["m"]))
    with pytest.raises(InvalidArgumentError, match="no COMPLETE trial that satisfies its constraints"):
        _ = study.best_trial


def test_constraints_are_stored_with_the_study(shared_storage_url):
    url = shared_storage_url
    _study(storage=url, constraints={"m": ("<=", 1.0)}).optimize(lambda p: (p["x"], {"m": 0.5}), n_trials=2)
    reopened = Study("c", storage=url)
    assert reopened.constraints == {"m": ("<=", 1.0)}
    assert _study(storage=url).constraints == {"m": ("<=", 1.0)}  # None: the stored ones
    with pytest.raises(StudyMismatchError, match=r"created with constraints \{m <= 1\}, but got \{m <= 2\}"):
        _study(storage=url, constraints={"m": ("<=", 2.0)})


@pytest.mark.slow
def test_constrained_gp_finds_the_constrained_optimum():
    """min x + y subject to x y >= 1/8: the optimum is x = y = 1/sqrt(8), value 0.7071."""
    study = Study(
        "gp",
        search_space={"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)},
        storage=":memory:",
        sampler=GPSampler(seed=0, n_startup_trials=5),
        constraints={"product": (">=", 0.125)},
    )
    study.optimize(lambda p: (p["x"] + p["y"], {"product": p["x"] * p["y"]}), n_trials=14)
    assert study.best_trial.feasible
    assert study.best_trial.value < 0.75


class Wide(LinearRegression):
    """Logs the mean absolute weight of its first layer: a metric to constrain."""

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        self.log("weight_scale", self.net[0].weight.abs().mean())


@pytest.mark.slow
def test_tuner_constrains_n_params_and_a_logged_metric(tmp_path):
    tuner = Tuner(
        Wide,
        search_space={"lr": Float(1e-3, 1e-1, log=True), "hidden": Int(2, 64, log=True)},
        datamodule=RegressionData(),
        trainer_kwargs={"max_epochs": 2, "accelerator": "cpu", "devices": 1, "limit_train_batches": 2},
        sampler=SobolSampler(seed=0),
        pruner=NopPruner(),
        root_dir=tmp_path,
        show_progress=False,
        constraints={"n_params": ("<=", 100), "weight_scale": ("<=", 10.0)},
    )
    result = tuner.fit(n_trials=3)
    stopped = [t for t in result.trials if t.state is TrialState.FAIL]
    done = [t for t in result.trials if t.state is TrialState.COMPLETE]
    assert stopped and done
    for trial in stopped:  # hidden * 6 + 1 parameters: too many, stopped before training
        assert trial.fail_kind == "infeasible" and trial.metrics["n_params"] == 6 * trial.params["hidden"] + 1 > 100
        assert not trial.intermediate_values
    for trial in done:
        assert set(trial.metrics) >= {"n_params", "weight_scale", "peak_memory_mb", "time_per_epoch_s", "val_loss"}
        assert trial.metrics["val_loss"] == trial.value and trial.feasible
    assert result.best_trial in done

    missing = Tuner(
        Wide,
        search_space={"lr": Float(1e-3, 1e-1, log=True)},
        datamodule=RegressionData(),
        trainer_kwargs={"max_epochs": 1, "accelerator": "cpu", "devices": 1, "limit_train_batches": 1},
        root_dir=tmp_path,
        study_name="missing",
        show_progress=False,
        constraints={"latency_ms": ("<=", 20.0)},
    )
    with pytest.raises(MetricNotFoundError, match=r"'latency_ms'.*'n_params'.*'val_loss', 'weight_scale'"):
        missing.fit(n_trials=1)
