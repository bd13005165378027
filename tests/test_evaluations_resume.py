"""Cross-validated trials that survive preemption: an interrupted trial resumes in the fold it was in.

The folds it finished are kept (values, checkpoints, reports) and the fold under way resumes from its
own resumable checkpoint, so the study ends as an uninterrupted one would. One test interrupts a Tuner
in this process (at once, as a second Ctrl-C does); the other SIGKILLs a real tuning process
(tests/cv_resume_script.py) and reads its ledger to see which process trained which fold.
"""

from __future__ import annotations

import collections
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_hpo import TrialState, Tuner
from lightning_hpo._evaluations import RECORD_FILE
from lightning_hpo._resume import newest_step
from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import EVALUATION_VALUES, RESUMED_AT_STEP, RETRY_OF
from tests.cv_resume_script import BATCHES, CV, MAX_EPOCHS, cv_tuner
from tests.lightning_models import LinearRegression
from tests.processes import wait_for

REPO = Path(__file__).resolve().parents[1]
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


def _tuner(root: Path) -> Tuner:
    return cv_tuner(InterruptedInFoldOne, f"sqlite:///{root / 'studies.db'}", root / "runs")


def test_a_cv_trial_interrupted_in_fold_one_resumes_there_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    expected = _tuner(tmp_path / "uninterrupted").fit(n_trials=1).trials[0]
    monkeypatch.setattr(InterruptedInFoldOne, "interruptions_left", 1)
    with pytest.raises(KeyboardInterrupt):
        _tuner(tmp_path).fit(n_trials=1)
    trial_dir = tmp_path / "runs" / "InterruptedInFoldOne" / "trial_0"
    # What the retry counts as progress: fold 0 finished, and fold 1's checkpoint at its step 4.
    assert (trial_dir / RECORD_FILE).exists() and newest_step(trial_dir) == STEPS_PER_FOLD + BATCHES
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


@pytest.mark.slow
def test_a_cv_tuning_process_killed_in_fold_one_is_resumed_there_by_the_next(tmp_path):
    url, root, ledger = f"sqlite:///{tmp_path / 'studies.db'}", tmp_path / "runs", tmp_path / "ledger"
    ledger.touch()
    command = [sys.executable, str(REPO / "tests" / "cv_resume_script.py"), url, str(root), str(ledger)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    killed = start()
    trial_dir = root / "Ledgered" / "trial_0"
    # SIGKILL during fold 1's (slow) second epoch, after its first epoch's checkpoint.
    wait_for(lambda: "fold_1 1" in ledger.read_text() or killed.poll() is not None, timeout=300)
    assert killed.poll() is None and (trial_dir / "fold_1" / "checkpoints" / f"resume-step={BATCHES}.ckpt").exists()
    killed.kill()
    killed.communicate()
    rerun = start()
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and "DONE" in out, err[-3000:]

    batches: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for line in ledger.read_text().splitlines():
        fold, _, pid = line.split()
        batches[fold][int(pid)] += 1
    assert batches["fold_0"] == {killed.pid: STEPS_PER_FOLD}  # kept
    assert batches["fold_1"][rerun.pid] == BATCHES  # resumed: only its second epoch again
    assert batches["fold_2"] == {rerun.pid: STEPS_PER_FOLD}
    storage = SQLStorage(url)
    try:
        interrupted, resumed = storage.get_trials(storage.get_study("Ledgered").id)
    finally:
        storage.close()
    assert interrupted.state is TrialState.FAIL and interrupted.error.startswith("Stale")
    assert resumed.state is TrialState.COMPLETE and resumed.attrs[RETRY_OF] == 0
    assert resumed.attrs[RESUMED_AT_STEP] == STEPS_PER_FOLD + BATCHES
    values = resumed.attrs[EVALUATION_VALUES]
    assert len(values) == CV and resumed.value == pytest.approx(statistics.fmean(values))
    assert sorted(resumed.intermediate_values) == [BATCHES * (e + 1) for e in range(CV * MAX_EPOCHS)]
    assert sorted(trial_dir.rglob("*.ckpt")) == [Path(resumed.checkpoint_path)]  # keep_checkpoints="best"
    assert not (trial_dir / RECORD_FILE).exists()
