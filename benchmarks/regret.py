"""Simple regret and its summaries.

The simple regret after ``t`` trials is ``true(incumbent_t) - reference``, where the incumbent is
the trial with the best *observed* value among the first ``t`` (the earliest on ties): the one a
user would pick, judged by its noiseless value. On deterministic tasks this is the best value
found minus the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["incumbent_values", "simple_regret", "quartiles", "reference_value"]


def incumbent_values(observed: Sequence[float], true: Sequence[float]) -> list[float]:
    """``true`` of the best-observed trial among the first ``t``, for ``t = 1 .. len(observed)``."""
    if len(observed) != len(true):
        raise ValueError(f"observed and true must have the same length, but got {len(observed)} and {len(true)}.")
    values = []
    best_observed = float("inf")
    incumbent = float("nan")
    for seen, value in zip(observed, true):
        if seen < best_observed:
            best_observed, incumbent = seen, value
        values.append(incumbent)
    return values


def simple_regret(observed: Sequence[float], true: Sequence[float], reference: float) -> list[float]:
    """Simple regret after each trial (see the module docstring)."""
    return [value - reference for value in incumbent_values(observed, true)]


def reference_value(optimum: float | None, bound: float | None, true_values_seen: Iterable[float]) -> float:
    """What regret is measured against: the exact optimum when known, else the best of an upper
    bound (a dense search) and every true value any method reached."""
    if optimum is not None:
        return optimum
    candidates = [v for v in true_values_seen]
    if bound is not None:
        candidates.append(bound)
    if not candidates:
        raise ValueError("No optimum, bound or result to take a reference from.")
    return min(candidates)


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile), linear interpolation."""
    if not len(values):
        raise ValueError("quartiles of an empty sequence")
    q1, median, q3 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return float(q1), float(median), float(q3)


def quartiles_cell(values: Sequence[float], digits: int) -> str:
    """A table cell: median [25th, 75th percentile]."""
    q1, median, q3 = quartiles(values)
    return f"{median:.{digits}f} [{q1:.{digits}f}, {q3:.{digits}f}]"
