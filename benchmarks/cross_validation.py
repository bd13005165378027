"""Cross-validated trials against a single split, on small data, in one run: writes CROSS_VALIDATION.md.

    nice -n 10 python benchmarks/cross_validation.py                  # ~10 min on 2 loaded cores
    python benchmarks/cross_validation.py --seeds 1 --n-trials 4       # quick look

Two parts:

1. **Which reports make pruners compare like with like** (a replay, no training): synthetic fold
   curves (each configuration's quality, a difficulty per fold shared by all trials, noise per
   trial and fold) run through a real Study with its default pruner (ASHA), reported at fold-major
   steps either as the fold's own value or as the running mean over folds; the figures are the
   share of work kept and the true quality of the configuration each study picks.
2. **Real training**: an MLP on scikit-learn's digits and breast_cancer, a held-out test set (30%,
   stratified) never used in tuning. The same random configurations (same sampler seed) are judged
   by a single split (fold 0 of 5: 20% validation), by 5-fold cross-validation without pruning, and
   by 5-fold cross-validation with the default pruner. The configuration each picks is retrained on
   the whole tuning pool and scored on the test set; per seed the comparison is paired (same data
   split, same configurations). Work is training steps (a cross-validated trial's fold-major steps
   count every fold's), and wall time.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.aggregate import _wilcoxon  # noqa: E402
from lightning_hpo import (  # noqa: E402
    Float,
    Fold,
    Int,
    KFoldDataModule,
    Study,
    Tuner,
    _fold_reporter,  # noqa: E402
)
from lightning_hpo._budget import PLANNED_STEPS_ATTR  # noqa: E402
from lightning_hpo.pruners import NopPruner  # noqa: E402
from lightning_hpo.samplers import RandomSampler  # noqa: E402
from lightning_hpo.trial import TrialState  # noqa: E402

K = 5
METHODS = ("single", "cv", "cv_pruned", "cv_pruned_fold")
SPACE = {
    "lr": Float(1e-4, 3e-1, log=True),
    "hidden": Int(4, 256, log=True),
    "dropout": Float(0.0, 0.6),
    "weight_decay": Float(1e-6, 1e-1, log=True),
}


# -- part 1: the replay that chose the reports -------------------------------------------------


def replay(mode: str, seed: int, n_trials: int = 20, steps: int = 6, noise: float = 0.08) -> tuple[float, float]:
    """(share of steps run, true quality of the picked configuration minus the best one's) for one study."""
    rng = random.Random(seed)
    difficulty = [rng.gauss(0, 0.1) for _ in range(K)]
    quality = [rng.uniform(0, 1) for _ in range(n_trials)]
    study = Study("replay", search_space={"x": Float(0, 1)}, storage=":memory:", seed=seed)
    run_steps = 0
    picked: dict[int, float] = {}
    for i, q in enumerate(quality):
        trial = study.ask()
        study.storage.update_trial(trial.id, attrs={PLANNED_STEPS_ATTR: K * steps})
        finished: list[float] = []
        pruned = False
        for fold in range(K):
            offset = rng.gauss(0, noise)
            curve = [q + difficulty[fold] + offset + 0.5 * math.exp(-s / 3) for s in range(1, steps + 1)]
            for s, value in enumerate(curve, start=1):
                reported = statistics.fmean([*finished, value]) if mode == "running_mean" else value
                study.report(trial, fold * steps + s, reported)
                run_steps += 1
                if study.should_prune(trial):
                    pruned = True
                    break
            if pruned:
                break
            finished.append(min(curve))
        if pruned:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, statistics.fmean(finished))
            picked[i] = statistics.fmean(finished)
    best = min(picked, key=picked.__getitem__)
    return run_steps / (n_trials * K * steps), quality[best] - min(quality)


# -- part 2: real training ---------------------------------------------------------------------


class MLP(pl.LightningModule):
    def __init__(self, n_in: int, n_out: int, lr: float, hidden: int, dropout: float, weight_decay: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_out))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("test_acc", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)


def load(name: str, seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], int]:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    data = datasets.load_digits() if name == "digits" else datasets.load_breast_cancer()
    x_pool, x_test, y_pool, y_test = train_test_split(
        data.data, data.target, test_size=0.3, stratify=data.target, random_state=seed
    )
    mean, std = x_pool.mean(0), x_pool.std(0) + 1e-8
    return ((x_pool - mean) / std, y_pool), ((x_test - mean) / std, y_test), int(data.target.max()) + 1


