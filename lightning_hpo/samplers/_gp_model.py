"""The Gaussian-process surrogate: a BoTorch ``SingleTaskGP`` with a kernel made for the space.

* Float and Int columns share a Matern-5/2 kernel with one lengthscale each; categorical columns
  get BoTorch's ``CategoricalKernel``, a function of which choices differ (no order is imposed on
  choices); with both kinds the kernel is BoTorch's mixed structure, their sum plus their product.
* Priors suit the low-dimensional spaces of hyperparameter tuning. The Matern lengthscales are
  log-normal around ``sqrt(d)`` for ``d`` Float and Int columns (see :func:`_lengthscale_settings`),
  the categorical ones around 1, the output scale Gamma(2, 1) and the noise variance
  Gamma(1.1, 30), small but inferred (training objectives are noisy). BoTorch's default prior has
  the same ``sqrt(d)`` scaling but is centred ~4 times further out and much wider, made for
  high-dimensional problems; on 6-dimensional benchmark functions it found the global basin
  markedly less often (``benchmarks/GP_DECISIONS.md``). In spaces of many Float and Int columns
  the objective's GP is also fitted under a lengthscale prior twice as spread, and that fit is kept
  where it predicts the observed outcomes clearly better (:func:`fit_objective_model`).
* Outcomes go through three monotone steps, so the best points stay the best: values far below
  the rest are pulled in (:func:`soften_outliers`), each column is warped towards a normal
  distribution by a Yeo-Johnson transform with its maximum-likelihood exponent
  (:func:`warp_to_normal`, HEBO's output warping), and standardized.

Every positive hyperparameter is optimized through its logarithm: BoTorch's defaults optimize
lengthscales and noise on their own scale, where L-BFGS-B needs several times more steps to fit
than in log space from the priors' centres (``benchmarks/GP_DECISIONS.md``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import gpytorch
import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import Kernel, MaternKernel, ScaleKernel
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood, GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior, LogNormalPrior
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor

from lightning_hpo.samplers._gp_kernels import ChoiceKernel, Matern52Kernel, closed_form_kernel_gradients
from lightning_hpo.samplers._gp_space import GPSpace

__all__ = [
    "build_model",
    "even_thinning",
    "fit_hyperparameters",
    "fit_model",
    "fit_objective_model",
    "hyperparameters_of",
    "leave_one_out_log_densities",
    "lengthscales",
    "model_outcomes",
    "warp_to_normal",
]

#: L-BFGS-B's relative tolerance on the negative log marginal likelihood: well below the
#: differences that change a suggestion, and far fewer steps than scipy's default of 2e-9.
FIT_TOLERANCE = 1e-6
#: Step cap of one fit; a fit from the prior's mode converges in 10-30 steps.
FIT_MAX_STEPS = 200
#: Past this many observations a fit starts from the hyperparameters fitted to an even thinning of
#: ``COARSE_FIT_SIZE`` of them instead of from the priors' centres: each step costs the cube of the
#: observations, and from a start that close the full fit takes a few steps, not dozens.
COARSE_FIT_ABOVE = 400
COARSE_FIT_SIZE = 200
#: Past this many observations a fit (and the coarse fit it starts from) computes the outcomes'
#: Gaussian log density and the kernels' gradient in closed form (:class:`_GaussianLogDensity`,
#: :func:`closed_form_kernel_gradients`) rather than through GPyTorch's linear operators and
#: autograd: the same values to rounding in less time per step (``benchmarks/GP_SCALE.md``).
#: Smaller studies keep GPyTorch's own arithmetic bit for bit, and with it every suggestion (and
#: every benchmark run) they made before.
CLOSED_FORM_FIT_ABOVE = COARSE_FIT_ABOVE
#: Spread of the log-normal prior of every lengthscale (see :func:`_lengthscale_settings`).
LENGTHSCALE_PRIOR_SCALE = 0.75
#: From this many Float and Int columns, :func:`fit_objective_model` also fits the objective's GP
#: under a lengthscale prior ``WIDER_PRIOR_FACTOR`` times as spread, and keeps that fit when its
#: summed leave-one-out log density leads by ``WIDER_PRIOR_LEAD`` standard errors. Below it the
#: two priors chose alike on the benchmarks, so the second fit is not paid there.
WIDER_PRIOR_FROM_COLUMNS = 8
WIDER_PRIOR_FACTOR = 2.0
WIDER_PRIOR_LEAD = 2.0
#: Smallest noise variance (of standardized outcomes) the GP may infer. Deterministic objectives
#: fit down to it, and it limits how finely the GP tells good points apart, so it lies well below
#: Optuna's 1e-6 (``benchmarks/GP_DECISIONS.md``).
MIN_NOISE = 1e-8
#: Bounds of the Yeo-Johnson exponent of :func:`warp_to_normal` (fitted ones lie between -1.1 and
#: 4.6 on the benchmark tasks); they only guard against degenerate fits on a few distinct values.
WARP_EXPONENT_RANGE = (-3.0, 5.0)


def _log_positive(lower: float, initial: float) -> GreaterThan:
    """A ``> lower`` constraint optimized in log space: ``value = lower + exp(raw)``."""
    return GreaterThan(lower, transform=torch.exp, inv_transform=torch.log, initial_value=initial)


def _lengthscale_settings(dimension: int, spread_factor: float = 1.0) -> dict[str, object]:
    """A kernel's lengthscale prior and constraint, for ``dimension`` columns whose distance is
    Euclidean: log-normal, centred on ``sqrt(dimension)``, where the fit starts (``dimension=1``
    centres it on the width of the unit cube, as for the categorical kernel, whose distance is a
    mean over its columns), with ``spread_factor`` times the spread ``LENGTHSCALE_PRIOR_SCALE``.

    Two random points of the unit cube lie ``sqrt(d / 6)`` apart on average: with lengthscales of a
    fixed size, the prior says that every added column makes the function rougher, and the GP
    explores in many dimensions as if every point were unrelated to the others (Hvarfner et al.,
    "Vanilla Bayesian optimization performs great in high dimensions", 2024). Against lengthscales
    centred on 1 it lowered the regret on most benchmark tasks, and the three where it rose stayed
    within the noise of their seeds (``benchmarks/GP_DECISIONS.md``).
    """
    centre = math.sqrt(dimension)
    return {
        # Unvalidated, as GPyTorch's Gamma priors: the fit's values are positive by construction, and
        # the check of every value at every step of a fit costs more than the prior's density.
        "lengthscale_prior": LogNormalPrior(
            loc=math.log(centre), scale=LENGTHSCALE_PRIOR_SCALE * spread_factor, validate_args=False
        ),
        "lengthscale_constraint": _log_positive(1e-3, initial=centre),
    }


def _ordinal_kernel(dims: list[int], batch_shape: torch.Size, spread_factor: float = 1.0) -> Kernel:
    return Matern52Kernel(
        ard_num_dims=len(dims),
        active_dims=dims,
        batch_shape=batch_shape,
        **_lengthscale_settings(len(dims), spread_factor),
    )


def _categorical_kernel(dims: list[int], batch_shape: torch.Size, spread_factor: float = 1.0) -> Kernel:
    return ChoiceKernel(
        ard_num_dims=len(dims),
        active_dims=dims,
        batch_shape=batch_shape,
        **_lengthscale_settings(1, spread_factor),
    )


def _kernel(gp_space: GPSpace, batch_shape: torch.Size, spread_factor: float = 1.0) -> Kernel:
    ordinal, categorical = gp_space.ordinal_dims, gp_space.categorical_dims
    if not categorical:
        return _scaled(_ordinal_kernel(ordinal, batch_shape, spread_factor), batch_shape)
    if not ordinal:
        return _scaled(_categorical_kernel(categorical, batch_shape, spread_factor), batch_shape)
    # BoTorch's MixedSingleTaskGP structure: a sum (effects of the categories apart from the rest)
    # plus a product (the rest behaving differently per category).
    categories_alone = _scaled(_categorical_kernel(categorical, batch_shape, spread_factor), batch_shape)
    additive = _ordinal_kernel(ordinal, batch_shape, spread_factor) + categories_alone
    interaction = _ordinal_kernel(ordinal, batch_shape, spread_factor) * _categorical_kernel(
        categorical, batch_shape, spread_factor
    )
    return _scaled(additive, batch_shape) + _scaled(interaction, batch_shape)


def _scaled(kernel: Kernel, batch_shape: torch.Size) -> ScaleKernel:
    return ScaleKernel(
        kernel,
        batch_shape=batch_shape,
        outputscale_prior=GammaPrior(2.0, 1.0),
        outputscale_constraint=_log_positive(1e-4, initial=1.0),
    )


def _likelihood(batch_shape: torch.Size) -> GaussianLikelihood:
    prior = GammaPrior(1.1, 30.0)
    return GaussianLikelihood(
        batch_shape=batch_shape, noise_prior=prior, noise_constraint=_log_positive(MIN_NOISE, initial=prior.mode)
    )


#: The least known noise variance of a point (gpytorch rounds smaller fixed noise up to it, with a warning).
KNOWN_NOISE_FLOOR = 1e-6


def known_noise_likelihood(Y: Tensor, Yvar: Tensor) -> FixedNoiseGaussianLikelihood:
    """A likelihood whose noise at each point is its known variance plus one learned for all points.

    Trials evaluated several times (cross-validation folds, seeds) know the noise of their mean, the
    spread of their evaluations squared over their number; the others know none (0). The known
    variances are carried into the model's units by the local slope of :func:`model_outcomes` at each
    point (a secant between its neighbours in value), and the learned noise, with the same prior
    and floor as the plain likelihood's, covers the rest: the noise of single evaluations and
    what the GP cannot fit.
    """
    slope = _local_slope(Y[:, 0], model_outcomes(Y)[:, 0])
    prior = GammaPrior(1.1, 30.0)
    return FixedNoiseGaussianLikelihood(
        noise=(Yvar[:, 0] * slope**2).clamp_min(KNOWN_NOISE_FLOOR),
        learn_additional_noise=True,
        noise_prior=prior,
        noise_constraint=_log_positive(MIN_NOISE, initial=prior.mode),
    )


def _local_slope(y: Tensor, z: Tensor) -> Tensor:
    """``dz/dy`` at each point of the monotone map ``y -> z``, as the secant between its neighbours in ``y``."""
    order = torch.argsort(y)
    ys, zs = y[order], z[order]
    lower = torch.cat([ys[:1], ys[:-1]])
    upper = torch.cat([ys[1:], ys[-1:]])
    z_lower = torch.cat([zs[:1], zs[:-1]])
    z_upper = torch.cat([zs[1:], zs[-1:]])
    span = upper - lower
    overall = (zs[-1] - zs[0]) / (ys[-1] - ys[0]) if ys[-1] > ys[0] else torch.ones((), dtype=y.dtype)
    secant = torch.where(span > 0, (z_upper - z_lower) / torch.where(span > 0, span, 1.0), overall)
    slope = torch.empty_like(y)
    slope[order] = secant
    return slope


def build_model(
    train_X: Tensor,
    train_Y: Tensor,
    gp_space: GPSpace,
    hyperparameters: Mapping[str, Tensor] | None = None,
    train_Yvar: Tensor | None = None,
    lengthscale_spread_factor: float = 1.0,
) -> SingleTaskGP:
    """The GP on ``n x d`` inputs and ``n x m`` outcomes (larger is better), in evaluation mode.

    Several outcomes get independent GPs (batched, with hyperparameters of their own).

    Args:
        train_X: model inputs (see :class:`GPSpace`).
        train_Y: outcomes.
        gp_space: the space ``train_X`` lives in.
        hyperparameters: :func:`fit_hyperparameters` of the same space and outcomes; ``None``
            leaves the priors' centres.
        train_Yvar: ``n x 1``, the known noise variance of each outcome (0 where unknown), in the
            units of ``train_Y``: see :func:`known_noise_likelihood`. One outcome only.
        lengthscale_spread_factor: the lengthscale priors' spread, as a multiple of
            ``LENGTHSCALE_PRIOR_SCALE``; it only matters to a fit, not to the GP's predictions.
    """
    batch_shape = torch.Size([train_Y.shape[-1]]) if train_Y.shape[-1] > 1 else torch.Size()
    model = SingleTaskGP(
        train_X,
        model_outcomes(train_Y),
        likelihood=_likelihood(batch_shape) if train_Yvar is None else known_noise_likelihood(train_Y, train_Yvar),
        covar_module=_kernel(gp_space, batch_shape, lengthscale_spread_factor),
        # Standardized here rather than by BoTorch's Standardize transform, whose inverse would run
        # on every posterior of the acquisition search; the acquisition's argmax is the same.
        outcome_transform=None,
    ).to(train_X)
    if hyperparameters is not None:
        model.load_state_dict(dict(hyperparameters), strict=False)
    return model.eval()


def model_outcomes(Y: Tensor) -> Tensor:
    """The ``n x m`` outcomes (larger is better) as the GP is trained on them: outliers softened,
    warped towards normal, then standardized; each column keeps its order."""
    return standardize(warp_to_normal(soften_outliers(Y)))


def outcome_image(Y: Tensor, values: Tensor) -> Tensor:
    """``values`` (``k x m``, in the terms of the outcomes ``Y``) as :func:`model_outcomes` gives
    ``Y``, with every step fitted to ``Y`` alone (its fence, exponents, means and spreads): where a
    value stated in the objectives' units, such as a reference point, lies for the GP.
    ``outcome_image(Y, Y)`` is ``model_outcomes(Y)``, to the bit."""
    softened = soften_outliers(Y)
    warped = warp_to_normal(softened)
    return _standardized(warped, _warped(softened, _softened(Y, values)))


def soften_outliers(Y: Tensor) -> Tensor:
    """Each outcome column (larger is better) with its values below the lower Tukey fence
    (``Q1 - 1.5 IQR``) pulled in logarithmically; values above the fence are unchanged.

    Training objectives are heavy-tailed (a validation MSE of 2e-4 for good settings and 1.0 for a
    diverged run); standardized as they are, the good values would all look alike to the GP. The
    transform is monotone, so the best points stay the best. It lowered the regret against no
    transform, where pulling in everything below the median instead hurt (``benchmarks/GP_DECISIONS.md``).
    """
    return _softened(Y, Y)


def _softened(fitted: Tensor, values: Tensor) -> Tensor:
    """``values`` softened with the fence of the outcomes ``fitted``."""
    q1, q3 = torch.quantile(
        fitted, torch.tensor([0.25, 0.75], dtype=fitted.dtype, device=fitted.device), dim=0, keepdim=True
    )
    iqr = (q3 - q1).squeeze(0)
    scale = torch.where(iqr > 0, iqr, torch.ones_like(iqr))
    fence = q1.squeeze(0) - 1.5 * iqr
    gap = (fence - values).clamp_min(0.0)
    return torch.where(gap > 0, fence - scale * torch.log1p(gap / scale), values)


def warp_to_normal(Y: Tensor) -> Tensor:
    """Each outcome column standardized, then Yeo-Johnson transformed with the exponent that makes
    it most normal (maximum likelihood, kept within ``WARP_EXPONENT_RANGE``); a constant column,
    or one of fewer than 3 values, is only standardized.

    Validation losses are skewed in a way the outlier fence does not reach: a long tail of poor
    settings below a tight cluster of good ones. The GP's Gaussian likelihood then spends its
    variance on the tail, and the good cluster looks flat. The fitted exponent is above 1 for such
    data (it spreads the good values apart and compresses the tail) and near 1 for symmetric data,
    which it leaves nearly unchanged. It helps most on skewed losses and costs a little on a
    bowl-shaped function whose shape shows in the poor values the warp compresses (Levy6; the
    paired runs are in ``benchmarks/GP_DECISIONS.md``).
    """
    return _warped(Y, Y)


def _warped(fitted: Tensor, values: Tensor) -> Tensor:
    """``values`` standardized and warped as :func:`warp_to_normal` does the outcomes ``fitted``."""
    Z = standardize(fitted)
    columns = []
    for column, value in zip(Z.T, _standardized(fitted, values).T):
        if len(column) < 3 or bool(column.min() == column.max()):
            columns.append(value)
            continue
        columns.append(_yeo_johnson(value, _most_normal_exponent(column)))
    return torch.stack(columns, dim=1)


def _yeo_johnson(x: Tensor, exponent: Tensor) -> Tensor:
    """The Yeo-Johnson transform of ``x`` (``n``) for each exponent of ``exponent`` (``k x 1`` or a
    scalar); monotone increasing in ``x`` for every exponent."""
    positive, negative = torch.log1p(x.clamp_min(0.0)), torch.log1p((-x).clamp_min(0.0))
    upper = torch.where(exponent.abs() < 1e-8, positive, torch.expm1(exponent * positive) / _nonzero(exponent))
    flipped = 2.0 - exponent
    lower = torch.where(flipped.abs() < 1e-8, negative, torch.expm1(flipped * negative) / _nonzero(flipped))
    return torch.where(x >= 0, upper, -lower)


def _nonzero(value: Tensor) -> Tensor:
    return torch.where(value.abs() < 1e-8, torch.ones_like(value), value)


def _most_normal_exponent(x: Tensor) -> Tensor:
    """The Yeo-Johnson exponent maximizing the normal log-likelihood of the transformed ``x``, found
    on a grid of ``WARP_EXPONENT_RANGE`` (steps of 0.1, then 0.005 around the best): as scipy's
    ``yeojohnson_normmax`` to ~0.003, in one batched evaluation each, without an iterative solver."""
    low, high = WARP_EXPONENT_RANGE
    grid = torch.linspace(low, high, int(round((high - low) / 0.1)) + 1, dtype=x.dtype, device=x.device)
    best = _best_exponent(x, grid)
    fine = torch.linspace(-0.1, 0.1, 41, dtype=x.dtype, device=x.device) + best
    return _best_exponent(x, fine.clamp(low, high))


def _best_exponent(x: Tensor, exponents: Tensor) -> Tensor:
    warped = _yeo_johnson(x, exponents.unsqueeze(-1))  # k x n
    variance = warped.var(dim=-1, unbiased=False).clamp_min(1e-300)
    log_likelihood = -0.5 * len(x) * variance.log() + (exponents - 1.0) * (x.sign() * x.abs().log1p()).sum()
    return exponents[log_likelihood.nan_to_num(nan=-math.inf).argmax()]


def standardize(Y: Tensor) -> Tensor:
    """Each outcome column shifted and scaled to mean 0 and standard deviation 1 (a constant
    column to 0).

    Each column is first divided by the smallest power of two above its largest magnitude: the
    squares of the variance would otherwise underflow to 0 for values below about 1e-154 (a column
    that varies would look constant) and overflow above about 1e154. A power of two scales exactly,
    so the result is the same to the last bit for any column whose squares stay finite and nonzero."""
    return _standardized(Y, Y)


def _standardized(fitted: Tensor, values: Tensor) -> Tensor:
    """``values`` shifted and scaled as :func:`standardize` does the outcomes ``fitted``."""
    if not len(fitted):
        return values
    exponent = -torch.frexp(fitted.abs().amax(dim=0, keepdim=True)).exponent
    scaled = torch.ldexp(fitted, exponent)
    std = scaled.std(dim=0, keepdim=True) if len(fitted) > 1 else torch.ones_like(scaled[:1])
    return (torch.ldexp(values, exponent) - scaled.mean(dim=0, keepdim=True)) / torch.where(
        std > 0, std, torch.ones_like(std)
    )


def fit_hyperparameters(
    train_X: Tensor, train_Y: Tensor, gp_space: GPSpace, train_Yvar: Tensor | None = None
) -> dict[str, Tensor]:
    """The GP's raw hyperparameters maximizing their posterior given the data (MAP), fitted from the
    priors' centres (past ``COARSE_FIT_ABOVE`` observations, from the fit to an even thinning of
    them), so that they are a function of the data alone."""
    return hyperparameters_of(fit_model(train_X, train_Y, gp_space, train_Yvar))


def even_thinning(n: int, size: int) -> Tensor:
    """Indices (ascending) of ``size`` of ``n`` observations spread evenly in their order; all of
    them when ``n <= size``."""
    if n <= size:
        return torch.arange(n)
    return torch.linspace(0, n - 1, size).round().long()


def hyperparameters_of(model: SingleTaskGP) -> dict[str, Tensor]:
    """The raw hyperparameters of ``model``, detached copies, as :func:`build_model` takes them."""
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def fit_model(
    train_X: Tensor,
    train_Y: Tensor,
    gp_space: GPSpace,
    train_Yvar: Tensor | None = None,
    lengthscale_spread_factor: float = 1.0,
    start: Mapping[str, Tensor] | None = None,
) -> SingleTaskGP:
    """The GP of :func:`build_model` with the hyperparameters of :func:`fit_hyperparameters`, in
    evaluation mode: the same model as ``build_model`` given those hyperparameters, without
    building it twice. ``start``: raw hyperparameters to fit from instead (as
    :func:`hyperparameters_of` gives them; ``benchmarks/gp_fit_starts.py`` tries other starts)."""
    closed_form = len(train_X) > CLOSED_FORM_FIT_ABOVE
    if start is None and len(train_X) > COARSE_FIT_ABOVE:
        coarse = even_thinning(len(train_X), COARSE_FIT_SIZE).to(train_X.device)
        Yvar = None if train_Yvar is None else train_Yvar[coarse]
        # In the large fit's arithmetic, whatever its size: no study that small fits this way.
        coarse_fit = _fit(
            train_X[coarse], train_Y[coarse], gp_space, Yvar, lengthscale_spread_factor, None, closed_form
        )
        start = hyperparameters_of(coarse_fit)
    return _fit(train_X, train_Y, gp_space, train_Yvar, lengthscale_spread_factor, start, closed_form)


def _fit(
    train_X: Tensor,
    train_Y: Tensor,
    gp_space: GPSpace,
    train_Yvar: Tensor | None,
    lengthscale_spread_factor: float,
    start: Mapping[str, Tensor] | None,
    closed_form: bool,
) -> SingleTaskGP:
    """:func:`fit_model`'s one fit from ``start`` (the priors' centres for ``None``), with the log
    density and the kernels' gradient in closed form or through GPyTorch's own arithmetic."""
    model = build_model(train_X, train_Y, gp_space, start, train_Yvar, lengthscale_spread_factor)
    if closed_form:
        mll, arithmetic = _ClosedFormLogPosterior(model.likelihood, model), closed_form_kernel_gradients(model)
    else:
        mll, arithmetic = _PriorsListedOnce(model.likelihood, model), contextlib.nullcontext()
    # Several outcomes are fitted by BoTorch's batched L-BFGS-B, which spells the tolerance `factr`.
    tolerance = {"ftol": FIT_TOLERANCE} if train_Y.shape[-1] == 1 else {"factr": FIT_TOLERANCE / np.finfo(float).eps}
    # The kernel evaluated at once rather than as GPyTorch's lazy tensor, which asks every sub-kernel
    # for its batch shape at each step: the same matrix, with less bookkeeping.
    with gpytorch.settings.lazily_evaluate_kernels(False), arithmetic:
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": FIT_MAX_STEPS, **tolerance}})
    return model.eval()


def fit_objective_model(
    train_X: Tensor, train_Y: Tensor, gp_space: GPSpace, train_Yvar: Tensor | None = None
) -> SingleTaskGP:
    """:func:`fit_model`; in spaces of ``WIDER_PRIOR_FROM_COLUMNS`` Float and Int columns or more
    (one outcome), the fit under lengthscale priors ``WIDER_PRIOR_FACTOR`` times as spread instead
    where it predicts the observed outcomes clearly better.

    How rough a function to assume is a question the study's data can answer: at 10-20 columns
    and tens of trials, smooth functions call for shorter lengthscales than the default prior
    lets a fit reach, while on the step-like landscapes of tree models a fit that reaches them
    treats unexplored points as unrelated to the observed ones (``benchmarks/GP_DECISIONS.md``).
    The judge is each fit's leave-one-out prediction of the outcomes, not the marginal
    likelihood, which the less constrained fit tends to raise whether or not it predicts better;
    and the wider fit must lead by ``WIDER_PRIOR_LEAD`` standard errors of the summed difference
    (the spread of the per-point differences, as Vehtari, Gelman and Gabry 2017 compare models by
    leave-one-out), so that a lead a few outcomes make is not taken.
    """
    model = fit_model(train_X, train_Y, gp_space, train_Yvar)
    if len(gp_space.ordinal_dims) < WIDER_PRIOR_FROM_COLUMNS or train_Y.shape[-1] > 1:
        return model
    wider = fit_model(train_X, train_Y, gp_space, train_Yvar, WIDER_PRIOR_FACTOR)
    return wider if predicts_clearly_better(wider, model, WIDER_PRIOR_LEAD) else model


def predicts_clearly_better(model: SingleTaskGP, other: SingleTaskGP, standard_errors: float) -> bool:
    """Whether ``model``'s summed leave-one-out log density of the outcomes both GPs were trained on
    exceeds ``other``'s by more than ``standard_errors`` standard errors of the difference."""
    return leads_clearly(leave_one_out_log_densities(model) - leave_one_out_log_densities(other), standard_errors)


