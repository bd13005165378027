"""The checks :class:`~lightning_hpo.Tuner` runs on its arguments at construction, before any trial runs.

Which search-space names go to the module and which to a datamodule factory, what the datamodule
must be (with ``cv``: one that receives its fold), the Trainer arguments the Tuner accepts and those
it sets itself, the logger, ``n_jobs`` and the storage it needs. Apart from
:mod:`lightning_hpo.tuner` so that the Tuner reads as set-up -> fit -> one trial; each check raises
with the rule, the value received and how to fix it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from lightning_hpo._evaluations import Evaluations
from lightning_hpo.decorator import init_arguments
from lightning_hpo.distributed import world_size
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.folds import check_folds, check_repeats
from lightning_hpo.space import SearchSpace
from lightning_hpo.storage import Storage
from lightning_hpo.trackers import check_logger_arg, logger_object_error

__all__ = [
    "check_model_arguments",
    "check_datamodule",
    "check_evaluations",
    "check_storage_for_jobs",
    "check_trainer_kwargs",
    "check_logger",
    "check_n_jobs",
    "check_mapping",
    "is_datamodule_factory",
]

# Trainer arguments the Tuner sets itself for each trial.
_MANAGED_TRAINER_ARGS = ("default_root_dir",)


def check_model_arguments(
    model_cls: type, model_kwargs: Mapping[str, Any], space: SearchSpace, datamodule: Any
) -> set[str]:
    """The space's names that go to ``model_cls``; raise for names nothing accepts."""
    named, takes_any = init_arguments(model_cls)
    accepted = set(named)
    overlap = sorted(set(model_kwargs) & set(space))
    if overlap:
        raise InvalidArgumentError(
            f"{overlap} appear both in model_kwargs and in the search space; a parameter is either fixed or tuned."
        )
    unknown_fixed = sorted(n for n in model_kwargs if n not in accepted) if not takes_any else []
    if unknown_fixed:
        raise InvalidArgumentError(
            f"model_kwargs {unknown_fixed} are not arguments of {model_cls.__name__}.__init__ "
            f"(it takes {sorted(accepted)})."
        )
    to_model = set(space) if takes_any else set(space) & accepted
    elsewhere = sorted(set(space) - to_model)
    if elsewhere and not is_datamodule_factory(datamodule):
        raise InvalidArgumentError(
            f"Search-space parameters {elsewhere} are not arguments of {model_cls.__name__}.__init__ "
            f"(it takes {sorted(accepted)}). Rename them, or pass datamodule=<function of params> to use them there."
        )
    return to_model


def check_datamodule(datamodule: Any) -> None:
    import lightning.pytorch as pl

    if datamodule is None or isinstance(datamodule, pl.LightningDataModule) or is_datamodule_factory(datamodule):
        return
    raise ArgumentTypeError(
        f"`datamodule` must be a LightningDataModule, a function params -> LightningDataModule, or None, "
        f"but got {datamodule!r}."
    )


def check_evaluations(cv: Any, repeats: Any, seed: int | None, datamodule: Any) -> Evaluations:
    evaluations = Evaluations(None if cv is None else check_folds(cv), check_repeats(repeats), seed)
    if cv is None:
        return evaluations
    dm = datamodule
    if dm is None or not (is_datamodule_factory(dm) or callable(getattr(dm, "for_fold", None))):
        raise InvalidArgumentError(
            f"cv={cv} trains each trial on {cv} folds, so the datamodule must receive the fold, but got "
            f"datamodule={dm!r}. Pass a lightning_hpo.KFoldDataModule(dataset, ...), a datamodule with a "
            "for_fold(fold) method, or a factory (params, fold) -> datamodule."
        )
    check_folds(cv, getattr(dm, "n_samples", None))
    return evaluations


def check_storage_for_jobs(n_jobs: int, storage: Storage) -> None:
    if n_jobs == 1:
        return
    if world_size() > 1:
        raise InvalidArgumentError(
            f"n_jobs={n_jobs} runs trials in worker processes, but this is one of {world_size()} torchrun "
            "ranks, which train each trial together. Use n_jobs=1 under torchrun, or several torchrun jobs on "
            "one storage."
        )
    if not storage.shareable_across_processes:
        raise InvalidArgumentError(
            f"n_jobs={n_jobs} runs trials in separate processes, which cannot share an in-memory storage "
            f"(got {storage.display_url!r}). Use a SQLite file (the default) or a PostgreSQL URL."
        )


def check_trainer_kwargs(trainer_kwargs: Mapping[str, Any]) -> None:
    import lightning.pytorch as pl

    accepted = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    unknown = sorted(set(trainer_kwargs) - accepted)
    if unknown:
        raise InvalidArgumentError(f"trainer_kwargs {unknown} are not arguments of lightning.pytorch.Trainer.")
    managed = sorted(set(trainer_kwargs) & set(_MANAGED_TRAINER_ARGS))
    if managed:
        raise InvalidArgumentError(
            f"trainer_kwargs {managed} are set by the Tuner for each trial; pass root_dir=... to the Tuner instead."
        )
    logger = trainer_kwargs.get("logger")
    if logger not in (None, True, False):
        raise logger_object_error(logger)


def check_logger(logger: Any, trainer_kwargs: Mapping[str, Any]) -> None:
    check_logger_arg(logger)
    if logger is not None and trainer_kwargs.get("logger") is False:
        raise InvalidArgumentError(
            f"logger={logger!r} asks for loggers, but trainer_kwargs['logger'] is False; drop one of the two."
        )


def check_n_jobs(n_jobs: Any) -> int:
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool):
        raise ArgumentTypeError(f"`n_jobs` must be an int, but got {n_jobs!r} ({type(n_jobs).__name__}).")
    if n_jobs < 1:
        raise InvalidArgumentError(f"`n_jobs >= 1` must hold, but got n_jobs={n_jobs!r}.")
    return n_jobs


def check_mapping(name: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"`{name}` must be a dict, but got {value!r} ({type(value).__name__}).")
    return value


def is_datamodule_factory(value: Any) -> bool:
    import lightning.pytorch as pl

    return callable(value) and not isinstance(value, pl.LightningDataModule) and not inspect.isclass(value)
