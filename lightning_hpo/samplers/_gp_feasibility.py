"""Where the space fails or breaks a constraint, for the GPSampler.

* **Failures**: trials that FAILed by the configuration's fault (an exception of the user's code,
  out of memory, nan, a constraint known violated early; see
  :data:`~lightning_hpo.trial.CONFIGURATION_FAIL_KINDS`) are an outcome of their own: a GP of
  whether a trial failed (:func:`failure_outcome`) weights the acquisition by the probability that
  a candidate does not fail, as the constraints' GPs do, under a chance constraint: below a
  probability of one half the weight falls steeply (:data:`CHANCE_PENALTY`). The objective's GP
  leaves failed points out, so the configurations next to a failing region keep their own values
  (an optimum often lies on that edge: the widest model that fits); the chance constraint is what
  keeps the search out of the region itself, since the plain weight loses there to the large
  improvement the objective's GP expects where nothing was observed. Failures that broke a
  constraint early enter the objective's GP at the worst value instead (:func:`broke_early`): they
  are their constraint's GP's to learn from. Interrupted, stale and infrastructure failures say
  nothing about the parameters and are left out. Measured against the worst value in the
  objective's GP (as SMAC imputes a failed run's cost), softer imputed values, and the failure GP
  without the chance constraint (``benchmarks/CONSTRAINTS.md``); the sampler's private
  ``_failure_imputation``, ``_failure_weighting`` and ``_failure_min_probability`` select them.
* **Outcome constraints**: each constraint of the study gets a GP of its violation (``<= 0``:
  satisfied, see :mod:`lightning_hpo._constraints`) over every trial that stored one, and the
  probability that a candidate satisfies it, ``P(g(x) <= 0)`` under the GP's latent posterior,
  weights the acquisition: ``log a(x) + sum log P_i(x)``, the constrained expected improvement of
  Gardner et al. (2014) and Gelbart et al. (2014), which Optuna's GPSampler also uses. The
  incumbent the improvement is measured against is the best *feasible* observation; before any
  observation is feasible, the acquisition is the probability of feasibility alone, which finds the
  feasible region first.

Each constraint GP is conditioned on its violations standardized (not warped as the objective's),
so the boundary 0 maps exactly to the standardized value of 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models import SingleTaskGP
from torch import Tensor
from torch.special import log_ndtr

from lightning_hpo.samplers._gp_model import fit_model, standardize
from lightning_hpo.samplers._gp_space import GPSpace
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import CONFIGURATION_FAIL_KINDS, CONSTRAINT_VIOLATIONS, Trial, TrialState

__all__ = [
    "FeasibilityOutcome",
    "feasibility_outcomes",
    "FeasibilityModel",
    "FeasibilityWeighted",
    "is_configuration_failure",
    "broke_early",
    "IMPUTATIONS",
    "with_imputed_values",
    "failure_outcome",
]


@dataclass(frozen=True)
class FeasibilityOutcome:
    """One constraint: the trials that stored its violation and the violations (``<= 0``: satisfied)."""

    name: str
    trials: list[Trial]
    values: list[float]


def is_configuration_failure(trial: Trial) -> bool:
    """A FAIL trial whose failure is the configuration's fault (the sampler learns from it)."""
    return trial.state is TrialState.FAIL and trial.fail_kind in CONFIGURATION_FAIL_KINDS


def broke_early(trial: Trial) -> bool:
    """A FAIL trial stopped because a constraint known early broke (it stored the violation)."""
    return bool(trial.attrs.get(CONSTRAINT_VIOLATIONS))


#: How :func:`with_imputed_values` may value a failed configuration: the objective values of the
#: nearest observed configuration, the worst or the median observed value, the 75th percentile
#: counted from the best, or a pessimistic quantile of a GP's posterior there, no better than the
#: best (``"posterior"``) or the median (``"posterior_median"``) observed value.
IMPUTATIONS = ("nearest", "worst", "median", "p75", "posterior", "posterior_median")

