"""lightning_hpo: hyperparameter optimization for PyTorch Lightning.

BoTorch Gaussian-process suggestions, pruning of weak trials, studies in SQLite or PostgreSQL that
survive crashes, and DDP trials under torchrun. Importing the package is cheap: the heavy parts
(torch, Lightning, BoTorch) load when first used.

How a trial flows, and the module behind each step:

1. ``Study.start_trial`` (study.py) reaps dead workers' trials (_liveness.py) and asks the sampler
   (samplers/) for a point: the space (space.py) is encoded to the unit cube, the sampler reads every
   trial from storage (storage/, the single source of truth) and returns a candidate, decoded back.
2. The loop (_loop.py; under torchrun distributed.py, with ``n_jobs`` workers.py) hands the trial to
   the Tuner (tuner.py) or the CLI (cli.py), which build the module and a Trainer (training.py).
3. At every validation the callback (callback.py) stores the monitored value and asks the pruner
   (pruners/) whether to stop; the decision is broadcast to every rank.
4. The outcome (COMPLETE, PRUNED or FAIL with its traceback) is written with ``Study.tell``; the
   next suggestion sees it. Observers (progress.py) watch the loop; snapshot.py, console.py,
   plots.py, importance.py, table.py, export.py and dashboard/ read studies.

Example:
    >>> from lightning_hpo import Study, Float
    >>> study = Study("demo", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
    >>> study.optimize(lambda p: (p["x"] - 0.3) ** 2, n_trials=4)
    >>> study.best_trial.number in range(4)
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it, loaded on first access.
_EXPORTS = {
    "Float": "lightning_hpo.space",
    "Int": "lightning_hpo.space",
    "Categorical": "lightning_hpo.space",
    "SearchSpace": "lightning_hpo.space",
    "Trial": "lightning_hpo.trial",
    "TrialState": "lightning_hpo.trial",
    "Study": "lightning_hpo.study",
    "RunOptions": "lightning_hpo._loop",
    "RegretBoundStopper": "lightning_hpo.stopping",
    "StopDecision": "lightning_hpo.stopping",
    "StudySnapshot": "lightning_hpo.snapshot",
    "Tuner": "lightning_hpo.tuner",
    "TuneResult": "lightning_hpo.tuner",
    "Fold": "lightning_hpo.folds",
    "KFoldDataModule": "lightning_hpo.folds",
    "tunable": "lightning_hpo.decorator",
    "Sampler": "lightning_hpo.samplers",
    "RandomSampler": "lightning_hpo.samplers",
    "SobolSampler": "lightning_hpo.samplers",
    "GPSampler": "lightning_hpo.samplers.gp",
    "GridSampler": "lightning_hpo.samplers.grid",
    "OptunaSampler": "lightning_hpo.samplers.optuna",
    "Pruner": "lightning_hpo.pruners",
    "NopPruner": "lightning_hpo.pruners",
    "PercentilePruner": "lightning_hpo.pruners",
    "MedianPruner": "lightning_hpo.pruners",
    "ASHAPruner": "lightning_hpo.pruners",
    "HyperbandPruner": "lightning_hpo.pruners",
    "CurvePruner": "lightning_hpo.pruners",
    "ThresholdPruner": "lightning_hpo.pruners",
    "PatientPruner": "lightning_hpo.pruners",
    "TrialReporter": "lightning_hpo.callback",
    "Storage": "lightning_hpo.storage",
    "TrialPruned": "lightning_hpo.exceptions",
    "LightningHPOError": "lightning_hpo.exceptions",
}

__all__ = sorted([*_EXPORTS, "importance"]) + ["__version__"]

# Imported now rather than lazily: once imported, a submodule becomes an attribute of its package,
# so the module `lightning_hpo.importance` would replace the function of that name. Cheap: torch
# and BoTorch load on the first call.
from lightning_hpo.importance import importance  # noqa: E402


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lightning_hpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from lightning_hpo._loop import RunOptions
    from lightning_hpo.callback import TrialReporter
    from lightning_hpo.decorator import tunable
    from lightning_hpo.exceptions import LightningHPOError, TrialPruned
    from lightning_hpo.folds import Fold, KFoldDataModule
    from lightning_hpo.pruners import (
        ASHAPruner,
        CurvePruner,
        HyperbandPruner,
        MedianPruner,
        NopPruner,
        PatientPruner,
        PercentilePruner,
        Pruner,
        ThresholdPruner,
    )
    from lightning_hpo.samplers import RandomSampler, Sampler, SobolSampler
    from lightning_hpo.samplers.gp import GPSampler
    from lightning_hpo.samplers.grid import GridSampler
    from lightning_hpo.samplers.optuna import OptunaSampler
    from lightning_hpo.snapshot import StudySnapshot
    from lightning_hpo.space import Categorical, Float, Int, SearchSpace
    from lightning_hpo.stopping import RegretBoundStopper, StopDecision
    from lightning_hpo.storage import Storage
    from lightning_hpo.study import Study
    from lightning_hpo.trial import Trial, TrialState
    from lightning_hpo.tuner import Tuner, TuneResult
