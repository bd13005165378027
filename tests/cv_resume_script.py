"""A cross-validated tuning script for the per-fold resume tests: run as a real process, killed, then run again.

Usage: ``PYTHONPATH=REPO python cv_resume_script.py URL ROOT_DIR LEDGER``. One trial, 3 folds of 2
epochs of 4 batches. Every training batch appends ``<fold> <epoch> <pid>`` to LEDGER, so a test can
tell which process trained which fold. The batches of fold 1's second epoch are slow, to leave time
for a kill there. The tests in this process build the same Tuner with :func:`cv_tuner`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from lightning_hpo import Float, KFoldDataModule, NopPruner, Tuner
from tests.lightning_models import LinearRegression, regression_data

#: Folds, epochs per fold, and training batches per epoch (2/3 of 96 samples, by 16).
CV, MAX_EPOCHS, BATCHES = 3, 2, 4


def cv_tuner(model_cls: type[LinearRegression], storage: str, root_dir: str | Path, keep: str = "best") -> Tuner:
    """The study of one seeded configuration, cross-validated on ``CV`` folds, that keeps only its best checkpoint."""
    return Tuner(
        model_cls,
        search_space={"lr": Float(1e-2, 1e-1, log=True)},
        datamodule=KFoldDataModule(regression_data(96), batch_size=16),
        cv=CV,
        trainer_kwargs={"max_epochs": MAX_EPOCHS, "accelerator": "cpu", "devices": 1, "logger": False},
        pruner=NopPruner(),
        storage=storage,
        root_dir=root_dir,
        seed=0,
        show_progress=False,
        keep_checkpoints=keep,
    )


class Ledgered(LinearRegression):
    ledger = ""

    def training_step(self, batch, batch_idx):
        fold = Path(self.trainer.default_root_dir).name
        time.sleep(0.4 if (fold, self.current_epoch) == ("fold_1", 1) else 0.02)
        with open(Ledgered.ledger, "a") as ledger:
            ledger.write(f"{fold} {self.current_epoch} {os.getpid()}\n")
        return super().training_step(batch, batch_idx)


if __name__ == "__main__":
    url, root_dir, Ledgered.ledger = sys.argv[1:4]
    cv_tuner(Ledgered, url, root_dir).fit(n_trials=1)
    print("DONE", flush=True)
