"""The study: the ask/tell core that the Tuner is built on, usable with any objective function.

Example:
    >>> from lightning_hpo import Study, Float
    >>> study = Study("quadratic", search_space={"x": Float(-3.0, 3.0)}, storage=":memory:", seed=0)
    >>> study.optimize(lambda params: (params["x"] - 1.0) ** 2, n_trials=8)
    >>> len(study.trials)
    8
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Union

from lightning_hpo.exceptions import (
    ArgumentTypeError,
    InvalidArgumentError,
    LightningHPOError,
    StudyMismatchError,
    TrialError,
    TrialPruned,
    TrialsFailingError,
    TrialStateError,
    TrialTimeoutError,
)
from lightning_hpo.pruners import ASHAPruner, Pruner
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.samplers.gp import GPSampler
from lightning_hpo.space import Domain, SearchSpace
from lightning_hpo.storage import Storage, open_storage
from lightning_hpo.trial import Trial, TrialState

__all__ = ["Study", "DEFAULT_GRACE_PERIOD", "HEARTBEAT_INTERVAL"]

#: Seconds without a heartbeat after which a RUNNING trial counts as dead (its worker was killed).
DEFAULT_GRACE_PERIOD = 60.0
#: Seconds between heartbeats of a running trial.
HEARTBEAT_INTERVAL = 10.0
#: Seconds a worker waits before looking again when the other workers' running trials fill n_trials.
_POLL_INTERVAL = 1.0
# How the error of a trial failed for want of heartbeats begins.
_STALE_PREFIX = "Stale: "

Mode = Union[str, Sequence[str]]
Objective = Callable[[dict[str, Any]], Union[float, Sequence[float]]]


def worker_id() -> str:
    """``host:pid`` of this process, stored with each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def parse_mode(mode: Mode) -> tuple[str, ...]:
    """``"min"``/``"max"``, or a sequence of them for several objectives, as a tuple."""
    modes = [mode] if isinstance(mode, str) else mode
    if not isinstance(modes, Sequence) or not modes:
        raise InvalidArgumentError(f"`mode` must be 'min', 'max' or a non-empty list of them, but got {mode!r}.")
    for m in modes:
        if m not in ("min", "max"):
            raise InvalidArgumentError(
                f"`mode` must be 'min' or 'max' (as in Lightning's ModelCheckpoint), but got {m!r}."
            )
    return tuple(modes)


def check_study_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ArgumentTypeError(f"A study name must be a string, but got {name!r} ({type(name).__name__}).")
    if not name.strip() or len(name) > 512 or any(ord(c) < 32 for c in name):
        raise InvalidArgumentError(f"A study name must be 1 to 512 printable characters, not blank, but got {name!r}.")
    return name


def _as_float(value: Any, what: str) -> float:
    """Accept Python numbers, numpy scalars and one-element tensors."""
    if isinstance(value, bool):
        raise ArgumentTypeError(f"{what} must be a number, but got {value!r}.")
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError) as error:
            raise ArgumentTypeError(f"{what} must be a single number, but got {value!r}: {error}.") from None
    if not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{what} must be a number, but got {value!r} ({type(value).__name__}).")
    try:
        return float(value)
    except OverflowError:
        raise InvalidArgumentError(f"{what} must fit in a float, but got {value!r}.") from None


# Trials being run by this process, by storage id, across all Study objects: anything else RUNNING
# under this process's worker id was left behind (e.g. by an exception) and is dead.
_OWN_TRIALS: set[tuple[str, int]] = set()
_OWN_TRIALS_LOCK = threading.Lock()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class _Heartbeat:
    """A daemon thread that tells storage, every few seconds, that this process's trials are alive."""

    def __init__(self, storage: Storage, interval: float) -> None:
        self._storage = weakref.proxy(storage)
        self._interval = interval
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lightning_hpo-heartbeat", daemon=True)
                self._thread.start()

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            with self._lock:
                ids = list(self._ids)
                if not ids:
                    self._thread = None
                    return
            try:
                self._storage.heartbeat(ids)
            except ReferenceError:
                return
            except Exception as error:  # noqa: BLE001 - a missed beat must not kill the thread
                import logging

                logging.getLogger(__name__).warning("lightning_hpo: heartbeat failed: %s", error)


