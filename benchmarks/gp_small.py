"""GPSampler with small histories (5-50 trials): time per suggestion against Optuna's GP, and where it goes.

Scikit-learn tuning tasks run 20-50 trials, where every suggestion of ours fits the GP's
hyperparameters anew (``gp.REFIT_EVERY_TRIAL_UNTIL``). For each space of the scikit-learn suite
chosen (``--spaces``; no model is trained: the values are a fixed random function of the encoded
parameters), history size and seed, the same random history is fed to lightning_hpo's GPSampler
and to Optuna's GPSampler, each with ``n_startup_trials=5`` so that every timed suggestion is a GP
one, and each makes ``--suggestions`` suggestions in a row, every one told before the next.

* **speed**: median ms per suggestion by history size (over spaces, seeds and suggestions) and
  the ratio ours/Optuna, from the same run. Times are the process's CPU time (torch and BLAS on
  one thread for both), which a loaded machine inflates far less than wall time: the time
  spent waiting for a core is left out.
* ``--calls``: what one suggestion does, by call counts (which the machine's load does not
  distort) and cProfile's cumulative seconds of the main steps, for ours and Optuna's.

Torch runs on one thread, as in the suite. Run from the repository root (needs optuna)::

    nice -n 10 python benchmarks/gp_small.py
    nice -n 10 python benchmarks/gp_small.py --no-speed --calls --sizes 10,50 --spaces logreg
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy and torch load: one thread for everyone

from benchmarks.methods import optuna_distributions  # noqa: E402
from benchmarks.tasks.sklearn_suite import _BOOSTING_SPACE, _LOGISTIC_SPACE, _tree_space  # noqa: E402
from lightning_hpo import NopPruner, Study  # noqa: E402
from lightning_hpo.samplers.gp import GPSampler  # noqa: E402
from lightning_hpo.space import Domain, SearchSpace  # noqa: E402

#: Float, log, Int and categorical columns, 3 to 6 of them (the suite's logistic regression,
#: decision tree and gradient boosting spaces).
SPACES: dict[str, dict[str, Domain]] = {
    "logreg": _LOGISTIC_SPACE,
    "tree": _tree_space(regression=False),
    "boosting": _BOOSTING_SPACE,
}
N_STARTUP = 5

Objective = Callable[[Mapping[str, Any]], float]


def objective_for(space: dict[str, Domain], seed: int) -> Objective:
    """A smooth random function of the encoded parameters (a bowl around a random centre with a
    random ripple), so the GP sees structure, not noise."""
    coerced = SearchSpace.coerce(space)
    rng = random.Random(seed)
    centre = [rng.random() for _ in coerced]
    phases = [rng.random() * 6.28 for _ in coerced]

    def objective(params: Mapping[str, Any]) -> float:
        import math

        u = coerced.encode(params)
        return sum((x - c) ** 2 + 0.1 * math.sin(7 * x + p) for x, c, p in zip(u, centre, phases))

    return objective


def random_history(space: dict[str, Domain], n: int, seed: int) -> list[tuple[dict[str, Any], float]]:
    coerced = SearchSpace.coerce(space)
    rng = random.Random(1000 + seed)
    objective = objective_for(space, seed)
    points = [coerced.decode([rng.random() for _ in coerced]) for _ in range(n)]
    return [(params, objective(params)) for params in points]


def ours_study(space: dict[str, Domain], past: list[tuple[dict[str, Any], float]], seed: int) -> Study:
    sampler = GPSampler(seed=seed, n_startup_trials=N_STARTUP)
    study = Study("small", search_space=space, storage=":memory:", sampler=sampler, pruner=NopPruner())
    for params, value in past:
        study.add_trial(params, value)
    return study


def optuna_study(space: dict[str, Domain], past: list[tuple[dict[str, Any], float]], seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = optuna_distributions(space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed, n_startup_trials=N_STARTUP))
    study.add_trials([optuna.trial.create_trial(params=p, distributions=distributions, value=v) for p, v in past])
    return study, distributions


def suggest_ours(study: Study) -> dict[str, Any]:
    trial = study.ask()
    return trial, trial.params


def suggest_optuna(study_and_distributions: Any) -> dict[str, Any]:
    study, distributions = study_and_distributions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = study.ask(distributions)
    return trial, trial.params


LIBRARIES = {"ours": (ours_study, suggest_ours), "optuna": (optuna_study, suggest_optuna)}


def time_suggestions(library: str, space_name: str, n: int, seed: int, k: int) -> list[float]:
    make, suggest = LIBRARIES[library]
    space = SPACES[space_name]
    objective = objective_for(space, seed)
    study = make(space, random_history(space, n, seed), seed)
    seconds = []
    for _ in range(k):
        start = time.process_time()
        trial, params = suggest(study)
        seconds.append(time.process_time() - start)
        (study if library == "ours" else study[0]).tell(trial, objective(params))
    return seconds


def speed(sizes: list[int], spaces: list[str], seeds: int, k: int) -> None:
    for library in LIBRARIES:  # imports BoTorch and Optuna's GP outside the timings
        time_suggestions(library, "logreg", 6, 0, 1)
    print(f"\nCPU ms per suggestion (medians over {len(spaces)} spaces x {seeds} seeds x {k} suggestions)")
    print("| trials of history | ours | Optuna | ratio |")
    print("|---|---|---|---|")
    for n in sizes:
        times: dict[str, list[float]] = {library: [] for library in LIBRARIES}
        for space_name in spaces:
            for seed in range(seeds):
                for library in LIBRARIES:
                    seconds = time_suggestions(library, space_name, n, seed, k)
                    times[library] += seconds
                    detail = " ".join(f"{s * 1000:.0f}" for s in seconds)
                    print(f"  {space_name} n={n} seed={seed} {library}: {detail}", flush=True)
        ours, theirs = (statistics.median(times[library]) * 1000 for library in LIBRARIES)
        print(f"| {n} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |", flush=True)


#: The steps of a suggestion whose calls and cumulative time ``--calls`` prints, by function name.
STEPS = {
    "ours": [
        "_suggest",
        "fit_model",  # fit_hyperparameters before the fitted model was reused
        "fit_hyperparameters",
        "fit_gpytorch_mll",
        "closure",  # botorch's marginal likelihood and gradient, once per L-BFGS-B step
        "build_model",
        "__init__ (_gp_nei)",
        "maximize",
        "forward (_gp_nei)",
        "_scaled_gradient",
        "_sample",
    ],
    "optuna": [
        "sample_relative",
        "fit_kernel_params",
        "loss_func",
        "optimize_acqf_mixed",
        "eval_acqf_no_grad",
        "eval_acqf_with_grad",
        "_get_trials",
    ],
}


def calls(sizes: list[int], spaces: list[str]) -> None:
    print("\nOne suggestion (the second of a fresh sampler; seed 0): calls and cumulative ms by step")
    for space_name in spaces:
        for n in sizes:
            for library in LIBRARIES:
                make, suggest = LIBRARIES[library]
                space = SPACES[space_name]
                objective = objective_for(space, 0)
                study = make(space, random_history(space, n, 0), 0)
                trial, params = suggest(study)
                (study if library == "ours" else study[0]).tell(trial, objective(params))
                profiler = cProfile.Profile()
                profiler.enable()
                suggest(study)
                profiler.disable()
                stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
                total_calls = sum(entry[1] for entry in stats.values())
                cells = []
                for step in STEPS[library]:
                    name, _, owner = step.partition(" (")
                    hits = [
                        entry
                        for (filename, _, function), entry in stats.items()
                        if function == name and (not owner or owner.rstrip(")") in filename)
                    ]
                    if hits:
                        n_calls = sum(entry[0] for entry in hits)
                        cumulative = max(entry[3] for entry in hits)
                        cells.append(f"{name} {n_calls}x {cumulative * 1000:.0f}ms")
                print(f"  {space_name} n={n} {library}: {total_calls} calls; " + "; ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", action="store_true", help="also count the calls of one suggestion")
    parser.add_argument("--no-speed", action="store_true", help="skip the timings")
    parser.add_argument("--spaces", default=",".join(SPACES), help=f"comma list of {', '.join(SPACES)}")
    parser.add_argument("--sizes", default="5,10,20,50", help="trials of history")
    parser.add_argument("--suggestions", type=int, default=3, help="timed in a row per history")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    spaces = args.spaces.split(",")
    if not args.no_speed:
        speed(sizes, spaces, args.seeds, args.suggestions)
    if args.calls:
        calls(sizes, spaces)


if __name__ == "__main__":
    main()
