"""Patience: prune only a trial that has stopped improving, as Lightning's EarlyStopping does."""

from __future__ import annotations

from collections.abc import Sequence

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.pruners._base import Pruner, check_int, single_direction
from lightning_hpo.trial import Trial, best_finite

__all__ = ["PatientPruner"]


class PatientPruner(Pruner):
    """Prune only when the trial has not improved for ``patience`` reports and ``wrapped`` agrees.

    The trial's best value over its last ``patience`` reports is compared with its best value
    before them: it has stagnated unless the recent best beats the earlier best by more than
    ``min_delta``. A stagnating trial is pruned if ``wrapped`` says so (or always, with
    ``wrapped=None``: early stopping as a pruner). Patience counts reports (validations), not
    steps, as in Lightning's ``EarlyStopping(patience=...)``, which stops at the same report.

    Args:
        wrapped: the pruner that judges stagnating trials, or None to prune them all.
        patience: reports without improvement to tolerate (>= 1).
        min_delta: the least change that counts as an improvement (>= 0).

    Example:
        >>> from lightning_hpo.pruners import MedianPruner
        >>> PatientPruner(MedianPruner(), patience=3).patience
        3
    """

    def __init__(self, wrapped: Pruner | None, *, patience: int, min_delta: float = 0.0) -> None:
        name = type(self).__name__
        if wrapped is not None and not isinstance(wrapped, Pruner):
            raise ArgumentTypeError(f"{name}: `wrapped` must be a lightning_hpo Pruner or None, but got {wrapped!r}.")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)):
            raise ArgumentTypeError(f"{name}: `min_delta` must be a number, but got {min_delta!r}.")
        if not min_delta >= 0.0:
            raise InvalidArgumentError(f"{name}: `min_delta >= 0` must hold, but got min_delta={min_delta!r}.")
        self.wrapped = wrapped
        self.patience = check_int(name, "patience", patience, 1)
        self.min_delta = float(min_delta)

    @property
    def can_prune(self) -> bool:
        return self.wrapped is None or self.wrapped.can_prune

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        minimize = single_direction(self, directions)
        steps = sorted(trial.intermediate_values)
        if len(steps) <= self.patience:
            return False
        before = best_finite([trial.intermediate_values[s] for s in steps[: -self.patience]], minimize)
        recent = best_finite([trial.intermediate_values[s] for s in steps[-self.patience :]], minimize)
        if before is None:
            return False  # nothing finite before the window: no baseline to stagnate against
        if recent is not None:
            improved = recent < before - self.min_delta if minimize else recent > before + self.min_delta
            if improved:
                return False
        return True if self.wrapped is None else self.wrapped.prune(trial, trials, directions=directions)
