"""Cross-validated trials that survive preemption: an interrupted trial resumes in the fold it was in.

The folds it finished are kept (values, checkpoints, reports) and the fold under way resumes from its
own resumable checkpoint, so the study ends as an uninterrupted one would. One test preempts a Tuner
in this process with a SIGTERM it sends itself; the other SIGKILLs a real tuning process
(tests/cv_resume_script.py) and reads its ledger to see which process trained which fold.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from lightning_hpo import Float, KFoldDataModule, NopPruner, TrialState, Tuner
from lightning_hpo._evaluations import RECORD_FILE
from lightning_hpo.trial import EVALUATION_VALUES, RESUMED_AT_STEP, RETRY_OF
from tests.lightning_models import LinearRegression, regression_data

REPO = Path(__file__).resolve().parents[1]
#: Folds, epochs, and training batches per epoch (2/3 of 96 samples, by 16), as in cv_resume_script.py.
CV, MAX_EPOCHS, BATCHES = 3, 2, 4
STEPS_PER_FOLD = MAX_EPOCHS * BATCHES


class InterruptedInFoldOne(LinearRegression):
    """Stops at once (as a second Ctrl-C does) at the first batch of fold 1's second epoch, once per test:
    the trial resumes from the checkpoint of fold 1's first validation."""

    interruptions_left = 0

    def training_step(self, batch, batch_idx):
        fold = Path(self.trainer.default_root_dir).name
        if fold == "fold_1" and self.global_step == BATCHES and InterruptedInFoldOne.interruptions_left:
            InterruptedInFoldOne.interruptions_left -= 1
            raise KeyboardInterrupt
        return super().training_step(batch, batch_idx)


def _tuner(root: Path, keep: str | int = "best") -> Tuner:
    return Tuner(
        InterruptedInFoldOne,
        search_space={"lr": Float(1e-2, 1e-1, log=True)},
        datamodule=KFoldDataModule(regression_data(96), batch_size=16),
        cv=CV,
        trainer_kwargs={"max_epochs": MAX_EPOCHS, "accelerator": "cpu", "devices": 1, "logger": False},
        pruner=NopPruner(),
        storage=f"sqlite:///{root / 'studies.db'}",
        root_dir=root / "runs",
        seed=0,
        show_progress=False,
        keep_checkpoints=keep,
    )


def test_a_cv_trial_interrupted_in_fold_one_resumes_there_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    expected = _tuner(tmp_path / "uninterrupted").fit(n_trials=1).trials[0]
    monkeypatch.setattr(InterruptedInFoldOne, "interruptions_left", 1)
    with pytest.raises(KeyboardInterrupt):
        _tuner(tmp_path).fit(n_trials=1)
    trial_dir = tmp_path / "runs" / "InterruptedInFoldOne" / "trial_0"
    assert (trial_dir / RECORD_FILE).exists()
    interrupted, resumed = _tuner(tmp_path).fit(n_trials=1).trials
    assert interrupted.state is TrialState.FAIL and resumed.state is TrialState.COMPLETE
    assert resumed.attrs[RETRY_OF] == 0 and resumed.params == interrupted.params == expected.params
    # Fold 0 kept; fold 1 resumed from the checkpoint of its first validation, at trial step 8 + 4.
    assert resumed.attrs[RESUMED_AT_STEP] == STEPS_PER_FOLD + BATCHES
    assert resumed.attrs[EVALUATION_VALUES] == expected.attrs[EVALUATION_VALUES]
    assert resumed.value == expected.value == statistics.fmean(expected.attrs[EVALUATION_VALUES])
    assert resumed.intermediate_values == expected.intermediate_values
    # keep_checkpoints="best": the best fold's best checkpoint, and nothing to resume from.
    assert sorted(trial_dir.rglob("*.ckpt")) == [Path(resumed.checkpoint_path)]
    assert not (trial_dir / RECORD_FILE).exists()
