"""GPSampler against Optuna's GPSampler, in one run: time per suggestion and regret.

A quick engineering check of the sampler (the full comparison is the benchmark suite):

* **speed**: median milliseconds per suggestion with 50 trials of history (the suggestions of
  trials 51-60 of each Hartmann6 run below) and with 200 (ten suggestions after the same 200
  random trials, fed to both samplers);
* **regret** at 50 trials, median and quartiles over the seeds, on Hartmann6, Branin, a mixed
  float/log/int/categorical function and an all-categorical/ordinal table, for lightning_hpo's
  GPSampler, Optuna's GPSampler and TPESampler, and random search.

Run from the repository root (needs the ``benchmarks`` extra: optuna, greenlet)::

    python benchmarks/gp_speed.py              # 5 seeds
    python benchmarks/gp_speed.py --seeds 2 --tasks hartmann6 --methods ours,optuna_gp
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.methods import optuna_distributions  # noqa: E402
from lightning_hpo import Categorical, Float, Int, NopPruner, RandomSampler, Study  # noqa: E402
from lightning_hpo.samplers.gp import GPSampler  # noqa: E402
from lightning_hpo.space import Domain  # noqa: E402

Objective = Callable[[Mapping[str, Any]], float]
TRIALS = 50
TIMED_AFTER = 10  # suggestions timed once the history holds TRIALS trials


# -- tasks ---------------------------------------------------------------------------------------


def _botorch_task(name: str, **kwargs: Any) -> tuple[dict[str, Domain], Objective, float]:
    import torch
    from botorch import test_functions

    function = getattr(test_functions, name)(**kwargs)
    names = [f"x{i}" for i in range(function.dim)]
    space: dict[str, Domain] = {n: Float(lo, hi) for n, lo, hi in zip(names, *function.bounds.tolist())}

    def objective(params: Mapping[str, Any]) -> float:
        return float(function.evaluate_true(torch.tensor([[params[n] for n in names]], dtype=torch.float64)))

    return space, objective, float(function.optimal_value)


def _mixed_task() -> tuple[dict[str, Domain], Objective, float]:
    """Each category moves the floats' optimum; the best lr depends on depth; ints optimal inside."""
    space: dict[str, Domain] = {
        "a": Float(0.0, 1.0),
        "b": Float(0.0, 1.0),
        "lr": Float(1e-5, 1.0, log=True),
        "depth": Int(1, 10),
        "width": Int(4, 1024, log=True),
        "kind": Categorical(["p", "q", "r"]),
    }
    centres = {"p": (0.2, 0.7, 0.3), "q": (0.8, 0.2, 0.0), "r": (0.5, 0.5, 0.6)}

    def objective(params: Mapping[str, Any]) -> float:
        ca, cb, floor = centres[params["kind"]]
        return (
            floor
            + 2.0 * ((params["a"] - ca) ** 2 + (params["b"] - cb) ** 2)
            + 0.3 * (math.log10(params["lr"]) + 2.0 + 0.2 * params["depth"]) ** 2
            + 0.05 * (params["depth"] - 6) ** 2
            + 0.1 * (math.log2(params["width"]) - 6.0) ** 2
        )

    return space, objective, 0.0


def _table_task() -> tuple[dict[str, Domain], Objective, float]:
    """An all-discrete 'tabular' task: 4 ordinal grids and 2 unordered categoricals, with interactions."""
    space: dict[str, Domain] = {
        "batch": Int(0, 3),
        "lr": Int(0, 5),
        "layers": Int(0, 3),
        "dropout": Int(0, 2),
        "activation": Categorical(["relu", "tanh", "gelu"]),
        "schedule": Categorical(["cosine", "constant"]),
    }
    act = {"relu": 0.1, "tanh": 0.3, "gelu": 0.0}
    best_lr = {"relu": 3, "tanh": 1, "gelu": 2}

    def objective(params: Mapping[str, Any]) -> float:
        return (
            act[params["activation"]]
            + 0.08 * (params["lr"] - best_lr[params["activation"]]) ** 2
            + 0.05 * (params["batch"] - 1) ** 2
            + 0.04 * abs(params["layers"] - 2) * (1.5 if params["schedule"] == "constant" else 1.0)
            + 0.03 * params["dropout"] * (params["layers"] == 0)
            + (0.05 if params["schedule"] == "constant" else 0.0)
        )

    return space, objective, 0.0


TASKS: dict[str, Callable[[], tuple[dict[str, Domain], Objective, float]]] = {
    "hartmann6": lambda: _botorch_task("Hartmann", dim=6),
    "branin": lambda: _botorch_task("Branin"),
    "mixed": _mixed_task,
    "table": _table_task,
}


# -- methods -------------------------------------------------------------------------------------


