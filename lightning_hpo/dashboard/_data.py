"""What the dashboard sends: studies and trials as JSON-safe dicts, and the feed of what changed.

Everything is read through :meth:`StudySnapshot.load <lightning_hpo.snapshot.StudySnapshot.load>`,
the read-only path the console script and the plots use; nothing here writes to storage.
"""

from __future__ import annotations

import json
import math
import shlex
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lightning_hpo.export import CONFIG_ATTR, LOGGER_DIR_ATTR, _plain, retrain_command
from lightning_hpo.snapshot import StudySnapshot
from lightning_hpo.storage import Storage
from lightning_hpo.trial import PRUNED_STEP, Trial, TrialState

__all__ = ["StudyFeed", "find_trial", "plain_mapping", "study_summary", "trial_detail", "trial_row"]


def _number(value: float | None) -> float | None:
    """JSON has no nan or infinity: they travel as null."""
    return value if value is not None and math.isfinite(value) else None


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _last_activity(trial: Trial) -> datetime | None:
    times = [t for t in (trial.datetime_start, trial.datetime_complete, trial.heartbeat) if t is not None]
    return max(times) if times else None


def trial_row(trial: Trial) -> dict[str, Any]:
    """What the study page shows of a trial: its table row and its points in the charts.

    The heartbeat is left out on purpose: it changes every few seconds while nothing else does, and
    a live update sends only the trials whose row changed.
    """
    note = ""
    if trial.state is TrialState.FAIL and trial.error:
        note = trial.error.strip().splitlines()[-1][:200]
    elif trial.state is TrialState.PRUNED:
        note = f"pruned at step {trial.attrs.get(PRUNED_STEP, trial.last_step)}"
    return {
        "number": trial.number,
        "state": trial.state.value,
        "values": [_number(v) for v in trial.values] if trial.values is not None else None,
        "params": {name: _plain(value) for name, value in trial.params.items()},
        "curve": [[step, _number(value)] for step, value in sorted(trial.intermediate_values.items())],
        "start": _time(trial.datetime_start),
        "end": _time(trial.datetime_complete),
        "duration": trial.duration,
        "note": note,
    }


def trial_detail(trial: Trial, snapshot: StudySnapshot, display_url: str) -> dict[str, Any]:
    """Everything the trial page shows: its row, the traceback, paths, and how to retrain it."""
    export = (
        f"lightning-hpo export --storage {shlex.quote(display_url)} --study {shlex.quote(snapshot.name)} "
        f"--trial {trial.number}"
    )
    config_file = f"trial_{trial.number}.yaml"
    retrain = retrain_command(trial, config_file)
    return {
        **trial_row(trial),
        "study": snapshot.name,
        "directions": list(snapshot.directions),
        "labels": [snapshot.objective_label(i) for i in range(len(snapshot.directions))],
        "vectors": [
            [step, [_number(v) for v in vector]] for step, vector in sorted(trial.intermediate_vectors.items())
        ],
        "error": trial.error,
        "worker": trial.worker,
        "log_dir": trial.attrs.get(LOGGER_DIR_ATTR) or trial.log_dir,
        "checkpoint": trial.checkpoint_path,
        "export_command": f"{export} --output {config_file}"
        + ("" if trial.state is TrialState.COMPLETE else " --force"),
        "retrain_command": retrain,
        "has_config": trial.attrs.get(CONFIG_ATTR) is not None,
    }


def study_summary(snapshot: StudySnapshot) -> dict[str, Any]:
    """A line of the studies page: mode, trials by state, best value, last activity."""
    counts = {state.value: 0 for state in TrialState}
    for trial in snapshot.trials:
        counts[trial.state.value] += 1
    best = snapshot.best_trials
    activity = [t for t in map(_last_activity, snapshot.trials) if t is not None]
    return {
        "name": snapshot.name,
        "directions": list(snapshot.directions),
        "labels": [snapshot.objective_label(i) for i in range(len(snapshot.directions))],
        "params": list(snapshot.space.names),
        "n_trials": len(snapshot.trials),
        "states": counts,
        "best_values": [_number(v) for v in best[0].values] if len(snapshot.directions) == 1 and best else None,
        "best_number": best[0].number if len(snapshot.directions) == 1 and best else None,
        "best_numbers": [t.number for t in best],
        "last_activity": _time(max(activity)) if activity else None,
    }


@dataclass
class _StudyState:
    """The rows last read of one study, and the version at which each last changed."""

    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    changed_at: dict[int, int] = field(default_factory=dict)
    snapshot: StudySnapshot | None = None
    read_at: float = -math.inf
    read_seconds: float = 0.0
    reading: bool = False
    full_json: bytes | None = None  # the answer to since=0 for this read
    latest: int | None = None  # the newest version in changed_at, once computed for this read
    summary: dict[str, Any] = field(default_factory=dict)
    first_read: threading.Lock = field(default_factory=threading.Lock)


