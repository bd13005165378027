"""qLogNEI for one candidate at a time, with everything that does not depend on the candidate cached.

BoTorch's ``qLogNoisyExpectedImprovement`` asks the model for the joint posterior of the baseline
(the observed points that may be the best), the candidate and the pending points anew on every
evaluation: a GPyTorch prediction with its lazy tensors, a Cholesky factor of the joint covariance
and the samples, about as costly for 1 candidate as for 100. The acquisition search makes ~10 such
evaluations per suggestion, most of a suggestion's time (timings in ``benchmarks/GP_DECISIONS.md``).

Here the fixed points ``F`` (baseline and pending) are conditioned on once: their posterior mean,
the Cholesky factor ``L_F`` of their posterior covariance and their samples. A candidate ``c`` then
needs only its kernel row against the training and fixed points: with ``a = L_F^{-1} Sigma_Fc`` and
``s^2 = sigma_c^2 - |a|^2``, the factor of the joint covariance of ``(F, c)`` is ``[[L_F, 0],
[a^T, s]]``, so a sample of ``f(c)`` jointly with the cached samples of ``f(F)`` is
``mu_c + a^T z_F + s z_c`` (BoTorch's ``cache_root`` idea, without the model's general machinery).

The estimate is BoTorch's: per posterior sample, the log of the fat-softplus of the improvement of
each of the candidate and the pending points over the sample's best baseline value, a fat maximum
over them, and the log of the mean over samples. Without pending points it equals BoTorch's
qLogNEI with the same base samples (tests/samplers/test_gp_nei.py checks it).
"""

from __future__ import annotations

import gpytorch
import torch
from botorch.acquisition.logei import TAU_MAX, TAU_RELU
from botorch.models import SingleTaskGP
from botorch.utils.safe_math import fatmax, log_fatplus, logmeanexp
from botorch.utils.sampling import draw_sobol_normal_samples
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor

__all__ = ["CachedLogNEI", "FixedPointConditional", "dense_kernel"]

#: Observed points, ranked by posterior mean, among which the most likely best are sampled: the
#: joint posterior of all of them would cost a cube of the history's size, and with hundreds of
#: points one outside the top ones by mean is practically never the best in a sample.
MAX_PRUNE_CANDIDATES = 256
#: Smallest posterior variance of a candidate given the fixed points (a candidate on top of an
#: observed point has none left); keeps the square root's gradient finite.
_MIN_VARIANCE = 1e-12


def dense_kernel(kernel: gpytorch.kernels.Kernel, X1: Tensor, X2: Tensor) -> Tensor:
    """``kernel(X1, X2)`` as a dense tensor (``... x n1 x n2``, batched like the kernel)."""
    with gpytorch.settings.lazily_evaluate_kernels(False):
        return kernel(X1, X2).to_dense()


