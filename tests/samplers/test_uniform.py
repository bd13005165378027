from __future__ import annotations

import pytest
import torch
from torch.quasirandom import SobolEngine

from lightning_hpo import Categorical, Float, Int, RandomSampler, SearchSpace, SobolSampler
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.samplers.uniform import sobol_point

SPACE = SearchSpace({"lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 5), "c": Categorical(["a", "b", "c"])})


@pytest.mark.parametrize("sampler_cls", [RandomSampler, SobolSampler])
def test_suggestions_are_valid_and_reproducible(sampler_cls):
    first = [sampler_cls(seed=7).sample(SPACE, [], number=n, directions=["min"]) for n in range(16)]
    again = [sampler_cls(seed=7).sample(SPACE, [], number=n, directions=["min"]) for n in range(16)]
    other = [sampler_cls(seed=8).sample(SPACE, [], number=n, directions=["min"]) for n in range(16)]
    assert first == again and first != other
    for params in first:
        SPACE.check_params(params)
    assert {p["c"] for p in first} == {"a", "b", "c"} and {p["n"] for p in first} == {1, 2, 3, 4, 5}


def test_sobol_points_are_the_scrambled_sequence_in_order():
    points = [sobol_point(2, seed=0, index=i) for i in range(8)]
    # A Sobol net: each half of each axis holds exactly half of the first 8 points.
    for axis in (0, 1):
        assert sum(p[axis] < 0.5 for p in points) == 4
    assert len({tuple(p) for p in points}) == 8


def test_sobol_points_do_not_depend_on_the_order_they_are_asked_in():
    asked = {i: sobol_point(3, seed=5, index=i) for i in (7, 2, 9, 0, 2, 5, 1, 3, 8, 4, 6)}
    sequence = SobolEngine(3, scramble=True, seed=5).draw(10, dtype=torch.float64).tolist()
    assert [asked[i] for i in range(10)] == sequence


@pytest.mark.parametrize(
    "seed, error", [("1", ArgumentTypeError), (True, ArgumentTypeError), (-1, InvalidArgumentError)]
)
def test_bad_seed(seed, error):
    with pytest.raises(error, match="seed"):
        RandomSampler(seed=seed)


def test_no_seed_draws_one():
    assert RandomSampler().seed != RandomSampler().seed
