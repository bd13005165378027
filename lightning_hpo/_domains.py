"""The parameter domains, :class:`Float`, :class:`Int` and :class:`Categorical`, and their stored JSON form.

Each domain checks its arguments, tells which values it holds, maps a value to its coordinate of the
unit cube and back (the rules are in :mod:`lightning_hpo.space`, which users import these classes
from), converts a value to and from its stored form, and carries its ``when`` condition. Apart from
:class:`~lightning_hpo.SearchSpace`, which puts domains together (names, conditions between them,
whole parameter dicts), because each domain is self-contained and the space only composes them.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Float", "Int", "Categorical", "Domain", "DOMAIN_TYPES", "domain_from_json"]


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """A numpy scalar or 0-d tensor as the Python value it holds: a grid from ``np.arange`` gives
    ``np.int64`` values, which are not ``int``s."""
    if type(value) in (bool, int, float, str) or not hasattr(value, "item"):  # np.float64 is a float
        return value
    return value.item() if getattr(value, "shape", None) == () else value


def _listed(values: Any) -> Any:
    """A one-dimensional numpy array or tensor as a list of Python values; anything else as it is."""
    return values.tolist() if getattr(values, "ndim", None) == 1 and hasattr(values, "tolist") else values


def _require_finite_real(cls_name: str, name: str, value: Any) -> float:
    value = _plain(value)
    if not _is_real(value):
        raise ArgumentTypeError(
            f"{cls_name}: `{name}` must be a real number, but got {value!r} ({type(value).__name__})."
        )
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        finite = False
    if not finite:
        raise InvalidArgumentError(f"{cls_name}: `{name}` must be a finite float, but got {value!r}.")
    return value


def _clip_unit(u: float) -> float:
    """A coordinate clipped to [0, 1]; anything that is not a real number (nan included) is an error."""
    if _is_real(u) and not isinstance(u, float):
        u = 0.0 if u < 0 else 1.0 if u > 1 else float(u)  # ints of any size
    if not isinstance(u, float) or math.isnan(u):
        raise InvalidArgumentError(f"A unit-cube coordinate must be a real number in [0, 1], but got {u!r}.")
    return min(max(u, 0.0), 1.0)


class _Immutable:
    """Attributes are set once in ``__init__``; pickling and copying still work."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __setstate__(self, state: Any) -> None:
        _, slots = state
        for name, value in slots.items():
            object.__setattr__(self, name, value)


def _check_when(cls_name: str, when: Mapping[str, Any] | None) -> tuple[tuple[str, tuple[Hashable, ...]], ...]:
    """``when`` as ``((parent, values), ...)`` sorted by parent; a list, tuple or set is several values."""
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise ArgumentTypeError(
            f"{cls_name}: `when` must be a non-empty mapping of parent name to a value or a list of values, "
            f"e.g. when={{'optimizer': 'sgd'}}, but got {when!r}."
        )
    conditions = []
    for parent, values in when.items():
        if not isinstance(parent, str) or not parent.strip():
            raise ArgumentTypeError(f"{cls_name}: the parents in `when` must be parameter names, but got {parent!r}.")
        values = _listed(values)
        values = tuple(values) if isinstance(values, (list, tuple, set, frozenset)) else (values,)
        values = tuple(_plain(value) for value in values)  # stored as they are, not by repr
        if not values:
            raise InvalidArgumentError(
                f"{cls_name}: when={{{parent!r}: ...}} must list at least one value, but got an empty list."
            )
        for value in values:
            try:
                hash(value)
            except TypeError:
                raise ArgumentTypeError(
                    f"{cls_name}: the values in `when` must be hashable, but got {value!r} for parent {parent!r}."
                ) from None
        conditions.append((parent, values))
    return tuple(sorted(conditions, key=lambda c: c[0]))


