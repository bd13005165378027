from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.utils.multi_objective.hypervolume import Hypervolume
from botorch.utils.multi_objective.pareto import is_non_dominated

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.pareto import (
    crowding_distance,
    hypervolume,
    in_top_k,
    minimization_form,
    non_dominated_mask,
    non_dominated_sort,
)


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([1, 1], [2, 2], True),
        ([1, 2], [2, 2], True),
        ([2, 2], [2, 2], False),  # equal points do not dominate each other
        ([1, 3], [2, 2], False),
        ([3, 3], [2, 2], False),
    ],
)
def test_a_point_dominated_by_another_is_not_in_the_pareto_set(a, b, expected):
    assert bool(non_dominated_mask([a, b])[1]) is not expected


def test_minimization_form_negates_max_columns():
    assert minimization_form([[1.0, 2.0]], ["min", "max"]).tolist() == [[1.0, -2.0]]
    with pytest.raises(InvalidArgumentError, match="one value per direction"):
        minimization_form([[1.0, 2.0]], ["min"])
    with pytest.raises(InvalidArgumentError, match="'min' or 'max'"):
        minimization_form([[1.0]], ["up"])


def test_non_dominated_mask_keeps_equal_points_and_drops_dominated_ones():
    points = [[1, 4], [2, 2], [2, 2], [4, 1], [3, 3], [5, 5]]
    assert non_dominated_mask(points).tolist() == [True, True, True, True, False, False]


@pytest.mark.parametrize("m", [2, 3, 4])
def test_non_dominated_mask_agrees_with_botorch(m):
    rng = np.random.default_rng(m)
    for _ in range(20):
        points = rng.integers(0, 6, size=(30, m)).astype(float)  # small grid: ties and duplicates
        expected = is_non_dominated(torch.tensor(-points), deduplicate=False).numpy()
        assert non_dominated_mask(points).tolist() == expected.tolist()


def test_non_dominated_sort_peels_fronts():
    points = [[1, 4], [4, 1], [2, 5], [5, 2], [3, 3], [6, 6], [2, 2]]
    assert non_dominated_sort(points).tolist() == [0, 0, 1, 1, 1, 2, 0]
    ranks = non_dominated_sort(np.random.default_rng(0).random((50, 3)))
    assert ranks.min() == 0 and (ranks >= 0).all()
    points = np.random.default_rng(0).random((50, 3))
    for rank in range(ranks.max() + 1):  # each front is the Pareto set of what the earlier fronts leave
        remaining = points[ranks >= rank]
        assert non_dominated_mask(remaining).tolist() == (ranks[ranks >= rank] == rank).tolist()


@pytest.mark.parametrize(
    "points,reference,expected",
    [
        ([[1.0]], [3.0], 2.0),
        ([[1.0, 2.0]], [3.0, 3.0], 2.0),
        ([[1.0, 2.0], [2.0, 1.0]], [3.0, 3.0], 3.0),
        ([[1.0, 2.0], [2.0, 1.0], [2.5, 2.5]], [3.0, 3.0], 3.0),  # a dominated point adds nothing
        ([[1.0, 2.0], [4.0, 0.0]], [3.0, 3.0], 2.0),  # a point beyond the reference adds nothing
        ([[0.0, 0.0, 0.0]], [1.0, 2.0, 3.0], 6.0),
        ([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [1.0, 2.0, 2.0], 3.0),  # 2 + 2 - overlap 1
    ],
)
def test_hypervolume_by_hand(points, reference, expected):
    assert hypervolume(points, reference) == pytest.approx(expected)


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_agrees_with_botorch(m):
    rng = np.random.default_rng(10 + m)
    for n in (1, 5, 40):
        points = rng.random((n, m))
        reference = np.full(m, 1.1)
        expected = Hypervolume(torch.tensor(-reference)).compute(torch.tensor(-points[non_dominated_mask(points)]))
        assert hypervolume(points, reference) == pytest.approx(expected, rel=1e-9)


def test_hypervolume_of_nothing_is_zero_and_bad_input_is_named():
    assert hypervolume(np.empty((0, 2)), [1.0, 1.0]) == 0.0
    assert hypervolume([[2.0, 2.0]], [1.0, 1.0]) == 0.0
    with pytest.raises(InvalidArgumentError, match="one value per objective \\(2\\), but got 3"):
        hypervolume([[0.0, 0.0]], [1.0, 1.0, 1.0])
    with pytest.raises(InvalidArgumentError, match="must be finite"):
        hypervolume([[np.nan, 0.0]], [1.0, 1.0])
    with pytest.raises(InvalidArgumentError, match="\\(n, m\\) array"):
        non_dominated_mask(np.zeros((2, 2, 2)))


INF = float("inf")


@pytest.mark.parametrize(
    "points, expected",
    [
        # ranges 4 and 4: point 1's neighbours are 3 apart in x and 3 in y -> 3/4 + 3/4
        ([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]], [INF, 1.5, 1.25, INF]),
        # y is constant: it adds nothing; x range 2 -> the middle point gets (2 - 0) / 2
        ([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]], [INF, 1.0, INF]),
        ([[0.0, 1.0], [1.0, 0.0]], [INF, INF]),
        ([[1.0, 1.0], [1.0, 1.0]], [0.0, 0.0]),  # all equal: nothing sets them apart
        ([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [2.0, 0.0, 2.0]], [INF, INF, INF]),  # each an extreme somewhere
    ],
)
def test_crowding_distance_by_hand(points, expected):
    assert crowding_distance(points).tolist() == pytest.approx(expected)


@pytest.mark.parametrize(
    "k, expected",
    [
        # fronts: {0, 1, 2, 3} (crowding inf, 1.5, 1.25, inf), {4}, {5}
        (1, [True, False, False, True]),  # the two extremes tie: each counts the tie in its favour
        (2, [True, False, False, True]),
        (3, [True, True, False, True]),
        (4, [True, True, True, True]),
    ],
)
def test_in_top_k_ranks_by_front_then_crowding(k, expected):
    points = [[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0], [5.0, 5.0], [6.0, 6.0]]
    assert [in_top_k(points, i, k) for i in range(4)] == expected
    assert in_top_k(points, 4, k) is (k >= 5) and in_top_k(points, 5, k) is (k >= 6)
