"""Search spaces, and the one place where parameters are encoded to and from the unit cube.

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

The domains are defined, one class each, in :mod:`lightning_hpo._domains`; they are imported from
here (``from lightning_hpo.space import Float``), where the rules above are written down.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from lightning_hpo._domains import DOMAIN_TYPES, Categorical, Domain, Float, Int, domain_from_json
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError

__all__ = ["Float", "Int", "Categorical", "Domain", "SearchSpace"]


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
            if not isinstance(domain, DOMAIN_TYPES):
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
