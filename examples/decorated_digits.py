"""Declare the search space on the model class with ``@tunable``, then tune it with no space argument.

    python examples/decorated_digits.py --n-trials 20

The decorated class stays an ordinary LightningModule (here a subclass of the MLP in digits.py): it
trains, checkpoints and loads as before. ``lightning_hpo.Tuner`` and the CLI's ``tune`` subcommand
take the space from it.
"""

from __future__ import annotations

import argparse
import sys

from digits import DigitsClassifier, DigitsDataModule

from lightning_hpo import Categorical, Float, Int, Tuner, tunable
from lightning_hpo.storage import DEFAULT_ROOT_DIR


@tunable(
    lr=Float(1e-4, 1e-1, log=True),
    hidden=Int(16, 256, log=True),
    dropout=Float(0.0, 0.5),
    optimizer=Categorical(["adam", "sgd"]),
)
class TunableDigitsClassifier(DigitsClassifier):
    """The digits MLP, its search space declared beside it (weight_decay stays at its default)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=20, help="finished trials to reach (default 20)")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument(
        "--root-dir", default=DEFAULT_ROOT_DIR, help="where studies, logs and checkpoints go (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    tuner = Tuner(
        TunableDigitsClassifier,  # no search_space=...: the decorator's
        datamodule=DigitsDataModule(),
        trainer_kwargs={"max_epochs": args.max_epochs, "accelerator": "cpu", "devices": 1, "log_every_n_steps": 10},
        monitor="val_loss",
        mode="min",
        root_dir=args.root_dir,
        seed=args.seed,
    )
    result = tuner.fit(n_trials=args.n_trials)
    model = result.load_best_model()  # load_from_checkpoint of the decorated class

    print()
    print(f"best val_loss     {result.best_value:.4f}  (trial {result.best_trial.number} of {len(result.trials)})")
    print(
        "best params       "
        + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items())
    )
    print(f"loaded model      {type(model).__name__}(lr={model.hparams.lr:.4g}, hidden={model.hparams.hidden})")
    print(f"best checkpoint   {result.best_checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
