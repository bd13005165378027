"""What the dashboard shows of studies and trials, as JSON-safe dicts and JSON text.

A table row and the chart points of a trial (:func:`trial_row`), a trial's page (:func:`trial_detail`),
a study's line on the studies page (:func:`study_summary`, and :func:`updated_summary` after a read of
a few trials), and the JSON text of the rows and curves an answer sends (:func:`trials_json`). Pure
functions of trials: :mod:`lightning_hpo.dashboard._data` reads the trials and keeps them.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lightning_hpo.export import CONFIG_ATTR, LOGGER_DIR_ATTR, TRACKER_RUNS_ATTR, _plain, retrain_command
from lightning_hpo.pareto import best_trials
from lightning_hpo.snapshot import StudySnapshot
from lightning_hpo.trial import (
    CONSTRAINT_VIOLATIONS,
    ENQUEUED,
    MONITOR,
    PRUNED_STEP,
    RETRIED_BY,
    RETRY_OF,
    WARM_START_FROM,
    Trial,
    TrialState,
)

__all__ = [
    "COMPACT",
    "ROW_ATTRS",
    "Row",
    "finite_curve",
    "origin",
    "plain_mapping",
    "row_json",
    "study_summary",
    "trial_detail",
    "trial_row",
    "trials_json",
    "updated_summary",
]


def _number(value: float | None) -> float | None:
    """JSON has no nan or infinity: they travel as null."""
    return value if value is not None and math.isfinite(value) else None


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _last_activity(trial: Trial) -> datetime | None:
    times = [t for t in (trial.datetime_start, trial.datetime_complete, trial.heartbeat) if t is not None]
    return max(times) if times else None


#: The attrs a table row or the summary shows; the rest (fit configs, sampler state) is read by the trial page.
ROW_ATTRS = (
    MONITOR,
    PRUNED_STEP,
    CONSTRAINT_VIOLATIONS,
    ENQUEUED,
    WARM_START_FROM,
    RETRY_OF,
    RETRIED_BY,
    TRACKER_RUNS_ATTR,
)


def origin(trial: Trial) -> dict[str, Any]:
    """Where the trial came from, as attrs record it: enqueued, imported, a retry; and its tracker runs."""
    found: dict[str, Any] = {}
    if ENQUEUED in trial.attrs:
        found["enqueued"] = [str(name) for name in trial.attrs[ENQUEUED] or ()]
    if WARM_START_FROM in trial.attrs:
        found["imported_from"] = str(trial.attrs[WARM_START_FROM])
    for key in (RETRY_OF, RETRIED_BY):
        if isinstance(trial.attrs.get(key), int):
            found[key] = trial.attrs[key]
    if trial.attrs.get(TRACKER_RUNS_ATTR):
        found["tracker_runs"] = [str(run) for run in trial.attrs[TRACKER_RUNS_ATTR]]
    return found


def trial_row(trial: Trial, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the study page shows of a trial, but its curve: its table row and its points in the charts.

    ``params`` are the trial's decoded parameters when its own are still in stored form. The heartbeat
    is left out on purpose: it changes every few seconds while nothing else does, and a live update
    sends only the trials whose row changed.
    """
    note = ""
    if trial.state is TrialState.FAIL and trial.error:
        note = trial.error.strip().splitlines()[-1][:200]
    elif trial.state is TrialState.PRUNED:
        note = f"pruned at step {trial.attrs.get(PRUNED_STEP, trial.last_step)}"
    row = {
        "number": trial.number,
        "state": trial.state.value,
        "values": [_number(v) for v in trial.values] if trial.values is not None else None,
        "params": {name: _plain(value) for name, value in (trial.params if params is None else params).items()},
        "start": _time(trial.datetime_start),
        "end": _time(trial.datetime_complete),
        "duration": trial.duration,
        "note": note,
    }
    if trial.attrs and (found := origin(trial)):
        row["origin"] = found
    return row