def leads_clearly(difference: Tensor, standard_errors: float) -> bool:
    """Whether per-point log density differences sum to more than ``standard_errors`` standard
    errors of their sum (never where one is not finite)."""
    if not torch.isfinite(difference).all():
        return False
    standard_error = float(difference.std() * len(difference) ** 0.5) if len(difference) > 1 else 0.0
    return float(difference.sum()) > standard_errors * standard_error


def leave_one_out_log_densities(model: SingleTaskGP) -> Tensor:
    """``n``: the log density (up to the constant ``-log(2 pi) / 2``) of each training outcome of a
    one-outcome GP, predicted with the noise by the GP conditioned on the others with the same
    hyperparameters; in closed form from the inverse covariance (Rasmussen and Williams 2006,
    section 5.4.2). NaN where the covariance has no Cholesky factor."""
    X, y = model.train_inputs[0], model.train_targets
    with torch.no_grad():
        noise = model.likelihood.noise.reshape(-1).expand(len(y))
        covariance = model.covar_module(X).to_dense() + torch.diag_embed(noise)
        factor, info = torch.linalg.cholesky_ex(covariance)
        if info.item() != 0:
            return torch.full_like(y, math.nan)
        precision = torch.cholesky_inverse(factor)
        alpha = precision @ (y - model.mean_module(X))
        variance = 1.0 / torch.diagonal(precision)
        residual = alpha * variance
        return -0.5 * torch.log(variance) - 0.5 * residual**2 / variance


