"""A trial evaluated several times: k cross-validation folds, each with r seeds; recorded as one trial.

``Tuner(..., cv=k, repeats=r)`` trains ``k * r`` models per trial, repeat by repeat, fold by fold
(evaluation ``e = repeat * k + fold``), each with a fresh module and Trainer. Each evaluation's value
is found as a single-trained trial's is (its best monitored value; with several metrics, its last
validation's); **the trial's value is their mean**, stored with each evaluation's value
(``attrs[EVALUATION_VALUES]``) and their standard deviation (``attrs[VALUE_SPREAD]``, one per
objective), which the GPSampler reads as the noise of the value.

**Seeds.** Repeat ``r`` splits the data with ``Fold.seed = seed + r`` (the same for every trial), and
with ``Tuner(seed=s)`` trains with ``seed_everything(s + trial.number + REPEAT_SEED_STRIDE * r)`` (the
retry of an interrupted trial with the interrupted trial's number, as recorded).

**Reports, so pruners compare like with like.** Evaluation ``e`` reports its step ``s`` as the
trial's step ``e * S + s``, ``S`` the planned steps of one evaluation: fold 0 of every trial is
judged at the same steps, then fold 1, and so on. The value reported is the **running mean**: the
mean of the finished evaluations' values and the current one's latest value (see
:data:`~lightning_hpo._fold_reporter.REPORTS` for the measurement behind that choice; the reporting
callback of each evaluation is :class:`~lightning_hpo._fold_reporter.FoldReporter`). A pruned
evaluation ends the whole trial as PRUNED, so a hopeless trial stops within its first fold.

**Resuming.** Each evaluation writes resumable checkpoints in its own directory, and each finished
evaluation but the last is recorded in the trial's :data:`RECORD_FILE` (its value, metrics, best
checkpoint and reports). The retry of an interrupted trial (see :mod:`lightning_hpo._resume`) skips
the evaluations recorded, reports them again, and resumes the one under way from its newest
checkpoint, so its values and reports are those of an uninterrupted run. Its resumable state counts
in trial steps: ``attrs[RESUMED_AT_STEP]`` and :func:`~lightning_hpo._resume.newest_step` are fold-major steps.

Under torchrun every rank trains the same evaluations in the same order (their loop depends only on
broadcast decisions and on the record, which every rank reads); only global rank 0 reports and records.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl

from lightning_hpo._fold_reporter import FoldReporter, trial_report
from lightning_hpo._resume import (
    RECORD_FILE,
    discard_checkpoints,
    read_record,
    remove_resumable,
    remove_trial_checkpoints,
    subdirectories,
)
from lightning_hpo.folds import Fold
from lightning_hpo.trial import (
    EVALUATION_VALUES,
    PRUNED_STEP,
    RESUME_DIR,
    RESUMED_AT_STEP,
    VALUE_SPREAD,
    Trial,
    TrialState,
)

if TYPE_CHECKING:
    from lightning_hpo.study import Study
    from lightning_hpo.training import TrialTraining

__all__ = [
    "Evaluations",
    "EvaluatedTrial",
    "FinishedEvaluation",
    "REPEAT_SEED_STRIDE",
    "RECORD_FILE",
]

log = logging.getLogger(__name__)
#: Repeat ``r`` of a trial trains with the trial's seed plus ``r`` times this (a prime far above any
#: trial number, so no repeat of one trial shares a seed with another trial).
REPEAT_SEED_STRIDE = 1_000_003


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

    def training_seed(self, number: int, repeat: int) -> int | None:
        """The seed of repeat ``repeat`` of trial ``number`` (a resumed trial's: the interrupted trial's number)."""
        return None if self.seed is None else self.seed + number + REPEAT_SEED_STRIDE * repeat


@dataclass(frozen=True)
class FinishedEvaluation:
    """What a finished evaluation gives its trial, as recorded in :data:`RECORD_FILE`.

    Attributes:
        name: its directory in the trial's, e.g. ``"fold_1"``.
        value: its value, one per objective (see :func:`evaluation_value`).
        metrics: its outcome metrics at the validation that gave the value.
        checkpoint: its best checkpoint (an absolute path), ``""`` without one.
        fingerprint: its validation data's (see :class:`FoldReporter`).
        reports: its own ``(step, value)`` reports, from which its reports to the trial follow.
    """

    name: str
    value: tuple[float, ...]
    metrics: dict[str, float]
    checkpoint: str
    fingerprint: str | None
    reports: tuple[tuple[int, tuple[float, ...]], ...]

    @classmethod
    def of(cls, name: str, training: TrialTraining, value: tuple[float, ...]) -> FinishedEvaluation:
        reporter = training.reporter
        best = training.checkpoint.best_model_path if training.checkpoint is not None else ""
        return cls(
            name=name,
            value=value,
            metrics=training.outcome_metrics.at(training._deciding_step()),
            checkpoint=str(Path(best).resolve()) if best else "",
            fingerprint=getattr(reporter, "fingerprint", None),
            reports=tuple(reporter.reports),
        )

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "reports": [[step, list(value)] for step, value in self.reports]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinishedEvaluation:
        return cls(
            name=data["name"],
            value=tuple(data["value"]),
            metrics=dict(data["metrics"]),
            checkpoint=data["checkpoint"],
            fingerprint=data["fingerprint"],
            reports=tuple((int(step), tuple(value)) for step, value in data["reports"]),
        )


class EvaluatedTrial:
    """Trains one trial's evaluations in order (on every rank) and records them as one trial (on rank 0).

    ``train_one(fold, seed, evaluation)`` builds and trains one evaluation's module and Trainer,
    with ``evaluation``'s options (``trial_dir``, ``make_reporter``, ``resume_attrs``) in its
    :class:`~lightning_hpo.training.TrialTraining`; the global seed is set to ``seed`` already (unless
    ``None``), for callers that set it again after a seed of their own.

    ``trial_dir`` is the trial's own directory; the retry of an interrupted trial goes on in that
    trial's (``attrs[RESUME_DIR]``), skipping the evaluations it finished.
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
        self.trial_dir = Path(trial.attrs[RESUME_DIR]) if RESUME_DIR in trial.attrs else trial_dir
        self.directions = tuple(directions)
        self.keep_checkpoints = keep_checkpoints
        self.finished: list[FinishedEvaluation] = []
        self.last: TrialTraining | None = None  # the last evaluation trained by this process
        self.steps_per_evaluation = 0
        self.seed_number = trial.number  # the trial number its evaluations are seeded with

    @property
    def values(self) -> list[tuple[float, ...]]:
        return [evaluation.value for evaluation in self.finished]

    def train(self, train_one: Callable[[Fold | None, int | None, dict[str, Any]], TrialTraining]) -> EvaluatedTrial:
        plan = self.evaluations.folds()
        names = [_evaluation_name(repeat, fold, self.evaluations) for repeat, fold in plan]
        self._resume_finished(names)
        first = len(self.finished)
        try:
            for index in range(first, len(plan)):
                repeat, fold = plan[index]
                if not self._train_evaluation(train_one, index, first, repeat, fold, names):
                    break
        except Exception:
            if self.study is not None and self.keep_checkpoints != "all":
                self._remove_checkpoints(kept=None)  # the trial FAILs and will not resume: it keeps none
            raise
        return self

    def _train_evaluation(
        self,
        train_one: Callable[[Fold | None, int | None, dict[str, Any]], TrialTraining],
        index: int,
        first: int,
        repeat: int,
        fold: Fold | None,
        names: Sequence[str],
    ) -> bool:
        """Train evaluation ``index`` (``first``: the first one this process trains); whether the trial goes on."""
        seed = self.evaluations.training_seed(self.seed_number, repeat)
        if seed is not None:
            pl.seed_everything(seed, workers=True, verbose=False)
        make_reporter = functools.partial(
            FoldReporter,
            index=index,
            count=len(names),
            offset=index * self.steps_per_evaluation,
            finished=self.values,
        )
        if index > first:  # the trial's budget is stored once, by the first evaluation this process trains
            make_reporter = functools.partial(_without_budget, make_reporter)
        evaluation = {
            "trial_dir": self.trial_dir / names[index],
            "make_reporter": make_reporter,
            "resume_attrs": functools.partial(self._resume_attrs, index if index == first else None),
        }
        training = train_one(fold, seed, evaluation)
        self.last = training
        reporter = training.reporter
        assert isinstance(reporter, FoldReporter)
        if index == 0:
            last_step = reporter.reports[-1][0] if reporter.reports else 0
            self.steps_per_evaluation = reporter.planned_steps or last_step + 1
        value = evaluation_value(training)
        if reporter.pruned_step is not None or value is None:
            return False  # pruned: the whole trial stops; no value: it fails
        self.finished.append(FinishedEvaluation.of(names[index], training, value))
        if index < len(names) - 1 and training.resumable is not None and self.study is not None:
            # Recorded, so a retry skips it; the last one is recorded with the trial, after resuming if need be.
            self._write_record()
            if self.keep_checkpoints != "all":
                remove_resumable(training.trial_dir)
        self._warn_if_fold_ignored(fold)
        return True

    # -- resuming ------------------------------------------------------------------------

    def _plan(self) -> dict[str, Any]:
        return {"cv": self.evaluations.cv, "repeats": self.evaluations.repeats, "seed": self.evaluations.seed}

    def _write_record(self) -> None:
        """Record the plan and the finished evaluations in the trial's directory (on rank 0), atomically."""
        record = {
            "plan": self._plan(),
            "seed_number": self.seed_number,
            "steps_per_evaluation": self.steps_per_evaluation,
            "finished": [evaluation.to_json() for evaluation in self.finished],
        }
        path = self.trial_dir / RECORD_FILE
        temporary = path.with_name(f".{RECORD_FILE}.tmp")
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(record))
        os.replace(temporary, path)

    def _resume_attrs(self, resumed_index: int | None, resume_step: int | None) -> dict[str, Any]:
        """The trial's resume attrs, stored as an evaluation starts (see ``TrialTraining(resume_attrs=...)``):
        the trial's directory and, for the first evaluation of a retry (``resumed_index``), the trial
        step it resumes at. The plan is recorded first, so a retry under another plan starts over."""
        self._write_record()
        attrs: dict[str, Any] = {RESUME_DIR: str(self.trial_dir.resolve())}
        if resumed_index is not None and RESUME_DIR in self.trial.attrs:
            attrs[RESUMED_AT_STEP] = resumed_index * self.steps_per_evaluation + (resume_step or 0)
        return attrs

    def _resume_finished(self, names: Sequence[str]) -> None:
        """For the retry of an interrupted trial: take the evaluations it finished, and (on rank 0) report them again."""
        if RESUME_DIR not in self.trial.attrs:
            return
        record = read_record(self.trial_dir)
        if record is None:
            return
        finished = [FinishedEvaluation.from_json(e) for e in record["finished"]]
        if record["plan"] != self._plan() or [e.name for e in finished] != list(names[: len(finished)]):
            log.warning(
                "lightning_hpo: trial %d starts from its first evaluation: the trial it resumes ran another plan "
                "(%s, now %s).",
                self.trial.number,
                record["plan"],
                self._plan(),
            )
            if self.study is not None:
                self._remove_checkpoints(kept=None)
            return
        self.finished, self.steps_per_evaluation = finished, int(record["steps_per_evaluation"])
        self.seed_number = int(record["seed_number"])
        if self.study is None:
            return
        for index, evaluation in enumerate(finished):
            offset, before = index * self.steps_per_evaluation, self.values[:index]
            for step, value in evaluation.reports:
                self.study.report(self.trial, *trial_report(offset, before, step, value))

    def _remove_checkpoints(self, kept: Path | None) -> None:
        """Remove the record and every evaluation's checkpoints but ``kept`` (its evaluation loses only its resumable ones)."""
        for directory in subdirectories(self.trial_dir):
            if kept is not None and directory.resolve() in kept.parents:
                remove_resumable(directory)
            else:
                remove_trial_checkpoints(directory)
        (self.trial_dir / RECORD_FILE).unlink(missing_ok=True)

    # -- the outcome ---------------------------------------------------------------------

    def _warn_if_fold_ignored(self, fold: Fold | None) -> None:
        if fold is None or fold.index != 1 or self.study is None:
            return
        first, second = (evaluation.fingerprint for evaluation in self.finished[-2:])
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
        study, trial, last = self.study, self.trial, self.last
        assert study is not None
        study.storage.update_trial(trial.id, log_dir=str(self.trial_dir))
        if last is not None and last.reporter.pruned_step is not None:
            offset = len(self.finished) * self.steps_per_evaluation
            study.storage.update_trial(
                trial.id, attrs={PRUNED_STEP: offset + last.reporter.pruned_step, **self._values_attrs()}
            )
            finished = study.tell(trial, state=TrialState.PRUNED)
        elif len(self.finished) < len(self.evaluations):
            assert last is not None  # an evaluation without a value ended the trial
            finished = last.record_outcome()  # FAIL, with the reason a single training would give
        else:
            finished = self._tell_complete()
        if self.keep_checkpoints != "all":
            kept = finished.checkpoint_path if finished.state is TrialState.COMPLETE else None
            self._remove_checkpoints(kept=Path(kept) if kept else None)
            discard_checkpoints(study, finished, self.trial_dir, self.keep_checkpoints)
        return finished

    def _tell_complete(self) -> Trial:
        study, trial = self.study, self.trial
        assert study is not None
        mean = tuple(statistics.fmean(vs) for vs in zip(*self.values))
        attrs = self._values_attrs()
        attrs[VALUE_SPREAD] = [statistics.pstdev(vs) for vs in zip(*self.values)]
        checkpoint = self._best_evaluation().checkpoint
        study.storage.update_trial(trial.id, attrs=attrs, **({"checkpoint_path": checkpoint} if checkpoint else {}))
        metrics = _mean_metrics([evaluation.metrics for evaluation in self.finished])
        return study.tell(trial, mean[0] if len(mean) == 1 else mean, metrics=metrics)

    def _values_attrs(self) -> dict[str, Any]:
        one = len(self.directions) == 1
        return {EVALUATION_VALUES: [v[0] if one else list(v) for v in self.values]}

    def _best_evaluation(self) -> FinishedEvaluation:
        """The evaluation whose checkpoint the trial keeps: the best value (the first with several objectives)."""
        if len(self.directions) > 1:
            return self.finished[0]
        sign = 1 if self.directions[0] == "min" else -1
        return min(self.finished, key=lambda evaluation: sign * evaluation.value[0])


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
