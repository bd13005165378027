"""How one evaluation of a trial evaluated several times reports to its trial (see :mod:`lightning_hpo._evaluations`).

:class:`FoldReporter` is the trial's reporting and pruning callback for one evaluation (a fold, a
repeat): it reports at the trial's fold-major steps, so that pruners compare fold 0 of every trial
with fold 0, and it reports the running mean over the evaluations (:data:`REPORTS` says why). It also
keeps a fingerprint of the evaluation's first validation batch, by which a datamodule that ignores
its fold is noticed. Apart from :mod:`lightning_hpo._evaluations`, which plans, resumes and records
the evaluations, because this is the part that runs inside each evaluation's Trainer.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
from typing_extensions import override

from lightning_hpo._budget import PLANNED_STEPS_ATTR
from lightning_hpo.callback import TrialReporter

if TYPE_CHECKING:
    from lightning_hpo.study import Study
    from lightning_hpo.trial import Trial

__all__ = ["FoldReporter", "REPORTS", "trial_report"]

#: What an evaluation reports at its steps: ``"running_mean"`` (the mean of the finished evaluations'
#: values and the current value) or ``"fold"`` (the current evaluation's own value); both at
#: fold-major steps. Measured in benchmarks/cross_validation.py (CROSS_VALIDATION.md): with the
#: default ASHA the two prune the same trials and pick the same configuration, in a replay of
#: synthetic fold curves and in real training, since ASHA ranks a trial by its best value by the
#: rung, which the first fold's values dominate either way. The running mean is kept because its
#: reports converge to the trial's value (the mean over folds): a PRUNED trial's value (its best
#: report), which the GPSampler learns from, then stands for several folds rather than the luckiest one.
REPORTS = "running_mean"


def trial_report(
    offset: int, finished: Sequence[tuple[float, ...]], step: int, value: tuple[float, ...]
) -> tuple[int, tuple[float, ...]]:
    """The trial's report of an evaluation's ``(step, value)``: at the fold-major step ``offset + step``,
    with ``REPORTS == "running_mean"`` the mean of the ``finished`` evaluations' values and ``value``."""
    if REPORTS == "running_mean":
        value = tuple(statistics.fmean(vs) for vs in zip(*finished, value))
    return offset + step, value


class FoldReporter(TrialReporter):
    """A :class:`~lightning_hpo.callback.TrialReporter` for evaluation ``index`` of ``count``: it reports at
    fold-major steps (``offset + step``) the running mean over evaluations (see :func:`trial_report`).

    Its own :attr:`reports` keep the evaluation's steps and values, from which the evaluation's value is found.
    It also keeps a fingerprint of the first validation batch, to notice a datamodule that ignores its fold.
    """

    def __init__(
        self,
        study: Study | None,
        trial: Trial | None,
        monitor: Sequence[str],
        budget: Any,
        *,
        index: int,
        count: int,
        offset: int,
        finished: Sequence[tuple[float, ...]],
    ) -> None:
        super().__init__(study, trial, monitor, budget)
        self.index, self.count, self.offset, self.finished = index, count, offset, list(finished)
        self.planned_steps: int | None = None
        self.fingerprint: str | None = None

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed evaluation's restored reports go to the trial as they went to the interrupted one.
        if self._restored and trainer.is_global_zero and self.study is not None and self.trial is not None:
            for step, value in self.reports:
                self.study.report(self.trial, *trial_report(self.offset, self.finished, step, value))
        self._restored = False

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._estimate_planned_steps(trainer)
        super().on_train_start(trainer, pl_module)
        # The first evaluation trained in this process holds the budget: it stores the whole trial's steps.
        if self.planned_steps and self.budget and trainer.is_global_zero and self.study:
            assert self.trial is not None  # for the progress display
            self.study.storage.update_trial(self.trial.id, attrs={PLANNED_STEPS_ATTR: self.planned_steps * self.count})

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed evaluation that had trained all its steps never started training.
        if self.planned_steps is None:
            self._estimate_planned_steps(trainer)

    def _estimate_planned_steps(self, trainer: pl.Trainer) -> None:
        # At train start, not earlier: estimating loads the training data, which draws from the random state.
        steps = trainer.estimated_stepping_batches
        self.planned_steps = int(steps) if math.isfinite(steps) else None

    @override
    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.fingerprint is None and batch_idx == 0 and dataloader_idx == 0:
            size = _dataset_size(trainer)
            self.fingerprint = f"{size}:{_batch_hash(batch)}"

    @override
    def _report_and_judge(self, step: int, value: tuple[float, ...]) -> tuple[bool, str | None]:
        return super()._report_and_judge(*trial_report(self.offset, self.finished, step, value))


def _dataset_size(trainer: pl.Trainer) -> int | None:
    loaders = trainer.val_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    dataset = getattr(loader, "dataset", None)
    try:
        return len(dataset)  # type: ignore[arg-type]
    except TypeError:
        return None


def _batch_hash(batch: Any) -> str:
    digest = hashlib.sha256()
    for tensor in _tensors(batch):
        widened = tensor.detach().cpu().to(torch.float64 if tensor.is_floating_point() else torch.int64)
        digest.update(widened.numpy().tobytes())  # widened first: numpy has no bfloat16
    return digest.hexdigest()[:16]


def _tensors(batch: Any) -> list[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        return [batch]
    if isinstance(batch, dict):
        return [t for v in batch.values() for t in _tensors(v)]
    if isinstance(batch, (list, tuple)):
        return [t for v in batch for t in _tensors(v)]
    return []
