"""How the GP sees a search space: the unit cube, with integer grids and categorical indices.

The model's input has one column per parameter, in the search space's (sorted-name) order:

* ``Float``: the unit-cube coordinate itself (already in log space for ``log=True``).
* ``Int``: the unit-cube position of the value's cell centre, so the GP measures distances between
  integers as the encoding does (in log space for ``log=True``); only the grid's positions are
  ever proposed.
* ``Categorical``: the choice's index ``0 .. n-1``, the integer form BoTorch's categorical kernel
  compares for equality.

Conditional parameters: a column whose parameter is inactive (see ``when``) is *pinned*, to
``INACTIVE_POSITION`` for a Float or Int and to an extra index ``n`` (a level no choice has) for a
categorical. Two points where a parameter is inactive then agree on its column, however it was
drawn, and the kernel separates the branches through the parent's column (a categorical kernel
tells choices apart); the acquisition sees its candidates pinned the same way
(:meth:`GPSpace.on_pinned_inputs`), so it is not misled by values of inactive columns, which
decoding drops.

Everything here works on tensors; :class:`GPSpace` knows the domains only through their sizes, so
the mapping to parameter values stays in :mod:`lightning_hpo.space` (``encode`` / ``decode``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_hpo.space import Categorical, Float, Int, SearchSpace

__all__ = ["GPSpace"]

#: Integer parameters with at most this many values try every value in each discrete move;
#: larger grids try the adjacent values and steps of halving length (see ``GPSpace.neighbours``).
EXHAUSTIVE_GRID_SIZE = 32
#: The model input of an inactive Float or Int column: the cube's centre, no further than half its
#: width from any value the parameter takes where it is active. Measured against a pin outside the
#: cube (-1), which keeps inactive points further from active ones (``benchmarks/CONDITIONAL.md``).
INACTIVE_POSITION = 0.5


@dataclass(frozen=True)
class _Grid:
    """An ``Int`` domain's values as positions of the unit cube (the centres of equal cells)."""

    size: int
    log: bool
    low: int
    high: int

    def position(self, index: Tensor) -> Tensor:
        """Unit-cube position of grid value ``index`` (``0 .. size-1``), as ``Int.encode`` gives it."""
        if not self.log:
            return (index + 0.5) / self.size
        lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
        return (torch.log(index + self.low) - lo) / (hi - lo)

    def index(self, u: Tensor) -> Tensor:
        """Grid index of the cell holding unit-cube coordinate ``u`` (as ``Int.decode`` picks it)."""
        u = u.clamp(0.0, 1.0)
        if not self.log:
            return torch.clamp(torch.floor(u * self.size), max=self.size - 1)
        lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
        return torch.clamp(torch.round(torch.exp(lo + u * (hi - lo))), self.low, self.high) - self.low


