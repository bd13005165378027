"""A trial evaluated several times: k cross-validation folds, each with r seeds; recorded as one trial.

``Tuner(..., cv=k, repeats=r)`` trains ``k * r`` models per trial, repeat by repeat, fold by fold
(evaluation ``e = repeat * k + fold``), each with a fresh module and Trainer. Each evaluation's value
is found as a single-trained trial's is (its best monitored value; with several metrics, its last
validation's); **the trial's value is their mean**, stored with each evaluation's value
(``attrs[EVALUATION_VALUES]``) and their standard deviation (``attrs[VALUE_SPREAD]``, one per
objective), which the GPSampler reads as the noise of the value.

**Seeds.** Repeat ``r`` splits the data with ``Fold.seed = seed + r`` (the same for every trial), and
with ``Tuner(seed=s)`` trains with ``seed_everything(s + trial.number + REPEAT_SEED_STRIDE * r)``.

**Reports, so pruners compare like with like.** Evaluation ``e`` reports its step ``s`` as the
trial's step ``e * S + s``, ``S`` the planned steps of one evaluation: fold 0 of every trial is
judged at the same steps, then fold 1, and so on. The value reported is the **running mean**: the
mean of the finished evaluations' values and the current one's latest value (see
:data:`REPORTS` for the measurement behind that choice). A pruned evaluation ends the whole
trial as PRUNED, so a hopeless trial stops within its first fold.

Under torchrun every rank trains the same evaluations in the same order (their loop depends only on
broadcast decisions); only global rank 0 reports and records. An interrupted cross-validated trial is
not resumed from a checkpoint: it runs again from its first evaluation.
"""

from __future__ import annotations

import functools
import hashlib
import math
import statistics
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
from typing_extensions import override

from lightning_hpo._budget import PLANNED_STEPS_ATTR
from lightning_hpo._resume import discard_checkpoints, remove_trial_checkpoints
from lightning_hpo.callback import TrialReporter
from lightning_hpo.folds import Fold
from lightning_hpo.trial import EVALUATION_VALUES, PRUNED_STEP, VALUE_SPREAD, Trial, TrialState

if TYPE_CHECKING:
    from lightning_hpo.study import Study
    from lightning_hpo.training import TrialTraining

__all__ = ["Evaluations", "EvaluatedTrial", "FoldReporter", "REPORTS", "REPEAT_SEED_STRIDE"]

#: Repeat ``r`` of a trial trains with the trial's seed plus ``r`` times this (a prime far above any
#: trial number, so no repeat of one trial shares a seed with another trial).
REPEAT_SEED_STRIDE = 1_000_003

#: What an evaluation reports at its steps: ``"running_mean"`` (the mean of the finished evaluations'
#: values and the current value) or ``"fold"`` (the current evaluation's own value); both at
#: fold-major steps. Measured in benchmarks/cross_validation.py (CROSS_VALIDATION.md): with the
#: default ASHA the two prune the same trials and pick the same configuration, in a replay of
#: synthetic fold curves and in real training, since ASHA ranks a trial by its best value by the
#: rung, which the first fold's values dominate either way. The running mean is kept because its
#: reports converge to the trial's value (the mean over folds): a PRUNED trial's value (its best
#: report), which the GPSampler learns from, then stands for several folds rather than the luckiest one.
REPORTS = "running_mean"


class Evaluations:
    """The plan of a trial's evaluations: ``cv`` folds (``None``: the datamodule's own split) times ``repeats``."""

    def __init__(self, cv: int | None, repeats: int, seed: int | None) -> None:
        self.cv = cv
        self.repeats = repeats
        self.seed = seed

    def __len__(self) -> int:
        return (self.cv or 1) * self.repeats

    @property
    def several(self) -> bool:
        return len(self) > 1

    def folds(self) -> list[tuple[int, Fold | None]]:
        """``(repeat, fold)`` per evaluation, in training order (fold ``None`` without cross-validation)."""
        base = self.seed or 0
        if self.cv is None:
            return [(r, None) for r in range(self.repeats)]
        return [(r, Fold(i, self.cv, seed=base + r, repeat=r)) for r in range(self.repeats) for i in range(self.cv)]

    def training_seed(self, trial: Trial, repeat: int) -> int | None:
        return None if self.seed is None else self.seed + trial.number + REPEAT_SEED_STRIDE * repeat