class _Domain(_Immutable):
    """What every domain has: the ``when`` condition that makes it conditional (empty if it is not)."""

    __slots__ = ("_when",)
    _when: tuple[tuple[str, tuple[Hashable, ...]], ...]

    @property
    def when(self) -> dict[str, tuple[Hashable, ...]]:
        """Parent name -> the values for which this parameter is active; ``{}`` when it always is."""
        return dict(self._when)

    def _set_when(self, when: Mapping[str, Any] | None) -> None:
        object.__setattr__(self, "_when", _check_when(type(self).__name__, when))

    def _when_json(self) -> dict[str, Any]:
        if not self._when:
            return {}  # unconditional domains keep the stored form they always had
        return {"when": {parent: [_choice_to_json(v) for v in values] for parent, values in self._when}}

    def _when_repr(self) -> str:
        if not self._when:
            return ""
        return ", when={" + ", ".join(f"{p!r}: {list(v)!r}" for p, v in self._when) + "}"

    def with_when(self, when: Mapping[str, Any] | None) -> Self:
        """A copy of this domain with another ``when`` condition (``None``: unconditional)."""
        other = copy.copy(self)
        other._set_when(when)
        return other

    def when_text(self) -> str:
        """The condition in words, e.g. ``optimizer in ['sgd']`` (``""`` when unconditional)."""
        return " and ".join(f"{p} in {list(v)!r}" for p, v in self._when)


class Float(_Domain):
    """A real parameter in ``[low, high]``, sampled uniformly or, with ``log=True``, log-uniformly.

    ``when={"parent": value or [values]}`` makes it conditional (see :mod:`lightning_hpo.space`).

    Example:
        >>> Float(1e-5, 1e-1, log=True)
        Float(1e-05, 0.1, log=True)
    """

    __slots__ = ("low", "high", "log")
    low: float
    high: float
    log: bool

    def __init__(self, low: float, high: float, *, log: bool = False, when: Mapping[str, Any] | None = None) -> None:
        low = _require_finite_real("Float", "low", low)
        high = _require_finite_real("Float", "high", high)
        if not isinstance(log, bool):
            raise ArgumentTypeError(f"Float: `log` must be True or False, but got {log!r}.")
        if not low < high:
            raise InvalidArgumentError(
                f"Float: `low < high` must hold, but got (low={low!r}, high={high!r}). "
                "To fix a value instead of tuning it, pass it in model_kwargs."
            )
        if log and low <= 0:
            raise InvalidArgumentError(f"Float: `low > 0` must hold when log=True, but got low={low!r}.")
        object.__setattr__(self, "low", float(low))
        object.__setattr__(self, "high", float(high))
        object.__setattr__(self, "log", log)
        self._set_when(when)

    def _t(self, x: float) -> float:
        return math.log(x) if self.log else x

    def contains(self, value: Any) -> bool:
        value = _plain(value)
        return _is_real(value) and self.low <= value <= self.high

    def encode(self, value: Any) -> float:
        t_low, t_high = self._t(self.low), self._t(self.high)
        return (self._t(float(value)) - t_low) / (t_high - t_low)

    def decode(self, u: float) -> float:
        u = _clip_unit(u)
        if u == 0.0:
            return self.low
        if u == 1.0:
            return self.high
        t_low, t_high = self._t(self.low), self._t(self.high)
        t = t_low + u * (t_high - t_low)
        return min(max(math.exp(t) if self.log else t, self.low), self.high)

    def to_stored(self, value: Any) -> float:
        return float(value)

    def from_stored(self, stored: Any) -> float:
        if not self.contains(stored):
            raise InvalidArgumentError(f"Stored value {stored!r} is not in {self!r}.")
        return float(stored)

    def to_json(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log, **self._when_json()}

    def __repr__(self) -> str:
        return f"Float({self.low!r}, {self.high!r}" + (", log=True" if self.log else "") + self._when_repr() + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Float) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(("float", self.low, self.high, self.log))


