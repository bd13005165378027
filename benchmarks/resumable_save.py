"""What one resumable checkpoint costs the trial, written each way the Tuner can write it.

    python -m benchmarks.resumable_save            # about a minute on 2 cores

Trains the digits MLP of ``examples/digits.py`` for one epoch with the Tuner's
:class:`~lightning_hpo.callback.ResumableCheckpoint`, then saves its checkpoint ``--saves`` times
each way, in turns (``--rounds``):

* **lightning**: Lightning's ``trainer.save_checkpoint`` (fsspec's staging file) and the rename, on
  the training thread: what the Tuner does for strategies and CheckpointIO plugins that save their
  own way, and did for every trial before it wrote in the background;
* **here**: the state collected and written with ``torch.save`` to a temporary file in the trial's
  directory and renamed, all on the training thread (no fsspec staging, no background thread);
* **background, waiting**: the state collected and copied on the training thread, written by a
  background thread, waited for at once (the cost of the work itself, without overlap);
* **background**: the same, not waited for: the next save waits for the previous write, as at
  the next validation: what the Tuner does.

Per save: the CPU time of the training thread, of the whole process (all threads), and wall time.
One torch thread. Median over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.tasks.training import digits_example
from benchmarks.tuner_overhead import _one_thread_in


def measure(saves: int, rounds: int) -> dict[str, dict[str, float]]:
    import lightning.pytorch as pl

    from lightning_hpo._resume import write_resumable
    from lightning_hpo.callback import ResumableCheckpoint

    example = digits_example()
    root = Path(tempfile.mkdtemp())
    resumable = ResumableCheckpoint(root, 0, every_seconds=1e9)
    best = pl.callbacks.ModelCheckpoint(dirpath=root / "checkpoints", monitor="val_loss", filename="best")
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=4,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        callbacks=[best, resumable],
        default_root_dir=root,
    )
    trainer.fit(example.DigitsClassifier(), datamodule=example.DigitsDataModule())
    step = trainer.global_step

    def here() -> None:
        write_resumable(trainer._checkpoint_connector.dump_checkpoint(weights_only=False), root, step)

    ways: dict[str, Callable[[], None]] = {
        "lightning": lambda: resumable._save_with_lightning(trainer, step),
        "here": here,
        "background, waiting": lambda: resumable.save(trainer, wait=True),
        "background": lambda: resumable.save(trainer),
    }
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    for _ in range(rounds):
        for way, save in ways.items():
            save()
            resumable.wait()
            clocks = (time.thread_time(), time.process_time(), time.perf_counter())
            for _ in range(saves):
                save()
            thread = time.thread_time() - clocks[0]  # before the last wait: that is not training-thread work
            resumable.wait()
            runs[way].append(
                {
                    "training thread CPU": thread,
                    "process CPU": time.process_time() - clocks[1],
                    "wall": time.perf_counter() - clocks[2],
                }
            )
    return {
        way: {clock: 1000 * statistics.median(r[clock] for r in rs) / saves for clock in rs[0]}
        for way, rs in runs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resumable_save", description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=200, help="saves per way and round (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args(argv)
    with _one_thread_in(Path(tempfile.gettempdir())):
        figures = measure(args.saves, args.rounds)
    clocks = list(next(iter(figures.values())))
    print("| ms per save | " + " | ".join(clocks) + " |")
    print("|---|" + "---|" * len(clocks))
    for way, cost in figures.items():
        print(f"| {way} | " + " | ".join(f"{cost[clock]:.2f}" for clock in clocks) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
