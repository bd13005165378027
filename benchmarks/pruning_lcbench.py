"""Pruners on YAHPO Gym's LCBench surrogate: epochs spent vs best accuracy found, ours vs Optuna's.

    python benchmarks/pruning_lcbench.py                  # 34 tasks x 3 seeds x 150 configurations, ~8 min
    python benchmarks/pruning_lcbench.py --tasks 189906 --seeds 1 --n-configs 60   # quick look

LCBench: MLPs trained for 52 epochs on 34 OpenML tasks; YAHPO's ONNX surrogate predicts each
epoch's validation accuracy for a configuration (7 hyperparameters), so thousands of learning
curves cost a second. The model is run here with onnxruntime directly (what yahpo-gym does
inside: one integer-encoded task id, eight floats [epoch, batch_size, learning_rate, momentum,
weight_decay, num_layers, max_units, max_dropout]), since yahpo-gym pins numpy<2.

For each task and seed: the same Sobol configurations (lightning_hpo's SobolSampler) for every
pruner, curves recorded once, decisions replayed in trial order (see pruning_replay.py). Steps
are epochs 1..52 for every pruner. Results go to the `lcbench` section of PRUNING_RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pruning_replay import Curve, Outcome, replay_optuna, replay_ours, write_section  # noqa: E402

from lightning_hpo import Float, Int  # noqa: E402
from lightning_hpo.pruners import ASHAPruner, HyperbandPruner, MedianPruner, NopPruner  # noqa: E402
from lightning_hpo.samplers import SobolSampler  # noqa: E402
from lightning_hpo.space import SearchSpace  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "yahpo" / "lcbench"
EPOCHS = 52
SPACE = SearchSpace(
    {
        "batch_size": Int(16, 512, log=True),
        "learning_rate": Float(1e-4, 1e-1, log=True),
        "momentum": Float(0.1, 0.99),
        "weight_decay": Float(1e-5, 0.1),
        "num_layers": Int(1, 5),
        "max_units": Int(64, 1024, log=True),
        "max_dropout": Float(0.0, 1.0),
    }
)
SURROGATE_INPUTS = ["batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units", "max_dropout"]


def pruners(run: int) -> dict[str, Callable[[list[Curve]], Outcome]]:
    """Every pruner compared, for run number ``run``.

    Hyperband draws each trial's bracket from a hash of its number: ours is seeded with ``run``
    and Optuna's study is named after it, so the bracket draws differ between runs (with one
    fixed draw for all runs, its luck would weigh on every run alike).
    """
    import optuna

    def ours(make: Callable[[], Any]) -> Callable[[list[Curve]], Outcome]:
        return lambda curves: replay_ours(make(), curves, "max")

    def theirs(make: Callable[[], Any]) -> Callable[[list[Curve]], Outcome]:
        return lambda curves: replay_optuna(make, curves, "max", epoch_steps=False, study_name=f"replay-{run}")

    return {
        "none": ours(NopPruner),
        "ours Median()": ours(MedianPruner),
        "ours Median(n_warmup_steps=5)": ours(lambda: MedianPruner(n_warmup_steps=5)),
        "ours ASHA()": ours(ASHAPruner),
        "ours ASHA(min_resource=2)": ours(lambda: ASHAPruner(min_resource=2)),
        "ours Hyperband()": ours(lambda: HyperbandPruner(seed=run)),
        "optuna MedianPruner()": theirs(optuna.pruners.MedianPruner),
        "optuna SuccessiveHalving()": theirs(optuna.pruners.SuccessiveHalvingPruner),
        "optuna SuccessiveHalving(min_resource=6, rf=3)": theirs(
            lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=6, reduction_factor=3)
        ),
        "optuna Hyperband()": theirs(optuna.pruners.HyperbandPruner),
    }


class Surrogate:
    """LCBench's ONNX surrogate: validation accuracy (%) at each epoch of a configuration."""

    def __init__(self, data: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(data / "model.onnx"), sess_options=options)
        self.task_codes = json.loads((data / "encoding.json").read_text())["OpenML_task_id"]

    @staticmethod
    def tasks(data: Path) -> list[str]:
        """The 34 task ids of the benchmark (config_space.json; encoding.json also lists unused codes)."""
        space = json.loads((data / "config_space.json").read_text())
        return next(h["choices"] for h in space["hyperparameters"] if h["name"] == "OpenML_task_id")

    def curves(self, task: str, configs: list[dict[str, Any]]) -> list[Curve]:
        epochs = np.arange(1, EPOCHS + 1, dtype=np.float32)
        rows = np.array([[c[name] for name in SURROGATE_INPUTS] for c in configs], dtype=np.float32)
        x_cont = np.concatenate(
            [np.repeat(epochs[None, :, None], len(configs), 0), np.repeat(rows[:, None, :], EPOCHS, 1)], axis=2
        ).reshape(-1, 1 + len(SURROGATE_INPUTS))
        x_cat = np.full((len(x_cont), 1), self.task_codes[task], dtype=np.int32)
        inputs = {i.name: x for i, x in zip(self.session.get_inputs(), (x_cat, x_cont), strict=True)}
        accuracy = self.session.run(None, inputs)[0][:, 1].reshape(len(configs), EPOCHS)  # y: time, val_accuracy, ...
        return [[(e, float(a)) for e, a in zip(range(1, EPOCHS + 1), row, strict=True)] for row in accuracy]


