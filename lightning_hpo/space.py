"""Search-space domains, and the one place where parameters are encoded to and from the unit cube.

A search space maps parameter names to domains (:class:`Float`, :class:`Int`, :class:`Categorical`).
Samplers never see parameter values: they work on points of the unit cube ``[0, 1]^d``, one column
per parameter in sorted name order, and this module translates both ways:

* ``Float``: the position between ``low`` and ``high``, in log space when ``log=True``.
* ``Int``: the position of the value's *cell* on its grid. The grid ``low, low + step, ..., high``
  is cut into equal cells (in log space when ``log=True``) and a value sits at its cell's centre,
  so a uniform point of the unit cube gives every value the same chance, edge values included.
* ``Categorical``: choice ``i`` of ``n`` sits at the centre of cell ``i``, ``(i + 0.5) / n``.

Decoding is total: any point of the cube (clipped to it) gives a valid parameter dict, and
``decode(encode(params)) == params`` holds exactly for ints and categoricals and to float
precision for floats (exactly at ``low`` and ``high``).

Stored form: what the storage keeps for a parameter is its value for ``Float`` and ``Int`` and the
choice's *index* for ``Categorical``, so choices may be any hashable objects, not only JSON ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any, Union

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError

__all__ = ["Float", "Int", "Categorical", "Domain", "SearchSpace"]


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_finite_real(cls_name: str, name: str, value: Any) -> float:
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


class Float(_Immutable):
    """A real parameter in ``[low, high]``, sampled uniformly or, with ``log=True``, log-uniformly.

    Example:
        >>> Float(1e-5, 1e-1, log=True)
        Float(1e-05, 0.1, log=True)
    """

    __slots__ = ("low", "high", "log")
    low: float
    high: float
    log: bool

    def __init__(self, low: float, high: float, *, log: bool = False) -> None:
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

    def _t(self, x: float) -> float:
        return math.log(x) if self.log else x

    def contains(self, value: Any) -> bool:
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
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}

    def __repr__(self) -> str:
        return f"Float({self.low!r}, {self.high!r}" + (", log=True)" if self.log else ")")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Float) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(("float", self.low, self.high, self.log))


class Int(_Immutable):
    """An integer parameter on the grid ``low, low + step, ..., high``; log-uniform with ``log=True``.

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

    def __init__(self, low: int, high: int, *, log: bool = False, step: int = 1) -> None:
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

    @property
    def size(self) -> int:
        """How many values the grid holds."""
        return (self.high - self.low) // self.step + 1

    def contains(self, value: Any) -> bool:
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
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log, "step": self.step}

    def __repr__(self) -> str:
        extra = (", log=True" if self.log else "") + (f", step={self.step}" if self.step != 1 else "")
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


class Categorical(_Immutable):
    """One of a fixed, ordered list of distinct hashable choices (strings, numbers, None, tuples, ...).

    Example:
        >>> Categorical(["adam", "sgd"]).choices
        ('adam', 'sgd')
    """

    __slots__ = ("choices",)
    choices: tuple[Hashable, ...]

    def __init__(self, choices: Sequence[Hashable]) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise ArgumentTypeError(
                f"Categorical: `choices` must be a list or tuple of values, but got {choices!r} ({type(choices).__name__})."
            )
        choices = tuple(choices)
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
        return {"type": "categorical", "choices": [_choice_to_json(c) for c in self.choices]}

    def __repr__(self) -> str:
        return f"Categorical({list(self.choices)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Categorical) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(("categorical", json.dumps(self.to_json(), sort_keys=True)))


Domain = Union[Float, Int, Categorical]
_DOMAIN_TYPES = (Float, Int, Categorical)


def domain_from_json(data: Mapping[str, Any]) -> Domain:
    """Rebuild a domain from :meth:`to_json` output (choices stored by ``repr`` come back as strings)."""
    kind = data.get("type")
    if kind == "float":
        return Float(data["low"], data["high"], log=data["log"])
    if kind == "int":
        return Int(data["low"], data["high"], log=data["log"], step=data["step"])
    if kind == "categorical":
        return Categorical([_choice_from_json(c) for c in data["choices"]])
    raise InvalidArgumentError(f"Unknown domain type {kind!r} in stored search space {dict(data)!r}.")