#: How steeply :meth:`FeasibilityModel.log_probability` falls below its ``min_probability``: a
#: factor on the log-probability's shortfall, steep enough that no gain the objective's GP promises
#: in a region believed to fail outweighs it, yet smooth for the gradient search.
CHANCE_PENALTY = 100.0

#: Rules ``"posterior*"``: a failed configuration is valued this many posterior standard deviations
#: worse than the posterior mean there, of a GP of the observed values.
PESSIMISM = 2.0


def with_imputed_values(
    failed: Sequence[Trial], observed: Sequence[Trial], directions: Sequence[str], space: SearchSpace, rule: str
) -> list[Trial]:
    """The ``failed`` trials as observations, valued by ``rule`` (one of :data:`IMPUTATIONS`), from
    the ``observed`` trials; none when nothing is observed."""
    if not observed:
        return []
    if rule == "nearest":  # in the encoded unit cube
        X = np.array([space.encode(t.params) for t in observed])
        nearest = [observed[int(((X - space.encode(t.params)) ** 2).sum(-1).argmin())] for t in failed]
        return [replace(t, state=TrialState.COMPLETE, values=n.values) for t, n in zip(failed, nearest)]
    if rule.startswith("posterior"):
        cap = 0.5 if rule == "posterior_median" else 0.0
        values = zip(*(_posterior_values(failed, observed, i, d, space, cap) for i, d in enumerate(directions)))
        return [replace(t, state=TrialState.COMPLETE, values=v) for t, v in zip(failed, values)]
    quantile = {"worst": 1.0, "median": 0.5, "p75": 0.75}[rule]
    columns = list(zip(*(t.values for t in observed)))
    value = tuple(float(np.quantile(c, quantile if d == "min" else 1 - quantile)) for c, d in zip(columns, directions))
    return [replace(t, state=TrialState.COMPLETE, values=value) for t in failed]


def _posterior_values(
    failed: Sequence[Trial], observed: Sequence[Trial], column: int, direction: str, space: SearchSpace, cap: float
) -> list[float]:
    """Objective ``column`` at each ``failed`` configuration: :data:`PESSIMISM` posterior standard
    deviations worse than the posterior mean of a GP of the ``observed`` values, kept between the
    ``cap`` quantile (counted from the best) and the worst observed value. Meant to take the gain
    away at the failed point while its feasible neighbours keep theirs: next to good observations
    a failure is valued close to them, far from every observation close to the worst."""
    sign = 1.0 if direction == "min" else -1.0  # values where smaller is better, as violations are
    values = [sign * t.values[column] for t in observed]
    gp_space = GPSpace(space)

    def inputs(trials: Sequence[Trial]) -> Tensor:
        return gp_space.from_unit(torch.tensor([space.encode(t.params) for t in trials], dtype=torch.float64))

    with torch.random.fork_rng():
        torch.manual_seed(0)  # a fit's retries draw from the prior: the values are the history's alone
        model = FeasibilityModel(inputs(observed), FeasibilityOutcome("objective", list(observed), values), gp_space)
    with torch.no_grad():
        upper = model.upper_quantile(inputs(failed).unsqueeze(1), PESSIMISM).clamp(
            float(np.quantile(values, cap)), max(values)
        )
    return [sign * float(v) for v in upper]


def failure_outcome(observed: Sequence[Trial], failed: Sequence[Trial]) -> FeasibilityOutcome | None:
    """Whether each trial failed, as one more constraint outcome (``1``: it failed, ``-1``: it did not),
    or ``None`` when nothing failed. ``observed`` may hold the failed trials with imputed values:
    they count as failed. A failure that stored a constraint's violation (stopped because a
    constraint known early broke) is left out: it is that constraint's GP's to learn from."""
    failed_numbers = {t.number for t in failed}
    succeeded = [t for t in observed if t.number not in failed_numbers]
    failed = [t for t in failed if not broke_early(t)]
    if not failed or not succeeded:
        return None
    return FeasibilityOutcome("failure", [*succeeded, *failed], [-1.0] * len(succeeded) + [1.0] * len(failed))


