"""Cross-validation folds: what a trial's datamodule receives, and a datamodule that splits a dataset into k folds.

With ``Tuner(..., cv=k)`` a trial trains k models, one per fold (see :mod:`lightning_hpo._evaluations`).
**The contract for how a datamodule gets its fold**: for each evaluation the Tuner builds the
datamodule from the ``datamodule`` argument and a :class:`Fold`:

* a datamodule object with a ``for_fold(fold)`` method (such as :class:`KFoldDataModule`): the Tuner
  uses ``datamodule.for_fold(fold)``;
* a factory that takes the fold, ``factory(params, fold)`` (a second positional parameter, or one
  named ``fold``): the Tuner uses what it returns;
* a factory ``factory(params)`` that returns an object with ``for_fold``: the Tuner uses
  ``factory(params).for_fold(fold)``, e.g. ``lambda p: KFoldDataModule(ds, batch_size=p["batch_size"])``.

A fold's split must depend only on the :class:`Fold`, never on the trial: every trial then trains
fold 0 on the same data, so the pruner compares like with like (:attr:`Fold.seed` is the same for
every trial of a study, and differs between repeats).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError

__all__ = ["Fold", "KFoldDataModule", "check_folds", "check_repeats", "datamodule_for_fold", "takes_fold"]


@dataclass(frozen=True)
class Fold:
    """Which part of the data one evaluation of a cross-validated trial validates on.

    Attributes:
        index: the validation fold, ``0 <= index < k``; the other ``k - 1`` folds are the training data.
        k: the number of folds.
        seed: the seed of the split's shuffle: the same for every trial of a study, one per repeat
            (``Tuner(seed=s)``: ``s + repeat``; no seed: ``repeat``).
        repeat: which of the ``repeats`` this evaluation belongs to (``0`` without repeats).
    """

    index: int
    k: int
    seed: int = 0
    repeat: int = 0

    def __post_init__(self) -> None:
        check_folds(self.k)
        if not _is_int(self.index) or not 0 <= self.index < self.k:
            raise InvalidArgumentError(f"A Fold's index must be an int in [0, k={self.k}), but got {self.index!r}.")


def check_folds(cv: Any, n_samples: int | None = None) -> int:
    """``cv`` as the number of folds, or a clear error: an int ``>= 2``, at most ``n_samples``."""
    if not _is_int(cv):
        raise ArgumentTypeError(f"`cv` (the number of folds) must be an int, but got {cv!r} ({type(cv).__name__}).")
    if cv < 2:
        raise InvalidArgumentError(
            f"`cv >= 2` must hold (k-fold cross-validation needs two folds or more), but got cv={cv}. "
            "Leave cv=None to train each trial once on the datamodule's own split."
        )
    if n_samples is not None and cv > n_samples:
        raise InvalidArgumentError(
            f"`cv` must be at most the dataset's size, but got cv={cv} for {n_samples} samples: "
            "each fold needs one sample or more. Use fewer folds."
        )
    return int(cv)


def check_repeats(repeats: Any) -> int:
    """``repeats`` as an int ``>= 1``, or a clear error."""
    if not _is_int(repeats):
        raise ArgumentTypeError(f"`repeats` must be an int, but got {repeats!r} ({type(repeats).__name__}).")
    if repeats < 1:
        raise InvalidArgumentError(
            f"`repeats >= 1` must hold (the number of seeds each configuration trains with), but got repeats={repeats}."
        )
    return int(repeats)


def takes_fold(factory: Callable[..., Any]) -> bool:
    """Whether a datamodule factory can be called as ``factory(params, fold)``."""
    try:
        inspect.signature(factory).bind({}, None)
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): assume the plain ``factory(params)``
        return False
    return True


def datamodule_for_fold(datamodule: Any, params: dict[str, Any], fold: Fold, *, is_factory: bool) -> Any:
    """The datamodule of one evaluation, by the contract in the module documentation."""
    if is_factory and takes_fold(datamodule):
        return datamodule(params, fold)
    built = datamodule(params) if is_factory else datamodule
    if not callable(getattr(built, "for_fold", None)):
        where = "The datamodule factory returned" if is_factory else "The datamodule is"
        raise InvalidArgumentError(
            f"{where} {type(built).__name__}, which cannot receive a fold, so cross-validation would train "
            "on the same split k times. Pass a KFoldDataModule (lightning_hpo.KFoldDataModule(dataset, ...)), a "
            "datamodule with a for_fold(fold) method, or a factory (params, fold) -> datamodule."
        )
    return built.for_fold(fold)


class KFoldDataModule(pl.LightningDataModule):
    """A datamodule that splits one dataset into k folds, optionally stratified, with a seeded shuffle.

    Give it to ``Tuner(datamodule=..., cv=k)``: each evaluation trains on ``k - 1`` folds and validates
    on the remaining one (the Tuner calls :meth:`for_fold`). Keep a test set apart from ``dataset``:
    tuning never sees ``test_dataset``, which only ``trainer.test`` reads.

    Args:
        dataset: a ``torch.utils.data.Dataset`` with ``len``, or a tuple of arrays / tensors with the
            same first dimension, e.g. ``(X, y)`` (floating arrays become float32, integer ones int64).
        batch_size: of every dataloader.
        stratify: ``True`` to keep each fold's class proportions those of the dataset, the labels read
            from the last array of a tuple (or a dataset's ``targets``); or the labels themselves, one
            per sample. ``False``: a plain shuffled split.
        num_workers: of every dataloader.
        test_dataset: optional, for ``test_dataloader``; same forms as ``dataset``.
        fold: the fold this datamodule serves; normally set by :meth:`for_fold`.

    Example:
        >>> dm = KFoldDataModule((X, y), batch_size=64, stratify=True)  # doctest: +SKIP
        >>> Tuner(MyModule, datamodule=dm, cv=5, ...)  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: Dataset | Sequence[Any],
        *,
        batch_size: int = 32,
        stratify: bool | Sequence[Any] = False,
        num_workers: int = 0,
        test_dataset: Dataset | Sequence[Any] | None = None,
        fold: Fold | None = None,
    ) -> None:
        super().__init__()
        self.dataset = _as_dataset(dataset, "dataset")
        self.n_samples = len(self.dataset)  # type: ignore[arg-type]
        self.test_dataset = None if test_dataset is None else _as_dataset(test_dataset, "test_dataset")
        if not _is_int(batch_size) or batch_size < 1:
            raise InvalidArgumentError(f"`batch_size` must be an int >= 1, but got {batch_size!r}.")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.labels = _labels(self.dataset, stratify, dataset)
        self.fold = fold

    def for_fold(self, fold: Fold) -> KFoldDataModule:
        """A copy of this datamodule that serves ``fold``."""
        if not isinstance(fold, Fold):
            raise ArgumentTypeError(f"`fold` must be a lightning_hpo Fold, but got {fold!r}.")
        check_folds(fold.k, self.n_samples)
        served = copy.copy(self)
        served.fold = fold
        return served

    def fold_indices(self, fold: Fold) -> tuple[np.ndarray, np.ndarray]:
        """The training and validation sample indices of ``fold`` (sorted)."""
        check_folds(fold.k, self.n_samples)
        order = np.random.default_rng(fold.seed).permutation(self.n_samples)
        if self.labels is None:
            assignment = np.empty(self.n_samples, dtype=np.int64)
            assignment[order] = np.arange(self.n_samples) % fold.k
        else:
            # Deal each class's shuffled samples round-robin, one deal continuing across classes, so
            # every fold gets the class proportions and the fold sizes differ by one at most.
            by_class = sorted(order, key=lambda i: str(self.labels[i]))  # stable: shuffled within a class
            assignment = np.empty(self.n_samples, dtype=np.int64)
            assignment[np.asarray(by_class)] = np.arange(self.n_samples) % fold.k
        validation = np.flatnonzero(assignment == fold.index)
        training = np.flatnonzero(assignment != fold.index)
        return training, validation

    def _indices(self) -> tuple[np.ndarray, np.ndarray]:
        if self.fold is None:
            raise InvalidArgumentError(
                "This KFoldDataModule serves no fold: give it to Tuner(..., cv=k), which calls for_fold for each "
                "evaluation, or call dm.for_fold(lightning_hpo.Fold(index, k)) yourself."
            )
        return self.fold_indices(self.fold)

    def train_dataloader(self) -> DataLoader:
        training, _ = self._indices()
        return self._loader(Subset(self.dataset, training.tolist()), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        _, validation = self._indices()
        return self._loader(Subset(self.dataset, validation.tolist()), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self.test_dataset is None:
            raise InvalidArgumentError("This KFoldDataModule has no test set: pass test_dataset=... to test.")
        return self._loader(self.test_dataset, shuffle=False)

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers)


def _as_dataset(value: Any, name: str) -> Dataset:
    if isinstance(value, (tuple, list)) and value and all(hasattr(a, "__len__") and hasattr(a, "shape") for a in value):
        tensors = [_as_tensor(a) for a in value]
        if len({len(t) for t in tensors}) != 1:
            raise InvalidArgumentError(
                f"`{name}`'s arrays must have the same first dimension, but got lengths {[len(t) for t in tensors]}."
            )
        return TensorDataset(*tensors)
    if isinstance(value, Dataset) and hasattr(value, "__len__"):
        return value
    raise ArgumentTypeError(
        f"`{name}` must be a torch Dataset with a length, or a tuple of arrays such as (X, y), but got {value!r}."
    )


def _as_tensor(array: Any) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(array) if not isinstance(array, torch.Tensor) else array)
    if tensor.is_floating_point():
        return tensor.to(torch.float32)
    if tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.uint8):
        return tensor.to(torch.int64)
    return tensor


def _labels(dataset: Dataset, stratify: bool | Sequence[Any], given: Any) -> list[Any] | None:
    if stratify is False:
        return None
    if stratify is True:
        if isinstance(dataset, TensorDataset):
            labels: Any = dataset.tensors[-1]
        elif hasattr(dataset, "targets"):
            labels = dataset.targets
        else:
            raise InvalidArgumentError(
                "stratify=True reads the labels from the last array of a tuple dataset or from `dataset.targets`, "
                f"and {type(given).__name__} has neither: pass the labels, stratify=labels."
            )
    else:
        labels = stratify
    labels = [v.item() if hasattr(v, "item") else v for v in labels]
    if len(labels) != len(dataset):  # type: ignore[arg-type]
        raise InvalidArgumentError(
            f"`stratify` gives {len(labels)} labels for {len(dataset)} samples: give one label per sample."  # type: ignore[arg-type]
        )
    return labels


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
