"""Checks behind :meth:`Study.enqueue`, :meth:`Study.add_trial` and :meth:`Study.add_trials_from`: which
partial configs a space takes, and which trials of another study fit it (see ``add_trials_from``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.space import SearchSpace

__all__ = ["partial_to_stored", "why_outside"]


def partial_to_stored(space: SearchSpace, params: Any, what: str) -> dict[str, Any]:
    """Some of ``space``'s parameters in stored form; raises naming the first name or value that does not fit."""
    if not isinstance(params, Mapping):
        raise ArgumentTypeError(f"{what}: `params` must be a dict of name -> value, but got {params!r}.")
    if not params:
        raise InvalidArgumentError(f"{what}: `params` must name at least one parameter, but got {params!r}.")
    unknown = [name for name in params if name not in space]
    if unknown:
        raise InvalidArgumentError(
            f"{what}: every name must be a parameter of the search space ({', '.join(space.names)}), "
            f"but {', '.join(map(repr, unknown))} is not."
        )
    for name, value in params.items():
        if not space[name].contains(value):
            raise InvalidArgumentError(
                f"{what}: parameter {name!r} must be a value of {space[name]!r}, but got {value!r}."
            )
    return {name: space[name].to_stored(value) for name, value in params.items()}


def why_outside(space: SearchSpace, params: Mapping[str, Any]) -> str | None:
    """Why ``params`` (another study's, restricted to ``space``'s names) is no point of ``space``, or ``None``."""
    for name, domain in space.items():
        if name in params and not domain.contains(params[name]):
            return f"{name}={params[name]!r} is outside {domain!r}"
    active = space.active_names(params)
    missing = [name for name in active if name not in params]
    if missing:
        return f"it has no {missing[0]!r}"
    return None
