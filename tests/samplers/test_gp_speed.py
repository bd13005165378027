"""The GP's speed-ups change no suggestion: the fit and the sampler against GPyTorch's own path.

``fit_model`` lists the model's priors once, evaluates the kernel at once rather than lazily, and
hands the fitted model to the sampler instead of a second one built from its hyperparameters.
Each is only bookkeeping, so the results must be bit for bit those of the plain GPyTorch path
(``_reference_fit_model``, the code these replaced), with BoTorch's real optimizers. Past
``CLOSED_FORM_FIT_ABOVE`` observations the log density and its gradient, and the kernels'
lengthscale gradient, are computed in closed form: the same values to rounding, not bit for bit,
and the fit ends where GPyTorch's does.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import gpytorch
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from gpytorch.mlls import ExactMarginalLogLikelihood

from lightning_hpo import Categorical, Float, GPSampler, Int, NopPruner, SearchSpace, Study
from lightning_hpo.samplers import _gp_model
from lightning_hpo.samplers._gp_kernels import ChoiceKernel, Matern52Kernel, closed_form_kernel_gradients
from lightning_hpo.samplers._gp_model import FIT_MAX_STEPS, FIT_TOLERANCE, build_model
from lightning_hpo.samplers._gp_space import GPSpace

MIXED = SearchSpace(
    {
        "C": Float(1e-4, 1e4, log=True),
        "ratio": Float(0.0, 1.0),
        "depth": Int(1, 30),
        "criterion": Categorical(["gini", "entropy", "log_loss"]),
    }
)
ORDINAL = SearchSpace({"lr": Float(1e-5, 1e-1, log=True), "momentum": Float(0.0, 0.99), "width": Int(8, 128)})
CATEGORICAL = SearchSpace({"kernel": Categorical(["rbf", "poly", "linear"]), "shrink": Categorical([True, False])})


def _reference_fit_model(train_X, train_Y, gp_space, train_Yvar=None):
    """The sampler's GP as GPyTorch's own path fits it: its exact marginal likelihood, lazily
    evaluated kernels, and the suggestion's model built afresh from the fitted hyperparameters."""
    model = build_model(train_X, train_Y, gp_space, train_Yvar=train_Yvar)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    tolerance = {"ftol": FIT_TOLERANCE} if train_Y.shape[-1] == 1 else {"factr": FIT_TOLERANCE / 2.220446049250313e-16}
    fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": FIT_MAX_STEPS, **tolerance}})
    hyperparameters = {name: value.detach().clone() for name, value in model.named_parameters()}
    return build_model(train_X, train_Y, gp_space, hyperparameters, train_Yvar=train_Yvar)


def _data(space: SearchSpace, n: int, m: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, GPSpace]:
    generator = torch.Generator().manual_seed(seed)
    gp_space = GPSpace(space)
    X = gp_space.from_unit(torch.rand(n, len(space), generator=generator, dtype=torch.float64))
    Y = torch.sin(6 * X).sum(-1, keepdim=True) + 0.1 * torch.randn(n, m, generator=generator, dtype=torch.float64)
    return X, Y, gp_space


