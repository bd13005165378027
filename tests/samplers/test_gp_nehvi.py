"""CachedLogNEHVI against BoTorch's qLogNoisyExpectedHypervolumeImprovement, on fitted GPs of two
and three outcomes: the same baseline, values and gradients with the same base samples, with and
without pending points, and BoTorch's own evaluation for batches of several candidates; past the
candidate cap, a baseline from the first Pareto layers of the posterior means; the hypervolume
improvement of one candidate's samples, BoTorch's formula for one candidate; the dominance check by
sorting, BoTorch's."""

from __future__ import annotations

import pytest
import torch
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.utils import prune_inferior_points_multi_objective
from botorch.sampling import SobolQMCNormalSampler
from botorch.utils.multi_objective.pareto import is_non_dominated

from lightning_hpo import Categorical, Float, Int, SearchSpace
from lightning_hpo.samplers import _gp_nehvi, _gp_nei
from lightning_hpo.samplers._gp_acquisition import reference_point
from lightning_hpo.samplers._gp_model import build_model, fit_hyperparameters, model_outcomes
from lightning_hpo.samplers._gp_nehvi import (
    CachedLogNEHVI,
    first_pareto_layers,
    log_improvement_of_one,
    non_dominated,
)
from lightning_hpo.samplers._gp_space import GPSpace

SPACES = {
    "continuous": SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(4)}),
    "mixed": SearchSpace(
        {"a": Float(0.0, 1.0), "b": Float(1e-3, 1.0, log=True), "n": Int(1, 8), "c": Categorical(["x", "y", "z"])}
    ),
}


def _fitted(space: SearchSpace, outcomes: int, n: int = 40, seed: int = 0):
    """A GP fitted to ``n`` random points of ``outcomes`` conflicting noisy objectives (larger is
    better), and the hypervolume's reference point."""
    generator = torch.Generator().manual_seed(seed)
    gp_space = GPSpace(space)
    X = gp_space.from_unit(torch.rand(n, len(space), generator=generator, dtype=torch.float64))
    targets = torch.linspace(0.2, 0.8, outcomes, dtype=torch.float64)
    Y = -(X[:, :1] - targets).abs() - 0.3 * X[:, 1:2] + 0.05 * torch.randn(n, outcomes, generator=generator)
    model = build_model(X, Y, gp_space, fit_hyperparameters(X, Y, gp_space))
    return model, gp_space, X, reference_point(model_outcomes(Y))


def _both(model, X, ref_point, X_pending=None, mc_samples: int = 32):
    """Ours and BoTorch's, built alike: the same pruning draws (torch's global generator) and base samples."""
    built = []
    for make in (CachedLogNEHVI, lambda *args, **kwargs: qLogNoisyExpectedHypervolumeImprovement(*args, **kwargs)):
        torch.manual_seed(11)
        built.append(
            make(
                model,
                ref_point,
                X,
                sampler=SobolQMCNormalSampler(torch.Size([mc_samples]), seed=5),
                X_pending=X_pending,
                prune_baseline=True,
            )
        )
    return built


def _candidates(gp_space: GPSpace, n: int, seed: int = 1) -> torch.Tensor:
    unit = torch.rand(n, gp_space.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return gp_space.from_unit(unit).unsqueeze(1)


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("outcomes", [2, 3])
@pytest.mark.parametrize("pending", [0, 2])
def test_values_and_gradients_are_botorchs_with_the_same_base_samples(space_name, outcomes, pending):
    model, gp_space, X, ref_point = _fitted(SPACES[space_name], outcomes)
    X_pending = _candidates(gp_space, pending, seed=7).squeeze(1) if pending else None
    ours, theirs = _both(model, X, ref_point, X_pending)
    torch.testing.assert_close(ours.X_baseline, theirs.X_baseline, rtol=0, atol=0)
    assert len(ours.X_baseline) == len(X_pending if pending else []) + len(ours._X_baseline)
    candidates = _candidates(gp_space, 200)
    with torch.no_grad():
        got, expected = ours(candidates), theirs(candidates)
    # The two factorize differently shaped matrices (BoTorch the joint one of baseline and
    # candidate), which differ in their last digits; in log space only where the improvement is
    # not vanishingly small.
    torch.testing.assert_close(got.exp(), expected.exp(), rtol=1e-6, atol=1e-8 * float(expected.exp().max()))
    relevant = expected > expected.max() - 10
    assert relevant.sum() > 20
    torch.testing.assert_close(got[relevant], expected[relevant], rtol=1e-5, atol=1e-6)

    X_grad = candidates[:8].clone().requires_grad_(True)
    (our_gradient,) = torch.autograd.grad(ours(X_grad).sum(), X_grad)
    X_grad = candidates[:8].clone().requires_grad_(True)
    (their_gradient,) = torch.autograd.grad(theirs(X_grad).sum(), X_grad)
    torch.testing.assert_close(our_gradient, their_gradient, rtol=1e-4, atol=1e-6 * float(their_gradient.abs().max()))


@pytest.mark.parametrize("outcomes", [2, 3])
def test_the_improvement_of_one_candidate_is_botorchs_formula_on_the_same_samples(outcomes, monkeypatch):
    model, gp_space, X, ref_point = _fitted(SPACES["mixed"], outcomes)
    acquisition = _both(model, X, ref_point)[1]
    lengths = acquisition.cell_upper_bounds - acquisition.cell_lower_bounds
    assert (lengths == 0).any() and lengths.isinf().any()  # padded (empty) cells and unbounded sides
    with torch.no_grad():
        posterior = model.posterior(_candidates(gp_space, 300))
    # Samples spread past the sampled fronts, so that some candidates improve on none of the cells.
    samples = posterior.rsample(torch.Size([len(lengths)])) * 3.0
    samples.requires_grad_(True)
    # In groups of 23 candidates (a partial group last), as a CPU takes a larger problem's.
    monkeypatch.setattr(_gp_nehvi, "ELEMENTS_AT_ONCE", 23 * acquisition.cell_lower_bounds.numel())
    theirs = acquisition._compute_log_qehvi(samples)
    (their_gradient,) = torch.autograd.grad(theirs.sum(), samples)
    ours = log_improvement_of_one(
        samples,
        acquisition.cell_lower_bounds,
        acquisition.cell_upper_bounds,
        tau_relu=acquisition.tau_relu,
        tau_max=acquisition.tau_max,
    )
    (our_gradient,) = torch.autograd.grad(ours.sum(), samples)
    assert theirs.max() > 0 and theirs.min() < -20
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)
    assert our_gradient.isfinite().all()
    torch.testing.assert_close(our_gradient, their_gradient, rtol=1e-9, atol=1e-12 * float(their_gradient.abs().max()))


