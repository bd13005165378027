"""A new user's first runs: the defaults put everything under ./lightning_hpo_runs/, and a rerun resumes.

The default directory was once ./lightning_hpo/: next to a user's script it shadowed the installed
package, so the second run failed with ``ImportError: cannot import name ... from 'lightning_hpo'
(unknown location)``. The script below runs twice with the installed package (``pip install -e``;
PYTHONPATH in a bare checkout), in a directory that holds nothing else.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lightning_hpo import Tuner
from lightning_hpo.console import DEFAULT_STORAGE
from lightning_hpo.storage import DEFAULT_DB_NAME, DEFAULT_ROOT_DIR

SCRIPT = textwrap.dedent(
    """
    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_hpo import Float, Study, Tuner


    class Line(pl.LightningModule):
        def __init__(self, lr: float = 0.1):
            super().__init__()
            self.save_hyperparameters()
            self.layer = nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.layer(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

        def _loader(self):
            x = torch.linspace(-1, 1, 32).unsqueeze(1)
            return DataLoader(TensorDataset(x, 3 * x - 1), batch_size=8)

        train_dataloader = val_dataloader = _loader


    if __name__ == "__main__":
        trainer_kwargs = {"max_epochs": 2, "accelerator": "cpu", "enable_progress_bar": False}
        tuner = Tuner(Line, search_space={"lr": Float(1e-3, 0.5, log=True)}, trainer_kwargs=trainer_kwargs,
                      seed=0, show_progress=False)
        result = tuner.fit(n_trials=2)
        study = Study("quadratic", search_space={"x": Float(-3, 3)}, seed=0)
        study.optimize(lambda params: (params["x"] - 1) ** 2, n_trials=3)
        print("tuner trials", [t.number for t in result.trials], "study trials", len(study.trials))
    """
)


def test_every_default_is_the_one_directory():
    assert DEFAULT_ROOT_DIR == "lightning_hpo_runs"
    assert inspect.signature(Tuner).parameters["root_dir"].default == DEFAULT_ROOT_DIR
    assert DEFAULT_STORAGE == str(Path(DEFAULT_ROOT_DIR) / DEFAULT_DB_NAME)


@pytest.mark.slow
def test_a_script_rerun_in_its_directory_resumes_and_lightning_hpo_finds_its_studies(tmp_path):
    (tmp_path / "tune.py").write_text(SCRIPT)

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    first = run(sys.executable, "tune.py")
    second = run(sys.executable, "tune.py")

    assert "tuner trials [0, 1] study trials 3" in first
    assert "tuner trials [0, 1] study trials 3" in second  # resumed: both studies were done
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEFAULT_ROOT_DIR, "tune.py"]
    assert sorted(p.name for p in (tmp_path / DEFAULT_ROOT_DIR).iterdir()) == ["Line", DEFAULT_DB_NAME]
    # lightning-hpo without --storage reads the same default database.
    listing = run(str(Path(sys.executable).with_name("lightning-hpo")), "studies")
    assert "Line" in listing and "quadratic" in listing
