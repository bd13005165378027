"""Every trial of a study as a table: :meth:`Study.trials_dataframe <lightning_hpo.Study.trials_dataframe>`
and ``lightning-hpo export --format csv|json``.

:class:`TrialTable` builds the rows as plain dicts, so the CSV and JSON files need nothing beyond
the standard library; only :meth:`TrialTable.to_dataframe` needs pandas (the ``pandas`` extra).
The columns are named as in Optuna's ``trials_dataframe``, so code written for one reads the other.

Example:
    >>> from lightning_hpo import Float, Study
    >>> study = Study("demo", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
    >>> study.optimize(lambda p: p["x"], n_trials=2)
    >>> table = TrialTable.of(study)
    >>> table.columns[:4], len(table.rows)
    (('number', 'state', 'value', 'params_x'), 2)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

from lightning_hpo.exceptions import MissingExtraError
from lightning_hpo.export import logs_of, origin_of, tracker_runs_of
from lightning_hpo.snapshot import StudyLike, StudySnapshot
from lightning_hpo.trial import RETRY_OF, Trial

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TrialTable"]

#: The columns after the values and parameters; ``retry_of``, ``origin`` and ``tracker_runs`` follow
#: when a trial of the study has one.
_TRAILING_COLUMNS = (
    "datetime_start",
    "datetime_complete",
    "duration_s",
    "last_step",
    "n_reports",
    "error",
    "log_dir",
    "checkpoint",
)


@dataclass(frozen=True)
class TrialTable:
    """One row per trial, in number order; each row maps every column to a value or ``None``.

    Columns:
        ``number``, ``state`` (``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``, ``"RUNNING"``);
        the objective: ``value``, or ``value_<metric>`` when a Tuner recorded the monitored metric;
        with several objectives ``values_<metric>`` (``values_0``, ``values_1``, ... without names);
        ``params_<name>`` for each parameter of the space (``None``, an empty CSV cell, where the trial
        has none: a trial still being sampled, or a conditional parameter that was inactive);
        ``datetime_start``, ``datetime_complete`` (UTC), ``duration_s``; ``last_step`` and
        ``n_reports``, the last step and number of intermediate values reported; ``error`` (a
        FAIL trial's full traceback); ``log_dir`` (where its logger wrote), ``checkpoint``;
        and, when a trial of the study has one: ``retry_of`` (the stale trial a retry runs again),
        ``origin`` (where parameters not sampled came from: ``"enqueued (lr, layers)"``, ``"imported
        from other#3"``, ``"retry of trial 2"``, ``"resumes trial 2"``; see
        :func:`~lightning_hpo.export.origin_of`), ``tracker_runs`` (the trial's MLflow / W&B runs,
        ``"mlflow: <run URL or id>"``, ``"; "`` between runs).

    Attributes:
        columns: the column names, in order.
        rows: one dict per trial.
    """

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, study: StudyLike) -> TrialTable:
        """The table of a :class:`~lightning_hpo.Study` or a :class:`~lightning_hpo.StudySnapshot`."""
        snapshot = StudySnapshot.of(study)
        value_columns = _value_columns(snapshot)
        param_columns = {name: f"params_{name}" for name in snapshot.space.names}
        optional = {
            name: cell
            for name, cell in _OPTIONAL_COLUMNS.items()
            if any(cell(trial) is not None for trial in snapshot.trials)
        }
        columns = ("number", "state", *value_columns, *param_columns.values(), *_TRAILING_COLUMNS, *optional)
        rows = []
        for trial in snapshot.trials:
            row: dict[str, Any] = {"number": trial.number, "state": str(trial.state)}
            row.update(zip(value_columns, trial.values or (None,) * len(value_columns)))
            row.update({column: trial.params.get(name) for name, column in param_columns.items()})
            row.update(_trailing_cells(trial))
            row.update({name: cell(trial) for name, cell in optional.items()})
            rows.append(row)
        return cls(columns, tuple(rows))

    def to_csv(self, file: TextIO) -> None:
        """Write the table as CSV with a header line; empty cells for ``None``, dates in ISO 8601."""
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(_iso(row[column]) for column in self.columns)

    def to_json(self) -> str:
        """The rows as a JSON array of objects (``null`` for ``None``, dates in ISO 8601), as
        ``pandas.read_json(..., orient="records")`` reads them."""
        return json.dumps(list(self.rows), indent=2, default=_json_cell) + "\n"

    def to_dataframe(self) -> pd.DataFrame:
        """The table as a pandas DataFrame (dates as ``datetime64`` in UTC); needs the ``pandas`` extra."""
        try:
            import pandas as pd
        except ImportError:
            raise MissingExtraError(
                "A trials DataFrame needs pandas, an optional dependency of lightning_hpo: install it with "
                "`pip install 'lightning-hpo[pandas]'`. (`lightning-hpo export --format csv` writes the same "
                "table without pandas.)"
            ) from None
        return pd.DataFrame(list(self.rows), columns=list(self.columns))


def _value_columns(snapshot: StudySnapshot) -> list[str]:
    """``value``/``value_<metric>`` for one objective; ``values_<metric>``/``values_<i>`` for several."""
    names: Sequence[Any] | None = snapshot.metric_names()
    if names is not None and len(set(names)) < len(names):
        names = None  # the same metric twice (e.g. one min, one max): names would not tell the columns apart
    if len(snapshot.directions) == 1:
        return [f"value_{names[0]}" if names else "value"]
    return [f"values_{name}" for name in (names or range(len(snapshot.directions)))]


def _trailing_cells(trial: Trial) -> dict[str, Any]:
    return {
        "datetime_start": _utc(trial.datetime_start),
        "datetime_complete": _utc(trial.datetime_complete),
        "duration_s": trial.duration,
        "last_step": trial.last_step,
        "n_reports": len(trial.intermediate_values),
        "error": trial.error,
        "log_dir": logs_of(trial),
        "checkpoint": trial.checkpoint_path,
    }


def _tracker_runs_cell(trial: Trial) -> str | None:
    return "; ".join(tracker_runs_of(trial)) or None


#: The columns a study's table has only when a trial has a value for them (cell: the value, else ``None``).
_OPTIONAL_COLUMNS: dict[str, Callable[[Trial], Any]] = {
    "retry_of": lambda trial: trial.attrs.get(RETRY_OF),
    "origin": origin_of,
    "tracker_runs": _tracker_runs_cell,
}


def _utc(moment: datetime | None) -> datetime | None:
    """Storage hands out UTC times; a naive time (a hand-made Trial) is taken as UTC too."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _iso(cell: Any) -> Any:
    return cell.isoformat(timespec="microseconds") if isinstance(cell, datetime) else cell


def _json_cell(cell: Any) -> Any:
    """What ``json`` cannot write itself: dates as ISO 8601, other objects (categorical choices) by their repr."""
    return _iso(cell) if isinstance(cell, datetime) else repr(cell)