class GPSpace:
    """The model-side view of a :class:`~lightning_hpo.SearchSpace`.

    Args:
        space: the search space.

    Example:
        >>> from lightning_hpo import Categorical, Float, Int
        >>> gp_space = GPSpace(SearchSpace({"a": Float(0, 1), "b": Int(0, 3), "c": Categorical("xyz")}))
        >>> gp_space.from_unit(torch.tensor([[0.3, 0.3, 0.9]], dtype=torch.float64)).tolist()
        [[0.3, 0.375, 2.0]]
    """

    def __init__(self, space: SearchSpace) -> None:
        self.dim = len(space)
        self.continuous_dims: list[int] = []
        self.grids: dict[int, _Grid] = {}
        self.categories: dict[int, int] = {}
        for column, domain in enumerate(space.values()):
            if isinstance(domain, Float):
                self.continuous_dims.append(column)
            elif isinstance(domain, Int):
                self.grids[column] = _Grid(domain.size, domain.log, domain.low, domain.high)
            elif isinstance(domain, Categorical):
                self.categories[column] = len(domain.choices)
        self.ordinal_dims = sorted(self.continuous_dims + list(self.grids))
        self.categorical_dims = sorted(self.categories)
        self.discrete_dims = sorted(list(self.grids) + self.categorical_dims)
        self.conditions = _column_conditions(space)
        self._pins = [float(self.categories.get(column, INACTIVE_POSITION)) for column in range(self.dim)]

    def active_mask(self, X: Tensor) -> Tensor:
        """``... x d`` booleans: whether each column's parameter is active at each point of ``X`` (model inputs)."""
        mask = torch.ones_like(X, dtype=torch.bool)
        for column, conditions in self.conditions:
            active = torch.ones_like(mask[..., column])
            for parent, allowed in conditions:
                index = self._index(X[..., parent], parent)
                active = active & mask[..., parent] & torch.isin(index, allowed.to(X))
            mask[..., column] = active
        return mask

    def pin_inactive(self, X: Tensor) -> Tensor:
        """``X`` (``... x d`` model inputs) with every inactive column at its pinned value."""
        if not self.conditions:
            return X
        return torch.where(self.active_mask(X), X, torch.tensor(self._pins).to(X))

    def on_pinned_inputs(self, acquisition: torch.nn.Module) -> torch.nn.Module:
        """``acquisition`` evaluated on its inputs with inactive columns pinned (itself when nothing is conditional)."""
        return _OnPinnedInputs(acquisition, self) if self.conditions else acquisition

    def _index(self, values: Tensor, column: int) -> Tensor:
        """The grid index or choice index of model-input values of a discrete column."""
        if column in self.grids:
            return self.grids[column].index(values)
        return values.round()

    @property
    def n_discrete_points(self) -> float:
        """How many points the space holds when it has no Float parameter (``inf`` otherwise)."""
        if self.continuous_dims:
            return math.inf
        return math.prod([g.size for g in self.grids.values()] + list(self.categories.values()))

    def all_points(self, **tensor_kwargs: object) -> Tensor:
        """``N x d``: every point of a space without Float columns (see :attr:`n_discrete_points`)."""
        columns = []
        for column in range(self.dim):
            if column in self.grids:
                grid = self.grids[column]
                columns.append(grid.position(torch.arange(grid.size, **tensor_kwargs)))  # type: ignore[arg-type]
            else:
                columns.append(torch.arange(self.categories[column], **tensor_kwargs))  # type: ignore[arg-type]
        return torch.cartesian_prod(*columns).reshape(-1, self.dim)

    def from_unit(self, U: Tensor) -> Tensor:
        """``n x d`` unit-cube points to model inputs; each discrete column takes its cell's value, and
        each inactive column its pinned value (an encoded trial holds ``nan`` there).

        For encoded trials this is exact; for uniform points it draws every value of a discrete
        column with the same chance, as decoding them would.
        """
        X = U.clone()
        for column, grid in self.grids.items():
            X[:, column] = grid.position(grid.index(U[:, column]))
        for column, n in self.categories.items():
            X[:, column] = torch.clamp(torch.floor(U[:, column].clamp(0.0, 1.0) * n), max=n - 1)
        return self.pin_inactive(X)

    def to_unit(self, X: Tensor) -> Tensor:
        """``n x d`` model inputs to unit-cube points that :meth:`SearchSpace.decode` maps to params."""
        U = X.clone()
        for column, n in self.categories.items():
            U[:, column] = (X[:, column].round() + 0.5) / n
        return U.clamp(0.0, 1.0)

    def neighbours(self, X: Tensor) -> Tensor:
        """``b x m x d``: for each of the ``b`` points, the points that differ in one discrete column.

        A categorical column takes each of its choices and a small integer grid each of its values.
        A large grid takes the adjacent values and the values 1/2, 1/4, ... of the unit interval away
        on either side (in log space for log grids), down to about one cell. The list may hold
        ``X`` itself and duplicates; it has the same length ``m`` for every point.
        """
        moves = []
        for column, grid in self.grids.items():
            if grid.size <= EXHAUSTIVE_GRID_SIZE:
                indices = torch.arange(grid.size, dtype=X.dtype, device=X.device).expand(len(X), -1)
            else:
                here = X[:, column : column + 1]
                offsets = 2.0 ** -torch.arange(1, math.ceil(math.log2(grid.size)) + 1, dtype=X.dtype, device=X.device)
                current = grid.index(here)
                indices = torch.cat(
                    [grid.index(here - offsets), grid.index(here + offsets), current - 1, current + 1], dim=-1
                ).clamp(0, grid.size - 1)
            moves.append(_with_column(X, column, grid.position(indices)))
        for column, n in self.categories.items():
            values = torch.arange(n, dtype=X.dtype, device=X.device).expand(len(X), -1)
            moves.append(_with_column(X, column, values))
        return torch.cat(moves, dim=1)

    def perturb(self, X: Tensor, n: int, *, scale: float, generator: torch.Generator) -> Tensor:
        """``n`` random points near each row of ``X`` (``len(X) * n`` rows), to start local searches from.

        Float and Int columns move by a normal step of ``scale`` in the unit cube (an Int then takes
        the value of the cell it lands in); each categorical column takes a random choice with
        probability ``scale``.
        """
        points = X.repeat_interleave(n, dim=0)
        U = self.to_unit(points)
        noise = torch.randn(U.shape, generator=generator, dtype=X.dtype).to(X.device)
        redraw = torch.rand(U.shape, generator=generator, dtype=X.dtype).to(X.device)
        uniform = torch.rand(U.shape, generator=generator, dtype=X.dtype).to(X.device)
        U[:, self.ordinal_dims] += scale * noise[:, self.ordinal_dims]
        for column in self.categorical_dims:
            U[:, column] = torch.where(redraw[:, column] < scale, uniform[:, column], U[:, column])
        return self.from_unit(U.clamp(0.0, 1.0))


class _OnPinnedInputs(torch.nn.Module):
    """An acquisition function that sees its inputs as the GP was trained: inactive columns pinned."""

    def __init__(self, acquisition: torch.nn.Module, gp_space: GPSpace) -> None:
        super().__init__()
        self.acquisition = acquisition
        self.gp_space = gp_space

    def forward(self, X: Tensor) -> Tensor:
        return self.acquisition(self.gp_space.pin_inactive(X))


def _column_conditions(space: SearchSpace) -> list[tuple[int, tuple[tuple[int, Tensor], ...]]]:
    """``(column, ((parent column, indices of the parent's values that activate it), ...))`` for each
    conditional parameter, parents before children; indices are choice indices or grid indices."""
    columns = {name: column for column, name in enumerate(space)}
    conditions = []
    for name in space.parents_first:
        parents = []
        for parent, values in space[name].when.items():
            domain = space[parent]
            indices = [(v - domain.low) // domain.step if isinstance(domain, Int) else domain.index(v) for v in values]
            parents.append((columns[parent], torch.tensor(indices, dtype=torch.float64)))
        if parents:
            conditions.append((columns[name], tuple(parents)))
    return conditions


def _with_column(X: Tensor, column: int, values: Tensor) -> Tensor:
    """``b x m x d``: ``X`` repeated ``m`` times along a new axis, with ``column`` set to ``values`` (``b x m``)."""
    out = X.unsqueeze(1).repeat(1, values.shape[-1], 1)
    out[:, :, column] = values
    return out