def _loss_and_gradients(mll: ExactMarginalLogLikelihood) -> list[torch.Tensor]:
    model = mll.model
    model.train()
    model.zero_grad()
    loss = -mll(model(*model.train_inputs), model.train_targets).sum()
    loss.backward()
    return [loss.detach()] + [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize(
    ("space", "m", "known_noise"),
    [(MIXED, 1, False), (ORDINAL, 1, False), (CATEGORICAL, 1, False), (MIXED, 1, True), (MIXED, 2, False)],
    ids=["mixed", "ordinal", "categorical", "known-noise", "two-outcomes"],
)
def test_marginal_likelihood_and_gradients_are_gpytorchs_bit_for_bit_and_in_closed_form_to_rounding(
    space, m, known_noise
):
    X, Y, gp_space = _data(space, 12, m)
    Yvar = torch.linspace(0.0, 0.05, 12, dtype=torch.float64).unsqueeze(-1) if known_noise else None
    model = build_model(X, Y, gp_space, train_Yvar=Yvar)
    expected = _loss_and_gradients(ExactMarginalLogLikelihood(model.likelihood, model))
    with gpytorch.settings.lazily_evaluate_kernels(False):
        listed_once = _loss_and_gradients(_gp_model._PriorsListedOnce(model.likelihood, model))
        with closed_form_kernel_gradients(model):
            closed_form = _loss_and_gradients(_gp_model._ClosedFormLogPosterior(model.likelihood, model))
    assert len(listed_once) == len(closed_form) == len(expected)
    for a, b in zip(listed_once, expected):
        assert torch.equal(a, b)
    for a, b in zip(closed_form, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert any(not torch.equal(a, b) for a, b in zip(closed_form, expected))  # its own arithmetic, not GPyTorch's


def _matern(batch: tuple[int, ...]) -> tuple[Matern52Kernel, torch.Tensor]:
    x = torch.rand(40, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x[7] = x[3]  # a repeated input: zero distance off the diagonal
    return Matern52Kernel(ard_num_dims=4, batch_shape=torch.Size(batch)).double(), x


def _choices(batch: tuple[int, ...]) -> tuple[ChoiceKernel, torch.Tensor]:
    x = torch.randint(0, 3, (40, 2), generator=torch.Generator().manual_seed(3)).double()
    return ChoiceKernel(ard_num_dims=2, batch_shape=torch.Size(batch)).double(), x


@pytest.mark.parametrize("make", [_matern, _choices], ids=["matern", "choices"])
@pytest.mark.parametrize("batch", [(), (2,)], ids=["one-outcome", "two-outcomes"])
def test_training_covariance_and_lengthscale_gradient_in_closed_form_are_the_kernels(make, batch):
    kernel, x = make(batch)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        kernel.raw_lengthscale.copy_(torch.randn(kernel.raw_lengthscale.shape, generator=generator).double())
    upstream = torch.randn(*batch, 40, 40, generator=generator, dtype=torch.float64)

    def covariance_and_gradient():
        kernel.zero_grad()
        with gpytorch.settings.lazily_evaluate_kernels(False):
            covariance = kernel(x).to_dense()
        (covariance * upstream).sum().backward()
        return covariance.detach(), kernel.raw_lengthscale.grad.clone()

    expected, expected_gradient = covariance_and_gradient()
    with closed_form_kernel_gradients(kernel):
        covariance, gradient = covariance_and_gradient()
        assert not torch.equal(gradient, expected_gradient)  # its own arithmetic
    torch.testing.assert_close(covariance, expected, rtol=0, atol=1e-14)
    torch.testing.assert_close(gradient, expected_gradient, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # the kernel's covariance of inputs that need no gradient, bit for bit
        assert torch.equal(covariance, kernel(x).to_dense())
    assert torch.equal(covariance_and_gradient()[1], expected_gradient)  # the kernel's own again outside


def test_large_fits_use_the_closed_form_and_end_where_gpytorchs_fit_ends(monkeypatch):
    X, Y, gp_space = _data(MIXED, 60)
    used = []
    forward = _gp_model._ClosedFormLogPosterior.forward

    def counting(self, *args):
        used.append(len(self.model.train_targets))
        return forward(self, *args)

    monkeypatch.setattr(_gp_model._ClosedFormLogPosterior, "forward", counting)
    monkeypatch.setattr(_gp_model, "COARSE_FIT_ABOVE", 10**9)  # one fit, from the priors' centres
    monkeypatch.setattr(_gp_model, "CLOSED_FORM_FIT_ABOVE", 59)
    closed = _gp_model.fit_model(X, Y, gp_space)
    assert used and set(used) == {60}
    monkeypatch.setattr(_gp_model, "CLOSED_FORM_FIT_ABOVE", 60)
    used.clear()
    reference = _gp_model.fit_model(X, Y, gp_space)
    assert not used
    for name, value in _gp_model.hyperparameters_of(reference).items():
        torch.testing.assert_close(_gp_model.hyperparameters_of(closed)[name], value, rtol=1e-5, atol=1e-6, msg=name)
    # The coarse fit a large fit starts from is in the large fit's arithmetic, however small it is.
    monkeypatch.setattr(_gp_model, "CLOSED_FORM_FIT_ABOVE", 59)
    monkeypatch.setattr(_gp_model, "COARSE_FIT_ABOVE", 59)
    monkeypatch.setattr(_gp_model, "COARSE_FIT_SIZE", 20)
    _gp_model.fit_model(X, Y, gp_space)
    assert set(used) == {20, 60}


def test_fitted_model_is_the_model_built_from_its_hyperparameters():
    X, Y, gp_space = _data(MIXED, 10)
    fitted = _gp_model.fit_model(X, Y, gp_space)
    assert not fitted.training
    rebuilt = build_model(X, Y, gp_space, _gp_model.hyperparameters_of(fitted))
    assert _gp_model.hyperparameters_of(rebuilt).keys() == _gp_model.hyperparameters_of(fitted).keys()
    for name, value in _gp_model.hyperparameters_of(rebuilt).items():
        assert torch.equal(value, _gp_model.hyperparameters_of(fitted)[name]), name
    candidates = gp_space.from_unit(torch.rand(5, len(MIXED), generator=torch.Generator().manual_seed(1)).double())
    with torch.no_grad():
        assert torch.equal(fitted.posterior(candidates).mean, rebuilt.posterior(candidates).mean)


def _objective(params: dict[str, Any]) -> tuple[float, float]:
    loss = (math.log10(params["C"]) - 1.0) ** 2 / 16 + (params["ratio"] - 0.3) ** 2 + abs(params["depth"] - 7) / 30
    loss += {"gini": 0.0, "entropy": 0.2, "log_loss": 0.3}[params["criterion"]]
    return loss, (params["ratio"] - 0.8) ** 2 + params["depth"] / 30


def _digest_of_suggestions(directions: list[str], n_trials: int) -> str:
    sampler = GPSampler(seed=3, n_startup_trials=4)
    study = Study(
        "digest", search_space=MIXED, storage=":memory:", sampler=sampler, pruner=NopPruner(), mode=directions
    )
    for _ in range(n_trials):
        trial = study.ask()
        values = _objective(trial.params)
        study.tell(trial, values[0] if len(directions) == 1 else values)
    return hashlib.sha256(repr([t.params for t in study.trials]).encode()).hexdigest()


@pytest.mark.parametrize(("directions", "n_trials"), [(["min"], 8), (["min", "min"], 6)], ids=["one", "two-objectives"])
def test_suggestions_are_those_of_gpytorchs_own_path(monkeypatch, directions, n_trials):
    fast = _digest_of_suggestions(directions, n_trials)
    monkeypatch.setattr(_gp_model, "fit_model", _reference_fit_model)
    assert _digest_of_suggestions(directions, n_trials) == fast
