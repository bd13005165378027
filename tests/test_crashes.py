"""SIGKILL at random moments of a study, many times, with real processes: nothing completed is lost."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import TrialState

WORKER = textwrap.dedent(
    """
    import random, sys, time
    from lightning_hpo import Float, Int, NopPruner, RandomSampler, Study
    study = Study("crashy", search_space={"x": Float(0.0, 1.0), "n": Int(1, 5)}, storage=sys.argv[1],
                  sampler=RandomSampler(seed=0), pruner=NopPruner())
    def objective(params):
        time.sleep(random.uniform(0.1, 0.3))
        return params["x"] * params["n"]
    print("ready", flush=True)
    study.optimize(objective, n_trials=int(sys.argv[2]))
    """
)
# About 30 trials finish during the kills (20 x 0.3 s on average at 0.2 s a trial): fewer than N_TRIALS.
N_TRIALS = 60
KILLS = 20


def _complete(storage: SQLStorage, study_id: int) -> dict[int, tuple[float, ...]]:
    return {t.number: t.values for t in storage.get_trials(study_id) if t.state is TrialState.COMPLETE}


@pytest.mark.slow
def test_twenty_sigkills_then_a_rerun_reach_exactly_n_trials_with_nothing_lost(tmp_path):
    rng = random.Random(1234)
    url = f"sqlite:///{tmp_path / 'crashy.db'}"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    storage = SQLStorage(url)
    seen: dict[int, tuple[float, ...]] = {}
    for _ in range(KILLS):
        worker = subprocess.Popen([sys.executable, str(script), url, str(N_TRIALS)], stdout=subprocess.PIPE, text=True)
        assert worker.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.6))  # kill anywhere: sampling, running, writing
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        study_id = storage.get_study("crashy").id
        complete = _complete(storage, study_id)
        assert all(complete.get(n) == v for n, v in seen.items())  # every completed trial survived
        seen = complete

    assert len(seen) < N_TRIALS, "the kills came too late to test anything"
    done = subprocess.run(
        [sys.executable, str(script), url, str(N_TRIALS)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    trials = storage.get_trials(study_id)
    assert [t.number for t in trials] == list(range(len(trials)))  # unique, no gaps
    assert sum(t.state is TrialState.COMPLETE for t in trials) == N_TRIALS
    assert all(_complete(storage, study_id).get(n) == v for n, v in seen.items())
    assert not [t for t in trials if t.state is TrialState.RUNNING]
    failed = [t for t in trials if t.state is TrialState.FAIL]
    assert all(t.error.startswith("Stale: its worker process") for t in failed)
