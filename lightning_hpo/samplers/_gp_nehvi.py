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
tests check values and gradients against it).

The rest is BoTorch's arithmetic, two parts of it written again where BoTorch's general code is
slow, with the same results to rounding (the tests compare them with BoTorch's):

* The pruning of the baseline (BoTorch's ``prune_baseline``: the observed points Pareto-optimal in
  some of 2048 joint posterior samples, :func:`prune_baseline`) draws BoTorch's samples and checks
  dominance by sorting for two outcomes (:func:`non_dominated`), where BoTorch's check loops over
  the points. Past ``MAX_PRUNE_CANDIDATES`` observations it samples only the first Pareto layers
  of the posterior means, as qLogNEI's pre-selects its incumbent candidates by posterior mean.
* The hypervolume improvement of one candidate's samples over the cells of BoTorch's box
  decompositions of the sampled fronts is BoTorch's smoothed formula written for one candidate
  (:func:`log_improvement_of_one`): BoTorch's code for ``q`` candidates adds an
  inclusion-exclusion over subsets of them, the identity for one, at several passes over a tensor
  of samples x candidates x cells x outcomes, the largest of a suggestion once the front is dense.
"""

from __future__ import annotations

import torch
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.models import SingleTaskGP
from botorch.sampling.get_sampler import get_sampler
from botorch.utils.multi_objective import pareto
from botorch.utils.multi_objective.pareto import is_non_dominated
from botorch.utils.safe_math import log_fatplus, logmeanexp, logsumexp
from botorch.utils.transforms import t_batch_mode_transform
from torch import Tensor

from lightning_hpo.pareto import non_dominated_sort
from lightning_hpo.samplers import _gp_nei
from lightning_hpo.samplers._gp_nei import FixedPointConditional, dense_kernel

__all__ = ["CachedLogNEHVI", "first_pareto_layers", "log_improvement_of_one", "non_dominated", "prune_baseline"]


class CachedLogNEHVI(qLogNoisyExpectedHypervolumeImprovement):
    """BoTorch's qLogNEHVI of an ``m``-outcome ``SingleTaskGP`` (independent outcomes, batched),
    with a constant mean and stationary kernels, and pending points cached in the baseline (its
    defaults), evaluated one candidate at a time (``b x 1 x d``) from a cached posterior.

    Takes ``qLogNoisyExpectedHypervolumeImprovement``'s arguments except ``cache_root`` (this class
    caches instead); ``prune_baseline=True`` prunes with :func:`prune_baseline`. BoTorch applies an
    ``objective`` or ``constraints`` to the samples as usual (constraints by its own code for the
    improvement), but only their absence is tested: the sampler passes neither.
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
            if kwargs.pop("prune_baseline", False):
                X_baseline = prune_baseline(model, X_baseline, torch.as_tensor(ref_point, dtype=X_baseline.dtype))
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
        if self.constraints is not None or not self.fat:
            return self._compute_log_qehvi(samples=samples, X=X)
        return log_improvement_of_one(
            self.objective(samples, X=X),
            self.cell_lower_bounds,
            self.cell_upper_bounds,
            tau_relu=self.tau_relu,
            tau_max=self.tau_max,
        )


#: Elements of the samples x candidates x cells x outcomes tensor that ``log_improvement_of_one``
#: computes at once on a CPU: a megabyte of doubles (measured from a quarter of this to eight times it).
ELEMENTS_AT_ONCE = 2**17


