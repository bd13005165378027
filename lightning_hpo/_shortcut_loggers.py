"""The loggers of the ``"mlflow"`` and ``"wandb"`` shortcuts: runs started off the trial's thread.

Starting a run (MLflow: creating it in the store, its tags and params; W&B: ``wandb.init`` through
its service process) takes a trial's thread tens of milliseconds before its first batch. The
shortcuts' loggers start their run in the background instead, in the trial trackers' single worker
thread (see :class:`~lightning_hpo.trackers.TrialTrackers`), while the Trainer sets up and the first
steps train. The trial's thread waits for the start (:meth:`StartsInBackground.join_start`) where it
first needs the run: its id, or a write the logger cannot hold (a new param for MLflow). MLflow's
metrics logged before the run exists are held and written, in their order, once it does; W&B's
metrics and config updates are all written by the worker thread, after the start, in their order. A
start that failed raises its error on the trial's thread, where it is joined.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, wait
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lightning_hpo._mlflow_sqlite import commit_without_flush

__all__ = ["StartsInBackground", "TrialMLFlowLogger", "TrialWandbLogger"]


class StartsInBackground:
    """A logger whose run a worker thread starts (:meth:`start_in`); :meth:`join_start` waits for it."""

    _start: Future[None] | None = None
    _when_started: list[Callable[[], None]]

    def start_in(self, executor: Executor) -> None:
        """Start the run in ``executor`` (on global rank 0 only: the other ranks' loggers never write)."""
        self._when_started = []
        if rank_zero_only.rank == 0:
            self._start = executor.submit(self._start_run)

    def _start_run(self) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        # A copy for another process (a spawning strategy) gets the started run, not the thread's future.
        self.join_start()
        state = dict(super().__getstate__())  # type: ignore[misc]
        state.pop("_start", None)
        return state

    @property
    def starting(self) -> bool:
        """Whether the run's start was handed to the worker thread and not joined yet."""
        return self._start is not None

    def when_started(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the thread that joins the start (at once when there is none to join)."""
        if self._start is None:
            callback()
        else:
            self._when_started.append(callback)

    def join_start(self) -> None:
        """Wait until the run has started (raising the start's error, if it failed), then call the
        ``when_started`` callbacks. The start's error is raised once; the run is then started again
        the ordinary way where it is needed, and fails there with the tracker's own error."""
        start, self._start = self._start, None
        if start is None:
            return
        start.result()
        callbacks, self._when_started = self._when_started, []
        for callback in callbacks:
            callback()


class TrialMLFlowLogger(StartsInBackground, MLFlowLogger):
    """The MLflow shortcut's logger: the run created in the background with its params, metrics
    written by MLflow's background thread at most once per ``min_write_interval_s``, params at once,
    and the run ended by :func:`~lightning_hpo.trackers.record_outcome` with the trial's state.

    Params are written synchronously: MLflow's background thread may merge queued writes into one,
    which MLflow refuses whole (metrics too) when it carries a param twice, and two writes of one param
    running at once in its worker threads may collide in the store. Synchronous, a param logged again
    with another value raises MLflow's error where it is logged, as with Lightning's default
    ``MLFlowLogger``; one logged again with the same value (the trial's params, then the module's saved
    hyperparameters) is not written again, which saves the trial a write to the store (and, before the
    run has started, a wait for it).

    Metrics are held until a validation logs a ``flush_on`` metric (the monitored one) at least
    ``min_write_interval_s`` after the last write, then written in one background write: a write
    costs the store about the same whatever it carries (a session and a commit, CPU in the trial's
    process), and Lightning logs training steps between validations too; the interval bounds that
    cost for trials that validate many times a second, as MLflow's own
    ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS`` does. Held metrics are also written when they have
    waited ``MAX_DELAY_S``, when the training ends and before the run ends.

    Args:
        params: the trial's params, written with the run's creation (:meth:`start_in`).
        experiment_id: the experiment's id, when known (it saves the run's creation a look-up by name).
        local_store: the shortcut's own SQLite file (``tracking_uri`` names it): its commits skip
            flushing the disk, and ending the run flushes them all (see :mod:`lightning_hpo._mlflow_sqlite`).
        flush_on: metrics whose logging writes the held metrics (default: every metric is written at once).
        min_write_interval_s: the least time between two writes of held metrics at a ``flush_on`` metric.
        continued: ``run_id`` is an interrupted trial's run, which goes on: it is marked RUNNING again.
    """

    #: The longest a metric is held (checked when metrics are logged), so the UI's curves stay live
    #: between validations that are far apart.
    MAX_DELAY_S = 10.0

    def __init__(
        self,
        *args: Any,
        params: Mapping[str, Any] | None = None,
        experiment_id: str | None = None,
        local_store: Path | None = None,
        flush_on: Sequence[str] = (),
        min_write_interval_s: float = 0.0,
        continued: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._experiment_id = experiment_id
        self.local_store = local_store
        self.flush_on = frozenset(flush_on)
        self.min_write_interval_s = min_write_interval_s
        self._continued = continued
        self._params = _as_mlflow_params(params or {})
        self._written_params: dict[str, str] = {}
        self._held: list[Any] = []  # mlflow Metric objects not yet written
        self._held_since = self._last_write = time.monotonic()
        if local_store is not None and rank_zero_only.rank == 0:  # the other ranks never open the store
            commit_without_flush(self._mlflow_client)

    @property
    def experiment(self) -> Any:
        self.join_start()
        return super().experiment

    def _start_run(self) -> None:
        """Create (or continue) the run and write the trial's params: in the worker thread."""
        client = MLFlowLogger.experiment.fget(self)  # type: ignore[attr-defined]
        if self._continued:  # the interrupted trial's process may have ended it
            client.update_run(self._run_id, status="RUNNING")
        self._write_params(client, self._params)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from lightning.fabric.utilities.logger import _add_prefix
        from mlflow.entities import Metric

        if not self._held:
            self._held_since = time.monotonic()
        # As Lightning's MLFlowLogger.log_metrics converts them, without needing the run yet.
        timestamp_ms = int(time.time() * 1000)
        for key, value in _add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR).items():
            if not isinstance(value, str):
                self._held.append(
                    Metric(key=_mlflow_metric_name(key), value=value, timestamp=timestamp_ms, step=step or 0)
                )
        now = time.monotonic()
        validated = not self.flush_on or (
            self.flush_on & set(metrics) and now - self._last_write >= self.min_write_interval_s
        )
        if validated or now - self._held_since > self.MAX_DELAY_S:
            self.write_held_metrics()

    def write_held_metrics(self) -> None:
        """Hand the held metrics to MLflow's background thread (1000 a write, MLflow's limit)."""
        held, self._held = self._held, []
        self._last_write = time.monotonic()
        for start in range(0, len(held), 1000):
            self.experiment.log_batch(self.run_id, metrics=held[start : start + 1000], **self._log_batch_kwargs)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        written = _as_mlflow_params(params)
        # Written, or being written with the run's start.
        known = {**(self._params if self.starting else {}), **self._written_params}
        new = {key: value for key, value in written.items() if known.get(key) != value}
        if new:
            self._write_params(self.experiment, new)

    def _write_params(self, client: Any, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        listed = [Param(key, value) for key, value in params.items()]
        for start in range(0, len(listed), 100):  # MLflow's limit per write
            client.log_batch(self._run_id, params=listed[start : start + 100], synchronous=True)
        self._written_params.update(params)

    def finalize(self, status: str = "success") -> None:
        """Write the held metrics, and leave the run open: :func:`~lightning_hpo.trackers.record_outcome`
        ends it with the trial's state (PRUNED, FAIL too), when the trial ends (after all its trainings,
        with ``cv`` or ``repeats``)."""
        if self._initialized or self.starting:
            self.write_held_metrics()


def _as_mlflow_params(params: Any) -> dict[str, str]:
    """Params as ``MLFlowLogger.log_hyperparams`` writes them: flattened, strings of at most 250 characters."""
    from lightning.fabric.utilities.logger import _convert_params, _flatten_dict

    return {key: str(value)[:250] for key, value in _flatten_dict(_convert_params(params)).items()}


def _mlflow_metric_name(key: str) -> str:
    """``key`` with the characters MLflow refuses in a metric name dropped, as ``MLFlowLogger`` does (and warns)."""
    import re

    from lightning.pytorch.utilities import rank_zero_warn

    name = re.sub("[^a-zA-Z0-9_/. -]+", "", key)
    if name != key:
        rank_zero_warn(
            f"MLFlow only allows '_', '/', '.' and ' ' special characters in metric name. Replacing {key} with {name}.",
            category=RuntimeWarning,
        )
    return name


class TrialWandbLogger(StartsInBackground, WandbLogger):
    """The W&B shortcut's logger: ``wandb.init`` and every ``run.log`` in the trackers' worker thread.

    Each ``run.log`` encodes the step's record and waits for W&B's asyncio thread to hand it to its
    service process: a few milliseconds per logged step that the trial's thread no longer waits for.
    Metrics and config updates are handed to the worker thread in their order, after the run's start
    (one thread: W&B's steps stay in the order they were logged, each with its
    ``trainer/global_step``), and the run's end (:func:`~lightning_hpo.trackers.record_outcome`)
    comes after them, so every step is in the run once :meth:`~lightning_hpo.trackers.TrialTrackers.close`
    returns. On the trial's thread, :attr:`experiment` (the user's own ``self.logger.experiment.log``)
    waits for the steps handed over before it, so those land after them too. A write that failed in the
    worker thread raises its error on the trial's thread at its next log, or at the training's end; the
    steps after it are not written.
    """

    _executor: Executor | None = None
    _started: Future[None] | None = None  # the start, also once joined: the worker thread checks it
    _last_write: Future[None] | None = None
    _write_error: BaseException | None = None  # set once, by the worker thread
    _write_error_raised = False
    _worker_thread: int | None = None

    def start_in(self, executor: Executor) -> None:
        super().start_in(executor)
        if self._start is not None:
            self._executor, self._started = executor, self._start

    @property
    def experiment(self) -> Any:
        """The run; on the trial's thread, once the steps logged before have been written."""
        if threading.get_ident() == self._worker_thread:
            return WandbLogger.experiment.fget(self)  # type: ignore[attr-defined]
        self.join_start()
        if self._last_write is not None:
            wait([self._last_write])
        self._raise_write_error()
        return super().experiment

    @property
    def run(self) -> Any:
        """The run once started, without waiting for the steps not yet written (to read its id, its directory)."""
        self.join_start()
        return WandbLogger.experiment.fget(self)  # type: ignore[attr-defined]

    def _start_run(self) -> None:
        self._worker_thread = threading.get_ident()
        WandbLogger.experiment.fget(self)  # type: ignore[attr-defined]

    def _in_order(self, method: Callable[..., None], *args: Any) -> None:
        """``method(self, *args)`` in the worker thread, after the run's start and what was logged before."""
        if self._executor is None:  # not started in the background (a copy in another process)
            method(self, *args)
            return
        self._raise_write_error()
        if self._start is not None and self._start.done():
            self.join_start()  # the run is noted (when_started) early, and a failed start raises here
        self._last_write = self._executor.submit(self._write, method, args)

    def _write(self, method: Callable[..., None], args: tuple[Any, ...]) -> None:
        """In the worker thread: nothing once the start or an earlier write failed."""
        if self._write_error is not None or (self._started is not None and self._started.exception() is not None):
            return
        try:
            method(self, *args)
        except Exception as error:  # noqa: BLE001 - raised on the trial's thread (_raise_write_error)
            self._write_error = error

    def unraised_write_error(self) -> BaseException | None:
        """The error of a write that failed in the worker thread, once: ``None`` after it was raised or returned."""
        if self._write_error is None or self._write_error_raised:
            return None
        self._write_error_raised = True
        return self._write_error

    def _raise_write_error(self) -> None:
        if (error := self.unraised_write_error()) is not None:
            raise error

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._in_order(WandbLogger.log_metrics, dict(metrics), step)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        self._in_order(WandbLogger.log_hyperparams, params)

    def finalize(self, status: str) -> None:
        """Note the run (joining its start) and raise a failed write; the steps still being written
        are waited for where the run ends."""
        self.join_start()
        self._raise_write_error()
        super().finalize(status)

    def __getstate__(self) -> dict[str, Any]:
        # A copy for another process: the steps written, without this process's thread.
        if self._last_write is not None:
            wait([self._last_write])
        state = super().__getstate__()
        for name in ("_executor", "_started", "_last_write", "_worker_thread"):
            state.pop(name, None)
        return state