def test_a_batch_of_several_candidates_is_botorchs_own_evaluation():
    model, gp_space, X, ref_point = _fitted(SPACES["continuous"], 2)
    ours, theirs = _both(model, X, ref_point)
    pairs = _candidates(gp_space, 10).reshape(5, 2, -1)
    with torch.no_grad():
        torch.testing.assert_close(ours(pairs), theirs(pairs), rtol=1e-9, atol=0)


def test_a_pending_point_makes_the_candidates_next_to_it_worth_little():
    model, gp_space, X, ref_point = _fitted(SPACES["continuous"], 2)
    candidates = _candidates(gp_space, 2000)
    free = CachedLogNEHVI(model, ref_point, X, sampler=SobolQMCNormalSampler(torch.Size([64]), seed=5))
    with torch.no_grad():
        best = candidates[free(candidates).argmax()]
        busy = CachedLogNEHVI(
            model, ref_point, X, sampler=SobolQMCNormalSampler(torch.Size([64]), seed=5), X_pending=best
        )
        values = busy(candidates)
    assert values.max() > busy(best.unsqueeze(0)) + 1.0
    assert (candidates[values.argmax()] - best).norm() > 0.1


def test_first_pareto_layers_take_whole_layers_in_order():
    Y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.2], [0.1, 0.3], [0.0, 0.0], [0.5, 0.5]])
    assert first_pareto_layers(Y, 1).tolist() == [0, 1, 2, 6]  # the front, its duplicate included
    assert first_pareto_layers(Y, 5).tolist() == [0, 1, 2, 3, 4, 6]
    assert first_pareto_layers(Y, 100).tolist() == list(range(7))


def test_past_the_candidate_cap_the_baseline_comes_from_the_first_pareto_layers(monkeypatch):
    model, _, X, ref_point = _fitted(SPACES["continuous"], 2, n=150)
    with torch.no_grad():
        means = model.posterior(X).mean
        torch.manual_seed(11)
        everyone = prune_inferior_points_multi_objective(model, X, ref_point)
    layers = X[first_pareto_layers(means, 60)]
    assert len(layers) < 80

    def rows(points: torch.Tensor) -> set[tuple[float, ...]]:
        return {tuple(point.tolist()) for point in points}

    # The 40-odd points BoTorch keeps from all 150 are all among the first layers' 60-odd (these
    # objectives are noisy: a point far from the front by its mean can still be on it in a sample).
    assert rows(everyone) <= rows(layers)
    monkeypatch.setattr(_gp_nei, "MAX_PRUNE_CANDIDATES", 60)
    ours, _ = _both(model, X, ref_point)
    assert rows(ours.X_baseline) <= rows(layers)
    assert len(rows(ours.X_baseline) & rows(everyone)) >= 0.8 * len(everyone)


@pytest.mark.parametrize("outcomes", [2, 3])
def test_the_dominance_check_is_botorchs_with_ties_and_duplicates(outcomes):
    generator = torch.Generator().manual_seed(3)
    # Few distinct levels, so that many points tie on one outcome or both; and continuous samples.
    for Y in (
        torch.randint(0, 4, (500, 30, outcomes), generator=generator).double(),
        torch.randn(64, 200, outcomes, generator=generator, dtype=torch.float64),
        # More rows than one pairwise comparison of BoTorch's takes: checked in slices.
        torch.randn(3000, 60, outcomes, generator=generator, dtype=torch.float64),
        torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [-torch.inf, 2.0]])[:, :outcomes],
    ):
        if Y.shape[-1] != outcomes:
            continue
        expected = is_non_dominated(Y, deduplicate=False)
        assert torch.equal(non_dominated(Y), expected)
        assert expected.sum() < expected.numel()
    assert non_dominated(torch.zeros(3, 0, outcomes)).shape == (3, 0)
