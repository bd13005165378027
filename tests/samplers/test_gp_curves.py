"""GPSampler (learn_from_curves=True, the default): pruned trials enter the GP at their curves' predicted ends,
with the prediction's variance as known noise. A real Study on SQLite, a tiny objective that
reports learning curves, and the GP's training data read where the sampler fits it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from lightning_hpo import Float, GPSampler, Study
from lightning_hpo.exceptions import ArgumentTypeError
from lightning_hpo.pruners._curve_model import forecast
from lightning_hpo.samplers.gp import curve_informed
from lightning_hpo.trial import Trial, TrialState
from tests.samplers.test_gp import _capped_optimizers  # noqa: F401 (autouse: BoTorch's optimizers capped, as there)

FULL = 8


class RecordingGPSampler(GPSampler):
    """The real sampler, keeping the outcomes and known noise it fits its GP to."""

    def _hyperparameters(self, space: Any, X: torch.Tensor, Y: torch.Tensor, gp_space: Any, **kwargs: Any) -> Any:
        self.fitted_to = (Y.clone(), None if kwargs.get("Yvar") is None else kwargs["Yvar"].clone())
        return super()._hyperparameters(space, X, Y, gp_space, **kwargs)


def learning_curve(x: float, sign: float) -> list[float]:
    """Accuracy-like curve (``sign`` -1: its loss mirror) that ends highest near x = 0.6 and rises
    slower the larger x is."""
    top, pace = 0.9 - (x - 0.6) ** 2, 1.0 + 3.0 * x
    return [sign * top * (1 - math.exp(-step / pace)) for step in range(1, FULL + 1)]


def study_with_pruned_trials(storage: str, mode: str, sampler: GPSampler) -> Study:
    """Four full runs, then trials stopped at steps 1, 2 and 6 (by hand: the pruner is not under test)."""
    study = Study("curves", search_space={"x": Float(0.0, 1.0)}, mode=mode, storage=storage, sampler=sampler)
    sign = 1.0 if mode == "max" else -1.0
    for x, stop in [(0.1, None), (0.3, None), (0.9, None), (0.5, None), (0.45, 1), (0.7, 2), (0.65, 6)]:
        trial = study.ask({"x": x})
        for step, value in enumerate(learning_curve(x, sign)[:stop], start=1):
            study.report(trial, step, value)
        if stop:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, learning_curve(x, sign)[-1])
    return study


@pytest.mark.parametrize("mode", ["max", "min"])
def test_pruned_trials_enter_the_gp_at_their_predicted_end_with_its_variance(tmp_path: Path, mode: str) -> None:
    sampler = RecordingGPSampler(seed=0, n_startup_trials=3, device="cpu")  # learn_from_curves by default
    study = study_with_pruned_trials(f"sqlite:///{tmp_path / 'curves.db'}", mode, sampler)
    assert 0.0 <= study.ask().params["x"] <= 1.0
    Y, Yvar = sampler.fitted_to
    trials = sorted(study.trials, key=lambda t: t.number)[:-1]  # the one just asked is RUNNING
    sign = 1.0 if mode == "max" else -1.0  # the GP maximizes
    assert Y[:5, 0].tolist() == pytest.approx([sign * t.value for t in trials[:5]])  # full runs; stopped at step 1
    assert Yvar[:5, 0].tolist() == [0.0] * 5  # (a single report: no pace to extrapolate, its stored value)
    for trial in trials[5:]:
        prediction = forecast(trial, trials, trial.last_step, FULL, minimize=mode == "min")
        mean, variance = prediction.mean_and_variance()
        mean = min(mean, prediction.incumbent)
        assert Y[trial.number, 0].item() == pytest.approx(mean)
        assert Yvar[trial.number, 0].item() == pytest.approx(variance)
        assert mean > sign * trial.value  # its curve was still climbing
    assert Yvar[5, 0] > 10 * Yvar[6, 0] > 0  # stopped at a quarter of its run: far less certain than at three quarters


@pytest.mark.parametrize("value_running", [False, True])
def test_running_trials_are_pending_unless_valued_at_their_predicted_end(tmp_path: Path, value_running: bool) -> None:
    sampler = RecordingGPSampler(seed=0, n_startup_trials=3, device="cpu")
    sampler._value_running = value_running  # the measured variant (benchmarks/multi_fidelity.py)
    study = study_with_pruned_trials(f"sqlite:///{tmp_path / 'curves.db'}", "max", sampler)
    running = study.ask({"x": 0.55})  # another worker's trial, 6 of its 8 steps reported
    for step, value in enumerate(learning_curve(0.55, 1.0)[:6], start=1):
        study.report(running, step, value)
    study.ask()
    Y, Yvar = sampler.fitted_to
    if not value_running:
        assert Y.shape[0] == 7  # the running trial is a pending point, not an observation
        return
    trials = sorted(study.trials, key=lambda t: t.number)
    prediction = forecast(trials[7], trials[:8], 6, FULL, minimize=False)
    mean, variance = prediction.mean_and_variance()
    assert Y.shape[0] == 8
    assert Y[7, 0].item() == pytest.approx(min(mean, prediction.incumbent))
    assert Yvar[7, 0].item() == pytest.approx(variance) and variance > 0


def test_without_learn_from_curves_pruned_trials_keep_their_stored_values(tmp_path: Path) -> None:
    sampler = RecordingGPSampler(seed=0, n_startup_trials=3, device="cpu", learn_from_curves=False)
    study = study_with_pruned_trials(f"sqlite:///{tmp_path / 'curves.db'}", "max", sampler)
    study.ask()
    Y, Yvar = sampler.fitted_to
    assert Y[:, 0].tolist() == [t.value for t in sorted(study.trials, key=lambda t: t.number)[:-1]]
    assert Yvar is None


def test_with_several_objectives_pruned_trials_keep_their_stored_values(tmp_path: Path) -> None:
    # Curves of two objectives have no single final value to predict: the default sampler fits
    # a pruned trial at the values it stopped at, as learn_from_curves=False does.
    suggested = []
    for learn in (True, False):
        sampler = RecordingGPSampler(seed=0, n_startup_trials=3, device="cpu", learn_from_curves=learn)
        study = Study(
            "two",
            search_space={"x": Float(0.0, 1.0)},
            mode=["max", "min"],
            storage=f"sqlite:///{tmp_path / f'two_{learn}.db'}",
            sampler=sampler,
        )
        for x, stop in [(0.1, None), (0.3, None), (0.9, None), (0.5, None), (0.45, 2), (0.7, 6)]:
            trial = study.ask({"x": x})
            curve = learning_curve(x, 1.0)
            for step, value in enumerate(curve[:stop], start=1):
                study.report(trial, step, (value, x))
            if stop:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, (curve[-1], x))
        suggested.append(study.ask().params["x"])
        Y, Yvar = sampler.fitted_to
        trials = sorted(study.trials, key=lambda t: t.number)[:-1]
        assert Y[4:, 0].tolist() == pytest.approx([t.values[0] for t in trials[4:]])  # where they stopped
        assert Yvar is None
    assert suggested[0] == suggested[1]


def test_without_a_full_run_pruned_trials_keep_their_stored_values() -> None:
    stopped = [
        Trial(i, TrialState.PRUNED, {}, values=(0.1 * i,), intermediate_values={1: 0.05 * i, 2: 0.1 * i})
        for i in range(3)
    ]
    assert curve_informed(stopped, stopped, minimize=False) == (stopped, {})


def test_a_trial_pruned_at_step_zero_keeps_its_stored_value() -> None:
    # Lightning numbers its first epoch 0: a trial pruned there has no pace to extrapolate.
    full = [Trial(i, TrialState.COMPLETE, {}, values=(0.5,), intermediate_values={0: 0.2, 3: 0.5}) for i in range(2)]
    first_epoch = [Trial(2, TrialState.PRUNED, {}, values=(0.3,), intermediate_values={0: 0.3})]
    assert curve_informed(first_epoch, [*full, *first_epoch], minimize=False) == (first_epoch, {})


def test_a_pruned_trial_is_valued_at_most_at_the_best_full_run() -> None:
    # A fast riser stopped at step 2 of 32: its own pace, kept up for four doublings, passes 100%.
    full = [
        Trial(i, TrialState.COMPLETE, {}, values=(top,), intermediate_values={1: 0.5, 2: 0.6, 32: top})
        for i, top in enumerate((0.80, 0.85))
    ]
    fast = Trial(2, TrialState.PRUNED, {}, values=(0.6,), intermediate_values={1: 0.2, 2: 0.6})
    assert forecast(fast, [*full, fast], 2, 32, minimize=False).mean_and_variance()[0] > 1.0
    (valued,), variances = curve_informed([fast], [*full, fast], minimize=False)
    assert valued.value == 0.85 and variances[2] > 0.01  # the best full run's value, and far from certain
    mirrored = [
        dataclasses.replace(
            t, values=(-t.value,), intermediate_values={s: -v for s, v in t.intermediate_values.items()}
        )
        for t in (*full, fast)
    ]
    (valued,), _ = curve_informed(mirrored[-1:], mirrored, minimize=True)
    assert valued.value == -0.85  # minimizing: at least the best full run's loss


def test_learn_from_curves_must_be_a_bool() -> None:
    with pytest.raises(ArgumentTypeError, match=r"`learn_from_curves` must be True or False, but got 'yes'"):
        GPSampler(learn_from_curves="yes")  # type: ignore[arg-type]
