"""Tasks that really train models: two scikit-learn models tuned by cross-validation on bundled
datasets, and the digits MLP of ``examples/digits.py`` trained with Lightning.

Each objective is deterministic (fixed folds, fixed training seed), so the value a method sees is
the value it gets. No exact optimum is known: regret is taken against the best value any method
found on the task in the same cache.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.tasks.base import Evaluation, Objective, Task, register
from lightning_hpo.space import Categorical, Float, Int

#: Seeds of the tasks that train models: as many as the cheap tasks (10) since they cost only
#: ~20 min more for every method; at 5 seeds the medians of the two GP samplers were within noise.
TRAINING_SEEDS = 10
#: Epochs per digits MLP trial: about 0.5 s on one core, enough for losses to separate configs.
DIGITS_EPOCHS = 10
#: Returned for a digits run whose validation loss is never finite (diverged): worse than chance
#: (log 10 = 2.3), so every method is told the same thing about it.
DIVERGED_LOSS = 5.0


def _deterministic(value: float) -> Evaluation:
    return Evaluation(value, value)


@register("svc_breast_cancer")
def svc_breast_cancer() -> Task:
    def make_objective(seed: int) -> Objective:
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import StratifiedKFold, cross_val_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        x, y = load_breast_cancer(return_X_y=True)
        folds = StratifiedKFold(5, shuffle=True, random_state=0)

        def objective(params: Mapping[str, Any]) -> Evaluation:
            model = make_pipeline(StandardScaler(), SVC(C=params["C"], gamma=params["gamma"], kernel=params["kernel"]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                auc = cross_val_score(model, x, y, cv=folds, scoring="roc_auc").mean()
            return _deterministic(1.0 - float(auc))

        return objective

    # ROC AUC (from the decision function) rather than accuracy: accuracy moves in steps of one
    # sample and a wide plateau of configurations ties at the best step, which no method can miss.
    return Task(
        name="svc_breast_cancer",
        summary="scikit-learn SVC (standardized inputs) on breast_cancer, 1 - 5-fold CV ROC AUC",
        space={
            "C": Float(1e-2, 1e3, log=True),
            "gamma": Float(1e-5, 1.0, log=True),
            "kernel": Categorical(["rbf", "poly", "sigmoid"]),
        },
        make_objective=make_objective,
        default_seeds=TRAINING_SEEDS,
    )


@register("gb_diabetes")
def gb_diabetes() -> Task:
    def make_objective(seed: int) -> Objective:
        from sklearn.datasets import load_diabetes
        from sklearn.ensemble import GradientBoostingRegressor
        from sklearn.model_selection import KFold, cross_val_score

        x, y = load_diabetes(return_X_y=True)
        folds = KFold(3, shuffle=True, random_state=0)

        def objective(params: Mapping[str, Any]) -> Evaluation:
            model = GradientBoostingRegressor(**params, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                score = cross_val_score(model, x, y, cv=folds, scoring="neg_root_mean_squared_error").mean()
            return _deterministic(-float(score))

        return objective

    return Task(
        name="gb_diabetes",
        summary="scikit-learn GradientBoostingRegressor on diabetes, 3-fold CV RMSE",
        space={
            # Bounded so that the slowest configuration stays near a second on one core.
            "n_estimators": Int(10, 200, log=True),
            "learning_rate": Float(1e-3, 1.0, log=True),
            "max_depth": Int(1, 5),
            "subsample": Float(0.2, 1.0),
            "min_samples_leaf": Int(1, 100, log=True),
            "max_features": Float(0.1, 1.0),
            "loss": Categorical(["squared_error", "absolute_error"]),
        },
        make_objective=make_objective,
        default_seeds=TRAINING_SEEDS,
    )


@functools.cache
def digits_example() -> ModuleType:
    """``examples/digits.py`` as a module (examples/ is not a package)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "digits.py"
    spec = importlib.util.spec_from_file_location("lightning_hpo_examples_digits", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@register("digits_mlp")
def digits_mlp() -> Task:
    example = digits_example()

    def make_objective(seed: int) -> Objective:
        import lightning.pytorch as pl

        for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed"):
            logging.getLogger(name).setLevel(logging.WARNING)
        datamodule = example.DigitsDataModule(seed=0)

        class LossRecorder(pl.Callback):
            def __init__(self) -> None:
                self.losses: list[float] = []

            def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
                self.losses.append(float(trainer.callback_metrics["val_loss"]))

        def objective(params: Mapping[str, Any]) -> Evaluation:
            # The same training seed for every configuration: the value is a function of params.
            pl.seed_everything(0, verbose=False)
            recorder = LossRecorder()
            trainer = pl.Trainer(
                max_epochs=DIGITS_EPOCHS,
                accelerator="cpu",
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                callbacks=[recorder],
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trainer.fit(example.DigitsClassifier(**params), datamodule=datamodule)
            finite = [v for v in recorder.losses if math.isfinite(v)]
            # The best validation, as lightning_hpo.Tuner reports a trial's value.
            return _deterministic(min(finite) if finite else DIVERGED_LOSS)

        return objective

    return Task(
        name="digits_mlp",
        summary=f"examples/digits.py MLP, best validation loss in {DIGITS_EPOCHS} epochs (Lightning)",
        space=example.SEARCH_SPACE,
        make_objective=make_objective,
        default_seeds=TRAINING_SEEDS,
    )
