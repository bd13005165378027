"""Expected improvement per expected step (``_gp_cost``, the GPSampler's private ``_cost_exponent``):
the cost GP, the acquisition it divides, and a real Study whose cheap half the sampler prefers.
BoTorch's optimizers run uncapped here: a capped fit leaves both samplers at a corner."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.acquisition import AcquisitionFunction

from lightning_hpo import Float, GPSampler, Study
from lightning_hpo.samplers._gp_cost import CostModel, PerExpectedCost, per_expected_cost, trained_steps
from lightning_hpo.samplers._gp_space import GPSpace
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import Trial, TrialState

SPACE = SearchSpace({"x": Float(0.0, 1.0)})


def trial(number: int, x: float, steps: int, value: float = 0.5) -> Trial:
    """A finished trial at ``x`` that reported at steps 0 .. ``steps - 1``."""
    curve = {step: value for step in range(steps)}
    return Trial(number, TrialState.PRUNED, {"x": x}, values=(value,), intermediate_values=curve)


def inputs(xs: list[float]) -> torch.Tensor:
    return GPSpace(SPACE).from_unit(torch.tensor([[x] for x in xs], dtype=torch.float64))


class Constant(AcquisitionFunction):
    """log a(x) = 0 everywhere: what remains is the cost term."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return torch.zeros(X.shape[0], dtype=X.dtype)


def test_trained_steps_count_from_step_zero() -> None:
    assert trained_steps(trial(0, 0.5, steps=3)) == 3
    assert trained_steps(Trial(1, TrialState.COMPLETE, {"x": 0.5}, values=(0.1,))) is None


def test_the_cost_model_predicts_log_steps_where_it_saw_them() -> None:
    xs = [0.05, 0.15, 0.25, 0.35, 0.65, 0.75, 0.85, 0.95]
    steps = [2 if x < 0.5 else 50 for x in xs]
    model = CostModel(inputs(xs), steps, GPSpace(SPACE))
    predicted = model.log_cost(inputs([0.1, 0.9]).unsqueeze(1)).detach().exp()
    assert predicted[0] == pytest.approx(2, rel=0.3) and predicted[1] == pytest.approx(50, rel=0.3)


def test_the_acquisition_is_divided_by_the_expected_cost_to_the_power() -> None:
    xs = [0.1, 0.3, 0.7, 0.9]
    trials = [trial(i, x, steps=2 if x < 0.5 else 50) for i, x in enumerate(xs)]
    constant = Constant(model=None)  # type: ignore[arg-type]
    weighted = per_expected_cost(constant, trials, SPACE, GPSpace(SPACE), exponent=0.5, dtype=torch.float64)
    assert isinstance(weighted, PerExpectedCost)
    X = inputs([0.1, 0.9]).unsqueeze(1)
    assert torch.allclose(weighted(X), -0.5 * weighted.cost.log_cost(X))
    cheap, costly = weighted(X).tolist()
    assert cheap > costly


@pytest.mark.parametrize(
    "trials",
    [
        [trial(0, 0.2, steps=5), trial(1, 0.8, steps=5)],  # all trained alike: nothing to weigh
        [trial(0, 0.2, steps=5), Trial(1, TrialState.COMPLETE, {"x": 0.8}, values=(0.1,))],  # one known cost
    ],
)
def test_without_costs_to_tell_apart_the_acquisition_is_unchanged(trials: list[Trial]) -> None:
    constant = Constant(model=None)  # type: ignore[arg-type]
    assert per_expected_cost(constant, trials, SPACE, GPSpace(SPACE), exponent=1.0, dtype=torch.float64) is constant


def test_a_cost_aware_sampler_looks_where_trials_are_cheap() -> None:
    # A flat objective: the improvement expected is about even, and the left half trains 2 steps
    # where the right half trains 60.
    def objective_steps(x: float) -> int:
        return 2 if x < 0.5 else 60

    def run(exponent: float) -> list[float]:
        sampler = GPSampler(seed=0, n_startup_trials=6, device="cpu")
        sampler._cost_exponent = exponent
        study = Study("cost", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", sampler=sampler, mode="max")
        for _ in range(14):
            t = study.ask()
            x = t.params["x"]
            for step in range(objective_steps(x)):
                study.report(t, step, 0.5 + 0.01 * math.sin(20 * x))
            study.tell(t, 0.5 + 0.01 * math.sin(20 * x))
        return [t.params["x"] for t in study.trials[6:]]

    assert all(x < 0.5 for x in run(1.0))
    assert any(x >= 0.5 for x in run(0.0))
