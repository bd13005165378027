"""The outcomes the GP is trained on: outliers softened, warped towards normal, standardized."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from lightning_hpo.samplers._gp_model import WARP_EXPONENT_RANGE, model_outcomes, standardize, warp_to_normal


def _skewed(n: int = 60, seed: int = 0) -> torch.Tensor:
    """``n x 1`` negated losses (larger is better): a tight cluster of good values and a long tail
    of poor ones, as validation losses are."""
    generator = torch.Generator().manual_seed(seed)
    return -torch.exp(0.8 * torch.randn(n, 1, generator=generator, dtype=torch.float64))


def test_warp_is_scipys_yeo_johnson_at_the_most_normal_exponent():
    for seed in range(4):
        Y = _skewed(seed=seed)
        z = standardize(Y)[:, 0].numpy()
        exponent = stats.yeojohnson_normmax(z)
        assert WARP_EXPONENT_RANGE[0] < exponent < WARP_EXPONENT_RANGE[1]
        expected = stats.yeojohnson(z, lmbda=exponent)
        np.testing.assert_allclose(warp_to_normal(Y)[:, 0].numpy(), expected, atol=0.01 * np.ptp(expected))


def test_warp_keeps_the_order_and_makes_a_skewed_column_more_normal():
    Y = _skewed()
    warped = warp_to_normal(Y)
    assert torch.equal(warped[:, 0].argsort(), Y[:, 0].argsort())
    assert abs(stats.skew(warped[:, 0].numpy())) < 0.5 < abs(stats.skew(Y[:, 0].numpy()))
    # the good cluster is spread apart: the best 10 span more of the standardized range
    best = Y[:, 0].argsort()[-10:]
    assert np.ptp(warped[best, 0].numpy()) > 2 * np.ptp(standardize(Y)[best, 0].numpy())


def test_normal_data_is_left_nearly_as_it_is():
    Y = torch.randn(200, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(warp_to_normal(Y), standardize(Y), atol=0.15, rtol=0.0)


@pytest.mark.parametrize("Y", [[[3.0], [3.0], [3.0]], [[1.0], [2.0]], [[5.0]]])
def test_constant_or_short_columns_are_only_standardized(Y):
    Y = torch.tensor(Y, dtype=torch.float64)
    torch.testing.assert_close(warp_to_normal(Y), standardize(Y))


def test_columns_are_warped_independently():
    Y = torch.cat(
        [_skewed(seed=2), torch.randn(60, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)], dim=1
    )
    both = model_outcomes(Y)
    torch.testing.assert_close(both[:, :1], model_outcomes(Y[:, :1]))
    torch.testing.assert_close(both[:, 1:], model_outcomes(Y[:, 1:]))
    torch.testing.assert_close(both.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0.0)
    torch.testing.assert_close(both.std(0), torch.ones(2, dtype=torch.float64))


def test_a_diverged_run_does_not_flatten_the_good_values():
    """One loss of 1e6 among values near 1: the fence pulls it in before the warp sees it."""
    Y = -torch.tensor([[1.0], [1.1], [1.2], [1.3], [1.5], [2.0], [1e6]], dtype=torch.float64)
    outcomes = model_outcomes(Y)[:, 0]
    assert torch.equal(outcomes.argsort(), Y[:, 0].argsort())
    assert outcomes[0] - outcomes[4] > 0.3  # 1.0 and 1.5 stay well apart


@pytest.mark.parametrize("exponent", [-1000, -600, 600, 1000])
def test_outcomes_of_any_magnitude_are_modelled_as_the_same_outcomes_near_one(exponent):
    """Scaled by a power of two, so exactly: before the scale was taken out, the variance's squares
    underflowed below about 1e-154 (the column looked constant) and overflowed above 1e154."""
    Y = torch.cat(
        [_skewed(seed=4), torch.randn(60, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)], 1
    )
    assert torch.equal(model_outcomes(torch.ldexp(Y, torch.tensor(exponent))), model_outcomes(Y))
    assert torch.equal(standardize(torch.ldexp(Y, torch.tensor(exponent))), standardize(Y))


def test_lengthscales_start_and_are_centred_at_the_root_of_the_dimension():
    """Matern lengthscales of a kernel on d Float/Int columns start at, and have their prior's
    median at, sqrt(d); the categorical kernel's (a mean over its columns) at 1."""
    from lightning_hpo import Categorical, Float, Int, SearchSpace
    from lightning_hpo.samplers._gp_kernels import ChoiceKernel, Matern52Kernel
    from lightning_hpo.samplers._gp_model import build_model
    from lightning_hpo.samplers._gp_space import GPSpace

    space = SearchSpace(
        {
            "a": Float(0.0, 1.0),
            "b": Float(1e-3, 1.0, log=True),
            "c": Float(0.0, 1.0),
            "n": Int(1, 8),
            "k": Categorical(["x", "y", "z"]),
        }
    )
    gp_space = GPSpace(space)
    X = gp_space.from_unit(torch.rand(8, len(space), generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    model = build_model(X, torch.randn(8, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64), gp_space)
    kernels = [m for m in model.covar_module.modules() if isinstance(m, (Matern52Kernel, ChoiceKernel))]
    assert {type(k) for k in kernels} == {Matern52Kernel, ChoiceKernel}
    for kernel in kernels:
        centre = 2.0 if isinstance(kernel, Matern52Kernel) else 1.0  # 4 Float/Int columns: sqrt(4)
        torch.testing.assert_close(kernel.lengthscale.detach(), torch.full_like(kernel.lengthscale, centre))
        assert kernel.lengthscale_prior.icdf(torch.tensor(0.5, dtype=torch.float64)).item() == pytest.approx(centre)


def test_a_large_fit_started_from_a_thinned_one_reaches_the_same_posterior_mode(monkeypatch):
    """Past COARSE_FIT_ABOVE observations the fit starts from the fit to an even thinning: it ends
    where the fit from the priors' centres ends, in fewer steps."""
    from lightning_hpo import Categorical, Float, Int, SearchSpace
    from lightning_hpo.samplers import _gp_model
    from lightning_hpo.samplers._gp_space import GPSpace

    space = SearchSpace({"a": Float(0.0, 1.0), "b": Float(1e-3, 1.0, log=True), "n": Int(1, 8), "k": Categorical(["x", "y"])})  # fmt: skip
    gp_space = GPSpace(space)
    generator = torch.Generator().manual_seed(0)
    X = gp_space.from_unit(torch.rand(120, len(space), generator=generator, dtype=torch.float64))
    Y = (torch.sin(6 * X[:, :1]) - X[:, 1:2] + 0.1 * X[:, 2:3] + 0.05 * torch.randn(120, 1, generator=generator, dtype=torch.float64))  # fmt: skip
    evaluations: list[int] = []  # the size of the data at each evaluation of the log posterior
    add_terms = _gp_model._PriorsListedOnce._add_other_terms

    def counting(self, res, params):
        evaluations.append(len(self.model.train_targets))
        return add_terms(self, res, params)

    def log_posterior(model):
        mll = _gp_model._PriorsListedOnce(model.likelihood, model).train()
        with torch.no_grad():
            return mll(model(*model.train_inputs), model.train_targets).item()

    monkeypatch.setattr(_gp_model._PriorsListedOnce, "_add_other_terms", counting)
    plain = _gp_model.fit_model(X, Y, gp_space)
    from_priors, evaluations[:] = len(evaluations), []
    monkeypatch.setattr(_gp_model, "COARSE_FIT_ABOVE", 100)
    monkeypatch.setattr(_gp_model, "COARSE_FIT_SIZE", 40)
    coarse = _gp_model.fit_model(X, Y, gp_space)
    assert set(evaluations) == {40, 120} and evaluations[0] == 40  # the thinned fit, then the full one from it
    assert evaluations.count(120) < from_priors  # fewer steps of the costly size
    assert log_posterior(coarse) == pytest.approx(log_posterior(plain), abs=1e-3)
    with torch.no_grad():
        test = gp_space.from_unit(torch.rand(50, len(space), generator=generator, dtype=torch.float64))
        torch.testing.assert_close(coarse.posterior(test).mean, plain.posterior(test).mean, atol=1e-2, rtol=0)


def test_leave_one_out_log_densities_are_those_of_the_gp_refitted_without_each_point():
    import math

    from botorch.models import SingleTaskGP

    from lightning_hpo.samplers._gp_model import leave_one_out_log_densities

    generator = torch.Generator().manual_seed(0)
    X = torch.rand(12, 3, dtype=torch.float64, generator=generator)
    Y = torch.sin(6 * X).sum(-1, keepdim=True)
    Y = (Y - Y.mean()) / Y.std()

    def gp(rows: list[int]) -> SingleTaskGP:
        model = SingleTaskGP(X[rows], Y[rows], outcome_transform=None)
        model.likelihood.noise = 0.05
        return model.eval()

    full = gp(list(range(12)))
    expected = []
    for i in range(12):
        model = gp([j for j in range(12) if j != i])
        model.load_state_dict(full.state_dict())
        posterior = model.posterior(X[i : i + 1], observation_noise=True)
        mean, variance = posterior.mean.item(), posterior.variance.item()
        expected.append(-0.5 * math.log(variance) - 0.5 * (Y[i].item() - mean) ** 2 / variance)
    torch.testing.assert_close(leave_one_out_log_densities(full), torch.tensor(expected, dtype=torch.float64))


def test_a_clear_lead_is_more_than_the_given_standard_errors_of_the_leave_one_out_difference():
    from botorch.models import SingleTaskGP

    from lightning_hpo.samplers._gp_model import leave_one_out_log_densities, predicts_clearly_better

    generator = torch.Generator().manual_seed(0)
    X = torch.rand(20, 2, dtype=torch.float64, generator=generator)
    Y = torch.sin(3 * X).sum(-1, keepdim=True)  # smooth: long lengthscales predict it better
    Y = (Y - Y.mean()) / Y.std()

    def gp(lengthscale: float) -> SingleTaskGP:
        model = SingleTaskGP(X, Y, outcome_transform=None)
        model.likelihood.noise, model.covar_module.lengthscale = 0.01, lengthscale
        return model.eval()

    rough, smooth, a_little_smoother = gp(0.05), gp(0.5), gp(0.55)
    lead = leave_one_out_log_densities(a_little_smoother) - leave_one_out_log_densities(smooth)
    assert 0 < lead.sum() < 2 * lead.std() * len(lead) ** 0.5  # ahead, by less than two standard errors
    assert predicts_clearly_better(a_little_smoother, smooth, 0.0)
    assert not predicts_clearly_better(a_little_smoother, smooth, 2.0)
    assert predicts_clearly_better(smooth, rough, 2.0) and not predicts_clearly_better(rough, smooth, 0.0)


def _clustered_history(dimension: int, objective) -> tuple[torch.Tensor, torch.Tensor]:
    """15 random points and 25 around one point, as a study's history gathers near its best."""
    generator = torch.Generator().manual_seed(0)
    X = torch.cat(
        [
            torch.rand(15, dimension, generator=generator, dtype=torch.float64),
            (0.3 + 0.1 * torch.randn(25, dimension, generator=generator, dtype=torch.float64)).clamp(0, 1),
        ]
    )
    return X, objective(X)


@pytest.mark.parametrize(
    "objective, wider_kept",
    [
        (lambda X: (X > 0.5).double().sum(-1, keepdim=True), True),  # steps: the wider prior predicts them
        (lambda X: torch.sin(3 * X).sum(-1, keepdim=True), False),  # smooth: the default prior does
    ],
    ids=["steps", "smooth"],
)
def test_at_ten_columns_the_objective_fit_keeps_the_wider_prior_only_where_it_predicts_clearly_better(
    objective, wider_kept
):
    from lightning_hpo import Float, SearchSpace
    from lightning_hpo.samplers import _gp_model
    from lightning_hpo.samplers._gp_space import GPSpace

    gp_space = GPSpace(SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(10)}))
    X, Y = _clustered_history(10, objective)
    chosen = _gp_model.hyperparameters_of(_gp_model.fit_objective_model(X, Y, gp_space))
    default = _gp_model.hyperparameters_of(_gp_model.fit_model(X, Y, gp_space))
    wider = _gp_model.hyperparameters_of(_gp_model.fit_model(X, Y, gp_space, None, _gp_model.WIDER_PRIOR_FACTOR))
    kept = wider if wider_kept else default
    assert chosen.keys() == kept.keys()
    assert all(torch.equal(chosen[name], kept[name]) for name in kept)
    assert not all(torch.equal(wider[name], default[name]) for name in default)


