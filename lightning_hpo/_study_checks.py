"""What a :class:`~lightning_hpo.Study` checks in what it is given, and the messages it gives when that is wrong.

A study's name and mode, the objective values and outcome metrics handed to ``tell`` / ``report``
(numbers, numpy scalars, one-element tensors; one per objective), and a reopened study's stored
space and mode against the ones asked for. Apart from :mod:`lightning_hpo.study` so that the Study
reads as ask -> report -> tell; the Tuner and the ``tune`` subcommand check a mode and a study name
with the same functions before they open a study.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from lightning_hpo._constraints import Constraints, constraints_text
from lightning_hpo._domains import domain_from_json
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, StudyMismatchError
from lightning_hpo.trial import Direction

if TYPE_CHECKING:
    from lightning_hpo.space import SearchSpace
    from lightning_hpo.storage import Storage, StudyRecord

__all__ = [
    "Mode",
    "parse_mode",
    "check_study_name",
    "mode_text",
    "objective_values",
    "metrics_as_floats",
    "value_and_metrics",
    "check_matches_stored",
    "stored_constraints",
]

Mode = Union[str, Sequence[str]]


def parse_mode(mode: Mode) -> tuple[Direction, ...]:
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


def mode_text(directions: Sequence[str]) -> str:
    return repr(directions[0]) if len(directions) == 1 else repr(list(directions))


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


def objective_values(
    value: Any, directions: Sequence[str], study_name: str, what: str = "The objective value"
) -> tuple[float, ...]:
    """One float per objective from a number (one objective) or a sequence, array or tensor of them."""
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:  # numpy arrays, torch tensors
        value = value.tolist()
    k = len(directions)
    if k == 1:
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        elif isinstance(value, (list, tuple)):
            raise InvalidArgumentError(
                f"Study {study_name!r} has one objective, so {what.lower()} must be one number, but got {value!r}."
            )
        return (_as_float(value, what),)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != k:
        raise InvalidArgumentError(
            f"Study {study_name!r} has {k} objectives (mode={mode_text(directions)}), so {what.lower()} must "
            f"be a sequence of {k} numbers, one per objective in that order, but got {value!r}."
        )
    return tuple(_as_float(v, f"{what} {i}") for i, v in enumerate(value))


def metrics_as_floats(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """``tell(..., metrics=...)`` as name -> float (``{}`` for ``None``); raises for a bad name or value."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ArgumentTypeError(f"`metrics` must map metric names to numbers, but got {metrics!r}.")
    for name in metrics:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"A metric name must be a non-empty string, but got {name!r}.")
    return {name: _as_float(value, f"Metric {name!r}") for name, value in metrics.items()}


def value_and_metrics(outcome: Any) -> tuple[Any, Mapping[str, Any] | None]:
    """An objective's return value split into its value(s) and its metrics (``(value, {...})``), if any."""
    if outcome is None:
        raise ArgumentTypeError(
            "The objective returned None: it must return the value to optimize (a number; one per objective, "
            "in a tuple, with several), or (value, {metric name: number}). Is a `return` missing?"
        )
    if isinstance(outcome, tuple) and len(outcome) == 2 and isinstance(outcome[1], Mapping):
        return outcome[0], outcome[1]
    return outcome, None


def check_matches_stored(
    study_name: str, where: str, record: StudyRecord, space: SearchSpace | None, directions: Sequence[str]
) -> None:
    """Raise :class:`~lightning_hpo.exceptions.StudyMismatchError` naming what differs when a reopened study
    (``record``, in storage ``where``) was created with another space or mode than the ones given now
    (``space=None``: none was given)."""
    problems = []
    stored_space, stored_directions = record.space, record.directions
    if tuple(stored_directions) != tuple(directions):
        problems.append(f"mode {mode_text(stored_directions)} (now {mode_text(directions)})")
    if space is not None and json.dumps(stored_space, sort_keys=True) != space.fingerprint():
        now = json.loads(space.fingerprint())
        changed = sorted(n for n in set(stored_space) | set(now) if stored_space.get(n) != now.get(n))
        details = "; ".join(f"{n}: {_domain_text(stored_space.get(n))} -> {_domain_text(now.get(n))}" for n in changed)
        problems.append(f"a different search space ({details})")
    if problems:
        raise StudyMismatchError(
            f"Study {study_name!r} in {where} was created with "
            + " and ".join(problems)
            + ". A study's space and mode are fixed: pick a new study name for the new set-up."
        )


def stored_constraints(storage: Storage, study_id: int, study_name: str, wanted: Constraints | None) -> Constraints:
    """The study's constraints as stored (the first opener's), checked against ``wanted``."""
    try:
        stored = storage.study_attr_setdefault(study_id, "constraints", wanted or {})
    except NotImplementedError:  # a storage without study attributes keeps them in this process only
        return wanted or {}
    constraints = {name: (rule[0], float(rule[1])) for name, rule in stored.items()}
    if wanted is not None and wanted != constraints:
        raise StudyMismatchError(
            f"Study {study_name!r} in {storage.display_url} was created with constraints "
            f"{{{constraints_text(constraints)}}}, but got {{{constraints_text(wanted)}}}. Give the same "
            "constraints (or none, to use the stored ones), or another study name."
        )
    return constraints


def _domain_text(data: Mapping[str, Any] | None) -> str:
    return "absent" if data is None else repr(domain_from_json(data))
