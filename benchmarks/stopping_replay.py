"""Variants of RegretBoundStopper's bound, recomputed offline from recorded runs of benchmarks/stopping.py.

    nice -n 10 python benchmarks/stopping.py --budget 100 --seeds 3 --record-only \\
        --runs benchmarks/out/stopping_100_trials.jsonl --tasks <tasks>          # the sampler's proposals
    nice -n 10 python benchmarks/stopping_replay.py --runs benchmarks/out/stopping_100_trials.jsonl --every 4
    nice -n 10 python benchmarks/stopping_replay.py --runs <runs> --every 1 --light    # the stopper's bound
        # only, after every trial: the rules that add the best's stagnation or patience, the smooth schedule

The sampler's proposals are the expensive part of a run and do not depend on the stopper (it only
reads the trials), so a recorded run (each trial's parameters and its repeats' values) is replayed
here: at every ``--every``-th trial from ``MIN_TRIALS`` on, the GP is fitted on the trials so far and
the bound's pieces are computed once (the GP with its inferred noise, with the repeats' known noise,
with shortened lengthscales; several confidence parameters; two unit conversions), and each variant
of :data:`VARIANTS` is a rule on those pieces. Pieces are cached per run in ``--cache`` (resumable).
Optuna's EMMR criterion (Ishibashi et al. 2023, ``optuna.terminator.EMMREvaluator`` with Optuna's
``MedianErrorEvaluator`` threshold) is computed on the same prefixes as a comparison.

Per variant: where each run would stop, the share of the budget saved, and the regret it cost (noiseless
value of the best-observed trial at the stop minus that after the full budget), against the noise sd
of a value (the mean of the repeats the study is told) and of one evaluation (the spread of the repeats).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.stopping import _ratio, _true_of_best, problem  # noqa: E402
from lightning_hpo.space import SearchSpace  # noqa: E402
from lightning_hpo.stopping import FULL_BETA_TRIALS, Evidence, _beta, _srinivas_beta  # noqa: E402

MIN_TRIALS = 20
#: Lengthscales multiplied by this for the "short" GP: a rougher function than the fit's, as a crude
#: stand-in for the lengthscale uncertainty the MAP fit ignores.
SHORTER = 0.5


def theorem2_beta(n_params: int, n_trials: int, delta: float = 0.1) -> float:
    """Srinivas et al.'s beta for a continuous domain (Theorem 2, with a = b = r = 1), which grows
    linearly with the number of parameters, divided by 5 as the stopper's."""
    t, d = n_trials, max(n_params, 1)
    return (
        2.0 * math.log(2.0 * math.pi**2 * t**2 / (3.0 * delta))
        + 2.0 * d * math.log(t**2 * d * math.sqrt(math.log(4.0 * d / delta)))
    ) / 5.0


def pieces(
    space: SearchSpace, params: list[dict[str, Any]], repeats: list[list[float]], seed: int, *, light: bool = False
) -> dict[str, float]:
    """The bound's pieces on these trials, in the GP's outcome units (``bound:<model>:<beta>``) and the
    unit conversions (``slope_top``: the stopper's; ``slope_all``: the values' sd). ``light``: only the
    stopper's own bound (its GP, the beta it uses at this many trials) and the smooth schedule's, cheap
    enough to check after every trial."""
    import torch

    n, d = len(params), len(space)
    values = [statistics.mean(r) for r in repeats]
    evidence = Evidence.from_params(space, "min", params, values)
    betas = {"b/5": _srinivas_beta(d, n) / 5.0, "b": _srinivas_beta(d, n), "t2/5": theorem2_beta(d, n)}
    if 1.0 < smooth_divisor(n) < 5.0:  # elsewhere the smooth schedule's bound is "b" or "b/5"
        betas["smooth"] = _srinivas_beta(d, n) / smooth_divisor(n)
    inferred = evidence.fit(seed)
    if light:
        stoppers = "b" if n < FULL_BETA_TRIALS else "b/5"
        betas = {name: beta for name, beta in betas.items() if name in (stoppers, "smooth")}
        models = {"gp": inferred}
    else:
        Yvar = torch.tensor([[statistics.variance(r) / len(r)] for r in repeats], dtype=torch.float64)
        models = {"gp": inferred, "known": evidence.fit(seed, Yvar), "short": _shortened(inferred, SHORTER)}
    out = {
        "slope_top": evidence.units_per_outcome(),
        "slope_all": float(evidence.Y.std()),
        "gp_noise": Evidence.gp_noise(inferred),
        # What the stopper compares with at this check: the median spread of the repeats so far.
        "spread": statistics.median(statistics.stdev(r) for r in repeats),
    }
    for model_name, model in models.items():
        for beta_name, beta in betas.items():
            if model_name == "gp" or beta_name not in ("t2/5", "smooth"):
                out[f"bound:{model_name}:{beta_name}"] = evidence.bound(model, beta, seed)
    return out


