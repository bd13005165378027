"""Grid search: every point of a grid once, in a seeded shuffled order, across all workers of a study.

The grid is the product of one list of values per parameter: ``grid[name]`` where given, else a
Categorical's choices and an Int's values (a Float needs ``grid``). Points are numbered in a fixed
order (row-major over the sorted parameter names; in a space with conditional parameters, the
distinct sets of active values, inactive parameters left out) and visited in a permutation of those numbers
drawn from ``seed``. Which points are taken is decided by storage, not by memory: each trial claims
its point's number in ``attrs["grid_point"]`` in the same transaction that creates it, and no two
RUNNING, COMPLETE or PRUNED trials may hold one number (see
:meth:`Storage.create_claiming_trial <lightning_hpo.storage.Storage.create_claiming_trial>`). A
FAIL trial frees its point, which then runs again.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lightning_hpo.exceptions import ArgumentTypeError, GridExhaustedError, InvalidArgumentError
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.space import Categorical, Domain, Float, Int, SearchSpace
from lightning_hpo.trial import GRID_POINT, Trial, TrialState

__all__ = ["GridSampler"]

#: An Int with more values than this needs its values in ``grid``: enumerating it is rarely what was meant.
MAX_INT_VALUES = 1000


class GridSampler(Sampler):
    """Runs every point of a grid once, in a seeded shuffled order; the study stops when the grid is done.

    Args:
        grid: parameter name -> the values to try. Needed for every Float parameter; a Categorical
            parameter defaults to its choices and an Int one to all its values. Every value must lie
            in the parameter's domain.
        seed: the order in which the points run.

    With ``n_trials=None`` (and no timeout) :meth:`Study.optimize <lightning_hpo.Study.optimize>` runs
    the whole grid and stops; ``Study.ask()`` raises :class:`~lightning_hpo.exceptions.GridExhaustedError`
    once no point is left. A trial that FAILs frees its point for another run; a stale trial is
    not retried separately, since the grid runs its point again.

    Example:
        >>> from lightning_hpo import Categorical, Float, Study
        >>> study = Study("grid", search_space={"lr": Float(1e-4, 1e-1, log=True), "opt": Categorical(["adam", "sgd"])},
        ...               storage=":memory:", sampler=GridSampler({"lr": [1e-3, 1e-2]}, seed=0))
        >>> study.optimize(lambda p: p["lr"], n_trials=None)
        >>> len(study.trials)
        4
    """

    #: Study.start_trial lets this sampler claim each trial's point in storage (see the module doc).
    claims_points = True

    def __init__(self, grid: Mapping[str, Sequence[Any]] | None = None, *, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        if grid is not None and not isinstance(grid, Mapping):
            raise ArgumentTypeError(
                f"GridSampler: `grid` must map parameter names to lists of values, but got {type(grid).__name__}."
            )
        checked: dict[str, tuple[Any, ...]] = {}
        for name, values in (grid or {}).items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise InvalidArgumentError(
                    f"GridSampler: grid[{name!r}] must be a non-empty list of values, but got {values!r}."
                )
            checked[name] = tuple(values)
        self.grid: dict[str, tuple[Any, ...]] = checked

    def values_of(self, space: SearchSpace) -> dict[str, tuple[Any, ...]]:
        """The values each parameter of ``space`` takes on the grid (raises on a grid that does not fit)."""
        return dict(_grid_values(self._grid_key(), space))

    def _grid_key(self) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        return tuple(sorted(self.grid.items()))

    def size(self, space: SearchSpace) -> int:
        """How many points the grid of ``space`` has."""
        if space.is_conditional:
            return len(_conditional_points(self._grid_key(), space))
        return math.prod(len(v) for v in self.values_of(space).values())

    def point(self, space: SearchSpace, index: int) -> dict[str, Any]:
        """The parameters of grid point ``index`` (row-major over the sorted parameter names)."""
        if space.is_conditional:
            return dict(_conditional_points(self._grid_key(), space)[index])
        values = self.values_of(space)
        params = {}
        for name in reversed(space.names):
            index, position = divmod(index, len(values[name]))
            params[name] = values[name][position]
        return params

    def order(self, space: SearchSpace) -> np.ndarray:
        """The point indices in the order they run: a permutation drawn from ``seed``."""
        return _permutation(self.size(space), self.seed)

    def choose(self, space: SearchSpace, taken: set[Any]) -> tuple[int, dict[str, Any]]:
        """The first point in :meth:`order` not in ``taken``, as ``(index, params)``; raises
        :class:`~lightning_hpo.exceptions.GridExhaustedError` (with ``running=0``) when there is none."""
        for index in self.order(space).tolist():
            if index not in taken:
                return index, self.point(space, index)
        raise GridExhaustedError(
            f"Every one of the {self.size(space)} points of the grid has run or is running: no trial is left to start.",
            running=0,
        )

    def sample(
        self, space: SearchSpace, trials: Sequence[Trial], *, number: int, directions: Sequence[str]
    ) -> dict[str, Any]:
        """The first point no trial in ``trials`` holds; a Study starts GridSampler trials through :meth:`choose`
        instead, so that storage decides which points are taken."""
        taken = {t.attrs.get(GRID_POINT) for t in trials if t.state is not TrialState.FAIL}
        return self.choose(space, taken)[1]

    def __repr__(self) -> str:
        return f"GridSampler(grid={self.grid!r}, seed={self.seed})"


@functools.lru_cache(maxsize=8)
def _permutation(size: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(size)
    order.flags.writeable = False
    return order


@functools.lru_cache(maxsize=8)
def _conditional_points(
    grid: tuple[tuple[str, tuple[Any, ...]], ...], space: SearchSpace
) -> tuple[tuple[tuple[str, Any], ...], ...]:
    """The distinct points of a grid over a conditional space, in row-major order: each point holds
    only the parameters its values make active, so the values of an inactive parameter are not
    points of their own."""
    values = dict(_grid_values(grid, space))
    points: dict[tuple[tuple[str, Any], ...], None] = {}
    for combination in itertools.product(*(values[name] for name in space.names)):
        params = dict(zip(space.names, combination))
        active = tuple((name, params[name]) for name in space.active_names(params))
        points.setdefault(active, None)
    return tuple(points)


@functools.lru_cache(maxsize=8)
def _grid_values(
    grid: tuple[tuple[str, tuple[Any, ...]], ...], space: SearchSpace
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    given = dict(grid)
    unknown = sorted(set(given) - set(space.names))
    if unknown:
        raise InvalidArgumentError(
            f"GridSampler: grid names {unknown} are not parameters of the search space {list(space.names)}; "
            "remove them or add them to the space."
        )
    return tuple((name, _values_of(name, domain, given.get(name))) for name, domain in space.items())


def _values_of(name: str, domain: Domain, given: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if given is not None:
        outside = [v for v in given if not domain.contains(v)]
        if outside:
            raise InvalidArgumentError(
                f"GridSampler: grid[{name!r}] holds {outside!r}, outside the parameter's domain {domain!r}; "
                "every grid value must lie in its domain."
            )
        if len(set(map(repr, given))) != len(given):
            raise InvalidArgumentError(f"GridSampler: grid[{name!r}] must not repeat a value, but got {list(given)!r}.")
        return given
    if isinstance(domain, Categorical):
        return domain.choices
    if isinstance(domain, Int) and domain.size <= MAX_INT_VALUES:
        return tuple(range(domain.low, domain.high + 1, domain.step))
    if isinstance(domain, Float):
        reason = "a Float parameter has no finite set of values"
    else:
        reason = f"{domain!r} has more than {MAX_INT_VALUES} values"
    raise InvalidArgumentError(
        f"GridSampler: parameter {name!r} needs its values in `grid` ({reason}), e.g. "
        f"GridSampler(grid={{{name!r}: [...]}})."
    )
