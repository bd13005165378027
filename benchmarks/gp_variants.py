"""A GPSampler setting against today's default on the tasks where it changes anything: paired runs.

A screen before the whole suite: each (task, seed) runs once with the default GPSampler and once
with the variant, through the suite's own runner (``Study(storage=":memory:")`` ask/tell), and the
noiseless value of the best-observed trial (the suite's incumbent) after each of ``--report-at``
trials is compared by seed. A task's differences are put on one scale by its spread (the median of
the values at the first report minus the best value of any run), so that a paired Wilcoxon test
can pool tasks; wins and losses count the seeds where the variant's value is lower or higher.
``--design`` names the tasks the variant was made for: they are reported apart, since only the
others can show that it generalizes.

    nice -n 10 python benchmarks/gp_variants.py --variant startup10 --seeds 5 \\
        --design sk_enet_diabetes,sk_lassopoly_diabetes,sk_logreg_wine
    python benchmarks/gp_variants.py --variant startup10 --tasks branin --seeds 1 --budget 12 --report-at 6,12

A variant that comes out ahead is run again on new seeds (``--first-seed 10``) before anything
else: a screen tests three budgets, and many screens have been run. Results are cached per run in
``--out`` (a JSON file), so an interrupted screen resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# One thread per library, as the suite's runs (`python -m benchmarks --threads 1`), set before numpy,
# torch and scikit-learn load: two screens side by side on two cores, each with OpenMP threads of
# its own, took minutes for a run of scikit-learn's boosting that takes seconds alone.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from gpytorch.kernels import Kernel  # noqa: E402
from gpytorch.priors import LogNormalPrior  # noqa: E402

from benchmarks.gp_fit_starts import lengthscales_scaled, log_posterior  # noqa: E402
from benchmarks.methods import _lightning_hpo_runner  # noqa: E402
from benchmarks.regret import incumbent_values  # noqa: E402
from benchmarks.tasks import BROAD_TASKS, TASK_BUILDERS, Task  # noqa: E402
from lightning_hpo import SearchSpace  # noqa: E402
from lightning_hpo.samplers import GPSampler, _gp_acquisition, _gp_model, gp  # noqa: E402
from lightning_hpo.samplers.gp import default_n_startup_trials  # noqa: E402

HERE = Path(__file__).resolve().parent
# The defaults the variants below wrap or stand in for, before any patch.
_noisy_log_improvement_acquisition = gp._acquisition
_default_kernel = _gp_model._kernel
_default_lengthscale_settings = _gp_model._lengthscale_settings
_default_maximize = _gp_acquisition.maximize
_default_ordinal_kernel = _gp_model._ordinal_kernel
_default_fit_model = _gp_model.fit_model
_default_build_model = _gp_model.build_model
_default_fit_objective_model = _gp_model.fit_objective_model
_default_warp_to_normal = _gp_model.warp_to_normal


def with_margin(seed: int, margin: float) -> GPSampler:
    """Our GP whose improvement counts beyond ``margin`` standard deviations of its outcomes."""
    sampler = GPSampler(seed=seed)
    sampler._improvement_margin = margin
    return sampler


def with_hyperparameter_draws(seed: int, draws: int) -> GPSampler:
    """Our GP whose acquisition is averaged over ``draws`` more hyperparameter sets (``_gp_marginal``)."""
    sampler = GPSampler(seed=seed)
    sampler._hyperparameter_draws = draws
    return sampler


class OtherOutcomes(GPSampler):
    """Our GP with one step of the outcomes' transform (``model_outcomes`` or ``warp_to_normal`` of
    ``_gp_model``) replaced by ``transform``."""

    def __init__(self, *args: Any, step: str, transform: Callable[[torch.Tensor], torch.Tensor], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step, self.transform = step, transform

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        with mock.patch.object(_gp_model, self.step, self.transform):
            return super().sample(*args, **kwargs)


class AlternatingOutcomes(GPSampler):
    """Our GP whose outcomes are only standardized on odd trial numbers (Optuna's GP's view: the
    ``plainoutcomes`` variant) and softened and warped as today on even ones: two models taking
    turns. Standardized alone, a few very poor values set the scale and the GP is indifferent among
    the good ones, which explores (it finds ``sk_lassopoly_diabetes``'s degree-2 valley) and blurs
    the small differences that fine steps along a floor need; taking turns keeps half of each. Each
    model keeps its own cached fit, so neither reuses hyperparameters fitted to the other's outcomes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fits: dict[bool, Any] = {False: None, True: None}

    def sample(self, space: Any, trials: Any, *, number: int, directions: Any) -> Any:
        plain = number % 2 == 1
        self._last_fit = self._fits[plain]
        outcomes = _gp_model.standardize if plain else _gp_model.model_outcomes
        try:
            with mock.patch.object(_gp_model, "model_outcomes", outcomes):
                return super().sample(space, trials, number=number, directions=directions)
        finally:
            self._fits[plain] = self._last_fit


def gaussian_copula(Y: torch.Tensor) -> torch.Tensor:
    """Each outcome column replaced by the normal quantiles of its ranks, ``Phi^-1((rank - 1/2) / n)``
    (ties share their mean rank), then standardized: only the order of the outcomes is kept."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    ranks = rankdata(Y.detach().cpu().numpy(), axis=0)
    return _gp_model.standardize(torch.as_tensor(ndtri((ranks - 0.5) / len(Y)), dtype=Y.dtype, device=Y.device))


#: Observations nearer than this (root mean square over the columns; a categorical column counts 1
#: where the choices differ) count as one in :func:`decluster_weights`.
DECLUSTER_BANDWIDTH = 0.1


def decluster_weights(X: torch.Tensor, gp_space: Any, bandwidth: float = DECLUSTER_BANDWIDTH) -> torch.Tensor:
    """``n`` weights summing to ``n``, each the inverse of how many observations lie near it (a
    Gaussian kernel density on the model inputs): a cluster of ``k`` near-copies weighs about as much
    as one lone observation, as a geostatistician declusters preferentially drawn samples before a
    normal-score transform."""
    ordinal = X[:, gp_space.ordinal_dims]
    squared = torch.cdist(ordinal, ordinal).square()
    for column in gp_space.categorical_dims:
        squared = squared + (X[:, column, None] != X[None, :, column]).to(X)
    density = torch.exp(-squared / max(X.shape[1], 1) / (2 * bandwidth**2)).sum(dim=1)
    return len(X) / density / (1 / density).sum()


def _weighted_quantile(y: torch.Tensor, weights: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile``'s linear interpolation, each value spanning its weight (equal weights give
    ``torch.quantile`` itself)."""
    order = torch.argsort(y)
    w = weights[order]
    positions = (torch.cumsum(w, 0) - w) / (w.sum() - w[-1])
    return torch.as_tensor(np.interp(q, positions.cpu().numpy(), y[order].cpu().numpy()))


def _weighted_most_normal_exponent(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``_gp_model._most_normal_exponent`` with each value's log-likelihood weighted."""

    def best(exponents: torch.Tensor) -> torch.Tensor:
        warped = _gp_model._yeo_johnson(x, exponents.unsqueeze(-1))
        mean = (warped * weights).sum(-1, keepdim=True) / weights.sum()
        variance = ((warped - mean).square() * weights).sum(-1) / weights.sum()
        jacobian = (weights * x.sign() * x.abs().log1p()).sum()
        log_likelihood = -0.5 * weights.sum() * variance.clamp_min(1e-300).log() + (exponents - 1.0) * jacobian
        return exponents[log_likelihood.nan_to_num(nan=-math.inf).argmax()]

    low, high = _gp_model.WARP_EXPONENT_RANGE
    coarse = best(torch.linspace(low, high, int(round((high - low) / 0.1)) + 1, dtype=x.dtype))
    return best((torch.linspace(-0.1, 0.1, 41, dtype=x.dtype) + coarse).clamp(low, high))


def declustered_outcomes(Y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``_gp_model.model_outcomes`` with the outlier fence's quartiles, the warp's standardization
    and its exponent taken from the declustered outcomes (``weights``), so that the trials a study
    spent near one optimum do not make the rest of the space look uniformly poor."""
    columns = []
    for y in Y.T:
        q1, q3 = (_weighted_quantile(y, weights, q).to(y) for q in (0.25, 0.75))
        scale = q3 - q1 if q3 > q1 else torch.ones_like(q1)
        fence = q1 - 1.5 * (q3 - q1)
        gap = (fence - y).clamp_min(0.0)
        y = torch.where(gap > 0, fence - scale * torch.log1p(gap / scale), y)
        mean = (weights * y).sum() / weights.sum()
        std = ((weights * (y - mean).square()).sum() / (weights.sum() - 1)).sqrt()  # n - 1, as standardize
        z = (y - mean) / std if std > 0 else y - mean
        if len(z) >= 3 and bool(z.min() < z.max()):
            z = _gp_model._yeo_johnson(z, _weighted_most_normal_exponent(z, weights))
        columns.append(z)
    return _gp_model.standardize(torch.stack(columns, dim=1))


def _declustered_build_model(train_X: Any, train_Y: Any, gp_space: Any, *args: Any, **kwargs: Any) -> Any:
    weights = decluster_weights(train_X, gp_space)
    with mock.patch.object(_gp_model, "model_outcomes", lambda Y: declustered_outcomes(Y, weights)):
        return _default_build_model(train_X, train_Y, gp_space, *args, **kwargs)


class Declustered(GPSampler):
    """Our GP with the outcomes' transforms fitted to declustered outcomes (:func:`declustered_outcomes`)."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        with mock.patch.object(_gp_model, "build_model", _declustered_build_model):
            return super().sample(*args, **kwargs)


def warp_log_jacobian(Y: torch.Tensor) -> torch.Tensor:
    """``n``: for one outcome column, the log derivative of the GP's outcomes with the warp
    (``model_outcomes``) minus that without it (softened and standardized only), at each observed
    value: ``(lambda - 1) sign(u) log(1 + |u|) - log s``, with ``u`` the standardized softened
    value, ``lambda`` the warp's exponent and ``s`` the spread of the warped values. Added to the
    warped GP's leave-one-out log densities, it puts them in the same units as the unwarped GP's."""
    u = _gp_model.standardize(_gp_model.soften_outliers(Y))[:, 0]
    if len(u) < 3 or bool(u.min() == u.max()):
        return torch.zeros_like(u)
    exponent = _gp_model._most_normal_exponent(u)
    spread = _gp_model._yeo_johnson(u, exponent).std()
    return (exponent - 1.0) * u.sign() * u.abs().log1p() - spread.log()


class WarpByPrediction(GPSampler):
    """Our GP fitted with and without the outcome warp at each fit, keeping the warp unless the GP
    without it predicts the observed values clearly better by leave-one-out (``WIDER_PRIOR_LEAD``
    standard errors, each density in the units of the softened values): the exponent then answers
    to the function, not to where the sampler crowded its trials. One outcome; the choice holds
    until the next fit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warped = True

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        warp = lambda Y: _default_warp_to_normal(Y) if self.warped else Y  # noqa: E731
        with (
            mock.patch.object(_gp_model, "warp_to_normal", warp),
            mock.patch.object(_gp_model, "fit_objective_model", self._fit),
        ):
            return super().sample(*args, **kwargs)

    def _fit(self, train_X: Any, train_Y: Any, gp_space: Any, train_Yvar: Any = None) -> Any:
        self.warped = True
        warped = _default_fit_objective_model(train_X, train_Y, gp_space, train_Yvar)
        if train_Y.shape[-1] > 1:
            return warped
        self.warped = False
        plain = _default_fit_objective_model(train_X, train_Y, gp_space, train_Yvar)
        difference = _gp_model.leave_one_out_log_densities(plain) - (
            _gp_model.leave_one_out_log_densities(warped) + warp_log_jacobian(train_Y)
        )
        lead = _gp_model.leads_clearly(difference, _gp_model.WIDER_PRIOR_LEAD)
        self.warped = not lead
        return plain if lead else warped


class WarpExponentRange(GPSampler):
    """Our GP with the outcome warp's exponent kept within ``(low, high)`` instead of
    ``_gp_model.WARP_EXPONENT_RANGE``."""

    def __init__(self, *args: Any, low: float, high: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exponent_range = (low, high)

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        with mock.patch.object(_gp_model, "WARP_EXPONENT_RANGE", self.exponent_range):
            return super().sample(*args, **kwargs)


class AnalyticLogEI(GPSampler):
    """Our GP with Optuna's GP's acquisition: the analytic log expected improvement over the best
    observed outcome (no incumbent uncertainty) in place of qLogNEI. Single objective."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        with mock.patch.object(gp, "_acquisition", _log_ei_acquisition):
            return super().sample(*args, **kwargs)


def _log_ei_acquisition(model: Any, X: Any, Y: Any, X_pending: Any, **kwargs: Any) -> Any:
    from botorch.acquisition.analytic import LogExpectedImprovement

    acquisition, incumbents = _noisy_log_improvement_acquisition(model, X, Y, X_pending, **kwargs)
    if acquisition is None or Y.shape[-1] != 1:
        return acquisition, incumbents
    return LogExpectedImprovement(model, best_f=model.train_targets.max()), incumbents


class AcquisitionPortfolio(GPSampler):
    """Our GP whose acquisition is, per trial, one of ``choices`` of HEBO's three (MACE: "ei" our
    qLogNEI, "ucb" a confidence bound with HEBO's growing kappa, "pi"), drawn at random from the
    trial's seed: HEBO draws its suggestion from the front of the three, whose ends these are.
    Single objective, no pending trials (the analytic PI and bound ignore them), as in the screen."""

    def __init__(self, *args: Any, choices: Sequence[str] = ("ei", "ucb", "pi"), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = tuple(choices)

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        def acquisition(*a: Any, **k: Any) -> Any:
            return _portfolio_acquisition(*a, choices=self.choices, **k)

        with mock.patch.object(gp, "_acquisition", acquisition):
            return super().sample(*args, **kwargs)


def _portfolio_acquisition(
    model: Any, X: Any, Y: Any, X_pending: Any, *, seed: int, choices: Sequence[str], **kwargs: Any
) -> Any:
    import random

    from botorch.acquisition.analytic import LogProbabilityOfImprovement

    acquisition, incumbents = _noisy_log_improvement_acquisition(model, X, Y, X_pending, seed=seed, **kwargs)
    choice = random.Random(seed).choice(choices)
    if acquisition is None or Y.shape[-1] != 1 or choice == "ei":
        return acquisition, incumbents
    if choice == "ucb":
        return hebo_confidence_bound(model, X), incumbents
    # PI over the posterior mean at the incumbent, by HEBO's 1e-4 (in standardized outcomes).
    best = model.posterior(incumbents[:1]).mean.squeeze() + 1e-4
    return LogProbabilityOfImprovement(model, best_f=best), incumbents


def hebo_confidence_bound(model: Any, X: Any) -> Any:
    """The upper confidence bound with HEBO's kappa, which grows with the observations ``X``."""
    import math

    from botorch.acquisition.analytic import UpperConfidenceBound

    # hebo/optimizers/hebo.py: upsilon 0.5, delta 0.01; t the observations.
    n, d = X.shape
    kappa_squared = (2.0 + d / 2.0) * math.log(max(n, 1)) + math.log(math.pi**2 / 0.01)
    return UpperConfidenceBound(model, beta=kappa_squared)


def stalled(values: Any, window: int, tolerance: float) -> bool:
    """Whether the last ``window`` of ``values`` (larger is better, in trial order) raised the best
    by at most ``tolerance`` of the spread between the best and the median value."""
    if len(values) <= window:
        return False
    best = values.max()
    gain = best - values[:-window].max()
    return bool(gain <= tolerance * (best - values.median()))


class StallExploration(GPSampler):
    """Our GP that explores once its steps stop paying: when the last ``window`` GP trials raised
    the best value by at most ``tolerance`` of the spread between the best and the median
    observation, every other trial (even numbers) maximizes HEBO's confidence bound in place of
    qLogNEI. A run is scored by its best trial, so an exploring trial costs only the step it
    displaces, worth little on a stall; the valley tasks lose by staying on one floor
    (GP_DECISIONS.md), and exploring at fixed turns (the portfolio) cost where steps still paid."""

    def __init__(self, *args: Any, window: int = 4, tolerance: float = 0.01, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window, self.tolerance = window, tolerance

    def sample(self, space: Any, trials: Any, *, number: int, directions: Any) -> Any:
        n_startup = self.n_startup_trials or default_n_startup_trials(len(SearchSpace.coerce(space)))

        def acquisition(model: Any, X: Any, Y: Any, X_pending: Any, **kwargs: Any) -> Any:
            default, incumbents = _noisy_log_improvement_acquisition(model, X, Y, X_pending, **kwargs)
            explore = (
                number % 2 == 0
                and default is not None
                and Y.shape[-1] == 1
                and len(Y) - n_startup >= self.window
                and stalled(Y[:, 0], self.window, self.tolerance)
            )
            return (hebo_confidence_bound(model, X) if explore else default), incumbents

        with mock.patch.object(gp, "_acquisition", acquisition):
            return super().sample(space, trials, number=number, directions=directions)


def pareto_front(mean: Any, std: Any) -> Any:
    """Indices of the points that no other point beats on both ``mean`` and ``std`` (larger is better)."""
    dominated = ((mean.unsqueeze(0) >= mean.unsqueeze(1)) & (std.unsqueeze(0) >= std.unsqueeze(1))) & (
        (mean.unsqueeze(0) > mean.unsqueeze(1)) | (std.unsqueeze(0) > std.unsqueeze(1))
    )
    return (~dominated.any(dim=1)).nonzero().squeeze(-1)


class EpsilonParetoFront(GPSampler):
    """Our GP that, on a share ``epsilon`` of its trials (drawn from the trial's number and the
    seed), suggests a point drawn at random from the Pareto front of the posterior mean and
    standard deviation over a pool of points, in place of qLogNEI's argmax: De Ath et al., "Greed
    is good: exploration and exploitation trade-offs in Bayesian optimisation" (2021), whose eps-PF
    with eps = 0.1 did well across their problems. The front runs from the exploiting end (the
    highest mean) to the most uncertain point, so its random points explore by varying degrees.
    The pool: every point of a small discrete space, else 1024 Sobol points and perturbations of
    the incumbents (as the acquisition search's starts). Single objective."""

    def __init__(self, *args: Any, epsilon: float = 0.1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epsilon = epsilon

    def sample(self, space: Any, trials: Any, *, number: int, directions: Any) -> Any:
        import random

        if random.Random(f"{self.seed}:{number}").random() >= self.epsilon or len(directions) != 1:
            return super().sample(space, trials, number=number, directions=directions)
        models = []

        def acquisition(model: Any, *args: Any, **kwargs: Any) -> Any:
            models.append(model)
            return _noisy_log_improvement_acquisition(model, *args, **kwargs)

        def on_the_front(_acquisition: Any, gp_space: Any, *, incumbents: Any, generator: Any, **_: Any) -> Any:
            from torch.quasirandom import SobolEngine

            if gp_space.n_discrete_points <= _gp_acquisition.OptimizerBudget().exhaustive:
                pool = gp_space.all_points(device=incumbents.device, dtype=incumbents.dtype)
            else:
                sobol_seed = int(torch.randint(2**62, (1,), generator=generator))
                sobol = SobolEngine(gp_space.dim, scramble=True, seed=sobol_seed).draw(1024, dtype=incumbents.dtype)
                pool = torch.cat(
                    [gp_space.from_unit(sobol), gp_space.perturb(incumbents, 64, scale=0.1, generator=generator)]
                )
            with torch.no_grad():
                posterior = models[-1].posterior(pool)
            front = pareto_front(posterior.mean.squeeze(-1), posterior.variance.squeeze(-1).sqrt())
            return pool[front[int(torch.randint(len(front), (1,), generator=generator))]]

        with (
            mock.patch.object(gp, "_acquisition", acquisition),
            mock.patch.object(_gp_acquisition, "maximize", on_the_front),
        ):
            return super().sample(space, trials, number=number, directions=directions)


class ExcludingPoints(torch.nn.Module):
    """``acquisition`` at ``b x q x d`` points, ``-inf`` where a point is a configuration of ``points``
    (``_gp_acquisition.is_one_of``, the sampler's own test of a repeat)."""

    def __init__(self, acquisition: Any, gp_space: Any, points: Any) -> None:
        super().__init__()
        self.acquisition, self.gp_space, self.points = acquisition, gp_space, points
        self.model = getattr(acquisition, "model", None)

    def forward(self, X: Any) -> Any:
        values = self.acquisition(X)
        seen = _gp_acquisition.is_one_of(self.gp_space, X.reshape(-1, X.shape[-1]), self.points)
        return torch.where(seen.view(X.shape[:-1]).any(dim=-1), torch.full_like(values, -torch.inf), values)


class UnseenSearch(GPSampler):
    """Our GP whose acquisition is ``-inf`` at every observed and pending point throughout the
    search: no repeats, and no local search starts from an observed point (the incumbents enter
    only through their perturbations). The first form of the rule against repeats, measured as such."""

    def sample(self, space: Any, trials: Any, *, number: int, directions: Any) -> Any:
        from lightning_hpo.samplers._gp_space import GPSpace

        gp_space = GPSpace(SearchSpace.coerce(space))

        def acquisition(model: Any, X: Any, Y: Any, X_pending: Any, **kwargs: Any) -> Any:
            default, incumbents = _noisy_log_improvement_acquisition(model, X, Y, X_pending, **kwargs)
            if default is None:
                return default, incumbents
            seen = X if X_pending is None else torch.cat([X, X_pending])
            return ExcludingPoints(default, gp_space, seen), incumbents

        with mock.patch.object(gp, "_acquisition", acquisition):
            return super().sample(space, trials, number=number, directions=directions)


def with_repeats(seed: int) -> GPSampler:
    """Our GP as it was before 2026-12-05: its suggestion may repeat an observed or pending point."""
    sampler = GPSampler(seed=seed)
    sampler._allow_repeats = True
    return sampler


class ProductKernel(GPSampler):
    """Our GP whose kernel on a mixed space is the product of the Float/Int columns' Matern kernel
    and the categorical kernel alone (as Optuna's GP, one kernel over both), without the sum's
    terms that carry an effect across categories."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        with mock.patch.object(_gp_model, "_kernel", _product_kernel):
            return super().sample(*args, **kwargs)


def _product_kernel(gp_space: Any, batch_shape: Any, spread_factor: float = 1.0) -> Any:
    ordinal, categorical = gp_space.ordinal_dims, gp_space.categorical_dims
    if not (ordinal and categorical):
        return _default_kernel(gp_space, batch_shape, spread_factor)
    product = _gp_model._ordinal_kernel(ordinal, batch_shape, spread_factor) * _gp_model._categorical_kernel(
        categorical, batch_shape, spread_factor
    )
    return _gp_model._scaled(product, batch_shape)


def _gp_space(task: Task) -> Any:
    from lightning_hpo.samplers._gp_space import GPSpace
    from lightning_hpo.space import SearchSpace

    return GPSpace(SearchSpace.coerce(task.space))


def _mixed(task: Task) -> bool:
    gp_space = _gp_space(task)
    return bool(gp_space.ordinal_dims and gp_space.categorical_dims)


class ScaledLengthscalePrior(GPSampler):
    """Our GP with its lengthscale prior (and the fit's start) centred ``factor`` times further out
    (a smoother function a priori: > 1) or closer in (a rougher one: < 1), every kernel alike."""

    def __init__(self, *args: Any, factor: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.factor = factor

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        def settings(dimension: int, spread_factor: float = 1.0) -> dict[str, object]:
            # The centre is sqrt(dimension).
            return _default_lengthscale_settings(dimension * self.factor**2, spread_factor)

        with mock.patch.object(_gp_model, "_lengthscale_settings", settings):
            return super().sample(*args, **kwargs)


class WiderLengthscalePrior(GPSampler):
    """Our GP with the log-normal lengthscale prior ``factor`` times as wide, its centre unchanged,
    in kernels of ``from_dimension`` columns or more: the data, not the prior, decide more of how
    rough the function is."""

    def __init__(self, *args: Any, factor: float, from_dimension: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.factor, self.from_dimension = factor, from_dimension

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        def settings(dimension: int, spread_factor: float = 1.0) -> dict[str, object]:
            widened = dimension >= self.from_dimension
            return _default_lengthscale_settings(dimension, spread_factor * (self.factor if widened else 1.0))

        with mock.patch.object(_gp_model, "_lengthscale_settings", settings):
            return super().sample(*args, **kwargs)


class PriorSpreadByPrediction(GPSampler):
    """Our GP fitted twice at each refit in every space, under the default lengthscale prior and one
    ``factor`` times as spread, keeping the wider fit where its leave-one-out predictions of the
    observed outcomes are the more likely by ``min_standard_errors`` standard errors
    (``_gp_model.predicts_clearly_better``). The sampler does this with a factor of 2 and 2
    standard errors from ``WIDER_PRIOR_FROM_COLUMNS`` columns; these variants were measured
    before it did, against a default GP that never did."""

    def __init__(self, *args: Any, factor: float, min_standard_errors: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.factor, self.min_standard_errors = factor, min_standard_errors

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        def fit_both(X: Any, Y: Any, gp_space: Any, Yvar: Any = None) -> Any:
            narrow = _default_fit_model(X, Y, gp_space, Yvar)
            wide = _default_fit_model(X, Y, gp_space, Yvar, self.factor)
            return wide if _gp_model.predicts_clearly_better(wide, narrow, self.min_standard_errors) else narrow

        with mock.patch.object(_gp_model, "fit_objective_model", fit_both):
            return super().sample(*args, **kwargs)


class MultiStartFit(GPSampler):
    """Our GP whose every fit of one outcome also starts from lengthscales ``factors`` times the
    priors' centres, keeping the fit of the highest log posterior (``gp_fit_starts.py`` found
    better optima from other starts in a fifth of the fits in 10-20 columns, a few in smaller spaces)."""

    def __init__(self, *args: Any, factors: Sequence[float] = (0.2, 5.0), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.factors = tuple(factors)

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        def fit_best(X: Any, Y: Any, gp_space: Any, Yvar: Any = None, spread: float = 1.0, start: Any = None) -> Any:
            fit = _default_fit_model(X, Y, gp_space, Yvar, spread, start)
            if start is not None or Y.shape[-1] > 1 or len(X) > _gp_model.COARSE_FIT_ABOVE:
                return fit  # a given start, several outcomes, or one start from the (multi-start) coarse fit
            others = [
                _default_fit_model(X, Y, gp_space, Yvar, spread, lengthscales_scaled(X, Y, gp_space, factor))
                for factor in self.factors
            ]
            return max([fit, *others], key=log_posterior)

        with mock.patch.object(_gp_model, "fit_model", fit_best):
            return super().sample(*args, **kwargs)


class LargerSearch(GPSampler):
    """Our GP whose acquisition search scores ``global_factor`` times the Sobol points and runs
    ``local_factor`` times the starts and rounds of local search (the default search was sized on
    spaces of 2-6 columns)."""

    def __init__(self, *args: Any, global_factor: int, local_factor: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.global_factor, self.local_factor = global_factor, local_factor

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        default = _gp_acquisition.OptimizerBudget()
        budget = dataclasses.replace(
            default,
            raw_samples=default.raw_samples * self.global_factor,
            restarts=default.restarts * self.local_factor,
            rounds=default.rounds * self.local_factor,
        )

        def larger(*call_args: Any, **call_kwargs: Any) -> Any:
            return _default_maximize(*call_args, **call_kwargs, budget=budget)

        with mock.patch.object(_gp_acquisition, "maximize", larger):
            return super().sample(*args, **kwargs)


class _KumaraswamyWarped(Kernel):
    """``kernel`` on inputs whose Float and Int columns first pass through a Kumaraswamy CDF,
    ``1 - (1 - x^a)^b``, ``a`` and ``b`` fitted per column under log-normal priors centred on the
    identity (Snoek et al. 2014; BoTorch's ``Warp``, HEBO's). A kernel rather than an input
    transform, so that the cached acquisition (``_gp_nei``), which evaluates the kernel, sees it too;
    as measured on the broad suite in commit 589e41d."""

    def __init__(self, kernel: Kernel, columns: list[int], batch_shape: torch.Size) -> None:
        super().__init__(batch_shape=batch_shape)
        self.base_kernel = kernel
        self.columns = columns
        shape = (*batch_shape, 1, len(columns))
        for name in ("concentration1", "concentration0"):
            self.register_parameter(f"raw_{name}", torch.nn.Parameter(torch.zeros(shape)))
            self.register_constraint(f"raw_{name}", _gp_model._log_positive(1e-2, initial=1.0))
            self.register_prior(
                f"{name}_prior",
                LogNormalPrior(0.0, 0.75**0.5, validate_args=False),
                lambda module, name=name: module.concentration(name),
            )

    def concentration(self, name: str) -> torch.Tensor:
        return getattr(self, f"raw_{name}_constraint").transform(getattr(self, f"raw_{name}"))

    def _warp(self, X: torch.Tensor) -> torch.Tensor:
        columns = X[..., self.columns].clamp(1e-7, 1.0 - 1e-7)  # where the CDF's derivative is finite
        a, b = self.concentration("concentration1"), self.concentration("concentration0")
        warped = 1.0 - (1.0 - columns.pow(a)).clamp_min(0.0).pow(b)
        return X.index_copy(-1, torch.tensor(self.columns, device=X.device), warped)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params: Any) -> torch.Tensor:
        output = self.base_kernel(self._warp(x1), self._warp(x2), diag=diag, **params)
        return output if diag else output.to_dense()


class InputWarping(GPSampler):
    """Our GP with its Float and Int columns warped by a fitted Kumaraswamy CDF (HEBO's input warping)."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        def warped(gp_space: Any, batch_shape: torch.Size, spread_factor: float = 1.0) -> Kernel:
            kernel = _default_kernel(gp_space, batch_shape, spread_factor)
            return _KumaraswamyWarped(kernel, gp_space.ordinal_dims, batch_shape) if gp_space.ordinal_dims else kernel

        with mock.patch.object(_gp_model, "_kernel", warped):
            return super().sample(*args, **kwargs)


class Matern32(GPSampler):
    """Our GP with a Matern 3/2 kernel on Float and Int columns (HEBO's) in place of 5/2: rougher
    functions a priori."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        def rougher(dims: list[int], batch_shape: torch.Size, spread_factor: float = 1.0) -> Kernel:
            kernel = _default_ordinal_kernel(dims, batch_shape, spread_factor)
            kernel.nu = 1.5
            return kernel

        with mock.patch.object(_gp_model, "_ordinal_kernel", rougher):
            return super().sample(*args, **kwargs)


def hebo_n_startup_trials(dimension: int) -> int:
    """HEBO's random start, ``1 + dimension``, under our cap of 10."""
    return min(dimension + 1, 10)


class HeboStart(GPSampler):
    """Our GP after HEBO's shorter random start: its own choices three trials sooner."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        with mock.patch.object(gp, "default_n_startup_trials", hebo_n_startup_trials):
            return super().sample(*args, **kwargs)


def _continuous(task: Task) -> bool:
    """Whether the search runs its Float budget here (`maximize` sets discrete spaces apart)."""
    return bool(_gp_space(task).continuous_dims)


#: name -> (seed -> sampler), and which spaces it changes (a task it leaves alone runs identically).
VARIANTS: dict[str, tuple[Callable[[int], GPSampler], Callable[[Task], bool]]] = {
    "default": (lambda seed: GPSampler(seed=seed), lambda task: True),
    # Optuna's GPSampler starts every space with 10 random trials; ours with dimension + 4 (5 to 10).
    "startup10": (
        lambda seed: GPSampler(seed=seed, n_startup_trials=10),
        lambda task: default_n_startup_trials(len(task.space)) != 10,
    ),
    # HEBO's start: one Sobol trial more than the space's parameters (ours: four more), at most 10 as ours.
    "startup_d1": (
        lambda seed: HeboStart(seed=seed),
        lambda task: hebo_n_startup_trials(len(task.space)) != default_n_startup_trials(len(task.space)),
    ),
    # EI's classic xi: a candidate must beat the incumbent by a share of the outcomes' spread, so
    # steps along a flat valley floor, which promise less than that, lose to unexplored regions.
    "margin0.01": (lambda seed: with_margin(seed, 0.01), lambda task: True),
    # Outcomes softened and standardized but not warped towards normal (the warp spreads the values
    # near the best, where flat landscapes differ least) ...
    "nowarp": (lambda seed: OtherOutcomes(seed=seed, step="warp_to_normal", transform=lambda Y: Y), lambda task: True),
    # ... nor the outlier fence: Optuna's GP's outcomes (finds sk_lassopoly_diabetes's degree-2 valley).
    "plainoutcomes": (
        lambda seed: OtherOutcomes(seed=seed, step="model_outcomes", transform=_gp_model.standardize),
        lambda task: True,
    ),
    # ... or both views taking turns, trial by trial.
    "alternate_plain": (lambda seed: AlternatingOutcomes(seed=seed), lambda task: True),
    # ... or only their order (Salinas et al. 2020's Gaussian copula): no value sets the scale, and
    # equal steps in rank look equally large however close the values are.
    "copula": (
        lambda seed: OtherOutcomes(seed=seed, step="model_outcomes", transform=gaussian_copula),
        lambda task: True,
    ),
    # ... or fitted to the outcomes declustered in the inputs: in a long study most trials lie near one
    # optimum, the warp's exponent grows to spread them apart, and the rest may look uniformly poor.
    "declustered": (lambda seed: Declustered(seed=seed), lambda task: True),
    # ... or kept only where the GP with it predicts the observed values as well as the GP without it.
    "warp_by_loo": (lambda seed: WarpByPrediction(seed=seed), lambda task: True),
    # ... or never below 1, which squashes the best values together (a random history's long tail of
    # rare good values asks for it): the warp only ever spreads the good end apart.
    "warp_at_least_1": (lambda seed: WarpExponentRange(seed=seed, low=1.0, high=5.0), lambda task: True),
    # The acquisition averaged over draws of the GP's hyperparameters from a Laplace approximation
    # of their posterior (with the fitted ones): an over-confident fit stops exploring.
    "laplace4": (lambda seed: with_hyperparameter_draws(seed, 4), lambda task: True),
    # HEBO's acquisition ensemble, its three acquisitions taking turns at random.
    "portfolio": (lambda seed: AcquisitionPortfolio(seed=seed), lambda task: True),
    # Its two improvement-based ends alone: half the trials exploit (PI) and none explore more.
    "eipi": (lambda seed: AcquisitionPortfolio(seed=seed, choices=("ei", "pi")), lambda task: True),
    # HEBO's bound on every other trial, only once the last four GP trials stopped improving.
    "stall": (lambda seed: StallExploration(seed=seed), lambda task: True),
    # De Ath et al.'s eps-PF: a tenth of the trials a random point of the mean / uncertainty front.
    "epsilon_pf": (lambda seed: EpsilonParetoFront(seed=seed), lambda task: True),
    # Repeats of an observed or pending point allowed, as before the sampler kept its suggestions
    # new (HEBO's and SMAC3's rule) ...
    "repeats": (with_repeats, lambda task: True),
    # ... and the rule's first form: observed points scored -inf in the whole search, none a start.
    "unseen_search": (lambda seed: UnseenSearch(seed=seed), lambda task: True),
    # Optuna's GP's acquisition, then its one kernel over categorical and other columns.
    "logei": (lambda seed: AnalyticLogEI(seed=seed), lambda task: True),
    "product": (lambda seed: ProductKernel(seed=seed), _mixed),
    # A rougher and a smoother function a priori.
    "lengthscale0.5": (lambda seed: ScaledLengthscalePrior(seed=seed, factor=0.5), lambda task: True),
    "lengthscale2": (lambda seed: ScaledLengthscalePrior(seed=seed, factor=2.0), lambda task: True),
    # The same centre, twice the spread (BoTorch's prior is wider still, and centred further out).
    # These four were measured before the sampler chose between two spreads from 8 columns
    # (fit_objective_model); on such spaces they now act on both of its fits.
    "lengthscale_wide": (lambda seed: WiderLengthscalePrior(seed=seed, factor=2.0), lambda task: True),
    # ... only in kernels of 8 or more Float and Int columns (the broad suite's have at most 6).
    "lengthscale_wide8": (
        lambda seed: WiderLengthscalePrior(seed=seed, factor=2.0, from_dimension=8),
        lambda task: len(_gp_space(task).ordinal_dims) >= 8,
    ),
    # ... or the wider prior at a refit only where the study's own data predict better under it.
    "lengthscale_loo": (lambda seed: PriorSpreadByPrediction(seed=seed, factor=2.0), lambda task: True),
    # ... on a lead of two standard errors: what the sampler adopted from 8 columns, here in every space.
    "lengthscale_loo_2se": (
        lambda seed: PriorSpreadByPrediction(seed=seed, factor=2.0, min_standard_errors=2.0),
        lambda task: len(_gp_space(task).ordinal_dims) < _gp_model.WIDER_PRIOR_FROM_COLUMNS,
    ),
    # Every fit also from lengthscales 0.2 and 5 times the centres, the highest log posterior kept.
    "multistart": (lambda seed: MultiStartFit(seed=seed), lambda task: True),
    # Four times the acquisition search's Sobol points, starts and rounds (Float columns: the
    # rounds of a discrete space are set apart, `OptimizerBudget.discrete_*`).
    "search4": (lambda seed: LargerSearch(seed=seed, global_factor=4, local_factor=4), _continuous),
    # Sixteen times the Sobol points alone: starts from a denser cover of the space, as an
    # evolutionary search of the whole space (HEBO's) would find.
    "sobol16": (lambda seed: LargerSearch(seed=seed, global_factor=16, local_factor=1), _continuous),
    # HEBO's Matern 3/2 on Float and Int columns.
    "matern32": (lambda seed: Matern32(seed=seed), lambda task: bool(_gp_space(task).ordinal_dims)),
    # HEBO's input warping, on the Float and Int columns (every task has some).
    "inputwarp": (lambda seed: InputWarping(seed=seed), lambda task: True),
}
#: The default suite's tasks that train no network, then the broad suite (a variant skips those it leaves alone).
SCREEN_TASKS = ("branin", "svc_breast_cancer", "hpobench_kc1", *BROAD_TASKS)


def best_values(task: Task, sampler: GPSampler, seed: int, budget: int, report_at: Sequence[int]) -> list[float]:
    """The noiseless value of the best-observed trial among the first t, for each t of ``report_at``
    (the suite's runner and its simple regret's incumbent, without the reference)."""
    trace = _lightning_hpo_runner(lambda _: sampler)(task, task.make_objective(seed), budget, seed)
    incumbents = incumbent_values(trace.observed, trace.true)
    return [incumbents[t - 1] for t in report_at]


def compare(runs: dict[str, dict[int, dict[str, list[float]]]], variant: str, design: set[str], report_at: Sequence[int]) -> str:  # fmt: skip
    """Per task wins/losses of the variant, then pooled over the design tasks and over the others."""
    from scipy.stats import wilcoxon

    lines = []
    for k, t in enumerate(report_at):
        pooled: dict[str, list[float]] = {"design tasks": [], "other tasks": []}
        cells = []
        for task, by_seed in sorted(runs.items()):
            pairs = [(v["default"], v[variant]) for v in by_seed.values() if "default" in v and variant in v]
            if not pairs:
                continue
            values = [x for pair in pairs for run in pair for x in run]
            spread = (statistics.median(run[0] for pair in pairs for run in pair) - min(values)) or 1.0
            differences = [(base[k] - other[k]) / spread for base, other in pairs]  # > 0: the variant is better
            wins, losses = sum(d > 1e-9 for d in differences), sum(d < -1e-9 for d in differences)
            cells.append(f"{task} {wins}/{losses}")
            pooled["design tasks" if task in design else "other tasks"] += differences
        lines.append(f"after {t} trials (wins/losses of {variant}): " + ", ".join(cells))
        for group, differences in pooled.items():
            if not differences:
                continue
            nonzero = [d for d in differences if abs(d) > 1e-9]
            p = f"{wilcoxon(nonzero).pvalue:.3g}" if len(nonzero) >= 6 else "n/a"
            wins, losses = sum(d > 0 for d in nonzero), sum(d < 0 for d in nonzero)
            lines.append(f"  {group}: {len(differences)} pairs, {wins}/{losses}, "
                         f"mean {statistics.mean(differences):+.3f} spreads, Wilcoxon p = {p}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=[v for v in VARIANTS if v != "default"], required=True)
    parser.add_argument("--tasks", default=",".join(SCREEN_TASKS), help="comma list")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds --first-seed .. + --seeds - 1")
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--report-at", default="10,20,30")
    parser.add_argument("--design", default="", help="comma list of the tasks the variant was designed on")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "gp_variants.json")
    args = parser.parse_args(argv)
    report_at = [int(t) for t in args.report_at.split(",")]
    if max(report_at) > args.budget:
        parser.error(f"--report-at {args.report_at} goes past --budget {args.budget}")
    cache: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs: dict[str, dict[int, dict[str, list[float]]]] = {}
    for name in args.tasks.split(","):
        task = TASK_BUILDERS[name]()
        if not VARIANTS[args.variant][1](task):
            print(f"{name}: {args.variant} changes nothing here; skipped", flush=True)
            continue
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for method in ("default", args.variant):
                key = f"{name}|{seed}|{method}|{args.budget}|{args.report_at}"
                if key not in cache:
                    cache[key] = best_values(task, VARIANTS[method][0](seed), seed, args.budget, report_at)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(cache))
                    print(f"{name} seed {seed} {method}: {cache[key]}", flush=True)
                runs.setdefault(name, {}).setdefault(seed, {})[method] = cache[key]
    print(compare(runs, args.variant, set(filter(None, args.design.split(","))), report_at))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
