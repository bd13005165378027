"""Uniform random search and scrambled Sobol sequences."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from lightning_hpo.samplers.base import Sampler
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import Trial

__all__ = ["RandomSampler", "SobolSampler"]


class RandomSampler(Sampler):
    """Independent uniform draws from the unit cube (log-uniform for log domains).

    Trial ``n``'s point depends only on ``(seed, n)``, so any worker computes the same one.

    Example:
        >>> from lightning_hpo import Float
        >>> space = SearchSpace({"x": Float(0.0, 1.0)})
        >>> RandomSampler(seed=0).sample(space, [], number=3, directions=["min"]) == \\
        ...     RandomSampler(seed=0).sample(space, [], number=3, directions=["min"])
        True
    """

    def sample(
        self, space: SearchSpace, trials: Sequence[Trial], *, number: int, directions: Sequence[str]
    ) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, number])
        return space.decode(rng.random(len(space)).tolist())


class SobolSampler(Sampler):
    """Points of a scrambled Sobol sequence: trial ``n`` takes point ``n``.

    A low-discrepancy sequence covers the space more evenly than random draws, which is what the
    first trials of a study (before any model can be fitted) need.
    """

    def sample(
        self, space: SearchSpace, trials: Sequence[Trial], *, number: int, directions: Sequence[str]
    ) -> dict[str, Any]:
        return space.decode(sobol_point(len(space), self.seed, number))


def sobol_point(dimension: int, seed: int, index: int) -> list[float]:
    """Point ``index`` of the scrambled Sobol sequence of this dimension and seed."""
    import torch

    engine, lock = _sobol_engine(dimension, seed % 2**63)
    with lock:
        engine.reset()
        if index:
            engine.fast_forward(index)
        return engine.draw(1, dtype=torch.float64)[0].tolist()


@functools.lru_cache(maxsize=32)
def _sobol_engine(dimension: int, seed: int) -> tuple[Any, threading.Lock]:
    """A scrambled Sobol engine, kept: scrambling costs more than fast-forwarding to any trial's point."""
    from torch.quasirandom import SobolEngine

    return SobolEngine(dimension, scramble=True, seed=seed), threading.Lock()
