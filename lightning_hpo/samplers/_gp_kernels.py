"""The GP's kernels: GPyTorch's Matern-5/2 for Float and Int columns and BoTorch's categorical
kernel, whose covariance of the training inputs can take its gradient with respect to the
lengthscales in closed form.

A fit's every step differentiates the training covariance. Autograd goes back through each
elementwise step of the kernel's arithmetic, a dozen passes over the ``n x n`` matrix for the
Matern kernel's distance and covariance; the closed form needs a few passes (and, for the Matern
kernel, one product of that matrix with the inputs). Large fits use it
(``_gp_model.CLOSED_FORM_FIT_ABOVE``), with the log density's own closed form; smaller fits keep
GPyTorch's arithmetic bit for bit.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from botorch.models.kernels.categorical import CategoricalKernel
from gpytorch.kernels import MaternKernel
from torch import Tensor

__all__ = ["ChoiceKernel", "Matern52Kernel", "closed_form_kernel_gradients"]

_SQRT5 = math.sqrt(5.0)


class Matern52Kernel(MaternKernel):
    """GPyTorch's ``MaternKernel(nu=2.5)``. Within :func:`closed_form_kernel_gradients`, the
    covariance of inputs with themselves, when they need no gradient and the kernel has a
    lengthscale per column, is :class:`_MaternTrainingCovariance`'s: GPyTorch's arithmetic with the
    distance of inputs that need no gradient (as its evaluation-mode covariance is computed), and
    the lengthscales' gradient in closed form. Both equal GPyTorch's training values to rounding;
    outside the context the kernel is GPyTorch's."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(nu=2.5, **kwargs)
        self.closed_form_gradient = False

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params: Any) -> Tensor:
        # With one lengthscale GPyTorch has a closed-form gradient of its own (MaternCovariance).
        if self.closed_form_gradient and (self.ard_num_dims or 1) > 1 and _of_themselves(x1, x2, diag, params):
            return _MaternTrainingCovariance.apply(x1, self.lengthscale, self.covar_dist)
        return super().forward(x1, x2, diag=diag, **params)


class ChoiceKernel(CategoricalKernel):
    """BoTorch's ``CategoricalKernel`` (``exp`` of minus the mean over the columns of whether two
    choices differ, each divided by its lengthscale). Within :func:`closed_form_kernel_gradients`,
    the covariance of inputs with themselves, when they need no gradient, is
    :class:`_ChoiceTrainingCovariance`'s: BoTorch's values bit for bit, the lengthscales' gradient
    in closed form, equal to rounding."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.closed_form_gradient = False

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params: Any) -> Tensor:
        if self.closed_form_gradient and _of_themselves(x1, x2, diag, params):
            return _ChoiceTrainingCovariance.apply(x1, self.lengthscale)
        return super().forward(x1, x2, diag=diag, **params)


def _of_themselves(x1: Tensor, x2: Tensor, diag: bool, params: dict[str, Any]) -> bool:
    """Whether a kernel is asked for the full covariance of inputs that need no gradient with
    themselves, as a fit asks for the training covariance."""
    return (
        not diag
        and not params.get("last_dim_is_batch", False)
        and not x1.requires_grad
        and not x2.requires_grad
        and torch.equal(x1, x2)
    )


@contextlib.contextmanager
def closed_form_kernel_gradients(model: torch.nn.Module) -> Iterator[None]:
    """Within: the training covariance of ``model``'s :class:`Matern52Kernel` s and
    :class:`ChoiceKernel` s takes its gradient in closed form."""
    kernels = [module for module in model.modules() if isinstance(module, (Matern52Kernel, ChoiceKernel))]
    for kernel in kernels:
        kernel.closed_form_gradient = True
    try:
        yield
    finally:
        for kernel in kernels:
            kernel.closed_form_gradient = False


class _MaternTrainingCovariance(torch.autograd.Function):
    """The Matern-5/2 covariance ``K`` of inputs ``x`` (``... x n x d``) with themselves, for
    lengthscales ``l`` (``... x 1 x d``), and its gradient with respect to ``l`` alone.

    With ``z = x / l`` (centred) and ``r`` the distances between rows of ``z``,
    ``K = (1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r)`` and
    ``dK_ab / dl_j = 5/3 (1 + sqrt(5) r_ab) exp(-sqrt(5) r_ab) (z_aj - z_bj)^2 / l_j``, so for an
    upstream gradient ``G`` and ``W = G * 5/3 (1 + sqrt(5) r) exp(-sqrt(5) r)``,
    ``sum_ab W_ab (z_aj - z_bj)^2 = sum_a z_aj^2 (rows of W + columns of W)_a - 2 (z^T W z)_jj``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, lengthscale: Tensor, distance_of: Callable[..., Tensor]) -> Tensor:
        # GPyTorch's MaternKernel.forward for nu = 2.5, step for step, so the values are its own.
        mean = x.mean(dim=-2, keepdim=True)
        scaled = (x - mean).div(lengthscale)
        distance = distance_of(scaled, scaled, diag=False)
        exp_component = torch.exp(-_SQRT5 * distance)
        constant_component = (_SQRT5 * distance).add(1).add(5.0 / 3.0 * distance**2)
        ctx.save_for_backward(scaled, lengthscale, distance, exp_component)
        return constant_component * exp_component

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        scaled, lengthscale, distance, exp_component = ctx.saved_tensors
        weights = (_SQRT5 * distance).add_(1).mul_(exp_component).mul_(grad).mul_(5.0 / 3.0)
        sums = weights.sum(dim=-1) + weights.sum(dim=-2)
        squared_differences = (scaled.square() * sums.unsqueeze(-1)).sum(dim=-2) - 2.0 * (
            scaled * (weights @ scaled)
        ).sum(dim=-2)
        lengthscale_grad = squared_differences.unsqueeze(-2) / lengthscale
        return None, lengthscale_grad.sum_to_size(lengthscale.shape), None


class _ChoiceTrainingCovariance(torch.autograd.Function):
    """:class:`ChoiceKernel`'s covariance ``K`` of inputs ``x`` (``... x n x c``) with themselves, for
    lengthscales ``l`` (``... x 1 x c``), and its gradient with respect to ``l`` alone:
    ``K = exp(-mean_j delta_j / l_j)`` for ``delta_j`` whether two rows' choices in column ``j``
    differ, so ``dK / dl_j = K delta_j / (c l_j^2)``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, lengthscale: Tensor) -> Tensor:
        # BoTorch's CategoricalKernel.forward, step for step, so the values are its own.
        delta = x.unsqueeze(-2) != x.unsqueeze(-3)
        covariance = torch.exp(-(delta / lengthscale.unsqueeze(-2)).mean(-1))
        ctx.save_for_backward(delta, lengthscale, covariance)
        return covariance

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        delta, lengthscale, covariance = ctx.saved_tensors
        weights = (grad * covariance).unsqueeze(-1)
        differing = torch.where(delta, weights, 0.0).sum(dim=(-3, -2)).unsqueeze(-2)
        lengthscale_grad = differing / (lengthscale.shape[-1] * lengthscale.square())
        return None, lengthscale_grad.sum_to_size(lengthscale.shape)