def test_below_eight_columns_or_with_several_outcomes_the_objective_fit_is_the_default_fit_alone(monkeypatch):
    from lightning_hpo import Float, SearchSpace
    from lightning_hpo.samplers import _gp_model
    from lightning_hpo.samplers._gp_space import GPSpace

    fitted_spreads: list[float] = []
    fit_model = _gp_model.fit_model

    def counting(*args, **kwargs):
        fitted_spreads.append(args[4] if len(args) > 4 else kwargs.get("lengthscale_spread_factor", 1.0))
        return fit_model(*args, **kwargs)

    monkeypatch.setattr(_gp_model, "fit_model", counting)
    steps = lambda X: (X > 0.5).double().sum(-1, keepdim=True)  # noqa: E731 - where 10 columns keep the wider fit
    narrow = _gp_model.WIDER_PRIOR_FROM_COLUMNS - 1
    X, Y = _clustered_history(narrow, steps)
    _gp_model.fit_objective_model(X, Y, GPSpace(SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(narrow)})))
    assert fitted_spreads == [1.0]
    wide = 10
    X, Y = _clustered_history(wide, steps)
    fitted_spreads.clear()
    gp_space = GPSpace(SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(wide)}))
    _gp_model.fit_objective_model(X, torch.cat([Y, -Y], dim=-1), gp_space)
    assert fitted_spreads == [1.0]
    _gp_model.fit_objective_model(X, Y, gp_space)
    assert fitted_spreads == [1.0, 1.0, _gp_model.WIDER_PRIOR_FACTOR]