class SearchSpace(Mapping[str, Domain]):
    """An immutable mapping from parameter name to domain; a plain ``dict`` is accepted wherever one is.

    Parameters are kept in sorted name order, which is also the column order of the unit cube.

    Example:
        >>> space = SearchSpace({"lr": Float(1e-4, 1e-1, log=True), "opt": Categorical(["adam", "sgd"])})
        >>> space.decode(space.encode({"lr": 1e-2, "opt": "sgd"}))["opt"]
        'sgd'
    """

    def __init__(self, domains: Mapping[str, Domain]) -> None:
        if not isinstance(domains, Mapping):
            raise ArgumentTypeError(
                f"A search space must be a mapping of parameter name to domain, but got {type(domains).__name__}."
            )
        if not domains:
            raise InvalidArgumentError("A search space must hold at least one parameter, but got an empty mapping.")
        for name, domain in domains.items():
            if not isinstance(name, str) or not name.strip():
                raise InvalidArgumentError(f"Parameter names must be non-empty strings, but got {name!r}.")
            if not isinstance(domain, _DOMAIN_TYPES):
                raise ArgumentTypeError(
                    f"Parameter {name!r}: expected a Float, Int or Categorical domain, but got {domain!r} "
                    f"({type(domain).__name__})."
                )
        self._domains: dict[str, Domain] = {name: domains[name] for name in sorted(domains)}

    @classmethod
    def coerce(cls, space: Mapping[str, Domain] | SearchSpace) -> SearchSpace:
        """Return ``space`` as a :class:`SearchSpace`, accepting a plain mapping."""
        return space if isinstance(space, SearchSpace) else cls(space)

    def __getitem__(self, name: str) -> Domain:
        return self._domains[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._domains)

    def __len__(self) -> int:
        return len(self._domains)

    def __repr__(self) -> str:
        return f"SearchSpace({self._domains!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping) and not isinstance(other, SearchSpace):
            try:
                other = SearchSpace(other)
            except (ArgumentTypeError, InvalidArgumentError):
                return False
        return isinstance(other, SearchSpace) and self._domains == other._domains

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._domains)

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Raise unless ``params`` holds exactly this space's names, each with a value of its domain."""
        if not isinstance(params, Mapping):
            raise ArgumentTypeError(f"Parameters must be a mapping of name to value, but got {type(params).__name__}.")
        missing = [n for n in self._domains if n not in params]
        unknown = [n for n in params if n not in self._domains]
        if missing or unknown:
            raise InvalidArgumentError(
                f"Parameters must have exactly the names {list(self._domains)}, but {missing=} and {unknown=}."
            )
        for name, domain in self._domains.items():
            if not domain.contains(params[name]):
                raise InvalidArgumentError(f"Parameter {name!r}: {params[name]!r} is not in {domain!r}.")

    def encode(self, params: Mapping[str, Any]) -> list[float]:
        """Map a parameter dict to a point of the unit cube (one coordinate per name, sorted)."""
        self.check_params(params)
        return [domain.encode(params[name]) for name, domain in self._domains.items()]

    def decode(self, point: Sequence[float]) -> dict[str, Any]:
        """Map a point of the unit cube (clipped to it) to a parameter dict."""
        if isinstance(point, (str, bytes, Mapping)) or not isinstance(point, Sequence):
            raise InvalidArgumentError(
                f"A point must be a sequence of {len(self._domains)} numbers, but got {point!r}."
            )
        point = list(point)
        if len(point) != len(self._domains):
            raise InvalidArgumentError(f"Expected a point with {len(self._domains)} coordinates, but got {len(point)}.")
        return {name: domain.decode(u) for (name, domain), u in zip(self._domains.items(), point)}

    def to_stored(self, params: Mapping[str, Any]) -> dict[str, float | int]:
        """The JSON-safe form kept in storage (choices by index)."""
        self.check_params(params)
        return {name: domain.to_stored(params[name]) for name, domain in self._domains.items()}

    def from_stored(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Inverse of :meth:`to_stored`; names absent from ``stored`` (a trial still being sampled) are skipped."""
        if not isinstance(stored, Mapping):
            raise InvalidArgumentError(f"Stored parameters must be a mapping, but got {stored!r}.")
        return {name: domain.from_stored(stored[name]) for name, domain in self._domains.items() if name in stored}

    def to_json(self) -> dict[str, Any]:
        return {name: domain.to_json() for name, domain in self._domains.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        return cls({name: domain_from_json(d) for name, d in data.items()})

    def fingerprint(self) -> str:
        """A canonical string that is equal for equal spaces (used to detect a changed space)."""
        return json.dumps(self.to_json(), sort_keys=True)
