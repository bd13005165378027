"""What a benchmark task is, and the registry of tasks by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lightning_hpo import SearchSpace
from lightning_hpo.space import Categorical, Domain, Float, Int

__all__ = ["Evaluation", "Objective", "Task", "register", "TASK_BUILDERS", "space_summary"]


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a task's objective (always minimized).

    Attributes:
        observed: what the optimizer is told (a noisy draw on tabular tasks).
        true: the noiseless value of the same configuration, used for regret. Equal to
            ``observed`` on deterministic tasks.
    """

    observed: float
    true: float


Objective = Callable[[Mapping[str, Any]], Evaluation]


@dataclass(frozen=True)
class Task:
    """A minimization problem over a lightning_hpo search space.

    Attributes:
        name: the task's name on the command line and in the cache.
        summary: one line saying what it is.
        space: parameter name -> ``Float`` / ``Int`` / ``Categorical``, shared by every method.
        make_objective: ``seed -> objective``; the seed fixes the task's noise stream, so a run
            is reproducible and every method meets the same noise process at the same seed.
        optimum: the exact minimum of the true objective, when it is known.
        reference: when no exact optimum is known, a function computing a good upper bound of
            the minimum (a dense search); regret is then taken against the best of this bound
            and every value any method found. ``None`` (and no optimum): best found only.
        default_seeds: seeds run when ``--seeds`` is not given (fewer for tasks that train models).
        reference_source: what ``reference`` computes, in words for the results table.
    """

    name: str
    summary: str
    space: Mapping[str, Domain]
    make_objective: Callable[[int], Objective]
    optimum: float | None = None
    reference: Callable[[], float] | None = None
    default_seeds: int = 10
    reference_source: str = "dense search"

    @property
    def regret_basis(self) -> str:
        """How this task's regret is measured, in words for the results table."""
        if self.optimum is not None:
            return "exact optimum"
        if self.reference is not None:
            return f"{self.reference_source}, or best found if better"
        return "best found by any method"


#: name -> zero-argument builder, in the order of the default suite.
TASK_BUILDERS: dict[str, Callable[[], Task]] = {}


def register(name: str) -> Callable[[Callable[[], Task]], Callable[[], Task]]:
    """Register a task builder; builders import their heavy dependencies themselves."""

    def decorate(builder: Callable[[], Task]) -> Callable[[], Task]:
        if name in TASK_BUILDERS:
            raise ValueError(f"Task {name!r} is registered twice.")
        TASK_BUILDERS[name] = builder
        return builder

    return decorate


def space_summary(space: Mapping[str, Domain]) -> str:
    """``"6 float"``, ``"3 float, 2 int, 1 cat"``...: the kinds of parameters of a space."""
    domains = SearchSpace.coerce(space).values()
    counts = [
        (sum(isinstance(d, Float) for d in domains), "float"),
        (sum(isinstance(d, Int) for d in domains), "int"),
        (sum(isinstance(d, Categorical) for d in domains), "cat"),
    ]
    return ", ".join(f"{n} {kind}" for n, kind in counts if n)
