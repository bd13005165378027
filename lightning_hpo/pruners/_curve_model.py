"""Where a trial's learning curve ends: the curve model that :class:`CurvePruner` stops trials with and
that :class:`GPSampler` (``learn_from_curves=True``) values pruned trials with.

The prediction of a trial's final value (its best value by the end of a full run) mixes two sources:

* **Its own curve, extrapolated log-linearly**: the gain of the last doubling of training (best by
  step ``t`` minus best by ``t / 2``) goes on at the same rate per doubling until the full run.
  Learning curves flatten faster than that, so this is an optimistic prediction; it is what
  handles crossing curves (a slow starter still climbing steeply) when no earlier trial looked like it.
* **The trials that ran a full run (peers)**: each peer says "from step ``t`` I gained ``d``". A
  peer that was climbing at the same pace at step ``t`` (a close gain over the last doubling)
  speaks for this trial with more weight (a Gaussian kernel over the paces), so the model learns
  from the study how much of a given pace is left.

The prediction is a mixture of normals: the own extrapolation (spread by half its projected gain)
weighing as much as one perfectly similar peer, and each peer's continuation (spread by a small
share of the peers' spread of final values). No fit: one pass over the stored reports.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_hpo._budget import planned_steps
from lightning_hpo.pruners._base import best_up_to, reported_at
from lightning_hpo.pruners._successive_halving import reference_trial
from lightning_hpo.trial import Trial

__all__ = ["DEFAULT_BANDWIDTH", "CurveForecast", "CurveModel", "forecast", "full_run_steps"]

#: Width of the similarity kernel over the recent pace, in standard deviations of the peers' paces.
DEFAULT_BANDWIDTH = 0.5


@dataclass(frozen=True)
class CurveForecast:
    """A trial's predicted final value, in "higher is better" form: a mixture of normals.

    Attributes:
        own_mean, own_sd: the trial's own log-linear extrapolation, weight 1.
        peer_means: each peer's continuation of the trial (its value now plus the peer's later gain).
        peer_weights: how much each peer speaks for the trial (its similarity of pace, in ``(0, 1]``).
        peer_sd: the spread of every peer's continuation.
        incumbent: the best final value among the peers.
    """

    own_mean: float
    own_sd: float
    peer_means: tuple[float, ...]
    peer_weights: tuple[float, ...]
    peer_sd: float
    incumbent: float

    def probability_above(self, target: float) -> float:
        """The mixture's probability that the final value exceeds ``target``."""
        own = _normal_cdf((self.own_mean - target) / self.own_sd)
        votes = [_normal_cdf((mean - target) / self.peer_sd) for mean in self.peer_means]
        return (own + sum(w * v for w, v in zip(self.peer_weights, votes, strict=True))) / (
            1.0 + sum(self.peer_weights)
        )

    def mean_and_variance(self) -> tuple[float, float]:
        """The mixture's mean and variance (the spread within each source plus that between them)."""
        weights = (1.0, *self.peer_weights)
        means = (self.own_mean, *self.peer_means)
        sds = (self.own_sd, *(self.peer_sd for _ in self.peer_means))
        total = sum(weights)
        mean = sum(w * m for w, m in zip(weights, means, strict=True)) / total
        second = sum(w * (s * s + m * m) for w, m, s in zip(weights, means, sds, strict=True)) / total
        return mean, max(second - mean * mean, 0.0)


def full_run_steps(trial: Trial, trials: Sequence[Trial]) -> int | None:
    """The steps of a full run: the Trainer's planned steps, else the longest COMPLETE trial's, else None."""
    reference = reference_trial(trials)
    return planned_steps(trial) or (reference.last_step if reference is not None else None)


def forecast(
    trial: Trial,
    trials: Sequence[Trial],
    step: int,
    full: int,
    minimize: bool,
    bandwidth: float = DEFAULT_BANDWIDTH,
) -> CurveForecast | None:
    """The curve model's prediction of ``trial``'s best value by step ``full``, from its reports up to
    ``step`` and the other ``trials`` that reported at ``full``: see :meth:`CurveModel.forecast`."""
    return CurveModel(trials, minimize, bandwidth).forecast(trial, step, full)


