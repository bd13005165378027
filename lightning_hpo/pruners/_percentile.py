"""Percentile and median rules: stop a trial that is worse than most of the trials that got as far."""

from __future__ import annotations

import math
from collections.abc import Sequence

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.pruners._base import Pruner, check_int, judges_at, peers_at, single_direction
from lightning_hpo.trial import Trial, TrialState

__all__ = ["PercentilePruner", "MedianPruner"]


class PercentilePruner(Pruner):
    """Prune a trial whose best value so far is worse than the given percentile of its peers'.

    At a trial's latest step ``s``, its peers are the other trials (RUNNING, COMPLETE or PRUNED)
    that reported at or past ``s``, each with its best value *by* step ``s``; so trials reporting
    at different steps compare fairly, and a trial is never compared with less training than it had.
    A trial that has reported nothing but nan/inf once past the warm-up is pruned: it diverged.

    Args:
        percentile: in ``[0, 100]``; a trial is kept only if it is within the best ``percentile``
            percent of the trials that got as far (25 keeps the top quarter).
        n_startup_trials: prune nothing until this many trials are COMPLETE.
        n_warmup_steps: prune nothing before this step of a trial. Steps are optimizer steps
            (``trainer.global_step``), not epochs: with 20 batches per epoch, 60 waits 3 epochs.
        interval_steps: judge only at the first report of each window of this many steps after
            the warm-up (1 judges at every report).
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
            raise InvalidArgumentError(
                f"{name}: `0 <= percentile <= 100` must hold, but got percentile={percentile!r}."
            )
        self.percentile = float(percentile)
        self.n_startup_trials = check_int(name, "n_startup_trials", n_startup_trials, 0)
        self.n_warmup_steps = check_int(name, "n_warmup_steps", n_warmup_steps, 0)
        self.interval_steps = check_int(name, "interval_steps", interval_steps, 1)
        self.n_min_trials = check_int(name, "n_min_trials", n_min_trials, 1)

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        minimize = single_direction(self, directions)
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        current = trial.best_intermediate(minimize)
        if current is None:
            return True
        if not judges_at(trial, self.n_warmup_steps, self.interval_steps):
            return False
        if sum(t.state is TrialState.COMPLETE for t in trials) < self.n_startup_trials:
            return False
        peers = peers_at(trial, trials, step, minimize)
        if len(peers) < self.n_min_trials:
            return False
        # For maximization, "the best p percent" is the top of the sorted values.
        threshold = percentile(peers, self.percentile if minimize else 100.0 - self.percentile)
        return current > threshold if minimize else current < threshold


class MedianPruner(PercentilePruner):
    """Prune a trial whose best value so far is worse than the median of its peers' at that step.

    Args: as :class:`PercentilePruner`, without ``percentile`` (50).

    Example:
        >>> MedianPruner(n_startup_trials=3, n_warmup_steps=60).percentile
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


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile ``q`` in ``[0, 100]`` of non-empty ``values``, as numpy's default."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
