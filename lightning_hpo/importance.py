"""Hyperparameter importance: how much of the objective's variation each parameter explains.

Method (global sensitivity analysis of a surrogate, the idea behind fANOVA with a Gaussian process
in place of the random forest):

1. Fit a Gaussian process (BoTorch ``SingleTaskGP``, float64) to the COMPLETE trials, from their
   parameters to the standardized objective. Inputs are the study's unit-cube encoding, so a log
   parameter is measured on its log scale; a categorical becomes one-hot columns, so its choices
   have no order.
2. Decompose the variance of the GP's posterior mean over the search space (each parameter drawn
   uniformly in its encoding, as a sampler would: log-uniformly for log parameters, each choice
   equally likely for categoricals) into Sobol indices, estimated from ``n_samples`` scrambled
   Sobol points with Saltelli's scheme: ``A``, ``B`` and ``A`` with column ``i`` taken from ``B``.
   The total-effect index of parameter ``i`` (Jansen's estimator) is the share of variance that
   remains unexplained when every parameter but ``i`` is known: its own effect plus every
   interaction it takes part in. The first-order index (Saltelli 2010) is its effect alone.
3. Normalize the indices to sum to 1 (negative estimates of a nil effect are clipped to 0).

Conditional parameters: where a parameter is inactive, its column is pinned (the middle of its
axis; no choice of a categorical) in the trials and in the Sobol points alike, as the GP sampler
pins it, so a child explains variance only where it is active and its parent also gets the
effect of switching branches.

PRUNED trials are left out: their value was measured after less training, so it would blur the
picture. The result depends only on the trials and ``seed``.

Example:
    >>> from lightning_hpo import Float, Study, importance
    >>> study = Study("imp", search_space={"x": Float(0, 1), "y": Float(0, 1)}, storage=":memory:", seed=0)
    >>> study.optimize(lambda p: 10 * p["x"] + 0.1 * p["y"], n_trials=16)
    >>> scores = importance(study, seed=0)
    >>> list(scores)  # most important first
    ['x', 'y']
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.snapshot import StudyLike, StudySnapshot
from lightning_hpo.space import Categorical, SearchSpace
from lightning_hpo.trial import TrialState

if TYPE_CHECKING:
    import torch

__all__ = ["importance", "MIN_TRIALS"]

#: The fewest COMPLETE trials a surrogate is fitted to.
MIN_TRIALS = 4

Index = Literal["total", "first"]


def importance(
    study: StudyLike,
    *,
    objective: int = 0,
    seed: int = 0,
    n_samples: int = 1024,
    index: Index = "total",
) -> dict[str, float]:
    """The importance of each parameter for one objective, most important first, summing to 1.

    See the module docstring for the method. All zeros when the objective never varied.

    Args:
        study: a :class:`~lightning_hpo.Study` (or a :class:`~lightning_hpo.snapshot.StudySnapshot`).
        objective: which objective of a multi-objective study (0 for a single objective).
        seed: seeds the quasi-random points and the GP fit; equal seeds give equal results.
        n_samples: Sobol points per matrix (the GP mean is evaluated ``n_samples * (d + 2)`` times);
            a power of 2.
        index: ``"total"`` (effect with interactions, the default) or ``"first"`` (effect alone).

    Raises:
        InvalidArgumentError: fewer than :data:`MIN_TRIALS` COMPLETE trials, or a bad argument.
    """
    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    if index not in ("total", "first"):
        raise InvalidArgumentError(f"`index` must be 'total' or 'first', but got {index!r}.")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2 or n_samples & (n_samples - 1):
        raise InvalidArgumentError(f"`n_samples` must be a power of 2 >= 2, but got {n_samples!r}.")
    completed = snapshot.completed()
    if len(completed) < MIN_TRIALS:
        pruned = sum(t.state is TrialState.PRUNED for t in snapshot.trials)
        raise InvalidArgumentError(
            f"Importance needs at least {MIN_TRIALS} COMPLETE trials to fit its model, but study "
            f"{snapshot.name!r} has {len(completed)} (PRUNED trials, {pruned} here, don't count). Run more trials."
        )

    import torch

    space = snapshot.space
    features = _OneHotFeatures(space)
    units = torch.tensor([space.encode(t.params) for t in completed], dtype=torch.float64)
    values = torch.tensor([t.values[objective] for t in completed], dtype=torch.float64)
    if torch.all(values == values[0]) or features.width == 0:  # nothing varies that could explain anything
        return {name: 0.0 for name in space.names}
    targets = (values - values.mean()) / values.std()
    with torch.random.fork_rng(), _one_thread():
        torch.manual_seed(seed)
        mean = _fit_gp_mean(features(units), targets)
        indices = _sobol_indices(mean, features, len(space), n_samples=n_samples, seed=seed, index=index)
    shares = indices.clamp(min=0.0)
    total = float(shares.sum())
    scores = {name: float(s) / total if total > 0 else 0.0 for name, s in zip(space.names, shares)}
    return dict(sorted(scores.items(), key=lambda item: (-item[1], item[0])))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: on matrices this small, more threads only add overhead (and stall
    badly when the cores are busy, e.g. 2 s instead of 0.5 s on a loaded 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _OneHotFeatures:
    """Unit-cube points -> GP inputs: numeric columns as they are, categoricals one-hot."""

    def __init__(self, space: SearchSpace) -> None:
        from lightning_hpo.samplers._gp_space import GPSpace

        self._sizes = [len(d.choices) if isinstance(d, Categorical) else 0 for d in space.values()]
        self.width = sum(1 if size == 0 else size if size > 1 else 0 for size in self._sizes)
        self._gp_space = GPSpace(space) if space.is_conditional else None

    def __call__(self, units: torch.Tensor) -> torch.Tensor:
        import torch

        active = torch.ones_like(units, dtype=torch.bool)
        if self._gp_space is not None:
            active = self._gp_space.active_mask(self._gp_space.from_unit(units))
            units = torch.where(active, units, 0.5)  # an encoded trial holds nan where inactive
        columns = []
        for j, size in enumerate(self._sizes):
            u = units[:, j]
            if size == 0:
                columns.append(u.unsqueeze(-1))
            elif size > 1:  # a single choice carries no information
                choice = (u * size).floor().clamp(0, size - 1).long()
                one_hot = torch.nn.functional.one_hot(choice, size).to(units.dtype)
                columns.append(one_hot * active[:, j : j + 1])
        return torch.cat(columns, dim=-1)


def _fit_gp_mean(inputs: torch.Tensor, targets: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Fit a GP by maximum marginal likelihood; return its posterior mean as a function of inputs."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from linear_operator.utils.cholesky import psd_safe_cholesky

    model = SingleTaskGP(inputs, targets.unsqueeze(-1), outcome_transform=None)
    with warnings.catch_warnings():
        # Few or clustered points can leave the optimizer short of convergence; the mean is still usable.
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    model.eval()
    # The posterior mean m(x) + k(x, X) alpha, computed here rather than through model.posterior,
    # which also builds the covariance among the query points: quadratic in their number.
    with torch.no_grad():
        train_x = model.train_inputs[0]
        prior_mean = model.mean_module(train_x)
        covariance = model.covar_module(train_x).to_dense()
        covariance = covariance + model.likelihood.noise * torch.eye(len(train_x), dtype=train_x.dtype)
        alpha = torch.cholesky_solve((targets - prior_mean).unsqueeze(-1), psd_safe_cholesky(covariance))

    def mean(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.mean_module(x) + (model.covar_module(x, train_x).to_dense() @ alpha).squeeze(-1)

    return mean


def _sobol_indices(
    mean: Callable[[torch.Tensor], torch.Tensor],
    features: _OneHotFeatures,
    dimension: int,
    *,
    n_samples: int,
    seed: int,
    index: Index,
) -> torch.Tensor:
    """First-order (Saltelli 2010) or total-effect (Jansen 1999) Sobol indices of ``mean``, ``(d,)``."""
    import torch
    from torch.quasirandom import SobolEngine

    points = SobolEngine(2 * dimension, scramble=True, seed=seed).draw(n_samples, dtype=torch.float64)
    a, b = points[:, :dimension], points[:, dimension:]
    mixed = [torch.where(torch.arange(dimension) == i, b, a) for i in range(dimension)]
    f = mean(features(torch.cat([a, b, *mixed]))).reshape(dimension + 2, n_samples)
    f_a, f_b, f_mixed = f[0], f[1], f[2:]
    variance = torch.cat([f_a, f_b]).var()
    if variance <= 0:
        return torch.zeros(dimension, dtype=torch.float64)
    if index == "first":
        return (f_b * (f_mixed - f_a)).mean(dim=1) / variance
    return 0.5 * ((f_a - f_mixed) ** 2).mean(dim=1) / variance