class FixedPointConditional:
    """The posterior of one outcome of a GP with a constant mean and a stationary kernel, given its
    training data, and then jointly with a few fixed points ``F``: computed from kernel matrices,
    so that a candidate's sample, joint with the fixed points' cached samples, costs one
    triangular solve against the training factor and one against the fixed points' factor.

    Args:
        K: ``n x n`` kernel matrix of the training inputs.
        noise: the likelihood's noise variance (one value, or one per training point).
        targets: ``n`` training outcomes.
        constant: the constant mean.
        prior_variance: ``k(x, x)``, the same everywhere.
    """

    def __init__(self, K: Tensor, *, noise: Tensor, targets: Tensor, constant: Tensor, prior_variance: Tensor) -> None:
        eye = torch.eye(len(K), dtype=K.dtype, device=K.device)
        self.train_factor = psd_safe_cholesky(K + noise * eye)
        self.constant = constant
        self.alpha = torch.cholesky_solve((targets - constant).unsqueeze(-1), self.train_factor).squeeze(-1)
        self.prior_variance = prior_variance

    def mean(self, cross: Tensor) -> Tensor:
        """The posterior mean of ``n`` points ``X``, given ``cross = K(X_train, X)``."""
        return self.constant + cross.mT @ self.alpha

    def posterior(self, cross: Tensor, prior: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Of ``n`` points ``X``, given ``cross = K(X_train, X)`` and ``prior = K(X, X)``: posterior
        mean, ``L^{-1} cross`` (``L`` the training covariance's factor) and the posterior
        covariance's Cholesky factor."""
        V = torch.linalg.solve_triangular(self.train_factor, cross, upper=False)
        return self.mean(cross), V, psd_safe_cholesky(prior - V.mT @ V)

    def fix(self, cross: Tensor, prior: Tensor) -> tuple[Tensor, Tensor]:
        """Conditions on the fixed points (``cross = K(X_train, F)``, ``prior = K(F, F)``); returns
        their posterior mean and the Cholesky factor of their posterior covariance."""
        mean, self._V_fixed, self._fixed_factor = self.posterior(cross, prior)
        return mean, self._fixed_factor

    def joint_with_fixed(self, train_cross: Tensor, fixed_cross: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Of ``b`` candidates, given their kernel columns against the training (``n x b``) and the
        fixed points (``f x b``): posterior mean ``mu`` (``b``), ``a`` (``f x b``) and ``s`` (``b``),
        so that ``mu + z_F a + s z`` samples them jointly with the fixed points' samples
        ``mean_F + z_F L_F^T`` (``z_F``, ``z``: standard normal)."""
        V = torch.linalg.solve_triangular(self.train_factor, train_cross, upper=False)
        mean = self.mean(train_cross)
        a = torch.linalg.solve_triangular(self._fixed_factor, fixed_cross - self._V_fixed.mT @ V, upper=False)
        variance = self.prior_variance - (V * V).sum(0) - (a * a).sum(0)
        return mean, a, variance.clamp_min(_MIN_VARIANCE).sqrt()


class CachedLogNEI(torch.nn.Module):
    """qLogNEI of a one-outcome, homoskedastic ``SingleTaskGP`` with a constant mean and a
    stationary kernel, over the model's training inputs as the baseline.

    Calling it on ``b x 1 x d`` candidates returns their ``b`` log acquisition values,
    differentiable with respect to the candidates.

    Args:
        model: the GP, in evaluation mode.
        X_pending: ``p x d`` points being evaluated (``None`` or empty for none).
        mc_samples: quasi-Monte-Carlo samples of the posterior.
        seed: seed of the samples (scrambled Sobol normals, as BoTorch's ``SobolQMCNormalSampler``).
        max_baseline: how many observed points are kept as candidates for the incumbent: those
            most often the best in ``prune_samples`` joint posterior samples (never fewer than
            those that ever are, up to this cap). Only they can matter to the improvement, and the
            cost of an evaluation grows with them.
        prune_samples: posterior samples that choose the baseline.
        baseline_candidates: indices of the training points that may serve as the incumbent (the
            feasible ones in a study with constraints); ``None``: all.
        margin: how much a value must exceed the sample's incumbent by to improve on it, in the
            model's outcome units (EI's ``xi``; 0 is BoTorch's qLogNEI).
    """

    def __init__(
        self,
        model: SingleTaskGP,
        X_pending: Tensor | None,
        *,
        mc_samples: int,
        seed: int,
        max_baseline: int,
        prune_samples: int = 512,
        baseline_candidates: Tensor | None = None,
        margin: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        X_train = model.train_inputs[0]
        self._X_train = X_train
        with torch.no_grad():
            K = dense_kernel(model.covar_module, X_train, X_train)
            self._conditional = FixedPointConditional(
                K,
                noise=model.likelihood.noise.detach(),
                targets=model.train_targets,
                constant=model.mean_module.constant.detach(),
                # Every kernel of the sampler is stationary: k(x, x) is the same everywhere.
                prior_variance=dense_kernel(model.covar_module, X_train[:1], X_train[:1]).reshape(()),
            )
            candidates = torch.arange(len(X_train), device=X_train.device)
            if baseline_candidates is not None:
                candidates = baseline_candidates.to(X_train.device)
            best = self._most_likely_best(K, max_baseline, prune_samples, seed + 1, candidates)
            self.X_baseline = X_train[best]
            n_baseline = len(self.X_baseline)
            n_pending = 0 if X_pending is None else len(X_pending)
            self._fixed = self.X_baseline if not n_pending else torch.cat([self.X_baseline, X_pending])
            fixed_mean, fixed_factor = self._conditional.fix(
                dense_kernel(model.covar_module, X_train, self._fixed),
                dense_kernel(model.covar_module, self._fixed, self._fixed),
            )
            # BoTorch's layout of the base samples: baseline, then the candidate, then pending.
            base = draw_sobol_normal_samples(n_baseline + 1 + n_pending, mc_samples, seed=seed).to(X_train)
            self._z_candidate = base[:, n_baseline]
            self._z_fixed = torch.cat([base[:, :n_baseline], base[:, n_baseline + 1 :]], dim=1)
            fixed_samples = fixed_mean + self._z_fixed @ fixed_factor.mT  # S x (n_b + p)
            self._best_baseline = fixed_samples[:, :n_baseline].amax(dim=-1).unsqueeze(-1) + margin  # S x 1
            self._pending_samples = fixed_samples[:, n_baseline:]  # S x p

    def _most_likely_best(self, K: Tensor, max_points: int, n_samples: int, seed: int, candidates: Tensor) -> Tensor:
        """Indices of the ``candidates`` (training points) that are the best of them in some joint
        posterior sample, the most often best first, at most ``max_points`` (``K``: the training
        points' kernel matrix)."""
        # The points sampled jointly: all training points, or past the cap only the candidates
        # with the highest posterior means (a sample of those alone is much cheaper).
        points, columns = torch.arange(len(K), device=K.device), candidates
        if len(candidates) > MAX_PRUNE_CANDIDATES:
            posterior_mean = self._conditional.constant + K[candidates] @ self._conditional.alpha
            candidates = candidates[posterior_mean.topk(MAX_PRUNE_CANDIDATES).indices.sort().values]
            points, columns = candidates, torch.arange(len(candidates), device=K.device)
        mean, _, factor = self._conditional.posterior(K[:, points], K[points][:, points])
        z = draw_sobol_normal_samples(len(mean), n_samples, seed=seed).to(mean)
        samples = (mean + z @ factor.mT)[:, columns]
        winners, counts = torch.unique(samples.argmax(dim=-1), return_counts=True)
        return candidates[winners[counts.argsort(descending=True, stable=True)[:max_points]]]

    def forward(self, X: Tensor) -> Tensor:
        candidates = X.squeeze(-2)  # b x d
        n_train = len(self._X_train)
        # One kernel evaluation against the training and the fixed points.
        cross = dense_kernel(self.model.covar_module, torch.cat([self._X_train, self._fixed]), candidates)
        mean, a, scale = self._conditional.joint_with_fixed(cross[:n_train], cross[n_train:])
        samples = mean + self._z_fixed @ a + self._z_candidate.unsqueeze(-1) * scale  # S x b
        improvement = log_fatplus(samples - self._best_baseline, tau=TAU_RELU)
        if self._pending_samples.shape[-1]:
            # The candidate and the pending points as one batch: the improvement of its best.
            pending = log_fatplus(self._pending_samples - self._best_baseline, tau=TAU_RELU)
            both = torch.cat([improvement.unsqueeze(-1), pending.unsqueeze(1).expand(-1, len(candidates), -1)], dim=-1)
            improvement = fatmax(both, dim=-1, tau=TAU_MAX)
        return logmeanexp(improvement, dim=0)
