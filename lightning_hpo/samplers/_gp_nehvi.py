"""qLogNEHVI with the baseline's posterior cached: each candidate costs a triangular solve, not a
joint posterior.

BoTorch's ``qLogNoisyExpectedHypervolumeImprovement`` (without ``cache_root``) asks the model on
every evaluation for the joint posterior of the baseline (the pruned observed points and the
pending ones) with each candidate: GPyTorch recomputes the baseline's rows against all
observations for every candidate, and with hundreds of observations that is most of a suggestion's
time (``benchmarks/GP_DECISIONS.md``). Its ``cache_root`` option factors only the baseline's block
and still has GPyTorch predict the whole joint covariance.

Here each outcome's GP is conditioned on the baseline once, as :class:`CachedLogNEI` does for one
outcome (:class:`~lightning_hpo.samplers._gp_nei.FixedPointConditional`): a candidate's sample,
jointly with the baseline's samples from which BoTorch partitioned the dominated space, is
``mu_c + a^T z_F + s z_c`` with BoTorch's own base samples, so the estimate is BoTorch's (the
tests check values and gradients against it). Everything else, the pruning of the baseline, the
box decompositions and the hypervolume improvement of the samples, is BoTorch's code, except that
past ``MAX_PRUNE_CANDIDATES`` observations the pruning samples only the first Pareto layers of the
posterior means, as qLogNEI's pre-selects its incumbent candidates by posterior mean.
"""

from __future__ import annotations

import torch
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.models import SingleTaskGP
from botorch.utils.multi_objective.pareto import is_non_dominated
from botorch.utils.transforms import t_batch_mode_transform
from torch import Tensor

from lightning_hpo.samplers import _gp_nei
from lightning_hpo.samplers._gp_nei import FixedPointConditional, dense_kernel

__all__ = ["CachedLogNEHVI", "first_pareto_layers"]


class CachedLogNEHVI(qLogNoisyExpectedHypervolumeImprovement):
    """BoTorch's qLogNEHVI of an ``m``-outcome ``SingleTaskGP`` (independent outcomes, batched),
    with a constant mean and stationary kernels, and pending points cached in the baseline (its
    defaults), evaluated one candidate at a time (``b x 1 x d``) from a cached posterior.

    Takes ``qLogNoisyExpectedHypervolumeImprovement``'s arguments except ``cache_root`` (this class
    caches instead). BoTorch applies an ``objective`` or ``constraints`` to the samples as usual,
    but only their absence is tested: the sampler passes neither.
    """

    def __init__(self, model: SingleTaskGP, ref_point: Tensor, X_baseline: Tensor, **kwargs: object) -> None:
        X_train = model.train_inputs[0]
        if X_train.dim() == 3:  # a batched model repeats its inputs per outcome
            X_train = X_train[0]
        kernel = model.covar_module
        with torch.no_grad():
            K = dense_kernel(kernel, X_train, X_train)  # m x n x n
            prior_variance = dense_kernel(kernel, X_train[:1], X_train[:1]).reshape(-1)
            noise = model.likelihood.noise.detach()
            constant = model.mean_module.constant.detach()
            conditionals = [
                FixedPointConditional(
                    K[outcome],
                    noise=noise[outcome],
                    targets=model.train_targets[outcome],
                    constant=constant[outcome],
                    prior_variance=prior_variance[outcome],
                )
                for outcome in range(len(ref_point))
            ]
            if len(X_baseline) > _gp_nei.MAX_PRUNE_CANDIDATES:
                # BoTorch's pruning samples the baseline's joint posterior, a cube of its size: past
                # the cap only the points of the first Pareto layers of the posterior means enter
                # it (a point deep in the layers is practically never Pareto-optimal in a sample).
                cross = dense_kernel(kernel, X_train, X_baseline)
                means = torch.stack([c.mean(cross[j]) for j, c in enumerate(conditionals)], -1)
                X_baseline = X_baseline[first_pareto_layers(means, _gp_nei.MAX_PRUNE_CANDIDATES)]
        super().__init__(model, ref_point, X_baseline, cache_root=False, **kwargs)
        fixed = self.X_baseline  # the pruned baseline, then the pending points
        self._X_train = X_train
        self._fixed = fixed
        self._conditionals = conditionals
        with torch.no_grad():
            # One BoTorch evaluation sets its sampler up for a candidate joint with the baseline:
            # the baseline's base samples (from which its front was sampled) and the candidate's.
            super().forward(fixed[:1].unsqueeze(0))
            base = self.sampler.base_samples.reshape(-1, len(fixed) + 1, len(ref_point))  # S x (f + 1) x m
            cross, prior = dense_kernel(kernel, X_train, fixed), dense_kernel(kernel, fixed, fixed)
            for outcome, conditional in enumerate(conditionals):
                conditional.fix(cross[outcome], prior[outcome])
        self._z_fixed = base[:, :-1, :].permute(2, 0, 1)  # m x S x f
        self._z_candidate = base[:, -1, :].mT  # m x S

    @t_batch_mode_transform()
    def forward(self, X: Tensor) -> Tensor:
        if X.shape[-2] != 1:
            return super().forward(X)
        n_train = len(self._X_train)
        # One kernel evaluation per outcome against the training and the fixed points.
        cross = dense_kernel(self.model.covar_module, torch.cat([self._X_train, self._fixed]), X.squeeze(-2))
        samples = []
        for outcome, conditional in enumerate(self._conditionals):
            mean, a, scale = conditional.joint_with_fixed(cross[outcome, :n_train], cross[outcome, n_train:])
            z_fixed, z_candidate = self._z_fixed[outcome], self._z_candidate[outcome]
            samples.append(mean + z_fixed @ a + z_candidate.unsqueeze(-1) * scale)  # S x b
        samples = torch.stack(samples, dim=-1).unsqueeze(-2)  # S x b x 1 x m
        return self._compute_log_qehvi(samples=samples, X=X)


def first_pareto_layers(Y: Tensor, at_least: int) -> Tensor:
    """Indices (ascending) of the ``n x m`` points ``Y`` (larger is better) in the first layers of
    non-dominated sorting: the Pareto front, then the front of the rest, and so on, whole layers
    until at least ``at_least`` points (or all) are in."""
    chosen = torch.zeros(len(Y), dtype=torch.bool, device=Y.device)
    while int(chosen.sum()) < min(at_least, len(Y)):
        rest = (~chosen).nonzero().squeeze(-1)
        chosen[rest[is_non_dominated(Y[rest], deduplicate=False)]] = True
    return chosen.nonzero().squeeze(-1)