class CurveModel:
    """The curve model of a study: its trials read once (each full run's best-so-far by step), to
    forecast one trial (the pruner's use) or many (the sampler's) in a pass over the full runs each."""

    def __init__(self, trials: Sequence[Trial], minimize: bool, bandwidth: float = DEFAULT_BANDWIDTH) -> None:
        self.trials, self.minimize, self.bandwidth = trials, minimize, bandwidth
        reference = reference_trial(trials)
        self._reference_steps = reference.last_step if reference is not None else None
        self._full_runs: dict[int, list[tuple[int, _RunningBest]]] = {}
        self._peers_at: dict[tuple[int, int], list[tuple[int, float, float, float]]] = {}

    def full_steps(self, trial: Trial) -> int | None:
        """As :func:`full_run_steps`."""
        return planned_steps(trial) or self._reference_steps

    def forecast(self, trial: Trial, step: int, full: int) -> CurveForecast | None:
        """The prediction of ``trial``'s best value by step ``full`` from its reports up to ``step``;
        None when it has no finite report by ``step`` or none in its first half, or ``step`` is 0
        (no pace to extrapolate), or no other trial ran a full run (nothing to learn how much of a
        pace is left)."""
        if step <= 0:
            return None
        minimize = self.minimize
        sign = -1.0 if minimize else 1.0  # every value below is in "higher is better" form
        now, half = best_up_to(trial, step, minimize), best_up_to(trial, step / 2, minimize)
        if now is None or half is None:
            return None
        current = sign * now
        pace = current - sign * half
        peers = [peer for number, *peer in self._peers(step, full) if number != trial.number]
        if not peers:
            return None
        finals = [final for _, _, final in peers]
        noise = 0.02 * _spread(finals) + 1e-12
        doublings = math.log2(full / step)
        width = self.bandwidth * _spread([p for p, _, _ in peers]) + 1e-12
        return CurveForecast(
            own_mean=current + pace * doublings,
            own_sd=0.5 * pace * doublings + noise,
            peer_means=tuple(current + gain for _, gain, _ in peers),
            peer_weights=tuple(math.exp(-0.5 * ((p - pace) / width) ** 2) for p, _, _ in peers),
            peer_sd=noise,
            incumbent=max(finals),
        )

    def _peers(self, step: int, full: int) -> list[tuple[int, float, float, float]]:
        """``(number, pace at step, gain from step to the end, final value)`` of each trial that
        reported at or past ``full`` (:func:`reported_at`), in "higher is better" form;
        kept, since the trials a sampler values were mostly stopped at a few steps (the rungs)."""
        if (step, full) in self._peers_at:
            return self._peers_at[step, full]
        if full not in self._full_runs:
            runs = reported_at(self.trials, full)
            self._full_runs[full] = [(t.number, _RunningBest(t, self.minimize)) for t in runs]
        sign = -1.0 if self.minimize else 1.0
        peers = []
        for number, best in self._full_runs[full]:
            at_step, at_half, final = (best.up_to(s) for s in (step, step / 2, full))
            if at_step is not None and at_half is not None and final is not None:
                peers.append((number, sign * at_step - sign * at_half, sign * final - sign * at_step, sign * final))
        self._peers_at[step, full] = peers
        return peers


class _RunningBest:
    """A trial's best finite value by each step (as :func:`best_up_to`), looked up in ``log n``."""

    def __init__(self, trial: Trial, minimize: bool) -> None:
        self.steps = sorted(trial.intermediate_values)
        self.bests: list[float | None] = []
        best = None
        for step in self.steps:
            value = trial.intermediate_values[step]
            if math.isfinite(value) and (best is None or (value < best if minimize else value > best)):
                best = value
            self.bests.append(best)

    def up_to(self, step: float) -> float | None:
        index = bisect.bisect_right(self.steps, step)
        return self.bests[index - 1] if index else None


def _spread(values: Sequence[float]) -> float:
    """Standard deviation (0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))