class Int(_Domain):
    """An integer parameter on the grid ``low, low + step, ..., high``; log-uniform with ``log=True``.

    ``when={"parent": value or [values]}`` makes it conditional (see :mod:`lightning_hpo.space`).

    Example:
        >>> Int(32, 512, log=True)
        Int(32, 512, log=True)
        >>> Int(0, 10, step=2).high
        10
    """

    __slots__ = ("low", "high", "log", "step")
    low: int
    high: int
    log: bool
    step: int

    def __init__(
        self, low: int, high: int, *, log: bool = False, step: int = 1, when: Mapping[str, Any] | None = None
    ) -> None:
        low, high, step = _plain(low), _plain(high), _plain(step)
        for name, value in (("low", low), ("high", high), ("step", step)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ArgumentTypeError(f"Int: `{name}` must be an int, but got {value!r} ({type(value).__name__}).")
        if not isinstance(log, bool):
            raise ArgumentTypeError(f"Int: `log` must be True or False, but got {log!r}.")
        if not low < high:
            raise InvalidArgumentError(
                f"Int: `low < high` must hold, but got (low={low!r}, high={high!r}). "
                "To fix a value instead of tuning it, pass it in model_kwargs."
            )
        if step < 1:
            raise InvalidArgumentError(f"Int: `step >= 1` must hold, but got step={step!r}.")
        if (high - low) % step:
            raise InvalidArgumentError(
                f"Int: `high - low` must be a multiple of `step`, but got (low={low!r}, high={high!r}, step={step!r}); "
                f"use high={low + (high - low) // step * step!r}."
            )
        if log and step != 1:
            raise InvalidArgumentError(f"Int: `step` must be 1 when log=True, but got step={step!r}.")
        if log and low < 1:
            raise InvalidArgumentError(f"Int: `low >= 1` must hold when log=True, but got low={low!r}.")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", log)
        object.__setattr__(self, "step", step)
        self._set_when(when)

    @property
    def size(self) -> int:
        """How many values the grid holds."""
        return (self.high - self.low) // self.step + 1

    def contains(self, value: Any) -> bool:
        value = _plain(value)
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def _log_edges(self) -> tuple[float, float]:
        # Cells of width 1 around each integer, in log space: [low - 0.5, high + 0.5].
        return math.log(self.low - 0.5), math.log(self.high + 0.5)

    def encode(self, value: Any) -> float:
        if self.log:
            lo, hi = self._log_edges()
            return (math.log(value) - lo) / (hi - lo)
        return ((value - self.low) // self.step + 0.5) / self.size

    def decode(self, u: float) -> int:
        u = _clip_unit(u)
        if self.log:
            lo, hi = self._log_edges()
            return min(max(round(math.exp(lo + u * (hi - lo))), self.low), self.high)
        return self.low + min(int(u * self.size), self.size - 1) * self.step

    def to_stored(self, value: Any) -> int:
        return int(value)

    def from_stored(self, stored: Any) -> int:
        if not self.contains(stored):
            raise InvalidArgumentError(f"Stored value {stored!r} is not in {self!r}.")
        return int(stored)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "int",
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
            **self._when_json(),
        }

    def __repr__(self) -> str:
        extra = (
            (", log=True" if self.log else "") + (f", step={self.step}" if self.step != 1 else "") + self._when_repr()
        )
        return f"Int({self.low!r}, {self.high!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Int) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(("int", self.low, self.high, self.log, self.step))


def _choice_to_json(choice: Hashable) -> Any:
    """JSON-native choices are stored as they are; any other hashable by its ``repr``."""
    if choice is None or isinstance(choice, (bool, int, str)):
        return choice
    if isinstance(choice, float) and math.isfinite(choice):
        return choice
    return {"repr": repr(choice)}


def _choice_from_json(data: Any) -> Any:
    return data["repr"] if isinstance(data, dict) else data


class Categorical(_Domain):
    """One of a fixed, ordered list of distinct hashable choices (strings, numbers, None, tuples, ...).

    ``when={"parent": value or [values]}`` makes it conditional (see :mod:`lightning_hpo.space`).

    Example:
        >>> Categorical(["adam", "sgd"]).choices
        ('adam', 'sgd')
    """

    __slots__ = ("choices",)
    choices: tuple[Hashable, ...]

    def __init__(self, choices: Sequence[Hashable], *, when: Mapping[str, Any] | None = None) -> None:
        choices = _listed(choices)
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise ArgumentTypeError(
                f"Categorical: `choices` must be a list or tuple of values, but got {choices!r} ({type(choices).__name__})."
            )
        # numpy scalars as Python values: stored as they are, not by repr, so a reopened study has them
        choices = tuple(_plain(choice) for choice in choices)
        if not choices:
            raise InvalidArgumentError(
                "Categorical: `choices` must hold at least one value, but got an empty sequence."
            )
        for choice in choices:
            try:
                hash(choice)  # a tuple holding a list says it is Hashable, but is not
            except TypeError:
                raise ArgumentTypeError(
                    f"Categorical: every choice must be hashable, but got {choice!r} ({type(choice).__name__})."
                ) from None
            if choice != choice:
                raise InvalidArgumentError(f"Categorical: every choice must equal itself, but {choice!r} does not.")
        for i, first in enumerate(choices):
            for second in choices[i + 1 :]:
                if first == second:
                    raise InvalidArgumentError(
                        f"Categorical: choices must be distinct, but {first!r} and {second!r} compare equal."
                    )
        object.__setattr__(self, "choices", choices)
        self._set_when(when)

    def index(self, value: Any) -> int:
        """The position of ``value`` among the choices (by equality and type, so ``True`` is not ``1``)."""
        for i, choice in enumerate(self.choices):
            if type(choice) is type(value) and choice == value:
                return i
        for i, choice in enumerate(self.choices):
            if choice == value:
                return i
        raise InvalidArgumentError(f"{value!r} is not one of the choices {list(self.choices)!r}.")

    def contains(self, value: Any) -> bool:
        try:
            hash(value)
            self.index(value)
        except (InvalidArgumentError, TypeError):
            return False
        return True

    def encode(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def decode(self, u: float) -> Hashable:
        return self.choices[min(int(_clip_unit(u) * len(self.choices)), len(self.choices) - 1)]

    def to_stored(self, value: Any) -> int:
        return self.index(value)

    def from_stored(self, stored: Any) -> Hashable:
        if not isinstance(stored, int) or isinstance(stored, bool) or not 0 <= stored < len(self.choices):
            raise InvalidArgumentError(f"Stored choice index {stored!r} is out of range for {self!r}.")
        return self.choices[stored]

    def to_json(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": [_choice_to_json(c) for c in self.choices], **self._when_json()}

    def __repr__(self) -> str:
        return f"Categorical({list(self.choices)!r}{self._when_repr()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Categorical) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(("categorical", json.dumps(self.to_json(), sort_keys=True)))


Domain = Union[Float, Int, Categorical]
DOMAIN_TYPES = (Float, Int, Categorical)


def domain_from_json(data: Mapping[str, Any]) -> Domain:
    """Rebuild a domain from :meth:`to_json` output (choices stored by ``repr`` come back as strings)."""
    kind = data.get("type")
    when = {p: [_choice_from_json(v) for v in values] for p, values in data["when"].items()} if "when" in data else None
    if kind == "float":
        return Float(data["low"], data["high"], log=data["log"], when=when)
    if kind == "int":
        return Int(data["low"], data["high"], log=data["log"], step=data["step"], when=when)
    if kind == "categorical":
        return Categorical([_choice_from_json(c) for c in data["choices"]], when=when)
    raise InvalidArgumentError(f"Unknown domain type {kind!r} in stored search space {dict(data)!r}.")
