"""GPSampler at scale: time per suggestion with hundreds of trials of history, against Optuna's GP.

* **speed**: for each history size (50, 200, 500, 1000 by default), task (Hartmann6; a mixed
  float/log/int/categorical space) and seed, the same random history is fed to lightning_hpo's
  GPSampler and to Optuna's GPSampler, and each then makes ``--suggestions`` suggestions in a row,
  every one told before the next. Printed per size: the first suggestion of a fresh sampler
  (which fits the GP's hyperparameters from scratch) and the median of the following ones (ours
  reuses the last fit until the history grows by a tenth; Optuna's refits from its last fit), as
  medians over tasks and seeds, and their ratio ours/Optuna.
* **quality** (``--quality``): the large-history shortcuts (hyperparameters fitted to a subset,
  the incumbent candidates pre-selected by posterior mean) against the same sampler without them,
  in one run: a Hartmann6 study starts from ``--quality-history`` random trials and continues
  with ``--quality-trials`` GP trials; the regret of the best GP trial, per seed.
  ``--quality-without thinning`` lifts only the even thinning of the fit past 1000 observations
  (the other shortcuts stay in both), which is what a history past 1000 tests;
  ``--quality-without closed_form`` fits through GPyTorch's own log density and kernels at every
  size (the same model to rounding: its seconds are what it measures); ``kernel_closed_form``
  only through the kernels' autograd gradient.
* **whole study** (``--study N``): a study of N trials run from nothing, the GP choosing every
  trial after its own start, in an SQLite file as a user's study is: the time of every ask
  (storage reads included), summed and by stretch of the study, and the best value's regret at
  the end. ``--study-methods`` picks ours, Optuna's or both, one after the other (a process for
  each uses two cores), or ours without one of the shortcuts (``ours_without_closed_form``...).
* ``--profile N``: where one suggestion's time goes with N trials of history (cProfile, top lines).

Torch runs on one thread, as in the suite. Run from the repository root (needs optuna)::

    nice -n 10 python benchmarks/gp_scale.py                    # speed, 3 seeds
    nice -n 10 python benchmarks/gp_scale.py --sizes 1000 --seeds 1 --tasks hartmann6
    nice -n 10 python benchmarks/gp_scale.py --no-speed --quality --seeds 3
    nice -n 10 python benchmarks/gp_scale.py --no-speed --quality --quality-history 1500 --quality-without thinning
    nice -n 10 python benchmarks/gp_scale.py --no-speed --quality --quality-history 1000 --quality-without closed_form
    nice -n 10 python benchmarks/gp_scale.py --no-speed --profile 1000
    nice -n 10 python benchmarks/gp_scale.py --no-speed --study 1000 --study-methods ours
    nice -n 10 python benchmarks/gp_scale.py --no-speed --study 1000 --study-methods ours_without_closed_form
    nice -n 10 python benchmarks/gp_scale.py --no-speed --study 1000 --tasks mixed --study-methods ours,ours_without_kernel_closed_form
    python benchmarks/gp_scale.py --device cuda --sizes 200,500,1000 --seeds 1   # on a GPU machine
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gp_speed import TASKS  # noqa: E402
from benchmarks.methods import optuna_distributions  # noqa: E402
from lightning_hpo import NopPruner, RandomSampler, Study  # noqa: E402
from lightning_hpo.samplers import _gp_model, _gp_nei, gp  # noqa: E402
from lightning_hpo.samplers.gp import GPSampler  # noqa: E402


def random_history(task: str, n: int, seed: int) -> list[tuple[dict[str, Any], float]]:
    space, objective, _ = TASKS[task]()
    study = Study("history", search_space=space, storage=":memory:", sampler=RandomSampler(seed=seed))
    study.optimize(objective, n_trials=n)
    return [(t.params, t.value) for t in study.trials]


#: Where our GP runs (``--device``); Optuna's GPSampler runs on the CPU.
DEVICE = "cpu"


def ours_with(task: str, past: list[tuple[dict[str, Any], float]], seed: int) -> Study:
    space, _, _ = TASKS[task]()
    sampler = GPSampler(seed=seed, device=DEVICE)
    study = Study("scale", search_space=space, storage=":memory:", sampler=sampler, pruner=NopPruner())
    for params, value in past:
        study.add_trial(params, value)
    return study


def timed_asks(
    ask: Callable[[], Any], tell: Callable[[Any, float], Any], objective: Callable[..., float], k: int, label: str = ""
) -> list[float]:
    """The seconds of each of ``k`` asks in a row, every trial told before the next ask; with a
    ``label``, a progress line every 100 trials."""
    seconds = []
    for number in range(k):
        start = time.perf_counter()
        trial = ask()
        seconds.append(time.perf_counter() - start)
        tell(trial, objective(trial.params))
        if label and (number + 1) % 100 == 0:
            print(f"  {label}: {number + 1} trials, {sum(seconds):.0f} s of asks so far", flush=True)
    return seconds


def time_ours(task: str, past: list[tuple[dict[str, Any], float]], seed: int, k: int) -> list[float]:
    _, objective, _ = TASKS[task]()
    study = ours_with(task, past, seed)
    return timed_asks(study.ask, study.tell, objective, k)


def time_optuna(task: str, past: list[tuple[dict[str, Any], float]], seed: int, k: int) -> list[float]:
    import optuna

    space, objective, _ = TASKS[task]()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = optuna_distributions(space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed))
        study.add_trials([optuna.trial.create_trial(params=p, distributions=distributions, value=v) for p, v in past])
        return timed_asks(lambda: study.ask(distributions), study.tell, objective, k)


def speed(sizes: list[int], tasks: list[str], seeds: int, k: int) -> None:
    print(f"\nms per suggestion (medians over {len(tasks)} tasks x {seeds} seeds); first: a fresh sampler's fit")
    print("| trials of history | ours first | Optuna first | ours next | Optuna next | ratio first | ratio next |")
    print("|---|---|---|---|---|---|---|")
    warm_up = random_history("hartmann6", 12, 0)  # imports BoTorch and Optuna's GP outside the timings
    time_ours("hartmann6", warm_up, 0, 1), time_optuna("hartmann6", warm_up, 0, 1)
    for n in sizes:
        first: dict[str, list[float]] = {"ours": [], "optuna": []}
        after: dict[str, list[float]] = {"ours": [], "optuna": []}
        for task in tasks:
            for seed in range(seeds):
                past = random_history(task, n, seed)
                for name, run in (("ours", time_ours), ("optuna", time_optuna)):
                    seconds = run(task, past, seed, k)
                    first[name].append(seconds[0] * 1000)
                    after[name].append(statistics.median(seconds[1:]) * 1000)
                    print(
                        f"  {task} n={n} seed={seed} {name}: " + " ".join(f"{s * 1000:.0f}" for s in seconds),
                        flush=True,
                    )
        f = {m: statistics.median(v) for m, v in first.items()}
        a = {m: statistics.median(v) for m, v in after.items()}
        print(
            f"| {n} | {f['ours']:.0f} | {f['optuna']:.0f} | {a['ours']:.0f} | {a['optuna']:.0f} "
            f"| {f['ours'] / f['optuna']:.2f} | {a['ours'] / a['optuna']:.2f} |",
            flush=True,
        )


@contextlib.contextmanager
def without_shortcuts() -> Iterator[None]:
    """The sampler as it was before the large-history shortcuts: every observation fitted, from the
    priors' centres, every observation a candidate incumbent."""
    saved = gp.MAX_FITTED_OBSERVATIONS, _gp_nei.MAX_PRUNE_CANDIDATES, _gp_model.COARSE_FIT_ABOVE
    gp.MAX_FITTED_OBSERVATIONS = _gp_nei.MAX_PRUNE_CANDIDATES = _gp_model.COARSE_FIT_ABOVE = 10**9
    try:
        yield
    finally:
        gp.MAX_FITTED_OBSERVATIONS, _gp_nei.MAX_PRUNE_CANDIDATES, _gp_model.COARSE_FIT_ABOVE = saved


