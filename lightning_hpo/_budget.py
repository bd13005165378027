"""A trial's training budget: the Trainer's ``max_epochs`` / ``max_steps``, stored with each trial.

Two trial attributes carry it, so every process (worker, rank, resumed run) sees the same:

* ``"budget"``: the length limits the Tuner was given, e.g. ``{"max_epochs": 20}`` (``{}`` when
  neither was set: Lightning's defaults). A study's budget is that of its latest trial; the
  Tuner refuses to continue a study with another one (see :func:`check_budget`).
* ``"planned_steps"``: the optimizer steps a full run of the trial takes
  (``Trainer.estimated_stepping_batches``), recorded when its training starts if the budget is
  known; ASHA and Hyperband place their ``"auto"`` rungs on it (see :func:`planned_steps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning_hpo.exceptions import StudyMismatchError
from lightning_hpo.trial import Trial

__all__ = ["BUDGET_ATTR", "PLANNED_STEPS_ATTR", "check_budget", "planned_steps", "training_budget"]

BUDGET_ATTR = "budget"
PLANNED_STEPS_ATTR = "planned_steps"
_LIMITS = ("max_epochs", "max_steps")


def training_budget(trainer_kwargs: Mapping[str, Any]) -> dict[str, int]:
    """The length limits set in ``trainer_kwargs`` (``None`` and ``-1``, Lightning's "unset", left out)."""
    return {name: trainer_kwargs[name] for name in _LIMITS if trainer_kwargs.get(name) not in (None, -1)}


def planned_steps(trial: Trial) -> int | None:
    """The steps of a full run of ``trial`` when its budget is known, else ``None``."""
    steps = trial.attrs.get(PLANNED_STEPS_ATTR)
    return steps if isinstance(steps, int) and steps > 0 else None


def check_budget(study_name: str, trials: Sequence[Trial], budget: Mapping[str, int], *, allow_change: bool) -> None:
    """Refuse to add trials of another budget to a study, unless ``allow_change``.

    Trials of different lengths can't be compared fairly (a longer run usually reaches a better
    value), so a changed ``max_epochs`` is a new study, or an explicit decision to mix them.
    """
    stored = [t for t in trials if isinstance(t.attrs.get(BUDGET_ATTR), Mapping)]
    if not stored or allow_change:
        return
    latest = max(stored, key=lambda t: t.number)
    previous = dict(latest.attrs[BUDGET_ATTR])
    if previous == dict(budget):
        return
    raise StudyMismatchError(
        f"Study {study_name!r} was trained with {_describe(previous)} (trial {latest.number}), but this Tuner has "
        f"{_describe(budget)}: its trials would not be comparable with the earlier ones. Pass a new study_name=... "
        f"to start a study with this budget, restore the earlier trainer_kwargs to resume, or pass "
        "allow_budget_change=True to continue this study with mixed budgets."
    )


def _describe(budget: Mapping[str, int]) -> str:
    if not budget:
        return "Lightning's default length (neither max_epochs nor max_steps set)"
    return ", ".join(f"{name}={value}" for name, value in sorted(budget.items()))
