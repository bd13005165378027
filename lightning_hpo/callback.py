"""The Lightning callback that reports a trial's monitored metric(s) and stops the trial when pruned.

At the end of every validation (also several per epoch with ``val_check_interval < 1``; never
during the sanity check) it:

1. reads the monitored metric (or each of several, for a multi-objective study) and averages it
   over all ranks, so the value stands for the whole validation set even when the user logged it
   without ``sync_dist=True``;
2. on global rank 0 only, stores ``(trainer.global_step, value)`` and asks the pruner;
3. broadcasts rank 0's decision (or its error) to every rank, so all ranks stop, or fail, together.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint
from typing_extensions import override

from lightning_hpo._budget import BUDGET_ATTR, PLANNED_STEPS_ATTR
from lightning_hpo._outcome_metrics import as_floats
from lightning_hpo._resume import (
    CheckpointWriter,
    checkpoint_dir,
    publish_resumable,
    snapshot,
    temporary_resumable,
)
from lightning_hpo.exceptions import LightningHPOError, MetricNotFoundError

if TYPE_CHECKING:
    from lightning_hpo.study import Study
    from lightning_hpo.trial import Trial

__all__ = ["TrialReporter", "ResumableCheckpoint"]

log = logging.getLogger(__name__)

# The signals that stop a trial resumably besides SIGTERM, which Lightning handles itself.
_STOP_SIGNALS = ("SIGUSR1", "SIGINT")


class TrialReporter(Callback):
    """Report the monitored metric of a trial at each validation, and prune it when the pruner says so.

    Args:
        study: the trial's study; only global rank 0 uses it (other ranks may pass ``None``).
        trial: the RUNNING trial being trained (``None`` on ranks other than 0).
        monitor: the logged metric to report, e.g. ``"val_loss"``; or, in a study with several
            objectives, a list of them in the order of the study's ``mode``, e.g.
            ``["val_loss", "n_params"]``: each validation then reports one value per metric.
        budget: the Trainer's ``max_epochs`` / ``max_steps`` as the user set them (``{}``: neither),
            or ``None`` when unknown. When given, rank 0 stores it with the trial as training
            starts, with the steps of a full run when the budget is set (see :mod:`lightning_hpo._budget`).

    After ``trainer.fit``, :attr:`pruned_step` is the step at which the trial was pruned (or ``None``)
    and :attr:`reports` holds the ``(step, values)`` pairs reported, on every rank, ``values`` a tuple
    in monitor order (:attr:`reported`: the same, with a float per step when ``monitor`` is one name).
    """

    def __init__(
        self,
        study: Study | None,
        trial: Trial | None,
        monitor: str | Sequence[str],
        budget: Mapping[str, int] | None = None,
    ) -> None:
        self.study = study
        self.trial = trial
        self._one_name = isinstance(monitor, str)
        self.monitor: tuple[str, ...] = (monitor,) if isinstance(monitor, str) else tuple(monitor)
        self.budget = None if budget is None else dict(budget)
        self.pruned_step: int | None = None
        self.reports: list[tuple[int, tuple[float, ...]]] = []
        self._restored = False

    @property
    def reported(self) -> list[tuple[int, float | tuple[float, ...]]]:
        """The ``(step, value)`` pairs reported, ``value`` shaped as ``monitor`` was given (a name or a list)."""
        return [(step, values[0] if self._one_name else values) for step, values in self.reports]

    @override
    def state_dict(self) -> dict[str, Any]:
        # Saved in the trial's resumable checkpoint: a resumed trial keeps its earlier reports.
        return {"reports": [[step, list(values)] for step, values in self.reports], "pruned_step": self.pruned_step}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.reports = [(int(step), tuple(values)) for step, values in state_dict.get("reports", [])]
        self.pruned_step = state_dict.get("pruned_step")
        self._restored = bool(self.reports)

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After Lightning restored the callbacks' state from a resumed trial's checkpoint (and even
        # when that checkpoint ends the training): the trial's curve goes on from the reports it had.
        if not self._restored or not trainer.is_global_zero or self.study is None or self.trial is None:
            return
        for step, values in self.reports:
            self.study.report(self.trial, step, values[0] if len(values) == 1 else values)
        self._restored = False

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.budget is None or not trainer.is_global_zero or self.study is None or self.trial is None:
            return
        attrs: dict[str, object] = {BUDGET_ATTR: self.budget}
        steps = trainer.estimated_stepping_batches
        if self.budget and math.isfinite(steps):
            attrs[PLANNED_STEPS_ATTR] = int(steps)
        self.study.storage.update_trial(self.trial.id, attrs=attrs)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = self._mean_over_ranks(trainer, pl_module)
        step = trainer.global_step
        decision: tuple[bool, str | None] = (False, None)
        if trainer.is_global_zero:
            decision = self._report_and_judge(step, value)
        prune, error = trainer.strategy.broadcast(decision, src=0)
        if error is not None:
            where = " on rank 0" if trainer.world_size > 1 else ""
            raise LightningHPOError(f"Reporting step {step} of the trial failed{where}: {error}")
        self.reports.append((step, value))
        if prune:
            self.pruned_step = step
            trainer.should_stop = True

    def _mean_over_ranks(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[float, ...]:
        metrics = trainer.callback_metrics
        for name in self.monitor:
            if name not in metrics:
                available = sorted(metrics)
                raise MetricNotFoundError(
                    f"The trial monitors {name!r}, but no metric of that name was logged by this validation. "
                    f"Logged metrics: {available if available else 'none'}. Log it in validation_step with "
                    f"self.log({name!r}, ...), or monitor one of the logged metrics."
                )
        # Nothing to average in one process: each logged value (of one element, as self.log requires) read as is.
        if trainer.world_size == 1:
            return tuple(as_floats({name: metrics[name] for name in self.monitor}).values())
        # One reduction for all the metrics: one collective per validation, however many there are.
        values = torch.stack(
            [torch.as_tensor(metrics[n]).detach().to(torch.float64).reshape(-1)[0] for n in self.monitor]
        )
        return tuple(trainer.strategy.reduce(values.to(pl_module.device), reduce_op="mean").tolist())

    def _report_and_judge(self, step: int, value: tuple[float, ...]) -> tuple[bool, str | None]:
        if self.study is None or self.trial is None:
            return False, "the TrialReporter on rank 0 has no study or trial"
        try:
            self.study.report(self.trial, step, value)
            return self.study.should_prune(self.trial), None
        except Exception as error:  # noqa: BLE001 - sent to every rank, then raised there
            return False, f"{type(error).__name__}: {error}"


class ResumableCheckpoint(Checkpoint):
    """Writes a trial's resumable checkpoint at each validation (or every ``every_seconds``) and when stopped by a signal.

    A :class:`~lightning.pytorch.callbacks.Checkpoint`, so Lightning runs it after the other
    callbacks (the reporter) and in list order among checkpoint callbacks: put it after the trial's
    ``ModelCheckpoint``, whose state at this validation it then saves.

    The state is collected on the training thread and written in the background (see
    :mod:`lightning_hpo._resume`); the end of training, an exception and a stopping signal wait
    for the write.

    Args:
        trial_dir: the trial's directory; files go to ``trial_dir / "checkpoints"``.
        number: the trial's number, for messages.
        every_seconds: ``None`` to write at every validation; else at the first validation at least
            this many seconds after the last write.

    After an interruption, :attr:`saved_step` is the step written and :attr:`signal_name` the signal.
    """

    def __init__(self, trial_dir: os.PathLike[str] | str, number: int, every_seconds: float | None = None) -> None:
        self.dirpath = checkpoint_dir(trial_dir)
        self.number = number
        self.every_seconds = every_seconds
        self.saved_step: int | None = None
        self.signal_name: str | None = None
        self._last_write = time.monotonic()
        self._previous_handlers: dict[int, Any] = {}
        self._trainer: pl.Trainer | None = None
        self._save_at_epoch_end = False
        self._writer = CheckpointWriter(trial_dir)

    @property
    @override
    def state_key(self) -> str:
        return "lightning_hpo.ResumableCheckpoint"

    @override
    def state_dict(self) -> dict[str, Any]:
        from lightning.fabric.utilities.seed import _collect_rng_states

        # Lightning's checkpoints do not hold the RNG states; the data order and dropout masks that
        # follow a resume are then the ones the uninterrupted run would have drawn (on rank 0).
        states = _collect_rng_states()
        if "numpy" in states:  # as a tensor, so that Lightning's `weights_only` load accepts it
            name, keys, *rest = states["numpy"]
            states["numpy"] = [name, torch.from_numpy(keys.astype("int64")), *rest]
        # Python's too: one tensor pickles far faster than 625 ints, at every validation.
        version, internal, gauss = states["python"]
        states["python"] = [version, torch.from_numpy(np.asarray(internal, dtype=np.int64)), gauss]
        return {"rng_states": states}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        from lightning.fabric.utilities.seed import _set_rng_states

        states = dict(state_dict.get("rng_states") or {})
        if "numpy" in states:
            name, keys, *rest = states["numpy"]
            states["numpy"] = (name, keys.numpy().astype("uint32"), *rest)
        if isinstance(states.get("python"), list):  # a tuple in checkpoints written before it was a tensor
            version, internal, gauss = states["python"]
            states["python"] = (version, tuple(torch.as_tensor(internal).tolist()), gauss)
        if states:
            _set_rng_states(states)

    # -- writing -----------------------------------------------------------------------

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A trial stopping now (pruned, or at its end) is recorded next: nothing to resume.
        if trainer.sanity_checking or trainer.should_stop:
            return
        due = self.every_seconds is None or time.monotonic() - self._last_write >= self.every_seconds
        if self.every_seconds is not None and trainer.world_size > 1:
            due = trainer.strategy.broadcast(due, src=0)  # clocks differ: every rank must save, or none
        if due and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            # Written at the epoch's end instead, after ModelCheckpoint saved this validation's best
            # there: the checkpoint holds that best (a resumed trial keeps it as its best), and
            # Lightning resumes an epoch's end exactly (the next shuffle is the uninterrupted run's).
            self._save_at_epoch_end = True
        elif due:
            self.save(trainer)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._save_at_epoch_end and not trainer.should_stop:
            self.save(trainer)
        self._save_at_epoch_end = False

    def save(self, trainer: pl.Trainer, *, wait: bool = False) -> None:
        """Write the checkpoint of this step (every rank calls this; global rank 0 writes).

        The state is collected here; global rank 0 writes it in the background (see
        :class:`~lightning_hpo._resume.CheckpointWriter`). ``wait``: return once it is on disk,
        on every rank.
        """
        step = trainer.global_step
        self._last_write = time.monotonic()
        if not _plain_torch_save(trainer):
            self._save_with_lightning(trainer, step)
            return
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if trainer.is_global_zero:
            self._writer.submit(snapshot(checkpoint), step)
            if wait:
                self._writer.wait()
        if wait:
            trainer.strategy.barrier("ResumableCheckpoint.save")

    def _save_with_lightning(self, trainer: pl.Trainer, step: int) -> None:
        """Where the strategy or the CheckpointIO plugin saves its own way (sharded, remote, another
        format), their save, on this thread; then the rename on rank 0."""
        trainer.save_checkpoint(temporary_resumable(self.dirpath.parent, step), weights_only=False)
        if trainer.is_global_zero:
            publish_resumable(self.dirpath.parent, step)

    def wait(self) -> None:
        """Block until the checkpoint being written in the background is on disk (raises if its write failed)."""
        self._writer.wait()

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The trial's outcome is recorded (and its resumable files deleted) only after the last write.
        self.wait()

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        self._restore_handlers()
        if isinstance(exception, SIGTERMException):
            self.signal_name = self.signal_name or "SIGTERM"
            self.save(trainer, wait=True)
            self.saved_step = trainer.global_step
        else:
            self._wait_quietly()

    # -- signals -------------------------------------------------------------------------

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After Lightning registered its own handlers (a SLURM requeue handler then runs first).
        self._trainer = trainer
        if sys.platform == "win32" or not _in_main_thread():
            return
        for name in _STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        # Under DDP Lightning stops every rank after the batch itself; alone, only at the epoch's end.
        if trainer.world_size == 1 and trainer.received_sigterm:
            raise SIGTERMException()

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._wait_quietly()
        self._restore_handlers()

    def _wait_quietly(self) -> None:
        """:meth:`wait` where training already failed: a failed write is then only worth a warning."""
        try:
            self.wait()
        except Exception as error:  # noqa: BLE001 - the trial's own error is the one to report
            log.warning("lightning_hpo: trial %d could not write its resumable checkpoint: %s", self.number, error)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        previous = self._previous_handlers.get(signum)
        if signum == signal.SIGINT:
            print(
                f"lightning_hpo: stopping trial {self.number} after this batch to save it (Ctrl-C again stops at once).",
                file=sys.stderr,
                flush=True,
            )
            signal.signal(signal.SIGINT, signal.default_int_handler)
        elif callable(previous):
            previous(signum, frame)  # e.g. Lightning's SLURM auto-requeue: its checkpoint and `scontrol requeue`
        self.signal_name = self.signal_name or name
        if self._trainer is not None:
            # Lightning's SIGTERM flag: its loops stop every rank together at the end of the batch.
            self._trainer._signal_connector.received_sigterm = True

    def _restore_handlers(self) -> None:
        if not _in_main_thread():
            return
        for signum, handler in self._previous_handlers.items():
            if handler is not None and signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, handler)
        self._previous_handlers = {}


def _plain_torch_save(trainer: pl.Trainer) -> bool:
    """Whether Lightning would save this trainer's checkpoint with ``torch.save`` on global rank 0 only
    (one device or DDP, the default CheckpointIO): the checkpoint can then be written off the training thread.

    Collecting it uses the Trainer's private ``_checkpoint_connector.dump_checkpoint`` (what
    ``Trainer.save_checkpoint`` calls): a Lightning without it gets Lightning's own save instead."""
    from lightning.fabric.plugins import TorchCheckpointIO
    from lightning.pytorch.strategies import Strategy

    strategy = trainer.strategy
    return (
        type(strategy).save_checkpoint is Strategy.save_checkpoint
        and type(strategy.checkpoint_io) is TorchCheckpointIO
        and callable(getattr(getattr(trainer, "_checkpoint_connector", None), "dump_checkpoint", None))
    )


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