class _PriorsListedOnce(ExactMarginalLogLikelihood):
    """GPyTorch's exact marginal log likelihood, with the priors of the model found once.

    GPyTorch walks the whole module tree for its priors (and added loss terms, of which this
    module's models have none) at every evaluation: for the mixed kernel, a good part of a fit
    step on a small history. The terms are the same, added in the same order.
    """

    def __init__(self, likelihood: GaussianLikelihood, model: SingleTaskGP) -> None:
        super().__init__(likelihood, model)
        added = [name for name, _ in model.named_added_loss_terms()]
        if added:
            raise ValueError(
                f"_PriorsListedOnce adds only priors, but the model has added loss terms {added}: fit it with "
                f"GPyTorch's ExactMarginalLogLikelihood."
            )
        self._priors = [(prior, closure, module) for _, module, prior, closure, _ in model.named_priors()]

    def _add_other_terms(self, res: Tensor, params: tuple[object, ...]) -> Tensor:
        for prior, closure, module in self._priors:
            term = prior.log_prob(closure(module))
            res.add_(term.view(*term.shape[: res.ndim], -1).sum(dim=-1))
        return res


class _ClosedFormLogPosterior(_PriorsListedOnce):
    """:class:`_PriorsListedOnce` with the outcomes' Gaussian log density computed by
    :class:`_GaussianLogDensity` from the dense covariance: the same log posterior to rounding.

    GPyTorch's Cholesky path through its linear operators does more cubic work per evaluation with
    its gradient (several triangular solves and products of the full matrix). A fit pairs it with
    the kernels' own closed-form gradient (:func:`closed_form_kernel_gradients`).
    """

    def forward(
        self, function_dist: gpytorch.distributions.MultivariateNormal, target: Tensor, *params: object
    ) -> Tensor:
        output = self.likelihood(function_dist, *params)
        res = _GaussianLogDensity.apply(output.lazy_covariance_matrix.to_dense(), target - output.mean)
        res = self._add_other_terms(res, params)
        return res.div_(function_dist.event_shape.numel())