def mean_se(values: list[float]) -> str:
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {se:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="YAHPO's lcbench folder (model.onnx, encoding.json)")
    parser.add_argument("--tasks", nargs="+", default=None, help="OpenML task ids (default: all 34)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-configs", type=int, default=150)
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 30], help="equal budgets, in full trainings")
    parser.add_argument("--no-write", action="store_true", help="print only; leave PRUNING_RESULTS.md alone")
    args = parser.parse_args(argv)
    if not (args.data / "model.onnx").is_file():
        print(f"LCBench surrogate not found in {args.data}; pass --data.", file=sys.stderr)
        return 2

    surrogate = Surrogate(args.data)
    args.tasks = args.tasks or surrogate.tasks(args.data)
    rows: dict[str, dict[str, list[float]]] = {name: {} for name in pruners(0)}
    started = time.perf_counter()
    for task_index, task in enumerate(args.tasks):
        for seed in range(args.seeds):
            sampler = SobolSampler(seed=seed)
            configs = [sampler.sample(SPACE, [], number=n, directions=["max"]) for n in range(args.n_configs)]
            curves = surrogate.curves(task, configs)
            methods = pruners(task_index * args.seeds + seed)
            outcomes = {name: run(curves) for name, run in methods.items()}
            reference = outcomes["none"].best("max")
            full = args.n_configs * EPOCHS
            for name, outcome in outcomes.items():
                row = rows[name]
                row.setdefault("epochs", []).append(outcome.spent() / full)
                row.setdefault("regret", []).append(reference - outcome.best("max"))
                row.setdefault("within", []).append(float(reference - outcome.best("max") <= 0.5))
                for budget in args.budgets:
                    row.setdefault(f"b{budget}", []).append(reference - outcome.best_within(budget * EPOCHS, "max"))
            print(f"task {task} seed {seed}: done ({time.perf_counter() - started:.0f} s)", flush=True)

    runs = len(args.tasks) * args.seeds
    budget_cols = " | ".join(f"regret at {b} full trainings" for b in args.budgets)
    lines = [
        f"LCBench surrogate, {len(args.tasks)} tasks x {args.seeds} Sobol seeds = {runs} runs, "
        f"{args.n_configs} configurations each, 52 epochs, maximizing validation accuracy (%). Replayed decisions "
        "(pruning_replay.py). Regret: no-pruning best over all configurations minus the pruner's best COMPLETE "
        "trial, in accuracy points, mean over runs ± standard error (lower is better). "
        "'within 0.5': share of runs within 0.5 points of the no-pruning best. Equal budgets: trials taken in "
        "order until that many epochs (k full trainings) are spent (a pruner that finishes all configurations "
        "under the budget keeps its best over all of them).",
        "",
        f"| pruner | epochs (share of no pruning) | regret, all configurations | within 0.5 | {budget_cols} |",
        "|---|---|---|---|" + "---|" * len(args.budgets),
    ]
    for name, row in rows.items():
        budgets = " | ".join(mean_se(row[f"b{b}"]) for b in args.budgets)
        lines.append(
            f"| {name} | {statistics.mean(row['epochs']):.3f} | {mean_se(row['regret'])} | "
            f"{statistics.mean(row['within']):.2f} | {budgets} |"
        )
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        path = write_section("lcbench", "## LCBench surrogate (YAHPO Gym lcbench)\n\n" + text)
        print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