class Study:
    """A named set of trials in a storage, with the sampler and pruner that drive it.

    Opening a study that exists resumes it: its trials, space and mode come from storage, and
    asking for a different space or mode is an error rather than a silent mix of two experiments.

    Args:
        name: the study's name in the storage (any printable text; it is data, never code or a path).
        search_space: parameter name -> :class:`~lightning_hpo.Float` / ``Int`` / ``Categorical``.
        mode: ``"min"`` or ``"max"``; a list of them for several objectives.
        storage: ``None`` for the SQLite file ``lightning_hpo/studies.db``, ``":memory:"`` for a
            throwaway study, a database URL or file path, or a :class:`~lightning_hpo.storage.Storage`.
        sampler: defaults to a :class:`~lightning_hpo.GPSampler` (Bayesian optimization with BoTorch,
            after a scrambled Sobol start) seeded with ``seed``; pass ``SobolSampler(seed=...)`` for
            plain space-filling search.
        pruner: defaults to :class:`~lightning_hpo.ASHAPruner` with rungs at 1/9 and 1/3 of a full
            run (see benchmarks/PRUNING_RESULTS.md for why).
        seed: seed of the default sampler.
        grace_period: seconds without a heartbeat after which another worker's RUNNING trial is
            marked FAIL (stale). A trial whose worker ran on this machine and no longer exists is
            marked at once.
        retry_stale: run the parameters of a stale trial once more: the next trial that any worker
            starts is its retry (``attrs["retry_of"]`` holds the stale trial's number). A retry
            that goes stale too is not retried again.
    """

    def __init__(
        self,
        name: str,
        *,
        search_space: Mapping[str, Domain] | SearchSpace,
        mode: Mode = "min",
        storage: str | os.PathLike[str] | Storage | None = None,
        sampler: Sampler | None = None,
        pruner: Pruner | None = None,
        seed: int | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        retry_stale: bool = True,
    ) -> None:
        self.name = check_study_name(name)
        self.space = SearchSpace.coerce(search_space)
        self.directions = parse_mode(mode)
        if sampler is not None and not isinstance(sampler, Sampler):
            raise ArgumentTypeError(f"`sampler` must be a lightning_hpo Sampler, but got {sampler!r}.")
        if pruner is not None and not isinstance(pruner, Pruner):
            raise ArgumentTypeError(f"`pruner` must be a lightning_hpo Pruner, but got {pruner!r}.")
        if isinstance(grace_period, bool) or not isinstance(grace_period, (int, float)) or not grace_period > 0:
            raise InvalidArgumentError(
                f"`grace_period > 0` (seconds) must hold, but got grace_period={grace_period!r}."
            )
        self.sampler = sampler if sampler is not None else GPSampler(seed=seed)
        self.pruner = pruner if pruner is not None else ASHAPruner()
        self.grace_period = float(grace_period)
        self.retry_stale = bool(retry_stale)
        self.storage = open_storage(storage)
        record = self.storage.get_or_create_study(self.name, self.space.to_json(), self.directions)
        self._check_matches(record.space, record.directions)
        self._study_id = record.id
        self._worker = worker_id()
        self._heartbeat = _Heartbeat(self.storage, HEARTBEAT_INTERVAL)
        self.fail_stale_trials()

    def _check_matches(self, stored_space: Mapping[str, Any], stored_directions: Sequence[str]) -> None:
        problems = []
        if tuple(stored_directions) != self.directions:
            problems.append(f"mode {_mode_text(stored_directions)} (now {_mode_text(self.directions)})")
        if json.dumps(stored_space, sort_keys=True) != self.space.fingerprint():
            now = json.loads(self.space.fingerprint())
            changed = sorted(n for n in set(stored_space) | set(now) if stored_space.get(n) != now.get(n))
            details = "; ".join(
                f"{n}: {_domain_text(stored_space.get(n))} -> {_domain_text(now.get(n))}" for n in changed
            )
            problems.append(f"a different search space ({details})")
        if problems:
            raise StudyMismatchError(
                f"Study {self.name!r} in {self.storage.display_url} was created with "
                + " and ".join(problems)
                + ". A study's space and mode are fixed: pick a new study name for the new set-up."
            )

    # -- reading ---------------------------------------------------------------------------

    @property
    def direction(self) -> str:
        """``"min"`` or ``"max"`` for a single-objective study."""
        if len(self.directions) != 1:
            raise AttributeError(f"Study {self.name!r} has {len(self.directions)} objectives: use `.directions`.")
        return self.directions[0]

    @property
    def trials(self) -> list[Trial]:
        """Every trial of the study, in number order, with its parameters decoded."""
        return self._decode(self.storage.get_trials(self._study_id))

    def get_trials(self, states: Sequence[TrialState] | None = None) -> list[Trial]:
        return self._decode(self.storage.get_trials(self._study_id, states))

    def _decode(self, trials: Sequence[Trial]) -> list[Trial]:
        return [replace(t, params=self.space.from_stored(t.params)) for t in trials]

    @property
    def best_trial(self) -> Trial:
        """The COMPLETE trial with the best value (the lowest number among ties)."""
        if len(self.directions) != 1:
            raise InvalidArgumentError(
                f"Study {self.name!r} has {len(self.directions)} objectives, so no single best trial: "
                "use `.best_trials` (the Pareto set)."
            )
        minimize = self.direction == "min"
        completed = [t for t in self.get_trials([TrialState.COMPLETE]) if t.value is not None]
        if not completed:
            raise InvalidArgumentError(f"Study {self.name!r} has no COMPLETE trial yet, so it has no best trial.")
        return min(completed, key=lambda t: (t.value if minimize else -t.value, t.number))

    @property
    def best_trials(self) -> list[Trial]:
        """The COMPLETE trials that no other COMPLETE trial beats, in number order.

        With several objectives this is the Pareto set: no other trial is at least as good in
        every objective and better in one. With one objective it is the trials with the best value.
        Empty while no trial has completed.
        """
        from lightning_hpo.pareto import minimization_form, non_dominated_mask

        completed = [t for t in self.get_trials([TrialState.COMPLETE]) if t.values is not None]
        if not completed:
            return []
        keep = non_dominated_mask(minimization_form([t.values for t in completed], self.directions))
        return [t for t, kept in zip(completed, keep) if kept]

    def _resolve(self, trial: Trial | int) -> Trial:
        if isinstance(trial, Trial) and trial.id >= 0:
            return trial
        number = trial.number if isinstance(trial, Trial) else trial
        if not isinstance(number, int) or isinstance(number, bool):
            raise ArgumentTypeError(f"Expected a Trial or a trial number, but got {trial!r}.")
        for stored in self.storage.get_trials(self._study_id):
            if stored.number == number:
                return stored
        raise InvalidArgumentError(f"Study {self.name!r} has no trial number {number}.")

    # -- ask / tell ------------------------------------------------------------------------

    def ask(self, params: Mapping[str, Any] | None = None) -> Trial:
        """Start a RUNNING trial, with the sampler's parameters or the given ``params``."""
        trial = self._start_trial(params=params)
        assert trial is not None  # no max_active, so a trial is always created
        return trial

    def _start_trial(self, *, params: Mapping[str, Any] | None = None, max_active: int | None = None) -> Trial | None:
        if params is not None:
            self.space.check_params(params)
        self.fail_stale_trials()
        if params is None and self.retry_stale:
            retry = self._start_retry(max_active)
            if retry is not None:
                return retry
        created = self.storage.create_trial(
            self._study_id,
            worker=self._worker,
            params=None if params is None else self.space.to_stored(params),
            max_active=max_active,
        )
        if created is None:
            return None
        self._own(created.id)
        try:
            if params is None:
                params = self._sample(created.number)
                self.storage.set_trial_params(created.id, self.space.to_stored(params))
        except BaseException as error:
            self._finish(created, TrialState.FAIL, error=f"The sampler failed:\n{_format_exception(error)}")
            raise
        return replace(created, params=dict(params))

    def _start_retry(self, max_active: int | None) -> Trial | None:
        """Start the retry of the oldest stale trial that has none yet, if there is one."""
        for stale in self.storage.get_trials(self._study_id, [TrialState.FAIL]):
            if not (
                (stale.error or "").startswith(_STALE_PREFIX)
                and "retry_of" not in stale.attrs
                and "retried_by" not in stale.attrs
                and len(stale.params) == len(self.space)
            ):
                continue
            # Storage makes the claim atomic: if another worker retried it first, sample a new trial instead.
            created = self.storage.create_trial(
                self._study_id, worker=self._worker, params=stale.params, max_active=max_active, retry_of=stale.number
            )
            if created is None:
                return None
            self._own(created.id)
            # Saves the next workers a look at the stale trial (the claim above is what guarantees "once").
            self.storage.update_trial(stale.id, attrs={"retried_by": created.number})
            return replace(created, params=self.space.from_stored(created.params))
        return None

    def _sample(self, number: int) -> dict[str, Any]:
        history = [t for t in self.trials if t.number != number and len(t.params) == len(self.space)]
        params = self.sampler.sample(self.space, history, number=number, directions=self.directions)
        self.space.check_params(params)
        return params

    def report(self, trial: Trial | int, step: int, value: Any) -> None:
        """Store an intermediate value of a RUNNING trial (``nan`` is kept: pruners treat it as divergence).

        ``value`` is a number, or with several objectives a sequence of one number per objective,
        in the order of ``mode``: ``study.report(trial, step, (val_loss, n_params))``.
        """
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 2**63:
            raise InvalidArgumentError(f"`step` must be an int in [0, 2**63), but got {step!r}.")
        values = self._objective_values(value, "A reported value")
        self.storage.report(self._resolve(trial).id, step, values[0] if len(values) == 1 else values)

    def should_prune(self, trial: Trial | int) -> bool:
        """Ask the pruner whether this RUNNING trial should stop, from what storage holds now."""
        if not self.pruner.can_prune:
            return False
        stored = self._resolve(trial)
        trials = self.storage.get_trials(self._study_id)
        current = next(t for t in trials if t.id == stored.id)
        return bool(self.pruner.prune(current, trials, directions=self.directions))

    def tell(
        self,
        trial: Trial | int,
        value: Any = None,
        *,
        state: TrialState | None = None,
        error: str | None = None,
    ) -> Trial:
        """Finish a RUNNING trial and return it as stored.

        * ``tell(trial, 0.12)``: COMPLETE with that value (a tuple for several objectives).
        * ``tell(trial, state=TrialState.COMPLETE)``: COMPLETE with its best intermediate value
          (with several objectives: its latest reported vector of finite values).
        * ``tell(trial, state=TrialState.PRUNED)``: PRUNED; its value is taken as for COMPLETE.
        * ``tell(trial, state=TrialState.FAIL, error="why")``.

        A nan or infinite value makes the trial FAIL with that reason: it never reaches a sampler.
        Telling a trial that already finished raises :class:`~lightning_hpo.exceptions.TrialStateError`.
        """
        stored = self._resolve(trial)
        if state is not None and not isinstance(state, TrialState):
            raise ArgumentTypeError(f"`state` must be a TrialState, but got {state!r}.")
        if state is TrialState.RUNNING:
            raise InvalidArgumentError("`state` must be COMPLETE, PRUNED or FAIL; a trial starts RUNNING.")
        if state is None:
            if value is None:
                raise InvalidArgumentError("tell() needs a value or a state (COMPLETE, PRUNED or FAIL).")
            state = TrialState.COMPLETE
        if state is TrialState.FAIL:
            return self._finish(stored, TrialState.FAIL, error=error or "Failed (no reason given).")
        if value is None:
            value = self._best_intermediate(stored)
            if value is None and state is TrialState.COMPLETE:
                raise InvalidArgumentError(
                    f"Trial {stored.number} has no finite intermediate value, so tell() needs an explicit value."
                )
        values = None if value is None else self._objective_values(value)
        bad = [v for v in values or () if not math.isfinite(v)]
        if bad:
            return self._finish(stored, TrialState.FAIL, error=f"The objective returned {bad[0]}, which is not finite.")
        return self._finish(stored, state, values=values)

    def _best_intermediate(self, trial: Trial) -> float | tuple[float, ...] | None:
        """A trial's value from its reports: the best one, or with several objectives the latest finite vector.

        Several objectives have no single best report (two reports may each beat the other in one
        objective), so the latest one stands for where training ended, as a trial's last
        checkpoint does.
        """
        current = self.storage.get_trial(trial.id)
        if len(self.directions) == 1:
            return current.best_intermediate(minimize=self.directions[0] == "min")
        finite = [v for _, v in sorted(current.intermediate_vectors.items()) if all(map(math.isfinite, v))]
        return finite[-1] if finite else None

    def _objective_values(self, value: Any, what: str = "The objective value") -> tuple[float, ...]:
        """One float per objective from a number (one objective) or a sequence, array or tensor of them."""
        if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:  # numpy arrays, torch tensors
            value = value.tolist()
        k = len(self.directions)
        if k == 1:
            if isinstance(value, (list, tuple)) and len(value) == 1:
                value = value[0]
            elif isinstance(value, (list, tuple)):
                raise InvalidArgumentError(
                    f"Study {self.name!r} has one objective, so {what.lower()} must be one number, but got {value!r}."
                )
            return (_as_float(value, what),)
        if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != k:
            raise InvalidArgumentError(
                f"Study {self.name!r} has {k} objectives (mode={_mode_text(self.directions)}), so {what.lower()} must "
                f"be a sequence of {k} numbers, one per objective in that order, but got {value!r}."
            )
        return tuple(_as_float(v, f"{what} {i}") for i, v in enumerate(value))

    def _finish(
        self, trial: Trial, state: TrialState, *, values: Sequence[float] | None = None, error: str | None = None
    ) -> Trial:
        try:
            finished = self.storage.finish_trial(trial.id, state, values=values, error=error)
        finally:
            self._disown(trial.id)
        return replace(finished, params=self.space.from_stored(finished.params))

    # -- liveness --------------------------------------------------------------------------

    def _own(self, trial_id: int) -> None:
        with _OWN_TRIALS_LOCK:
            _OWN_TRIALS.add((self.storage.display_url, trial_id))
        if not getattr(self.storage, "in_memory", False):
            self._heartbeat.add(trial_id)

    def _disown(self, trial_id: int) -> None:
        with _OWN_TRIALS_LOCK:
            _OWN_TRIALS.discard((self.storage.display_url, trial_id))
        self._heartbeat.discard(trial_id)

    def _is_dead(self, trial: Trial, now: datetime) -> str | None:
        """Why a RUNNING trial is dead, or None while it may be alive."""
        host, _, pid_text = (trial.worker or "").rpartition(":")
        if host == socket.gethostname() and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                with _OWN_TRIALS_LOCK:
                    if (self.storage.display_url, trial.id) not in _OWN_TRIALS:
                        return "its worker (this process) no longer runs it"
            elif not _pid_alive(pid):
                return f"its worker process {trial.worker} is gone"
        if trial.heartbeat is not None and (now - trial.heartbeat).total_seconds() > self.grace_period:
            return f"no heartbeat from {trial.worker} for more than {self.grace_period:g} s"
        return None

    def fail_stale_trials(self) -> list[int]:
        """Mark FAIL (stale) every RUNNING trial whose worker is dead; return their numbers."""
        now = datetime.now(timezone.utc)
        failed = []
        for trial in self.storage.get_trials(self._study_id, [TrialState.RUNNING]):
            reason = self._is_dead(trial, now)
            if reason is None:
                continue
            try:
                self.storage.finish_trial(trial.id, TrialState.FAIL, error=f"{_STALE_PREFIX}{reason}.")
                failed.append(trial.number)
            except TrialStateError:
                pass  # another worker finished or reaped it first
        return failed

    # -- the loop --------------------------------------------------------------------------

    def optimize(
        self,
        fn: Objective,
        n_trials: int | None = None,
        timeout: float | None = None,
        *,
        max_consecutive_failures: int | None = 5,
        trial_timeout: float | None = None,
        show_progress: bool = False,
    ) -> None:
        """Run ``fn(params) -> value`` on new trials until the study has ``n_trials`` finished trials.

        ``n_trials`` counts COMPLETE and PRUNED trials of the whole study, from every run and every
        worker, so rerunning the same call resumes rather than starts over. Failed trials don't
        count. ``fn`` may raise :class:`~lightning_hpo.TrialPruned` to end its trial as PRUNED.

        Args:
            fn: the objective, called with a dict of parameters.
            n_trials: the number of finished trials to reach; ``None`` runs until ``timeout``.
            timeout: seconds after which no new trial starts.
            max_consecutive_failures: stop with :class:`~lightning_hpo.exceptions.TrialsFailingError`
                after this many failures in a row in this process (``None``: never).
            trial_timeout: seconds after which a running trial is stopped and marked FAIL
                (uses SIGALRM: main thread, POSIX only).
            show_progress: show a live progress display.
        """
        if not callable(fn):
            raise ArgumentTypeError(f"`fn` must be callable, but got {fn!r}.")

        def run(trial: Trial) -> Trial:
            try:
                value = fn(dict(trial.params))
            except TrialPruned:
                return self.tell(trial, state=TrialState.PRUNED)
            return self.tell(trial, value)

        self.run_trials(
            run,
            n_trials=n_trials,
            timeout=timeout,
            max_consecutive_failures=max_consecutive_failures,
            trial_timeout=trial_timeout,
            show_progress=show_progress,
        )

    def run_trials(
        self,
        run: Callable[[Trial], Trial],
        *,
        n_trials: int | None,
        timeout: float | None,
        max_consecutive_failures: int | None = 5,
        trial_timeout: float | None = None,
        show_progress: bool = False,
        progress_label: str | None = None,
    ) -> None:
        """The trial loop shared by :meth:`optimize` and the Tuner.

        ``run`` gets a RUNNING trial and must return it finished. An exception from ``run`` fails
        the trial with its traceback and the loop goes on, except for lightning_hpo's own errors
        (a misconfiguration, which no other trial would escape), which end the loop at once;
        :class:`~lightning_hpo.exceptions.TrialError` (e.g. a trial timeout) fails the trial only.
        Ctrl-C fails the running trial ("interrupted") and is re-raised.
        """
        n_trials = _check_optional_positive_int("n_trials", n_trials)
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise InvalidArgumentError(f"`timeout` must be a number of seconds > 0 or None, but got {timeout!r}.")
        max_consecutive_failures = _check_optional_positive_int("max_consecutive_failures", max_consecutive_failures)
        if trial_timeout is not None and (
            isinstance(trial_timeout, bool) or not isinstance(trial_timeout, (int, float)) or not trial_timeout > 0
        ):
            raise InvalidArgumentError(
                f"`trial_timeout` must be a number of seconds > 0 or None, but got {trial_timeout!r}."
            )
        from lightning_hpo.progress import StudyProgress

        deadline = None if timeout is None else time.monotonic() + timeout
        failures_in_a_row = 0
        with StudyProgress(self, n_trials=n_trials, enabled=show_progress, label=progress_label) as progress:
            while deadline is None or time.monotonic() < deadline:
                trial = self._start_trial(max_active=n_trials)
                if trial is None:  # the others' running trials fill n_trials: wait for them
                    if self._n_finished() >= n_trials:
                        break
                    time.sleep(_POLL_INTERVAL)
                    continue
                progress.started(trial)
                finished = self._run_one(run, trial, trial_timeout)
                progress.finished(finished)
                if finished.state is TrialState.FAIL:
                    failures_in_a_row += 1
                    if max_consecutive_failures is not None and failures_in_a_row >= max_consecutive_failures:
                        raise TrialsFailingError(
                            f"{failures_in_a_row} trials in a row failed, so study {self.name!r} stops. "
                            f"The last one, trial {finished.number}, failed with:\n{finished.error}"
                        )
                else:
                    failures_in_a_row = 0

    def _run_one(self, run: Callable[[Trial], Trial], trial: Trial, trial_timeout: float | None) -> Trial:
        try:
            with _deadline(trial_timeout):
                finished = run(trial)
        except KeyboardInterrupt:
            self._fail_if_running(trial, "Interrupted by the user (KeyboardInterrupt).")
            raise
        except TrialError as error:
            return self._fail_if_running(trial, _format_exception(error))
        except LightningHPOError as error:
            self._fail_if_running(trial, _format_exception(error))
            raise
        except Exception as error:  # noqa: BLE001 - user code: the trial fails, the study goes on
            return self._fail_if_running(trial, _format_exception(error))
        except BaseException:
            self._fail_if_running(trial, "Interrupted (the process was asked to exit).")
            raise
        if not isinstance(finished, Trial) or not finished.state.is_finished:
            return self._fail_if_running(trial, "The trial function returned without finishing the trial.")
        return finished

    def _fail_if_running(self, trial: Trial, error: str) -> Trial:
        try:
            return self._finish(trial, TrialState.FAIL, error=error)
        except TrialStateError:
            return self._decode([self.storage.get_trial(trial.id)])[0]

    def _n_finished(self) -> int:
        return len(self.storage.get_trials(self._study_id, [TrialState.COMPLETE, TrialState.PRUNED]))

    def __getstate__(self) -> dict[str, Any]:
        # Sent to spawned processes (ddp_spawn, n_jobs): the heartbeat thread stays behind.
        state = self.__dict__.copy()
        del state["_heartbeat"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._worker = worker_id()  # this process runs its trials now, not the one that sent the study
        self._heartbeat = _Heartbeat(self.storage, HEARTBEAT_INTERVAL)

    def __repr__(self) -> str:
        return f"Study({self.name!r}, mode={_mode_text(self.directions)}, storage={self.storage.display_url!r})"


def _domain_text(data: Mapping[str, Any] | None) -> str:
    from lightning_hpo.space import domain_from_json

    return "absent" if data is None else repr(domain_from_json(data))


def _mode_text(directions: Sequence[str]) -> str:
    return repr(directions[0]) if len(directions) == 1 else repr(list(directions))


def _check_optional_positive_int(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"`{name}` must be an int or None, but got {value!r} ({type(value).__name__}).")
    if value < 1:
        raise InvalidArgumentError(f"`{name} >= 1` must hold, but got {name}={value!r}.")
    return value


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


def _format_exception(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
