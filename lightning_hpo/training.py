"""One trial's training, shared by :class:`~lightning_hpo.Tuner` and the ``tune`` subcommand of the CLI.

Whoever builds the model, datamodule and ``Trainer`` (the Tuner from its arguments, the CLI from its
config), the trial adds the same parts to the Trainer and ends the same way:

* a :class:`~lightning_hpo.callback.TrialReporter` (reports and prunes), a ``ModelCheckpoint`` on the
  monitored metric, and a logger, all writing under ``<study_dir>/trial_<n>/``;
* after training, the outcome goes to storage. **A trial's value is the best monitored value it
  reported** (lowest for ``mode="min"``), at the same validation as its best checkpoint; a pruned
  trial is PRUNED with the step it stopped at; a trial that never validated, or never saw a finite
  value, FAILs.

**With several monitored metrics** (a multi-objective study) **a trial's values are those of its
last validation**, and the checkpoint kept is the last one, which holds the model they describe.
Two validations of one run can each beat the other in one metric, so "the best validation" would
need a trade-off that only the user can choose; and ``ModelCheckpoint`` ranks by one metric, so a
checkpoint kept by one metric would not match the other values. A trial whose last validation
gave nan or inf in any metric FAILs.

Under torchrun the two halves run apart (see :class:`~lightning_hpo.distributed.TrialCoordinator`):
:meth:`TrialTraining.train` on every rank, then :meth:`TrialTraining.record_outcome` on global rank 0
only, once every rank trained without an error. :func:`run_study` drives a whole study this way.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_hpo._constraints import Constraints
from lightning_hpo._resume import (
    DEFAULT_KEEP_CHECKPOINTS,
    KeepCheckpoints,
    discard_checkpoints,
    exit_code,
    interrupted_error,
    remove_trial_checkpoints,
    resume_point,
)
from lightning_hpo._warnings import trial_warnings
from lightning_hpo.exceptions import InvalidArgumentError, LightningHPOError
from lightning_hpo.export import TRACKER_RUNS_ATTR
from lightning_hpo.trial import MONITOR, PRUNED_STEP, RESUME_DIR, RESUMED_AT_STEP, Direction, Trial, TrialState

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_hpo._loop import RunOptions, TrialObserver
    from lightning_hpo.callback import ResumableCheckpoint, TrialReporter
    from lightning_hpo.distributed import TrialCoordinator
    from lightning_hpo.study import Study
    from lightning_hpo.trackers import TrialTrackers

__all__ = ["TrialTraining", "run_study", "check_monitor", "quiet_lightning", "release_memory_of_earlier_trials"]

#: Trainer settings a trial changes when the user left them unset: a progress bar and a model
#: summary per trial would drown the study's own progress display.
TRIAL_TRAINER_DEFAULTS = {"enable_progress_bar": False, "enable_model_summary": False}


def check_monitor(monitor: Any, directions: Sequence[Direction]) -> tuple[str, ...]:
    """The monitored metrics, one per entry of ``directions``, from a name or a list of names.

    Raises when the names are not non-empty strings, repeat, or do not match the number of
    directions (``mode``).
    """
    names = [monitor] if isinstance(monitor, str) else monitor
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidArgumentError(
            f"`monitor` must be the name of a logged metric, or a list of names for several objectives, but got {monitor!r}."
        )
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"`monitor` names a metric twice: {list(names)!r}; name each objective once.")
    if len(names) != len(directions):
        raise InvalidArgumentError(
            f"`monitor` names {len(names)} metric(s) ({', '.join(names)}) but `mode` gives {len(directions)} "
            f"direction(s) ({', '.join(directions)}): give one mode per monitored metric, in the same order, "
            "e.g. monitor=['val_loss', 'n_params'], mode=['min', 'min']."
        )
    return tuple(names)


class TrialTraining:
    """The callbacks, logger and directory one trial adds to its Trainer, and the storing of its outcome.

    Args:
        study: the trial's study; ``None`` on the ranks of a torchrun job other than global rank 0,
            which train the trial but never touch storage.
        trial: the RUNNING trial.
        monitor: the logged validation metrics the trial is judged by, one per objective of the
            study (as :func:`check_monitor` returns them).
        directions: ``"min"`` or ``"max"`` per monitored metric; default: the study's (needed where
            ``study`` is None).
        study_dir: the study's directory; the trial writes to ``study_dir / f"trial_{trial.number}"``,
            or, when it resumes an interrupted trial, to that trial's directory.
        with_checkpoint: add a ``ModelCheckpoint`` keeping the best checkpoint on ``monitor`` (with
            several monitors: the last checkpoint, ``last.ckpt``), and a resumable checkpoint
            (:class:`~lightning_hpo.callback.ResumableCheckpoint`) so an interrupted trial resumes:
            :attr:`resume_path` is then the checkpoint to pass to ``fit(ckpt_path=...)``.
        keep_checkpoints: what stays on disk once the trial ends (see :mod:`lightning_hpo._resume`).
        checkpoint_every: seconds between resumable checkpoints; ``None``: at every validation.
        with_logger: give the trial its own logger(s), made by ``trackers`` (default: TensorBoard when
            installed, else CSV, in the trial directory).
        trackers: makes the trial's loggers and records its outcome in them, and in any logger its
            Trainer has (see :class:`~lightning_hpo.trackers.TrialTrackers`; it must be an observer of
            the trial loop); ``None``: the default logger, no outcome recorded.
        budget: the Trainer's ``max_epochs`` / ``max_steps`` as the user set them, stored with the
            trial (see :class:`~lightning_hpo.callback.TrialReporter`); ``None``: not stored.
        constraints: the study's outcome constraints; default: the study's (``{}`` without a study).
            The trial's metrics (logged and built-in, see :mod:`lightning_hpo._outcome_metrics`) at
            the validation that gives it its value are stored with it.
        trial_dir: the directory to write to instead of the trial's own (one evaluation of a trial
            evaluated several times, see :mod:`lightning_hpo._evaluations`).
        make_reporter: builds the reporter from ``(study, trial, monitor, budget)``; default:
            :class:`~lightning_hpo.callback.TrialReporter`.
        resumable: write resumable checkpoints (with ``with_checkpoint``), so an interrupted trial resumes.
        resume_attrs: what to store as the trial's resume attrs (``attrs[RESUME_DIR]``,
            ``attrs[RESUMED_AT_STEP]``), given the step it resumes at (``None``: from zero); default:
            this directory, and that step when it continues an interrupted trial. An evaluation of
            a trial evaluated several times stores its trial's (see :mod:`lightning_hpo._evaluations`).

    Example:
        >>> training = TrialTraining(study, trial, monitor=("val_loss",), study_dir=tuner.study_dir)  # doctest: +SKIP
        >>> trainer = pl.Trainer(callbacks=training.callbacks, logger=training.logger,
        ...                      default_root_dir=training.trial_dir)  # doctest: +SKIP
        >>> finished = training.train(trainer, lambda: trainer.fit(model, datamodule=dm)).record_outcome()  # doctest: +SKIP
    """

    def __init__(
        self,
        study: Study | None,
        trial: Trial,
        *,
        monitor: tuple[str, ...],
        study_dir: Path,
        directions: Sequence[Direction] | None = None,
        with_checkpoint: bool = True,
        with_logger: bool = True,
        budget: Mapping[str, int] | None = None,
        keep_checkpoints: KeepCheckpoints = DEFAULT_KEEP_CHECKPOINTS,
        checkpoint_every: float | None = None,
        trackers: TrialTrackers | None = None,
        constraints: Constraints | None = None,
        trial_dir: Path | None = None,
        make_reporter: Callable[..., TrialReporter] | None = None,
        resumable: bool = True,
        resume_attrs: Callable[[int | None], dict[str, Any]] | None = None,
    ) -> None:
        import lightning.pytorch as pl

        from lightning_hpo._outcome_metrics import OutcomeMetrics
        from lightning_hpo.callback import ResumableCheckpoint, TrialReporter

        self.study = study
        self.trial = trial
        self.monitor = monitor
        self.trial_dir = trial_dir or Path(trial.attrs.get(RESUME_DIR) or study_dir / f"trial_{trial.number}")
        self.keep_checkpoints = keep_checkpoints
        self.reporter = (make_reporter or TrialReporter)(study, trial, monitor, budget)
        if constraints is None:
            constraints = study.constraints if study is not None else {}
        self.outcome_metrics = OutcomeMetrics(constraints)
        self.checkpoint: pl.callbacks.ModelCheckpoint | None = None
        if directions is None:
            if study is None:
                raise InvalidArgumentError(
                    "TrialTraining needs `directions` where there is no study (ranks other than 0)."
                )
            directions = study.directions
        if with_checkpoint and len(monitor) == 1:
            self.checkpoint = pl.callbacks.ModelCheckpoint(
                dirpath=self.trial_dir / "checkpoints",
                filename="best",
                monitor=monitor[0],
                mode=directions[0],
                save_top_k=1,
            )
        elif with_checkpoint:  # several metrics: the last checkpoint, the one the trial's values describe
            self.checkpoint = pl.callbacks.ModelCheckpoint(
                dirpath=self.trial_dir / "checkpoints", filename="last", monitor=None, save_top_k=1
            )
        self.directions = tuple(directions)
        self.resumable: ResumableCheckpoint | None = None
        self.resume_path: Path | None = None
        self.resume_step: int | None = None
        self._make_resume_attrs = resume_attrs or self._own_resume_attrs
        if with_checkpoint and resumable:
            self.resumable = ResumableCheckpoint(self.trial_dir, trial.number, checkpoint_every)
            if RESUME_DIR in trial.attrs:
                self.resume_path, self.resume_step = resume_point(self.trial_dir, trial.number)
                if self.resume_path is None and study is not None:
                    # Restarting from zero: the interrupted run's best checkpoint would be kept as the best.
                    remove_trial_checkpoints(self.trial_dir)
        self.trackers = trackers
        self.logger: Any = _trial_logger(trackers, self.trial_dir, trial, self.monitor) if with_logger else False

    @property
    def callbacks(self) -> list[pl.Callback]:
        """The trial's own callbacks, to append to the user's (the resumable checkpoint last, after
        ``ModelCheckpoint`` and the callbacks whose state it saves)."""
        return [c for c in (self.checkpoint, self.reporter, self.outcome_metrics, self.resumable) if c is not None]

    def train(self, trainer: pl.Trainer, fit: Callable[[], Any]) -> TrialTraining:
        """Call ``fit()``, which trains ``trainer`` (on every rank under torchrun).

        An exception from ``fit`` propagates: the study's trial loop fails the trial with its traceback.
        """
        from lightning_hpo.distributed import check_trainer_processes

        if self.study is not None:
            # The metric names travel with the trial, so plots and tables can say "val_loss (min)".
            self.study.storage.update_trial(
                self.trial.id, log_dir=str(self.trial_dir), attrs={MONITOR: list(self.monitor), **self._resume_attrs()}
            )
        check_trainer_processes(trainer)
        if self.study is not None and self.trackers is not None:
            storage, trial_id = self.study.storage, self.trial.id
            # Where each tracker keeps the trial's run; a run still starting is noted once it has started.
            self.trackers.watch(
                self.trial,
                trainer.loggers,
                lambda runs: storage.update_trial(trial_id, attrs={TRACKER_RUNS_ATTR: runs}),
            )
        try:
            with _resuming(self.resume_path is not None):
                fit()
        except SystemExit:
            self._leave_resumable_if_saved()
            # Lightning turns Ctrl-C into SystemExit(1) after ignoring SIGINT: undo both.
            if trainer.interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt from None
            raise
        except Exception:
            if self.resumable is not None and self.study is not None and self.keep_checkpoints != "all":
                remove_trial_checkpoints(self.trial_dir)  # the trial FAILs and will not resume: it keeps none
            raise
        return self

    def record_outcome(self) -> Trial:
        """Store the trained trial's outcome and return it finished (on the process that opened the study)."""
        study, trial, reporter = self.study, self.trial, self.reporter
        if study is None:
            raise LightningHPOError("Only the process that opened the study (global rank 0) records a trial's outcome.")
        if self.checkpoint is not None and self.checkpoint.best_model_path:
            study.storage.update_trial(trial.id, checkpoint_path=str(Path(self.checkpoint.best_model_path).resolve()))
        metrics = self.outcome_metrics.at(self._deciding_step())
        if reporter.pruned_step is not None:
            study.storage.update_trial(trial.id, attrs={PRUNED_STEP: reporter.pruned_step})
            return study.tell(trial, state=TrialState.PRUNED, metrics=metrics)
        monitored = repr(self.monitor[0]) if len(self.monitor) == 1 else repr(list(self.monitor))
        if not reporter.reports:
            return study.tell(
                trial,
                state=TrialState.FAIL,
                error=(
                    f"Training ended without a validation, so {monitored} was never reported. Does the module "
                    "define validation_step and a validation dataloader, and do limit_val_batches / "
                    "check_val_every_n_epoch let a validation run?"
                ),
            )
        if len(self.monitor) > 1:
            step, last = reporter.reports[-1]
            if not all(map(math.isfinite, last)):
                return study.tell(
                    trial,
                    state=TrialState.FAIL,
                    fail_kind="nan",
                    metrics=metrics,
                    error=(
                        f"The last validation (step {step}) gave {dict(zip(self.monitor, last))}: a trial with several "
                        "monitored metrics is judged by its last validation, and these are not all finite."
                    ),
                )
            return study.tell(trial, last, metrics=metrics)
        if not any(math.isfinite(v) for _, (v,) in reporter.reports):
            seen = sorted({str(v) for _, (v,) in reporter.reports})
            return study.tell(
                trial,
                state=TrialState.FAIL,
                fail_kind="nan",
                metrics=metrics,
                error=f"{monitored} was never finite (values seen: {', '.join(seen)}).",
            )
        return study.tell(trial, state=TrialState.COMPLETE, metrics=metrics)

    def _deciding_step(self) -> int | None:
        """The step of the validation that gives the trial its value: the first with the best finite
        value of its one monitored metric, or the last one with several (``None`` before any)."""
        reports = self.reporter.reports
        if not reports:
            return None
        if len(self.monitor) > 1:
            return reports[-1][0]
        minimize = self.directions[0] == "min"
        finite = [(step, v) for step, (v,) in reports if math.isfinite(v)]
        if not finite:
            return reports[-1][0]
        best = (min if minimize else max)(v for _, v in finite)
        return next(step for step, v in finite if v == best)

    # -- resuming ------------------------------------------------------------------------

    def _resume_attrs(self) -> dict[str, Any]:
        """The trial's resume attrs (see ``resume_attrs``); none without resumable checkpoints."""
        return {} if self.resumable is None else self._make_resume_attrs(self.resume_step)

    def _own_resume_attrs(self, resume_step: int | None) -> dict[str, Any]:
        """The trial's resumable-checkpoint directory, and the step it resumes from (if it does)."""
        attrs: dict[str, Any] = {RESUME_DIR: str(self.trial_dir.resolve())}
        if RESUME_DIR in self.trial.attrs:  # it continues an interrupted trial
            attrs[RESUMED_AT_STEP] = resume_step or 0
        return attrs

    def _leave_resumable_if_saved(self) -> None:
        """After a signal stopped the trial and its checkpoint was written: store it FAIL (resumable) and exit.

        Ctrl-C is raised again as KeyboardInterrupt; SIGTERM and SIGUSR1 exit with 128 + the signal number.
        """
        saved = self.resumable
        if saved is None or saved.saved_step is None or saved.signal_name is None:
            return
        error, line = interrupted_error(self.trial.number, saved.signal_name, saved.saved_step)
        if self.study is not None:
            self.study.tell(self.trial, state=TrialState.FAIL, error=error, fail_kind="interrupted")
            print(line, file=sys.stderr, flush=True)
        if saved.signal_name == "SIGINT":
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt(line) from None
        raise SystemExit(exit_code(saved.signal_name)) from None

    def record_and_discard(self) -> Trial:
        """:meth:`record_outcome`, then remove the checkpoints that ``keep_checkpoints`` no longer keeps."""
        finished = self.record_outcome()
        if self.resumable is not None and self.study is not None:
            discard_checkpoints(self.study, finished, self.trial_dir, self.keep_checkpoints)
        return finished


