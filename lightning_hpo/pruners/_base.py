"""The pruner contract and the helpers every pruner shares to read a study's stored history.

Steps are what the callback reports: ``trainer.global_step`` at each validation. Trials need not
report at the same steps (a tuned batch size changes the steps per epoch, validations may run
several times per epoch or every few epochs): pruners compare a trial with what each other trial
had reached *by* the same step, counting only the trials that ran at least that far.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Literal

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.trial import Trial, TrialState

__all__ = [
    "Pruner",
    "NopPruner",
    "single_direction",
    "best_up_to",
    "vector_up_to",
    "others_at",
    "reported_at",
    "peers_at",
    "previous_step",
    "judges_at",
]

#: ``"auto"`` or a number of steps.
Resource = int | Literal["auto"]


class Pruner(abc.ABC):
    """Decides whether a RUNNING trial should stop.

    ``prune`` is called after each report, with the trial as stored (its intermediate values
    included) and every trial of the study. It must be a pure function of its arguments: no
    state kept between calls, so every process (worker, rank, resumed run) decides alike.
    """

    @property
    def can_prune(self) -> bool:
        """False for a pruner that never stops a trial: the study then answers it without reading the history."""
        return True

    @abc.abstractmethod
    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        """Return True to stop ``trial`` now."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class NopPruner(Pruner):
    """Never prunes.

    Example:
        >>> NopPruner().prune(Trial(0, TrialState.RUNNING, {}), [], directions=["min"])
        False
    """

    @property
    def can_prune(self) -> bool:
        return False

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        return False


def check_int(owner: str, name: str, value: object, minimum: int) -> int:
    """``value`` if it is an int ``>= minimum``; raise otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"{owner}: `{name}` must be an int, but got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise InvalidArgumentError(f"{owner}: `{name} >= {minimum}` must hold, but got {name}={value!r}.")
    return value


def check_resource(owner: str, name: str, value: object) -> Resource:
    """``"auto"`` or a number of steps ``>= 1``."""
    if value == "auto":
        return "auto"
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"{owner}: `{name}` must be 'auto' or an int (steps), but got {value!r}.")
    return check_int(owner, name, value, 1)


def check_optional_float(owner: str, name: str, value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ArgumentTypeError(f"{owner}: `{name}` must be a number or None, but got {value!r}.")
    if math.isnan(value):
        raise InvalidArgumentError(f"{owner}: `{name}` must not be nan.")
    return float(value)


def single_direction(pruner: Pruner, directions: Sequence[str]) -> bool:
    """True when minimizing; raise for multi-objective studies, which this pruner can't judge."""
    if len(directions) != 1:
        raise InvalidArgumentError(
            f"{type(pruner).__name__} judges one objective, but the study has {len(directions)}: use "
            "ASHAPruner (the default), which ranks multi-objective trials by Pareto front at each rung, "
            "or NopPruner to prune nothing."
        )
    return directions[0] == "min"


def best_up_to(trial: Trial, step: float, minimize: bool) -> float | None:
    """The best finite value ``trial`` reported at steps ``<= step``, or None."""
    return trial.best_intermediate(minimize, up_to=step)


def vector_up_to(trial: Trial, step: float) -> tuple[float, ...] | None:
    """The values (one per objective) of ``trial``'s last report at a step ``<= step``, or None."""
    steps = [s for s in trial.intermediate_vectors if s <= step]
    return trial.intermediate_vectors[max(steps)] if steps else None


def reported_at(trials: Sequence[Trial], step: float) -> list[Trial]:
    """The trials that reported at or past ``step``.

    RUNNING and PRUNED trials count (a pruned trial did reach the steps it reported); FAIL trials
    don't, since their history may end in a crash that says nothing about the parameters.
    """
    return [t for t in trials if t.state is not TrialState.FAIL and t.last_step is not None and t.last_step >= step]


def others_at(trial: Trial, trials: Sequence[Trial], step: float) -> list[Trial]:
    """The trials other than ``trial`` that reported at or past ``step`` (see :func:`reported_at`)."""
    return [other for other in reported_at(trials, step) if other.number != trial.number]


def peers_at(trial: Trial, trials: Sequence[Trial], step: float, minimize: bool) -> list[float]:
    """Each other trial's best value by ``step``, for the trials that reported at or past ``step`` (see :func:`others_at`)."""
    values = [best_up_to(other, step, minimize) for other in others_at(trial, trials, step)]
    return [v for v in values if v is not None]


def previous_step(trial: Trial) -> int | None:
    """The step of the report before the latest one, or None when there was none."""
    steps = sorted(trial.intermediate_values)
    return steps[-2] if len(steps) >= 2 else None


def judges_at(trial: Trial, n_warmup_steps: int, interval_steps: int) -> bool:
    """True if the latest report is past the warm-up and the first one in its interval.

    Intervals are ``interval_steps`` wide and start where the warm-up ends (Optuna's rule), so a
    pruner with ``interval_steps=100`` judges once per 100 steps however often trials report.
    """
    step = trial.last_step
    if step is None or step < n_warmup_steps:
        return False
    if interval_steps == 1:
        return True
    interval = (step - n_warmup_steps) // interval_steps
    earlier = [s for s in trial.intermediate_values if n_warmup_steps <= s < step]
    return all((s - n_warmup_steps) // interval_steps != interval for s in earlier)
