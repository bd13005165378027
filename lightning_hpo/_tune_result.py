"""What :meth:`Tuner.fit <lightning_hpo.Tuner.fit>` returns: :class:`TuneResult`, the study's trials and best trials.

Kept apart from :mod:`lightning_hpo.tuner` (which re-exports it: ``from lightning_hpo.tuner import
TuneResult``) because it only reads finished trials and loads checkpoints: it needs nothing of how
trials are run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_hpo.exceptions import InvalidArgumentError, LightningHPOError
from lightning_hpo.trial import Direction, Trial

if TYPE_CHECKING:
    from lightning_hpo.study import Study

__all__ = ["TuneResult"]


@dataclass(frozen=True)
class TuneResult:
    """What :meth:`Tuner.fit <lightning_hpo.Tuner.fit>` returns.

    Attributes:
        study: the :class:`~lightning_hpo.Study` (still open: more trials can be run); ``None`` on
            the ranks of a torchrun job other than global rank 0, which never open storage.
        trials: every trial of the study when ``fit`` returned (the same on every rank).
        best_trials: the COMPLETE trials that no other COMPLETE trial beats, in number order: with
            several monitored metrics the Pareto set (each trial with its ``values`` and its last
            checkpoint, ``checkpoint_path``); with one, the trials tied for the best value.
        directions: the study's ``mode``, one entry per monitored metric.

    ``best_trial``, ``best_params``, ``best_value``, ``best_checkpoint`` and ``load_best_model``
    are for one monitored metric: with several, no trial is best in all of them, so they raise
    and point to ``best_trials`` (and :meth:`load_model` loads any one trial).
    """

    study: Study | None
    trials: list[Trial]
    best_trials: list[Trial]
    directions: tuple[Direction, ...]
    model_cls: type
    model_kwargs: Mapping[str, Any]

    @property
    def best_trial(self) -> Trial | None:
        """The best COMPLETE trial (the lowest number among ties), or ``None`` if none completed."""
        if len(self.directions) != 1:
            raise InvalidArgumentError(
                f"The study has {len(self.directions)} objectives (mode={list(self.directions)}), so no trial is "
                "best in all of them: use `result.best_trials`, the Pareto set, each trial with `.params`, `.values` "
                "and `.checkpoint_path` (`result.load_model(trial)` loads one)."
            )
        return self.best_trials[0] if self.best_trials else None

    def _best(self) -> Trial:
        best = self.best_trial
        if best is None:
            name = f"Study {self.study.name!r}" if self.study is not None else "The study"
            raise LightningHPOError(f"{name} has no COMPLETE trial, so there is no best one yet.")
        return best

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self._best().params)

    @property
    def best_value(self) -> float:
        value = self._best().value
        assert value is not None
        return value

    @property
    def best_checkpoint(self) -> str | None:
        """Path of the best trial's best checkpoint (``None`` if checkpointing was off)."""
        return self._best().checkpoint_path

    def load_best_model(self, **kwargs: Any) -> Any:
        """``model_cls.load_from_checkpoint`` on the best checkpoint, with the trial's arguments.

        Works whether or not the module calls ``save_hyperparameters()``.
        """
        return self.load_model(self._best(), **kwargs)

    def load_model(self, trial: Trial, **kwargs: Any) -> Any:
        """``model_cls.load_from_checkpoint`` on ``trial``'s checkpoint (e.g. one of ``best_trials``), with its arguments."""
        if trial.checkpoint_path is None:
            raise LightningHPOError(f"Trial {trial.number} has no checkpoint (checkpointing was disabled).")
        if not Path(trial.checkpoint_path).is_file():
            raise LightningHPOError(
                f"Trial {trial.number}'s checkpoint {trial.checkpoint_path} is no longer on disk. The Tuner's "
                "`keep_checkpoints` removes the checkpoints of PRUNED and FAIL trials and, with an int k (the "
                "default), of the COMPLETE trials outside the study's k best. Load one of the best trials, or "
                "keep every checkpoint with Tuner(..., keep_checkpoints='all')."
            )
        return self.model_cls.load_from_checkpoint(
            trial.checkpoint_path, **{**self.model_kwargs, **dict(trial.params), **kwargs}
        )
