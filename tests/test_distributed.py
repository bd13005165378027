"""DDP trials under torchrun on the CPU (gloo): real ranks, real Lightning training, a real SQLite file.

On a machine with 2 GPUs or more, ``LIGHTNING_HPO_TEST_ACCELERATOR=gpu`` runs the torchrun tests on
NCCL instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lightning_hpo import RunOptions, TrialState
from lightning_hpo.distributed import TrialCoordinator, check_trainer_processes
from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.storage import SQLStorage
from tests.processes import communicate_or_fail, kill_tree

REPO = Path(__file__).resolve().parents[1]
#: Seconds a torchrun job of these tests may take (about 40 on a loaded 2-core machine): past it, it is hung.
TORCHRUN_TIMEOUT = 300

# Every rank appends what it built and where training ended to rank<r>.jsonl, so the test can check
# that the ranks trained the same trials in step. The plan maps a trial number to (rank, where): that
# rank raises there, and only that rank; (-1, "sleep"): every rank sleeps in training_step, past the
# trial_timeout. A rank finds the trial it builds in storage, not by counting the models it built: a
# rank whose process group a failing peer broke half-way skips building that trial's model.
TUNE_SCRIPT = textwrap.dedent(
    """
    import faulthandler, json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    # A hung rank tells where it waits: every thread's stack on stderr, shortly before run_torchrun gives up.
    faulthandler.dump_traceback_later(float(os.environ["STACKS_AFTER"]))
    import torch
    from lightning_hpo import Float, GridSampler, Int, Pruner, Tuner
    from lightning_hpo.storage import SQLStorage
    from tests.lightning_models import LinearRegression, RegressionData

    out_dir, url, n_trials, plan = sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
    RANK = int(os.environ["RANK"])


    def trial_being_built():
        # The newest trial in storage: rank 0 creates each trial there before any rank builds its model.
        storage = SQLStorage(url)
        try:
            return max(t.number for t in storage.get_trials(storage.get_study("Recorded").id))
        finally:
            storage.close()


    class PruneOddTrialsAtOnce(Pruner):
        def prune(self, trial, trials, *, directions):
            return trial.number % 2 == 1


    class Recorded(LinearRegression):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.index = trial_being_built()
            self.fail_at = plan.get(str(self.index), [None, None])
            self._maybe_fail("init")

        def _maybe_fail(self, where):
            if self.fail_at == [RANK, where]:
                raise RuntimeError(f"scripted failure of rank {RANK} in {where}")

        def training_step(self, batch, batch_idx):
            if self.global_step == 2:
                self._maybe_fail("training_step")
                if self.fail_at == [-1, "sleep"]:
                    time.sleep(15)
            return super().training_step(batch, batch_idx)

        def on_train_epoch_end(self):
            self._maybe_fail("epoch_end")

        def on_fit_end(self):
            weights = float(sum(p.detach().double().sum() for p in self.parameters()))
            record = {"index": self.index, "params": {"lr": self.hparams.lr, "hidden": self.hparams.hidden},
                      "step": self.global_step, "weights": round(weights, 10), "world": self.trainer.world_size,
                      "dir": os.path.basename(self.trainer.default_root_dir)}
            with open(os.path.join(out_dir, f"rank{RANK}.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\\n")


    if __name__ == "__main__":
        # n_trials 0: a grid of two points, run to its end (fit without n_trials, on every rank).
        sampler = GridSampler({"lr": [0.01, 0.03], "hidden": [8]}, seed=0) if n_trials == 0 else None
        tuner = Tuner(Recorded, sampler=sampler, search_space={"lr": Float(1e-3, 1e-1, log=True), "hidden": Int(4, 16)},
                      datamodule=RegressionData(), storage=url, root_dir=os.path.join(out_dir, "runs"), seed=0,
                      trainer_kwargs={"max_epochs": 2, "strategy": "ddp",
                                      "accelerator": os.environ.get("LIGHTNING_HPO_TEST_ACCELERATOR", "cpu"),
                                      "devices": int(os.environ["LOCAL_WORLD_SIZE"]),
                                      "num_nodes": int(os.environ["WORLD_SIZE"]) // int(os.environ["LOCAL_WORLD_SIZE"])},
                      pruner=PruneOddTrialsAtOnce(), show_progress=False, trial_timeout=10)
        result = tuner.fit(n_trials=n_trials or None)
        with open(os.path.join(out_dir, f"result{RANK}.json"), "w") as f:
            json.dump({"numbers": [t.number for t in result.trials], "best": result.best_params,
                       "has_study": result.study is not None, "group_left": torch.distributed.is_initialized()}, f)
    """
)


def run_torchrun(
    tmp_path: Path, *, n_trials: int, fail_plan: dict[int, tuple[int, str]] | None = None, nodes: int = 1
) -> float:
    """Run the script on 2 CPU ranks, as 1 node x 2 or 2 "nodes" x 1 (two torchrun agents, c10d rendezvous).

    Returns the wall time. Fails the test on a non-zero exit, or a hang (``TORCHRUN_TIMEOUT``: the ranks'
    stacks then end the failure's message).
    """
    script = tmp_path / "tune.py"
    script.write_text(TUNE_SCRIPT)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    plan = json.dumps({str(k): list(v) for k, v in (fail_plan or {}).items()})
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    arguments = [str(script), str(REPO), str(tmp_path), url, str(n_trials), plan]
    if nodes == 1:
        launches = [[torchrun, "--standalone", "--nproc_per_node=2", *arguments]]
    else:
        endpoint = f"127.0.0.1:{_free_port()}"
        launches = [
            [
                torchrun,
                f"--nnodes={nodes}",
                "--nproc_per_node=1",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint={endpoint}",
                "--rdzv-id=test",
                *arguments,
            ]
            for _ in range(nodes)
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STACKS_AFTER": str(TORCHRUN_TIMEOUT - 20)}
    started = time.monotonic()
    agents = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in launches]
    try:
        outputs = [communicate_or_fail(agent, TORCHRUN_TIMEOUT + started - time.monotonic()) for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:  # the other agent of one that failed
                kill_tree(agent)
    for agent, (out, err) in zip(agents, outputs):
        assert agent.returncode == 0, (out[-3000:], err[-6000:])
    return time.monotonic() - started


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stored_trials(tmp_path: Path):
    storage = SQLStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    return storage.get_trials(storage.get_study("Recorded").id)


def rank_records(tmp_path: Path, rank: int) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / f"rank{rank}.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_rank_that_raises_fails_the_trial_on_every_rank_then_each_trial_is_one_ddp_training_over_both(tmp_path):
    # One torchrun for both stories (each start of the ranks costs seconds): four trials fail first,
    # then three run as they should.
    plan = {
        0: (1, "training_step"),  # rank 0 is waiting in the gradient all-reduce meanwhile
        1: (1, "init"),  # rank 0 goes on into DDP's first broadcast
        2: (0, "epoch_end"),  # the leader itself; rank 1 waits in the validation's reduce
        3: (-1, "sleep"),  # past trial_timeout, which rank 0 keeps
    }
    seconds = run_torchrun(tmp_path, n_trials=3, fail_plan=plan)
    trials = stored_trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.FAIL] * 4 + [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.COMPLETE,
    ]
    assert (
        trials[0].error.startswith("Rank 1 raised:\nTraceback")
        and "scripted failure of rank 1 in training_step" in trials[0].error
    )
    assert "scripted failure of rank 1 in init" in trials[1].error
    assert trials[2].error.startswith("Traceback") and "scripted failure of rank 0 in epoch_end" in trials[2].error
    assert "TrialTimeoutError: The trial ran longer than trial_timeout=10 s" in trials[3].error
    print(f"7 trials, 4 failed on one rank: {seconds:.1f} s")  # bounded by run_torchrun's timeout

    # Each trial that ran: one DDP training over both ranks, one trial record, all created by rank 0.
    assert len({t.worker for t in trials}) == 1
    zero, one = rank_records(tmp_path, 0), rank_records(tmp_path, 1)
    assert zero == one  # same params, same steps, same weights after every trial
    assert [r["index"] for r in zero] == [4, 5, 6]  # the failed trials' models never ended a fit
    assert [r["dir"] for r in zero] == ["trial_4", "trial_5", "trial_6"] and {r["world"] for r in zero} == {2}
    for record, trial in zip(zero, trials[4:]):
        assert record["params"] == pytest.approx(dict(trial.params))
    # 128 samples, 2 ranks, batch 16: 4 steps an epoch. The pruned trial stopped at its first report.
    assert [r["step"] for r in zero] == [8, 4, 8]
    assert trials[5].intermediate_values.keys() == {4} and trials[5].attrs["pruned_step"] == 4
    assert list(trials[4].intermediate_values) == [4, 8]

    results = [json.loads((tmp_path / f"result{rank}.json").read_text()) for rank in (0, 1)]
    assert results[0]["numbers"] == results[1]["numbers"] == list(range(7))
    assert results[0]["best"] == results[1]["best"]
    assert [r["has_study"] for r in results] == [True, False]  # only rank 0 opened storage
    assert not any(r["group_left"] for r in results)  # the process group the Tuner created is gone


@pytest.mark.slow
def test_two_nodes_train_each_trial_together_to_the_end_of_a_grid(tmp_path):
    run_torchrun(tmp_path, n_trials=0, nodes=2)  # a two-point grid, fit() without n_trials on both ranks
    trials = stored_trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert sorted(t.params["lr"] for t in trials) == [0.01, 0.03]
    assert rank_records(tmp_path, 0) == rank_records(tmp_path, 1)
    assert {r["world"] for r in rank_records(tmp_path, 0)} == {2}


def test_outside_torchrun_the_coordinator_just_runs_the_loop(tmp_path):
    from lightning_hpo import Float, Study

    study = Study("plain", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
    trained = []
    with TrialCoordinator() as coordinator:
        assert coordinator.is_leader and not coordinator.distributed
        coordinator.run_trials(
            study,
            train=lambda trial: trained.append(trial.number) or trial.params["x"],
            record=lambda trial, x: study.tell(trial, x),
            options=RunOptions(n_trials=3),
        )
        assert coordinator.share(lambda: "shared") == "shared"
    assert trained == [0, 1, 2] and [t.value for t in study.trials] == [t.params["x"] for t in study.trials]


def test_a_multi_process_trainer_outside_torchrun_is_refused():
    import lightning.pytorch as pl

    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    with pytest.raises(InvalidArgumentError, match=r"runs 2 processes .* `torchrun --nproc_per_node=2 script.py`"):
        check_trainer_processes(trainer)
    check_trainer_processes(pl.Trainer(accelerator="cpu", devices=1, logger=False))


def test_the_training_group_is_aborted_kept_until_reset_and_created_again(monkeypatch):
    """One process, the real backends: gloo on the CPU, and NCCL for CUDA tensors where there is a GPU."""
    import torch
    import torch.distributed as dist

    from lightning_hpo._torchrun_plumbing import TrainingGroup

    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    store = dist.TCPStore("127.0.0.1", 0, 1, True)
    group = TrainingGroup(store, "test/", rank=0, size=1)
    try:
        for _ in range(2):  # the second round runs in a group created after a reset
            group.ensure()
            total = torch.ones(1, device=device)
            dist.all_reduce(total)
            assert total.item() == 1.0
            group.abort()
            assert dist.is_initialized()  # kept until the ranks agree, so nothing creates a group of its own
            group.reset()
            assert not dist.is_initialized()
        group.ensure()
    finally:
        group.close()
    assert not dist.is_initialized()


def test_after_a_group_that_failed_while_being_created_the_next_is_named_as_on_the_other_ranks(monkeypatch):
    """A rank whose group creation failed (a peer that failed at once shut the connections down half-way)
    creates its next group under the same store keys as the ranks that created and dropped theirs."""
    from datetime import timedelta

    import torch.distributed as dist

    from lightning_hpo import _torchrun_plumbing
    from lightning_hpo._torchrun_plumbing import TrainingGroup

    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    monkeypatch.setattr(_torchrun_plumbing, "PROCESS_GROUP_TIMEOUT", timedelta(seconds=1))
    store = dist.TCPStore("127.0.0.1", 0, 1, True)
    failed = TrainingGroup(store, "failed/", rank=0, size=2)
    with pytest.raises(Exception, match="(?i)timeout|timed out"):
        failed.ensure()  # rank 1 never comes
    assert not dist.is_initialized()
    failed.reset()
    group = TrainingGroup(store, "test/", rank=0, size=1)
    try:
        group.ensure()
        assert dist.group.WORLD.group_name == "0"  # the name a group created first, or after a reset, has
    finally:
        group.close()
