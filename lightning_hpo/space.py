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

Conditional parameters: a domain built with ``when={"parent": value or [values]}`` is *active* only
when every named parent (a ``Categorical`` or ``Int``) is active and takes one of those values (a
list, tuple or set names several values: to name a tuple choice, put it in a list). An
inactive parameter is absent from a parameter dict; its unit-cube coordinate is still drawn (so
the cube keeps one column per parameter) and ignored by :meth:`SearchSpace.decode`, and
:meth:`SearchSpace.encode` gives ``nan`` for it.

Stored form: what the storage keeps for a parameter is its value for ``Float`` and ``Int`` and the
choice's *index* for ``Categorical``, so choices may be any hashable objects, not only JSON ones.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError

if TYPE_CHECKING:
    from typing_extensions import Self

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
        values = tuple(values) if isinstance(values, (list, tuple, set, frozenset)) else (values,)
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

    ``when={"parent": value or [values]}`` makes it conditional (see the module docstring).

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

    ``when={"parent": value or [values]}`` makes it conditional (see the module docstring).

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

    ``when={"parent": value or [values]}`` makes it conditional (see the module docstring).

    Example:
        >>> Categorical(["adam", "sgd"]).choices
        ('adam', 'sgd')
    """

    __slots__ = ("choices",)
    choices: tuple[Hashable, ...]

    def __init__(self, choices: Sequence[Hashable], *, when: Mapping[str, Any] | None = None) -> None:
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
_DOMAIN_TYPES = (Float, Int, Categorical)


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
        self._conditions = _conditions(self._domains)
        self._parents_first = _parents_first(self._domains)

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

    @property
    def parents_first(self) -> tuple[str, ...]:
        """The names ordered so that every conditional parameter comes after its parents."""
        return self._parents_first

    @property
    def is_conditional(self) -> bool:
        """Whether any parameter has a ``when`` condition."""
        return bool(self._conditions)

    def active_names(self, params: Mapping[str, Any]) -> list[str]:
        """The names active for the values of ``params`` (in :attr:`names` order); a parameter whose
        parent is missing from ``params`` counts as inactive."""
        active: set[str] = set()
        for name in self._parents_first:
            if all(
                parent in active and parent in params and self._domains[parent].to_stored(params[parent]) in allowed
                for parent, allowed in self._conditions.get(name, ())
            ):
                active.add(name)
        return [name for name in self._domains if name in active]

    def is_complete(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` holds exactly the names its own values make active (values unchecked)."""
        if any(name not in self._domains for name in params):
            return False
        try:
            return set(params) == set(self.active_names(params))
        except (InvalidArgumentError, TypeError, ValueError):
            return False

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Raise unless ``params`` holds exactly the active names (see ``when``), each with a value of its domain."""
        if not isinstance(params, Mapping):
            raise ArgumentTypeError(f"Parameters must be a mapping of name to value, but got {type(params).__name__}.")
        unknown = [n for n in params if n not in self._domains]
        for name, value in params.items():
            if name in self._domains and not self._domains[name].contains(value):
                raise InvalidArgumentError(f"Parameter {name!r}: {value!r} is not in {self._domains[name]!r}.")
        active = self.active_names(params)
        missing = [n for n in active if n not in params]
        if missing or unknown:
            expected = "names" if not self._conditions else "active names"
            raise InvalidArgumentError(
                f"Parameters must have exactly the {expected} {active}, but {missing=} and {unknown=}."
            )
        inactive = [n for n in params if n not in active]
        if inactive:
            name = inactive[0]
            parents = ", ".join(
                f"{p}={params[p]!r}" if p in params else f"{p} inactive" for p in self._domains[name].when
            )
            raise InvalidArgumentError(
                f"Parameter {name!r} is active only when {self._domains[name].when_text()}, but got {parents}: "
                f"leave {name!r} out of the parameters."
            )

    def encode(self, params: Mapping[str, Any]) -> list[float]:
        """Map a parameter dict to a point of the unit cube (one coordinate per name, sorted; ``nan``
        for an inactive parameter)."""
        self.check_params(params)
        return [domain.encode(params[name]) if name in params else math.nan for name, domain in self._domains.items()]

    def decode(self, point: Sequence[float]) -> dict[str, Any]:
        """Map a point of the unit cube (clipped to it) to a parameter dict of the active parameters."""
        if isinstance(point, (str, bytes, Mapping)) or not isinstance(point, Sequence):
            raise InvalidArgumentError(
                f"A point must be a sequence of {len(self._domains)} numbers, but got {point!r}."
            )
        point = list(point)
        if len(point) != len(self._domains):
            raise InvalidArgumentError(f"Expected a point with {len(self._domains)} coordinates, but got {len(point)}.")
        params = {name: domain.decode(u) for (name, domain), u in zip(self._domains.items(), point)}
        if not self._conditions:
            return params
        return {name: params[name] for name in self.active_names(params)}

    def to_stored(self, params: Mapping[str, Any]) -> dict[str, float | int]:
        """The JSON-safe form kept in storage (choices by index; inactive parameters absent)."""
        self.check_params(params)
        return {name: domain.to_stored(params[name]) for name, domain in self._domains.items() if name in params}

    def from_stored(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Inverse of :meth:`to_stored`; names absent from ``stored`` (inactive ones, or all of them
        for a trial still being sampled) are skipped."""
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


def _conditions(domains: Mapping[str, Domain]) -> dict[str, tuple[tuple[str, frozenset[int]], ...]]:
    """Each conditional name -> ``((parent, stored values that activate it), ...)``, after checking
    that every parent exists, is a Categorical or an Int, and can take every value named."""
    conditions = {}
    for name, domain in domains.items():
        checked = []
        for parent, values in domain.when.items():
            rule = f"Parameter {name!r}: when={{{parent!r}: ...}}"
            if parent not in domains:
                raise InvalidArgumentError(
                    f"{rule} names an unknown parameter; the parent must be a parameter of the space, one of "
                    f"{sorted(domains)}."
                )
            parent_domain = domains[parent]
            if parent == name or isinstance(parent_domain, Float):
                kind = "itself" if parent == name else repr(parent_domain)
                raise InvalidArgumentError(
                    f"{rule} names {kind}; a parent must be another Categorical or Int parameter."
                )
            for value in values:
                if not parent_domain.contains(value):
                    raise InvalidArgumentError(
                        f"{rule}: the value {value!r} is not in {parent!r}'s domain {parent_domain!r}, so {name!r} "
                        "could never be active for it; name values the parent can take."
                    )
            checked.append((parent, frozenset(parent_domain.to_stored(v) for v in values)))
        if checked:
            conditions[name] = tuple(checked)
    return conditions


def _parents_first(domains: Mapping[str, Domain]) -> tuple[str, ...]:
    """The names in sorted order, moved so that parents precede children; a cycle of ``when``
    conditions is an error that shows the cycle."""
    order: list[str] = []
    state: dict[str, str] = {}  # name -> "visiting" or "done"

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name) :] + [name]
            raise InvalidArgumentError(
                f"The when= conditions form a cycle: {' -> '.join(cycle)} (each parameter is active only when the "
                "next one takes some value); a parameter cannot depend on itself through its parents."
            )
        state[name] = "visiting"
        for parent in domains[name].when:
            visit(parent, path + [name])
        state[name] = "done"
        order.append(name)

    for name in domains:
        visit(name, [])
    return tuple(order)
