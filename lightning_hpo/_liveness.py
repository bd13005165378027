"""Which RUNNING trials are alive: heartbeats, reaping the trials of dead workers, and retrying them once.

A worker tells storage every :data:`HEARTBEAT_INTERVAL` seconds that its trials are alive (a
daemon thread). Any worker may then mark another's RUNNING trial FAIL ("stale"): at once when the
trial's process ran on this machine and is gone (or is this process, which no longer runs it), and
after ``grace_period`` seconds without a heartbeat otherwise. The next trial a worker starts may be
the retry of such a trial, with the same parameters; storage makes that claim atomic, so a trial is
retried at most once.

A trial with resumable checkpoints (``attrs["resume_dir"]``, see :mod:`lightning_hpo._resume`) is
*resumed* rather than rerun: its retry shares its directory and continues from its newest
checkpoint. Such a trial is also resumed after a signal stopped it (its error starts with
"Interrupted"), and a resumed trial that is interrupted in turn is resumed again, as long as it
makes progress: after :data:`~lightning_hpo._resume.MAX_STALLED_INTERRUPTIONS` interruptions in a
row without a new checkpoint it stays FAIL, with the reason in ``attrs["not_resumed"]``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import Any

from lightning_hpo._resume import MAX_STALLED_INTERRUPTIONS, newest_step
from lightning_hpo.exceptions import TrialStateError
from lightning_hpo.storage import Storage
from lightning_hpo.trial import (
    FAIL_KIND,
    NOT_RESUMED,
    RESUME_DIR,
    RESUMED_AT_STEP,
    RETRIED_BY,
    RETRY_OF,
    STALLED_INTERRUPTIONS,
    Trial,
    TrialState,
)

__all__ = ["TrialLiveness", "worker_id", "DEFAULT_GRACE_PERIOD", "HEARTBEAT_INTERVAL"]

#: Seconds without a heartbeat after which a RUNNING trial counts as dead (its worker was killed).
DEFAULT_GRACE_PERIOD = 60.0
#: Seconds between heartbeats of a running trial.
HEARTBEAT_INTERVAL = 10.0
# How the error of a trial failed for want of heartbeats begins.
_STALE_PREFIX = "Stale: "
# How the error of a trial stopped by Ctrl-C or a signal begins (see lightning_hpo._loop and _resume).
_INTERRUPTED_PREFIX = "Interrupted"

# Trials being run by this process, by storage id, across all studies: anything else RUNNING
# under this process's worker id was left behind (e.g. by an exception) and is dead.
_OWN_TRIALS: set[tuple[str, int]] = set()
_OWN_TRIALS_LOCK = threading.Lock()


def _store_key(storage: Storage) -> str:
    """Which database a trial id belongs to: its URL, but a database private to its storage object (in
    memory) is one of its own: such databases all share the URL ``sqlite://``, and their ids start at 1."""
    return storage.display_url if storage.shareable_across_processes else f"private:{id(storage)}"


