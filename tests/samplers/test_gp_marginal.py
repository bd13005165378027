"""The acquisition averaged over a Laplace approximation of the GP hyperparameters' posterior."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_hpo import Categorical, Float, SearchSpace, Study
from lightning_hpo.samplers import GPSampler
from lightning_hpo.samplers._gp_marginal import LogMeanAcquisition, laplace_draws
from lightning_hpo.samplers._gp_model import _PriorsListedOnce, fit_model, hyperparameters_of
from lightning_hpo.samplers._gp_space import GPSpace

SPACE = SearchSpace({"a": Float(0.0, 1.0), "b": Float(1e-3, 1.0, log=True), "k": Categorical(["x", "y"])})


def _data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, GPSpace]:
    gp_space = GPSpace(SPACE)
    generator = torch.Generator().manual_seed(seed)
    X = gp_space.from_unit(torch.rand(n, len(SPACE), generator=generator, dtype=torch.float64))
    Y = torch.sin(5 * X[:, :1]) - X[:, 1:2] + 0.3 * X[:, 2:3] + 0.01 * torch.randn(n, 1, generator=generator, dtype=torch.float64)  # fmt: skip
    return X, Y, gp_space


def _drawn(draw: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for k, v in draw.items() if k.endswith(("raw_lengthscale", "raw_outputscale"))])


def test_draws_move_only_the_kernel_scales_in_antithetic_pairs_around_the_mode():
    X, Y, gp_space = _data(20)
    model = fit_model(X, Y, gp_space)
    mode = hyperparameters_of(model)
    draws = laplace_draws(model, mode, 4, torch.Generator().manual_seed(0))
    assert len(draws) == 4
    for draw in draws:
        assert draw.keys() == mode.keys()
        for name, value in draw.items():
            if not name.endswith(("raw_lengthscale", "raw_outputscale")):
                assert torch.equal(value, mode[name]), name
        assert not torch.equal(_drawn(draw), _drawn(mode))
    torch.testing.assert_close((_drawn(draws[0]) + _drawn(draws[2])) / 2, _drawn(mode))
    torch.testing.assert_close((_drawn(draws[1]) + _drawn(draws[3])) / 2, _drawn(mode))
    # The model itself is left at its mode.
    torch.testing.assert_close(_drawn(hyperparameters_of(model)), _drawn(mode))


def test_the_draws_spread_is_the_inverse_curvature_of_the_log_posterior():
    """The draws' covariance is the inverse of the log posterior's curvature at the mode: along one
    coordinate with the others held, the curvature is the diagonal of the draws' precision."""
    X, Y, gp_space = _data(25)
    model = fit_model(X, Y, gp_space)
    mode = hyperparameters_of(model)
    draws = laplace_draws(model, mode, 4000, torch.Generator().manual_seed(0))
    offsets = torch.stack([_drawn(d) - _drawn(mode) for d in draws])
    covariance = offsets.T @ offsets / len(offsets)
    name = next(k for k in mode if k.endswith(("raw_lengthscale", "raw_outputscale")))
    column = 0  # the first drawn coordinate

    def log_posterior(shift: float) -> float:
        model.train()
        with torch.no_grad():
            parameter = dict(model.named_parameters())[name]
            parameter.copy_(mode[name])
            parameter.view(-1)[column] += shift
            mll = _PriorsListedOnce(model.likelihood, model)
            value = len(Y) * mll(model(*model.train_inputs), model.train_targets).item()
            parameter.copy_(mode[name])
        return value

    # The curvature along the coordinate, with the others held: the diagonal of the precision.
    h = 1e-3
    curvature = -(log_posterior(h) - 2 * log_posterior(0.0) + log_posterior(-h)) / h**2
    precision = torch.linalg.inv(covariance)
    assert precision[column, column].item() == pytest.approx(max(curvature, 1.0), rel=0.1)


def test_with_more_data_the_draws_spread_less():
    spreads = []
    for n in (8, 60):
        X, Y, gp_space = _data(n)
        model = fit_model(X, Y, gp_space)
        mode = hyperparameters_of(model)
        draws = laplace_draws(model, mode, 200, torch.Generator().manual_seed(0))
        spreads.append(torch.stack([_drawn(d) - _drawn(mode) for d in draws]).std(dim=0).mean().item())
    assert spreads[1] < spreads[0]


def test_log_mean_acquisition_is_the_log_of_the_mean_value():
    class Constant(torch.nn.Module):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value, self.model = value, None

        def forward(self, X: torch.Tensor) -> torch.Tensor:
            return torch.full(X.shape[:1], math.log(self.value), dtype=X.dtype)

    averaged = LogMeanAcquisition([Constant(1.0), Constant(3.0)])
    assert averaged(torch.zeros(5, 1, 2, dtype=torch.float64)).tolist() == pytest.approx([math.log(2.0)] * 5)


def _sampler(seed: int) -> GPSampler:
    sampler = GPSampler(seed=seed, n_startup_trials=5)
    sampler._hyperparameter_draws = 4
    return sampler


def test_a_sampler_with_draws_suggests_valid_values_reproducibly():
    def run() -> list[dict[str, object]]:
        study = Study("laplace", search_space=SPACE, storage=":memory:", sampler=_sampler(3))
        study.optimize(lambda p: (p["a"] - 0.3) ** 2 + math.log(p["b"]) ** 2 / 50 + (p["k"] == "y"), n_trials=9)
        return [t.params for t in study.trials]

    first = run()
    assert first == run()
    for params in first[5:]:
        assert 0.0 <= params["a"] <= 1.0 and 1e-3 <= params["b"] <= 1.0 and params["k"] in ("x", "y")
