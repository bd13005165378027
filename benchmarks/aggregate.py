"""Across-task summaries of a suite: normalized score, mean rank and paired tests.

Regrets of different tasks have different units, so the suite is aggregated on two unit-free
figures, both taken after the budget, per (task, seed):

* **normalized score** ``1 - regret / (typical - reference)``: 1 is the task's reference (its
  optimum or the best value any method found), 0 the *typical* value, the median of the true values
  random search met on the task (of every value any method met when random search did not run), so
  scores compare with a random configuration rather than with the worst one;
* **rank** among the methods (1 is best; ties share the mean rank).

Paired tests: a method against ours over every (task, seed) that both ran, Wilcoxon's signed-rank
test on the normalized scores (two-sided); per task the same test over its seeds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from benchmarks.methods import Method
    from benchmarks.report import TaskResults

__all__ = ["normalized_scores", "aggregate_section"]

#: The random search whose values set a task's "typical" value, by preference.
_RANDOM = ("lhpo_random", "optuna_random", "hyperopt_random")
#: Two-sided significance level of the paired tests.
SIGNIFICANCE = 0.05


def _typical(result: TaskResults) -> float:
    for name in _RANDOM:
        values = [v for r in result.records.get(name, []) for v in r["true"]]
        if values:
            return float(np.median(values))
    return float(np.median([v for rs in result.records.values() for r in rs for v in r["true"]]))


def normalized_scores(result: TaskResults, methods: Sequence[Method], budget: int) -> dict[str, dict[int, float]]:
    """method -> seed -> normalized score after ``budget`` trials (only runs that reached it)."""
    span = _typical(result) - result.reference
    scores: dict[str, dict[int, float]] = {}
    for method in methods:
        by_seed = {}
        for record, curve in zip(result.records[method.name], result.curves[method.name]):
            if len(curve) >= budget:
                by_seed[record["seed"]] = 1.0 - curve[budget - 1] / span if span > 0 else 1.0
        scores[method.name] = by_seed
    return scores


def _common_seeds(scores: dict[str, dict[int, float]]) -> list[int]:
    """The seeds that every method with a score on the task ran."""
    names = [n for n, s in scores.items() if s]
    return sorted(set.intersection(*(set(scores[n]) for n in names))) if names else []


def _ranks(scores: dict[str, dict[int, float]]) -> dict[str, list[float]]:
    """method -> its rank on every seed that all the methods ran."""
    from scipy.stats import rankdata

    names = [n for n, s in scores.items() if s]
    seeds = _common_seeds(scores)
    ranks: dict[str, list[float]] = {n: [] for n in names}
    for seed in seeds:
        for name, rank in zip(names, rankdata([-scores[n][seed] for n in names])):
            ranks[name].append(float(rank))
    return ranks


def _wilcoxon(ours: Sequence[float], other: Sequence[float]) -> float:
    """Two-sided p-value of the paired signed-rank test (1 when every pair ties)."""
    from scipy.stats import wilcoxon

    differences = [a - b for a, b in zip(ours, other) if a != b]
    return float(wilcoxon(differences).pvalue) if differences else 1.0


def signed_rank_direction(ours: Sequence[float], other: Sequence[float]) -> int:
    """Which way the signed-rank test leans: +1 when the pairs where ``ours`` is larger carry the
    larger sum of ranks (of the absolute differences), -1 when those where it is smaller do, 0 on a
    tie. The direction of the test, not of the mean: one large difference against many small ones of
    the other sign moves the mean but not the ranks, so the mean could name the other side of a
    significant test."""
    from scipy.stats import rankdata

    differences = np.array([a - b for a, b in zip(ours, other) if a != b])
    if not len(differences):
        return 0
    ranks = rankdata(np.abs(differences))
    return int(np.sign(ranks[differences > 0].sum() - ranks[differences < 0].sum()))


def aggregate_section(
    results: Sequence[TaskResults], methods: Sequence[Method], ours: Method, budget: int
) -> list[str]:
    """The report's lines: a per-task table of median normalized scores and mean ranks, the suite's
    means, and ours against each other method (paired over task x seed)."""
    per_task = [(r, normalized_scores(r, methods, budget)) for r in results if any(r.curves.values())]
    lines = [
        f"Normalized score after {budget} trials (1 = the task's reference, 0 = the median value of random search "
        "on the task), median over seeds, and in brackets the mean rank among these methods over the seeds all ran "
        f"(1 = best). Last column: Wilcoxon signed-rank p-value of {ours.label} against each GP or anchor column "
        "over the task's seeds (`+` ours better, `-` worse, by the test's signed ranks).",
        "",
        "| task | " + " | ".join(m.label for m in methods) + " | paired p (ours vs) |",
        "|---|" + "---|" * (len(methods) + 1),
    ]
    all_ranks: dict[str, list[float]] = {m.name: [] for m in methods}
    for result, scores in per_task:
        ranks = _ranks(scores)
        for name, values in ranks.items():
            all_ranks[name].extend(values)
        cells = []
        for method in methods:
            values = list(scores[method.name].values())
            rank = f" ({statistics.mean(ranks[method.name]):.1f})" if ranks.get(method.name) else ""
            cells.append(f"{statistics.median(values):.3f}{rank}" if values else "–")
        tests = []
        for method in methods:
            if method is ours or not scores[method.name] or not scores[ours.name]:
                continue
            seeds = sorted(set(scores[ours.name]) & set(scores[method.name]))
            a, b = [scores[ours.name][s] for s in seeds], [scores[method.name][s] for s in seeds]
            sign = {1: "+", -1: "-", 0: "="}[signed_rank_direction(a, b)]
            tests.append(f"{method.name} {sign}{_wilcoxon(a, b):.2g}")
        lines.append(f"| {result.task.name} | " + " | ".join(cells) + f" | {', '.join(tests)} |")
    # The means cover the runs the ranks cover, so that a method run on fewer seeds (an expensive
    # anchor) is not averaged over other runs than the rest.
    means = []
    for method in methods:
        values = [
            scores[method.name][s] for _, scores in per_task for s in _common_seeds(scores) if scores[method.name]
        ]
        rank = statistics.mean(all_ranks[method.name]) if all_ranks[method.name] else float("nan")
        means.append(f"**{statistics.mean(values):.3f} ({rank:.2f})**" if values else "–")
    lines.append("| **mean over the task x seed runs all ran** | " + " | ".join(means) + " | |")
    lines += ["", f"{ours.label} against each other method, paired over every (task, seed) both ran:", ""]
    for method in methods:
        if method is ours:
            continue
        pairs = [
            (scores[ours.name][s], scores[method.name][s], result.task.name)
            for result, scores in per_task
            for s in sorted(set(scores[ours.name]) & set(scores[method.name]))
        ]
        if not pairs:
            continue
        a, b, _ = zip(*pairs)
        medians_by_task = {
            r.task.name: (statistics.median(s[ours.name].values()), statistics.median(s[method.name].values()))
            for r, s in per_task
            if s[ours.name] and s[method.name]
        }
        at_least = sum(x >= y for x, y in medians_by_task.values())
        p_value = _wilcoxon(a, b)
        verdict = "significant" if p_value < SIGNIFICANCE else "not significant"
        lines.append(
            f"- vs {method.label}: mean normalized score {statistics.mean(a):.3f} vs {statistics.mean(b):.3f} over "
            f"{len(pairs)} pairs (ours higher on {sum(x > y for x, y in zip(a, b))}, lower on "
            f"{sum(x < y for x, y in zip(a, b))}), Wilcoxon p = {p_value:.3g} ({verdict} at {SIGNIFICANCE}); "
            "median at or above on "
            f"{at_least}/{len(medians_by_task)} tasks."
        )
    return lines
