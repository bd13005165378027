"""Train, or tune, the digits MLP from the command line: a LightningCLI script.

This is a training script as Lightning's LightningCLI documentation writes one. The one change that
gives it a ``tune`` subcommand, beside fit/validate/test/predict, is where LightningCLI comes from:

    python examples/cli_digits.py fit  --config examples/cli_digits.yaml
    python examples/cli_digits.py tune --config examples/cli_digits.yaml --tune examples/cli_digits_tune.yaml
    python examples/cli_digits.py fit  --config lightning_hpo_runs/DigitsClassifier/best.yaml

``tune`` ends by writing the best trial's full config and printing the last command.
"""

from digits import DigitsClassifier, DigitsDataModule

# from lightning.pytorch.cli import LightningCLI
from lightning_hpo.cli import LightningCLI


def cli_main() -> None:
    LightningCLI(DigitsClassifier, DigitsDataModule)  # subclass mode works too


if __name__ == "__main__":
    cli_main()