def test_with_known_noise_the_objective_fit_judges_both_priors_by_that_noise():
    from gpytorch.likelihoods import FixedNoiseGaussianLikelihood

    from lightning_hpo import Float, SearchSpace
    from lightning_hpo.samplers import _gp_model
    from lightning_hpo.samplers._gp_space import GPSpace

    gp_space = GPSpace(SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(10)}))
    X, Y = _clustered_history(10, lambda X: (X > 0.5).double().sum(-1, keepdim=True))
    Yvar = torch.full_like(Y, 0.01)
    Yvar[::2] = 0.0  # known for some trials only (evaluated several times), as the sampler passes it
    chosen = _gp_model.fit_objective_model(X, Y, gp_space, Yvar)
    assert isinstance(chosen.likelihood, FixedNoiseGaussianLikelihood)
    assert torch.isfinite(_gp_model.leave_one_out_log_densities(chosen)).all()
    fits = [_gp_model.fit_model(X, Y, gp_space, Yvar, factor) for factor in (1.0, _gp_model.WIDER_PRIOR_FACTOR)]
    chosen_lengthscales = _gp_model.lengthscales(chosen, gp_space)
    assert any(torch.equal(chosen_lengthscales, _gp_model.lengthscales(fit, gp_space)) for fit in fits)


