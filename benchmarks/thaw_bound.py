"""What thawing a stopped trial could at most give: how often the default (GP (curves) + ASHA) stops
a trial whose full run would have beaten the best full run found within the budget, and by how much.

Freeze-thaw (issue 20) would continue the most promising paused trial instead of starting a new
one. Whatever it adds on top of stopping for good is bounded by the stopped trials that were worth
finishing: this runs the default exactly as ``multi_fidelity.py`` does (a real Study, ask / report
every epoch / should_prune / tell, until the budget), then asks the surrogate for each stopped
trial's final accuracy.

    python benchmarks/thaw_bound.py --tasks all --seeds 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.multi_fidelity import FAMILIES, AnyTask, curves_gp  # noqa: E402
from lightning_hpo import Study  # noqa: E402
from lightning_hpo.pruners import ASHAPruner  # noqa: E402
from lightning_hpo.trial import TrialState  # noqa: E402


def stopped_worth_finishing(task: AnyTask, seed: int, budget: float) -> tuple[float, list[tuple[int, float]]]:
    """The best full run within ``budget`` and, for each stopped trial whose full run beats it, the
    step it was stopped at and by how much it would have won."""
    study = Study(
        f"thaw-{task.name}-{seed}",
        search_space=task.space,
        mode="max",
        storage=":memory:",
        sampler=curves_gp(seed),
        pruner=ASHAPruner(),
    )
    steps = task.steps(prunes=True)
    spent, best, stopped = 0.0, float("-inf"), []
    while spent < budget:
        trial = study.ask()
        values = task.values(dict(trial.params), steps)
        for (step, cost), value in zip(steps, values, strict=True):
            spent += cost
            study.report(trial, step, value)
            if step < task.last_step and study.should_prune(trial):
                study.tell(trial, state=TrialState.PRUNED)
                stopped.append((step, values[-1]))
                break
        else:
            study.tell(trial, value)
            best = max(best, value)
    return best, [(step, final - best) for step, final in stopped if final > best]


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
    rows: dict[int, list[tuple[float, list[tuple[int, float]]]]] = {b: [] for b in args.budgets}
    for task_id in tasks:
        task = make_task(task_id)
        for seed in range(args.seeds):
            for budget in args.budgets:
                best, worth = stopped_worth_finishing(task, seed, budget * family.full)
                rows[budget].append((best, worth))
                print(
                    f"task {task_id} seed {seed} budget {budget}: {len(worth)} stopped trials worth finishing",
                    flush=True,
                )
    print(
        "\n| full trainings | runs | runs with a stopped trial worth finishing | mean gain (points) | largest gain | steps they were stopped at |"
    )
    print("|---|---|---|---|---|---|")
    for budget, results in rows.items():
        gains = [max((g for _, g in worth), default=0.0) for _, worth in results]
        steps = sorted(s for _, worth in results for s, _ in worth)
        print(
            f"| {budget} | {len(results)} | {sum(g > 0 for g in gains)} | {statistics.mean(gains):.2f} | "
            f"{max(gains):.2f} | {', '.join(map(str, steps)) or '-'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
