"""@tunable: checked at decoration time, and the class stays an ordinary LightningModule."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from lightning_hpo import Categorical, Float, Int, tunable
from lightning_hpo.decorator import search_space_of
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from tests.lightning_models import LinearRegression, RegressionData

REPO = Path(__file__).resolve().parents[1]


@tunable(lr=Float(1e-3, 1e-1, log=True), hidden=Int(2, 16))
class Regression(LinearRegression):
    pass


def test_the_space_is_stored_on_the_class_and_the_class_is_returned_unchanged() -> None:
    class Plain(LinearRegression):
        pass

    assert tunable(lr=Float(0.1, 0.2))(Plain) is Plain
    assert dict(search_space_of(Plain)) == {"lr": Float(0.1, 0.2)}
    assert search_space_of(LinearRegression) is None
    assert dict(search_space_of(Regression)) == {"lr": Float(1e-3, 1e-1, log=True), "hidden": Int(2, 16)}


@pytest.mark.parametrize(
    "domains, error, message",
    [
        ({"learning_rate": Float(0.1, 0.2)}, InvalidArgumentError,
         "@tunable on Model: 'learning_rate' is not an argument of Model.__init__ (its arguments are "
         "['lr', 'hidden', 'activation'])"),
        ({"hiden": Int(2, 4)}, InvalidArgumentError, "did you mean 'hidden'?"),
        ({"args": Int(2, 4)}, InvalidArgumentError, "'args' is not an argument of Model.__init__"),
        ({"lr": (0.1, 0.2)}, ArgumentTypeError, "Parameter 'lr': expected a Float, Int or Categorical domain"),
        ({}, InvalidArgumentError, "@tunable needs at least one parameter domain"),
    ],
)  # fmt: skip
def test_names_are_checked_at_decoration_time(domains, error, message) -> None:
    with pytest.raises(error, match=re.escape(message)):

        @tunable(**domains)
        class Model(pl.LightningModule):
            def __init__(self, lr: float = 0.1, hidden: int = 4, activation: str = "relu", *args) -> None:
                super().__init__()


def test_any_name_is_accepted_by_an_init_with_kwargs() -> None:
    @tunable(anything=Categorical(["a", "b"]))
    class Flexible(pl.LightningModule):
        def __init__(self, **kwargs) -> None:
            super().__init__()

    assert list(search_space_of(Flexible)) == ["anything"]


def test_only_lightning_modules_are_decorated() -> None:
    with pytest.raises(ArgumentTypeError, match="@tunable decorates LightningModule subclasses"):
        tunable(lr=Float(0.1, 0.2))(torch.nn.Linear)


def test_subclasses_inherit_the_space_and_may_replace_it() -> None:
    class Inherits(Regression):
        pass

    @tunable(activation=Categorical(["relu", "tanh"]))
    class Replaces(Regression):
        pass

    assert search_space_of(Inherits) == search_space_of(Regression)
    assert list(search_space_of(Replaces)) == ["activation"]
    assert list(search_space_of(Regression)) == ["hidden", "lr"]  # the parent keeps its own


def test_a_decorated_module_pickles_trains_checkpoints_and_loads(tmp_path: Path) -> None:
    model = Regression(lr=0.05, hidden=3)
    copy = pickle.loads(pickle.dumps(model))
    assert type(copy) is Regression and copy.hparams == model.hparams
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), model.state_dict().values()))

    trainer = pl.Trainer(
        max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=RegressionData())
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = Regression.load_from_checkpoint(tmp_path / "model.ckpt")
    assert type(loaded) is Regression
    assert dict(loaded.hparams) == {"lr": 0.05, "hidden": 3, "activation": "relu"}  # save_hyperparameters() saw them
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


@pytest.mark.slow
def test_decorated_example_tunes_with_the_decorators_space(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "decorated_digits.py"), "--n-trials", "2", "--max-epochs", "1",
         "--root-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    params = re.search(r"^best params\s+(.+)$", done.stdout, re.MULTILINE)
    assert params, done.stdout
    assert sorted(p.split("=")[0] for p in params.group(1).split(", ")) == ["dropout", "hidden", "lr", "optimizer"]
    assert re.search(r"^loaded model\s+TunableDigitsClassifier\(lr=", done.stdout, re.MULTILINE)
    assert (tmp_path / "runs" / "TunableDigitsClassifier" / "trial_1").is_dir()