def run_study(
    coordinator: TrialCoordinator,
    study: Study | None,
    train: Callable[[Trial], TrialTraining],
    options: RunOptions,
    observers: Sequence[TrialObserver] = (),
    *,
    monitor: Sequence[str] = (),
) -> None:
    """Run a study's trials, each built and trained by ``train``, and record each outcome.

    The one driver of the Tuner and the ``tune`` subcommand. ``train(trial)`` builds the trial's
    module and Trainer and returns :meth:`TrialTraining.train`'s result; it runs on every rank under
    torchrun, and global rank 0 records the outcome. ``coordinator`` must be entered already;
    ``study`` is ``None`` on the other ranks. ``monitor``: the metrics Lightning need not warn about
    (see :func:`quiet_lightning`).
    """
    with quiet_lightning(monitor):
        coordinator.run_trials(
            study,
            train=train,
            record=lambda trial, training: training.record_and_discard(),
            options=options,
            observers=observers,
        )


def release_memory_of_earlier_trials() -> None:
    """Free the GPU memory that earlier trials left, before the next one needs it.

    A finished trial's Trainer, module and optimizer refer to each other (a failed trial's are also
    held by its traceback), so only the cyclic garbage collector frees them, and the CUDA cache
    returns their memory only after that. Without a GPU in use nothing is done: host memory is left
    to Python's collector, as in any loop of ``Trainer.fit``, since a full collection walks every
    object of torch and Lightning, which takes a large part of a second per trial.
    """
    import torch

    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return
    import gc

    gc.collect()
    torch.cuda.empty_cache()