class FoldReporter(TrialReporter):
    """A :class:`~lightning_hpo.callback.TrialReporter` for evaluation ``index`` of ``count``: it reports at
    fold-major steps (``offset + step``) the running mean over evaluations (see the module documentation).

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
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        steps = trainer.estimated_stepping_batches
        self.planned_steps = int(steps) if math.isfinite(steps) else None
        super().on_train_start(trainer, pl_module)
        if self.index == 0 and self.planned_steps and self.budget and trainer.is_global_zero and self.study:
            assert self.trial is not None  # the whole trial's steps, for the progress display
            self.study.storage.update_trial(self.trial.id, attrs={PLANNED_STEPS_ATTR: self.planned_steps * self.count})

    @override
    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.fingerprint is None and batch_idx == 0 and dataloader_idx == 0:
            size = _dataset_size(trainer)
            self.fingerprint = f"{size}:{_batch_hash(batch)}"

    @override
    def _report_and_judge(self, step: int, value: tuple[float, ...]) -> tuple[bool, str | None]:
        if REPORTS == "running_mean":
            value = tuple(statistics.fmean(vs) for vs in zip(*self.finished, value))
        return super()._report_and_judge(self.offset + step, value)


class EvaluatedTrial:
    """Trains one trial's evaluations in order (on every rank) and records them as one trial (on rank 0).

    ``train_one(repeat, fold, trial_dir, reporter)`` builds and trains one evaluation's module and
    Trainer, with ``reporter`` and ``trial_dir`` in its :class:`~lightning_hpo.training.TrialTraining`.
    ``reporter_for(index, offset, finished)`` makes the evaluation's :class:`FoldReporter`.
    """

    def __init__(
        self,
        study: Study | None,
        trial: Trial,
        evaluations: Evaluations,
        trial_dir: Path,
        directions: Sequence[str],
        keep_checkpoints: Any,
    ) -> None:
        self.study, self.trial, self.evaluations = study, trial, evaluations
        self.trial_dir = trial_dir
        self.directions = tuple(directions)
        self.keep_checkpoints = keep_checkpoints
        self.trainings: list[TrialTraining] = []
        self.values: list[tuple[float, ...]] = []
        self.steps_per_evaluation = 0

    def train(
        self,
        train_one: Callable[[int, Fold | None, Path, Callable[..., TrialReporter]], TrialTraining],
    ) -> EvaluatedTrial:
        plan = self.evaluations.folds()
        for index, (repeat, fold) in enumerate(plan):
            seed = self.evaluations.training_seed(self.trial, repeat)
            if seed is not None:
                pl.seed_everything(seed, workers=True, verbose=False)
            make_reporter = functools.partial(
                FoldReporter,
                index=index,
                count=len(plan),
                offset=index * self.steps_per_evaluation,
                finished=self.values,
            )
            if index > 0:  # the trial's budget is stored once, by its first evaluation
                make_reporter = functools.partial(_without_budget, make_reporter)
            name = _evaluation_name(repeat, fold, self.evaluations)
            training = train_one(repeat, fold, self.trial_dir / name, make_reporter)
            self.trainings.append(training)
            reporter = training.reporter
            assert isinstance(reporter, FoldReporter)
            if index == 0:
                last_step = reporter.reports[-1][0] if reporter.reports else 0
                self.steps_per_evaluation = reporter.planned_steps or last_step + 1
            value = evaluation_value(training)
            if reporter.pruned_step is not None or value is None:
                break  # pruned: the whole trial stops; no value: it fails
            self.values.append(value)
            self._warn_if_fold_ignored(fold)
        return self

    def _warn_if_fold_ignored(self, fold: Fold | None) -> None:
        if fold is None or fold.index != 1 or self.study is None:
            return
        first, second = (t.reporter.fingerprint for t in self.trainings[-2:])  # type: ignore[attr-defined]
        if first is not None and first == second:
            warnings.warn(
                f"Folds 0 and 1 of trial {self.trial.number} validated on the same data (same size, same first "
                "batch): the datamodule seems to ignore its fold, so cross-validation trains on one split k times. "
                "Make the factory (params, fold) -> datamodule split by fold.index and fold.k, or use "
                "lightning_hpo.KFoldDataModule.",
                stacklevel=2,
            )

    def record_and_discard(self) -> Trial:
        """Store the trial's outcome (on rank 0): the mean of its evaluations, or PRUNED / FAIL as the last one ended."""
        study, trial = self.study, self.trial
        assert study is not None
        last = self.trainings[-1]
        study.storage.update_trial(trial.id, log_dir=str(self.trial_dir))
        if last.reporter.pruned_step is not None:
            offset = (len(self.trainings) - 1) * self.steps_per_evaluation
            study.storage.update_trial(
                trial.id, attrs={PRUNED_STEP: offset + last.reporter.pruned_step, **self._values_attrs()}
            )
            finished = study.tell(trial, state=TrialState.PRUNED)
        elif evaluation_value(last) is None:
            finished = last.record_outcome()  # FAIL, with the reason a single training would give
        else:
            finished = self._tell_complete()
        if self.keep_checkpoints != "all":
            kept = finished.checkpoint_path if finished.state is TrialState.COMPLETE else None
            for training in self.trainings:
                if kept is None or not kept.startswith(str(training.trial_dir.resolve())):
                    remove_trial_checkpoints(training.trial_dir)
            discard_checkpoints(study, finished, self.trial_dir, self.keep_checkpoints)
        return finished

    def _tell_complete(self) -> Trial:
        study, trial = self.study, self.trial
        assert study is not None
        mean = tuple(statistics.fmean(vs) for vs in zip(*self.values))
        attrs = self._values_attrs()
        attrs[VALUE_SPREAD] = [statistics.pstdev(vs) for vs in zip(*self.values)]
        best = self._best_evaluation()
        checkpoint = best.checkpoint.best_model_path if best.checkpoint is not None else ""
        study.storage.update_trial(
            trial.id, attrs=attrs, **({"checkpoint_path": str(Path(checkpoint).resolve())} if checkpoint else {})
        )
        metrics = _mean_metrics([t.outcome_metrics.at(t._deciding_step()) for t in self.trainings])
        return study.tell(trial, mean[0] if len(mean) == 1 else mean, metrics=metrics)

    def _values_attrs(self) -> dict[str, Any]:
        one = len(self.directions) == 1
        return {EVALUATION_VALUES: [v[0] if one else list(v) for v in self.values]}

    def _best_evaluation(self) -> TrialTraining:
        """The evaluation whose checkpoint the trial keeps: the best value (the first with several objectives)."""
        if len(self.directions) > 1:
            return self.trainings[0]
        sign = 1 if self.directions[0] == "min" else -1
        return min(zip(self.values, self.trainings), key=lambda pair: sign * pair[0][0])[1]


def evaluation_value(training: TrialTraining) -> tuple[float, ...] | None:
    """One evaluation's finite value(s) as a single training's trial would get them, or ``None`` if it has none."""
    step = training._deciding_step()
    if step is None:
        return None
    values = dict(training.reporter.reports)[step]
    return values if all(map(math.isfinite, values)) else None


def _without_budget(
    make: Callable[..., FoldReporter], study: Any, trial: Any, monitor: Any, budget: Any
) -> FoldReporter:
    return make(study, trial, monitor, None)


def _evaluation_name(repeat: int, fold: Fold | None, evaluations: Evaluations) -> str:
    if fold is None:
        return f"repeat_{repeat}"
    return f"fold_{fold.index}" if evaluations.repeats == 1 else f"repeat_{repeat}_fold_{fold.index}"


def _mean_metrics(all_metrics: Sequence[dict[str, float]]) -> dict[str, float]:
    names = set.intersection(*(set(m) for m in all_metrics)) if all_metrics else set()
    return {n: statistics.fmean(m[n] for m in all_metrics) for n in sorted(names)}


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
