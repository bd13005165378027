"""Two objectives at scale: time per suggestion with hundreds of trials of history.

For each history size (50, 200, 500, 1000 by default), problem and seed, the same random history is
fed to three samplers in one run, and each then makes ``--suggestions`` suggestions in a row, every
one told before the next:

* ``ours``: lightning_hpo's ``GPSampler`` (qLogNEHVI evaluated by ``CachedLogNEHVI``);
* ``ours_botorch_nehvi``: the same sampler with BoTorch's ``qLogNoisyExpectedHypervolumeImprovement``
  evaluated as BoTorch does (a joint posterior of baseline and candidate at every evaluation), as
  the sampler was before ``CachedLogNEHVI``: the two compute the same acquisition to rounding, so
  their first suggestions are compared too (the largest difference of a parameter, in the unit
  cube);
* ``optuna``: Optuna's ``GPSampler`` (log EHVI), defaults.

Printed per size: the first suggestion of a fresh sampler (ours fits the GP's hyperparameters then)
and the median of the following ones (ours reuses the fit until the history has grown by a tenth,
as in ``gp_scale.py``), as medians over problems and seeds, and the ratios against the other two.

``--histories study`` feeds them the first trials of a study of ours instead (one per problem and
seed, grown to each size in turn), whose front fills up as a user's does: a random history's front
holds a few points, a study's most of them, and the time of a suggestion grows with the front.

``--study N`` runs a study of N trials from nothing per method instead, each choosing every trial
after its own start, as a user's study fills its front: the time of every ask, summed and by
stretch, and the hypervolume at the end.

Problems: ``zdt1`` (ZDT1 in 5 floats, ``multi_objective.py``'s) and ``mixed``: a ZDT1-like pair on
a mixed space (2 floats, a log float, an int, a categorical of 3), whose front is that of ZDT1.
Torch on one thread. Run from the repository root (needs optuna)::

    nice -n 10 python benchmarks/mo_scale.py                       # 50-1000 trials, 2 seeds
    nice -n 10 python benchmarks/mo_scale.py --no-speed --study 300 --problems zdt1 --methods ours
    python benchmarks/mo_scale.py --histories study --sizes 150,225 --seeds 1 --problems zdt1 --methods ours,optuna
    python benchmarks/mo_scale.py --sizes 200 --seeds 1 --problems mixed --methods ours,ours_botorch_nehvi
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gp_scale import print_study_header, print_study_row, study_stretches, timed_asks  # noqa: E402
from benchmarks.methods import optuna_distributions  # noqa: E402
from benchmarks.multi_objective import PROBLEMS, Problem, Values  # noqa: E402
from lightning_hpo import Categorical, Float, GPSampler, Int, NopPruner, RandomSampler, SearchSpace, Study  # noqa: E402
from lightning_hpo.samplers import _gp_acquisition  # noqa: E402

_CATEGORY_POSITION = {"x": 0.0, "y": 0.5, "z": 1.0}
#: Parameters and values of the trials of a history.
History = list[tuple[dict[str, Any], Values]]


def _mixed_values(params: Mapping[str, Any]) -> Values:
    """ZDT1 of ``a`` and four more coordinates in [0, 1]: the log float's decades, a float, the
    int's position and the category's; the front lies where those four are 0."""
    rest = [
        math.log10(params["b"]) / -3,
        params["c"],
        (params["n"] - 1) / 7,
        _CATEGORY_POSITION[params["k"]],
    ]
    g = 1 + 9 * sum(rest) / len(rest)
    return params["a"], g * (1 - math.sqrt(params["a"] / g))


MIXED = Problem(
    name="mixed",
    space={
        "a": Float(0.0, 1.0),
        "b": Float(1e-3, 1.0, log=True),
        "c": Float(0.0, 1.0),
        "n": Int(1, 8),
        "k": Categorical(list(_CATEGORY_POSITION)),
    },
    directions=("min", "min"),
    evaluate=_mixed_values,
    measured=lambda values: -values,
    reference=(-11.0, -11.0),
    given=(11.0, 11.0),
    best=121 - 1 / 3,
    text="ZDT1 on a mixed space",
)


def problem(name: str) -> Problem:
    return MIXED if name == "mixed" else PROBLEMS[name]()


def _in_memory(task: Problem, sampler: Any) -> Study:
    return Study(
        task.name,
        search_space=task.space,
        mode=list(task.directions),
        storage=":memory:",
        sampler=sampler,
        pruner=NopPruner(),
    )


def random_history(name: str, n: int, seed: int) -> History:
    task = problem(name)
    study = _in_memory(task, RandomSampler(seed=seed))
    study.optimize(task.evaluate, n_trials=n)
    return [(t.params, t.values) for t in study.trials]


#: The studies of ours behind ``study_history``, by problem and seed, grown as sizes are asked for.
_STUDIES: dict[tuple[str, int], Study] = {}


def study_history(name: str, n: int, seed: int) -> History:
    """The first ``n`` trials of a study of ours (``GPSampler(seed=seed)``) on problem ``name``."""
    task = problem(name)
    if (name, seed) not in _STUDIES:
        _STUDIES[name, seed] = _in_memory(task, GPSampler(seed=seed))
    study = _STUDIES[name, seed]
    study.optimize(task.evaluate, n_trials=n)  # up to n trials in all: nothing to do once there
    return [(t.params, t.values) for t in study.trials[:n]]


HISTORIES: dict[str, Callable[[str, int, int], History]] = {"random": random_history, "study": study_history}


def botorch_nehvi() -> contextlib.AbstractContextManager[Any]:
    """The sampler with BoTorch's own qLogNEHVI evaluation in place of ``CachedLogNEHVI``."""
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement

    def botorchs(*args: Any, **kwargs: Any) -> Any:
        return qLogNoisyExpectedHypervolumeImprovement(*args, cache_root=False, **kwargs)

    return mock.patch.object(_gp_acquisition, "CachedLogNEHVI", botorchs)


