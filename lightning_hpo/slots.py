"""GPU slots on one machine: ``Tuner(..., n_jobs=k)`` runs k trials at once, in k worker processes.

Each worker is started with ``spawn`` (CUDA does not survive a fork) and is just another worker on
the study's storage: it runs the ordinary trial loop, so unique trial numbers, ``n_trials`` and the
reaping of stale trials work exactly as for workers started by hand. Worker ``i`` sees one GPU,
number ``i mod G`` of the G visible ones (``CUDA_VISIBLE_DEVICES``): with k <= G every trial has a
GPU of its own, with k > G small trials share them, and without GPUs the workers use the CPU. A
trial that needs several GPUs is a DDP trial: start it with torchrun (see :mod:`lightning_hpo.distributed`).

As with any ``spawn`` multiprocessing, the script must start the Tuner under
``if __name__ == "__main__":``, and the module class and datamodule must be picklable (defined at
module level).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import pickle
import signal
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lightning_hpo.exceptions import DistributedError, InvalidArgumentError, LightningHPOError, format_exception

if TYPE_CHECKING:
    from lightning_hpo.tuner import Tuner

__all__ = ["slot_devices", "run_in_slots"]

log = logging.getLogger(__name__)

# Seconds between two looks at storage to show the workers' progress.
_PROGRESS_INTERVAL = 1.0
# Seconds the workers get to record their interrupted trials after Ctrl-C, before they are terminated.
_INTERRUPT_GRACE = 30.0


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (indices or UUIDs)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [name.strip() for name in listed.split(",") if name.strip() and name.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def slot_devices(n_jobs: int, gpus: list[str] | None = None) -> list[str | None]:
    """``CUDA_VISIBLE_DEVICES`` of each of ``n_jobs`` workers: GPU ``i mod G``; ``None`` without GPUs.

    Example:
        >>> slot_devices(3, gpus=["0", "1"])
        ['0', '1', '0']
        >>> slot_devices(2, gpus=[])
        [None, None]
    """
    gpus = visible_gpus() if gpus is None else gpus
    return [gpus[i % len(gpus)] if gpus else None for i in range(n_jobs)]


def run_in_slots(tuner: Tuner, *, n_trials: int | None, timeout: float | None) -> None:
    """Run ``tuner.fit(n_trials, timeout)`` in ``tuner.n_jobs`` worker processes and wait for them.

    The workers share the study through its storage; this process shows their progress. An error
    that stopped a worker is raised here once all have stopped (a lightning_hpo error as it was
    raised there, anything else as a :class:`~lightning_hpo.exceptions.DistributedError`).
    """
    import multiprocessing

    assert tuner.study is not None
    worker = copy.copy(tuner)
    worker.n_jobs = 1
    worker.show_progress = False
    try:
        payload = pickle.dumps(worker)
    except Exception as error:  # noqa: BLE001 - pickling fails in many ways; all mean the same here
        raise InvalidArgumentError(
            f"n_jobs={tuner.n_jobs} sends the Tuner to worker processes, but it cannot be pickled: {error}. Define "
            "the LightningModule, the datamodule (or datamodule function) and callbacks at module level."
        ) from None

    context = multiprocessing.get_context("spawn")
    errors = context.SimpleQueue()
    processes = []
    for slot, devices in enumerate(slot_devices(tuner.n_jobs)):
        process = context.Process(
            target=_work, args=(payload, n_trials, timeout, slot, errors), name=f"lightning_hpo-slot-{slot}"
        )
        with _environment(CUDA_VISIBLE_DEVICES=devices):  # read once, when the worker starts
            process.start()
        processes.append(process)

    failures: list[tuple[int, BaseException | None, str]] = []
    try:
        _wait(tuner, processes, n_trials, errors, failures)
    except KeyboardInterrupt:
        _interrupt(processes)
        raise
    for process in processes:
        if process.exitcode != 0 and all(slot != _slot_of(process) for slot, *_ in failures):
            failures.append((_slot_of(process), None, f"it exited with code {process.exitcode}"))
    if failures:
        slot, error, text = min(failures, key=lambda failure: failure[0])
        if isinstance(error, LightningHPOError):
            raise error
        raise DistributedError(
            f"{len(failures)} of the {tuner.n_jobs} worker processes failed; worker {slot} failed with:\n{text}"
        )


def _work(payload: bytes, n_trials: int | None, timeout: float | None, slot: int, errors: Any) -> None:
    """A worker process: one ordinary trial loop on the shared study."""
    try:
        tuner = pickle.loads(payload)
        tuner.fit(n_trials=n_trials, timeout=timeout)
    except KeyboardInterrupt:
        sys.exit(130)  # the running trial is already marked as interrupted
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
        sendable = error if _picklable(error) else None
        errors.put((slot, sendable, format_exception(error)))
        sys.exit(1)


def _wait(tuner: Tuner, processes: list[Any], n_trials: int | None, errors: Any, failures: list[Any]) -> None:
    """Until every worker has stopped: show the study's progress and collect the workers' errors."""
    from lightning_hpo.progress import StudyProgress

    study = tuner.study
    assert study is not None
    shown = {t.number for t in study.trials if t.state.is_finished}
    with StudyProgress(study, n_trials=n_trials, enabled=tuner.show_progress, label=tuner.monitor) as progress:
        while True:
            alive = any(p.is_alive() for p in processes)
            while not errors.empty():  # drained as they come, so no worker blocks on a full pipe
                failures.append(errors.get())
            if tuner.show_progress:
                for trial in study.trials:
                    if trial.state.is_finished and trial.number not in shown:
                        shown.add(trial.number)
                        progress.finished(trial)
            if not alive:
                break
            time.sleep(_PROGRESS_INTERVAL)
    for process in processes:
        process.join()


def _interrupt(processes: list[Any]) -> None:
    """Ctrl-C: let the workers record their running trials as interrupted, then make sure they stop."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)  # a no-op for those the terminal already signalled
    deadline = time.monotonic() + _INTERRUPT_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("lightning_hpo: worker %s did not stop after Ctrl-C; terminating it.", process.name)
            process.terminate()
            process.join()


def _slot_of(process: Any) -> int:
    return int(process.name.rsplit("-", 1)[1])


def _picklable(error: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001
        return False
    return True


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Set (or, for None, leave unchanged) environment variables for the duration of the block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is not None:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
