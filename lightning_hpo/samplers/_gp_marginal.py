"""The acquisition averaged over the GP's uncertain hyperparameters (a Laplace approximation).

The fitted hyperparameters are a mode (MAP), and a GP that trusts them is over-confident where the
data say little: with most observations on one flat valley of a multimodal landscape, the fit
takes long lengthscales from the valley and predicts the unexplored regions near it with little
spread, so the expected improvement elsewhere vanishes and the search walks along the valley floor
(``benchmarks/GP_DECISIONS.md``). Integrating the acquisition over the hyperparameters' posterior
(Snoek et al., "Practical Bayesian optimization of machine learning algorithms", 2012, with MCMC)
keeps the unexplored regions in play as long as the data allow shorter lengthscales.

Here the posterior of the kernel's log lengthscales and log output scales is approximated by a
normal at the mode, with the curvature of the log posterior there (its Hessian, by finite
differences of the exact gradient) as precision; the constant mean and the noise stay at their
mode (the noise often sits at its floor, where the posterior is flat in its logarithm). The
acquisition is the mean, over a few draws, of the acquisition of the GP with those hyperparameters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import gpytorch
import torch
from botorch.models import SingleTaskGP
from botorch.utils.safe_math import logmeanexp
from torch import Tensor

from lightning_hpo.samplers._gp_model import _PriorsListedOnce

__all__ = ["LogMeanAcquisition", "laplace_draws"]

#: Raw parameters drawn from the approximate posterior: the kernel's log lengthscales and log output scales.
_DRAWN = ("raw_lengthscale", "raw_outputscale")
#: Finite-difference step of the Hessian, in the raw (log) parameters.
_STEP = 1e-4
#: Least precision of a drawn direction (at most a standard deviation of 1 in a log
#: hyperparameter): guards a flat or not quite converged posterior.
_MIN_PRECISION = 1.0


def laplace_draws(
    model: SingleTaskGP, hyperparameters: Mapping[str, Tensor], n_draws: int, generator: torch.Generator
) -> list[dict[str, Tensor]]:
    """``n_draws`` raw hyperparameter sets from the Laplace approximation of the posterior of
    ``model`` (fitted, with ``hyperparameters`` its mode), in antithetic pairs around the mode."""
    names = [name for name in hyperparameters if name.rsplit(".", 1)[-1] in _DRAWN]
    shapes = [hyperparameters[name].shape for name in names]
    mode = torch.cat([hyperparameters[name].reshape(-1) for name in names])
    precision = _hessian(_posterior_gradient(model, names, shapes), mode)
    values, vectors = torch.linalg.eigh(0.5 * (precision + precision.mT))
    root = vectors * values.clamp_min(_MIN_PRECISION).rsqrt()  # covariance = root @ root.T
    half = (n_draws + 1) // 2
    z = torch.randn(half, len(mode), generator=generator, dtype=mode.dtype).to(mode.device)
    offsets = torch.cat([z, -z])[:n_draws] @ root.mT
    draws = []
    for offset in offsets:
        draw = dict(hyperparameters)
        for name, chunk, shape in zip(names, (mode + offset).split([s.numel() for s in shapes]), shapes, strict=True):
            draw[name] = chunk.reshape(shape)
        draws.append(draw)
    return draws


def _posterior_gradient(model: SingleTaskGP, names: list[str], shapes: list[torch.Size]) -> Callable[[Tensor], Tensor]:
    """``theta -> d(-log p(theta | data)) / d theta`` for the flat vector of the raw parameters
    ``names`` of a copy of ``model``, its other parameters at their values."""
    model = copy.deepcopy(model).train()
    mll = _PriorsListedOnce(model.likelihood, model)
    parameters = dict(model.named_parameters())
    drawn = [parameters[name] for name in names]
    n = len(model.train_targets)

    def gradient(theta: Tensor) -> Tensor:
        with torch.no_grad():
            for parameter, chunk, shape in zip(drawn, theta.split([s.numel() for s in shapes]), shapes, strict=True):
                parameter.copy_(chunk.reshape(shape))
        with gpytorch.settings.lazily_evaluate_kernels(False):
            # GPyTorch averages the log likelihood over the observations; the posterior's curvature is of the sum.
            loss = -n * mll(model(*model.train_inputs), model.train_targets).sum()
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, drawn)])

    return gradient


def _hessian(gradient: Callable[[Tensor], Tensor], mode: Tensor) -> Tensor:
    """The Hessian at ``mode`` of the function whose ``gradient`` is given, by central differences."""
    columns = []
    for j in range(len(mode)):
        step = torch.zeros_like(mode)
        step[j] = _STEP
        columns.append((gradient(mode + step) - gradient(mode - step)) / (2 * _STEP))
    return torch.stack(columns, dim=1)


class LogMeanAcquisition(torch.nn.Module):
    """The log of the mean of the acquisition values of ``acquisitions`` (each a log value),
    mapping ``b x 1 x d`` candidates to ``b`` values."""

    def __init__(self, acquisitions: list[torch.nn.Module]) -> None:
        super().__init__()
        self.acquisitions = torch.nn.ModuleList(acquisitions)
        self.model = acquisitions[0].model

    def forward(self, X: Tensor) -> Tensor:
        return logmeanexp(torch.stack([acquisition(X) for acquisition in self.acquisitions]), dim=0)
