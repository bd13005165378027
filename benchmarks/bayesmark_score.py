"""The NeurIPS 2020 BBO challenge's score of the cached runs of ``--tasks bayesmark``.

    python -m benchmarks.bayesmark_score --out benchmarks/out/bayesmark --seeds 10 --report-at 10,20,30
    python -m benchmarks.bayesmark_score --samplers ours,hebo --first-seed 1 --seeds 1

A run's value after ``t`` evaluations is bayesmark's normalized mean: ``clip((best_so_far - best) /
(clip - best), -1, 1)`` with the problem's ``best`` and ``clip`` of the challenge's baseline
(``benchmarks/tasks/bayesmark.py``); 0 is the estimated optimum, 1 random search's median first
evaluation. The score is ``100 * (1 - that value)`` averaged over seeds and then problems, as the
challenge's leaderboard averaged it. The challenge's own random search (its baseline's mean curve,
clipped at ``clip``) is printed beside: our random search should score near it when the problems
are reproduced faithfully. Paired tests are Wilcoxon's over (problem, seed), as the suite's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.aggregate import _wilcoxon, signed_rank_direction
from benchmarks.runner import ResultCache
from benchmarks.tasks.bayesmark import BAYESMARK_TASKS, baseline

__all__ = ["normalized", "random_baseline_score", "score_section"]

HERE = Path(__file__).resolve().parent


def normalized(observed: Sequence[float], problem: str, budget: int) -> float:
    """bayesmark's normalized value of a run after ``budget`` evaluations (0 optimum, 1 clip)."""
    reference = baseline()[problem]
    best, clip = reference["best"], reference["clip"]
    value = (min(observed[:budget]) - best) / (clip - best)
    return min(max(value, -1.0), 1.0)


def random_baseline_score(problems: Sequence[str], budget: int) -> float:
    """The challenge's random search's score after ``budget`` evaluations, from its baseline."""
    values = []
    for problem in problems:
        reference = baseline()[problem]
        best, clip = reference["best"], reference["clip"]
        values.append((reference["random_mean"][budget - 1] - best) / (clip - best))
    return 100.0 * (1.0 - statistics.fmean(values))


def _runs(cache: ResultCache, method: str, seeds: Sequence[int], budget: int) -> dict[tuple[str, int], list[float]]:
    """(problem, seed) -> the observed values of the method's cached runs reaching ``budget``."""
    runs = {}
    for task in BAYESMARK_TASKS:
        for record in cache.records("runs", task, method, seeds, budget):
            runs[task.removeprefix("bm_"), record["seed"]] = record["observed"]
    return runs


def _score(values: dict[tuple[str, int], float], problems: Sequence[str]) -> float:
    per_problem = [statistics.fmean(v for (p, _), v in values.items() if p == problem) for problem in problems]
    return 100.0 * (1.0 - statistics.fmean(per_problem))


def score_section(cache: ResultCache, methods: Sequence[str], seeds: Sequence[int], budgets: Sequence[int]) -> str:
    """A markdown section: the score of each method per budget, the paired tests against the
    first method, and the score per model at the last budget. Problems count only where every
    method ran every seed."""
    lines = []
    runs = {m: _runs(cache, m, seeds, min(budgets)) for m in methods}  # read once, scored at each budget
    by_budget = {}
    for budget in budgets:
        values = {
            m: {
                key: normalized(observed, key[0], budget)
                for key, observed in runs[m].items()
                if len(observed) >= budget
            }
            for m in methods
        }
        keys = set.intersection(*(set(v) for v in values.values()))
        problems = sorted({p for p, s in keys if all((p, seed) in keys for seed in seeds)})
        keys = {(p, s) for p in problems for s in seeds}
        if not problems:
            raise ValueError(
                f"no problem has a run of every method ({', '.join(methods)}) at every seed ({', '.join(map(str, seeds))})"
                f" reaching {budget} evaluations in the cache: run them first, or score other seeds"
            )
        by_budget[budget] = ({m: {k: values[m][k] for k in keys} for m in methods}, problems)
    last = budgets[-1]
    lines.append(f"| method | {' | '.join(f'score after {b}' for b in budgets)} |")
    lines.append("|---|" + "---|" * len(budgets))
    for method in methods:
        cells = [f"{_score(by_budget[b][0][method], by_budget[b][1]):.2f}" for b in budgets]
        lines.append(f"| {method} | {' | '.join(cells)} |")
    cells = [f"{random_baseline_score(by_budget[b][1], b):.2f}" for b in budgets]
    lines.append(f"| the challenge's random search (its baseline) | {' | '.join(cells)} |")
    problems = by_budget[last][1]
    lines.append("")
    lines.append(
        f"{len(problems)} problems x {len(seeds)} seeds. Paired against {methods[0]} after {last} evaluations:"
    )
    lines.append("")
    lines.append("| method | pairs lower (better) / higher | Wilcoxon p | leaning |")
    lines.append("|---|---|---|---|")
    ours = by_budget[last][0][methods[0]]
    keys = sorted(ours)
    for method in methods[1:]:
        other = by_budget[last][0][method]
        a, b = [ours[k] for k in keys], [other[k] for k in keys]
        better = sum(x < y for x, y in zip(a, b))
        worse = sum(x > y for x, y in zip(a, b))
        # Lower normalized values are better: the test reads ours as larger when it is worse.
        direction = -signed_rank_direction(a, b)
        leaning = {1: f"{methods[0]} ahead", -1: f"{method} ahead", 0: "level"}[direction]
        lines.append(f"| {method} | {better} / {worse} | {_wilcoxon(a, b):.2g} | {leaning} |")
    lines.append("")
    models = sorted({p.split("_")[0] for p in problems})
    lines.append(f"Score per model after {last} evaluations (12 problems each, fewer where runs are missing):")
    lines.append("")
    lines.append(f"| model | {' | '.join(methods)} |")
    lines.append("|---|" + "---|" * len(methods))
    for model in models:
        subset = [p for p in problems if p.split("_")[0] == model]
        cells = [f"{_score(by_budget[last][0][m], subset):.2f}" for m in methods]
        lines.append(f"| {model} ({len(subset)}) | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "out" / "bayesmark", help="the suite's cache folder")
    parser.add_argument("--samplers", default="ours,optuna_gp,optuna_tpe,lhpo_random", help="methods, ours first")
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds: FIRST..FIRST+N-1")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="the first seed (e.g. 1 with --seeds 1: a seed run after the others)"
    )
    parser.add_argument("--report-at", default="10,20,30", help="budgets, comma-separated")
    args = parser.parse_args(argv)
    if args.first_seed < 0:
        parser.error(f"--first-seed must be 0 or more, not {args.first_seed}")
    from benchmarks.methods import resolve_methods

    methods = [m.name for m in resolve_methods(args.samplers.split(","))]
    budgets = [int(b) for b in args.report_at.split(",")]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    try:
        print(score_section(ResultCache(args.out), methods, seeds, budgets))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
