"""Outcome constraints: ``Study(..., constraints={"n_params": ("<=", 1e6)})``.

A constraint bounds a metric of the trial's outcome (given at ``tell(..., metrics=...)``, returned by
an objective as ``(value, metrics)``, or logged by the module the Tuner trains). Each trial stores
its metrics and, per constraint, its *violation*: how far the metric lies on the wrong side of the
bound (``value - bound`` for ``"<="``, ``bound - value`` for ``">="``), so ``<= 0`` means satisfied,
as BoTorch's outcome constraints read it. A trial is feasible when every violation is ``<= 0``;
best trials are chosen among feasible trials only, and the GP models each violation to steer away
from where constraints fail.

Example:
    >>> constraints = parse_constraints({"n_params": ("<=", 1e6), "accuracy": (">=", 0.9)})
    >>> violations(constraints, {"n_params": 2e6, "accuracy": 0.95})
    {'accuracy': -0.04999999999999993, 'n_params': 1000000.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, MetricNotFoundError
from lightning_hpo.trial import CONSTRAINT_VIOLATIONS, Trial

__all__ = [
    "Constraints",
    "parse_constraints",
    "violations",
    "check_metrics",
    "constraints_text",
    "infeasibility_note",
    "OPERATORS",
]

#: ``{metric name: (operator, bound)}``, sorted by name.
Constraints = dict[str, tuple[str, float]]
OPERATORS = ("<=", ">=")


def parse_constraints(constraints: Any) -> Constraints:
    """Check ``{"metric": ("<=" or ">=", bound)}`` (a 2-item list is accepted too, as JSON and YAML give it)."""
    if constraints is None:
        return {}
    if not isinstance(constraints, Mapping):
        raise ArgumentTypeError(
            f"`constraints` must map metric names to (operator, bound), e.g. {{'n_params': ('<=', 1e6)}}, "
            f"but got {constraints!r} ({type(constraints).__name__})."
        )
    parsed: Constraints = {}
    for name, rule in constraints.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"A constraint's metric name must be a non-empty string, but got {name!r}.")
        if isinstance(rule, str) or not isinstance(rule, (tuple, list)) or len(rule) != 2:
            raise InvalidArgumentError(
                f"Constraint {name!r} must be a pair (operator, bound), e.g. ('<=', 1e6), but got {rule!r}."
            )
        operator, bound = rule
        if operator not in OPERATORS:
            raise InvalidArgumentError(
                f"Constraint {name!r} has operator {operator!r}; the operator must be '<=' or '>='."
            )
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise InvalidArgumentError(f"Constraint {name!r} needs a number as its bound, but got {bound!r}.")
        if not math.isfinite(bound):
            raise InvalidArgumentError(f"Constraint {name!r} needs a finite bound, but got {bound!r}.")
        parsed[name] = (operator, float(bound))
    return dict(sorted(parsed.items()))


def check_metrics(constraints: Constraints, metrics: Mapping[str, float], where: str) -> None:
    """Raise :class:`MetricNotFoundError` when a constrained metric is missing from ``metrics``."""
    missing = [name for name in constraints if name not in metrics]
    if missing:
        have = ", ".join(map(repr, sorted(metrics))) or "none"
        raise MetricNotFoundError(
            f"The study constrains {', '.join(map(repr, missing))}, but {where} gave no such metric (metrics "
            f"given: {have}). Return or log it, e.g. `return value, {{{missing[0]!r}: ...}}`, or fix the "
            "constraint's name."
        )


def violations(constraints: Constraints, metrics: Mapping[str, float]) -> dict[str, float]:
    """``{name: violation}`` (``<= 0``: satisfied) of each constraint, from the trial's ``metrics``."""
    result = {}
    for name, (operator, bound) in constraints.items():
        value = float(metrics[name])
        result[name] = value - bound if operator == "<=" else bound - value
    return result


def constraints_text(constraints: Constraints) -> str:
    """``"n_params <= 1e+06, accuracy >= 0.9"``."""
    return ", ".join(f"{name} {operator} {bound:g}" for name, (operator, bound) in constraints.items())


def infeasibility_note(trial: Trial) -> str:
    """``"infeasible: n_params over its bound by 2.1e+05"`` for a trial that breaks constraints, else ``""``."""
    broken = {n: v for n, v in trial.attrs.get(CONSTRAINT_VIOLATIONS, {}).items() if v > 0}
    if not broken:
        return ""
    return "infeasible: " + ", ".join(f"{name} over its bound by {v:.3g}" for name, v in broken.items())
