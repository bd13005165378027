"""Pruners decide, from stored intermediate values, whether a running trial should stop early.

A pruner is a pure, stateless function of the trial being judged and the study's other trials, so
every process that asks gets the same answer from the same history.

Steps are what the callback reports: ``trainer.global_step`` at each validation. Trials need not
report at the same steps (a tuned batch size changes the steps per epoch): a pruner compares the
trial at its latest step ``s`` with what each other trial had reached *by* step ``s``, counting only
trials that ran at least that far.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.trial import Trial, TrialState

__all__ = ["Pruner", "NopPruner", "PercentilePruner", "MedianPruner"]


class Pruner(abc.ABC):
    """Decides whether a RUNNING trial should stop.

    ``prune`` is called after each report, with the trial as stored (its intermediate values
    included) and every trial of the study.
    """

    @abc.abstractmethod
    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        """Return True to stop ``trial`` now."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class NopPruner(Pruner):
    """Never prunes."""

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        return False


def _check_int(owner: str, name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"{owner}: `{name}` must be an int, but got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise InvalidArgumentError(f"{owner}: `{name} >= {minimum}` must hold, but got {name}={value!r}.")
    return value


def single_direction(pruner: Pruner, directions: Sequence[str]) -> bool:
    """True when minimizing; raise for multi-objective studies, which this pruner can't judge."""
    if len(directions) != 1:
        raise InvalidArgumentError(
            f"{type(pruner).__name__} judges one objective, but the study has {len(directions)}: "
            "use NopPruner for multi-objective studies."
        )
    return directions[0] == "min"


def best_up_to(trial: Trial, step: int, minimize: bool) -> float | None:
    """The best finite value ``trial`` reported at steps ``<= step``, or None."""
    values = [v for s, v in trial.intermediate_values.items() if s <= step and math.isfinite(v)]
    if not values:
        return None
    return min(values) if minimize else max(values)


def peers_at(trial: Trial, trials: Sequence[Trial], step: int, minimize: bool) -> list[float]:
    """Each other trial's best value by ``step``, for the trials that reported at or past ``step``."""
    values = []
    for other in trials:
        if other.number == trial.number or other.state is TrialState.FAIL:
            continue
        if other.last_step is None or other.last_step < step:
            continue
        value = best_up_to(other, step, minimize)
        if value is not None:
            values.append(value)
    return values


class PercentilePruner(Pruner):
    """Prune a trial whose best value so far is worse than the given percentile of its peers'.

    Args:
        percentile: in ``[0, 100]``; a trial is kept only if it is within the best ``percentile``
            percent of the trials that got as far (25 keeps the top quarter).
        n_startup_trials: prune nothing until this many trials are COMPLETE.
        n_warmup_steps: prune nothing before this step of a trial.
        interval_steps: judge only at steps that are this many steps after the warm-up's end
            apart (1 judges at every report).
        n_min_trials: judge only when at least this many other trials reached the step.

    Example:
        >>> PercentilePruner(25.0, n_startup_trials=5)
        PercentilePruner(percentile=25.0, n_startup_trials=5, n_warmup_steps=0, interval_steps=1, n_min_trials=1)
    """

    def __init__(
        self,
        percentile: float,
        *,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        n_min_trials: int = 1,
    ) -> None:
        name = type(self).__name__
        if not isinstance(percentile, (int, float)) or isinstance(percentile, bool):
            raise ArgumentTypeError(f"{name}: `percentile` must be a number, but got {percentile!r}.")
        if not 0.0 <= percentile <= 100.0:
            raise InvalidArgumentError(f"{name}: `0 <= percentile <= 100` must hold, but got percentile={percentile!r}.")
        self.percentile = float(percentile)
        self.n_startup_trials = _check_int(name, "n_startup_trials", n_startup_trials, 0)
        self.n_warmup_steps = _check_int(name, "n_warmup_steps", n_warmup_steps, 0)
        self.interval_steps = _check_int(name, "interval_steps", interval_steps, 1)
        self.n_min_trials = _check_int(name, "n_min_trials", n_min_trials, 1)

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        minimize = single_direction(self, directions)
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        current = trial.best_intermediate(minimize)
        if current is None:  # nothing but nan/inf so far: the run diverged
            return True
        if not self._judges_at(trial, step):
            return False
        if sum(t.state is TrialState.COMPLETE for t in trials) < self.n_startup_trials:
            return False
        peers = peers_at(trial, trials, step, minimize)
        if len(peers) < self.n_min_trials:
            return False
        # For maximization, "the best p percent" is the top of the sorted values.
        threshold = _percentile(peers, self.percentile if minimize else 100.0 - self.percentile)
        return current > threshold if minimize else current < threshold

    def _judges_at(self, trial: Trial, step: int) -> bool:
        """True if ``step`` is the first report in its interval (Optuna's rule)."""
        if self.interval_steps == 1:
            return True
        interval = (step - self.n_warmup_steps) // self.interval_steps
        earlier = [s for s in trial.intermediate_values if self.n_warmup_steps <= s < step]
        return all((s - self.n_warmup_steps) // self.interval_steps != interval for s in earlier)


class MedianPruner(PercentilePruner):
    """Prune a trial whose best value so far is worse than the median of its peers' at that step.

    Example:
        >>> MedianPruner(n_startup_trials=3).percentile
        50.0
    """

    def __init__(
        self,
        *,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        n_min_trials: int = 1,
    ) -> None:
        super().__init__(
            50.0,
            n_startup_trials=n_startup_trials,
            n_warmup_steps=n_warmup_steps,
            interval_steps=interval_steps,
            n_min_trials=n_min_trials,
        )


def _percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile, as numpy's default."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