def smooth_divisor(n_trials: int, start: int = 20, end: int = 40) -> float:
    """The divisor of Srinivas' beta growing linearly from 1 at ``start`` trials to 5 at ``end``, instead
    of the stopper's step from 1 to 5 at ``FULL_BETA_TRIALS``."""
    return 1.0 + 4.0 * min(max((n_trials - start) / (end - start), 0.0), 1.0)


def _shortened(model: Any, factor: float) -> Any:
    from gpytorch.kernels import MaternKernel

    shorter = copy.deepcopy(model)
    shorter.train()
    for module in shorter.covar_module.modules():
        if isinstance(module, MaternKernel):
            module.lengthscale = module.lengthscale.detach() * factor
    return shorter.eval()


def emmr_curve(space: SearchSpace, params: list[dict[str, Any]], values: list[float], at: list[int], seed: int):
    """Optuna's EMMR at each prefix length of ``at``, and the threshold its MedianErrorEvaluator sets."""
    import optuna
    from optuna.terminator import EMMREvaluator, MedianErrorEvaluator

    from lightning_hpo.samplers.optuna import _distribution

    distributions = {name: _distribution(space[name]) for name in space}
    trials = [
        optuna.trial.create_trial(
            params={k: space[k].to_stored(v) for k, v in p.items()},
            distributions={k: distributions[k] for k in p},
            value=v,
        )
        for p, v in zip(params, values, strict=True)
    ]
    for number, trial in enumerate(trials):
        trial.number = number
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    emmr = EMMREvaluator(seed=seed)
    direction = optuna.study.StudyDirection.MINIMIZE
    threshold = MedianErrorEvaluator(emmr).evaluate(trials, direction)
    return {n: emmr.evaluate(trials[:n], direction) for n in at}, threshold


@dataclass(frozen=True)
class Replayed:
    task: str
    seed: int
    n_params: int
    budget: int
    observed: list[float]
    trues: list[float]
    noise_sd: float  # of a value (the mean of the repeats)
    spread: float  # of one evaluation: the median spread of the repeats, what the stopper compares with
    checks: dict[int, dict[str, float]]  # trials -> pieces
    emmr: dict[int, float]  # empty where not computed (--emmr-seeds)
    emmr_threshold: float | None

    def cost(self, stop: int | None) -> float:
        return _true_of_best(self.observed, self.trues, stop or self.budget) - _true_of_best(
            self.observed, self.trues, self.budget
        )


# A variant: whether to stop at a check (its trials, its pieces, the run), and the fewest trials it may stop at.
Rule = Callable[[int, dict[str, float], Replayed], bool]


def _below(key: str, slope: str | float = "slope_top", scale: float = 1.0) -> Rule:
    """The bound ``key`` converted by the pieces' ``slope``, or by the slope among the best ``slope``
    share of the trials so far, below ``scale`` x the spread the stopper compares with."""
    if isinstance(slope, str):
        return lambda n, p, r: p[key] * p[slope] < scale * p["spread"]
    return lambda n, p, r: p[key] * _slope(tuple(r.observed[:n]), slope) < scale * p["spread"]


@functools.cache
def _slope(observed: tuple[float, ...], share: float) -> float:
    """The stopper's units per outcome among the best ``share`` of these (minimized) values."""
    import torch

    from lightning_hpo.samplers._gp_model import model_outcomes
    from lightning_hpo.stopping import _units_per_outcome

    Y = -torch.tensor(observed, dtype=torch.float64).unsqueeze(-1)
    return _units_per_outcome(Y[:, 0], model_outcomes(Y)[:, 0], share)


