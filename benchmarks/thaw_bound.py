"""What thawing a stopped trial could at most give: how often the default (GP (curves) + ASHA) stops
a trial whose full run would have beaten the best full run found within the budget, and by how much.

Freeze-thaw (issue 20) would continue the most promising paused trial instead of starting a new
one. Whatever it adds on top of stopping for good is bounded by the stopped trials that were worth
finishing: this runs the default as ``multi_fidelity.py`` does (``run_study``: a real Study, ask /
report every epoch / should_prune / tell) up to the largest budget, and reads from its trajectory,
for each budget, the stopped trials whose final value (the surrogate's, at the last epoch) beats
the best full run within that budget.

    python benchmarks/thaw_bound.py --tasks all --seeds 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.multi_fidelity import FAMILIES, Trajectory, curves_gp, run_study  # noqa: E402
from lightning_hpo.pruners import ASHAPruner  # noqa: E402


def worth_finishing(trajectory: Trajectory, budget: float) -> list[tuple[int, float]]:
    """For each trial stopped within ``budget`` whose full run beats the best full run within it:
    the step it was stopped at, and by how much it would have won."""
    best = trajectory.best_within(budget)
    return [
        (step, final - best)
        for spent, step, final in trajectory.stopped
        if spent <= budget and final is not None and final > best
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["lcbench", "rbv2_xgboost"], default="lcbench")
    parser.add_argument("--tasks", nargs="+", default=["all"], help="task ids, or 'all'")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 30], help="in full trainings")
    args = parser.parse_args(argv)
    family = FAMILIES[args.family]
    tasks = family.all_tasks(family.data) if args.tasks == ["all"] else args.tasks
    make_task = family.loader(family.data)
    rows: dict[int, list[tuple[int, list[tuple[int, float]]]]] = {b: [] for b in args.budgets}
    for task_id in tasks:
        task = make_task(task_id)
        for seed in range(args.seeds):
            trajectory = run_study(task, seed, max(args.budgets) * family.full, curves_gp(seed), ASHAPruner())
            for budget in args.budgets:
                stopped = sum(spent <= budget * family.full for spent, _, _ in trajectory.stopped)
                rows[budget].append((stopped, worth_finishing(trajectory, budget * family.full)))
            counts = ", ".join(f"{len(rows[b][-1][1])} at {b}" for b in args.budgets)
            print(f"task {task_id} seed {seed}: stopped trials worth finishing: {counts}", flush=True)
    print(
        "\n| full trainings | runs | trials stopped per run | runs with a stopped trial worth finishing "
        "| mean gain (points) | largest gain | steps they were stopped at |"
    )
    print("|---|---|---|---|---|---|---|")
    for budget, results in rows.items():
        gains = [max((g for _, g in worth), default=0.0) for _, worth in results]
        steps = sorted(s for _, worth in results for s, _ in worth)
        print(
            f"| {budget} | {len(results)} | {statistics.mean(n for n, _ in results):.0f} | "
            f"{sum(g > 0 for g in gains)} | {statistics.mean(gains):.2f} | {max(gains):.2f} | "
            f"{', '.join(map(str, steps)) or '-'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
