"""A model-based pruner: stop a trial once its learning curve has little chance to beat the best one.

The model (``_curve_model``, shared with the GPSampler's ``learn_from_curves``) predicts where a
running trial's curve ends (its best value by the end of a full run) by mixing its own curve,
extrapolated log-linearly (optimistic: it keeps slow starters still climbing, i.e. crossing curves),
with the continuations of the trials that ran a full run, weighted by how close their pace was.

The probability that the trial's final value beats the incumbent (the best full run's value, plus
``margin``) is the weighted mix of the two predictions, the own extrapolation weighing as much as
one perfectly similar peer: the pruner stops a trial only when that probability is below
``threshold``, which takes several similar peers that all fell short, or a trial too far behind
even for its own optimistic continuation. Trials are judged at every report once past
``min_resource`` (early values say little about the end). Every decision costs a pass over the
stored reports, no fitting, so it stays small next to an epoch.

Why no GP over (configuration, progress) here: the decision reads the curves themselves; the
configuration adds little once a third of a run is seen (on LCBench the rank correlation of a
tenth of the epochs with the final accuracy is about 0.93), while a freeze-thaw GP over every
report costs seconds per decision once a study holds thousands of reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.pruners._base import Pruner, Resource, best_up_to, check_resource, single_direction
from lightning_hpo.pruners._curve_model import DEFAULT_BANDWIDTH, forecast, full_run_steps
from lightning_hpo.trial import Trial

__all__ = ["CurvePruner"]

#: With ``min_resource="auto"``, judging starts at this share of a full run (ASHA's first rung).
AUTO_WARMUP = 1 / 9


class CurvePruner(Pruner):
    """Stop a trial when the probability that its learning curve ends above the incumbent is below ``threshold``.

    See the module docstring for the model. The full run's length is found as :class:`ASHAPruner`
    finds it (the Trainer's planned steps, else the longest COMPLETE trial); nothing is pruned
    before it is known and a trial has reached it (an incumbent).

    Args:
        threshold: stop when the probability to beat the incumbent is below this (0 < threshold < 1).
        margin: how much the final value must beat the incumbent by, in the objective's units
            (>= 0; with ``mode="max"`` and accuracy in %, ``margin=0.5`` asks for half a point).
        min_resource: steps before which no trial is judged, or ``"auto"``: a ninth of a full run.
        bandwidth: width of the similarity kernel over the recent pace, in standard deviations
            of the peers' paces (> 0); larger lets more peers speak for each trial.

    Example:
        >>> from lightning_hpo.trial import TrialState
        >>> done = Trial(0, TrialState.COMPLETE, {}, intermediate_values={s: 1 - 0.5 / s for s in range(1, 31)})
        >>> flat = Trial(1, TrialState.RUNNING, {}, intermediate_values={s: 0.3 for s in range(1, 11)})
        >>> CurvePruner().prune(flat, [done, flat], directions=["max"])
        True
    """

    def __init__(
        self,
        *,
        threshold: float = 0.05,
        margin: float = 0.0,
        min_resource: Resource = "auto",
        bandwidth: float = DEFAULT_BANDWIDTH,
    ) -> None:
        name = type(self).__name__
        self.threshold = _check_real(name, "threshold", threshold, lambda v: 0 < v < 1, "0 < threshold < 1")
        self.margin = _check_real(name, "margin", margin, lambda v: v >= 0, "margin >= 0")
        self.min_resource = check_resource(name, "min_resource", min_resource)
        self.bandwidth = _check_real(name, "bandwidth", bandwidth, lambda v: v > 0, "bandwidth > 0")

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        minimize = single_direction(self, directions)
        step = trial.last_step
        if step is None:
            return False
        full = full_run_steps(trial, trials)
        warmup = full * AUTO_WARMUP if self.min_resource == "auto" and full else self.min_resource
        if full is None or step >= full or step < warmup:
            return False
        if best_up_to(trial, step, minimize) is None:
            return True  # only nan/inf so far: the run diverged
        probability = self.probability_to_win(trial, trials, step, full, minimize)
        return probability is not None and probability < self.threshold

    def probability_to_win(
        self, trial: Trial, trials: Sequence[Trial], step: int, full: int, minimize: bool
    ) -> float | None:
        """The model's probability that ``trial`` ends better than the incumbent by ``margin``, or None
        when there is nothing to compare with yet."""
        prediction = forecast(trial, trials, step, full, minimize, self.bandwidth)
        if prediction is None:
            return None
        return prediction.probability_above(prediction.incumbent + self.margin)


def _check_real(owner: str, name: str, value: object, rule: object, text: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ArgumentTypeError(f"{owner}: `{name}` must be a number, but got {value!r} ({type(value).__name__}).")
    if math.isnan(value) or not rule(value):  # type: ignore[operator]
        raise InvalidArgumentError(f"{owner}: `{text}` must hold, but got {name}={value!r}.")
    return float(value)
