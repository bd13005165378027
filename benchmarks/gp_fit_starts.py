"""Whether the GP's fit, which starts from the priors' centres, misses a better optimum of its
hyperparameters' posterior that another start would find.

Each (task, seed) runs the default GPSampler through the suite's runner; every ``--every``-th fit of
the run is made again from starts whose lengthscales are ``--factors`` times the priors' centres
(the other hyperparameters at their centres), and each fit's log posterior (the marginal log
likelihood plus the priors' log densities, in nats) is compared with the default's. A start that
finds more than ``--threshold`` nats is a fit the sampler's one start got wrong.

    python benchmarks/gp_fit_starts.py --tasks sk_lassopoly_diabetes,branin --seeds 1
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# One thread per library, as the suite's runs, set before numpy, torch and scikit-learn load.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import gpytorch  # noqa: E402
import torch  # noqa: E402
from botorch.models import SingleTaskGP  # noqa: E402
from torch import Tensor  # noqa: E402

from benchmarks.methods import _lightning_hpo_runner  # noqa: E402
from benchmarks.tasks import TASK_BUILDERS  # noqa: E402
from lightning_hpo.samplers import GPSampler, _gp_model  # noqa: E402
from lightning_hpo.samplers._gp_space import GPSpace  # noqa: E402


def log_posterior(model: SingleTaskGP) -> float:
    """The fitted model's objective: marginal log likelihood of its training outcomes plus the
    log densities of its hyperparameters under their priors, in nats (not per observation)."""
    mll = _gp_model._PriorsListedOnce(model.likelihood, model)
    model.train()
    try:
        with torch.no_grad(), gpytorch.settings.lazily_evaluate_kernels(False):
            value = mll(model(*model.train_inputs), model.train_targets)
    finally:
        model.eval()
    return float(value) * len(model.train_targets)


def lengthscales_scaled(X: Tensor, Y: Tensor, gp_space: GPSpace, factor: float) -> dict[str, Tensor]:
    """Raw hyperparameters at the priors' centres, but with every lengthscale ``factor`` times its centre."""
    model = _gp_model.build_model(X, Y, gp_space)
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, "has_lengthscale", False):
                module.lengthscale = module.lengthscale * factor
    return _gp_model.hyperparameters_of(model)


def gains(X: Tensor, Y: Tensor, gp_space: GPSpace, factors: Sequence[float]) -> list[float]:
    """For each factor, the log posterior the fit from :func:`lengthscales_scaled` reaches beyond
    the sampler's own fit (from the priors' centres)."""
    default = log_posterior(_gp_model.fit_model(X, Y, gp_space))
    return [
        log_posterior(_gp_model.fit_model(X, Y, gp_space, start=lengthscales_scaled(X, Y, gp_space, factor))) - default
        for factor in factors
    ]


def recorded_fits(task_name: str, seed: int, budget: int) -> list[tuple[Tensor, Tensor, GPSpace]]:
    """The (inputs, outcomes, space) of every objective fit of a default GPSampler's run."""
    fits = []
    fit = _gp_model.fit_objective_model

    def recording(X: Tensor, Y: Tensor, gp_space: GPSpace, Yvar: Tensor | None = None) -> SingleTaskGP:
        fits.append((X.clone(), Y.clone(), gp_space))
        return fit(X, Y, gp_space, Yvar)

    task = TASK_BUILDERS[task_name]()
    with mock.patch.object(_gp_model, "fit_objective_model", recording):
        _lightning_hpo_runner(lambda _: GPSampler(seed=seed))(task, task.make_objective(seed), budget, seed)
    return fits


def main(argv: list[str] | None = None) -> int:
    from benchmarks.gp_variants import SCREEN_TASKS  # which imports this module's helpers

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(SCREEN_TASKS), help="comma list")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--every", type=int, default=4, help="refit every n-th fit of a run")
    parser.add_argument("--factors", default="0.2,5", help="comma list of lengthscale start factors")
    parser.add_argument("--threshold", type=float, default=0.5, help="nats a better optimum must gain")
    args = parser.parse_args(argv)
    factors = [float(f) for f in args.factors.split(",")]
    total = improved = 0
    for name in args.tasks.split(","):
        for seed in range(args.seeds):
            fits = recorded_fits(name, seed, args.budget)[:: args.every]
            best = [max(gains(X, Y, space, factors)) for X, Y, space in fits]
            hits = sum(gain > args.threshold for gain in best)
            total, improved = total + len(best), improved + hits
            print(f"{name} seed {seed}: {hits}/{len(best)} fits bettered by > {args.threshold} nats "
                  f"(largest gain {max(best):.3f})", flush=True)  # fmt: skip
    print(f"all: {improved}/{total} fits bettered by another start")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