def asks_of_ours(
    name: str, past: History, seed: int, k: int, objective: Callable[..., Values] | None = None
) -> tuple[list[float], Any]:
    """Seconds of ``k`` asks in a row after ``past``, each told its value by ``objective`` (the
    problem's own by default), and the first suggestion's point in the unit cube."""
    task = problem(name)
    space = SearchSpace(task.space)
    study = _in_memory(task, GPSampler(seed=seed))
    for params, values in past:
        study.add_trial(params, list(values))
    seconds = timed_asks(study.ask, study.tell, objective or task.evaluate, k)
    return seconds, space.encode(study.trials[len(past)].params)


def asks_of_ours_with_botorch_nehvi(
    name: str, past: History, seed: int, k: int, objective: Callable[..., Values] | None = None
) -> tuple[list[float], Any]:
    with botorch_nehvi():
        return asks_of_ours(name, past, seed, k, objective)


def asks_of_optuna(
    name: str, past: History, seed: int, k: int, objective: Callable[..., Values] | None = None
) -> tuple[list[float], Any]:
    import optuna

    task = problem(name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = optuna_distributions(task.space)
    directions = ["minimize" if d == "min" else "maximize" for d in task.directions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(directions=directions, sampler=optuna.samplers.GPSampler(seed=seed))
        study.add_trials(
            [optuna.trial.create_trial(params=p, distributions=distributions, values=list(v)) for p, v in past]
        )
        return timed_asks(lambda: study.ask(distributions), study.tell, objective or task.evaluate, k), None


METHODS: dict[str, Callable[..., tuple[list[float], Any]]] = {
    "ours": asks_of_ours,
    "ours_botorch_nehvi": asks_of_ours_with_botorch_nehvi,
    "optuna": asks_of_optuna,
}


def speed(
    sizes: list[int], problems: list[str], seeds: int, k: int, methods: list[str], histories: str = "random"
) -> None:
    others = [m for m in methods if m != "ours"]
    print(
        f"\nms per suggestion, two objectives, {histories} histories"
        f" (medians over {len(problems)} problems x {seeds} seeds)"
    )
    columns = " | ".join(f"{m} first | {m} next" for m in methods)
    ratios = "".join(f"ours / {m} first | next | " for m in others)
    print(f"| trials of history | {columns} | {ratios}same first suggestion (largest difference) |")
    print("|---|" + "---|---|" * len(methods) + "---|---|" * len(others) + "---|")
    warm_up = random_history("zdt1", 12, 0)  # imports BoTorch and Optuna outside the timings
    for method in methods:
        METHODS[method]("zdt1", warm_up, 0, 1)
    for n in sizes:
        first: dict[str, list[float]] = {m: [] for m in methods}
        after: dict[str, list[float]] = {m: [] for m in methods}
        differences = []
        for name in problems:
            for seed in range(seeds):
                past = HISTORIES[histories](name, n, seed)
                points = {}
                for method in methods:
                    seconds, points[method] = METHODS[method](name, past, seed, k)
                    first[method].append(seconds[0] * 1000)
                    after[method].append(statistics.median(seconds[1:]) * 1000)
                    print(
                        f"  {name} n={n} seed={seed} {method}: " + " ".join(f"{s * 1000:.0f}" for s in seconds),
                        flush=True,
                    )
                if "ours_botorch_nehvi" in points and "ours" in points:
                    differences.append(max(abs(a - b) for a, b in zip(points["ours"], points["ours_botorch_nehvi"])))
        f = {m: statistics.median(v) for m, v in first.items()}
        a = {m: statistics.median(v) for m, v in after.items()}
        cells = " | ".join(f"{f[m]:.0f} | {a[m]:.0f}" for m in methods)
        ratio_cells = "".join(f"{f['ours'] / f[m]:.2f} | {a['ours'] / a[m]:.2f} | " for m in others)
        same = f"{max(differences):.1e}" if differences else "-"
        print(f"| {n} | {cells} | {ratio_cells}{same} |", flush=True)


def _recording(task: Problem, values: list[Values]) -> Callable[[Mapping[str, Any]], Values]:
    """``task``'s objective, appending each value it returns to ``values``."""

    def evaluate(params: Mapping[str, Any]) -> Values:
        values.append(task.evaluate(params))
        return values[-1]

    return evaluate


def whole_study(n: int, name: str, seed: int, methods: list[str]) -> None:
    """A study of ``n`` trials from nothing, each method choosing every trial after its own start:
    the time of every ask, summed and by stretch, and the hypervolume at the end. Unlike the random
    histories above, the front fills up as in a real study, and the pruned baseline grows with it."""
    from benchmarks.multi_objective import hypervolumes

    task = problem(name)
    stretches = study_stretches(n)
    print(f"\n{name}, a two-objective study of {n} trials from nothing, seed {seed}")
    print_study_header(stretches, "hypervolume at the end")
    for method in methods:
        values: list[Values] = []
        seconds = METHODS[method](name, [], seed, n, objective=_recording(task, values))[0]
        print_study_row(method, seconds, stretches, f"{hypervolumes(task, values)[-1]:.4f}")
    print("Stretch cells: median ms per ask over those trials.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,200,500,1000")
    parser.add_argument("--problems", default="zdt1,mixed")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--suggestions", type=int, default=3, help="timed in a row per history (at least 2)")
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma list of {', '.join(METHODS)} (ours first for the speed table)",
    )
    parser.add_argument(
        "--histories", choices=list(HISTORIES), default="random", help="random trials, or a study of ours"
    )
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--study", type=int, default=0, metavar="N", help="a whole study of N trials per method")
    parser.add_argument("--study-seed", type=int, default=0)
    args = parser.parse_args()
    methods = args.methods.split(",")
    if not set(methods) <= set(METHODS) or (not args.no_speed and methods[0] != "ours"):
        parser.error(f"--methods {args.methods}: some of {', '.join(METHODS)}, with 'ours' first for the speed table")
    import torch

    torch.set_num_threads(1)
    if not args.no_speed:
        sizes = [int(s) for s in args.sizes.split(",")]
        speed(sizes, args.problems.split(","), args.seeds, max(args.suggestions, 2), methods, args.histories)
    if args.study:
        whole_study(args.study, args.problems.split(",")[0], args.study_seed, methods)


if __name__ == "__main__":
    main()