def without_thinning() -> contextlib.AbstractContextManager[Any]:
    """Every observation fitted however many there are; the other shortcuts as they are."""
    return mock.patch.object(gp, "MAX_FITTED_OBSERVATIONS", 10**9)


def without_closed_form() -> contextlib.AbstractContextManager[Any]:
    """Every fit through GPyTorch's own log density, kernels and gradient, however large; the rest as
    it is."""
    return mock.patch.object(_gp_model, "CLOSED_FORM_FIT_ABOVE", 10**9)


def without_kernel_closed_form() -> contextlib.AbstractContextManager[Any]:
    """Large fits with the log density in closed form but the kernels' gradient by autograd."""
    return mock.patch.object(_gp_model, "closed_form_kernel_gradients", lambda model: contextlib.nullcontext())


WITHOUT = {
    "shortcuts": without_shortcuts,
    "thinning": without_thinning,
    "closed_form": without_closed_form,
    "kernel_closed_form": without_kernel_closed_form,
}


def quality(history: int, trials: int, seeds: int, without: str = "shortcuts") -> None:
    _, objective, optimum = TASKS["hartmann6"]()
    print(f"\nHartmann6: regret of the best of {trials} GP trials after {history} random ones")
    print(f"| seed | as it is | without {without} | seconds as it is | seconds without |")
    print("|---|---|---|---|---|")
    for seed in range(seeds):
        past = random_history("hartmann6", history, seed)
        cells = []
        for variant in (contextlib.nullcontext, WITHOUT[without]):
            study = ours_with("hartmann6", past, seed)
            start = time.perf_counter()
            with variant():
                study.optimize(objective, n_trials=history + trials)
            best = min(t.value for t in study.trials[history:])
            cells.append((best - optimum, time.perf_counter() - start))
        print(f"| {seed} | {cells[0][0]:.4f} | {cells[1][0]:.4f} | {cells[0][1]:.0f} | {cells[1][1]:.0f} |", flush=True)


