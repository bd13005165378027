"""Where the space fails or breaks a constraint: GPs of feasibility, and the acquisition weighted by them.

Two kinds of outcome make a configuration useless whatever its objective:

* **failure**: trials that FAILed by the configuration's fault (an exception of the user's code, out
  of memory, nan; see :data:`~lightning_hpo.trial.CONFIGURATION_FAIL_KINDS`), as a 0/1 outcome
  (1: failed) over every trial that either failed so or gave a value. Interrupted, stale and
  infrastructure failures say nothing about the parameters and are left out.
* **each outcome constraint** of the study: the trial's violation (``<= 0``: satisfied, see
  :mod:`lightning_hpo._constraints`) over every trial that stored one.

Each gets a GP of its own (the sampler's, with its own fitted hyperparameters) and the probability
that a candidate is feasible, ``P(g(x) <= threshold)`` under the GP's latent posterior, weights the
acquisition: ``log a(x) + sum log P_i(x)``, the constrained expected improvement of Gardner et al.
(2014) and Gelbart et al. (2014), which Optuna's GPSampler also uses. The incumbent the improvement
is measured against is the best *feasible* observation; before any observation is feasible, the
acquisition is the probability of feasibility alone, which finds the feasible region first.

Each GP is conditioned on its outcomes standardized (not warped as the objective's), so the
threshold maps exactly: the midpoint of the two standardized labels for the 0/1 failure outcome,
and the standardized value of 0 for a violation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models import SingleTaskGP
from torch import Tensor
from torch.special import log_ndtr

from lightning_hpo.samplers._gp_model import build_model, fit_hyperparameters, standardize
from lightning_hpo.samplers._gp_space import GPSpace
from lightning_hpo.trial import CONFIGURATION_FAIL_KINDS, CONSTRAINT_VIOLATIONS, Trial, TrialState

__all__ = ["FeasibilityOutcome", "feasibility_outcomes", "FeasibilityModel", "FeasibilityWeighted"]

#: The name of the failure outcome among the constraints' names.
FAILURE = "failure"


@dataclass(frozen=True)
class FeasibilityOutcome:
    """One outcome that decides feasibility: the trials that have it and their values (larger: worse).

    ``binary``: a 0/1 outcome (the failure indicator), else a constraint's violation.
    """

    name: str
    trials: list[Trial]
    values: list[float]
    binary: bool


def is_configuration_failure(trial: Trial) -> bool:
    """A FAIL trial whose failure is the configuration's fault (the sampler learns from it)."""
    return trial.state is TrialState.FAIL and trial.fail_kind in CONFIGURATION_FAIL_KINDS


def feasibility_outcomes(observed: Sequence[Trial], failed: Sequence[Trial]) -> list[FeasibilityOutcome]:
    """The outcomes worth a model: failure once a trial failed by its configuration's fault and one
    did not; each constraint once two trials stored its violation (by name, sorted)."""
    outcomes = []
    if failed and observed:
        trials = sorted([*observed, *failed], key=lambda t: t.number)
        outcomes.append(FeasibilityOutcome(FAILURE, trials, [float(t.state is TrialState.FAIL) for t in trials], True))
    names = sorted({name for t in [*observed, *failed] for name in t.attrs.get(CONSTRAINT_VIOLATIONS, {})})
    for name in names:
        trials = sorted(
            (t for t in [*observed, *failed] if name in t.attrs.get(CONSTRAINT_VIOLATIONS, {})),
            key=lambda t: t.number,
        )
        if len(trials) >= 2:  # a GP needs two points
            values = [float(t.attrs[CONSTRAINT_VIOLATIONS][name]) for t in trials]
            outcomes.append(FeasibilityOutcome(name, trials, values, False))
    return outcomes


class FeasibilityModel:
    """A GP of one feasibility outcome on ``n x d`` inputs ``X`` (model space) and its threshold.

    Args:
        X: the inputs of ``outcome.trials``.
        outcome: the outcome's values, larger is worse (``<= 0`` feasible for a violation).
        gp_space: the space ``X`` lives in.
    """

    def __init__(self, X: Tensor, outcome: FeasibilityOutcome, gp_space: GPSpace) -> None:
        # The sampler's GP takes outcomes where larger is better: the negated values.
        Y = -torch.tensor(outcome.values, dtype=X.dtype, device=X.device).unsqueeze(-1)
        model = build_model(X, Y, gp_space, fit_hyperparameters(X, Y, gp_space))
        # Conditioned on the outcomes only standardized (an affine map), not warped as the objective's
        # GP sees them, so the boundary maps exactly: the hyperparameters fitted to the warped
        # outcomes serve, as the warp is monotone and the kernel's lengthscales change little.
        targets = standardize(Y)
        model.set_train_data(targets=targets.squeeze(-1), strict=False)
        self.model: SingleTaskGP = model.eval()
        if outcome.binary:  # the labels 0 and 1 (negated): the boundary is halfway
            self.threshold = float((targets.min() + targets.max()) / 2)
        else:  # a violation's boundary is 0, standardized as the outcomes were (at least 2 of them)
            std = Y.std()
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
