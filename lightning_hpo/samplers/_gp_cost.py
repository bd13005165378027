"""Expected improvement per expected step of training, for the GPSampler (measured, not the default).

A new trial's cost is the training it will get before it ends: under a pruner, a configuration
the pruner will stop at the first rung costs a few steps, one it lets through costs a full run. A
GP of the log of the steps each finished trial trained (its last reported step, plus one: steps
count from 0) over the configurations predicts that cost, and the acquisition becomes
``log a(x) - exponent * log cost(x)``: expected improvement per expected step for ``exponent=1``
(Snoek et al., 2012, "EI per second"; per step here, which is what a study's budgets count). It
prefers a cheap look at an uncertain region to a configuration that would train long for a small
expected gain. Studies whose trials report no steps, or all the same number (no pruning), are
left unchanged: there is nothing to weigh.

``benchmarks/multi_fidelity.py`` measures it (method ``gpcost_asha``) through the sampler's
private ``_cost_exponent``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from botorch.acquisition import AcquisitionFunction
from torch import Tensor

from lightning_hpo.samplers._gp_model import fit_model, standardize
from lightning_hpo.samplers._gp_space import GPSpace
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import Trial

__all__ = ["trained_steps", "CostModel", "PerExpectedCost", "per_expected_cost"]


def trained_steps(trial: Trial) -> int | None:
    """How many steps ``trial`` trained: its last reported step plus one (``None`` without reports)."""
    step = trial.last_step
    return None if step is None else max(step, 0) + 1


class CostModel:
    """A GP of the log of the steps trained, over ``n x d`` inputs ``X`` (model space).

    Conditioned on the log costs only standardized (an affine map), not warped as the objective's
    GP sees its outcomes, so its posterior mean maps back to log steps exactly.
    """

    def __init__(self, X: Tensor, steps: Sequence[int], gp_space: GPSpace) -> None:
        Y = torch.tensor([math.log(s) for s in steps], dtype=X.dtype, device=X.device).unsqueeze(-1)
        model = fit_model(X, Y, gp_space)
        model.set_train_data(targets=standardize(Y).squeeze(-1), strict=False)
        self.model = model.eval()
        self._shift, self._scale = float(Y.mean()), float(Y.std())

    def log_cost(self, X: Tensor) -> Tensor:
        """``b``: the posterior mean of the log steps of ``b x 1 x d`` candidates."""
        return self.model.posterior(X).mean.reshape(-1) * self._scale + self._shift


class PerExpectedCost(AcquisitionFunction):
    """``log a(x) - exponent * log cost(x)``. Maps ``b x 1 x d`` candidates to ``b`` values."""

    def __init__(self, acquisition: AcquisitionFunction, cost: CostModel, exponent: float) -> None:
        super().__init__(model=acquisition.model)
        self.acquisition = acquisition
        self.cost = cost
        self.exponent = exponent

    def forward(self, X: Tensor) -> Tensor:
        return self.acquisition(X) - self.exponent * self.cost.log_cost(X)


def per_expected_cost(
    acquisition: AcquisitionFunction,
    observed: Sequence[Trial],
    space: SearchSpace,
    gp_space: GPSpace,
    *,
    exponent: float,
    **tensor_kwargs: Any,
) -> AcquisitionFunction:
    """``acquisition`` per expected cost (see the module), or unchanged when the observed trials'
    costs cannot be told apart: fewer than two trained a known number of steps, or all the same."""
    costed = [(t, s) for t in observed if (s := trained_steps(t)) is not None]
    if len(costed) < 2 or len({s for _, s in costed}) < 2:
        return acquisition
    X = gp_space.from_unit(torch.tensor([space.encode(t.params) for t, _ in costed], **tensor_kwargs))
    return PerExpectedCost(acquisition, CostModel(X, [s for _, s in costed], gp_space), exponent)
