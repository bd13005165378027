"""YAHPO Gym's ``rbv2_xgboost`` surrogate: XGBoost on an OpenML dataset, a 14-D mixed space with
a categorical ``booster`` whose children are active only for some boosters.

The ONNX surrogate is evaluated with onnxruntime directly, encoding inputs exactly as
``yahpo_gym.BenchmarkSet`` does (yahpo-gym 1.0.2 pins numpy<2 and ConfigSpace 0.6.1, which would
downgrade the project's environment): continuous inputs in the scenario's ``cont_names`` order,
categorical inputs integer-coded by ``encoding.json``, inactive children sent as 0 / ``"#na#"``.
The space is the flat union of all parameters; a parameter inactive for the chosen booster is
ignored by the objective, as a flat optimizer would meet it (``tree_space`` is the conditional
one). Fidelities are at their maximum (``trainsize=1``, ``repl=10``) unless ``losses`` is given
others. The objective is 1 - accuracy; the surrogate is deterministic.

Data: ``$BENCHMARKS_YAHPO_DATA``, else ``shared/data/yahpo`` beside the repository.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tasks.base import Evaluation, Objective, Task, register
from lightning_hpo import SearchSpace
from lightning_hpo.space import Categorical, Domain, Float, Int

DATA_ENV = "BENCHMARKS_YAHPO_DATA"
SCENARIO = "rbv2_xgboost"
INSTANCE = "1489"  # OpenML phoneme: the optimum is narrow (0.01% of random configs within 1% of it)
# From yahpo_gym/benchmarks/rbv2.py (1.0.2): the surrogate's input columns.
CONT_NAMES = (
    "nrounds",
    "eta",
    "gamma",
    "lambda",
    "alpha",
    "subsample",
    "max_depth",
    "min_child_weight",
    "colsample_bytree",
    "colsample_bylevel",
    "rate_drop",
    "skip_drop",
    "trainsize",
    "repl",
)
CAT_NAMES = ("task_id", "booster", "num.impute.selected.cpo")
FIDELITY = {"trainsize": 1.0, "repl": 10}
TARGET = 0  # "acc", first of the scenario's y_names
REFERENCE_POINTS = 200_000


def data_dir() -> Path:
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "yahpo"


class XGBoostSurrogate:
    """The rbv2_xgboost ONNX model for one instance, evaluated on batches of configurations."""

    def __init__(self, directory: Path, instance: str) -> None:
        import onnxruntime

        scenario_dir = directory / SCENARIO
        if not (scenario_dir / "model.onnx").is_file():
            raise FileNotFoundError(
                f"No YAHPO data at {scenario_dir}: set {DATA_ENV} to the folder holding {SCENARIO}/model.onnx."
            )
        self.encoding: dict[str, dict[str, int]] = json.loads((scenario_dir / "encoding.json").read_text())
        config_space = json.loads((scenario_dir / "config_space.json").read_text())
        fixed = {"task_id", *FIDELITY}
        self.space: dict[str, Domain] = {
            h["name"]: _domain(h) for h in config_space["hyperparameters"] if h["name"] not in fixed
        }
        # child -> the parent's values for which it is active
        self.conditions: dict[str, tuple[str, set[Any]]] = {
            c["child"]: (c["parent"], set(c["values"]) if c["type"] == "IN" else {c["value"]})
            for c in config_space["conditions"]
        }
        if instance not in self.encoding["task_id"]:
            raise ValueError(f"Instance {instance!r} is not in {SCENARIO}'s encoding.")
        self.instance = instance
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(scenario_dir / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        condition = self.conditions.get(name)
        return condition is None or params[condition[0]] in condition[1]

    @property
    def tree_space(self) -> dict[str, Domain]:
        """The space with each booster-conditional child active only where the surrogate uses it."""
        return {
            name: domain.with_when({self.conditions[name][0]: sorted(self.conditions[name][1])})
            if name in self.conditions
            else domain
            for name, domain in self.space.items()
        }

    def encode(
        self, batch: Sequence[Mapping[str, Any]], fidelity: Mapping[str, float] = FIDELITY
    ) -> tuple[np.ndarray, np.ndarray]:
        cont = np.zeros((len(batch), len(CONT_NAMES)), dtype=np.float32)
        cat = np.zeros((len(batch), len(CAT_NAMES)), dtype=np.int32)
        for row, params in enumerate(batch):
            values = {**fidelity, **{n: v for n, v in params.items() if self._is_active(n, params)}}
            cont[row] = [values.get(n, 0) for n in CONT_NAMES]
            values["task_id"] = self.instance
            cat[row] = [self.encoding[n][values.get(n, "#na#")] for n in CAT_NAMES]
        return cont, cat

    def losses(self, batch: Sequence[Mapping[str, Any]], fidelity: Mapping[str, float] = FIDELITY) -> np.ndarray:
        """1 - accuracy of each configuration, trained at ``fidelity`` (``trainsize`` and ``repl``)."""
        cont, cat = self.encode(batch, fidelity)
        outputs = self.session.run(None, {"x_cat": cat, "x_cont": cont})[0]
        return 1.0 - outputs[:, TARGET].astype(np.float64)


def _domain(hyperparameter: Mapping[str, Any]) -> Domain:
    kind = hyperparameter["type"]
    if kind == "uniform_float":
        return Float(hyperparameter["lower"], hyperparameter["upper"], log=hyperparameter["log"])
    if kind == "uniform_int":
        return Int(hyperparameter["lower"], hyperparameter["upper"], log=hyperparameter["log"])
    if kind == "categorical":
        return Categorical(hyperparameter["choices"])
    raise ValueError(f"Unsupported hyperparameter type {kind!r} in {dict(hyperparameter)!r}.")


@functools.cache
def surrogate() -> XGBoostSurrogate:
    return XGBoostSurrogate(data_dir(), INSTANCE)


def dense_search(model: XGBoostSurrogate, n_points: int, seed: int = 0) -> float:
    """The lowest loss among ``n_points`` configurations (uniform in the unit cube, half of them
    pushed to its faces), then refined by shrinking Gaussian steps around the best ones: an upper
    bound of the minimum."""
    space = SearchSpace(model.space)
    rng = np.random.default_rng(seed)
    chunk = 20_000

    def evaluate(points: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                model.losses([space.decode(p) for p in points[i : i + chunk].tolist()])
                for i in range(0, len(points), chunk)
            ]
        )

    points = rng.random((n_points, len(space)))
    # The surrogate's best regions lie on the box's faces (most trees, full subsampling...), which
    # uniform points never touch: in half of the points, each coordinate goes to a bound with
    # probability 1/2.
    corners = rng.random(points.shape) < 0.5
    corners[: n_points // 2] = False
    points[corners] = rng.integers(0, 2, size=int(corners.sum()))
    losses = evaluate(points)
    for scale in (0.1, 0.05, 0.02, 0.01, 0.005):
        best = points[np.argsort(losses)[:20]]
        steps = best.repeat(250, axis=0) + rng.normal(scale=scale, size=(len(best) * 250, len(space)))
        candidates = np.clip(steps, 0.0, 1.0)
        points = np.concatenate([best, candidates])
        losses = np.concatenate([losses[np.argsort(losses)[:20]], evaluate(candidates)])
    return float(losses.min())


@register("yahpo_xgboost")
def yahpo_xgboost() -> Task:
    model = surrogate()

    def make_objective(seed: int) -> Objective:
        def objective(params: Mapping[str, Any]) -> Evaluation:
            value = float(model.losses([params])[0])
            return Evaluation(value, value)

        return objective

    return Task(
        name="yahpo_xgboost",
        summary=f"YAHPO Gym {SCENARIO} surrogate, OpenML {INSTANCE} (phoneme), 1 - accuracy, booster-conditional children",
        space=model.space,
        make_objective=make_objective,
        reference=lambda: dense_search(model, REFERENCE_POINTS),
    )
