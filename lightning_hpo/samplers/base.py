"""The sampler contract."""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from typing import Any

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import Trial

__all__ = ["Sampler"]


class Sampler(abc.ABC):
    """Chooses the parameters of a new trial.

    A sampler is a pure function of ``(space, trials, seed)`` and the new trial's number: it keeps no
    history of its own, so every worker, every rank and every resumed run suggests from the same
    stored history. Caches are allowed only where they never change a result.

    Args:
        seed: makes suggestions reproducible; ``None`` draws one at construction.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ArgumentTypeError(f"{type(self).__name__}: `seed` must be an int or None, but got {seed!r}.")
        if seed is not None and seed < 0:
            raise InvalidArgumentError(f"{type(self).__name__}: `seed >= 0` must hold, but got seed={seed}.")
        self.seed: int = int.from_bytes(os.urandom(4), "little") if seed is None else seed

    @abc.abstractmethod
    def sample(
        self,
        space: SearchSpace,
        trials: Sequence[Trial],
        *,
        number: int,
        directions: Sequence[str],
    ) -> dict[str, Any]:
        """Return the parameters of trial ``number``.

        Args:
            space: the study's search space.
            trials: every other trial of the study whose parameters are set, in number order, in all
                states: finished ones are history, RUNNING ones are pending evaluations.
            number: the number of the trial being sampled.
            directions: ``"min"`` or ``"max"`` per objective.
        """

    def check_objectives(self, directions: Sequence[str]) -> None:
        """Raise a clear error when this sampler cannot serve a study of these ``directions``
        (``"min"`` or ``"max"`` per objective). The study calls it when it opens, before any trial;
        every sampler serves any number of objectives unless it says otherwise here."""
        return None

    def take_trial_attrs(self, number: int) -> dict[str, Any]:
        """Attributes to store with trial ``number``, which :meth:`sample` just suggested (JSON-safe; none by default).

        A sampler that must remember something about its own suggestions (Optuna's CMA-ES keeps its
        state with each trial it samples) hands it over here; the study stores it in the trial's
        ``attrs`` so that the next suggestion, in any worker, reads it from storage.
        """
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"