def finite_curve(text: str, n_objectives: int) -> str:
    """A stored curve's JSON with nan and infinite values as null.

    A single-objective curve's text is written by the database from numbers only, with null already; a
    multi-objective one holds the stored vectors, so it is parsed and written again.
    """
    if n_objectives == 1:
        return text

    def finite(value: Any) -> Any:
        if isinstance(value, list):
            return [finite(v) for v in value]
        return _number(value) if isinstance(value, float) else value

    return json.dumps([[step, finite(value)] for step, value in json.loads(text)], **COMPACT)


COMPACT: dict[str, Any] = {"ensure_ascii": False, "allow_nan": False, "separators": (",", ":")}


_ENCODER = json.JSONEncoder(**COMPACT)


def row_json(trial: Trial, curve: str, params: Mapping[str, Any], n_objectives: int) -> str:
    """A trial's row as JSON text, its curve (JSON text, see :class:`TrialOverview`) spliced in unparsed."""
    head = _ENCODER.encode(trial_row(trial, params))
    return f'{head[:-1]},"curve":{finite_curve(curve, n_objectives)}}}'


#: A trial as the feed keeps it: its row but the curve (see :func:`trial_row`), and its curve as JSON text.
Row = tuple[dict[str, Any], str]


def trials_json(rows: list[Row]) -> str:
    """The ``trials`` and ``curves`` of an answer: the rows encoded in one call, and their curves, in the same order.

    The curves travel apart so that the database's text of each is spliced in as it is, while the rows
    (many small dicts) are encoded at once: one call costs less than one per row.
    """
    return f'"trials":{_ENCODER.encode([row for row, _ in rows])},"curves":[{",".join(curve for _, curve in rows)}]'


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


def study_summary(
    snapshot: StudySnapshot,
    *,
    counts: dict[str, int] | None = None,
    best: list[Trial] | None = None,
    last_activity: str | None = None,
) -> dict[str, Any]:
    """A line of the studies page: mode, trials by state, best value, last activity.

    ``counts``, ``best`` and ``last_activity`` are computed from the trials unless given (see
    :func:`updated_summary`, which knows them from fewer trials).
    """
    if counts is None:
        counts = {state.value: 0 for state in TrialState}
        for trial in snapshot.trials:
            counts[trial.state.value] += 1
    if best is None:
        best = snapshot.best_trials
    if last_activity is None:
        activity = [t for t in map(_last_activity, snapshot.trials) if t is not None]
        last_activity = _time(max(activity)) if activity else None
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
        "last_activity": last_activity,
    }


def _ranks_differently(old: Trial | None, new: Trial) -> bool:
    """Whether ``new`` may compare with other trials otherwise than ``old`` did (``None``: not read again)."""
    return old is not None and (old.state, old.values, old.feasible) != (new.state, new.values, new.feasible)


def updated_summary(
    previous: dict[str, Any],
    snapshot: StudySnapshot,
    trials: Mapping[int, Trial],
    before: Mapping[int, Trial | None],
) -> dict[str, Any]:
    """:func:`study_summary` of ``snapshot`` from the ``previous`` one, in time that follows the trials read.

    ``trials`` are the snapshot's by number; ``before`` maps the number of each trial read since
    ``previous`` to the trial as ``previous`` counted it (``None`` for a new one). No other trial
    changed, so none that was beaten is best now: the best are among the previous best and those read,
    unless one of the previous best changed state, values or feasibility (then every trial is looked at again).
    """
    counts = dict(previous["states"])
    latest = previous["last_activity"]
    for number, old in before.items():
        trial = trials[number]
        if old is not None:
            counts[old.state.value] -= 1
        counts[trial.state.value] += 1
        activity = _last_activity(trial)
        if activity is not None and (latest is None or latest < _time(activity)):
            latest = _time(activity)
    best = None
    if not any(_ranks_differently(before.get(number), trials[number]) for number in previous["best_numbers"]):
        candidates = sorted({*previous["best_numbers"], *before})
        best = best_trials([trials[n] for n in candidates], snapshot.directions)
    return study_summary(snapshot, counts=counts, best=best, last_activity=latest)


def plain_mapping(mapping: Mapping[str, float]) -> dict[str, float | None]:
    """``mapping`` with its nan and infinite values as ``None`` (JSON has neither)."""
    return {key: _number(value) for key, value in mapping.items()}
