"""The feed of what changed in the studies of one storage: what the study page polls.

The feed reads :meth:`Storage.get_trial_overviews` and :meth:`Storage.get_trial_curves` (what a table
row and a chart show, without decoding every intermediate value) and keeps each trial's row and curve
(:mod:`lightning_hpo.dashboard._rows` makes them); importance and a trial's page read through the same
paths as the console script and the plots. Nothing here writes to storage.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import json
import math
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from lightning_hpo.dashboard._rows import (
    COMPACT,
    ROW_ATTRS,
    Row,
    finite_curve,
    study_summary,
    trial_detail,
    trial_row,
    trials_json,
    updated_summary,
)
from lightning_hpo.snapshot import StudySnapshot
from lightning_hpo.space import SearchSpace
from lightning_hpo.storage import Storage, StudyRecord
from lightning_hpo.storage.base import TrialOverview
from lightning_hpo.trial import Trial, TrialState

__all__ = ["StudyFeed"]


@dataclass
class _StudyState:
    """What the feed last read of one study: each trial's row and curve, and the version at which each last changed.

    ``overview`` holds the trials as :meth:`Storage.get_trial_overviews` reads them (stored parameters,
    only :data:`ROW_ATTRS`, no intermediate values): enough for the summary, not for importance.
    """

    record: StudyRecord | None = None
    space: SearchSpace | None = None
    overview: dict[int, Trial] = field(default_factory=dict)
    rows: dict[int, Row] = field(default_factory=dict)
    changed_at: dict[int, int] = field(default_factory=dict)
    log: list[tuple[int, int]] = field(default_factory=list)  # (version, number) of each change, in order
    reset_at: int = 0  # the version of the last read that replaced every row: older clients start over
    running_ids: set[int] = field(default_factory=set)
    max_id: int = -1
    summary: dict[str, Any] = field(default_factory=dict)
    read_at: float = -math.inf
    read_seconds: float = 0.0
    read_wall: datetime | None = None  # when the last read began, by the clock trials are stamped with
    full_read_at: float = -math.inf
    full_read_seconds: float = 0.0
    reading: bool = False
    trials_json: str | None = None  # every row and curve, as the answer to since=0 sends them
    first_read: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> StudySnapshot:
        assert self.record is not None and self.space is not None
        trials = tuple(self.overview[n] for n in sorted(self.overview))
        return StudySnapshot(self.record.name, self.space, tuple(self.record.directions), trials)


class StudyFeed:
    """The trials of the studies in one storage, read again in the background while clients poll.

    Each read bumps a version for every trial whose row changed, so a client polling with the
    version it last saw (``since``) receives only the new and changed trials, however many clients
    watch and however large the study. Versions count up from 1 for the life of the server; a
    client whose ``since`` is ahead (the server restarted) gets everything again.

    Only the first look at a study, or one after nobody looked for ``max_age``, waits for a read.
    Otherwise a poll answers from the last read at once and, when that read is older than
    ``min_interval``, starts the next read in a thread: a change reaches the page one poll later.
    That read is incremental: the trials created since, the ones that were running, and the ones
    finished lately (their paths and attrs are written just after they finish), so its cost
    follows the study's activity, not its size. Every ``full_interval``
    (or ten times as long as a full read takes) a full read catches any other change.

    Args:
        storage: where the studies are.
        min_interval: the shortest time between two reads of one study.
        full_interval: the shortest time between two full reads of one study.
        max_age: a read older than this is not answered from but redone first, so that a page opened
            after an idle spell shows the present, not the study as the server last read it; more than
            the pages' polling interval, so that polling pages never wait.
        background: read again in a thread (the server); ``False`` reads in the caller (tests, benchmarks).
    """

    #: How far back an incremental read looks for trials finished since the last read, in seconds:
    #: more than the clocks of the workers and of this server may differ.
    FINISHED_LOOKBACK = 120.0

    def __init__(
        self,
        storage: Storage,
        *,
        min_interval: float = 0.5,
        full_interval: float = 30.0,
        max_age: float = 5.0,
        background: bool = True,
    ) -> None:
        self.storage = storage
        self.min_interval = min_interval
        self.full_interval = full_interval
        self.max_age = max_age
        self.background = background
        self._version = 0
        self._studies: dict[str, _StudyState] = {}
        self._lock = threading.Lock()

    def preload(self) -> None:
        """Read every study of the storage once."""
        for record in self.storage.list_studies():
            self._fresh(record.name)

    def summary(self, name: str) -> dict[str, Any]:
        """The study's line on the studies page, as of the last read."""
        state = self._fresh(name)
        with self._lock:
            return state.summary

    def trial(self, name: str, number: int) -> dict[str, Any] | None:
        """Everything the trial page shows of trial ``number`` (read now), or ``None`` if the study has no such trial."""
        state = self._fresh(name)
        with self._lock:
            trial_id = state.overview[number].id if number in state.overview else None
            snapshot = state.snapshot()
        if trial_id is None:
            return None
        trial = self.storage.get_trial(trial_id)
        trial = replace(trial, params=snapshot.space.from_stored(trial.params))
        return trial_detail(trial, snapshot, self.storage.display_url)

    def n_trials(self, name: str) -> int:
        """How many trials the study had at the last read."""
        state = self._fresh(name)
        with self._lock:
            return len(state.overview)

    def changes(self, name: str, since: int = 0) -> dict[str, Any]:
        """The study's summary, the trials changed after version ``since`` (each with its curve), and the current version."""
        answer = json.loads(self.changes_json(name, since))
        for row, curve in zip(answer["trials"], answer.pop("curves")):
            row["curve"] = curve
        return answer

    def changes_json(self, name: str, since: int = 0) -> bytes:
        """:meth:`changes` as the JSON the server sends, the curves in a list of their own (``curves[i]`` is
        ``trials[i]``'s); the answer with every trial is encoded once per read."""
        state = self._fresh(name)
        with self._lock:
            reset = since > self._version or since < state.reset_at or since <= 0
            if reset:
                if state.trials_json is None:
                    state.trials_json = trials_json([state.rows[n] for n in sorted(state.rows)])
                trials = state.trials_json
            else:  # the log is in version order: the changes after `since` are its tail
                first = bisect.bisect_right(state.log, (since, math.inf))
                trials = trials_json([state.rows[n] for n in sorted({number for _, number in state.log[first:]})])
            head = json.dumps({"study": state.summary, "version": self._version, "reset": reset}, **COMPACT)
        return f"{head[:-1]},{trials}}}".encode()

    def _fresh(self, name: str) -> _StudyState:
        """The study's state: read now if never read, else read again (in the background) when due."""
        with self._lock:
            state = self._studies.setdefault(name, _StudyState())
            first = state.record is None
            now = time.monotonic()
            due = not first and not state.reading and now - state.read_at >= self.min_interval
            stale = now - state.read_at >= self.max_age
            if due:
                state.reading = True
        if first:
            with state.first_read:  # callers that come during the first read wait for it
                if state.record is None:
                    try:
                        self._read(name, state)
                    except Exception:
                        with self._lock:  # a name that is no study leaves nothing behind
                            self._studies.pop(name, None)
                        raise
        elif due and self.background and not stale:
            threading.Thread(target=self._read, args=(name, state), daemon=True).start()
        elif due:
            self._read(name, state)
        return state

    def _rows(
        self,
        record: StudyRecord,
        overviews: list[TrialOverview],
        space: SearchSpace,
        selectors: Mapping[str, Any],
        reading: Future[dict[int, str]],
    ) -> tuple[dict[int, Row], dict[str, Any] | None]:
        """Each trial's row and curve, by number, and the summary of a full read (``None`` without ``selectors``).

        ``reading`` is the database writing the curves (:meth:`Storage.get_trial_curves`), which goes on
        while this thread makes the rows and the summary.
        """
        if not overviews:
            return {}, None if selectors else study_summary(
                StudySnapshot(record.name, space, tuple(record.directions), ())
            )
        rows = [(o.trial, trial_row(o.trial, space.from_stored(o.trial.params))) for o in overviews]
        summary = None
        if not selectors:  # every trial was read: they are the study (in number order)
            trials = tuple(o.trial for o in overviews)
            summary = study_summary(StudySnapshot(record.name, space, tuple(record.directions), trials))
        curves = reading.result()
        n_objectives = len(record.directions)
        finished = {trial.number: (row, finite_curve(curves.get(trial.id, "[]"), n_objectives)) for trial, row in rows}
        return finished, summary

    def _read(self, name: str, state: _StudyState) -> None:
        with _collector_paused(freeze=state.record is None):
            self._read_study(name, state)

    def _read_study(self, name: str, state: _StudyState) -> None:
        began, wall = time.monotonic(), datetime.now(timezone.utc)
        try:
            full = state.record is None or began - state.full_read_at >= max(
                self.full_interval, 10 * state.full_read_seconds
            )
            record = self.storage.get_study(name) if full else state.record
            assert record is not None
            selectors: dict[str, Any] = {}
            if not full:
                assert state.read_wall is not None
                selectors = {
                    "after_id": state.max_id,
                    "ids": state.running_ids,
                    "finished_since": state.read_wall - timedelta(seconds=self.FINISHED_LOOKBACK),
                }
            # A study deleted and created again may get its old id back: its creation time tells them apart.
            same_study = state.record is not None and (state.record.id, state.record.created_at) == (
                record.id,
                record.created_at,
            )
            space = state.space if same_study else SearchSpace.from_json(record.space)
            assert space is not None
            # The curves are read first, in a thread, while this one reads the trials and makes their rows. A
            # trial that finishes between the two reads may lack its last values: finished lately, it is read
            # again (with them) by the next read, which the next poll starts.
            with ThreadPoolExecutor(max_workers=1) as pool:
                reading = pool.submit(self.storage.get_trial_curves, record.id, **selectors)
                overviews = self.storage.get_trial_overviews(record.id, attr_keys=ROW_ATTRS, curves=False, **selectors)
                rows, full_summary = self._rows(record, overviews, space, selectors, reading)
        finally:
            with self._lock:
                state.reading = False
        with self._lock:
            if not same_study:  # a first read, or the study was deleted and created again
                state.overview, state.rows, state.changed_at, state.log, state.running_ids = {}, {}, {}, [], set()
                state.max_id, state.reset_at = -1, self._version + 1
            changed = [n for n, row in rows.items() if state.rows.get(n) != row]
            if changed or not same_study:
                self._version += 1
                for number in changed:
                    state.changed_at[number] = self._version
                if full:  # compact the log: one entry per trial
                    state.log = sorted((version, number) for number, version in state.changed_at.items())
                else:
                    state.log.extend((self._version, number) for number in changed)
            before = {o.trial.number: state.overview.get(o.trial.number) for o in overviews}
            for overview in overviews:
                trial = overview.trial
                state.overview[trial.number] = trial
                state.max_id = max(state.max_id, trial.id)
                if trial.state is TrialState.RUNNING:
                    state.running_ids.add(trial.id)
                else:
                    state.running_ids.discard(trial.id)
            state.rows.update(rows)
            state.record, state.space = record, space
            if changed or not same_study:
                state.trials_json = None
            if full_summary is not None:
                state.summary = full_summary
            elif before:  # the heartbeats of running trials move the last activity too
                state.summary = updated_summary(state.summary, state.snapshot(), state.overview, before)
            state.read_wall = wall
            state.read_at, state.read_seconds = time.monotonic(), time.monotonic() - began
            if full:
                state.full_read_at, state.full_read_seconds = state.read_at, state.read_seconds


@contextlib.contextmanager
def _collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """Python's cyclic garbage collector paused, unless something else paused it.

    A read of a large study makes tens of thousands of small objects that all live on (trials, rows):
    each collection they set off walks every object of the process and frees none of them. With
    ``freeze``, what exists when the read ends is moved out of the collector's view (``gc.freeze``)
    instead of walked by the collection that re-enabling the collector sets off: for the first read
    of a study, which a page waits for. Garbage cycles frozen then are never freed, so later reads,
    in the background, leave the collector to do its work.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()
