"""The benchmark tasks, by name. Importing this package is cheap: each task loads its data and
heavy dependencies when it is built."""

from __future__ import annotations

from benchmarks.tasks import bayesmark, sklearn_suite, synthetic, tabular, training, yahpo  # noqa: F401  (they register their tasks)
from benchmarks.tasks.base import TASK_BUILDERS, Evaluation, Objective, Task, space_summary
from benchmarks.tasks.bayesmark import BAYESMARK_TASKS
from benchmarks.tasks.sklearn_suite import BROAD_TASKS, WIDE_TASKS
from benchmarks.tasks.yahpo import POOL2_TASKS, POOL_TASKS

__all__ = [
    "BAYESMARK_TASKS",
    "Evaluation",
    "Objective",
    "Task",
    "TASK_BUILDERS",
    "DEFAULT_TASKS",
    "BROAD_TASKS",
    "HIGH_DIM_TASKS",
    "WIDE_TASKS",
    "POOL_TASKS",
    "POOL2_TASKS",
    "QUICK_TASKS",
    "build_task",
    "space_summary",
]

#: The full suite (ackley6 is available but not run by default: Levy6 covers the multimodal case).
DEFAULT_TASKS = (
    "branin",
    "hartmann6",
    "levy6",
    "mixed",
    "hpolib_parkinsons",
    "hpolib_slice",
    "nb201_cifar100",
    "hpobench_kc1",
    "yahpo_xgboost",
    "svc_breast_cancer",
    "gb_diabetes",
    "digits_mlp",
)
#: Probes at 10 and 20 columns, in neither suite (nothing was tuned on them): `--tasks highdim`.
HIGH_DIM_TASKS = ("stybtang10", "rosenbrock10", "michalewicz10", "levy20", "hartmann6_in_20")
#: The smoke run: one continuous, one mixed and one tabular task.
QUICK_TASKS = ("branin", "mixed", "hpobench_kc1")


def build_task(name: str) -> Task:
    builder = TASK_BUILDERS.get(name)
    if builder is None:
        raise KeyError(f"Unknown task {name!r}; the tasks are: {', '.join(TASK_BUILDERS)}.")
    return builder()
