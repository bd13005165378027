"""The trial loop: start trials until the study has enough, run each, and decide what a failure means.

One loop serves :meth:`Study.optimize <lightning_hpo.Study.optimize>`, the Tuner, the CLI and the
leader of a torchrun job. Its options are one :class:`RunOptions`; what watches it (the live
progress display) is a list of :class:`TrialObserver`, told when each trial starts and finishes.

A failure's consequence follows :func:`~lightning_hpo.exceptions.ends_study`: an exception from user
code fails its trial and the loop goes on; lightning_hpo's own errors and interruptions fail the
trial and end the loop; failures in a row that do not depend on the configuration end it with
:class:`~lightning_hpo.exceptions.TrialsFailingError` (the rule, and the kinds of failure stored
with each FAIL trial, are in :mod:`lightning_hpo._failures`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lightning_hpo._failures import failure_kind, failure_signature, should_stop
from lightning_hpo._short_errors import trials_failing_error
from lightning_hpo.exceptions import (
    ArgumentTypeError,
    ConstraintViolated,
    GridExhaustedError,
    InvalidArgumentError,
    TrialStateError,
    TrialTimeoutError,
    ends_study,
    format_exception,
)
from lightning_hpo.stopping import announce, check_stopper
from lightning_hpo.trial import Trial, TrialState

if TYPE_CHECKING:
    from lightning_hpo.stopping import RegretBoundStopper
    from lightning_hpo.study import Study

__all__ = ["RunOptions", "TrialObserver", "run_trials"]

#: Seconds a worker waits before looking again when the other workers' running trials fill n_trials.
_POLL_INTERVAL = 1.0


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """When the trial loop stops, and how long one trial may run.

    Attributes:
        n_trials: the number of finished (COMPLETE or PRUNED) trials the study must reach, counting
            every run and worker; ``None`` runs until ``timeout`` (or, with a GridSampler, until
            every point of the grid has run).
        timeout: seconds after which no new trial starts.
        max_consecutive_failures: stop with :class:`~lightning_hpo.exceptions.TrialsFailingError`
            after this many failures in a row in this process, unless they depend on the
            configuration (see :func:`lightning_hpo._failures.should_stop`; ``None``: never).
        trial_timeout: seconds after which a running trial is stopped and marked FAIL (uses
            SIGALRM: main thread, POSIX only).
        stopper: asked before each new trial whether the study should end (e.g. a
            :class:`~lightning_hpo.RegretBoundStopper`); its decision is stored with the study.

    Example:
        >>> RunOptions(n_trials=20, timeout=3600.0).max_consecutive_failures
        5
    """

    n_trials: int | None = None
    timeout: float | None = None
    max_consecutive_failures: int | None = 5
    trial_timeout: float | None = None
    stopper: RegretBoundStopper | None = None

    def __post_init__(self) -> None:
        _check_optional_positive_int("n_trials", self.n_trials)
        if not _is_optional_positive_seconds(self.timeout):
            raise InvalidArgumentError(f"`timeout` must be a number of seconds > 0 or None, but got {self.timeout!r}.")
        _check_optional_positive_int("max_consecutive_failures", self.max_consecutive_failures)
        if not _is_optional_positive_seconds(self.trial_timeout):
            raise InvalidArgumentError(
                f"`trial_timeout` must be a number of seconds > 0 or None, but got {self.trial_timeout!r}."
            )
        object.__setattr__(self, "stopper", check_stopper(self.stopper))


class TrialObserver(Protocol):
    """Something told of each trial this process starts and finishes (e.g. a progress display)."""

    def started(self, trial: Trial) -> None: ...

    def finished(self, trial: Trial) -> None: ...


def run_trials(
    study: Study,
    run: Callable[[Trial], Trial],
    options: RunOptions,
    observers: Sequence[TrialObserver] = (),
) -> None:
    """Start trials of ``study`` and ``run`` each until ``options`` say stop.

    ``run`` gets a RUNNING trial and must return it finished. An exception from ``run`` fails the
    trial with its traceback; it then ends the loop or not as :func:`~lightning_hpo.exceptions.ends_study`
    says. Ctrl-C fails the running trial ("interrupted") and is re-raised.
    """
    deadline = None if options.timeout is None else time.monotonic() + options.timeout
    streak: list[Trial] = []  # the failed trials in a row
    succeeded = False
    while deadline is None or time.monotonic() < deadline:
        if _stopped(study, options, observers):
            break
        try:
            trial = study.start_trial(max_active=options.n_trials)
        except GridExhaustedError as exhausted:  # GridSampler: no point left to start
            if not exhausted.running:
                print(f"lightning_hpo: {exhausted} The study is done.", file=sys.stderr)
                break
            time.sleep(_POLL_INTERVAL)  # another worker's point may fail and free itself
            continue
        if trial is None:  # the others' running trials fill n_trials: wait for them
            if study.count_finished() >= options.n_trials:  # type: ignore[operator] # not None: max_active was set
                break
            time.sleep(_POLL_INTERVAL)
            continue
        for observer in observers:
            observer.started(trial)
        finished = _run_one(study, run, trial, options.trial_timeout)
        for observer in observers:
            observer.finished(finished)
        if finished.state is not TrialState.FAIL:
            streak, succeeded = [], True
            continue
        streak.append(finished)
        if should_stop(streak, limit=options.max_consecutive_failures, succeeded_in_run=succeeded):
            same = len({failure_signature(t) for t in streak}) == 1
            raise trials_failing_error(study, len(streak), finished, same=same)


def _stopped(study: Study, options: RunOptions, observers: Sequence[TrialObserver]) -> bool:
    """Whether the stopper (if any) ends the study now, having said why."""
    if options.stopper is None:
        return False
    decision = options.stopper.decide(study)
    if decision is not None:
        announce(study, decision, observers)
    return decision is not None


def _run_one(study: Study, run: Callable[[Trial], Trial], trial: Trial, trial_timeout: float | None) -> Trial:
    try:
        with _deadline(trial_timeout):
            finished = run(trial)
    except BaseException as error:  # noqa: BLE001 - the trial is recorded as failed whatever the cause
        if isinstance(error, KeyboardInterrupt):
            reason = "Interrupted by the user (KeyboardInterrupt)."
        elif not isinstance(error, Exception):
            reason = "Interrupted (the process was asked to exit)."
        else:
            reason = format_exception(error)
        metrics = error.metrics if isinstance(error, ConstraintViolated) else None
        failed = _fail_if_running(study, trial, reason, failure_kind(error), metrics)
        if ends_study(error):
            raise
        return failed
    if not isinstance(finished, Trial) or not finished.state.is_finished:
        return _fail_if_running(study, trial, "The trial function returned without finishing the trial.")
    return finished


def _fail_if_running(
    study: Study, trial: Trial, error: str, kind: str = "error", metrics: dict[str, float] | None = None
) -> Trial:
    try:
        return study.tell(trial, state=TrialState.FAIL, error=error, fail_kind=kind, metrics=metrics)
    except TrialStateError:  # ``run`` finished it before it raised
        return study.get_trial(trial.number)


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TrialTimeoutError` in the main thread once ``seconds`` have passed."""
    if seconds is None:
        yield
        return
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        raise InvalidArgumentError("`trial_timeout` needs the main thread of a POSIX process (it uses SIGALRM).")

    def on_alarm(signum: int, frame: Any) -> None:
        raise TrialTimeoutError(f"The trial ran longer than trial_timeout={seconds:g} s and was stopped.")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check_optional_positive_int(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"`{name}` must be an int or None, but got {value!r} ({type(value).__name__}).")
    if value < 1:
        raise InvalidArgumentError(f"`{name} >= 1` must hold, but got {name}={value!r}.")


def _is_optional_positive_seconds(value: Any) -> bool:
    return value is None or (not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0)