def feasibility_outcomes(observed: Sequence[Trial]) -> list[FeasibilityOutcome]:
    """The constraints worth a model: each one that two observed trials (failed ones with their worst
    values among them) stored a violation of, by name, sorted."""
    outcomes = []
    for name in sorted({name for t in observed for name in t.attrs.get(CONSTRAINT_VIOLATIONS, {})}):
        trials = [t for t in observed if name in t.attrs.get(CONSTRAINT_VIOLATIONS, {})]
        if len(trials) >= 2:  # a GP needs two points
            values = [float(t.attrs[CONSTRAINT_VIOLATIONS][name]) for t in trials]
            outcomes.append(FeasibilityOutcome(name, trials, values))
    return outcomes


class FeasibilityModel:
    """A GP of one constraint's violation on ``n x d`` inputs ``X`` (model space) and its threshold.

    Args:
        X: the inputs of ``outcome.trials``.
        outcome: the violations.
        gp_space: the space ``X`` lives in.
        min_probability: a chance constraint: below this probability of feasibility the weight
            falls steeply (``None``: the plain probability).
    """

    def __init__(
        self, X: Tensor, outcome: FeasibilityOutcome, gp_space: GPSpace, *, min_probability: float | None = None
    ) -> None:
        self.min_probability = min_probability
        # The sampler's GP takes outcomes where larger is better: the negated values.
        Y = -torch.tensor(outcome.values, dtype=X.dtype, device=X.device).unsqueeze(-1)
        model = fit_model(X, Y, gp_space)
        # Conditioned on the outcomes only standardized (an affine map), not warped as the objective's
        # GP sees them, so the boundary maps exactly: the hyperparameters fitted to the warped
        # outcomes serve, as the warp is monotone and the kernel's lengthscales change little.
        targets = standardize(Y)
        model.set_train_data(targets=targets.squeeze(-1), strict=False)
        self.model: SingleTaskGP = model.eval()
        std = Y.std()  # at least 2 outcomes
        self._shift, self._scale = float(Y.mean()), float(std if std > 0 else 1.0)
        self.threshold = (0.0 - self._shift) / self._scale  # the boundary 0, standardized as the outcomes were

    def _latent(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """``b``: the latent posterior mean and standard deviation of ``b x 1 x d`` candidates,
        standardized (larger: more feasible)."""
        posterior = self.model.posterior(X)
        return posterior.mean.reshape(-1), posterior.variance.reshape(-1).clamp_min(1e-12).sqrt()

    def upper_quantile(self, X: Tensor, deviations: float) -> Tensor:
        """``b``: the outcome of ``b x 1 x d`` candidates in its own units, ``deviations`` latent
        posterior standard deviations above its posterior mean."""
        mean, std = self._latent(X)
        return -((mean - deviations * std) * self._scale + self._shift)

    def log_probability(self, X: Tensor) -> Tensor:
        """``b``: log P(feasible) of ``b x 1 x d`` candidates, under the latent posterior."""
        mean, std = self._latent(X)
        # Feasible where the (negated, larger-is-better) outcome lies above the threshold.
        log_p = log_ndtr((mean - self.threshold) / std)
        if self.min_probability is None:
            return log_p
        return log_p + CHANCE_PENALTY * (log_p - math.log(self.min_probability)).clamp_max(0.0)


class FeasibilityWeighted(AcquisitionFunction):
    """``log a(x) + sum_i log P_i(feasible | x)``, or the sum alone when ``acquisition`` is ``None``
    (no observation is feasible yet). Maps ``b x 1 x d`` candidates to ``b`` values."""

    def __init__(self, acquisition: AcquisitionFunction | None, models: Sequence[FeasibilityModel]) -> None:
        base = acquisition if acquisition is not None else models[0].model
        super().__init__(model=getattr(base, "model", base))
        self.acquisition = acquisition
        self.feasibility = list(models)

    def forward(self, X: Tensor) -> Tensor:
        total = sum(m.log_probability(X) for m in self.feasibility)
        if self.acquisition is None:
            return total  # type: ignore[return-value]
        return self.acquisition(X) + total