def asks_of_ours(task: str, n: int, seed: int, path: Path) -> tuple[list[float], float]:
    """The time of each of the ``n`` asks of a study run from nothing by our GP in SQLite, and the
    best value at the end."""
    space, objective, _ = TASKS[task]()
    sampler = GPSampler(seed=seed, device=DEVICE)
    study = Study("whole", search_space=space, storage=f"sqlite:///{path}", sampler=sampler, pruner=NopPruner())
    seconds = timed_asks(study.ask, study.tell, objective, n, label="ours")
    return seconds, min(t.value for t in study.trials)


def asks_of_optuna(task: str, n: int, seed: int, path: Path) -> tuple[list[float], float]:
    """As :func:`asks_of_ours`, for Optuna's GPSampler on Optuna's SQLite storage."""
    import optuna

    space, objective, _ = TASKS[task]()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = optuna_distributions(space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.GPSampler(seed=seed)
        study = optuna.create_study(storage=f"sqlite:///{path}", sampler=sampler)
        seconds = timed_asks(lambda: study.ask(distributions), study.tell, objective, n, label="optuna")
    return seconds, study.best_value


def asks_of_ours_without(shortcut: str) -> Callable[[str, int, int, Path], tuple[list[float], float]]:
    """:func:`asks_of_ours` with ``WITHOUT[shortcut]`` in force throughout the study."""

    def run(task: str, n: int, seed: int, path: Path) -> tuple[list[float], float]:
        with WITHOUT[shortcut]():
            return asks_of_ours(task, n, seed, path)

    return run


#: The methods of a whole study: ours, ours without one of ``WITHOUT``, Optuna's GP.
STUDY_RUNS = {
    "ours": asks_of_ours,
    **{f"ours_without_{shortcut}": asks_of_ours_without(shortcut) for shortcut in WITHOUT},
    "optuna": asks_of_optuna,
}


def study_stretches(n: int) -> list[tuple[int, int]]:
    """The stretches of a study of ``n`` trials whose asks a table sums up: 1-25, 26-50, 51-100..."""
    edges = [0, *(25 * 2**k for k in range(8) if 25 * 2**k < n), n]
    return list(zip(edges, edges[1:]))


def print_study_header(stretches: list[tuple[int, int]], last_column: str) -> None:
    header = " | ".join(f"asks {a + 1}-{b}" for a, b in stretches)
    print(f"| method | all asks (s) | {header} | slowest ask | {last_column} |")
    print("|---|---|" + "---|" * len(stretches) + "---|---|")


def print_study_row(method: str, seconds: list[float], stretches: list[tuple[int, int]], last_cell: str) -> None:
    medians = " | ".join(f"{statistics.median(seconds[a:b]) * 1000:.0f}" for a, b in stretches)
    print(f"| {method} | {sum(seconds):.0f} | {medians} | {max(seconds):.1f} s | {last_cell} |", flush=True)


def whole_study(n: int, task: str, seed: int, methods: list[str]) -> None:
    import tempfile

    _, _, optimum = TASKS[task]()
    stretches = study_stretches(n)
    print(f"\n{task}, a study of {n} trials from nothing in SQLite, seed {seed}")
    print_study_header(stretches, "regret at the end")
    for method in methods:
        with tempfile.TemporaryDirectory() as folder:
            seconds, best = STUDY_RUNS[method](task, n, seed, Path(folder) / "study.db")
        print_study_row(method, seconds, stretches, f"{best - optimum:.2e}")
    print("Stretch cells: median ms per ask over those trials.")


def profile(n: int, task: str) -> None:
    _, objective, _ = TASKS[task]()
    study = ours_with(task, random_history(task, n, 0), 0)
    for label in ("first (fits)", "next"):
        profiler = cProfile.Profile()
        profiler.enable()
        trial = study.ask()
        profiler.disable()
        study.tell(trial, objective(trial.params))
        print(f"\n--- {task}, {n} trials of history, {label} suggestion")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,200,500,1000")
    parser.add_argument("--tasks", default="hartmann6,mixed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--suggestions", type=int, default=3, help="timed in a row per history (at least 2)")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--quality-history", type=int, default=400)
    parser.add_argument("--quality-trials", type=int, default=20)
    parser.add_argument("--quality-without", choices=sorted(WITHOUT), default="shortcuts")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--study", type=int, default=0, metavar="N", help="a whole study of N trials")
    parser.add_argument("--study-methods", default="ours,optuna")
    parser.add_argument("--study-seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="where our GP runs, e.g. cuda (Optuna's stays on the CPU)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    import torch

    torch.set_num_threads(1)
    if not args.no_speed:
        speed([int(s) for s in args.sizes.split(",")], args.tasks.split(","), args.seeds, max(args.suggestions, 2))
    if args.quality:
        quality(args.quality_history, args.quality_trials, args.seeds, args.quality_without)
    if args.study:
        methods = args.study_methods.split(",")
        if not set(methods) <= set(STUDY_RUNS):
            parser.error(f"--study-methods {args.study_methods}: name some of {', '.join(STUDY_RUNS)}, comma-separated")
        whole_study(args.study, args.tasks.split(",")[0], args.study_seed, methods)
    if args.profile:
        profile(args.profile, args.tasks.split(",")[0])


if __name__ == "__main__":
    main()
