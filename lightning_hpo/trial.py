"""Trial records: what storage keeps about one evaluation of the objective."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import Any, Literal

__all__ = [
    "TrialState",
    "Trial",
    "Direction",
    "best_finite",
    "MONITOR",
    "PRUNED_STEP",
    "RETRY_OF",
    "RETRIED_BY",
    "RESUME_DIR",
    "RESUMED_AT_STEP",
    "STALLED_INTERRUPTIONS",
    "NOT_RESUMED",
    "GRID_POINT",
    "ENQUEUED",
    "WARM_START_FROM",
    "SAMPLER_STATE",
    "FAIL_KIND",
    "FAIL_KINDS",
    "CONFIGURATION_FAIL_KINDS",
    "METRICS",
    "CONSTRAINT_VIOLATIONS",
]

#: Whether an objective is minimized or maximized (a study has one per objective: its ``directions``).
Direction = Literal["min", "max"]

# Keys of ``Trial.attrs`` that lightning_hpo itself writes.
#: The monitored metric names (a list, one per objective), so tables and plots can label values.
MONITOR = "monitor"
#: The step at which a PRUNED trial was stopped.
PRUNED_STEP = "pruned_step"
#: On a retry: the number of the stale trial whose parameters it runs again.
RETRY_OF = "retry_of"
#: On a stale trial: the number of its retry.
RETRIED_BY = "retried_by"
#: The directory whose resumable checkpoints a trial writes; a trial that has it is resumed, not
#: rerun, when interrupted (its retries then share the directory, logs and checkpoints).
RESUME_DIR = "resume_dir"
#: On a resumed trial: the step of the checkpoint it continued from (0: no checkpoint was readable).
RESUMED_AT_STEP = "resumed_at_step"
#: On a resumed trial: how many interruptions in a row, up to its start, came without a new checkpoint.
STALLED_INTERRUPTIONS = "stalled_interruptions"
#: On an interrupted trial that will not be resumed: why (e.g. interrupted too often without progress).
NOT_RESUMED = "not_resumed"
#: The index of the grid point a :class:`~lightning_hpo.GridSampler` trial runs (unique among non-FAIL trials).
GRID_POINT = "grid_point"
#: On a trial started from :meth:`Study.enqueue <lightning_hpo.Study.enqueue>`: the names whose values were given.
ENQUEUED = "enqueued"
#: On a trial imported by :meth:`Study.add_trials_from <lightning_hpo.Study.add_trials_from>`: ``"<study>#<number>"``.
WARM_START_FROM = "warm_start_from"
#: What a sampler keeps with the trial it suggested, for its next suggestions (e.g. Optuna's CMA-ES state).
SAMPLER_STATE = "sampler_state"
#: On a FAIL trial: what kind of failure it was, one of :data:`FAIL_KINDS`.
FAIL_KIND = "fail_kind"
#: The outcome metrics of a trial (``{"n_params": 1.2e6, ...}``): what constraints are checked on.
METRICS = "metrics"
#: ``{constraint name: violation}`` for each constraint of the study: how far the trial's metric is
#: on the wrong side of its bound (``<= 0``: satisfied), as BoTorch's outcome constraints read it.
CONSTRAINT_VIOLATIONS = "constraint_violations"
#: On a trial evaluated several times (cross-validation folds, repeated seeds): the value of each
#: evaluation in order (a list; a list of lists with several objectives). Its value is their mean.
EVALUATION_VALUES = "evaluation_values"
#: On a trial evaluated several times: the standard deviation of its evaluations' values (one per
#: objective), the noise of its value that the GP and the study's stopping rule read.
VALUE_SPREAD = "value_spread"

#: The kinds of failure: an exception of the user's code, out of memory, a nan or infinite value, a
#: constraint known violated early (the trial was stopped at once), Ctrl-C or a signal, a worker
#: that stopped sending heartbeats, and lightning_hpo's or the storage's own errors.
FAIL_KINDS = ("error", "oom", "nan", "infeasible", "interrupted", "stale", "infrastructure")
#: The kinds that are the configuration's fault: the sampler learns to avoid where they happen.
CONFIGURATION_FAIL_KINDS = frozenset({"error", "oom", "nan", "infeasible"})


class TrialState(str, Enum):
    """The life cycle of a trial: RUNNING, then exactly one of COMPLETE, PRUNED or FAIL."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"

    @property
    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Trial:
    """A snapshot of one trial as stored; studies hand out fresh snapshots, never live objects.

    The one exception: :meth:`Study.tell <lightning_hpo.Study.tell>` updates the trial object it
    is given to the finished trial (state, values, end time, ...), so that the trial ``ask()``
    returned does not read RUNNING after it was told. Nothing else changes a Trial.

    Attributes:
        number: position of the trial in its study, unique across all workers (0, 1, 2, ...).
        state: see :class:`TrialState`.
        params: the parameter values, by name.
        values: the objective values once COMPLETE (one per objective); for a PRUNED trial, its best
            intermediate value; ``None`` otherwise.
        intermediate_values: ``step -> value`` reported while running (``nan`` where the metric was nan);
            in a multi-objective study, the value of the first objective, so pruners that judge one
            value read every study alike.
        error: why a FAIL trial failed (a traceback for an exception in user code).
        worker: ``host:pid`` of the process that ran it.
        heartbeat: the last time its worker said it was alive (UTC).
        log_dir, checkpoint_path: where the Tuner put its logs and its best checkpoint.
        attrs: small JSON-safe facts about the trial, e.g. ``{"pruned_step": 120}``.
        intermediate_vectors: ``step -> values``, one value per objective, reported while running
            (``(value,)`` in a single-objective study).

    Either of ``intermediate_values`` and ``intermediate_vectors`` may be given; the other is
    derived from it.
    """

    number: int
    state: TrialState
    params: Mapping[str, Any]
    values: tuple[float, ...] | None = None
    intermediate_values: Mapping[int, float] = field(default_factory=dict)
    datetime_start: datetime | None = None
    datetime_complete: datetime | None = None
    error: str | None = None
    worker: str | None = None
    heartbeat: datetime | None = None
    log_dir: str | None = None
    checkpoint_path: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    intermediate_vectors: Mapping[int, tuple[float, ...]] = field(default_factory=dict, repr=False)
    id: int = field(default=-1, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: the derived mapping is set once, here.
        if self.intermediate_vectors and not self.intermediate_values:
            firsts = {step: vector[0] for step, vector in self.intermediate_vectors.items()}
            object.__setattr__(self, "intermediate_values", firsts)
        elif self.intermediate_values and not self.intermediate_vectors:
            vectors = {step: (value,) for step, value in self.intermediate_values.items()}
            object.__setattr__(self, "intermediate_vectors", vectors)

    def _update_from(self, finished: Trial) -> None:
        """Take every field of ``finished``, the same trial as stored later (see the class docstring)."""
        for f in fields(self):
            object.__setattr__(self, f.name, getattr(finished, f.name))

    @property
    def value(self) -> float | None:
        """The objective value of a single-objective trial (``None`` while it has none)."""
        if self.values is None:
            return None
        if len(self.values) != 1:
            raise AttributeError(f"Trial {self.number} has {len(self.values)} objective values: use `.values`.")
        return self.values[0]

    @property
    def fail_kind(self) -> str | None:
        """The kind of failure of a FAIL trial (one of :data:`FAIL_KINDS`), ``None`` when unknown or not failed."""
        return self.attrs.get(FAIL_KIND) if self.state is TrialState.FAIL else None

    @property
    def feasible(self) -> bool:
        """Whether the trial satisfies every outcome constraint of its study (see ``Study(constraints=...)``).

        A trial without constraint values (a study without constraints, or a trial that failed before
        its metrics were known) counts as feasible; it is the state that says whether it has a value.
        """
        return all(v <= 0 for v in self.attrs.get(CONSTRAINT_VIOLATIONS, {}).values())

    @property
    def metrics(self) -> dict[str, float]:
        """The outcome metrics stored with the trial (``tell(..., metrics=...)`` or logged), by name."""
        # Non-finite values are stored as text ("nan"), which JSON has no number for.
        return {name: float(value) for name, value in self.attrs.get(METRICS, {}).items()}

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate_values) if self.intermediate_values else None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, for finished trials."""
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return (self.datetime_complete - self.datetime_start).total_seconds()

    def best_intermediate(self, minimize: bool, *, up_to: float = math.inf) -> float | None:
        """The best finite value reported at steps ``<= up_to`` (so far, by default), or ``None``."""
        return best_finite((v for s, v in self.intermediate_values.items() if s <= up_to), minimize)


def best_finite(values: Iterable[float], minimize: bool) -> float | None:
    """The lowest (``minimize``) or highest finite value, or ``None`` when none is finite."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    return min(finite) if minimize else max(finite)