def _schedule(early: str, late: str, switch: Callable[[Replayed], int]) -> Rule:
    return lambda n, p, r: _below(early if n < switch(r) else late)(n, p, r)


def _min_trials(run: Replayed) -> int:
    return MIN_TRIALS


def _full_beta_until(switch: int | Callable[[Replayed], int], model: str = "gp") -> tuple[Rule, Callable]:
    """Srinivas' beta undivided before trial ``switch`` (a number, or one per run), divided by 5 from it on."""
    at = switch if callable(switch) else (lambda r: switch)
    return _schedule(f"bound:{model}:b", f"bound:{model}:b/5", at), _min_trials


def _smooth_beta(n: int, p: dict[str, float], r: Replayed) -> bool:
    """The bound with Srinivas' beta divided by :func:`smooth_divisor` (1 -> 5 over trials 20-40)."""
    divisor = smooth_divisor(n)
    key = "bound:gp:b" if divisor <= 1.0 else "bound:gp:b/5" if divisor >= 5.0 else "bound:gp:smooth"
    return _below(key)(n, p, r)


def _stagnant(window: Callable[[int], int], scale: float = 1.0) -> Rule:
    """The best value so far improved by at most ``scale`` x the spread the stopper compares with over the
    last ``window(n)`` trials: evidence the bound ignores, that the search itself has stopped finding better."""

    def rule(n: int, p: dict[str, float], r: Replayed) -> bool:
        k = window(n)
        return n > k and min(r.observed[: n - k]) - min(r.observed[:n]) <= scale * p["spread"]

    return rule


def _patient(rule: Rule, checks: int) -> Rule:
    """``rule`` held at the last ``checks`` checks (trials, with ``--every 1``), this one included."""

    def patient(n: int, p: dict[str, float], r: Replayed) -> bool:
        last = [m for m in sorted(r.checks) if m <= n][-checks:]
        return len(last) == checks and all(rule(m, r.checks[m], r) for m in last)

    return patient


def _both(*rules: Rule) -> Rule:
    return lambda n, p, r: all(rule(n, p, r) for rule in rules)


