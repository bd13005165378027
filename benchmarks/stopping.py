"""Stopping a study in time: where RegretBoundStopper stops, the trials it saves, and the regret it costs.

    nice -n 10 python benchmarks/stopping.py                       # 4 tasks x 2 seeds x 60 trials, ~12 min here
    python benchmarks/stopping.py --tasks branin --seeds 1 --budget 30 --no-write   # quick look
    nice python benchmarks/stopping.py --budget 100 --seeds 5 --runs benchmarks/out/stopping_100.jsonl
    nice python benchmarks/stopping.py --budget 100 --seeds 3 --record-only --runs benchmarks/out/stopping_100_trials.jsonl
        # trials only (parameters, repeats), for benchmarks/stopping_replay.py to recompute bounds on
    ... --first-seed 3 --seeds 2 ...     # seeds 3 and 4 (a hold-out set, into another --runs file)

With ``--runs FILE`` each finished run is appended to FILE as one JSON line, and a rerun with the same
budget, repeats and min_trials skips the runs it already holds: a long run can be stopped and
continued, and the report is always written from every run in the file that the arguments ask for.

Each run is a lightning_hpo Study with its default GPSampler, driven by ask / tell for the full budget.
Every evaluation is repeated ``--repeats`` times (as ``Tuner(repeats=r)`` or cross-validation would):
the study is told the mean, and the trial carries the standard deviation of the repeats as
``attrs["value_spread"]``, the noise the stopper compares its regret bound with. After each trial
from ``min_trials`` on, the stopper is asked (it reads only the trials so far, so asking it during
the full run is the same as stopping there); the first yes is where the study would have stopped.

Per run: the trial it stops at, the share of the budget saved, and the regret it cost: the noiseless
value of the best-observed trial at the stop minus that of the best-observed trial after the full
budget (what a user would pick either way), against the evaluation noise (the standard deviation of
one evaluation's value, the noise level below). Tasks and their noise:

* branin, hartmann6 (benchmarks/tasks): deterministic; Gaussian noise of a stated sd added to each repeat.
* hpolib_parkinsons (tabular): its own noise (each repeat draws one of the table's training runs).
* lcbench-<task>: YAHPO's LCBench surrogate as a black box, 1 - validation accuracy at epoch 52 (as a
  fraction), read as benchmarks/pruning_lcbench.py does; Gaussian noise of a stated sd added.

Figures go to benchmarks/STOPPING.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tasks import build_task  # noqa: E402
from lightning_hpo import NopPruner, RegretBoundStopper, Study  # noqa: E402
from lightning_hpo.trial import VALUE_SPREAD  # noqa: E402

#: Noise sd added to each repeat of a deterministic task (in the task's units).
ADDED_NOISE = {"branin": 1.0, "hartmann6": 0.05, "lcbench-189906": 0.005}
DEFAULT_TASKS = ["branin", "hartmann6", "hpolib_parkinsons", "lcbench-189906"]
RESULTS = Path(__file__).resolve().parent / "STOPPING.md"

# (noisy value, true value) of one evaluation of a configuration.
Evaluate = Callable[[Mapping[str, Any], np.random.Generator], tuple[float, float]]


@dataclass(frozen=True)
class Problem:
    space: Mapping[str, Any]
    evaluate: Evaluate
    noise: str  # how the noise arises, in words


def problem(name: str, seed: int) -> Problem:
    if name.startswith("lcbench-"):
        return _lcbench(name.split("-", 1)[1])
    task = build_task(name)
    objective = task.make_objective(seed)
    added = ADDED_NOISE.get(name, 0.0)

    def evaluate(params: Mapping[str, Any], rng: np.random.Generator) -> tuple[float, float]:
        result = objective(params)
        return result.observed + added * float(rng.normal()), result.true

    noise = f"added N(0, {added}^2)" if added else "the task's own (one training run drawn per repeat)"
    return Problem(task.space, evaluate, noise)


def _lcbench(task_id: str) -> Problem:
    from pruning_lcbench import DATA, EPOCHS, SPACE, Surrogate

    surrogate = Surrogate(DATA)
    added = ADDED_NOISE.get(f"lcbench-{task_id}", 0.005)

    def evaluate(params: Mapping[str, Any], rng: np.random.Generator) -> tuple[float, float]:
        accuracy = surrogate.curves(task_id, [dict(params)])[0][EPOCHS - 1][1] / 100.0
        true = 1.0 - accuracy
        return true + added * float(rng.normal()), true

    return Problem(dict(SPACE), evaluate, f"added N(0, {added}^2) to 1 - accuracy")


#: Other stopping rules replayed from each run's recorded bounds: (scale, patience) stops once the
#: regret bound was below scale x the measured noise at `patience` checks in a row ((1, 1): the
#: stopper's own rule). A run records the bound after every trial from min_trials on, until every
#: rule has decided.
RULES = ((1.0, 1), (0.5, 1), (0.25, 1), (1.0, 3), (1.0, 5), (0.5, 3))


@dataclass(frozen=True)
class Run:
    task: str
    seed: int
    stop_at: int | None  # trials when the stopper first said stop (None: never within the budget)
    regret_cost: float  # true value of the best-observed trial at the stop minus after the full budget
    noise_sd: float  # sd of one trial's value (the mean of the repeats)
    spread: float  # median spread over the repeats, what the stopper compared with
    seconds: float
    observed: list[float] = field(default_factory=list)  # each trial's value as told (the mean of the repeats)
    trues: list[float] = field(default_factory=list)  # each trial's noiseless value
    checks: list[tuple[int, float, float]] = field(default_factory=list)  # (trials, regret bound, noise)
    # Each trial's parameters and its repeats' values: enough to recompute any bound offline (replay).
    params: list[dict[str, Any]] = field(default_factory=list)
    repeat_values: list[list[float]] = field(default_factory=list)

    def stop_under(self, scale: float, patience: int) -> int | None:
        """Where the study would stop under the rule (scale, patience) of :data:`RULES`."""
        below = 0
        for n, bound, noise in self.checks:
            below = below + 1 if bound < scale * noise else 0
            if below >= patience:
                return n
        return None

    def cost_under(self, scale: float, patience: int) -> float:
        budget = len(self.observed)
        stop = self.stop_under(scale, patience) or budget
        return _true_of_best(self.observed, self.trues, stop) - _true_of_best(self.observed, self.trues, budget)


def run(name: str, seed: int, budget: int, repeats: int, min_trials: int, *, checks: bool = True) -> Run:
    """One study over the full budget; with ``checks=False`` the stopper is never asked (the run only
    records its trials, for :mod:`stopping_replay` to recompute bounds on; ``stop_at`` is then None)."""
    started = time.perf_counter()
    prob = problem(name, seed)
    rng = np.random.default_rng(seed + 1000)
    study = Study(
        f"{name}-{seed}", search_space=prob.space, mode="min", storage=":memory:", seed=seed, pruner=NopPruner()
    )
    stopper = RegretBoundStopper(min_trials=min_trials, seed=seed)
    recorded: list[tuple[int, float, float]] = []
    trues, observed, spreads, params, repeat_values = [], [], [], [], []
    for number in range(budget):
        trial = study.ask()
        draws = [prob.evaluate(trial.params, rng) for _ in range(repeats)]
        values = [d[0] for d in draws]
        params.append(dict(trial.params))
        repeat_values.append(values)
        spread = statistics.stdev(values)
        study.storage.update_trial(trial.id, attrs={VALUE_SPREAD: spread})
        study.tell(trial, statistics.mean(values))
        observed.append(statistics.mean(values))
        trues.append(draws[0][1])
        spreads.append(spread)
        if checks and number + 1 >= min_trials and not _every_rule_decided(recorded):
            check = stopper.measure(study)  # what stopper.evaluate compares
            recorded.append((number + 1, check.regret_bound, check.noise))
    study.storage.close()
    stop_at = next((n for n, bound, noise in recorded if bound < noise), None)
    cost = _true_of_best(observed, trues, stop_at or budget) - _true_of_best(observed, trues, budget)
    noise_sd = statistics.median(spreads) / math.sqrt(repeats)
    seconds = time.perf_counter() - started
    return Run(
        name,
        seed,
        stop_at,
        cost,
        noise_sd,
        statistics.median(spreads),
        seconds,
        observed,
        trues,
        recorded,
        params,
        repeat_values,
    )


def _every_rule_decided(checks: list[tuple[int, float, float]]) -> bool:
    probe = Run("", 0, None, 0.0, 0.0, 0.0, 0.0, checks=checks)
    return all(probe.stop_under(scale, patience) is not None for scale, patience in RULES)


def _in_noise(r: Run) -> float:
    return _ratio(r.regret_cost, r.noise_sd)


def _ratio(cost: float, noise: float) -> float:
    """A regret cost in units of the noise (a task whose repeats never differ has none: 0 or inf)."""
    if noise > 0:
        return cost / noise
    return 0.0 if cost <= 0 else math.inf


def _true_of_best(observed: list[float], trues: list[float], n: int) -> float:
    best = min(range(n), key=lambda i: observed[i])
    return trues[best]


def report(runs: list[Run], budget: int, repeats: int, min_trials: int, noises: dict[str, str]) -> str:
    lines = [
        "| task | noise | seed | stops at | trials saved | regret cost | noise sd of a value | cost / noise sd |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        stop = r.stop_at if r.stop_at is not None else f"never ({budget})"
        saved = 1.0 - (r.stop_at or budget) / budget
        lines.append(
            f"| {r.task} | {noises[r.task]} | {r.seed} | {stop} | {saved:.0%} | {r.regret_cost:.4g} | "
            f"{r.noise_sd:.4g} | {_in_noise(r):.2f} |"
        )
    saved = [1.0 - (r.stop_at or budget) / budget for r in runs]
    within = sum(r.regret_cost <= r.noise_sd for r in runs)
    summary = (
        f"\nOver {len(runs)} runs: mean share of trials saved {statistics.mean(saved):.0%} "
        f"(median {statistics.median(saved):.0%}); regret cost within the noise sd of a value in {within} of "
        f"{len(runs)} runs; mean cost / noise sd {statistics.mean(_in_noise(r) for r in runs):.2f}. "
        f"Wall time {sum(r.seconds for r in runs) / 60:.1f} min."
    )
    head = (
        "# Stopping a study in time: RegretBoundStopper\n\n"
        f"Generated by `benchmarks/stopping.py` (budget {budget} trials, {repeats} repeats per evaluation, "
        f"min_trials={min_trials}, GPSampler through Study ask/tell). Regret cost: noiseless value of the "
        "best-observed trial when the stopper first says stop, minus that of the best-observed trial after "
        "the full budget (0: stopping lost nothing). Noise sd of a value: the median spread of the repeats "
        "over sqrt(repeats), the noise of the mean the study is told.\n\n"
    )
    return head + "\n".join(lines) + summary + "\n" + _scales_table(runs)


def _scales_table(runs: list[Run]) -> str:
    """Every recorded run again under the other stopping rules of :data:`RULES`."""
    recorded = [r for r in runs if r.checks]
    if not recorded:
        return ""
    lines = [
        f"\n## Other rules ({len(recorded)} runs that recorded their regret bound at every trial)\n",
        "Stop once the regret bound was below scale x the measured noise at `patience` checks (trials) in a "
        "row; (1, 1) is the stopper's rule. Regret cost within the noise: at most the noise sd of a value "
        "(the mean the study is told) / at most the sd of one evaluation (the spread of the repeats).\n",
        "| scale | patience | mean trials saved | median | runs saved >= 40% | cost within noise sd of a value | "
        "within one evaluation's sd | mean cost / noise sd | worst |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scale, patience in RULES:
        saved = [1.0 - (r.stop_under(scale, patience) or len(r.observed)) / len(r.observed) for r in recorded]
        costs = [r.cost_under(scale, patience) for r in recorded]
        in_noise = [_ratio(c, r.noise_sd) for c, r in zip(costs, recorded, strict=True)]
        lines.append(
            f"| {scale:g} | {patience} | {statistics.mean(saved):.0%} | {statistics.median(saved):.0%} | "
            f"{sum(x >= 0.4 for x in saved)} of {len(saved)} | "
            f"{sum(c <= r.noise_sd for c, r in zip(costs, recorded, strict=True))} of {len(costs)} | "
            f"{sum(c <= r.spread for c, r in zip(costs, recorded, strict=True))} of {len(costs)} | "
            f"{statistics.mean(in_noise):.2f} | {max(in_noise):.2f} |"
        )
    return "\n".join(lines) + "\n"


def _read_runs(path: Path, settings: dict[str, int]) -> dict[tuple[str, int], Run]:
    """The runs in ``path`` made with these settings, by (task, seed)."""
    if not path.exists():
        return {}
    runs = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.pop("settings") == settings:
            runs[(record["task"], record["seed"])] = Run(**record)
    return runs


def _append_run(path: Path, result: Run, settings: dict[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps({**dataclasses.asdict(result), "settings": settings}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first-seed, ..., first-seed + seeds - 1 (a hold-out set)"
    )
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-trials", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only; leave STOPPING.md alone")
    parser.add_argument("--runs", type=Path, help="JSON-lines file of finished runs: appended to, and reused")
    parser.add_argument(
        "--record-only",
        action="store_true",
        help="never ask the stopper: record each run's trials (parameters, repeats) for stopping_replay.py",
    )
    args = parser.parse_args(argv)
    settings = {"budget": args.budget, "repeats": args.repeats, "min_trials": args.min_trials}
    if args.record_only:
        settings["record_only"] = 1
    done = _read_runs(args.runs, settings) if args.runs else {}
    runs, noises = [], {}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    order = [(seed, name) for seed in seeds for name in args.tasks]  # seed 0 of every task first
    for seed, name in order:
        noises.setdefault(name, problem(name, 0).noise)
        result = done.get((name, seed))
        if result is None:
            result = run(name, seed, args.budget, args.repeats, args.min_trials, checks=not args.record_only)
            if args.runs:
                _append_run(args.runs, result, settings)
        print(f"{name} seed {seed}: stops at {result.stop_at}, {result.seconds:.0f} s", flush=True)
        runs.append(result)
    if args.record_only:
        print(f"{len(runs)} runs recorded; replay them with benchmarks/stopping_replay.py --runs {args.runs}")
        return 0
    text = report(runs, args.budget, args.repeats, args.min_trials, noises)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
