"""Resuming trials that ran side by side: ``Tuner(..., n_jobs=2)`` killed with both slots training.

A lost machine takes every worker process with it; the next run must resume each interrupted
trial from its own checkpoint (not one of them, not the other's), and finish the study.
"""

from __future__ import annotations

import pytest

from lightning_hpo._resume import newest_step
from lightning_hpo.trial import RESUME_DIR, RESUMED_AT_STEP, RETRY_OF, TrialState
from tests.processes import wait_for
from tests.test_resume import BATCHES, MAX_EPOCHS, Study, _check_finished_study, _kill_when


@pytest.mark.slow
def test_a_kill_of_two_slots_resumes_both_trials_from_their_own_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("RESUME_SCRIPT_N_JOBS", "2")  # read by the script, in its own process
    # Slower batches: both slots hold a checkpoint for seconds, not the half second a loaded machine's
    # polling of the database can miss.
    monkeypatch.setenv("RESUME_SCRIPT_BATCH_SECONDS", "0.25")
    study = Study(tmp_path, n_trials=2)
    process = study.start()
    # Both slots saved a resumable checkpoint (after their first validation) before the machine is lost.
    wait_for(lambda: _both_slots_saved(study) or process.poll() is not None, timeout=300)
    assert _kill_when(study, process, 0), "the study ended before both slots were training"
    interrupted = {t.params["lr"]: t for t in study.trials() if t.state is not TrialState.COMPLETE}
    assert len(interrupted) == 2

    monkeypatch.setenv("RESUME_SCRIPT_BATCH_SECONDS", "0.05")  # nothing to catch in the rerun: the usual pace
    study.run()
    _check_finished_study(study)
    resumed = [t for t in study.trials() if t.attrs.get(RESUMED_AT_STEP)]
    # Each interrupted configuration was continued once, from the checkpoints of its own trial.
    assert sorted(t.params["lr"] for t in resumed) == sorted(interrupted)
    for trial in resumed:
        earlier = interrupted[trial.params["lr"]]
        assert trial.attrs[RETRY_OF] == earlier.number
        assert trial.attrs[RESUME_DIR] == earlier.attrs[RESUME_DIR]
        assert trial.attrs[RESUMED_AT_STEP] >= BATCHES
    # Together they redid at most an epoch each: far less than two restarts from zero.
    assert sum(study.batches().values()) <= study.n_trials * MAX_EPOCHS * BATCHES + 2 * BATCHES


def _both_slots_saved(study: Study) -> bool:
    # The report comes before the checkpoint at a validation: a kill between them is resumed from step 0.
    running = [t for t in study.trials() if t.state is TrialState.RUNNING]
    return len(running) == 2 and all(RESUME_DIR in t.attrs and newest_step(t.attrs[RESUME_DIR]) for t in running)
