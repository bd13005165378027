"""Synthetic functions with a known minimum: BoTorch's test functions and a mixed-type function."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from benchmarks.tasks.base import Evaluation, Objective, Task, register
from lightning_hpo.space import Categorical, Float, Int


def _botorch_task(name: str, function_name: str, dim: int | None, summary: str) -> Task:
    from botorch import test_functions

    function_cls = getattr(test_functions, function_name)
    function = function_cls(dim=dim) if dim is not None else function_cls()
    bounds = function.bounds.tolist()  # [lows, highs]
    space = {n: Float(low, high) for n, low, high in zip(_names(function.dim), bounds[0], bounds[1])}
    return _function_task(name, summary, space, function.evaluate_true, function.dim, function.optimal_value)


def _names(dim: int) -> list[str]:
    """x0, x1, ...: zero-padded past 10 columns, so that sorted order is the function's order."""
    width = len(str(dim - 1)) if dim > 10 else 1
    return [f"x{i:0{width}d}" for i in range(dim)]


def _function_task(name: str, summary: str, space: dict[str, Float], function: Any, dim: int, optimum: float) -> Task:
    """A task of ``function`` (a batch of points -> values, as BoTorch's) on its first ``dim``
    columns of ``space``: the columns past them are inert, as unimportant hyperparameters are."""
    import torch

    names = _names(len(space))[:dim]

    def make_objective(seed: int) -> Objective:
        def objective(params: Mapping[str, Any]) -> Evaluation:
            x = torch.tensor([[float(params[n]) for n in names]], dtype=torch.float64)
            value = float(function(x).item())
            return Evaluation(value, value)

        return objective

    return Task(name=name, summary=summary, space=space, make_objective=make_objective, optimum=optimum)


@register("branin")
def branin() -> Task:
    return _botorch_task("branin", "Branin", None, "Branin, 2-D, three global minima")


@register("hartmann6")
def hartmann6() -> Task:
    return _botorch_task("hartmann6", "Hartmann", 6, "Hartmann, 6-D on the unit cube")


@register("levy6")
def levy6() -> Task:
    return _botorch_task("levy6", "Levy", 6, "Levy, 6-D on [-10, 10]^6, many local minima")


@register("ackley6")
def ackley6() -> Task:
    return _botorch_task("ackley6", "Ackley", 6, "Ackley, 6-D on [-32.8, 32.8]^6, many local minima")


# Higher-dimensional probes, in no suite: how the GP's lengthscale prior and acquisition search hold
# at 10 and 20 columns, with few trials per dimension, as in a tuning run of many hyperparameters.


@register("stybtang10")
def stybtang10() -> Task:
    return _botorch_task("stybtang10", "StyblinskiTang", 10, "Styblinski-Tang, 10-D on [-5, 5]^10, 2^10 local minima")


@register("rosenbrock10")
def rosenbrock10() -> Task:
    return _botorch_task("rosenbrock10", "Rosenbrock", 10, "Rosenbrock, 10-D on [-5, 10]^10, a curved valley")


@register("michalewicz10")
def michalewicz10() -> Task:
    return _botorch_task("michalewicz10", "Michalewicz", 10, "Michalewicz, 10-D on [0, pi]^10, steep narrow valleys")


@register("levy20")
def levy20() -> Task:
    return _botorch_task("levy20", "Levy", 20, "Levy, 20-D on [-10, 10]^20, many local minima")


@register("hartmann6_in_20")
def hartmann6_in_20() -> Task:
    from botorch.test_functions import Hartmann

    function = Hartmann(dim=6)
    space = {n: Float(0.0, 1.0) for n in _names(20)}
    summary = "Hartmann, 6-D, among 14 inert columns on the unit cube (20-D)"
    return _function_task("hartmann6_in_20", summary, space, function.evaluate_true, 6, function.optimal_value)


# The mixed function: each category moves the optimum of the floats and has its own floor, the
# best learning rate depends on the number of layers, and the integers' optima are inside their
# ranges, so neither rounding nor treating the category as a number finds the minimum by luck.
MIXED_SPACE = {
    "x0": Float(0.0, 1.0),
    "x1": Float(0.0, 1.0),
    "x2": Float(0.0, 1.0),
    "lr": Float(1e-5, 1.0, log=True),
    "layers": Int(1, 8),
    "units": Int(8, 1024, log=True),
    "kind": Categorical(["a", "b", "c", "d"]),
}
_CENTERS = {"a": (0.2, 0.8, 0.5), "b": (0.7, 0.3, 0.6), "c": (0.35, 0.55, 0.15), "d": (0.9, 0.9, 0.9)}
_FLOORS = {"a": 0.4, "b": 0.2, "c": 0.0, "d": 0.8}


def mixed_function(params: Mapping[str, Any]) -> float:
    """The mixed float/int/categorical test function; its minimum is 0 at
    ``kind="c"``, ``x=(0.35, 0.55, 0.15)``, ``layers=4``, ``lr=10**-2.5``, ``units=128``."""
    center = _CENTERS[params["kind"]]
    offsets = [float(params[f"x{i}"]) - c for i, c in enumerate(center)]
    bowl = 2.0 * sum(d * d for d in offsets)
    ripples = 0.1 * sum(1.0 - math.cos(4.0 * math.pi * d) for d in offsets)
    lr_term = 0.3 * (math.log10(params["lr"]) + 1.5 + 0.25 * params["layers"]) ** 2
    layers_term = 0.08 * (params["layers"] - 4) ** 2
    units_term = 0.15 * (math.log2(params["units"]) - 7.0) ** 2
    return _FLOORS[params["kind"]] + bowl + ripples + lr_term + layers_term + units_term


@register("mixed")
def mixed() -> Task:
    def make_objective(seed: int) -> Objective:
        def objective(params: Mapping[str, Any]) -> Evaluation:
            value = mixed_function(params)
            return Evaluation(value, value)

        return objective

    return Task(
        name="mixed",
        summary="synthetic, 3 float + log float + 2 int + 4-way categorical that moves the optimum",
        space=MIXED_SPACE,
        make_objective=make_objective,
        optimum=0.0,
    )
