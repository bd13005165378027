"""DDP trials under torchrun: every rank trains each trial, and only global rank 0 touches the study.

Under ``torchrun --nproc_per_node=N script.py`` (add ``--nnodes`` for several machines) every rank
runs the same script, so every rank calls ``Tuner.fit``. A :class:`TrialCoordinator` keeps them in
step:

* global rank 0, the *leader*, runs the study's trial loop: it reaps stale trials, asks the sampler,
  creates the trial in storage and sends it to the other ranks, the *followers*;
* every rank builds the same module from the trial's parameters and trains it with DDP over all
  ranks; the :class:`~lightning_hpo.callback.TrialReporter` broadcasts every pruning decision;
* after training the ranks agree on the outcome; the leader alone records it, then decides whether
  another trial starts (``n_trials``, ``timeout``) and tells the others.

Control messages never travel on the training process group (NCCL on GPUs). They go through the
key-value store that torchrun gives every rank, on every node (the TCPStore at
``MASTER_ADDR:MASTER_PORT``), because a wait on it can be bounded *and tried again*: between two
trials the leader may wait for hours for other workers' trials to finish, which no collective
timeout could allow for, while a collective that timed out leaves its group unusable.

When user code raises on one rank only, the other ranks may be blocked in a collective with it (a
gradient all-reduce) that would otherwise wait for the process-group timeout. So the first rank
that raises posts the cause to the store, and a watch thread on every rank aborts that rank's
training group as soon as the cause appears: ``ncclCommAbort`` releases NCCL kernels, and the gloo
connections are shut down at the socket level, because gloo has no abort that works while DDP holds
the group (its connections close only when the group object is freed, and DDP keeps it alive). A
blocked collective then fails at once on every rank. All ranks wait, within ``outcome_timeout``,
for each other's outcome, agree that the trial FAILed with the first rank's traceback, and build a
fresh process group for the next trial.

The coordinator's protocol is here; its transport, the store channel, the training process group
with its abort and the watch thread, is in :mod:`lightning_hpo._torchrun_plumbing`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from lightning_hpo._torchrun_plumbing import (
    PROCESS_GROUP_TIMEOUT,
    Channel,
    FailureWatch,
    TrainingGroup,
    torchrun_store,
)
from lightning_hpo.exceptions import (
    ArgumentTypeError,
    DistributedError,
    InvalidArgumentError,
    ends_study,
    format_exception,
)
from lightning_hpo.trial import Trial, TrialState

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_hpo._loop import RunOptions, TrialObserver
    from lightning_hpo.study import Study

__all__ = [
    "TrialCoordinator",
    "OUTCOME_TIMEOUT",
    "PROCESS_GROUP_TIMEOUT",
    "global_rank",
    "world_size",
    "is_global_zero",
    "check_trainer_processes",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: How long the ranks wait for each other at the end of a trial. DDP keeps them in step while they
#: train, and a failure releases them all at once, so only a hung rank makes this run out.
OUTCOME_TIMEOUT = timedelta(minutes=30)

# Every coordinator session of a process gets the next number; the ranks run the same script, so
# the same session has the same number on every rank and keeps its messages apart from others'.
_sessions = itertools.count()


def world_size() -> int:
    """The number of processes torchrun started (``WORLD_SIZE``); 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def global_rank() -> int:
    """This process's global rank under torchrun (``RANK``); 0 outside torchrun.

    Rank 0 is the process that opens the study and runs its loop (:attr:`TrialCoordinator.is_leader`).
    """
    return int(os.environ.get("RANK", "0"))


def is_global_zero() -> bool:
    """Whether this process is global rank 0 of whatever launcher started it; True in a plain process.

    Reads the variables Lightning reads, in its order: ``RANK`` (torchrun), then ``LOCAL_RANK``,
    ``SLURM_PROCID`` and ``JSM_NAMESPACE_RANK``. It decides who *shows* things (the progress display)
    and is wider than ``global_rank() == 0``, which decides who runs the study: the tasks of a plain
    ``srun -n 4`` are four independent workers of the study, and only the first one displays.
    """
    for variable in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if variable in os.environ:
            return os.environ[variable] == "0"
    return True


