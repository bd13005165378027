"""YAHPO Gym surrogates: XGBoost (``rbv2_xgboost``), decision trees (``rbv2_rpart``), elastic net
(``iaml_glmnet``) and MLPs (``lcbench``) on OpenML datasets, one ONNX model per scenario.

``yahpo_xgboost`` is the default suite's task: instance 1489 of rbv2_xgboost, a 14-D mixed space
with a categorical ``booster`` whose children are active only for some boosters. The ``pool_*``
tasks (``--tasks pool``) are a held-out pool of instances drawn at random from all four scenarios.

The ONNX surrogates are evaluated with onnxruntime directly, encoding inputs exactly as
``yahpo_gym.BenchmarkSet`` does (yahpo-gym 1.0.2 pins numpy<2 and ConfigSpace 0.6.1, which would
downgrade the project's environment): continuous inputs in the scenario's ``cont_names`` order,
categorical inputs integer-coded by ``encoding.json``, inactive children sent as 0 / ``"#na#"``.
The space is the flat union of all parameters; a parameter inactive for the chosen booster is
ignored by the objective, as a flat optimizer would meet it (``tree_space`` is the conditional
one). Fidelities are at their maximum (``trainsize=1``, ``repl=10``; 52 epochs) unless ``losses``
is given others. The surrogates are deterministic.

Data: ``$BENCHMARKS_YAHPO_DATA``, else ``shared/data/yahpo`` beside the repository.
"""

from __future__ import annotations

import functools
import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tasks.base import Evaluation, Objective, Task, register
from lightning_hpo import SearchSpace
from lightning_hpo.space import Categorical, Domain, Float, Int

DATA_ENV = "BENCHMARKS_YAHPO_DATA"
SCENARIO = "rbv2_xgboost"
INSTANCE = "1489"  # OpenML phoneme: the optimum is narrow (0.01% of random configs within 1% of it)
REFERENCE_POINTS = 200_000


@dataclass(frozen=True)
class Scenario:
    """How one YAHPO scenario's ONNX model reads its inputs and what is minimized.

    Attributes:
        name: the scenario's folder in the data.
        cont_names / cat_names: the model's continuous and integer-coded inputs, in order (from
            ``yahpo_gym/benchmarks/*.py`` of yahpo-gym 1.0.2).
        instance_name: the categorical input naming the OpenML task.
        fidelity: the fidelity inputs, fixed (at their maximum unless a caller asks otherwise).
        target: the model's output column of the metric.
        loss: that output -> the value to minimize.
        metric: the loss in words.
    """

    name: str
    cont_names: tuple[str, ...]
    cat_names: tuple[str, ...]
    instance_name: str
    fidelity: Mapping[str, float]
    target: int
    loss: Callable[[np.ndarray], np.ndarray]
    metric: str


_RBV2_FIDELITY = {"trainsize": 1.0, "repl": 10}
SCENARIOS: dict[str, Scenario] = {
    "rbv2_xgboost": Scenario(
        "rbv2_xgboost",
        (
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
        ),
        ("task_id", "booster", "num.impute.selected.cpo"),
        "task_id",
        _RBV2_FIDELITY,
        0,  # acc
        lambda accuracy: 1.0 - accuracy,
        "1 - accuracy",
    ),
    "rbv2_rpart": Scenario(
        "rbv2_rpart",
        ("cp", "maxdepth", "minbucket", "minsplit", "trainsize", "repl"),
        ("task_id", "num.impute.selected.cpo"),
        "task_id",
        _RBV2_FIDELITY,
        0,  # acc
        lambda accuracy: 1.0 - accuracy,
        "1 - accuracy",
    ),
    "iaml_glmnet": Scenario(
        "iaml_glmnet",
        ("alpha", "s", "trainsize"),
        ("task_id",),
        "task_id",
        {"trainsize": 1.0},
        0,  # mmce
        lambda error: error,
        "misclassification error",
    ),
    "lcbench": Scenario(
        "lcbench",
        ("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units", "max_dropout"),
        ("OpenML_task_id",),
        "OpenML_task_id",
        {"epoch": 52},
        1,  # val_accuracy, in percent
        lambda accuracy: 1.0 - accuracy / 100.0,
        "1 - validation accuracy after 52 epochs",
    ),
}
FIDELITY = SCENARIOS[SCENARIO].fidelity


