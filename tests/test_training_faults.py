"""Faults inside training: each becomes a FAIL (or PRUNED) trial with its reason, and the study goes on."""

from __future__ import annotations

import gc
import time

import pytest
import torch

from lightning_hpo import Categorical, NopPruner, Sampler, Study, TrialState, Tuner
from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.training import release_memory_of_earlier_trials
from tests.lightning_models import LinearRegression, RegressionData

# "none" last: n_trials=1 then runs every fault before the one trial that completes.
FAULTS = ["nan_loss", "inf_loss", "out_of_memory", "hang", "none"]


class InOrder(Sampler):
    """Test double: trial n gets FAULTS[n]."""

    def sample(self, space, trials, *, number, directions):
        return {"fault": FAULTS[number]}


class Faulty(LinearRegression):
    """Misbehaves as its ``fault`` argument says."""

    def __init__(self, fault: str = "none", **kwargs) -> None:
        super().__init__(**kwargs)
        self.fault = fault

    def training_step(self, batch, batch_idx):
        if self.fault == "out_of_memory":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB (simulated)")
        if self.fault == "hang":
            while True:
                time.sleep(0.1)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        if self.fault in ("nan_loss", "inf_loss"):
            self.log("val_loss", float("nan") if self.fault == "nan_loss" else float("inf"))
            return
        super().validation_step(batch, batch_idx)


@pytest.mark.slow
def test_each_fault_fails_its_trial_with_its_reason_and_the_study_goes_on(tmp_path):
    tuner = Tuner(
        Faulty,
        search_space={"fault": Categorical(FAULTS)},
        datamodule=RegressionData(),
        trainer_kwargs={"max_epochs": 2, "accelerator": "cpu", "devices": 1},
        sampler=InOrder(),
        pruner=NopPruner(),
        root_dir=tmp_path,
        trial_timeout=3.0,
        max_consecutive_failures=None,
        show_progress=False,
    )
    result = tuner.fit(n_trials=1)
    by_fault = {t.params["fault"]: t for t in result.trials}
    assert [t.params["fault"] for t in result.trials] == FAULTS
    assert by_fault["none"].state is TrialState.COMPLETE
    assert by_fault["nan_loss"].state is TrialState.FAIL
    assert "'val_loss' was never finite (values seen: nan)" in by_fault["nan_loss"].error
    assert "'val_loss' was never finite (values seen: inf)" in by_fault["inf_loss"].error
    assert "OutOfMemoryError: CUDA out of memory" in by_fault["out_of_memory"].error
    assert "ran longer than trial_timeout=3 s" in by_fault["hang"].error
    assert by_fault["hang"].duration < 20


def test_trial_timeout_stops_a_plain_objective():
    study = Study("t", search_space={"x": Categorical([1, 2])}, storage=":memory:", seed=0)
    study.optimize(
        lambda p: time.sleep(10 if p["x"] == 1 else 0) or 0.0,
        n_trials=2,
        trial_timeout=0.5,
        max_consecutive_failures=None,
    )
    states = {t.params["x"]: t.state for t in study.trials}
    assert states[2] is TrialState.COMPLETE
    timed_out = [t for t in study.trials if t.params["x"] == 1]
    assert all(t.state is TrialState.FAIL and "TrialTimeoutError" in t.error for t in timed_out)


def test_trial_timeout_must_be_positive():
    study = Study("t", search_space={"x": Categorical([1, 2])}, storage=":memory:")
    with pytest.raises(InvalidArgumentError, match="`trial_timeout` must be a number of seconds > 0"):
        study.optimize(lambda p: 0.0, n_trials=1, trial_timeout=0)


def test_without_a_gpu_the_memory_of_earlier_trials_is_left_to_the_collector():
    collections = []
    gc.disable()  # only a collection that the call starts may be seen
    gc.callbacks.append(collections.append)
    try:
        release_memory_of_earlier_trials()
    finally:
        gc.callbacks.remove(collections.append)
        gc.enable()
    assert not torch.cuda.is_initialized() and collections == []