class _GaussianLogDensity(torch.autograd.Function):
    """``log N(r; 0, K)`` of residuals ``r`` (``... x n``) under covariances ``K`` (``... x n x n``),
    with its gradient in closed form: ``dK = (a a^T - K^-1) / 2`` and ``dr = -a`` for ``a = K^-1 r``
    (Rasmussen and Williams 2006, eq. 5.9), from one Cholesky factor and its inverse. The factor is
    GPyTorch's (jitter added on the diagonal as it adds it, when the matrix is not numerically
    positive definite), so a fit behaves as on its path."""

    @staticmethod
    def forward(ctx: Any, covariance: Tensor, residual: Tensor) -> Tensor:
        factor = psd_safe_cholesky(covariance)
        solved = torch.cholesky_solve(residual.unsqueeze(-1), factor)
        ctx.save_for_backward(factor, solved)
        quadratic = (residual.unsqueeze(-1) * solved).sum(dim=(-2, -1))
        log_determinant = 2.0 * torch.diagonal(factor, dim1=-2, dim2=-1).log().sum(dim=-1)
        return -0.5 * (quadratic + log_determinant + residual.shape[-1] * math.log(2.0 * math.pi))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        factor, solved = ctx.saved_tensors
        covariance_grad = 0.5 * (solved @ solved.transpose(-1, -2) - torch.cholesky_inverse(factor))
        return grad[..., None, None] * covariance_grad, -grad[..., None] * solved.squeeze(-1)


def lengthscales(model: SingleTaskGP, gp_space: GPSpace) -> Tensor:
    """``d``: the shortest lengthscale of each Float and Int column (over the kernel's Matern terms
    and the outcomes), 1 elsewhere."""
    scales = torch.ones(gp_space.dim, dtype=model.train_inputs[0].dtype, device=model.train_inputs[0].device)
    fitted = [
        module.lengthscale.detach().reshape(-1, len(gp_space.ordinal_dims))
        for module in model.covar_module.modules()
        if isinstance(module, MaternKernel)
    ]
    if fitted:
        scales[gp_space.ordinal_dims] = torch.cat(fitted).min(dim=0).values
    return scales
