"""Worker processes on one machine: ``Tuner(..., n_jobs=k)`` runs k trials at once, in k processes.

:func:`run_in_workers` starts k processes with ``spawn`` (CUDA does not survive a fork), each running
the same job. For the Tuner the job is the ordinary trial loop on the study's storage, so every
worker is just another worker of the study: unique trial numbers, ``n_trials`` and the reaping of
stale trials work exactly as for workers started by hand. Worker ``i`` sees one GPU, number
``i mod G`` of the G visible ones (``CUDA_VISIBLE_DEVICES``): with k <= G every trial has a GPU of its
own, with k > G small trials share them. Without GPUs the workers share the CPU cores: each gets
``cores // k`` intra-op threads, since k processes that each use every core slow one another
down. A trial that needs several GPUs is a DDP trial: start it with torchrun (see
:mod:`lightning_hpo.distributed`).

As with any ``spawn`` multiprocessing, the script must start the Tuner under
``if __name__ == "__main__":``, and the job must be picklable: for the Tuner, the module class and
datamodule must be defined at module level.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from lightning_hpo.exceptions import DistributedError, InvalidArgumentError, LightningHPOError, format_exception

__all__ = ["run_in_workers", "worker_devices", "visible_gpus"]

log = logging.getLogger(__name__)

# Seconds between two looks at the workers (and calls of ``poll``).
_POLL_INTERVAL = 1.0
# Seconds the workers get to record their interrupted trials after Ctrl-C, before they are terminated.
_INTERRUPT_GRACE = 30.0


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (indices or UUIDs)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [name.strip() for name in listed.split(",") if name.strip() and name.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def worker_devices(n_workers: int, gpus: list[str] | None = None) -> list[str | None]:
    """``CUDA_VISIBLE_DEVICES`` of each of ``n_workers`` workers: GPU ``i mod G``; ``None`` without GPUs.

    Example:
        >>> worker_devices(3, gpus=["0", "1"])
        ['0', '1', '0']
        >>> worker_devices(2, gpus=[])
        [None, None]
    """
    gpus = visible_gpus() if gpus is None else gpus
    return [gpus[i % len(gpus)] if gpus else None for i in range(n_workers)]


def run_in_workers(job: Callable[[], object], n_workers: int, *, poll: Callable[[], None] | None = None) -> None:
    """Run ``job()`` in each of ``n_workers`` spawned processes and wait until all have stopped.

    Args:
        job: a picklable function of no arguments, e.g. a ``functools.partial`` of a module-level function.
        n_workers: the number of processes.
        poll: called about once a second in this process while the workers run (e.g. to show progress).

    An error that stopped a worker is raised here once all have stopped (a lightning_hpo error as
    it was raised there, anything else as a :class:`~lightning_hpo.exceptions.DistributedError`).
    Ctrl-C here lets the workers finish their interrupted trials, then is re-raised.
    """
    import multiprocessing

    try:
        payload = pickle.dumps(job)
    except Exception as error:  # noqa: BLE001 - pickling fails in many ways; all mean the same here
        raise InvalidArgumentError(
            f"n_jobs={n_workers} sends the work to worker processes, but it cannot be pickled: {error}. Define "
            "the LightningModule, the datamodule (or datamodule function) and callbacks at module level."
        ) from None

    context = multiprocessing.get_context("spawn")
    errors = context.SimpleQueue()
    threads = _threads_per_cpu_worker(n_workers)
    processes = []
    for index, devices in enumerate(worker_devices(n_workers)):
        process = context.Process(
            target=_work,
            args=(payload, index, None if devices else threads, errors),
            name=f"lightning_hpo-worker-{index}",
        )
        with _environment(CUDA_VISIBLE_DEVICES=devices):  # read once, when the worker starts
            process.start()
        processes.append(process)

    failures: list[tuple[int, BaseException | None, str]] = []
    try:
        _wait(processes, errors, failures, poll)
    except KeyboardInterrupt:
        _interrupt(processes)
        raise
    for process in processes:
        if process.exitcode != 0 and all(index != _index_of(process) for index, *_ in failures):
            failures.append((_index_of(process), None, f"it exited with code {process.exitcode}"))
    if failures:
        index, error, text = min(failures, key=lambda failure: failure[0])
        if isinstance(error, LightningHPOError):
            raise error
        raise DistributedError(
            f"{len(failures)} of the {n_workers} worker processes failed; worker {index} failed with:\n{text}"
        )


def _threads_per_cpu_worker(n_workers: int) -> int:
    """Intra-op threads of a worker that trains on the CPU: its share of this process's cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // n_workers)


def _work(payload: bytes, index: int, threads: int | None, errors: Any) -> None:
    """A worker process: run the job; report an error that stops it to the parent."""
    try:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        job = pickle.loads(payload)
        job()
    except KeyboardInterrupt:
        sys.exit(130)  # the running trial is already marked as interrupted
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
        sendable = error if _picklable(error) else None
        errors.put((index, sendable, format_exception(error)))
        sys.exit(1)


def _wait(processes: list[Any], errors: Any, failures: list[Any], poll: Callable[[], None] | None) -> None:
    """Until every worker has stopped: call ``poll`` and collect the workers' errors."""
    while True:
        alive = any(p.is_alive() for p in processes)
        while not errors.empty():  # drained as they come, so no worker blocks on a full pipe
            failures.append(errors.get())
        if poll is not None:
            poll()
        if not alive:
            break
        time.sleep(_POLL_INTERVAL)
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


def _index_of(process: Any) -> int:
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