def data_dir() -> Path:
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "yahpo"


class YahpoSurrogate:
    """One scenario's ONNX model for one instance, evaluated on batches of configurations."""

    def __init__(self, directory: Path, scenario: Scenario, instance: str) -> None:
        import onnxruntime

        scenario_dir = directory / scenario.name
        if not (scenario_dir / "model.onnx").is_file():
            raise FileNotFoundError(
                f"No YAHPO data at {scenario_dir}: set {DATA_ENV} to the folder holding {scenario.name}/model.onnx."
            )
        self.scenario = scenario
        self.encoding: dict[str, dict[str, int]] = json.loads((scenario_dir / "encoding.json").read_text())
        config_space = json.loads((scenario_dir / "config_space.json").read_text())
        fixed = {scenario.instance_name, *scenario.fidelity}
        self.space: dict[str, Domain] = {
            h["name"]: _domain(h) for h in config_space["hyperparameters"] if h["name"] not in fixed
        }
        # child -> the parent's values for which it is active
        self.conditions: dict[str, tuple[str, set[Any]]] = {
            c["child"]: (c["parent"], set(c["values"]) if c["type"] == "IN" else {c["value"]})
            for c in config_space["conditions"]
        }
        if instance not in self.encoding[scenario.instance_name]:
            raise ValueError(f"Instance {instance!r} is not in {scenario.name}'s encoding.")
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
        """The space with each conditional child active only where the surrogate uses it."""
        return {
            name: domain.with_when({self.conditions[name][0]: sorted(self.conditions[name][1])})
            if name in self.conditions
            else domain
            for name, domain in self.space.items()
        }

    def encode(
        self, batch: Sequence[Mapping[str, Any]], fidelity: Mapping[str, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model's inputs, as ``yahpo_gym.BenchmarkSet`` builds them: inactive or missing
        continuous inputs 0, categorical ones ``"#na#"``."""
        scenario = self.scenario
        fidelity = scenario.fidelity if fidelity is None else fidelity
        cont = np.zeros((len(batch), len(scenario.cont_names)), dtype=np.float32)
        cat = np.zeros((len(batch), len(scenario.cat_names)), dtype=np.int32)
        for row, params in enumerate(batch):
            values = {**fidelity, **{n: v for n, v in params.items() if self._is_active(n, params)}}
            cont[row] = [values.get(n, 0) for n in scenario.cont_names]
            values[scenario.instance_name] = self.instance
            cat[row] = [self.encoding[n][values.get(n, "#na#")] for n in scenario.cat_names]
        return cont, cat

    def losses(self, batch: Sequence[Mapping[str, Any]], fidelity: Mapping[str, float] | None = None) -> np.ndarray:
        """The scenario's loss of each configuration, at ``fidelity`` (default: the scenario's)."""
        cont, cat = self.encode(batch, fidelity)
        outputs = self.session.run(None, {"x_cat": cat, "x_cont": cont})[0]
        return self.scenario.loss(outputs[:, self.scenario.target].astype(np.float64))


class XGBoostSurrogate(YahpoSurrogate):
    """rbv2_xgboost for one instance: the objective is 1 - accuracy."""

    def __init__(self, directory: Path, instance: str) -> None:
        super().__init__(directory, SCENARIOS[SCENARIO], instance)


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


def dense_search(model: YahpoSurrogate, n_points: int, seed: int = 0) -> float:
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


def _objective(model: YahpoSurrogate) -> Callable[[int], Objective]:
    def make_objective(seed: int) -> Objective:  # deterministic: the seed changes nothing
        def objective(params: Mapping[str, Any]) -> Evaluation:
            value = float(model.losses([params])[0])
            return Evaluation(value, value)

        return objective

    return make_objective


@register("yahpo_xgboost")
def yahpo_xgboost() -> Task:
    model = surrogate()
    return Task(
        name="yahpo_xgboost",
        summary=f"YAHPO Gym {SCENARIO} surrogate, OpenML {INSTANCE} (phoneme), 1 - accuracy, booster-conditional children",
        space=model.space,
        make_objective=_objective(model),
        reference=lambda: dense_search(model, REFERENCE_POINTS),
    )


#: The held-out pool (``--tasks pool``): OpenML instances drawn at random from each scenario's list
#: (``draw_pool``), fixed here before any sampler ran on them. Nothing in lightning_hpo was chosen on
#: these problems; they measure how its settings carry over to problems nobody picked.
POOL_DRAW_SEED = 2026
POOL_SIZES = {"rbv2_rpart": 12, "rbv2_xgboost": 12, "lcbench": 12, "iaml_glmnet": 4}
POOL_INSTANCES = {
    "rbv2_rpart": ("3", "28", "307", "554", "1111", "1462", "1486", "1510", "6332", "40966", "40983", "41162"),
    "rbv2_xgboost": ("3", "50", "54", "151", "458", "1049", "1457", "1468", "1515", "4135", "40984", "40994"),
    "lcbench": (
        "146212",
        "167104",
        "167184",
        "167201",
        "168329",
        "168330",
        "168331",
        "189354",
        "189865",
        "189866",
        "189905",
        "189909",
    ),
    "iaml_glmnet": ("1067", "1489", "40981", "41146"),
}
#: Dense-search points of a pool task's reference (the default suite's XGBoost task uses more).
POOL_REFERENCE_POINTS = 50_000


def draw_pool(
    directory: Path,
    sizes: dict[str, int] = POOL_SIZES,
    seed: int = POOL_DRAW_SEED,
    exclude: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """``sizes`` instances of each scenario, drawn with ``seed`` from the instances of its
    ``config_space.json`` other than those of ``exclude``; rbv2_xgboost's draw leaves out the
    default suite's instance."""
    pool = {}
    for name, size in sizes.items():
        scenario = SCENARIOS[name]
        config_space = json.loads((directory / name / "config_space.json").read_text())
        choices = next(h["choices"] for h in config_space["hyperparameters"] if h["name"] == scenario.instance_name)
        left_out = {INSTANCE} if name == SCENARIO else set()
        left_out |= set((exclude or {}).get(name, ()))
        choices = [c for c in choices if c not in left_out]
        pool[name] = tuple(sorted(random.Random(seed).sample(choices, size), key=int))
    return pool


def _pool_task(scenario_name: str, instance: str, prefix: str = "pool") -> str:
    name = f"{prefix}_{scenario_name.split('_')[-1]}_{instance}"

    @register(name)
    def build() -> Task:
        scenario = SCENARIOS[scenario_name]
        model = YahpoSurrogate(data_dir(), scenario, instance)
        return Task(
            name=name,
            summary=f"YAHPO Gym {scenario_name} surrogate, OpenML {instance}, {scenario.metric} (held-out {prefix})",
            space=model.space,
            make_objective=_objective(model),
            reference=lambda: dense_search(model, POOL_REFERENCE_POINTS),
        )

    return name


POOL_TASKS = tuple(
    _pool_task(scenario, instance) for scenario, instances in POOL_INSTANCES.items() for instance in instances
)

#: A second held-out pool (``--tasks pool2``), drawn (``draw_pool``) with another seed from the
#: instances the first pool left (iaml_glmnet has none left, so its four go to the tree scenarios),
#: fixed here before any sampler ran on them. A pool that has gated a change has been chosen on a
#: little (the first has gated one, ``GP_DECISIONS.md``); this one is the next gate. Its one run so far
#: checked today's settings (``POOL2_RESULTS.md``).
POOL2_DRAW_SEED = 2027
POOL2_SIZES = {"rbv2_rpart": 14, "rbv2_xgboost": 14, "lcbench": 12}
POOL2_INSTANCES = {
    "rbv2_rpart": (
        "151", "469", "470", "1050", "1063", "1475", "1497", "4135", "4538", "40496", "40498", "41157", "41165", "41212",
    ),
    "rbv2_xgboost": (
        "12", "300", "307", "1461", "1464", "1478", "1510", "4154", "23381", "40923", "41146", "41156", "41159", "41169",
    ),
    "lcbench": (
        "3945", "34539", "126025", "126029", "167149", "167168", "167181", "167190", "167200", "168335", "168868", "189873",
    ),
}  # fmt: skip
POOL2_TASKS = tuple(
    _pool_task(scenario, instance, prefix="pool2")
    for scenario, instances in POOL2_INSTANCES.items()
    for instance in instances
)
