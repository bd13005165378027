"""Tune an MLP classifier on scikit-learn's bundled digits data (8x8 images, 10 classes).

    python examples/digits.py --n-trials 30

The module and datamodule are written the way Lightning's documentation writes them; the Tuner
tunes them without changes. Rerunning the same command resumes the study (it counts finished trials).
"""

from __future__ import annotations

import argparse
import shlex
import sys

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_hpo import Categorical, Float, Int, Tuner, TuneResult
from lightning_hpo.storage import DEFAULT_ROOT_DIR
from lightning_hpo.training import quiet_lightning


class DigitsDataModule(pl.LightningDataModule):
    """scikit-learn's digits, split 70/15/15 with a fixed seed, pixels scaled to [0, 1]."""

    def __init__(self, batch_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.seed = seed

    def setup(self, stage: str | None = None) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        n_train, n_val = int(0.7 * len(x)), int(0.15 * len(x))
        parts = order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
        self.train_set, self.val_set, self.test_set = (TensorDataset(x[i], y[i]) for i in parts)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=256)


class DigitsClassifier(pl.LightningModule):
    """A two-layer MLP; the hyperparameters are its ``__init__`` arguments."""

    def __init__(
        self,
        lr: float = 1e-3,
        hidden: int = 64,
        dropout: float = 0.1,
        weight_decay: float = 1e-5,
        optimizer: str = "adam",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(64, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("test_acc", (self(x).argmax(dim=1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.hparams.optimizer == "sgd":
            return torch.optim.SGD(
                self.parameters(), lr=self.hparams.lr, momentum=0.9, weight_decay=self.hparams.weight_decay
            )
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)


SEARCH_SPACE = {
    "lr": Float(1e-4, 1e-1, log=True),
    "hidden": Int(16, 256, log=True),
    "dropout": Float(0.0, 0.5),
    "weight_decay": Float(1e-6, 1e-2, log=True),
    "optimizer": Categorical(["adam", "sgd"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=30, help="finished trials to reach (default 30)")
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument(
        "--root-dir", default=DEFAULT_ROOT_DIR, help="where studies, logs and checkpoints go (default: %(default)s)"
    )
    parser.add_argument("--storage", default=None, help="database URL (default: SQLite in --root-dir)")
    parser.add_argument("--study-name", default="digits_mlp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (a GPU when there is one)")
    args = parser.parse_args(argv)

    tuner = Tuner(
        DigitsClassifier,
        search_space=SEARCH_SPACE,
        datamodule=DigitsDataModule(),
        trainer_kwargs={
            "max_epochs": args.max_epochs,
            "accelerator": args.accelerator,
            "devices": 1,
            "log_every_n_steps": 10,
        },
        monitor="val_loss",
        mode="min",
        storage=args.storage,
        study_name=args.study_name,
        root_dir=args.root_dir,
        seed=args.seed,
    )
    try:
        result = tuner.fit(n_trials=args.n_trials)
    except KeyboardInterrupt:
        print(
            f"\nInterrupted. Everything finished so far is saved in {tuner.study.storage.display_url}; "
            "rerun the same command to resume.",
            file=sys.stderr,
        )
        return 130

    with quiet_lightning():  # the test Trainer without the banners and known warnings the trials don't show
        model = result.load_best_model()
        trainer = pl.Trainer(
            accelerator=args.accelerator, devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
        )
        test_acc = trainer.test(model, datamodule=DigitsDataModule(), verbose=False)[0]["test_acc"]

    print()
    print_summary(result, f"test accuracy     {test_acc:.4f}  (best checkpoint on the held-out test split)")
    return 0


def print_summary(result: TuneResult, *details: str) -> None:
    """The best trial, its parameters, then ``details``, and where the study and the checkpoint are."""
    print(f"best val_loss     {result.best_value:.4f}  (trial {result.best_trial.number} of {len(result.trials)})")
    print(
        "best params       "
        + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
    )
    for line in details:
        print(line)
    print(f"study             {result.study.name!r} in {result.study.storage.display_url}")
    print(f"best checkpoint   {result.best_checkpoint}")
    print(f"dashboard         lightning-hpo dashboard --storage {shlex.quote(result.study.storage.display_url)}")


if __name__ == "__main__":
    sys.exit(main())
