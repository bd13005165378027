"""A read-only snapshot of a study: what importance and plots work from.

A :class:`~lightning_hpo.Study` reaps stale trials when it opens, so it is a worker's handle; looking
at a study from the shell must never write. :meth:`StudySnapshot.load` reads a study straight from
storage instead, and :meth:`StudySnapshot.of` takes one of a live study, so that several plots of
it show the same trials.

Example:
    >>> from lightning_hpo import Float, Study
    >>> study = Study("demo", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
    >>> study.optimize(lambda p: p["x"], n_trials=3)
    >>> snapshot = StudySnapshot.of(study)
    >>> len(snapshot.completed()), snapshot.objective_label(0)
    (3, 'objective (min)')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Union

from lightning_hpo._text import count_of
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import MONITOR, Trial, TrialState

if TYPE_CHECKING:
    from lightning_hpo.storage import Storage
    from lightning_hpo.study import Study

__all__ = ["StudySnapshot", "StudyLike"]


@dataclass(frozen=True)
class StudySnapshot:
    """A study's name, space, mode and trials (parameters decoded) at one moment.

    Attributes:
        name: the study's name.
        space: its search space.
        directions: ``"min"`` or ``"max"`` per objective.
        trials: every trial, in number order.
    """

    name: str
    space: SearchSpace
    directions: tuple[str, ...]
    trials: tuple[Trial, ...]

    @classmethod
    def of(cls, study: StudyLike) -> StudySnapshot:
        """A snapshot of a :class:`~lightning_hpo.Study` (one read of its trials); a snapshot as it is."""
        if isinstance(study, StudySnapshot):
            return study
        from lightning_hpo.study import Study

        if not isinstance(study, Study):
            raise ArgumentTypeError(f"Expected a lightning_hpo Study, but got {study!r} ({type(study).__name__}).")
        return cls(study.name, study.space, tuple(study.directions), tuple(study.trials))

    @classmethod
    def load(cls, storage: Storage, name: str, *, states: Iterable[TrialState] | None = None) -> StudySnapshot:
        """Read the study ``name`` from ``storage`` without writing anything (only its trials in ``states``, if
        given)."""
        record = storage.get_study(name)
        space = SearchSpace.from_json(record.space)
        stored = storage.get_trials(record.id, states)
        trials = tuple(replace(t, params=space.from_stored(t.params)) for t in stored)
        return cls(record.name, space, tuple(record.directions), trials)

    def check_objective(self, objective: int) -> int:
        """``objective`` if it is the index of one of the study's objectives; raise otherwise."""
        if not isinstance(objective, int) or isinstance(objective, bool):
            raise ArgumentTypeError(f"`objective` must be an int, but got {objective!r} ({type(objective).__name__}).")
        if not 0 <= objective < len(self.directions):
            raise InvalidArgumentError(
                f"`objective` must be in [0, {len(self.directions) - 1}] for study {self.name!r} "
                f"({count_of(len(self.directions), 'objective')}), but got {objective}."
            )
        return objective

    def completed(self) -> list[Trial]:
        """The COMPLETE trials with values, in number order."""
        return [t for t in self.trials if t.state is TrialState.COMPLETE and t.values is not None]

    @property
    def best_trials(self) -> list[Trial]:
        """The COMPLETE trials that no other COMPLETE trial beats, in number order, as
        :attr:`Study.best_trials <lightning_hpo.Study.best_trials>`: the Pareto set with several
        objectives, the trials with the best value with one; empty while none has completed."""
        from lightning_hpo.pareto import best_trials

        return best_trials(self.completed(), self.directions)

    @property
    def best_trial(self) -> Trial | None:
        """The best COMPLETE trial of a single-objective study (the lowest number among ties), as
        :attr:`Study.best_trial <lightning_hpo.Study.best_trial>`; ``None`` while none has completed
        or when the study has several objectives (see :attr:`best_trials`)."""
        best = self.best_trials
        return best[0] if best and len(self.directions) == 1 else None

    def objective_label(self, objective: int) -> str:
        """``"val_loss (min)"`` with the metric names a Tuner recorded (the latest trial's), else
        ``"objective (min)"``, or ``"objective 1 (max)"`` when there are several."""
        names = self.metric_names()
        if names is not None:
            name = names[objective]
        else:
            name = "objective" if len(self.directions) == 1 else f"objective {objective}"
        return f"{name} ({self.directions[objective]})"

    def metric_names(self) -> list[str] | None:
        """The monitored metrics of the latest trial trained by a Tuner or the CLI, one per objective; else None."""
        for trial in reversed(self.trials):
            names = trial.attrs.get(MONITOR)
            if (
                isinstance(names, list)
                and len(names) == len(self.directions)
                and all(isinstance(n, str) for n in names)
            ):
                return names
        return None


StudyLike = Union["Study", StudySnapshot]