_STOPPER_NOW = _full_beta_until(30)[0]
_LAST_10 = _stagnant(lambda n: 10)
_LAST_THIRD = _stagnant(lambda n: max(10, n // 3))

VARIANTS: dict[str, tuple[Rule, Callable[[Replayed], int]]] = {
    "stopper before (GP noise, beta/5, top-quarter slope)": (_below("bound:gp:b/5"), _min_trials),
    # The plain trade of saving for regret on the same bound, to tell a better bound from a stricter rule.
    "stopper before, bound < 0.8 x noise": (_below("bound:gp:b/5", scale=0.8), _min_trials),
    "stopper before, bound < 0.6 x noise": (_below("bound:gp:b/5", scale=0.6), _min_trials),
    "undivided beta": (_below("bound:gp:b"), _min_trials),
    # RegretBoundStopper's rule since this replay (FULL_BETA_TRIALS = 30): it stops no run at its first
    # looks, where the others lost the most; a later switch trades more saving for little regret.
    "undivided beta before trial 30, beta/5 after (the stopper now)": _full_beta_until(30),
    "undivided beta before trial 40, beta/5 after": _full_beta_until(40),
    "undivided beta before trial 50, beta/5 after": _full_beta_until(50),
    "known noise; undivided beta before trial 40, beta/5 after": _full_beta_until(40, model="known"),
    "undivided beta before 10 x params trials, beta/5 after": _full_beta_until(lambda r: 10 * r.n_params),
    "beta of Srinivas' Theorem 2 (grows with params) / 5": (_below("bound:gp:t2/5"), _min_trials),
    "known noise from the repeats, beta/5": (_below("bound:known:b/5"), _min_trials),
    "known noise from the repeats, undivided beta": (_below("bound:known:b"), _min_trials),
    "slope: values' overall sd, beta/5": (_below("bound:gp:b/5", "slope_all"), _min_trials),
    "slope among the best half, beta/5": (_below("bound:gp:b/5", 0.5), _min_trials),
    "slope among all trials, beta/5": (_below("bound:gp:b/5", 1.0), _min_trials),
    "slope among all trials, undivided beta": (_below("bound:gp:b", 1.0), _min_trials),
    "lengthscales x0.5, beta/5": (_below("bound:short:b/5"), _min_trials),
    "lengthscales x0.5, undivided beta": (_below("bound:short:b"), _min_trials),
    "min_trials = max(20, 5 x params), beta/5": (_below("bound:gp:b/5"), lambda r: max(MIN_TRIALS, 5 * r.n_params)),
    "min_trials = max(20, 10 x params), beta/5": (_below("bound:gp:b/5"), lambda r: max(MIN_TRIALS, 10 * r.n_params)),
    "min_trials = max(20, 5 x params), undivided beta": (
        _below("bound:gp:b"),
        lambda r: max(MIN_TRIALS, 5 * r.n_params),
    ),
    # The stopper now combined with evidence the bound ignores (the second replay of STOPPING.md): whether
    # the best value still improves, and whether the bound stays below the noise; and the smooth schedule.
    "stopper now + best improved <= noise in the last 10 trials": (_both(_STOPPER_NOW, _LAST_10), _min_trials),
    "stopper now + best improved <= noise in the last 15 trials": (
        _both(_STOPPER_NOW, _stagnant(lambda n: 15)),
        _min_trials,
    ),
    "stopper now + best improved <= noise in the last max(10, t/4)": (
        _both(_STOPPER_NOW, _stagnant(lambda n: max(10, n // 4))),
        _min_trials,
    ),
    "stopper now + best improved <= noise in the last max(10, t/3)": (_both(_STOPPER_NOW, _LAST_THIRD), _min_trials),
    "stopper now + best improved <= noise in the last max(10, t/2)": (
        _both(_STOPPER_NOW, _stagnant(lambda n: max(10, n // 2))),
        _min_trials,
    ),
    "stopper now + best improved <= noise / 2 in the last max(10, t/3)": (
        _both(_STOPPER_NOW, _stagnant(lambda n: max(10, n // 3), scale=0.5)),
        _min_trials,
    ),
    "stopper now, below the noise at the last 3 checks": (_patient(_STOPPER_NOW, 3), _min_trials),
    "stopper now, below the noise at the last 5 checks": (_patient(_STOPPER_NOW, 5), _min_trials),
    "stopper now, below at the last 2 checks + best improved <= noise in the last 10 trials": (
        _both(_patient(_STOPPER_NOW, 2), _LAST_10),
        _min_trials,
    ),
    "stopper now, below at the last 3 checks + best improved <= noise in the last max(10, t/3)": (
        _both(_patient(_STOPPER_NOW, 3), _LAST_THIRD),
        _min_trials,
    ),
    "stopper now, below at the last 5 checks + best improved <= noise in the last max(10, t/3)": (
        _both(_patient(_STOPPER_NOW, 5), _LAST_THIRD),
        _min_trials,
    ),
    "smooth beta (divisor 1 -> 5 over trials 20-40)": (_smooth_beta, _min_trials),
    "smooth beta + best improved <= noise in the last max(10, t/3)": (_both(_smooth_beta, _LAST_THIRD), _min_trials),
    # No bound at all: what the stagnation test does alone, to tell what the bound adds.
    "best improved <= noise in the last max(10, t/3), no bound": (_LAST_THIRD, _min_trials),
}


def stop_of(run: Replayed, rule: Rule, min_trials: Callable[[Replayed], int]) -> int | None:
    return next((n for n, p in sorted(run.checks.items()) if n >= min_trials(run) and rule(n, p, run)), None)


def emmr_stop(run: Replayed) -> int | None:
    return next((n for n, e in sorted(run.emmr.items()) if e < run.emmr_threshold), None)


def table(runs: list[Replayed]) -> str:
    stops = {}
    for name, (rule, min_trials) in VARIANTS.items():
        try:
            stops[name] = [stop_of(r, rule, min_trials) for r in runs]
        except KeyError:  # a piece these runs lack (replayed with --light): the variant is left out
            continue
    if all(r.emmr for r in runs):
        stops["Optuna EMMR (MedianErrorEvaluator threshold)"] = [emmr_stop(r) for r in runs]
    lines = [
        "| variant | mean trials saved | median | runs saved >= 40% | cost within noise sd of a value | "
        "within one evaluation's sd | mean cost / noise sd | worst (cost / noise sd, run, stop) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, at in stops.items():
        saved = [1.0 - (s or r.budget) / r.budget for s, r in zip(at, runs, strict=True)]
        costs = [r.cost(s) for s, r in zip(at, runs, strict=True)]
        ratios = [_ratio(c, r.noise_sd) for c, r in zip(costs, runs, strict=True)]
        worst = max(range(len(runs)), key=lambda i: ratios[i])
        lines.append(
            f"| {name} | {statistics.mean(saved):.0%} | {statistics.median(saved):.0%} | "
            f"{sum(x >= 0.4 for x in saved)} of {len(runs)} | "
            f"{sum(c <= r.noise_sd for c, r in zip(costs, runs, strict=True))} of {len(runs)} | "
            f"{sum(c <= r.spread for c, r in zip(costs, runs, strict=True))} of {len(runs)} | "
            f"{statistics.mean(ratios):.2f} | {ratios[worst]:.2f} ({runs[worst].task} {runs[worst].seed}, "
            f"{at[worst] or 'never'}) |"
        )
    return "\n".join(lines)


def replay(
    record: dict[str, Any], every: int, cached: dict[str, Any] | None, emmr: bool, light: bool = False
) -> tuple[Replayed, dict[str, Any]]:
    space = SearchSpace.coerce(problem(record["task"], 0).space)
    params = record["params"]  # as the trials held them (JSON: choices that are tuples would need converting)
    repeats, budget, seed = record["repeat_values"], len(record["observed"]), record["seed"]
    at = list(range(MIN_TRIALS, budget + 1, every))
    if budget not in at:
        at.append(budget)
    if cached is None:
        started = time.perf_counter()
        checks = {n: pieces(space, params[:n], repeats[:n], seed, light=light) for n in at}
        curve, threshold = emmr_curve(space, params, record["observed"], at, seed) if emmr else ({}, None)
        cached = {
            "checks": checks,
            "emmr": curve,
            "emmr_threshold": threshold,
            "seconds": time.perf_counter() - started,
        }
    run = Replayed(
        record["task"],
        seed,
        len(space),
        budget,
        record["observed"],
        record["trues"],
        record["noise_sd"],
        record["spread"],
        {int(n): p for n, p in cached["checks"].items()},
        {int(n): e for n, e in cached["emmr"].items()},
        cached["emmr_threshold"],
    )
    return run, cached


def stopper_stop(record: dict[str, Any], min_trials: int = MIN_TRIALS) -> int | None:
    """Where RegretBoundStopper (as it is now) stops this recorded run, asked after every trial as
    a study asks it: its bound (:func:`lightning_hpo.stopping.regret_bound`'s steps) against the median
    spread of the repeats so far."""
    space = SearchSpace.coerce(problem(record["task"], 0).space)
    for n in range(min_trials, len(record["observed"]) + 1):
        evidence = Evidence.from_params(space, "min", record["params"][:n], record["observed"][:n])
        bound = evidence.bound(evidence.fit(record["seed"]), _beta(len(space), n), record["seed"])
        spread = statistics.median(statistics.stdev(r) for r in record["repeat_values"][:n])
        if bound * evidence.units_per_outcome() < spread:
            return n
    return None


def every_trial_table(records: list[dict[str, Any]], stops: dict[tuple[str, int], int | None]) -> str:
    """The stopper asked after every trial: where it stops each run, and what it costs."""
    lines = ["| task | seed | stops at | trials saved | cost / noise sd of a value |", "|---|---|---|---|---|"]
    saved, ratios = [], []
    for record in records:
        stop = stops[(record["task"], record["seed"])]
        budget = len(record["observed"])
        cost = _true_of_best(record["observed"], record["trues"], stop or budget) - _true_of_best(
            record["observed"], record["trues"], budget
        )
        saved.append(1.0 - (stop or budget) / budget)
        ratios.append(_ratio(cost, record["noise_sd"]))
        lines.append(
            f"| {record['task']} | {record['seed']} | {stop or 'never'} | {saved[-1]:.0%} | {ratios[-1]:.2f} |"
        )
    lines.append(
        f"\nOver {len(records)} runs: mean trials saved {statistics.mean(saved):.0%} (median "
        f"{statistics.median(saved):.0%}); cost within the noise sd of a value in {sum(x <= 1 for x in ratios)} of "
        f"{len(records)}; mean cost / noise sd {statistics.mean(ratios):.2f}, worst {max(ratios):.2f}."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")  # GPyTorch's numerical notes and Optuna's "experimental", on every check
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="runs recorded by stopping.py --record-only")
    parser.add_argument("--every", type=int, default=4, help="check every k-th trial from min_trials (CPU)")
    parser.add_argument("--cache", type=Path, help="JSON lines of computed pieces (default: next to --runs)")
    parser.add_argument("--only", nargs="*", help="tasks to replay (default: all recorded)")
    parser.add_argument(
        "--every-trial",
        action="store_true",
        help="instead: where the stopper as it is now stops each run, asked after every trial (cached too)",
    )
    parser.add_argument("--cached-only", action="store_true", help="report the runs already replayed; compute nothing")
    parser.add_argument(
        "--light",
        action="store_true",
        help="only the stopper's bound and the smooth schedule's (the variants on other pieces left out, no EMMR): "
        "cheap enough for --every 1",
    )
    parser.add_argument(
        "--emmr-seeds", type=int, default=1, help="compute Optuna's EMMR for seeds below this (it costs the most)"
    )
    args = parser.parse_args(argv)
    if args.every_trial:
        return _every_trial(args)
    suffix = "_light" if args.light else ""
    cache_path = args.cache or args.runs.with_name(args.runs.stem + f"_replay_every{args.every}{suffix}.jsonl")
    cache = {}
    if cache_path.exists():
        for line in cache_path.read_text().splitlines():
            entry = json.loads(line)
            cache[(entry["task"], entry["seed"])] = entry
    runs = []
    for line in args.runs.read_text().splitlines():
        record = json.loads(line)
        if not record.get("params") or (args.only and record["task"] not in args.only):
            continue
        key = (record["task"], record["seed"])
        if args.cached_only and key not in cache:
            continue
        emmr = record["seed"] < args.emmr_seeds and not args.light
        run, computed = replay(record, args.every, cache.get(key), emmr, args.light)
        if key not in cache:
            cache[key] = {"task": key[0], "seed": key[1], **computed}
            with cache_path.open("a") as out:
                out.write(json.dumps(cache[key]) + "\n")
            print(f"{key[0]} seed {key[1]}: replayed in {computed['seconds']:.0f} s", flush=True)
        runs.append(run)
    runs.sort(key=lambda r: (r.seed, r.task))
    print(f"\n{len(runs)} runs, checks every {args.every} trials from {MIN_TRIALS}\n")
    print(table(runs))
    with_emmr = [r for r in runs if r.emmr]
    if with_emmr and len(with_emmr) < len(runs):
        print(f"\nThe {len(with_emmr)} runs with Optuna's EMMR computed:\n")
        print(table(with_emmr))
    return 0


def _every_trial(args: argparse.Namespace) -> int:
    cache_path = args.cache or args.runs.with_name(args.runs.stem + "_stopper_every_trial.jsonl")
    stops = {}
    if cache_path.exists():
        for entry in map(json.loads, cache_path.read_text().splitlines()):
            stops[(entry["task"], entry["seed"])] = entry["stop"]
    records = []
    for record in map(json.loads, args.runs.read_text().splitlines()):
        key = (record["task"], record["seed"])
        if not record.get("params") or (args.only and key[0] not in args.only):
            continue
        if key not in stops:
            if args.cached_only:
                continue
            stops[key] = stopper_stop(record)
            with cache_path.open("a") as out:
                out.write(json.dumps({"task": key[0], "seed": key[1], "stop": stops[key]}) + "\n")
            print(f"{key[0]} seed {key[1]}: stops at {stops[key]}", flush=True)
        records.append(record)
    records.sort(key=lambda r: (r["seed"], r["task"]))
    print(every_trial_table(records, stops))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
