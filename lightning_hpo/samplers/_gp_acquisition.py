"""The acquisition function and its maximization over a mixed space.

The acquisition is qLogNEI (BoTorch's ``qLogNoisyExpectedImprovement``, evaluated by
:class:`~lightning_hpo.samplers._gp_nei.CachedLogNEI` with everything that does not depend on the
candidate computed once): the expected improvement over the best *noisy* observation, integrated
over the posterior, with the pending (running) trials as a joint batch so that a point next to a
running trial is worth little. For several objectives it is
``qLogNoisyExpectedHypervolumeImprovement`` (qLogNEHVI, evaluated by
:class:`~lightning_hpo.samplers._gp_nehvi.CachedLogNEHVI` from the baseline's cached posterior): the
expected growth of the hypervolume dominated by the (noisy, sampled) Pareto front of the observed
and pending points, above a reference point derived from the data (:func:`reference_point`) or given
by the user (placed among the outcomes by ``_gp_model.outcome_image``).

qLogNEHVI partitions the sampled front of every Monte-Carlo sample into boxes, which grows fast
with the number of objectives and the size of the front: with 4 objectives a suggestion takes
seconds. Four objectives or more therefore get qLogNParEGO instead, several times cheaper there:
qLogNEI of a random Chebyshev scalarization of the objectives, drawn anew for each trial (timings in
``benchmarks/GP_DECISIONS.md``).

Maximizing it is on the critical path of every trial, and one evaluation of a BoTorch acquisition
costs about as much whether it scores 1 point or 100 (the posterior's bookkeeping dominates). So
the search spends few, wide evaluations, all restarts batched together:

1. Score a scrambled Sobol sample of the space, the best observed points and perturbations of them
   in one evaluation; keep a few diverse high-scoring points as starts.
2. Rounds of local search from all starts at once. A round takes the gradient at each start (one
   evaluation), then scores in one evaluation, for every start: steps of a dozen lengths along the
   gradient scaled by the GP's lengthscales (a line search done in parallel instead of in
   sequence; components pointing out of the cube at a bound are dropped, as in projected
   gradient ascent), along the start's last move and along their sum (momentum), random steps of
   a shrinking radius, each Float column moved to the bound its gradient points at, and every
   single-column change of an Int or categorical column. Each start moves to its best candidate
   if that improves on it.
3. A space of only Int and categorical columns, small enough, is scored exhaustively instead.

A few such rounds reach about the log-acquisition value of a long L-BFGS-B run in a fraction of
the time BoTorch's batched L-BFGS-B takes (``benchmarks/GP_DECISIONS.md``). Int and categorical
columns only ever take values of their domains: no continuous optimum is rounded after the fact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective import logei as _botorch_logei
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.models.model import Model
from botorch.sampling import SobolQMCNormalSampler
from torch import Tensor
from torch.quasirandom import SobolEngine

from lightning_hpo.samplers._gp_nehvi import CachedLogNEHVI
from lightning_hpo.samplers._gp_nei import CachedLogNEI
from lightning_hpo.samplers._gp_space import GPSpace

__all__ = [
    "OptimizerBudget",
    "noisy_log_improvement",
    "noisy_log_hypervolume_improvement",
    "noisy_log_parego",
    "reference_point",
    "evaluate",
    "is_one_of",
    "maximize",
]

#: Points scored per forward pass: bounds memory, not results.
_CHUNK = 2048
#: A start moves only for an improvement of its log acquisition value larger than this.
_TOLERANCE = 1e-6
#: Objectives up to which qLogNEHVI is used; more get qLogNParEGO (see the module's docstring).
MAX_HYPERVOLUME_OBJECTIVES = 3


def _keep_botorch_from_compiling_its_fused_kernel() -> None:
    """The first qLogNEHVI of a process makes BoTorch JIT-compile a C++ kernel (``-march=native``, into the
    user's shared ``~/.cache/torch_extensions``): a long, silent compilation before the first suggestion,
    again whenever another Python environment rebuilt it there, and a process killed while compiling leaves
    a lock file on which every later one waits forever. BoTorch's pure PyTorch path gives the same
    suggestions, a little slower each (``benchmarks/GP_DECISIONS.md``); it is the path BoTorch itself
    falls back to when the compilation fails. A kernel that is already loaded is kept."""
    if getattr(_botorch_logei, "_C", None) is None and hasattr(_botorch_logei, "_load_attempted"):
        _botorch_logei._load_attempted = True


_keep_botorch_from_compiling_its_fused_kernel()


@dataclass(frozen=True)
class OptimizerBudget:
    """How much work one maximization of the acquisition function may do.

    Attributes:
        raw_samples: Sobol points scored to choose the starts.
        perturbations: random points scored near each of the best observed points.
        restarts: local searches, run together.
        rounds: cap on the rounds of local search (each costs two evaluations of the acquisition).
        step_lengths: steps along the gradient tried per start and round.
        random_steps: random steps tried per start and round.
        exhaustive: a space of only Int and categorical columns with at most this many points is
            scored point by point instead of searched.
        discrete_raw_samples, discrete_restarts, discrete_rounds: the same for a larger space of
            only Int and categorical columns, whose rounds need no gradient and so cost half: more
            starts there find the best cell far more often (``benchmarks/GP_DECISIONS.md``).
    """

    raw_samples: int = 128
    perturbations: int = 24
    restarts: int = 4
    rounds: int = 5
    step_lengths: int = 12
    random_steps: int = 16
    exhaustive: int = 4096
    discrete_raw_samples: int = 1024
    discrete_restarts: int = 16
    discrete_rounds: int = 10


#: Observed points that qLogNEI keeps as candidates for the incumbent (the most likely best ones).
MAX_BASELINE = 16


def noisy_log_improvement(
    model: Model,
    X_pending: Tensor | None,
    *,
    mc_samples: int,
    seed: int,
    baseline_candidates: Tensor | None = None,
    margin: float = 0.0,
) -> AcquisitionFunction:
    """qLogNEI of the one-outcome ``model`` over its observed inputs, with ``X_pending`` (``p x d``)
    running (see :class:`CachedLogNEI`); only the observations at ``baseline_candidates`` (indices;
    ``None``: all) may be the incumbent, e.g. the feasible ones; an improvement counts beyond
    ``margin`` (in the model's outcome units)."""
    # Only observed points that may be the best matter to the improvement: at most MAX_BASELINE of
    # them, those most often the best. Near an optimum many observed points are each sometimes the
    # best, and the improvement's joint posterior grows with their square (benchmarks/GP_DECISIONS.md).
    return CachedLogNEI(
        model,
        _pending(X_pending),
        mc_samples=mc_samples,
        seed=seed,
        max_baseline=MAX_BASELINE,
        baseline_candidates=baseline_candidates,
        margin=margin,
    )


def noisy_log_hypervolume_improvement(
    model: Model, X_baseline: Tensor, X_pending: Tensor | None, *, ref_point: Tensor, mc_samples: int, seed: int
) -> AcquisitionFunction:
    """qLogNEHVI of the ``m``-outcome ``model`` over ``X_baseline`` (``n x d``), with ``X_pending``
    (``p x d``) running, above ``ref_point`` (``m``, in the model's outcome space, larger is better).

    The baseline is pruned to the points that are Pareto-optimal in some posterior sample (BoTorch's
    ``prune_baseline``, as ``_gp_nehvi.prune_baseline`` computes it; past ``MAX_PRUNE_CANDIDATES``
    observations among the first Pareto layers of the posterior means), so the ``mc_samples`` box
    decompositions of the sampled front cover only those; once a study's front fills up that can be most of the observed points, and the
    decompositions' cells dominate a suggestion's time (``benchmarks/GP_DECISIONS.md``). Pending
    points join the sampled front, so the hypervolume a running trial will likely add is not
    counted again.
    """
    return CachedLogNEHVI(
        model,
        ref_point,
        X_baseline,
        sampler=_sampler(mc_samples, seed),
        X_pending=_pending(X_pending),
        prune_baseline=True,
    )


def noisy_log_parego(
    model: Model, X_baseline: Tensor, X_pending: Tensor | None, *, weights: Tensor, mc_samples: int, seed: int
) -> AcquisitionFunction:
    """qLogNParEGO of the ``m``-outcome ``model``: qLogNEI of the augmented Chebyshev scalarization
    of the outcomes with ``weights`` (a point of the simplex), whose optimum is Pareto-optimal."""
    return qLogNParEGO(
        model,
        X_baseline,
        scalarization_weights=weights,
        sampler=_sampler(mc_samples, seed),
        X_pending=_pending(X_pending),
        cache_root=False,
    )


def reference_point(Y: Tensor) -> Tensor:
    """``m``: the reference point of the hypervolume for ``n x m`` outcomes (larger is better): the
    nadir of the observed outcomes (their worst value in each column) minus a tenth of their range.

    Every observed point then adds some hypervolume, a front that reaches the worst value of one
    objective still counts (the margin), and the point follows the data's scale, so the same rule
    serves accuracies and parameter counts. A constant column gets a margin of 1.
    """
    worst, best = Y.min(dim=0).values, Y.max(dim=0).values
    spread = best - worst
    return worst - 0.1 * torch.where(spread > 0, spread, torch.ones_like(spread))


def _sampler(mc_samples: int, seed: int) -> SobolQMCNormalSampler:
    return SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)


def _pending(X_pending: Tensor | None) -> Tensor | None:
    return X_pending if X_pending is not None and len(X_pending) else None


def evaluate(acquisition: AcquisitionFunction, X: Tensor) -> Tensor:
    """Acquisition values of the ``n x d`` points ``X`` (each a batch of one), without gradients."""
    with torch.no_grad():
        return torch.cat([acquisition(chunk.unsqueeze(-2)) for chunk in X.split(_CHUNK)])


def maximize(
    acquisition: AcquisitionFunction,
    gp_space: GPSpace,
    *,
    incumbents: Tensor,
    scales: Tensor,
    generator: torch.Generator,
    budget: OptimizerBudget = OptimizerBudget(),
    exclude: Tensor | None = None,
) -> Tensor:
    """The point (``d``) of the space with the highest acquisition value that the search finds.

    Args:
        acquisition: maps ``b x 1 x d`` inputs to ``b`` values.
        gp_space: the space to search.
        incumbents: ``k x d`` good observed points; the search also starts from and near them.
        scales: ``d`` lengths over which the acquisition changes along each Float column (the
            GP's lengthscales); steps are measured in them.
        generator: the source of all randomness of the search (on the CPU).
        budget: how much work the search may do.
        exclude: ``e x d`` points not to return (the observed and pending ones) unless nothing
            else the search scored is left. The search still starts from and passes through them.
    """
    device, dtype = incumbents.device, incumbents.dtype
    if gp_space.n_discrete_points <= budget.exhaustive:
        points = gp_space.all_points(device=device, dtype=dtype)
        return _best_unexcluded(gp_space, points, evaluate(acquisition, points), exclude)

    if not gp_space.continuous_dims:
        budget = replace(
            budget,
            raw_samples=budget.discrete_raw_samples,
            restarts=budget.discrete_restarts,
            rounds=budget.discrete_rounds,
        )
    sobol_seed = int(torch.randint(2**62, (1,), generator=generator))
    sobol = SobolEngine(gp_space.dim, scramble=True, seed=sobol_seed).draw(budget.raw_samples, dtype=dtype)
    pool = torch.cat(
        [
            gp_space.from_unit(sobol.to(device)),
            incumbents,
            gp_space.perturb(incumbents, budget.perturbations, scale=0.1, generator=generator),
        ]
    )
    pool_values = evaluate(acquisition, pool)
    chosen = _diverse_best(pool_values, budget.restarts, generator)
    reached, values = _local_search(acquisition, gp_space, pool[chosen], pool_values[chosen], scales, generator, budget)
    return _best_unexcluded(gp_space, torch.cat([reached, pool]), torch.cat([values, pool_values]), exclude)


def _best_unexcluded(gp_space: GPSpace, points: Tensor, values: Tensor, exclude: Tensor | None) -> Tensor:
    """The row of ``points`` with the highest value among those that are no configuration of
    ``exclude`` (the best of all where every row is one)."""
    values = torch.nan_to_num(values, nan=-math.inf)
    if exclude is not None and len(exclude):
        repeats = is_one_of(gp_space, points, exclude)
        if not repeats.all():
            values = torch.where(repeats, -math.inf, values)
    return points[values.argmax()]


def is_one_of(gp_space: GPSpace, points: Tensor, configurations: Tensor) -> Tensor:
    """``n``: whether each row of ``points`` is the configuration of a row of ``configurations``
    (model inputs with inactive columns pinned, as observed points are)."""
    # Discrete columns sit exactly on their grid, so a repeat matches exactly; a Float column
    # matches only at the same value (at a bound, in practice). An inactive column's value is not
    # part of the configuration.
    pinned = gp_space.pin_inactive(points)
    return torch.cdist(pinned, configurations.to(points), p=math.inf).amin(dim=-1) <= 1e-9


def _diverse_best(values: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """Indices of ``n`` points: the best, and others drawn with weight ``exp(z-score)`` (Boltzmann)."""
    n = min(n, len(values))
    finite = torch.nan_to_num(values, nan=-math.inf)
    best = int(finite.argmax())
    spread = finite[torch.isfinite(finite)]
    z = (finite - spread.mean()) / spread.std().clamp_min(1e-12) if len(spread) > 1 else torch.zeros_like(finite)
    weights = torch.exp(z.clamp(max=50.0)).nan_to_num(0.0).cpu()
    weights[best] = 0.0
    if n <= 1 or int((weights > 0).sum()) < n - 1:
        return torch.topk(finite, n).indices
    others = torch.multinomial(weights, n - 1, replacement=False, generator=generator).to(values.device)
    return torch.cat([torch.tensor([best], device=values.device), others])


def _local_search(
    acquisition: AcquisitionFunction,
    gp_space: GPSpace,
    X: Tensor,
    values: Tensor,
    scales: Tensor,
    generator: torch.Generator,
    budget: OptimizerBudget,
) -> tuple[Tensor, Tensor]:
    """Rounds of batched moves from the ``k x d`` starts ``X``; returns the ``k`` points reached
    and their values."""
    k, d = X.shape
    continuous = torch.zeros(d, dtype=torch.bool, device=X.device)
    continuous[gp_space.continuous_dims] = True
    scales = torch.where(continuous, scales.clamp(1e-3, 1.0), torch.zeros_like(scales))
    # Step lengths, in lengthscales: along the gradient from tiny to one; along the last move
    # (momentum, which turns steepest ascent's zig-zag into progress) up to three.
    gradient_steps = torch.logspace(-4, 0, budget.step_lengths, dtype=X.dtype, device=X.device)
    momentum_steps = torch.logspace(-3, 0.5, budget.step_lengths // 2, dtype=X.dtype, device=X.device)
    radius = torch.full((k, 1, 1), 0.1, dtype=X.dtype, device=X.device)
    last_move = torch.zeros_like(X)
    for _ in range(budget.rounds):
        candidates = []
        if gp_space.continuous_dims:
            gradient = _projected(_scaled_gradient(acquisition, X, scales), X)
            ascent = _unit(gradient, scales)
            momentum = _unit(last_move, scales)
            noise = torch.randn(k, budget.random_steps, d, generator=generator, dtype=X.dtype).to(X.device)
            candidates += [
                _steps(X, ascent, gradient_steps),
                _steps(X, momentum, momentum_steps),
                _steps(X, _unit(ascent + momentum, scales), momentum_steps),
                X.unsqueeze(1) + radius * scales * noise,
                _to_bounds(X, gradient, gp_space.continuous_dims),
            ]
        if gp_space.discrete_dims:
            candidates.append(gp_space.neighbours(X))
        C = torch.cat(candidates, dim=1)
        C = torch.where(continuous, C.clamp(0.0, 1.0), C)
        scores = evaluate(acquisition, C.reshape(-1, d)).view(k, -1)
        best_scores, best = scores.max(dim=-1)
        improves = best_scores > values + _TOLERANCE
        if not improves.any():
            break
        moved = torch.where(improves.unsqueeze(-1), C[torch.arange(k, device=X.device), best], X)
        # Momentum continues Float moves only: a discrete column changes by whole values, through
        # `neighbours`; a fraction of such a change would put it off its grid, where the kernel sees
        # an unobserved value and the acquisition is high, though decoding it repeats an observed one.
        last_move, X = torch.where(continuous, moved - X, torch.zeros_like(X)), moved
        values = torch.where(improves, best_scores, values)
        radius = torch.where(improves.view(-1, 1, 1), radius, radius / 2)
    return X, values


def _projected(gradient: Tensor, X: Tensor) -> Tensor:
    """``gradient`` without the components that point out of the unit cube at a bound: such a
    column cannot move, and leaving it out lets the others take the whole step."""
    blocked = ((X <= 0.0) & (gradient < 0)) | ((X >= 1.0) & (gradient > 0))
    return torch.where(blocked, torch.zeros_like(gradient), gradient)


def _to_bounds(X: Tensor, gradient: Tensor, columns: list[int]) -> Tensor:
    """``k x len(columns) x d``: each point with one of ``columns`` moved to the bound its gradient
    points at (kept where the gradient is zero). The acquisition's optimum often has several
    parameters at a bound (in high dimensions most of all), which steps of a few lengthscales
    reach only one round at a time."""
    moved = X.unsqueeze(1).repeat(1, len(columns), 1)
    index = torch.arange(len(columns), device=X.device)
    target = torch.where(gradient[:, columns] > 0, 1.0, torch.where(gradient[:, columns] < 0, 0.0, X[:, columns]))
    moved[:, index, torch.tensor(columns, device=X.device)] = target.to(X.dtype)
    return moved


def _scaled_gradient(acquisition: AcquisitionFunction, X: Tensor, scales: Tensor) -> Tensor:
    """``k x d``: the gradient at each point times the squared lengthscales (zero on discrete
    columns): the steepest ascent direction in the metric of the GP's kernel."""
    X = X.detach().clone().unsqueeze(1).requires_grad_(True)
    (gradient,) = torch.autograd.grad(acquisition(X).sum(), X)
    return torch.nan_to_num(gradient.squeeze(1)) * scales**2


def _unit(direction: Tensor, scales: Tensor) -> Tensor:
    """``direction`` rescaled to length one in lengthscale units (zero stays zero)."""
    norm = (direction / scales.clamp_min(1e-3)).norm(dim=-1, keepdim=True)
    return direction / norm.clamp_min(1e-30)


def _steps(X: Tensor, direction: Tensor, lengths: Tensor) -> Tensor:
    """``k x s x d``: each point moved along its direction by each of the ``s`` lengths."""
    return X.unsqueeze(1) + lengths.view(1, -1, 1) * direction.unsqueeze(1)
