"""``Tuner(n_jobs=k)``: k worker processes on one study, each pinned to its own GPU, or sharing the CPU cores."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import pytest
import torch

from lightning_hpo import Float, Int, NopPruner, TrialState, Tuner
from lightning_hpo.exceptions import (
    ArgumentTypeError,
    DistributedError,
    InvalidArgumentError,
    MetricNotFoundError,
)
from lightning_hpo.workers import run_in_workers, visible_gpus, worker_devices
from tests.lightning_models import LinearRegression, RegressionData
from tests.worker_jobs import fail_in_worker, write_intra_op_threads

SPACE = {"lr": Float(1e-3, 1e-1, log=True), "hidden": Int(4, 16)}


class SlotRecorder(LinearRegression):
    """Writes which process trained it, and the GPUs that process was given, to ``record_dir``.

    A trial then waits until a second worker process has started one too (at most two minutes), so
    the test sees trials run in parallel however slowly the workers start.
    """

    def __init__(self, record_dir: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.record_dir = record_dir

    def on_fit_start(self) -> None:
        record = {"pid": os.getpid(), "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": str(self.device)}
        Path(self.record_dir, f"{os.getpid()}-{self.hparams.lr}.json").write_text(json.dumps(record))
        deadline = time.monotonic() + 120
        while len({p.name.split("-")[0] for p in Path(self.record_dir).iterdir()}) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.mark.slow
def test_workers_on_the_cpu_share_its_cores(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU: both workers run on the CPU
    polls = []
    run_in_workers(functools.partial(write_intra_op_threads, str(tmp_path)), 2, poll=lambda: polls.append(1))
    cores = len(os.sched_getaffinity(0))
    assert sorted(int(p.read_text()) for p in tmp_path.iterdir()) == [max(1, cores // 2)] * 2
    assert polls  # called while the workers ran, and once after


def test_an_error_in_a_job_is_raised_in_the_parent():
    with pytest.raises(DistributedError, match=r"(?s)1 of the 1 worker processes failed.*ValueError: broken job"):
        run_in_workers(fail_in_worker, 1)


def make_tuner(tmp_path: Path, **kwargs) -> Tuner:
    kwargs.setdefault("trainer_kwargs", {"max_epochs": 1, "accelerator": "cpu", "devices": 1})
    return Tuner(
        kwargs.pop("model_cls", LinearRegression),
        search_space=SPACE,
        datamodule=RegressionData(),
        pruner=NopPruner(),
        root_dir=tmp_path / "runs",
        seed=0,
        show_progress=False,
        **kwargs,
    )


def make_recording_tuner(tmp_path: Path, **kwargs) -> tuple[Tuner, Path]:
    """A Tuner of SlotRecorder modules, and the directory they write their records to."""
    records = tmp_path / "records"
    records.mkdir()
    return make_tuner(tmp_path, model_cls=SlotRecorder, model_kwargs={"record_dir": str(records)}, **kwargs), records


@pytest.mark.parametrize(
    "n_jobs, gpus, expected",
    [
        (2, [], [None, None]),
        (2, ["0", "1", "2", "3"], ["0", "1"]),
        (4, ["0", "1"], ["0", "1", "0", "1"]),
        (3, ["GPU-a1", "GPU-b2"], ["GPU-a1", "GPU-b2", "GPU-a1"]),
    ],
)
def test_each_slot_gets_one_gpu_round_robin(n_jobs, gpus, expected):
    assert worker_devices(n_jobs, gpus=gpus) == expected


@pytest.mark.parametrize("listed, expected", [("2,3", ["2", "3"]), ("", []), ("-1", []), ("GPU-x, 1", ["GPU-x", "1"])])
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, listed, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    assert visible_gpus() == expected


@pytest.mark.slow
def test_workers_share_one_study_up_to_n_trials(shared_storage_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7,9")  # no such GPUs: the workers train on the CPU anyway
    # Two workers, one per GPU slot: SlotRecorder makes both train (more workers than GPUs share them
    # round robin: test_each_slot_gets_one_gpu_round_robin). Each worker process starts torch and
    # Lightning, so more workers would mostly add start-up time.
    tuner, records = make_recording_tuner(tmp_path, storage=shared_storage_url, n_jobs=2)
    result = tuner.fit(n_trials=4)

    assert [t.number for t in result.trials] == list(range(4))
    assert all(t.state is TrialState.COMPLETE for t in result.trials)
    workers = {t.worker for t in result.trials}
    assert len(workers) == 2  # trials really ran in parallel processes
    seen = [json.loads(p.read_text()) for p in records.iterdir()]
    assert len(seen) == 4
    assert {r["gpus"] for r in seen} == {"7", "9"}  # every worker pinned to one slot...
    assert all(len({r["gpus"] for r in seen if r["pid"] == pid}) == 1 for pid in {r["pid"] for r in seen})
    assert result.best_value == min(t.value for t in result.trials)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (run by the GPU check)")
def test_gpu_slots_train_each_trial_on_the_gpu_of_its_slot(tmp_path):
    tuner, records = make_recording_tuner(
        tmp_path,
        storage=tmp_path / "studies.db",
        n_jobs=2,
        trainer_kwargs={"max_epochs": 1, "accelerator": "gpu", "devices": 1},
    )
    result = tuner.fit(n_trials=4)
    assert [t.state for t in result.trials] == [TrialState.COMPLETE] * 4
    seen = [json.loads(p.read_text()) for p in records.iterdir()]
    assert {r["gpus"] for r in seen} <= set(worker_devices(2)) and {r["device"] for r in seen} == {"cuda:0"}


@pytest.mark.slow
def test_a_worker_error_is_raised_in_the_parent(tmp_path):
    tuner = make_tuner(tmp_path, monitor="val_accuracy", storage=tmp_path / "studies.db", n_jobs=2)
    with pytest.raises(MetricNotFoundError, match="monitors 'val_accuracy'"):
        tuner.fit(n_trials=4)
    assert {t.state for t in tuner.study.trials} == {TrialState.FAIL}


def test_an_in_memory_storage_is_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"n_jobs=2 runs trials in separate processes.*got 'sqlite://'"):
        make_tuner(tmp_path, storage=":memory:", n_jobs=2)


@pytest.mark.parametrize(
    "n_jobs, error", [(0, InvalidArgumentError), (-1, InvalidArgumentError), (1.5, ArgumentTypeError)]
)
def test_n_jobs_must_be_a_positive_int(tmp_path, n_jobs, error):
    with pytest.raises(error, match="n_jobs"):
        make_tuner(tmp_path, n_jobs=n_jobs)


def test_n_jobs_is_refused_under_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(InvalidArgumentError, match="one of 2 torchrun ranks"):
        make_tuner(tmp_path, n_jobs=2)
