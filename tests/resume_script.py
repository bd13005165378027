"""A tuning script for the resume tests: run as a real process, killed or signalled, then run again.

Usage: ``python resume_script.py REPO URL ROOT_DIR N_TRIALS LEDGER [KEEP_CHECKPOINTS [MAX_EPOCHS [RESUME]]]``
(RESUME ``0``: no checkpoints, so a killed trial restarts from zero as before resumable trials). Every
training batch appends ``<lr> <epoch> <pid>`` to LEDGER, so a test can count the batches each
configuration trained over all runs. "TRAINING" is printed at the first batch of each process.
``RESUME_SCRIPT_N_JOBS=k`` in the environment runs k trials at once (the Tuner's worker processes).
Under torchrun every rank runs it; only rank 0 writes the ledger.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, sys.argv[1])

from lightning_hpo import Float, NopPruner, Tuner  # noqa: E402
from tests.lightning_models import LinearRegression, RegressionData  # noqa: E402

URL, ROOT_DIR, N_TRIALS, LEDGER = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
KEEP = sys.argv[6] if len(sys.argv) > 6 else "all"
#: Epochs per trial, and training batches per epoch (128 samples / 32).
MAX_EPOCHS, BATCHES = int(sys.argv[7]) if len(sys.argv) > 7 else 4, 4
RESUME = sys.argv[8] != "0" if len(sys.argv) > 8 else True
#: Trials run at once, each in a worker process of its own (the Tuner's ``n_jobs``).
N_JOBS = int(os.environ.get("RESUME_SCRIPT_N_JOBS", "1"))
#: Seconds per training batch: a kill at a random moment lands at a random batch.
BATCH_SECONDS = float(os.environ.get("RESUME_SCRIPT_BATCH_SECONDS", "0.05"))
DISTRIBUTED = "LOCAL_RANK" in os.environ
RANK = int(os.environ.get("RANK", "0"))
_first = [True]


class Ledgered(LinearRegression):
    def training_step(self, batch, batch_idx):
        time.sleep(BATCH_SECONDS)
        if RANK == 0:
            with open(LEDGER, "a") as ledger:
                ledger.write(f"{self.hparams.lr!r} {self.current_epoch} {os.getpid()}\n")
        if _first[0]:
            _first[0] = False
            print("TRAINING", flush=True)
        return super().training_step(batch, batch_idx)


trainer_kwargs = {"max_epochs": MAX_EPOCHS, "accelerator": "cpu", "devices": 1, "logger": False}
if not RESUME:
    trainer_kwargs["enable_checkpointing"] = False
if DISTRIBUTED:
    trainer_kwargs.update(devices=int(os.environ["LOCAL_WORLD_SIZE"]), strategy="ddp", use_distributed_sampler=True)
if __name__ == "__main__":  # n_jobs workers import this module again (spawn)
    tuner = Tuner(
        Ledgered,
        search_space={"lr": Float(1e-3, 1e-1, log=True)},
        datamodule=RegressionData(batch_size=32 // (2 if DISTRIBUTED else 1)),
        trainer_kwargs=trainer_kwargs,
        pruner=NopPruner(),
        storage=URL,
        root_dir=ROOT_DIR,
        seed=0,
        show_progress=False,
        keep_checkpoints=KEEP,
        n_jobs=N_JOBS,
    )
    tuner.fit(n_trials=N_TRIALS)
    print("DONE", flush=True)
