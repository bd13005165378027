"""Tune the digits classifier with every trial trained by DDP over all the ranks of a torchrun job.

    torchrun --standalone --nproc_per_node=2 examples/ddp_digits.py --n-trials 10

Every rank runs this script; global rank 0 alone opens the study, samples each trial and records
it, and every rank trains the trial's model together (README.md, "Run on a cluster"). The same script
without torchrun trains each trial in one process. Several torchrun jobs (on several nodes, or a
SLURM array: examples/slurm_tune.sh) share one study when they get the same PostgreSQL URL:

    torchrun --standalone --nproc_per_node=8 examples/ddp_digits.py --storage postgresql+psycopg://user:pw@db/hpo
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from digits import SEARCH_SPACE, DigitsClassifier, DigitsDataModule, print_summary

from lightning_hpo import MedianPruner, Tuner
from lightning_hpo.storage import DEFAULT_ROOT_DIR


def trainer_layout() -> dict[str, object]:
    """Devices and nodes of each trial's Trainer: all the processes torchrun started (one outside torchrun)."""
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    nodes = int(os.environ.get("WORLD_SIZE", "1")) // per_node
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    return {
        "accelerator": accelerator,
        "devices": per_node,
        "num_nodes": nodes,
        "strategy": "ddp" if per_node * nodes > 1 else "auto",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=20, help="finished trials to reach, all workers together")
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument(
        "--root-dir",
        default=DEFAULT_ROOT_DIR,
        help="logs and checkpoints, on a filesystem every node shares (default: %(default)s)",
    )
    parser.add_argument("--storage", default=None, help="database URL (default: SQLite in --root-dir)")
    parser.add_argument("--study-name", default="digits_ddp")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    tuner = Tuner(
        DigitsClassifier,
        search_space=SEARCH_SPACE,
        datamodule=DigitsDataModule(),
        trainer_kwargs={"max_epochs": args.max_epochs, "log_every_n_steps": 5, **trainer_layout()},
        monitor="val_loss",
        mode="min",
        pruner=MedianPruner(n_startup_trials=5, n_warmup_steps=30),
        storage=args.storage,
        study_name=args.study_name,
        root_dir=args.root_dir,
        seed=args.seed,
    )
    result = tuner.fit(n_trials=args.n_trials)  # on every rank; each rank gets the same result

    if tuner.study is not None:  # global rank 0 (or the only process)
        print_summary(result, f"processes         {os.environ.get('WORLD_SIZE', '1')} per trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
