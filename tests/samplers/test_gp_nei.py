"""CachedLogNEI against BoTorch's qLogNoisyExpectedImprovement, on fitted GPs of a continuous and a
mixed space: the same values and gradients with the same base samples, the same estimate with
pending points, and a baseline of the observed points most likely the best."""

from __future__ import annotations

import pytest
import torch
from botorch.acquisition import qLogNoisyExpectedImprovement
from botorch.sampling import SobolQMCNormalSampler

from lightning_hpo import Categorical, Float, Int, SearchSpace
from lightning_hpo.samplers import _gp_nei
from lightning_hpo.samplers._gp_model import build_model, fit_hyperparameters
from lightning_hpo.samplers._gp_nei import CachedLogNEI
from lightning_hpo.samplers._gp_space import GPSpace

SPACES = {
    "continuous": SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(4)}),
    "mixed": SearchSpace(
        {"a": Float(0.0, 1.0), "b": Float(1e-3, 1.0, log=True), "n": Int(1, 8), "c": Categorical(["x", "y", "z"])}
    ),
}


def _fitted(space: SearchSpace, n: int = 40, noise: float = 0.05, seed: int = 0, clustered: int = 0):
    """A GP fitted to ``n`` random points of a smooth objective with a broad optimum, the first
    ``clustered`` of them close to the optimum (as late in a study)."""
    generator = torch.Generator().manual_seed(seed)
    gp_space = GPSpace(space)
    X = gp_space.from_unit(torch.rand(n, len(space), generator=generator, dtype=torch.float64))
    X[:clustered] = 0.4 + 0.05 * (X[:clustered] - 0.5)
    Y = -(X - 0.4).pow(2).sum(-1, keepdim=True) + noise * torch.randn(n, 1, generator=generator, dtype=torch.float64)
    return build_model(X, Y, gp_space, fit_hyperparameters(X, Y, gp_space)), gp_space


def _botorch(model, acquisition: CachedLogNEI, X_pending=None, mc_samples: int = 128, seed: int = 3):
    return qLogNoisyExpectedImprovement(
        model,
        acquisition.X_baseline,
        X_pending=X_pending,
        sampler=SobolQMCNormalSampler(torch.Size([mc_samples]), seed=seed),
        prune_baseline=False,
        cache_root=False,
    )