class StudyFeed:
    """The trials of the studies in one storage, read again in the background while clients poll.

    Each read bumps a version for every trial whose row changed, so a client polling with the
    version it last saw (``since``) receives only the new and changed trials, however many clients
    watch and however large the study. Versions count up from 1 for the life of the server; a
    client whose ``since`` is ahead (the server restarted) gets everything again.

    Only the first look at a study waits for a read. After that a poll answers from the last read
    at once and, when that read is older than ``min_interval`` (or twice as long as the read took,
    so a huge study never keeps a core busy), starts the next read in a thread: a change reaches
    the page one poll later.

    Args:
        storage: where the studies are.
        min_interval: the shortest time between two reads of one study.
        background: read again in a thread (the server); ``False`` reads in the caller (tests, benchmarks).
    """

    def __init__(self, storage: Storage, *, min_interval: float = 0.5, background: bool = True) -> None:
        self.storage = storage
        self.min_interval = min_interval
        self.background = background
        self._version = 0
        self._studies: dict[str, _StudyState] = {}
        self._lock = threading.Lock()

    def preload(self) -> None:
        """Read every study of the storage once."""
        for record in self.storage.list_studies():
            self._fresh(record.name)

    def snapshot(self, name: str) -> StudySnapshot:
        """The study as last read."""
        state = self._fresh(name)
        with self._lock:
            return state.snapshot  # type: ignore[return-value]

    def summary(self, name: str) -> dict[str, Any]:
        """The study's line on the studies page, as of the last read."""
        state = self._fresh(name)
        with self._lock:
            return state.summary

    def changes(self, name: str, since: int = 0) -> dict[str, Any]:
        """The study's summary, the trials changed after version ``since``, and the current version."""
        return json.loads(self.changes_json(name, since))

    def changes_json(self, name: str, since: int = 0) -> bytes:
        """:meth:`changes` as the JSON the server sends; the answer with every trial is encoded once per read."""
        state = self._fresh(name)
        with self._lock:
            reset = since > self._version or since < 0
            if reset or since == 0:
                if state.full_json is None:
                    state.full_json = self._encode(state, 0, reset=True)
                return state.full_json
            return self._encode(state, since, reset=False)

    def _encode(self, state: _StudyState, since: int, *, reset: bool) -> bytes:
        latest = max(state.changed_at.values(), default=0) if state.latest is None else state.latest
        state.latest = latest
        rows = [] if since >= latest else [state.rows[n] for n, v in state.changed_at.items() if v > since]
        rows.sort(key=lambda row: row["number"])
        answer = {
            "study": state.summary,
            "version": self._version,
            "reset": reset,
            "trials": rows,
        }
        return json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

    def _fresh(self, name: str) -> _StudyState:
        """The study's state: read now if never read, else read again (in the background) when due."""
        with self._lock:
            state = self._studies.setdefault(name, _StudyState())
            first = state.snapshot is None
            due = not first and not state.reading
            due = due and time.monotonic() - state.read_at >= max(self.min_interval, 2 * state.read_seconds)
            if due:
                state.reading = True
        if first:
            with state.first_read:  # callers that come during the first read wait for it
                if state.snapshot is None:
                    try:
                        self._read(name, state)
                    except Exception:
                        with self._lock:  # a name that is no study leaves nothing behind
                            self._studies.pop(name, None)
                        raise
        elif due and self.background:
            threading.Thread(target=self._read, args=(name, state), daemon=True).start()
        elif due:
            self._read(name, state)
        return state

    def _read(self, name: str, state: _StudyState) -> None:
        began = time.monotonic()
        try:
            snapshot = StudySnapshot.load(self.storage, name)
            rows = {t.number: trial_row(t) for t in snapshot.trials}
            summary = study_summary(snapshot)
        finally:
            with self._lock:
                state.reading = False
        with self._lock:
            changed = [n for n, row in rows.items() if state.rows.get(n) != row]
            if changed:
                self._version += 1
                for number in changed:
                    state.changed_at[number] = self._version
            state.rows, state.snapshot, state.summary = rows, snapshot, summary
            state.full_json, state.latest = None, None
            state.read_at, state.read_seconds = time.monotonic(), time.monotonic() - began


def find_trial(snapshot: StudySnapshot, number: int) -> Trial | None:
    """Trial ``number`` of the snapshot, or ``None``."""
    for trial in snapshot.trials:
        if trial.number == number:
            return trial
    return None


def plain_mapping(mapping: Mapping[str, float]) -> dict[str, float | None]:
    """``mapping`` with its nan and infinite values as ``None`` (JSON has neither)."""
    return {key: _number(value) for key, value in mapping.items()}
