"""Stop a trial whose latest value is nan or outside fixed bounds: a diverging run."""

from __future__ import annotations

import math
from collections.abc import Sequence

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.pruners._base import Pruner, check_int, check_optional_float, judges_at
from lightning_hpo.trial import Trial

__all__ = ["ThresholdPruner"]


class ThresholdPruner(Pruner):
    """Prune a trial whose latest reported value is nan, or below ``lower``, or above ``upper``.

    Unlike the ranking pruners, it looks at the latest value, not the best so far: a loss that
    was fine and then exploded (or turned nan) is caught at once. It needs no other trial, so it
    also protects the very first one.

    Args:
        lower: prune below this value (None: no lower bound).
        upper: prune above this value (None: no upper bound); e.g. ``upper=10.0`` for a
            cross-entropy that starts near 2.3.
        n_warmup_steps: judge nothing before this step (nan included).
        interval_steps: judge only at the first report of each window of this many steps after
            the warm-up.

    Example:
        >>> ThresholdPruner(upper=10.0)
        ThresholdPruner(lower=None, upper=10.0, n_warmup_steps=0, interval_steps=1)
    """

    def __init__(
        self,
        *,
        lower: float | None = None,
        upper: float | None = None,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
    ) -> None:
        name = type(self).__name__
        self.lower = check_optional_float(name, "lower", lower)
        self.upper = check_optional_float(name, "upper", upper)
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise InvalidArgumentError(f"{name}: `lower <= upper` must hold, but got ({lower=}, {upper=}).")
        self.n_warmup_steps = check_int(name, "n_warmup_steps", n_warmup_steps, 0)
        self.interval_steps = check_int(name, "interval_steps", interval_steps, 1)

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        if not judges_at(trial, self.n_warmup_steps, self.interval_steps):
            return False
        latest = trial.intermediate_values[trial.last_step]  # type: ignore[index]  # judges_at: a step exists
        if math.isnan(latest):
            return True
        return (self.lower is not None and latest < self.lower) or (self.upper is not None and latest > self.upper)