def _candidates(gp_space: GPSpace, n: int, seed: int = 1) -> torch.Tensor:
    unit = torch.rand(n, gp_space.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return gp_space.from_unit(unit).unsqueeze(1)


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_values_and_gradients_are_botorchs_with_the_same_base_samples(space_name):
    model, gp_space = _fitted(SPACES[space_name])
    ours = CachedLogNEI(model, None, mc_samples=128, seed=3, max_baseline=16)
    theirs = _botorch(model, ours)
    X = _candidates(gp_space, 200)
    with torch.no_grad():
        expected = theirs(X)
        got = ours(X)
    # Relative 1e-5: the two factorize differently conditioned matrices (BoTorch the joint one of
    # baseline and candidate), which differ in their last ~10 digits.
    torch.testing.assert_close(got.exp(), expected.exp(), rtol=1e-5, atol=1e-6 * float(expected.exp().max()))
    # In log space where the improvement is not tiny: where only a few samples improve, the last
    # digits depend on the order of the factorizations' operations.
    relevant = expected > -8
    assert relevant.sum() > 20
    torch.testing.assert_close(got[relevant], expected[relevant], rtol=1e-4, atol=1e-6)

    X_grad = X[:8].clone().requires_grad_(True)
    (ours_gradient,) = torch.autograd.grad(ours(X_grad).sum(), X_grad)
    X_grad = X[:8].clone().requires_grad_(True)
    (their_gradient,) = torch.autograd.grad(theirs(X_grad).sum(), X_grad)
    torch.testing.assert_close(ours_gradient, their_gradient, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_pending_points_give_botorchs_estimate(space_name):
    """With pending points the candidate is sampled after them (BoTorch samples it before), so the
    two agree as estimates: compared with many samples."""
    model, gp_space = _fitted(SPACES[space_name])
    pending = _candidates(gp_space, 3, seed=7).squeeze(1)
    ours = CachedLogNEI(model, pending, mc_samples=4096, seed=3, max_baseline=16)
    theirs = _botorch(model, ours, X_pending=pending, mc_samples=4096)
    X = _candidates(gp_space, 200)
    with torch.no_grad():
        got, expected = ours(X).exp(), theirs(X).exp()
    assert expected.max() > 0.01
    assert (got - expected).abs().max() < 0.02 * expected.max()


def test_a_pending_point_moves_the_best_candidate_away_from_it():
    model, gp_space = _fitted(SPACES["continuous"])
    free = CachedLogNEI(model, None, mc_samples=256, seed=3, max_baseline=16)
    X = _candidates(gp_space, 2000)
    with torch.no_grad():
        best = X[free(X).argmax()]
        busy = CachedLogNEI(model, best, mc_samples=256, seed=3, max_baseline=16)
        values = busy(X)
    # Next to the running point a candidate adds nothing the running point would not already find.
    assert values.max() > busy(best.unsqueeze(0)) + 0.1
    assert (X[values.argmax()] - best).norm() > 0.1


def test_baseline_is_the_observed_points_most_often_best():
    model, _ = _fitted(SPACES["continuous"], n=60, noise=0.02, clustered=30)
    X_train = model.train_inputs[0]
    with torch.no_grad():
        samples = model.posterior(X_train).rsample(torch.Size([4096])).squeeze(-1)
    frequency = torch.bincount(samples.argmax(dim=-1), minlength=len(X_train))
    assert int((frequency > 0).sum()) > 20  # many points near the optimum compete

    acquisition = CachedLogNEI(model, None, mc_samples=64, seed=3, max_baseline=4)
    kept = [int((X_train == x).all(dim=-1).nonzero()) for x in acquisition.X_baseline]
    assert len(kept) == 4
    assert set(kept) <= set(frequency.topk(6).indices.tolist())
    assert kept[0] == int(frequency.argmax())

    # Uncapped, every point that is the best in more than 1% of the samples is kept.
    everyone = CachedLogNEI(model, None, mc_samples=64, seed=3, max_baseline=len(X_train))
    kept = {int((X_train == x).all(dim=-1).nonzero()) for x in everyone.X_baseline}
    assert set((frequency > 0.01 * 4096).nonzero().flatten().tolist()) <= kept


def test_past_the_candidate_cap_the_baseline_comes_from_the_highest_posterior_means(monkeypatch):
    model, _ = _fitted(SPACES["continuous"], n=60, noise=0.02, clustered=30)
    X_train = model.train_inputs[0]
    with torch.no_grad():
        samples = model.posterior(X_train).rsample(torch.Size([4096])).squeeze(-1)
    frequency = torch.bincount(samples.argmax(dim=-1), minlength=len(X_train))
    monkeypatch.setattr(_gp_nei, "MAX_PRUNE_CANDIDATES", 25)

    acquisition = CachedLogNEI(model, None, mc_samples=64, seed=3, max_baseline=4)
    kept = [int((X_train == x).all(dim=-1).nonzero()) for x in acquisition.X_baseline]
    assert len(kept) == 4
    assert set(kept) <= set(frequency.topk(6).indices.tolist())
    assert kept[0] == int(frequency.argmax())


def test_a_margin_lowers_every_value_and_most_where_the_model_is_sure():
    model, gp_space = _fitted(SPACES["continuous"], clustered=10)
    plain = CachedLogNEI(model, None, mc_samples=128, seed=3, max_baseline=16)
    demanding = CachedLogNEI(model, None, mc_samples=128, seed=3, max_baseline=16, margin=0.5)
    near = plain.X_baseline[:1] + 0.01  # next to the incumbent: a small, sure improvement at best
    far = torch.ones(1, gp_space.dim, dtype=torch.float64)  # a corner far from the data: unsure
    X = torch.cat([near, far]).unsqueeze(1)
    with torch.no_grad():
        before, after = plain(X), demanding(X)
    assert (after < before).all()
    assert after[1] - after[0] > before[1] - before[0]  # the unsure corner gains on the sure step