@pytest.mark.parametrize("n", [1, 2, 3, 12, 40])
def test_outcome_image_of_the_outcomes_themselves_is_model_outcomes_to_the_bit(n):
    from lightning_hpo.samplers._gp_model import outcome_image

    generator = torch.Generator().manual_seed(n)
    Y = torch.randn(n, 3, generator=generator, dtype=torch.float64) ** 3  # skewed, with outliers
    Y[:, 1] = -Y[:, 1].abs().exp()  # a long tail of poor values
    Y[:, 2] = 0.25  # constant
    assert torch.equal(outcome_image(Y, Y), model_outcomes(Y))


def test_outcome_image_keeps_the_order_of_any_values_among_the_outcomes():
    from lightning_hpo.samplers._gp_model import outcome_image

    generator = torch.Generator().manual_seed(0)
    Y = -torch.randn(30, 2, generator=generator, dtype=torch.float64).exp() * torch.tensor([1.0, 1e4])
    values = torch.linspace(-2.0, 0.5, 200, dtype=torch.float64).unsqueeze(1) * Y.abs().amax(0) * 3
    image = outcome_image(Y, values)
    assert torch.isfinite(image).all() and (image.diff(dim=0) > 0).all()
    # A value far below every outcome is pulled in as an outlier is, not sent to minus infinity.
    far = outcome_image(Y, Y.amin(0, keepdim=True) * 100)
    assert (far < model_outcomes(Y).amin(0)).all() and (far > -20).all()
    # One stated between two observations lands between their outcomes.
    outcomes = model_outcomes(Y)
    low, high = Y[:, 0].sort().values[10:12]
    between = outcome_image(Y, torch.tensor([[(low + high) / 2, Y[0, 1]]], dtype=torch.float64))[0, 0]
    assert outcomes[Y[:, 0] == low, 0] < between < outcomes[Y[:, 0] == high, 0]
