"""Pareto maths for multi-objective studies, on plain numpy arrays (no study, no torch).

:func:`best_trials` applies it to trials: the one rule for "the best trials" of any study.
Every other function takes objective values in *minimization form*: an ``(n, m)`` array, one row per
point and one column per objective, where lower is better in every column.
:func:`minimization_form` builds it from stored values and the study's ``mode`` (it negates the
``"max"`` columns), so the rest never needs to know the directions.

Example:
    >>> values = minimization_form([[1.0, 0.9], [2.0, 0.8], [3.0, 0.95]], ["min", "max"])
    >>> non_dominated_mask(values).tolist()
    [True, False, True]
    >>> hypervolume(values, reference_point=[4.0, -0.5])  # 2 x 0.4 + 1 x 0.45
    1.25
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.trial import Direction, Trial, TrialState

__all__ = [
    "best_trials",
    "minimization_form",
    "non_dominated_mask",
    "non_dominated_sort",
    "crowding_distance",
    "in_top_k",
    "hypervolume",
]

ArrayLike = npt.ArrayLike


def best_trials(trials: Sequence[Trial], directions: Sequence[Direction]) -> list[Trial]:
    """The feasible COMPLETE trials that no other feasible COMPLETE trial beats, in the order given (number
    order for a study's). Feasible: satisfying the study's outcome constraints (:attr:`Trial.feasible`).

    With one objective, the trials tied for the best value (the first of them is *the* best trial);
    with several, the Pareto set: no other trial is at least as good in every objective and better
    in one. Empty while no trial has completed.
    """
    completed = [t for t in trials if t.state is TrialState.COMPLETE and t.values is not None and t.feasible]
    if not completed:
        return []
    if len(directions) == 1:
        sign = 1.0 if directions[0] == "min" else -1.0
        best = min(sign * t.values[0] for t in completed)  # type: ignore[index]
        return [t for t in completed if sign * t.values[0] == best]  # type: ignore[index]
    keep = non_dominated_mask(minimization_form([t.values for t in completed], directions))
    return [t for t, kept in zip(completed, keep) if kept]


def minimization_form(values: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """``values`` as an ``(n, m)`` float array with its ``"max"`` columns negated."""
    array = _as_points(values)
    if array.shape[1] != len(directions):
        raise InvalidArgumentError(
            f"Each point must have one value per direction ({len(directions)}), but got {array.shape[1]} values."
        )
    for direction in directions:
        if direction not in ("min", "max"):
            raise InvalidArgumentError(f"A direction must be 'min' or 'max', but got {direction!r}.")
    signs = np.array([1.0 if d == "min" else -1.0 for d in directions])
    return array * signs


def _domination_matrix(points: np.ndarray) -> np.ndarray:
    """``D[i, j]``: point ``i`` dominates point ``j`` (an ``(n, n)`` bool array)."""
    no_worse = np.all(points[:, None, :] <= points[None, :, :], axis=2)
    better = np.any(points[:, None, :] < points[None, :, :], axis=2)
    return no_worse & better


def non_dominated_mask(values: ArrayLike) -> np.ndarray:
    """Which points no other point dominates (the Pareto set); equal points are all kept.

    Args:
        values: ``(n, m)`` objective values in minimization form.

    Returns:
        An ``(n,)`` bool array.
    """
    points = _as_points(values)
    mask = np.ones(len(points), dtype=bool)
    # One row at a time keeps memory at O(n m) for large studies.
    for i, point in enumerate(points):
        dominated_by = np.all(points <= point, axis=1) & np.any(points < point, axis=1)
        mask[i] = not dominated_by.any()
    return mask


def non_dominated_sort(values: ArrayLike) -> np.ndarray:
    """The Pareto rank of each point: 0 for the Pareto set, 1 for the set once rank 0 is removed, ...

    Args:
        values: ``(n, m)`` objective values in minimization form.

    Returns:
        An ``(n,)`` int array of ranks.
    """
    points = _as_points(values)
    dominated = _domination_matrix(points)
    dominator_count = dominated.sum(axis=0)
    ranks = np.full(len(points), -1, dtype=int)
    front = np.flatnonzero(dominator_count == 0)
    rank = 0
    while front.size:
        ranks[front] = rank
        dominator_count = dominator_count - dominated[front].sum(axis=0)
        dominator_count[ranks >= 0] = -1  # never picked again
        front = np.flatnonzero(dominator_count == 0)
        rank += 1
    return ranks


def crowding_distance(values: ArrayLike) -> np.ndarray:
    """NSGA-II's crowding distance of each point of one front: how sparse the front is around it.

    For each objective the points are sorted by it; the two extremes get infinity, every other
    point the gap between its two neighbours divided by the objective's range; a point's distance
    is the sum over objectives. An objective on which all points are equal adds nothing.

    Args:
        values: ``(n, m)`` objective values in minimization form, usually one Pareto front.

    Returns:
        An ``(n,)`` float array; larger is more isolated (kept first by NSGA-II).

    Example:
        >>> crowding_distance([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]]).tolist()
        [inf, 1.5, 1.25, inf]
    """
    points = _as_points(values)
    distances = np.zeros(len(points))
    if len(points) == 0:
        return distances
    for column in points.T:
        low, high = column.min(), column.max()
        if high == low:
            continue
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        distances[order[1:-1]] += (ordered[2:] - ordered[:-2]) / (high - low)
        distances[order[[0, -1]]] = np.inf
    return distances


def in_top_k(values: ArrayLike, index: int, k: int) -> bool:
    """Whether point ``index`` is among the best ``k`` points, as NSGA-II's survival selects them.

    Points are ranked by Pareto rank (:func:`non_dominated_sort`); in the front that does not fit
    whole into the ``k`` places, by crowding distance within that front (the more isolated first,
    which keeps the front's spread). Ties count in the point's favour: it is in the top ``k``
    unless ``k`` or more points rank strictly ahead of it.

    Args:
        values: ``(n, m)`` objective values in minimization form.
        index: the point asked about.
        k: the number of places, ``1 <= k``.

    Example:
        >>> points = [[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [5.0, 5.0]]  # fronts: 0, 1, 2 / 3 / 4
        >>> [in_top_k(points, i, 2) for i in range(5)]  # 3 points share front 0: its extremes win
        [True, False, True, False, False]
    """
    points = _as_points(values)
    ranks = non_dominated_sort(points)
    own = ranks[index]
    ahead = int(np.sum(ranks < own))
    front = np.flatnonzero(ranks == own)
    if ahead + len(front) <= k:
        return True
    if ahead >= k:
        return False
    distances = crowding_distance(points[front])
    mine = distances[np.flatnonzero(front == index)[0]]
    return int(np.sum(distances > mine)) < k - ahead


def hypervolume(values: ArrayLike, reference_point: ArrayLike) -> float:
    """The volume dominated by the points and bounded by ``reference_point`` (exact).

    Points that are not strictly better than the reference point in every objective add nothing.
    Exact by slicing along the last objective: ``O(n log n)`` for 2 objectives and ``O(n^2 log n)``
    for 3; it works for more, but its cost grows by a factor ``n`` per objective.

    Args:
        values: ``(n, m)`` objective values in minimization form (dominated points are allowed).
        reference_point: ``(m,)``, worse than every point of interest in every objective.
    """
    points = _as_points(values)
    reference = np.asarray(reference_point, dtype=float).reshape(-1)
    if reference.shape[0] != points.shape[1]:
        raise InvalidArgumentError(
            f"The reference point must have one value per objective ({points.shape[1]}), "
            f"but got {reference.shape[0]} values."
        )
    if not np.all(np.isfinite(reference)):
        raise InvalidArgumentError(f"The reference point must be finite, but got {reference.tolist()}.")
    points = points[np.all(points < reference, axis=1)]
    if len(points) == 0:
        return 0.0
    return float(_hypervolume(points[non_dominated_mask(points)], reference))


def _hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    m = points.shape[1]
    if m == 1:
        return float(reference[0] - points[:, 0].min())
    if m == 2:
        order = np.argsort(points[:, 0], kind="stable")
        xs, ys = points[order, 0], points[order, 1]
        best_y = np.minimum.accumulate(ys)  # the staircase: lowest y among points with smaller x
        widths = np.diff(np.append(xs, reference[0]))
        return float(np.sum(widths * (reference[1] - best_y)))
    # Slice along the last objective: between two consecutive levels, the slab's cross-section is
    # the (m-1)-dimensional hypervolume of the points at or below the lower level.
    order = np.argsort(points[:, -1], kind="stable")
    levels = points[order, -1]
    heights = np.diff(np.append(levels, reference[-1]))
    total = 0.0
    for k in range(len(order)):
        if heights[k] > 0:
            total += heights[k] * _hypervolume(points[order[: k + 1], :-1], reference[:-1])
    return total


def _as_points(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 1)
    if array.ndim != 2:
        raise InvalidArgumentError(f"Objective values must form an (n, m) array, but got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError("Objective values must be finite, but got nan or infinity.")
    return array
