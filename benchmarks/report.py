"""Builds RESULTS.md and the plots from the cached runs (nothing here runs an optimizer)."""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.aggregate import SIGNIFICANCE, _wilcoxon, aggregate_section, signed_rank_direction
from benchmarks.methods import OURS, STAND_IN, Method
from benchmarks.regret import quartiles, reference_value, simple_regret
from benchmarks.runner import Log, ResultCache
from benchmarks.tasks import Task, space_summary

__all__ = ["TimingSpec", "TaskResults", "collect", "write_report"]

# One color per method in every plot; ours first and drawn thicker.
_COLORS = {
    "lhpo_gp": "#d62728",
    "lhpo_sobol": "#d62728",
    "optuna_gp": "#1f77b4",
    "optuna_tpe": "#2ca02c",
    "hyperopt_tpe": "#9467bd",
    "lhpo_random": "#7f7f7f",
    "hebo": "#ff7f0e",
    "smac": "#17becf",
    "optuna_random": "#8c564b",
    "hyperopt_random": "#bcbd22",
}


@dataclass(frozen=True)
class TimingSpec:
    """The separate timing runs: ``task`` with enough trials to time suggestions at each history size."""

    task: str
    histories: tuple[int, ...]
    window: int  # suggestions around each history size that are pooled
    seeds: tuple[int, ...]

    @property
    def budget(self) -> int:
        return max(self.histories) + (self.window + 1) // 2

    def indices(self, history: int) -> range:
        return range(max(history - self.window // 2, 0), history + (self.window + 1) // 2)


@dataclass
class TaskResults:
    """The cached runs of one task, with the regret curves of each method."""

    task: Task
    reference: float
    curves: dict[str, list[list[float]]]  # method -> one regret curve per seed
    records: dict[str, list[dict[str, Any]]]
    stale: int  # runs whose code differs from the current methods'


def collect(
    cache: ResultCache, task: Task, methods: Sequence[Method], seeds: Sequence[int], budgets: Sequence[int], log: Log
) -> TaskResults:
    """The runs of these seeds that reach the smallest budget, as regret curves up to the largest."""
    budget = max(budgets)
    records = {m.name: cache.records("runs", task.name, m.name, seeds, min(budgets)) for m in methods}
    seen = [v for rs in _all_cached_runs(cache, task.name) for v in rs["true"]]
    bound = cache.reference(task, log)
    if task.optimum is None and bound is None and not seen:  # nothing run yet: no reference, no curves
        return TaskResults(task, math.nan, {name: [] for name in records}, records, 0)
    reference = reference_value(task.optimum, bound, seen)
    curves = {
        name: [simple_regret(r["observed"][:budget], r["true"][:budget], reference) for r in rs]
        for name, rs in records.items()
    }
    fingerprints = {m.name: m.fingerprint() for m in methods}
    stale = sum(r["fingerprint"] != fingerprints[name] for name, rs in records.items() for r in rs)
    return TaskResults(task, reference, curves, records, stale)


def _all_cached_runs(cache: ResultCache, task: str) -> list[dict[str, Any]]:
    """Every cached run of the task, any method and seed: any true value reached is a fact about the task."""
    folder = cache.root / "runs" / task
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/seed*.json"))] if folder.is_dir() else []


def _cell(values: Sequence[float]) -> str:
    q1, median, q3 = quartiles(values)
    return f"{_num(median)} [{_num(q1)}, {_num(q3)}]"


def _num(x: float) -> str:
    if math.isnan(x):
        return "–"
    if x == 0:
        return "0"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def _regret_table(results: Sequence[TaskResults], methods: Sequence[Method], budget: int) -> list[str]:
    lines = [
        "| task | seeds | " + " | ".join(m.label for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for result in results:
        finals = {
            m.name: [curve[budget - 1] for curve in result.curves[m.name] if len(curve) >= budget] for m in methods
        }
        seeds = max(len(values) for values in finals.values())
        medians = {name: statistics.median(values) for name, values in finals.items() if values}
        best = min(medians.values(), default=None)
        row = []
        for method in methods:
            values = finals[method.name]
            if not values:
                row.append("–")
                continue
            cell = _cell(values) + (f" ({len(values)} seeds)" if len(values) < seeds else "")
            row.append(f"**{cell}**" if medians[method.name] == best else cell)
        lines.append(f"| {result.task.name} | {seeds} | " + " | ".join(row) + " |")
    return lines


def _finals_by_seed(result: TaskResults, name: str, budget: int) -> dict[int, float]:
    """seed -> the method's regret after ``budget`` trials (only runs that reached it)."""
    return {r["seed"]: c[budget - 1] for r, c in zip(result.records[name], result.curves[name]) if len(c) >= budget}


def _comparison(results: Sequence[TaskResults], methods: Sequence[Method], ours: Method, budget: int) -> list[str]:
    """One line per other method: on how many tasks our median regret is at or below its, and on
    which tasks the difference is significant: Wilcoxon's signed-rank test (two-sided, at
    ``SIGNIFICANCE``) over the seeds both ran, paired by seed as the suite's aggregate tests are.
    With 5 to 10 seeds a median is a noisy figure, and most of the differences between two good
    samplers are within that noise."""
    lines = []
    for other in methods:
        if other is ours:
            continue
        finals = [
            (r.task.name, _finals_by_seed(r, ours.name, budget), _finals_by_seed(r, other.name, budget))
            for r in results
        ]
        finals = [(t, a, b) for t, a, b in finals if a and b]
        if not finals:
            continue
        medians = [(t, statistics.median(a.values()), statistics.median(b.values())) for t, a, b in finals]
        at_most = sum(a <= b for _, a, b in medians)
        below = sum(a < b for _, a, b in medians)
        worse = [t for t, a, b in medians if a > b]
        better_p, worse_p = [], []
        for task, a, b in finals:
            seeds = sorted(set(a) & set(b))
            ours_regrets, other_regrets = [a[s] for s in seeds], [b[s] for s in seeds]
            if _wilcoxon(ours_regrets, other_regrets) < SIGNIFICANCE:
                lower = signed_rank_direction(ours_regrets, other_regrets) < 0
                (better_p if lower else worse_p).append(task)
        lines.append(
            f"- vs {other.label}: at or below on {at_most}/{len(finals)} tasks, strictly below on {below}/{len(finals)}"
            + (f"; worse on {', '.join(worse)}" if worse else "")
            + f". Significantly below (paired by seed, p < {SIGNIFICANCE}) on {len(better_p)}"
            + (f" ({', '.join(better_p)})" if better_p else "")
            + f", significantly above on {len(worse_p)}"
            + (f" ({', '.join(worse_p)})" if worse_p else "")
            + f", within the noise of the seeds on {len(finals) - len(better_p) - len(worse_p)}."
        )
    return lines


def _timing_table(cache: ResultCache, spec: TimingSpec, methods: Sequence[Method], ours: Method | None) -> list[str]:
    header = "| method | " + " | ".join(f"{h} trials of history" for h in spec.histories) + " | seeds |"
    lines = [header, "|---|" + "---|" * (len(spec.histories) + 1)]
    medians: dict[str, list[float]] = {}
    for method in methods:
        records = cache.records("timing", spec.task, method.name, spec.seeds, spec.budget)
        if not records:
            continue
        cells = []
        for history in spec.histories:
            times = [1e3 * r["suggest_seconds"][i] for r in records for i in spec.indices(history)]
            cells.append(_cell(times) + " ms")
            medians.setdefault(method.name, []).append(statistics.median(times))
        lines.append(f"| {method.label} | " + " | ".join(cells) + f" | {len(records)} |")
    if ours is not None and ours.name in medians and "optuna_gp" in medians:
        ratios = [f"{a / b:.2f} at {h}" for h, a, b in zip(spec.histories, medians[ours.name], medians["optuna_gp"])]
        lines += ["", f"Median time of {ours.label} over Optuna GP's, by trials of history: " + ", ".join(ratios) + "."]
    return lines


def _cost_table(
    results: Sequence[TaskResults], methods: Sequence[Method], seeds_of: dict[str, int]
) -> tuple[list[str], float]:
    lines = [
        "| task | " + " | ".join(m.label for m in methods) + " | seeds | task total |",
        "|---|" + "---|" * (len(methods) + 2),
    ]
    total = 0.0
    for result in results:
        cells = []
        task_total = 0.0
        for method in methods:
            records = result.records[method.name]
            if not records:
                cells.append("–")
                continue
            wall = statistics.median(r["wall_seconds"] for r in records)
            suggest = statistics.median(sum(r["suggest_seconds"]) for r in records)
            cells.append(f"{wall:.1f} ({suggest:.1f})")
            task_total += wall * seeds_of[result.task.name]
        total += task_total
        lines.append(
            f"| {result.task.name} | "
            + " | ".join(cells)
            + f" | {seeds_of[result.task.name]} | {task_total / 60:.1f} min |"
        )
    return lines, total


def _plot(result: TaskResults, methods: Sequence[Method], ours: Method | None, budget: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9.0, 4.4), dpi=110)
    positive = []
    for method in methods:
        curves = [c[:budget] for c in result.curves[method.name] if len(c) >= budget]
        if not curves:
            continue
        q1, median, q3 = np.percentile(np.asarray(curves), [25, 50, 75], axis=0)
        trials = np.arange(1, budget + 1)
        is_ours = ours is not None and method is ours
        color = _COLORS.get(method.name)
        axes.plot(
            trials,
            median,
            color=color,
            lw=2.6 if is_ours else 1.6,
            label=f"{method.label} ({len(curves)} seeds)",
            zorder=3 if is_ours else 2,
        )
        axes.fill_between(trials, q1, q3, color=color, alpha=0.15, lw=0)
        positive.extend(v for v in np.concatenate([q1, median, q3]) if v > 0)
    if positive:
        if min(min(c) for rs in result.curves.values() for c in rs if c) > 0:
            axes.set_yscale("log")
        else:  # a method reached the reference: keep zero on the axis, linear up to a decade below the rest
            axes.set_yscale("symlog", linthresh=10.0 ** math.floor(math.log10(max(min(positive), 1e-300))))
    axes.set_xlim(1, budget)
    axes.set_xlabel("trials")
    axes.set_ylabel("simple regret")
    summary = textwrap.fill(result.task.summary, 100)
    axes.set_title(f"{result.task.name} (regret vs {result.task.regret_basis})\n{summary}", fontsize=9)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8, title="median, 25-75% band", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def _plot_timing(
    cache: ResultCache, spec: TimingSpec, methods: Sequence[Method], ours: Method | None, path: Path
) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9.0, 4.4), dpi=110)
    drawn = False
    for method in methods:
        records = cache.records("timing", spec.task, method.name, spec.seeds, spec.budget)
        if not records:
            continue
        # Median over seeds, then a running median over the pooling window: single suggestions are noisy.
        times = np.median(np.asarray([r["suggest_seconds"][: spec.budget] for r in records]), axis=0) * 1e3
        smooth = [float(np.median(times[i : i + spec.window])) for i in range(spec.budget - spec.window + 1)]
        axes.plot(
            np.arange(len(smooth)) + spec.window // 2,
            smooth,
            color=_COLORS.get(method.name),
            lw=2.6 if method is ours else 1.6,
            label=f"{method.label} ({len(records)} seeds)",
        )
        drawn = True
    if not drawn:
        plt.close(figure)
        return False
    axes.set_yscale("log")
    axes.set_xlabel("trials of history")
    axes.set_ylabel("time per suggestion (ms)")
    axes.set_title(
        f"Time per suggestion on {spec.task} (median over seeds, running median of {spec.window})", fontsize=9
    )
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return True


def _versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    # numpy, scipy and gpytorch too: the GP's fit moves with them in the last digits, and a near-tie of
    # the acquisition can then turn a run another way.
    for module in ("torch", "botorch", "gpytorch", "numpy", "scipy", "optuna", "hyperopt", "sklearn"):
        try:
            parts.append(f"{module} {importlib.import_module(module).__version__}")
        except ImportError:
            pass
    return ", ".join(parts)


def write_report(
    *,
    cache: ResultCache,
    tasks: Sequence[Task],
    methods: Sequence[Method],
    seeds_of: dict[str, int],
    first_seed: int = 0,
    budgets: Sequence[int],
    timing: TimingSpec | None,
    timing_methods: Sequence[Method],
    results_path: Path,
    command: str,
    log: Log,
) -> Path:
    """Write the results table and plots for what the cache holds; return the path of the table."""
    budget = max(budgets)
    results = [
        collect(cache, t, methods, range(first_seed, first_seed + seeds_of[t.name]), budgets, log) for t in tasks
    ]
    ours = next((m for m in methods if m.name in (OURS, STAND_IN)), None)
    plots_dir = results_path.parent / "plots"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    lines = ["# Benchmark results", ""]
    if ours is not None and ours.name == STAND_IN:
        lines += [
            "> **Produced with a stand-in for lightning_hpo's GPSampler**: the column "
            f'"{ours.label}" is lightning_hpo\'s SobolSampler, which checks the machinery, not the GP. '
            "Regenerate with `make bench` once `lightning_hpo.GPSampler` exists.",
            "",
        ]
    expected = sum(len(methods) * seeds_of[r.task.name] for r in results)
    cached = sum(len(rs) for r in results for rs in r.records.values())
    if cached < expected:
        lines += [
            f"> **Partial**: {cached} of the {expected} regret runs asked for are cached; the `seeds` column of each "
            "table says how many seeds a row holds. Run the same command without `--report-only` to complete it.",
            "",
        ]
    lines += [
        f"Made by `{command}` on {now}, {platform.node()} ({_cpu_text()}); {_versions()}.",
        "Every method ran on the same tasks, budgets and seeds, one run at a time, in one process "
        "(torch and BLAS limited to the same thread count). Each library runs at its defaults.",
        "",
        "Methods: " + "; ".join(f"**{m.label}** (`{m.name}`)" for m in methods) + ". "
        "Random search is lightning_hpo's RandomSampler (`lhpo_random`) unless another random column is shown. "
        'lightning_hpo methods run through `lightning_hpo.Study(storage=":memory:")` ask/tell; Optuna through '
        "`Study.ask/tell`; Hyperopt through `fmin`.",
        "",
        "Simple regret after t trials: the noiseless value of the best-observed trial among the first t, minus the "
        "task's reference (the exact optimum where known). Cells: median [25th, 75th percentile] over seeds; "
        "the best median of a row is bold.",
        "",
        "## Tasks",
        "",
        "| task | space | regret vs | reference | seeds | what |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        task = result.task
        lines.append(
            f"| {task.name} | {space_summary(task.space)} | {task.regret_basis} | {_num(result.reference)} | "
            f"{seeds_of[task.name]} | {task.summary} |"
        )
    for b in budgets:
        lines += ["", f"## Simple regret after {b} trials", ""]
        lines += _regret_table(results, methods, b)
    if ours is not None and len(methods) > 1:
        lines += ["", f"## {ours.label} against each other method (regret after {budget} trials)", ""]
        lines += _comparison(results, methods, ours, budget)
        lines += ["", "## Across tasks: normalized score, mean rank, paired tests", ""]
        lines += aggregate_section(results, methods, ours, budget)
    if timing is not None:
        lines += [
            "",
            f"## Time per suggestion ({timing.task}, {timing.budget} trials per run)",
            "",
            f"Median [25th, 75th percentile] over seeds {timing.seeds[0]}..{timing.seeds[-1]} and the {timing.window} "
            "suggestions around each history size; wall time of `ask` (Hyperopt: the gap between two objective calls).",
            "",
        ]
        lines += _timing_table(cache, timing, timing_methods, ours)
        if _plot_timing(cache, timing, timing_methods, ours, plots_dir / f"timing_{timing.task}.png"):
            lines += ["", f"![time per suggestion](plots/timing_{timing.task}.png)"]
    lines += ["", "## Regret curves", ""]
    for result in results:
        if not any(result.curves.values()):
            lines.append(f"{result.task.name}: no cached runs yet.")
            continue
        _plot(result, methods, ours, budget, plots_dir / f"{result.task.name}.png")
        lines.append(f"![{result.task.name}](plots/{result.task.name}.png)")
    cost_lines, total = _cost_table(results, methods, seeds_of)
    lines += [
        "",
        f"## Cost of a run (median seconds per run of {budget} trials; in brackets, the suggestions' share)",
        "",
        *cost_lines,
        "",
        f"Regret runs of these tasks at these seeds take about {total / 60:.0f} min on this machine, one after another.",
    ]
    stale = sum(r.stale for r in results)
    if stale:
        lines += [
            "",
            f"Note: {stale} of the runs above were made by other lightning_hpo or library code than the "
            "current one; run the suite again (not --report-only) to refresh them.",
        ]
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text("\n".join(lines) + "\n")
    return results_path


def _cpu_text() -> str:
    return f"{os.cpu_count()} CPUs"
