"""What preemption costs: compute wasted under periodic SIGKILLs, and the cost of the resumable checkpoint.

    python -m benchmarks.preemption                        # about 10 min on 2 loaded cores
    python -m benchmarks.preemption --trials 4 --kills 3 --seeds 1 --validations 5   # a quick look

**Wasted compute.** A study of ``--trials`` trials (``tests/resume_script.py``: a tiny regression
MLP whose every training batch sleeps 50 ms, 6 epochs of 4 batches) runs as a worker process that
is SIGKILLed ``--kills`` times, each time after a random 1 to 4 s of its training (a spot
instance simulation), and restarted until the study has its trials. The figure is the batches
trained in all / the batches of the same study without kills (trials x epochs x batches), for:

* **resume**: lightning_hpo's default, a resumable checkpoint at every validation;
* **restart**: the same with ``enable_checkpointing=False``, so a killed trial runs again from
  step 0 (once; a retry killed too is given up and a new configuration runs), as before resumable
  trials.

**Checkpoint cost.** The time of one validation (from ``on_validation_start`` to after the last
``on_validation_end``, the resumable checkpoint's write included) with and without the
:class:`~lightning_hpo.callback.ResumableCheckpoint`, for the digits MLP of ``examples/digits.py``
and for a ~100 MB model (a 5000 x 5000 linear layer, SGD without momentum so the checkpoint is the
weights only), as medians over ``--validations`` validations; the ratio is with / without.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "resume_script.py"
EPOCHS, BATCHES = 6, 4


def wasted_compute(trials: int, kills: int, seed: int, resume: bool) -> tuple[float, int]:
    """(batches trained / batches of an uninterrupted study, kills done) for one study."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger"
        ledger.touch()
        arguments = [
            *(str(SCRIPT), str(REPO), f"sqlite:///{tmp}/studies.db", f"{tmp}/runs", str(trials), str(ledger)),
            *("all", str(EPOCHS), "1" if resume else "0"),
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        done = 0
        while True:
            process = subprocess.Popen(
                [sys.executable, *arguments],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
                start_new_session=True,
            )
            seen = ""
            if done < kills:
                seen = _read_until_training(process)
                if seen.endswith("TRAINING\n"):
                    time.sleep(rng.uniform(1.0, 4.0))
                    if process.poll() is None:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.communicate()
                        done += 1
                        continue
            out = seen + process.communicate()[0]
            if process.returncode != 0 or "DONE" not in out:
                raise RuntimeError(f"the tuning process failed (exit {process.returncode})")
            break
        trained = len(ledger.read_text().splitlines())
    return trained / (trials * EPOCHS * BATCHES), done


def _read_until_training(process: subprocess.Popen[str]) -> str:
    """The process's output up to its first training batch ("TRAINING"), or all of it if it ends first."""
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        if line == "TRAINING\n":
            break
    return seen


def validation_seconds(model: str, validations: int, resumable: bool) -> float:
    """The median seconds of one validation of ``model`` ("digits" or "100mb"), with or without the checkpoint."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import Checkpoint
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_hpo.callback import ResumableCheckpoint
    from lightning_hpo.training import quiet_lightning

    class Timer(pl.Callback):
        def __init__(self) -> None:
            self.started, self.seconds = 0.0, []

        def on_validation_start(self, trainer, pl_module):
            self.started = time.perf_counter()

    class Stop(Checkpoint):  # Lightning runs Checkpoint callbacks last, in list order: after the resumable write
        def __init__(self, timer: Timer) -> None:
            self.timer = timer

        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self.timer.seconds.append(time.perf_counter() - self.timer.started)

    if model == "digits":
        sys.path.insert(0, str(REPO))
        from examples.digits import DigitsClassifier, DigitsDataModule

        module, data = DigitsClassifier(), DigitsDataModule()
    else:

        class Big(pl.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.layer = nn.Linear(5000, 5000)  # 25 M float32: 100 MB

            def training_step(self, batch, batch_idx):
                return self.layer(batch[0]).pow(2).mean()

            def validation_step(self, batch, batch_idx):
                self.log("val_loss", self.layer(batch[0]).pow(2).mean())

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=1e-6)

        x = TensorDataset(torch.randn(8, 5000))
        module, data = Big(), None
        loaders = {"train_dataloaders": DataLoader(x, batch_size=8), "val_dataloaders": DataLoader(x, batch_size=8)}
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp, quiet_lightning():
        callbacks: list[pl.Callback] = [timer, *([ResumableCheckpoint(Path(tmp), 0)] if resumable else []), Stop(timer)]
        trainer = pl.Trainer(
            max_epochs=validations,
            limit_train_batches=1,
            accelerator="cpu",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=callbacks,
            default_root_dir=tmp,
        )
        if data is not None:
            trainer.fit(module, datamodule=data)
        else:
            trainer.fit(module, **loaders)
    return statistics.median(timer.seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--validations", type=int, default=8)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(f"## Wasted compute: {args.trials} trials x {EPOCHS} epochs x {BATCHES} batches, {args.kills} SIGKILLs")
    print("| seed | resume: trained / needed | restart from zero: trained / needed |")
    print("|---|---|---|")
    for seed in range(args.seeds):
        resumed, kills_resumed = wasted_compute(args.trials, args.kills, seed, resume=True)
        restarted, kills_restarted = wasted_compute(args.trials, args.kills, seed, resume=False)
        print(f"| {seed} | {resumed:.3f} ({kills_resumed} kills) | {restarted:.3f} ({kills_restarted} kills) |")
    print(f"\n## Checkpoint cost per validation (median of {args.validations})")
    print("| model | without (ms) | with the resumable checkpoint (ms) | ratio |")
    print("|---|---|---|---|")
    for model in ("digits", "100mb"):
        without = validation_seconds(model, args.validations, resumable=False)
        with_checkpoint = validation_seconds(model, args.validations, resumable=True)
        print(f"| {model} | {1000 * without:.1f} | {1000 * with_checkpoint:.1f} | {with_checkpoint / without:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
