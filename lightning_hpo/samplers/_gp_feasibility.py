"""Where the space fails or breaks a constraint, for the GPSampler.

* **Failures**: trials that FAILed by the configuration's fault (an exception of the user's code,
  out of memory, nan, a constraint known violated early; see
  :data:`~lightning_hpo.trial.CONFIGURATION_FAIL_KINDS`) enter the objective's GP with the worst
  value observed so far in each objective (:func:`with_worst_values`), as SMAC imputes a failed
  run's cost: the acquisition then sees nothing to gain there. Interrupted, stale and
  infrastructure failures say nothing about the parameters and are left out. A separate GP of the
  0/1 failure outcome weighting the acquisition (as for constraints, below) was measured against
  it on Hartmann6 with an out-of-memory corner: it failed more often, reached a higher regret and
  took several times longer (``benchmarks/CONSTRAINTS.md``).
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
from lightning_hpo.trial import CONFIGURATION_FAIL_KINDS, CONSTRAINT_VIOLATIONS, Trial, TrialState

__all__ = [
    "FeasibilityOutcome",
    "feasibility_outcomes",
    "FeasibilityModel",
    "FeasibilityWeighted",
    "is_configuration_failure",
    "with_worst_values",
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


def with_worst_values(failed: Sequence[Trial], observed: Sequence[Trial], directions: Sequence[str]) -> list[Trial]:
    """The ``failed`` trials as observations with the worst value of ``observed`` in each objective."""
    if not observed:
        return []
    columns = list(zip(*(t.values for t in observed)))
    worst = tuple(max(c) if d == "min" else min(c) for c, d in zip(columns, directions))
    return [replace(t, state=TrialState.COMPLETE, values=worst) for t in failed]


def with_imputed_values(
    failed: Sequence[Trial], observed: Sequence[Trial], directions: Sequence[str], imputation: str | None, space=None
) -> list[Trial]:
    """EXPERIMENT: the ``failed`` trials as observations with an imputed value (or none)."""
    if imputation is None or not observed:
        return []
    if imputation == "worst":
        return with_worst_values(failed, observed, directions)
    if imputation.startswith("nearest"):
        k = int(imputation[len("nearest"):] or 1)
        X = np.array([space.encode(t.params) for t in observed])
        imputed = []
        for t in failed:
            distances = ((X - np.array(space.encode(t.params))) ** 2).sum(-1)
            near = [observed[i].values for i in np.argsort(distances)[:k]]
            columns = list(zip(*near))
            value = tuple(max(c) if d == "min" else min(c) for c, d in zip(columns, directions))
            imputed.append(replace(t, state=TrialState.COMPLETE, values=value))
        return imputed
    columns = list(zip(*(t.values for t in observed)))
    quantile = {"median": 0.5, "q75": 0.75}[imputation]
    value = tuple(
        float(np.quantile(c, quantile if d == "min" else 1 - quantile)) for c, d in zip(columns, directions)
    )
    return [replace(t, state=TrialState.COMPLETE, values=value) for t in failed]


def failure_outcome(observed: Sequence[Trial], failed: Sequence[Trial]) -> FeasibilityOutcome | None:
    """EXPERIMENT: whether a trial failed, as a constraint outcome (``1``: failed, ``-1``: not)."""
    failed_numbers = {t.number for t in failed}
    observed = [t for t in observed if t.number not in failed_numbers]
    if not failed or not observed:
        return None
    trials = [*observed, *failed]
    return FeasibilityOutcome("failure", trials, [-1.0] * len(observed) + [1.0] * len(failed))


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
    """

    def __init__(self, X: Tensor, outcome: FeasibilityOutcome, gp_space: GPSpace) -> None:
        # The sampler's GP takes outcomes where larger is better: the negated values.
        Y = -torch.tensor(outcome.values, dtype=X.dtype, device=X.device).unsqueeze(-1)
        model = fit_model(X, Y, gp_space)
        # Conditioned on the outcomes only standardized (an affine map), not warped as the objective's
        # GP sees them, so the boundary maps exactly: the hyperparameters fitted to the warped
        # outcomes serve, as the warp is monotone and the kernel's lengthscales change little.
        targets = standardize(Y)
        model.set_train_data(targets=targets.squeeze(-1), strict=False)
        self.model: SingleTaskGP = model.eval()
        std = Y.std()  # the boundary 0, standardized as the outcomes were (at least 2 of them)
        self.threshold = float((0.0 - Y.mean()) / (std if std > 0 else 1.0))

    def log_probability(self, X: Tensor) -> Tensor:
        """``b``: log P(feasible) of ``b x 1 x d`` candidates, under the latent posterior."""
        posterior = self.model.posterior(X)
        mean = posterior.mean.reshape(-1)
        std = posterior.variance.reshape(-1).clamp_min(1e-12).sqrt()
        # Feasible where the (negated, larger-is-better) outcome lies above the threshold.
        return log_ndtr((mean - self.threshold) / std)


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