def check_trainer_processes(trainer: pl.Trainer) -> None:
    """Refuse a trial Trainer whose process count is not the number of processes torchrun started.

    Lightning's own launchers (``strategy="ddp"`` without torchrun, ``"ddp_spawn"``) would start ranks
    that never see the study, and a single-device Trainer under torchrun would train one model per
    rank, so both are configuration errors.
    """
    expected = world_size()
    if trainer.world_size == expected:
        return
    if expected == 1:
        raise InvalidArgumentError(
            f"The trial's Trainer runs {trainer.world_size} processes (devices x num_nodes), but lightning_hpo runs "
            "in one process. Start DDP trials with torchrun, which starts every rank, e.g. "
            f"`torchrun --nproc_per_node={trainer.world_size} script.py`; or train each trial on one device "
            "(devices=1) and run several trials at once with Tuner(..., n_jobs=k)."
        )
    raise InvalidArgumentError(
        f"torchrun started {expected} processes (WORLD_SIZE), but the trial's Trainer uses {trainer.world_size} "
        "(devices x num_nodes). Set devices to --nproc_per_node and num_nodes to --nnodes."
    )


@dataclass(frozen=True)
class _Failure:
    """The first failure of a trial on any rank: what every rank learns about it."""

    rank: int
    error: str
    ends_study: bool


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class TrialCoordinator:
    """Runs a study's trial loop on every rank of a torchrun job, each trial one DDP training.

    Outside torchrun (one process) it simply runs the study's loop. Under torchrun, global rank 0
    must pass the study and the other ranks ``None``: only rank 0 opens storage. Each trial is split
    in two callables:

    * ``train(trial)`` runs on every rank (build the module and Trainer, ``trainer.fit``) and returns
      whatever ``record`` needs;
    * ``record(trial, trained)`` runs on rank 0 only, once every rank finished training without an
      error, and must return the trial finished (``study.tell``).

    If ``train`` raises on any rank, the trial is FAIL with that rank's traceback on every rank and
    the next trial starts; errors that end a study (lightning_hpo's own, Ctrl-C) end it on every rank.

    Args:
        outcome_timeout: how long the ranks wait for each other at the end of a trial.

    Example:
        >>> coordinator = TrialCoordinator()
        >>> study = Study("s", search_space=space) if coordinator.is_leader else None  # doctest: +SKIP
        >>> with coordinator:  # doctest: +SKIP
        ...     coordinator.run_trials(study, train=train, record=record, options=RunOptions(n_trials=20))
        ...     best = coordinator.share(lambda: study.best_trial)
    """

    def __init__(self, *, outcome_timeout: timedelta = OUTCOME_TIMEOUT) -> None:
        if not isinstance(outcome_timeout, timedelta) or outcome_timeout <= timedelta(0):
            raise InvalidArgumentError(f"`outcome_timeout` must be a positive timedelta, but got {outcome_timeout!r}.")
        self.rank = global_rank()
        self.world_size = world_size()
        self.outcome_timeout = outcome_timeout
        self._channel: Channel | None = None
        self._group: TrainingGroup | None = None
        self._messages = 0  # leader-to-follower messages sent or read in this session
        self._trials = 0  # trials started in this session

    @property
    def is_leader(self) -> bool:
        """Whether this process runs the study (global rank 0, or the only process)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def __enter__(self) -> TrialCoordinator:
        if self.distributed:
            store = torchrun_store(self.rank, self.world_size)
            restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            prefix = f"lightning_hpo/{restart}/{next(_sessions)}/"
            self._channel = Channel(store, prefix)
            self._group = TrainingGroup(store, prefix, rank=self.rank, size=self.world_size)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._group is not None:
            try:
                self._group.close()
            except Exception as error:  # noqa: BLE001 - an exception on its way out matters more
                if exc_type is None:
                    raise
                log.warning("lightning_hpo: closing the process group failed: %s", error)
        self._channel = self._group = None

    # -- the loop --------------------------------------------------------------------------

    def run_trials(
        self,
        study: Study | None,
        *,
        train: Callable[[Trial], _T],
        record: Callable[[Trial, _T], Trial],
        options: RunOptions,
        observers: Sequence[TrialObserver] = (),
    ) -> None:
        """Run trials until rank 0's study loop stops (see :meth:`Study.run_trials`), on every rank.

        ``options.trial_timeout`` is kept by rank 0, whose timeout error releases the other ranks like
        any failure. ``observers`` watch rank 0's loop.
        """
        if self.is_leader and study is None:
            raise ArgumentTypeError("The leader (global rank 0, or the only process) needs the study, but got None.")
        if not self.distributed:
            assert study is not None
            study.run_trials(lambda trial: record(trial, train(trial)), options, observers=observers)
            return
        if self._channel is None:
            raise DistributedError("Use the TrialCoordinator as a context manager (`with TrialCoordinator() as c:`).")
        if self.is_leader:
            assert study is not None
            self._lead(study, train, record, options, observers)
        else:
            self._follow(train)

    def share(self, make: Callable[[], _T]) -> _T:
        """``make()`` on the leader, and its value on every rank (e.g. the study's trials at the end)."""
        if not self.distributed:
            return make()
        if self._channel is None:
            raise DistributedError("Use the TrialCoordinator as a context manager (`with TrialCoordinator() as c:`).")
        key = f"message/{self._messages}"
        self._messages += 1
        if self.is_leader:
            value = make()
            self._channel.post(key, value)
            return value
        return self._channel.poll(key)

    def _lead(
        self,
        study: Study,
        train: Callable[[Trial], _T],
        record: Callable[[Trial, _T], Trial],
        options: RunOptions,
        observers: Sequence[TrialObserver],
    ) -> None:
        def run(trial: Trial) -> Trial:
            self._send(("trial", trial))
            trained, failure, own_error = self._train_together(train, trial)
            if failure is None:
                return record(trial, trained)
            if own_error is not None and (failure.rank == self.rank or ends_study(own_error)):
                raise own_error  # the study loop stores its traceback, and stops if it must
            text = f"Rank {failure.rank} raised:\n{failure.error}"
            if failure.ends_study:
                raise DistributedError(f"{text}\nThis error ends the study on every rank.")
            return study.tell(trial, state=TrialState.FAIL, error=text)

        try:
            study.run_trials(run, options, observers=observers)
        except BaseException as error:
            self._send(("stop", _describe(error)))
            raise
        self._send(("stop", None))

    def _follow(self, train: Callable[[Trial], Any]) -> None:
        while True:
            kind, payload = self._receive()
            if kind == "stop":
                if payload is not None:
                    raise DistributedError(f"Rank 0 stopped the study with {payload}")
                return
            self._train_together(train, payload)  # the leader records and decides; nothing to do here

    def _send(self, message: tuple[str, Any]) -> None:
        assert self._channel is not None
        self._channel.post(f"message/{self._messages}", message)
        self._messages += 1

    def _receive(self) -> tuple[str, Any]:
        assert self._channel is not None
        key = f"message/{self._messages}"
        self._messages += 1
        return self._channel.poll(key)

    def _train_together(
        self, train: Callable[[Trial], _T], trial: Trial
    ) -> tuple[_T | None, _Failure | None, BaseException | None]:
        """Train on this rank, then agree with the others: (what train returned, the first failure, own error)."""
        assert self._channel is not None and self._group is not None
        channel, group = self._channel, self._group
        key = f"trial/{self._trials}/"
        self._trials += 1
        trained: _T | None = None
        own_error: BaseException | None = None
        watch = FailureWatch(channel, key + "cause", group)
        with watch:
            try:
                group.ensure()
                trained = train(trial)
            except BaseException as error:  # noqa: BLE001 - every rank must learn of it, whatever it is
                own_error = error
                channel.claim(key + "cause", _Failure(self.rank, format_exception(error), ends_study(error)))
                group.abort()  # release the peers blocked in a collective with this rank
            with _alarm_held_back():
                watch.stop()
                return self._agree(key, trial, trained, own_error)

    def _agree(
        self, key: str, trial: Trial, trained: _T | None, own_error: BaseException | None
    ) -> tuple[_T | None, _Failure | None, BaseException | None]:
        assert self._channel is not None and self._group is not None
        channel, group = self._channel, self._group
        # A rank posts its cause before it says it is done, so once all are done the cause is final.
        channel.post(key + f"done/{self.rank}", own_error is None)
        done_keys = [key + f"done/{r}" for r in range(self.world_size)]
        try:
            channel.wait(done_keys, self.outcome_timeout)
        except Exception as error:  # noqa: BLE001 - DistStoreError on timeout; any store error means the same
            missing = [r for r, k in enumerate(done_keys) if not channel.has(k)]
            raise DistributedError(
                f"Ranks {missing} did not finish trial {trial.number} within {self.outcome_timeout} "
                f"(the other ranks did): {error}. A rank is hung; see its log."
            ) from None
        failure = channel.read(key + "cause") if channel.has(key + "cause") else None
        if failure is not None:
            group.reset()
            if own_error is not None and not self.is_leader:
                log.warning(
                    "lightning_hpo: trial %d failed on rank %d: %s", trial.number, self.rank, _describe(own_error)
                )
        return trained, failure, own_error


@contextlib.contextmanager
def _alarm_held_back() -> Iterator[None]:
    """Deliver a SIGALRM (the study's ``trial_timeout``) only after the block, not halfway through it.

    Its exception, raised while the ranks agree, would leave this rank out of step with the others.
    """
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[Any] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, previous)
    if fired and callable(previous):
        previous(signal.SIGALRM, fired[0])
