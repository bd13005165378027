"""A model-based pruner: stop a trial once its learning curve has little chance to beat the best one.

The model predicts where a running trial's curve ends (its best value by the end of a full run)
from two sources, and mixes them:

* **Its own curve, extrapolated log-linearly**: the gain of the last doubling of training (best by
  step ``t`` minus best by ``t / 2``) goes on at the same rate per doubling until the full run.
  Learning curves flatten faster than that, so this is an optimistic prediction: alone it prunes
  only trials that can't catch up even at their current pace. It is what handles crossing curves,
  a slow starter still climbing steeply, when no earlier trial looked like it.
* **The trials that ran a full run (peers)**: each peer says "from step ``t`` I gained ``d``". A
  peer that was climbing at the same pace at step ``t`` (a close gain over the last doubling)
  speaks for this trial with more weight (a Gaussian kernel), so the model learns from the study
  how much of a given pace is left, and stops a trial that history says flattens out.

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

from lightning_hpo._budget import planned_steps
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.pruners._base import Pruner, Resource, best_up_to, check_resource, others_at, single_direction
from lightning_hpo.pruners._successive_halving import reference_trial
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
        bandwidth: float = 0.5,
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
        reference = reference_trial(trials)
        full = planned_steps(trial) or (reference.last_step if reference is not None else None)
        warmup = full * AUTO_WARMUP if self.min_resource == "auto" and full else self.min_resource
        if full is None or step >= full or step < warmup:
            return False
        current = best_up_to(trial, step, minimize)
        if current is None:
            return True  # only nan/inf so far: the run diverged
        probability = self.probability_to_win(trial, trials, step, full, minimize)
        return probability is not None and probability < self.threshold

    def probability_to_win(
        self, trial: Trial, trials: Sequence[Trial], step: int, full: int, minimize: bool
    ) -> float | None:
        """The model's probability that ``trial`` ends better than the incumbent by ``margin``, or None
        when there is nothing to compare with yet."""
        sign = -1.0 if minimize else 1.0  # every value below is in "higher is better" form
        current = sign * best_up_to(trial, step, minimize)
        half = best_up_to(trial, step / 2, minimize)
        if half is None:
            return None  # no report in the first half: no pace to extrapolate
        pace = current - sign * half
        peers = []  # (pace at step, gain from step to the end, final value) of each full run
        for other in others_at(trial, trials, full):
            at_step, at_half, final = (best_up_to(other, s, minimize) for s in (step, step / 2, full))
            if at_step is not None and at_half is not None and final is not None:
                peers.append((sign * at_step - sign * at_half, sign * final - sign * at_step, sign * final))
        if not peers:
            return None
        target = max(final for _, _, final in peers) + self.margin
        finals = [final for _, _, final in peers]
        noise = 0.02 * _spread(finals) + 1e-12
        doublings = math.log2(full / step)
        own = _normal_cdf((current + pace * doublings - target) / (0.5 * pace * doublings + noise))
        width = self.bandwidth * _spread([p for p, _, _ in peers]) + 1e-12
        weights = [math.exp(-0.5 * ((p - pace) / width) ** 2) for p, _, _ in peers]
        votes = [_normal_cdf((current + gain - target) / noise) for _, gain, _ in peers]
        return (own + sum(w * v for w, v in zip(weights, votes, strict=True))) / (1.0 + sum(weights))


def _spread(values: Sequence[float]) -> float:
    """Standard deviation (0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _check_real(owner: str, name: str, value: object, rule: object, text: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ArgumentTypeError(f"{owner}: `{name}` must be a number, but got {value!r} ({type(value).__name__}).")
    if math.isnan(value) or not rule(value):  # type: ignore[operator]
        raise InvalidArgumentError(f"{owner}: `{text}` must hold, but got {name}={value!r}.")
    return float(value)
