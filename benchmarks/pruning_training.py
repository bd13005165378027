"""Pruners on real training: digits MLP and digits CNN, ours vs Optuna's, replay checked against live runs.

    python benchmarks/pruning_training.py                    # 40 configurations per model, ~10 min on 2 cores
    python benchmarks/pruning_training.py --n-configs 12 --models mlp   # quick look

For each model, the same Sobol configurations are trained once (and saved to
pruning_training_curves.json, so later runs replay without training) to the end with the Tuner and no
pruning (full learning curves of val_loss, one report per epoch at ``trainer.global_step``), then
every pruner's decisions are replayed over those curves in trial order (pruning_replay.py). Ours
see the steps the callback reports (global steps); Optuna's see epoch indices, as Optuna's own
Lightning callback reports them. To show the replay is what a live study does, ASHA and
Hyperband are also run live with the Tuner on the first configurations of the MLP, and their
outcomes compared with the replay. Results go to the `training` section of PRUNING_RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "examples")]

from digits import SEARCH_SPACE as MLP_SPACE  # noqa: E402
from digits import DigitsClassifier, DigitsDataModule  # noqa: E402
from pruning_replay import Curve, Outcome, replay_optuna, replay_ours, write_section  # noqa: E402

from lightning_hpo import Categorical, Float, Int, Tuner  # noqa: E402
from lightning_hpo.pruners import ASHAPruner, HyperbandPruner, MedianPruner, NopPruner, Pruner  # noqa: E402
from lightning_hpo.samplers import SobolSampler  # noqa: E402
from lightning_hpo.trial import TrialState  # noqa: E402


class DigitsCNN(pl.LightningModule):
    """Two 3x3 convolutions over the 8x8 digit images, then a linear classifier."""

    def __init__(
        self,
        lr: float = 1e-3,
        channels: int = 16,
        dropout: float = 0.1,
        weight_decay: float = 1e-5,
        optimizer: str = "adam",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(2 * channels * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.view(-1, 1, 8, 8)).flatten(1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.hparams.optimizer == "sgd":
            return torch.optim.SGD(
                self.parameters(), lr=self.hparams.lr, momentum=0.9, weight_decay=self.hparams.weight_decay
            )
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)


CNN_SPACE = {
    "lr": Float(1e-4, 1e-1, log=True),
    "channels": Int(4, 32, log=True),
    "dropout": Float(0.0, 0.5),
    "weight_decay": Float(1e-6, 1e-2, log=True),
    "optimizer": Categorical(["adam", "sgd"]),
}
MODELS = {"mlp": (DigitsClassifier, MLP_SPACE), "cnn": (DigitsCNN, CNN_SPACE)}


def tune(model: str, pruner: Pruner, n: int, epochs: int, seed: int, root: Path, name: str) -> Any:
    model_cls, space = MODELS[model]
    tuner = Tuner(
        model_cls,
        search_space=space,
        datamodule=DigitsDataModule(),
        trainer_kwargs={
            "max_epochs": epochs,
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
        },
        monitor="val_loss",
        mode="min",
        sampler=SobolSampler(seed=seed),
        pruner=pruner,
        storage=f"sqlite:///{root / 'studies.db'}",
        study_name=name,
        root_dir=root,
        seed=seed,
    )
    return tuner.fit(n_trials=n)


def curves_of(result: Any) -> list[Curve]:
    return [sorted(t.intermediate_values.items()) for t in sorted(result.trials, key=lambda t: t.number)]


def methods() -> dict[str, Callable[[list[Curve]], Outcome]]:
    import optuna

    def ours(make: Callable[[], Pruner]) -> Callable[[list[Curve]], Outcome]:
        return lambda curves: replay_ours(make(), curves, "min")

    def theirs(make: Callable[[], Any]) -> Callable[[list[Curve]], Outcome]:
        return lambda curves: replay_optuna(make, curves, "min", epoch_steps=True)

    return {
        "none": ours(NopPruner),
        "ours Median()": ours(MedianPruner),
        "ours ASHA()": ours(ASHAPruner),
        "ours Hyperband()": ours(HyperbandPruner),
        "optuna MedianPruner()": theirs(optuna.pruners.MedianPruner),
        "optuna SuccessiveHalving()": theirs(optuna.pruners.SuccessiveHalvingPruner),
        "optuna Hyperband()": theirs(optuna.pruners.HyperbandPruner),
    }


def live_check(curves: list[Curve], n: int, epochs: int, seed: int, root: Path) -> list[str]:
    """Run ASHA and Hyperband live on the first ``n`` MLP configurations; compare with their replay."""
    lines = []
    for label, make in (("ASHA()", ASHAPruner), ("Hyperband()", HyperbandPruner)):
        live = tune("mlp", make(), n, epochs, seed, root, f"live-{label}")
        trials = sorted(live.trials, key=lambda t: t.number)
        replay = replay_ours(make(), curves[:n], "min")
        live_outcome = [(len(t.intermediate_values), t.state is TrialState.COMPLETE) for t in trials]
        replay_outcome = list(zip(replay.reports, replay.completed, strict=True))
        same_values = all(
            math.isclose(t.intermediate_values[s], v, rel_tol=1e-6)
            for t, c in zip(trials, curves[:n], strict=True)
            for s, v in c
            if s in t.intermediate_values
        )
        verdict = "identical" if live_outcome == replay_outcome and same_values else "DIFFERENT"
        lines.append(
            f"- {label}, first {n} MLP configurations: live and replay {verdict} (validations per trial live "
            f"{[r for r, _ in live_outcome]}, replay {replay.reports}; same curve values: {same_values})."
        )
    return lines


def table(model: str, curves: list[Curve], budgets: list[int], epochs: int) -> list[str]:
    outcomes = {name: run(curves) for name, run in methods().items()}
    reference = outcomes["none"]
    full = reference.spent()
    head = " | ".join(f"best val_loss at {b} full trainings" for b in budgets)
    lines = [
        f"| pruner | validations (share of no pruning) | best val_loss, all configurations | {head} |",
        "|---|---|---|" + "---|" * len(budgets),
    ]
    for name, outcome in outcomes.items():
        at_budget = " | ".join(f"{outcome.best_within(b * epochs, 'min'):.4f}" for b in budgets)
        lines.append(
            f"| {name} | {outcome.spent()} ({outcome.spent() / full:.3f}) | {outcome.best('min'):.4f} | {at_budget} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=sorted(MODELS))
    parser.add_argument("--n-configs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-live", type=int, default=12, help="configurations run live to check the replay (0: skip)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[5, 10], help="equal budgets, in full trainings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--curves",
        type=Path,
        default=ROOT / "benchmarks" / "pruning_training_curves.json",
        help="recorded curves: reused when they match the settings, else recorded and saved here",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave PRUNING_RESULTS.md alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    sections = [
        f"Real training on scikit-learn's digits (1257 training images, 20 optimizer steps per epoch), "
        f"{args.n_configs} Sobol configurations (seed {args.seed}) per model, {args.epochs} epochs, one validation "
        "per epoch, minimizing val_loss. Curves recorded once with the Tuner and no pruning, then decisions "
        "replayed (pruning_replay.py). A trial's value is its best val_loss; the best found is over COMPLETE "
        "trials. Equal budgets: trials taken in order until that many validations (k full trainings) are spent.",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mlp_curves = None
        saved = json.loads(args.curves.read_text()) if args.curves.is_file() else {}
        for model in args.models:
            key = f"{model} n={args.n_configs} epochs={args.epochs} seed={args.seed}"
            if key in saved:
                curves = [[(step, value) for step, value in curve] for curve in saved[key]]
                print(f"{model}: {len(curves)} curves read from {args.curves}", flush=True)
            else:
                started = time.perf_counter()
                curves = curves_of(
                    tune(model, NopPruner(), args.n_configs, args.epochs, args.seed, root, f"record-{model}")
                )
                print(f"{model}: {len(curves)} curves recorded in {time.perf_counter() - started:.0f} s", flush=True)
                saved[key] = curves
                args.curves.write_text(json.dumps(saved))
            if model == "mlp":
                mlp_curves = curves
            title = "digits MLP (examples/digits.py)" if model == "mlp" else "digits CNN (two conv layers)"
            sections += ["", f"### {title}", "", *table(model, curves, args.budgets, args.epochs)]
        if args.n_live and mlp_curves is not None:
            started = time.perf_counter()
            sections += [
                "",
                "Replay vs live Tuner runs:",
                "",
                *live_check(mlp_curves, args.n_live, args.epochs, args.seed, root),
            ]
            print(f"live check in {time.perf_counter() - started:.0f} s", flush=True)
    text = "\n".join(sections)
    print(text)
    if not args.no_write:
        path = write_section("training", "## Real training\n\n" + text)
        print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