def _run_ours(make_sampler: Callable[[int], Any]) -> Callable[..., tuple[list[float], list[float]]]:
    def run(space: dict[str, Domain], objective: Objective, n: int, seed: int) -> tuple[list[float], list[float]]:
        study = Study("bench", search_space=space, storage=":memory:", sampler=make_sampler(seed), pruner=NopPruner())
        values, seconds = [], []
        for _ in range(n):
            start = time.perf_counter()
            trial = study.ask()
            seconds.append(time.perf_counter() - start)
            values.append(objective(trial.params))
            study.tell(trial, values[-1])
        return values, seconds

    return run


def _run_optuna(sampler_name: str) -> Callable[..., tuple[list[float], list[float]]]:
    def run(space: dict[str, Domain], objective: Objective, n: int, seed: int) -> tuple[list[float], list[float]]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = optuna_distributions(space)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = optuna.create_study(sampler=getattr(optuna.samplers, sampler_name)(seed=seed))
            values, seconds = [], []
            for _ in range(n):
                start = time.perf_counter()
                trial = study.ask(distributions)
                seconds.append(time.perf_counter() - start)
                values.append(objective(trial.params))
                study.tell(trial, values[-1])
        return values, seconds

    return run


METHODS = {
    "ours": _run_ours(lambda seed: GPSampler(seed=seed, device="cpu")),
    "optuna_gp": _run_optuna("GPSampler"),
    "optuna_tpe": _run_optuna("TPESampler"),
    "random": _run_ours(lambda seed: RandomSampler(seed=seed)),
}


# -- measurements --------------------------------------------------------------------------------


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def regret_and_speed(tasks: list[str], methods: list[str], seeds: int) -> dict[str, list[float]]:
    """Print the regret table; return the per-suggestion seconds with TRIALS of history, by method."""
    timed: dict[str, list[float]] = {m: [] for m in methods}
    print(f"\nSimple regret after {TRIALS} trials: median [q1, q3] over {seeds} seeds")
    print("| task | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for task in tasks:
        space, objective, optimum = TASKS[task]()
        cells = []
        for method in methods:
            n = TRIALS + TIMED_AFTER if task == "hartmann6" else TRIALS
            regrets = []
            for seed in range(seeds):
                values, seconds = METHODS[method](space, objective, n, seed)
                regrets.append(min(values[:TRIALS]) - optimum)
                if task == "hartmann6":
                    timed[method] += seconds[TRIALS:]
            q1, q2, q3 = _quartiles(regrets)
            cells.append(f"{q2:.4f} [{q1:.4f}, {q3:.4f}]")
        print(f"| {task} | " + " | ".join(cells) + " |", flush=True)
    return timed


def speed_at(history: int, methods: list[str], repeats: int = TIMED_AFTER) -> dict[str, list[float]]:
    """Seconds per suggestion after the same ``history`` random Hartmann6 trials, for the GP methods."""
    import optuna

    space, objective, _ = TASKS["hartmann6"]()
    random_study = Study("history", search_space=space, storage=":memory:", sampler=RandomSampler(seed=0))
    random_study.optimize(objective, n_trials=history)
    past = [(t.params, t.value) for t in random_study.trials]
    seconds: dict[str, list[float]] = {}
    if "ours" in methods:
        study = Study("speed", search_space=space, storage=":memory:", sampler=GPSampler(seed=0, device="cpu"))
        for params, value in past:
            study.tell(study.ask(params), value)
        seconds["ours"] = []
        for _ in range(repeats):
            start = time.perf_counter()
            trial = study.ask()
            seconds["ours"].append(time.perf_counter() - start)
            study.tell(trial, objective(trial.params))
    if "optuna_gp" in methods:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = optuna_distributions(space)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ostudy = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
            ostudy.add_trials(
                [optuna.trial.create_trial(params=p, distributions=distributions, value=v) for p, v in past]
            )
            seconds["optuna_gp"] = []
            for _ in range(repeats):
                start = time.perf_counter()
                trial = ostudy.ask(distributions)
                seconds["optuna_gp"].append(time.perf_counter() - start)
                ostudy.tell(trial, objective(trial.params))
    return seconds


def _print_speed(label: str, seconds: dict[str, list[float]]) -> None:
    medians = {m: statistics.median(s) * 1000 for m, s in seconds.items() if s}
    parts = [f"{m} {ms:.0f} ms" for m, ms in medians.items()]
    if "ours" in medians and "optuna_gp" in medians:
        parts.append(f"ratio ours/optuna_gp {medians['ours'] / medians['optuna_gp']:.2f}")
    print(f"{label}: " + ", ".join(parts), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--no-speed-200", action="store_true", help="skip the 200-trial timing")
    args = parser.parse_args()
    tasks, methods = args.tasks.split(","), args.methods.split(",")
    timed = regret_and_speed(tasks, methods, args.seeds)
    print()
    if "hartmann6" in tasks:
        _print_speed(f"Hartmann6, per suggestion with {TRIALS}-{TRIALS + TIMED_AFTER - 1} trials of history", timed)
    if not args.no_speed_200:
        _print_speed("Hartmann6, per suggestion with 200-209 trials of history", speed_at(200, methods))


if __name__ == "__main__":
    main()
