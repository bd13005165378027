"""What should the GP learn from PRUNED trials? A live check on YAHPO Gym's LCBench surrogate.

With ASHA, the Study's default pruner, most trials end PRUNED at an early rung. The GPSampler
learns from them the value they are stored with (their best intermediate value: pessimistic,
since they stopped early); Optuna's GPSampler ignores them. This script runs real studies
(GPSampler + ASHAPruner, validation accuracy reported at every epoch) both ways and compares the
best COMPLETE accuracy reached within equal epoch budgets.

    python benchmarks/gp_pruned.py                          # 8 tasks x 2 seeds
    python benchmarks/gp_pruned.py --tasks 189906 --seeds 1 # quick look

Needs onnxruntime and the LCBench surrogate in ../shared/data/yahpo/lcbench (see pruning_lcbench.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.pruning_lcbench import DATA, EPOCHS, SPACE, Surrogate  # noqa: E402
from lightning_hpo import ASHAPruner, Study  # noqa: E402
from lightning_hpo.samplers import gp  # noqa: E402
from lightning_hpo.trial import Trial, TrialState  # noqa: E402

DEFAULT_TASKS = ["189906", "167168", "126026", "167190", "189866", "168868", "7593", "34539"]


def ignoring_pruned(trial: Trial) -> bool:
    """Optuna's choice: only COMPLETE trials inform the GP."""
    return trial.state is TrialState.COMPLETE and trial.values is not None


def run(surrogate: Surrogate, task: str, seed: int, budget_epochs: int) -> float:
    """Best COMPLETE final accuracy of a GP + ASHA study that spends ``budget_epochs`` epochs."""
    study = Study(
        f"lcbench-{task}-{seed}",
        search_space=SPACE,
        mode="max",
        storage=":memory:",
        sampler=gp.GPSampler(seed=seed, device="cpu", learn_from_curves=False),
        pruner=ASHAPruner(),
    )
    spent = 0
    while spent < budget_epochs:
        trial = study.ask()
        curve = surrogate.curves(task, [dict(trial.params)])[0]
        for epoch, accuracy in curve:
            spent += 1
            study.report(trial, epoch, accuracy)
            if study.should_prune(trial):
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, curve[-1][1])
    return max((t.value for t in study.trials if t.state is TrialState.COMPLETE), default=float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budget", type=int, default=20, help="epoch budget, in full trainings (52 epochs)")
    args = parser.parse_args(argv)
    surrogate = Surrogate(DATA)
    learn_from_pruned = gp._is_observation
    results: dict[str, list[float]] = {"learn from pruned": [], "ignore pruned": []}
    started = time.perf_counter()
    for task in args.tasks:
        for seed in range(args.seeds):
            row = {}
            for name, rule in (("learn from pruned", learn_from_pruned), ("ignore pruned", ignoring_pruned)):
                gp._is_observation = rule
                row[name] = run(surrogate, task, seed, args.budget * EPOCHS)
                results[name].append(row[name])
            gp._is_observation = learn_from_pruned
            print(
                f"task {task} seed {seed}: "
                + ", ".join(f"{k} {v:.2f}" for k, v in row.items())
                + f" ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    differences = [a - b for a, b in zip(results["learn from pruned"], results["ignore pruned"])]
    wins = sum(d > 0 for d in differences)
    print(
        f"\nBest COMPLETE validation accuracy (%) within {args.budget} full trainings of epochs, "
        f"{len(differences)} runs, mean: " + ", ".join(f"{k} {statistics.mean(v):.2f}" for k, v in results.items())
    )
    print(
        f"learning from pruned trials minus ignoring them: mean {statistics.mean(differences):+.2f} points, "
        f"better in {wins}/{len(differences)} runs, worse in {sum(d < 0 for d in differences)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