@contextlib.contextmanager
def _resuming(resuming: bool) -> Iterator[None]:
    """Quiet the warning of ``ModelCheckpoint`` that the trial's checkpoint directory is not empty, when resuming."""
    if not resuming:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        yield


def _trial_logger(trackers: TrialTrackers | None, trial_dir: Path, trial: Trial, monitor: Sequence[str]) -> Any:
    """The trial's loggers from ``trackers``, else the default: TensorBoard when installed, else CSV.

    They log to ``trial_dir``: the trial's own, or the interrupted trial's that it resumes.
    """
    from lightning_hpo.trackers import TrialTrackers

    if trackers is None:
        study_dir = trial_dir.parent
        trackers = TrialTrackers(None, study_name=study_dir.name, study_dir=study_dir, monitor=monitor)
    return trackers.loggers_for(trial, run_dir=trial_dir)


@contextlib.contextmanager
def quiet_lightning(monitor: str | Sequence[str] = ()) -> Iterator[None]:
    """Silence Lightning's per-Trainer banners (GPU available..., LOCAL_RANK..., Tips): one per trial is noise.

    Warnings too: Lightning's per-Trainer noise is silenced, any other warning is shown once (see
    :mod:`lightning_hpo._warnings`); ``monitor`` names the monitored metric(s).
    """
    names = (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.pytorch.accelerators.cuda",
        "lightning.fabric.utilities.seed",
    )
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with trial_warnings([monitor] if isinstance(monitor, str) else monitor):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