def tune(method: str, pool: Any, n_out: int, seed: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    dm = KFoldDataModule(pool, batch_size=64, stratify=True)
    options: dict[str, Any] = {"pruner": NopPruner()} if method in ("single", "cv") else {}
    if method == "single":
        options["datamodule"] = dm.for_fold(Fold(0, K, seed=seed))
    else:
        options.update(datamodule=dm, cv=K)
    # cv_pruned reports the running mean over folds, cv_pruned_fold each fold's own value.
    _fold_reporter.REPORTS = "fold" if method == "cv_pruned_fold" else "running_mean"
    tuner = Tuner(
        MLP,
        search_space=SPACE,
        model_kwargs={"n_in": pool[0].shape[1], "n_out": n_out},
        trainer_kwargs={"max_epochs": args.max_epochs, "logger": False, "enable_checkpointing": False},
        sampler=RandomSampler(seed=seed),
        root_dir=root,
        study_name=f"{method}",
        seed=seed,
        show_progress=False,
        **options,
    )
    start = time.perf_counter()
    result = tuner.fit(n_trials=args.n_trials)
    seconds = time.perf_counter() - start
    steps = sum(max(t.intermediate_values, default=0) for t in result.trials)
    return {"params": result.best_params, "seconds": seconds, "steps": steps}


def test_accuracy(
    params: dict[str, Any], pool: Any, test: Any, n_out: int, seed: int, args: argparse.Namespace
) -> float:
    pl.seed_everything(seed, verbose=False)
    data = KFoldDataModule(pool, batch_size=64, test_dataset=test)
    model = MLP(n_in=pool[0].shape[1], n_out=n_out, **params)
    trainer = pl.Trainer(
        max_epochs=args.max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=data._loader(data.dataset, shuffle=True))
    return float(trainer.test(model, dataloaders=data.test_dataloader(), verbose=False)[0]["test_acc"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--n-trials", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--datasets", default="digits,breast_cancer")
    parser.add_argument("--replay-seeds", type=int, default=10)
    parser.add_argument("--methods", default=",".join(METHODS), help="single must be one of them")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "CROSS_VALIDATION.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lines = [f"# Cross-validation: `python benchmarks/cross_validation.py {' '.join(argv or sys.argv[1:])}`", ""]

    lines += ["## Reports at fold-major steps: the fold's value or the running mean (replay, ASHA)", ""]
    lines += ["| reports | share of steps run | regret of the pick (true quality, mean) |", "|---|---|---|"]
    for mode in ("fold", "running_mean") if args.replay_seeds else ():
        runs = [replay(mode, s) for s in range(args.replay_seeds)]
        work, regret = statistics.fmean(r[0] for r in runs), statistics.fmean(r[1] for r in runs)
        lines.append(f"| {mode} | {work:.3f} | {regret:.4f} |")
        print(lines[-1], flush=True)
    lines.append("")

    lines += ["## Real training: single split vs 5-fold CV (same configurations, paired by seed)", ""]
    lines += [
        "| dataset | seed | test acc single | cv | cv+pruning (running mean) | cv+pruning (fold values) "
        "| steps cv / single | time cv / single | steps pruning saves in cv (running mean) | (fold values) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, list[tuple[float, ...]]] = {}
    for name in args.datasets.split(","):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            pool, test, n_out = load(name, seed)
            with tempfile.TemporaryDirectory() as tmp:
                runs = {m: tune(m, pool, n_out, seed, args, Path(tmp)) for m in args.methods.split(",")}
            cache: dict[str, float] = {}
            acc = {}
            for m, run in runs.items():
                key = repr(sorted(run["params"].items()))
                if key not in cache:
                    cache[key] = test_accuracy(run["params"], pool, test, n_out, seed, args)
                acc[m] = cache[key]
            missing = {"steps": math.nan, "seconds": math.nan}  # a method left out by --methods
            acc.update({m: math.nan for m in METHODS if m not in acc})
            runs.update({m: missing for m in METHODS if m not in runs})
            row = (
                acc["single"],
                acc["cv"],
                acc["cv_pruned"],
                acc["cv_pruned_fold"],
                runs["cv"]["steps"] / runs["single"]["steps"],
                runs["cv"]["seconds"] / runs["single"]["seconds"],
                1 - runs["cv_pruned"]["steps"] / runs["cv"]["steps"],
                1 - runs["cv_pruned_fold"]["steps"] / runs["cv"]["steps"],
            )
            summary.setdefault(name, []).append(row)
            lines.append(f"| {name} | {seed} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
            print(lines[-1], flush=True)
    lines += ["", "Means per dataset (cv - single: the paired difference of test accuracy):", ""]
    lines += [
        "| dataset | cv - single | cv+pruning - single (running mean) | (fold values) | cv wins/ties/losses "
        "| Wilcoxon p: cv, cv+pruning vs single | steps ratio | time ratio | pruning saves (running mean) "
        "| (fold values) |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in summary.items():
        diffs = [statistics.fmean(r[i] - r[0] for r in rows) for i in (1, 2, 3)]
        diff = [r[1] - r[0] for r in rows]
        record = f"{sum(d > 0 for d in diff)}/{sum(d == 0 for d in diff)}/{sum(d < 0 for d in diff)}"
        single = [r[0] for r in rows]
        tests = ", ".join(f"{_wilcoxon([r[i] for r in rows], single):.2g}" for i in (1, 2))
        means = [statistics.fmean(r[i] for r in rows) for i in (4, 5, 6, 7)]
        cells = [f"{d:+.4f}" for d in diffs] + [record, tests] + [f"{m:.2f}" for m in means]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