def log_improvement_of_one(
    samples: Tensor, cell_lower_bounds: Tensor, cell_upper_bounds: Tensor, *, tau_relu: float, tau_max: float
) -> Tensor:
    """The log expected hypervolume improvement of one candidate per batch, as BoTorch's
    ``qLogExpectedHypervolumeImprovement._compute_log_qehvi`` computes it for ``q = 1`` with fat
    smoothing: ``samples`` (``S x b x 1 x m``) over each sample's cells (``S x C x m``, padded
    with empty ones), the side of a cell that the sample improves smoothed by ``log_fatplus`` and
    capped by the cell's side with a smooth minimum, sides multiplied, cells summed, samples
    averaged. Returns ``b`` values.

    On a CPU the candidates go through in groups of about ``ELEMENTS_AT_ONCE`` elements of that
    tensor: a few dozen passes over it, each allocating a temporary, run several times faster when
    the temporaries fit in the caches than over the whole batch at once (``GP_DECISIONS.md``)."""
    candidates_at_once = max(1, ELEMENTS_AT_ONCE // cell_lower_bounds.numel())
    if samples.device.type == "cpu" and samples.shape[-3] > candidates_at_once:
        return torch.cat(
            [
                log_improvement_of_one(part, cell_lower_bounds, cell_upper_bounds, tau_relu=tau_relu, tau_max=tau_max)
                for part in samples.split(candidates_at_once, dim=-3)
            ]
        )
    lower = cell_lower_bounds.unsqueeze(-3)  # S x 1 x C x m
    # BoTorch's cap of the unbounded sides, where it would overflow.
    upper = cell_upper_bounds.clamp_max(1e10 if samples.dtype == torch.double else 1e8).unsqueeze(-3)
    log_lengths = (upper - lower).log()
    empty = log_lengths.isneginf()  # padding: kept out of the arithmetic so no gradient is nan
    log_lengths = log_lengths.masked_fill(empty, 0.0)
    log_improvements = log_fatplus(samples - lower, tau=tau_relu)  # S x b x C x m
    # BoTorch's fatmin of two values: min(a, b) - tau log(1 + pareto(|a - b| / tau)), with its
    # pareto of exponent 2, 2 / (2 + 2x + x^2).
    gap = (log_improvements - log_lengths).abs() / tau_max
    log_sides = torch.minimum(log_improvements, log_lengths) - tau_max * (1 + 2 / (2 + 2 * gap + gap.square())).log()
    log_areas = log_sides.masked_fill(empty, -torch.inf).sum(dim=-1)  # S x b x C
    return logmeanexp(logsumexp(log_areas, dim=-1), dim=0)


def first_pareto_layers(Y: Tensor, at_least: int) -> Tensor:
    """Indices (ascending) of the ``n x m`` points ``Y`` (larger is better) in the first layers of
    non-dominated sorting: the Pareto front, then the front of the rest, and so on, whole layers
    until at least ``at_least`` points (or all) are in."""
    ranks = torch.as_tensor(non_dominated_sort(-Y.detach().cpu().numpy()), device=Y.device)
    in_layers = ranks.bincount().cumsum(0)
    last_layer = int((in_layers < min(at_least, len(Y))).sum())
    return (ranks <= last_layer).nonzero().squeeze(-1)


def prune_baseline(model: SingleTaskGP, X: Tensor, ref_point: Tensor, num_samples: int = 2048) -> Tensor:
    """The points of ``X`` Pareto-optimal and above ``ref_point`` in at least one of ``num_samples``
    joint posterior samples: BoTorch's ``prune_inferior_points_multi_objective`` with its defaults
    and neither objective nor constraints, the same samples from the same draws of torch's
    generator, with :func:`non_dominated` as the dominance check."""
    with torch.no_grad():
        posterior = model.posterior(X)
        samples = get_sampler(posterior, sample_shape=torch.Size([num_samples]))(posterior)  # S x n x m
        optimal = non_dominated(samples) & (samples > ref_point).all(dim=-1)
    return X[optimal.any(dim=0)]


def non_dominated(Y: Tensor) -> Tensor:
    """BoTorch's ``is_non_dominated(Y, deduplicate=False)`` (larger is better, ``... x n x m``):
    the points that no other point dominates, equal points all kept. For two outcomes by sorting
    (``n log n`` per batch, where BoTorch's check loops over the points); for more, BoTorch's check
    on slices of the batch small enough for its pairwise comparison, which it loops instead past a
    size (``MAX_BYTES``), slower on CPU; with a nan, BoTorch's on the whole."""
    if Y.shape[-2] == 0 or Y.isnan().any():
        return is_non_dominated(Y, deduplicate=False)
    if Y.shape[-1] != 2:
        if Y.dim() != 3:
            return is_non_dominated(Y, deduplicate=False)
        rows = max(1, int(pareto.MAX_BYTES // (Y.shape[-2] ** 2 * Y.element_size())))
        return torch.cat([is_non_dominated(part, deduplicate=False) for part in Y.split(rows)])
    # Sorted by the first outcome, then the second, both descending: a point's dominators all come
    # before it. A point is dominated when an earlier one is better on the second outcome, or equal
    # on it and better on the first; the earliest point that reaches the earlier ones' best second
    # outcome has their best first outcome among those at that level, so only it needs a look.
    by_second = Y[..., 1].argsort(dim=-1, descending=True, stable=True)
    by_first = Y[..., 0].gather(-1, by_second).argsort(dim=-1, descending=True, stable=True)
    order = by_second.gather(-1, by_first)
    first, second = Y[..., 0].gather(-1, order), Y[..., 1].gather(-1, order)
    best_so_far = second.cummax(dim=-1).values
    best_before = torch.cat([torch.full_like(second[..., :1], -torch.inf), best_so_far[..., :-1]], dim=-1)
    reached_at = torch.searchsorted(best_so_far, best_before).clamp_max(Y.shape[-2] - 1)
    dominated = (best_before > second) | ((best_before == second) & (first.gather(-1, reached_at) > first))
    return torch.zeros_like(dominated).scatter(-1, order, ~dominated)