def worker_id() -> str:
    """``host:pid`` of this process, stored with each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
                logging.getLogger(__name__).warning("lightning_hpo: heartbeat failed: %s", error)


class TrialLiveness:
    """The liveness of one study's trials, as seen by this worker.

    Args:
        storage: the study's storage.
        study_id: the study's id in ``storage``.
        grace_period: seconds without a heartbeat after which another worker's RUNNING trial is dead.
    """

    def __init__(self, storage: Storage, study_id: int, *, grace_period: float) -> None:
        self.storage = storage
        self.study_id = study_id
        self.grace_period = grace_period
        self.worker = worker_id()
        self._heartbeat = _Heartbeat(storage, HEARTBEAT_INTERVAL)

    def own(self, trial_id: int) -> None:
        """This process runs the trial now: keep it alive."""
        with _OWN_TRIALS_LOCK:
            _OWN_TRIALS.add((_store_key(self.storage), trial_id))
        if self.storage.shareable_across_processes:  # no other process can see it otherwise
            self._heartbeat.add(trial_id)

    def disown(self, trial_id: int) -> None:
        with _OWN_TRIALS_LOCK:
            _OWN_TRIALS.discard((_store_key(self.storage), trial_id))
        self._heartbeat.discard(trial_id)

    def fail_stale_trials(self) -> list[int]:
        """Mark FAIL (stale) every RUNNING trial whose worker is dead; return their numbers."""
        now = datetime.now(timezone.utc)
        failed = []
        for trial in self.storage.get_trials(self.study_id, [TrialState.RUNNING]):
            reason = self._why_dead(trial, now)
            if reason is None:
                continue
            try:
                self.storage.finish_trial(trial.id, TrialState.FAIL, error=f"{_STALE_PREFIX}{reason}.")
                self.storage.update_trial(trial.id, attrs={FAIL_KIND: "stale"})
                failed.append(trial.number)
            except TrialStateError:
                pass  # another worker finished or reaped it first
        return failed

    def _why_dead(self, trial: Trial, now: datetime) -> str | None:
        """Why a RUNNING trial is dead, or None while it may be alive."""
        host, _, pid_text = (trial.worker or "").rpartition(":")
        if host == socket.gethostname() and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                with _OWN_TRIALS_LOCK:
                    if (_store_key(self.storage), trial.id) not in _OWN_TRIALS:
                        return "its worker (this process) no longer runs it"
            elif not _pid_alive(pid):
                return f"its worker process {trial.worker} is gone"
        if trial.heartbeat is not None and (now - trial.heartbeat).total_seconds() > self.grace_period:
            return f"no heartbeat from {trial.worker} for more than {self.grace_period:g} s"
        return None

    def start_retry(self, max_active: int | None) -> Trial | None:
        """Start the retry of the oldest stale trial that has none yet (its params as stored), if there is one.

        Returns ``None`` when every stale trial has a retry (claimed by this worker or another), or when
        the study already holds ``max_active`` trials.

        A stale trial that died before its parameters were stored (they are stored all at once) is
        not retried.

        Args:
            max_active: as for :meth:`Storage.create_trial`.
        """
        for stale in self.storage.get_trials(self.study_id, [TrialState.FAIL]):
            if not (_is_retryable(stale) and stale.params):
                continue
            attrs = None
            if RESUME_DIR in stale.attrs:
                stalled = _stalled_interruptions(stale)
                if stalled >= MAX_STALLED_INTERRUPTIONS:
                    reason = (
                        f"interrupted {stalled} times in a row without writing a new checkpoint (the limit is "
                        f"{MAX_STALLED_INTERRUPTIONS}): it is not resumed again."
                    )
                    self.storage.update_trial(stale.id, attrs={NOT_RESUMED: reason})
                    continue
                attrs = {RESUME_DIR: stale.attrs[RESUME_DIR], STALLED_INTERRUPTIONS: stalled}
            # Storage makes the claim atomic. None: another worker retried this one first (then the next
            # stale trial may still need a retry: workers that start together all find the oldest one), or
            # the study holds max_active trials (then every claim fails the same way, and None is returned).
            created = self.storage.create_trial(
                self.study_id,
                worker=self.worker,
                params=stale.params,
                max_active=max_active,
                retry_of=stale.number,
                attrs=attrs,
            )
            if created is None:
                continue
            self.own(created.id)
            # Saves the next workers a look at the stale trial (the claim above is what guarantees "once").
            self.storage.update_trial(stale.id, attrs={RETRIED_BY: created.number})
            return created
        return None

    def __getstate__(self) -> dict[str, Any]:
        # Sent to spawned processes (ddp_spawn, n_jobs): the heartbeat thread stays behind.
        state = self.__dict__.copy()
        del state["_heartbeat"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.worker = worker_id()  # this process runs its trials now, not the one that sent the study
        self._heartbeat = _Heartbeat(self.storage, HEARTBEAT_INTERVAL)


def _is_retryable(trial: Trial) -> bool:
    """Whether a FAIL trial is run again: a stale one once; a resumable one also after a signal, and again and again."""
    if RETRIED_BY in trial.attrs or NOT_RESUMED in trial.attrs:
        return False
    error = trial.error or ""
    if RESUME_DIR in trial.attrs:
        return error.startswith((_STALE_PREFIX, _INTERRUPTED_PREFIX))
    return error.startswith(_STALE_PREFIX) and RETRY_OF not in trial.attrs


def _stalled_interruptions(trial: Trial) -> int:
    """The interruptions in a row, up to and including ``trial``'s, after which no newer checkpoint was written."""
    newest = newest_step(trial.attrs[RESUME_DIR])
    started_at = trial.attrs.get(RESUMED_AT_STEP)
    progressed = newest is not None and (started_at is None or newest > started_at)
    return 0 if progressed else int(trial.attrs.get(STALLED_INTERRUPTIONS, 0)) + 1
