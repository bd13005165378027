"""Load: 8 worker processes finish 400 trials of one study together, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import TrialState

WORKER = textwrap.dedent(
    """
    import sys
    from lightning_hpo import Float, Int, NopPruner, RandomSampler, Study
    study = Study("load", search_space={"x": Float(0.0, 1.0), "n": Int(1, 5)}, storage=sys.argv[1],
                  sampler=RandomSampler(seed=int(sys.argv[2])), pruner=NopPruner())
    def objective(params):
        trial = study.get_trials()[-1]  # a read under load too
        return params["x"] * params["n"]
    study.optimize(objective, n_trials=int(sys.argv[3]), max_consecutive_failures=None)
    """
)
WORKERS = 8
N_TRIALS = 400


@pytest.mark.slow
def test_eight_workers_finish_400_trials_with_unique_numbers_and_no_errors(shared_storage_url, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), shared_storage_url, str(seed), str(N_TRIALS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(WORKERS)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
        assert "database is locked" not in err
    storage = SQLStorage(shared_storage_url)
    trials = storage.get_trials(storage.get_study("load").id)
    assert [t.number for t in trials] == list(range(N_TRIALS))  # no duplicate, no missing number
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.worker for t in trials}) == WORKERS  # every worker took part
