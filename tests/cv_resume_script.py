"""A cross-validated tuning script for the per-fold resume test: run as a real process, killed, then run again.

Usage: ``python cv_resume_script.py REPO URL ROOT_DIR LEDGER [KEEP_CHECKPOINTS]``. One trial, 3 folds of
2 epochs of 4 batches. Every training batch appends ``<fold> <epoch> <pid>`` to LEDGER, so a test can
tell which process trained which fold. The batches of fold 1's second epoch are slow, to leave time
for a kill there.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, sys.argv[1])

from lightning_hpo import Float, KFoldDataModule, NopPruner, Tuner  # noqa: E402
from tests.lightning_models import LinearRegression, regression_data  # noqa: E402

URL, ROOT_DIR, LEDGER = sys.argv[2], sys.argv[3], sys.argv[4]
KEEP = sys.argv[5] if len(sys.argv) > 5 else "best"
#: Folds, epochs per fold, and training batches per epoch (2/3 of 96 samples, by 16).
CV, MAX_EPOCHS, BATCHES = 3, 2, 4
SLOW_FOLD, SLOW_EPOCH = "fold_1", 1


class Ledgered(LinearRegression):
    def training_step(self, batch, batch_idx):
        fold = Path(self.trainer.default_root_dir).name
        time.sleep(0.4 if (fold, self.current_epoch) == (SLOW_FOLD, SLOW_EPOCH) else 0.02)
        with open(LEDGER, "a") as ledger:
            ledger.write(f"{fold} {self.current_epoch} {os.getpid()}\n")
        return super().training_step(batch, batch_idx)


if __name__ == "__main__":
    tuner = Tuner(
        Ledgered,
        search_space={"lr": Float(1e-2, 1e-1, log=True)},
        datamodule=KFoldDataModule(regression_data(96), batch_size=16),
        cv=CV,
        trainer_kwargs={"max_epochs": MAX_EPOCHS, "accelerator": "cpu", "devices": 1, "logger": False},
        pruner=NopPruner(),
        storage=URL,
        root_dir=ROOT_DIR,
        seed=0,
        show_progress=False,
        keep_checkpoints=KEEP,
    )
    tuner.fit(n_trials=1)
    print("DONE", flush=True)
