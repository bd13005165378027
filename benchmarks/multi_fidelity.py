"""Multi-fidelity on LCBench and rbv2_xgboost: our GP + pruners against DEHB, SMAC-Hyperband and Optuna, equal budgets.

    python benchmarks/multi_fidelity.py                          # 8 tasks x 3 seeds (~3-4 CPU-min per task and seed)
    python benchmarks/multi_fidelity.py --tasks all --seeds 5    # the issue's full size (34 x 5)
    python benchmarks/multi_fidelity.py --tasks 189906 --seeds 1 --methods random,gp_asha --no-write
    python benchmarks/multi_fidelity.py --methods gp_asha,gp_curve,gp_none,gpc_asha,gpc_curve --no-write  # GP (curves)
    python benchmarks/multi_fidelity.py --family rbv2_xgboost --seeds 3    # the 10 rbv2 instances of YAHPO-SO
    python benchmarks/multi_fidelity.py --family rbv2_xgboost_continued --seeds 3  # levels charged as one training
    python benchmarks/multi_fidelity.py --family digits --seeds 5                  # real training: MLP and CNN
    python benchmarks/multi_fidelity.py --tasks all --seeds 5 --methods gpc_asha,gpcost_asha --no-write  # EI per epoch

One trial at a time, every method through its public ask/tell API in the same run, on YAHPO Gym's
LCBench surrogate (see pruning_lcbench.py): 52 epochs of validation accuracy per configuration.
Budgets count every epoch trained (52 epochs = one full training); a configuration counts as found
once it has trained all 52 epochs, with its accuracy at epoch 52 (a pruned trial, or DEHB's and
SMAC's lower-fidelity runs, spend epochs but find nothing). Each method runs once per task and
seed up to the largest budget; the smaller budgets read its trajectory. "ours GP (curves)" is
GPSampler() with its default learn_from_curves=True: pruned trials enter its GP at their curves'
predicted ends; "ours GP" without it is GPSampler(learn_from_curves=False), the default until
session 12: pruned trials enter at their stored values, their best so far.

Regret: the task's reference (best epoch-52 accuracy of 20,000 random configurations, or anything a
method found above it) minus the best found, in accuracy points. "Corner tasks": tasks where a
corner of the search box predicts an accuracy more than a point above all 20,000 random
configurations (on 14 of the 34 tasks; mostly the corner of the largest learning rate, layers and
units, a region with no training data behind it), i.e. where the surrogate is likely extrapolating; the tables give figures with and without them.

``--family rbv2_xgboost``: YAHPO's rbv2_xgboost surrogate with its ``trainsize`` fidelity (see
XGBoostTask): test accuracy (%) at trainsizes 0.05, 1/9, 1/3 and 1, each level a training from
scratch, so a trial costs the sum of the fractions it trained and budgets count full trainings of
that cost; a configuration counts as found once trained on all the data. The reference is the best
of 20,000 random configurations at full trainsize (or anything a method found above it), with no
corner check. Its methods: our GP + ASHA (default rungs, 1/9 and 1/3 of a full run: the 0.05
level is trained but never judged), the same with ``min_resource=1`` (rungs on every level below
the full one), our GP without pruning, random, Optuna TPE and GP with HyperbandPruner, DEHB and
SMAC (the others run on demand with ``--methods``). ``--family rbv2_xgboost_continued``: the same
instances, decisions and accuracies, each level charged only what it adds to the one before (a
full trial costs 1, as a Lightning run's validations cost nothing beyond its epochs), which
separates what pruning loses by ranking on small trainsizes from what it pays by retraining; its
methods are our GP's with each pruner (the anchors' jobs are separate trainings by their design).

``--family digits``: real training (_mf_training.py): the digits MLP of examples/digits.py and
the CNN of pruning_training.py, validation accuracy (points) after each of 20 epochs, every epoch
trained for real when a method asks for it (each configuration's curve seeded by the
configuration, so every method sees the same curve for it); DEHB's and SMAC's jobs train from
scratch to their fidelity. No random reference (each would be a real training): regret is against
the best any method found in the run.

DEHB (`dehb`) and SMAC3 (`smac_hb`) need numpy < 2: they run in their own venv as a subprocess
(_mf_anchors.py; set-up in benchmarks/README.md, `--anchor-python`), and are skipped if it is missing.
They get the task's space as lightning_hpo states it (on rbv2, the categorical ``booster`` and its
children's conditions) and ask for a fidelity of their own choosing between the task's
``anchor_fidelities`` (eta = 3, three halvings below a full run): on LCBench epochs, rounded; on
rbv2 a trainsize fraction, trained at the family's nearest level AT OR ABOVE it (their lowest,
1/27, becomes 0.05) and charged that level alone: each job is a training from scratch, and they
train a lower level only when they ask for it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._mf_training import EPOCHS as TRAINING_EPOCHS  # noqa: E402
from benchmarks._mf_training import TrainingTask  # noqa: E402
from benchmarks.methods import suggest_define_by_run  # noqa: E402
from benchmarks.pruning_lcbench import DATA, EPOCHS, SPACE, Surrogate  # noqa: E402
from benchmarks.pruning_replay import write_section  # noqa: E402
from benchmarks.tasks.yahpo import FIDELITY, XGBoostSurrogate, data_dir  # noqa: E402
from lightning_hpo import SearchSpace, Study  # noqa: E402
from lightning_hpo.pruners import ASHAPruner, CurvePruner, NopPruner, Pruner  # noqa: E402
from lightning_hpo.samplers import GPSampler, RandomSampler  # noqa: E402
from lightning_hpo.space import Int  # noqa: E402
from lightning_hpo.trial import TrialState  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_TASKS = ["189906", "167168", "126026", "167190", "189866", "168868", "7593", "34539"]
#: rbv2_xgboost's instances in YAHPO-SO (yahpo_data's benchmark_suites/v1.0/single.json), then rbv2_super's there.
RBV2_TASKS = ["12", "1501", "16", "40499", "1053", "1457", "1063", "1479", "15", "1468"]
#: rbv2_xgboost's trainsize levels: 1/27 (clipped at 0.05), 1/9, 1/3 and all of the data.
TRAINSIZES = (0.05, 1 / 9, 1 / 3, 1.0)
ANCHOR_PYTHON = HERE.parent / ".venv-mf" / "bin" / "python"  # the repository root's, gitignored
REFERENCE_SAMPLES = 20_000
#: A task is a "corner task" when a corner of the box beats every random configuration by more than this (points).
CORNER_MARGIN = 1.0
#: Lowest fidelity of the Hyperband-style anchors: three halvings below a full run (eta = 3).
MIN_EPOCHS = EPOCHS / 27


@dataclass
class Trajectory:
    """Cost spent (in the task's units) when each full training ended, and its final value; when
    each stopped trial was stopped, at which step, and the final value its full run would have had
    (``None`` on real training, where it is not known)."""

    found: list[tuple[float, float]] = field(default_factory=list)
    stopped: list[tuple[float, int, float | None]] = field(default_factory=list)
    spent: float = 0
    trials: int = 0
    decision_seconds: list[float] = field(default_factory=list)

    def best_within(self, budget: float) -> float:
        values = [v for spent, v in self.found if spent <= budget]
        return max(values) if values else math.nan


class Task:
    """One LCBench task: curves on demand, every epoch counted against the budget.

    What every task family gives the runners: ``name``, ``space``, ``full`` (the cost of one full
    training, the budgets' unit), ``steps(prunes)`` (the steps a trial reports at, each with its
    cost; ``prunes``: whether the method can stop a trial before its last step), ``values``
    (the metric, maximized, at those steps), ``last_step`` and ``reference()``.
    """

    space = SPACE
    full = EPOCHS
    last_step = EPOCHS
    #: The range DEHB and SMAC pick fidelities from (epochs).
    anchor_fidelities = (MIN_EPOCHS, EPOCHS)

    def __init__(self, surrogate: Surrogate, task: str) -> None:
        self.surrogate, self.name = surrogate, task

    @staticmethod
    def steps(prunes: bool) -> list[tuple[int, int]]:
        """Every epoch, one epoch each: training goes on from the last epoch, pruned or not."""
        return [(epoch, 1) for epoch in range(1, EPOCHS + 1)]

    @staticmethod
    def anchor_step(fidelity: float) -> tuple[int, int]:
        """An anchor's job of ``fidelity`` epochs: (step, cost), its epochs rounded into 1..52."""
        epochs = min(max(round(fidelity), 1), EPOCHS)
        return epochs, epochs

    def values(self, config: dict[str, Any], steps: list[tuple[int, int]]) -> list[float]:
        curve = self.surrogate.curves(self.name, [config])[0]
        return [curve[step - 1][1] for step, _ in steps]

    def reference(self, seed: int = 12345) -> tuple[float, bool]:
        """Best epoch-52 accuracy of random configurations, and whether a corner of the box beats it."""
        rng = np.random.default_rng(seed)
        units = rng.random((REFERENCE_SAMPLES, len(SPACE)))
        corners = np.array(list(itertools.product([0.0, 1.0], repeat=len(SPACE))))
        best = {}
        for name, points in (("random", units), ("corner", corners)):
            configs = [unit_to_config(u) for u in points]
            best[name] = max(final_accuracies(self, configs))
        return best["random"], best["corner"] > best["random"] + CORNER_MARGIN


class XGBoostTask:
    """One instance of YAHPO's rbv2_xgboost: XGBoost trained on a fraction ``trainsize`` of the data.

    Steps 1, 3, 9, 27 stand for the trainsize levels of ``TRAINSIZES`` (an eta = 3 ladder: a
    level's step is its share of the data in 27ths, the lowest clipped to 0.05); a method that
    prunes reports a trial's held-out accuracy (points) at each level in turn, one step each, and can
    stop it between levels. Each level is a new training from scratch on that fraction, so a
    trial costs the SUM of the fractions it trained: 1.49 full trainings if it reaches the last
    level. A method that never prunes trains the full level alone (cost 1): the smaller levels
    would tell it nothing it acts on. ``repl`` (the resampling split) stays at yahpo.FIDELITY's.
    The space is the conditional one (``booster``'s children active only where the surrogate
    uses them), as lightning_hpo's SearchSpace states it.

    ``continued=True`` charges each level only what it adds to the one before (a trial reaching the
    last level costs 1, as without pruning): the cost of a fidelity that one training continues
    through, as a Lightning run's validations are. Same decisions, other accounting: it separates
    what pruning costs through the ranking of small trainsizes from what it costs through retraining.
    """

    full = 1.0
    last_step = 27
    #: The range DEHB and SMAC pick trainsizes from: 1/27 to all of the data, LCBench's eta = 3 ladder.
    anchor_fidelities = (1 / 27, 1.0)

    def __init__(self, model: XGBoostSurrogate, *, continued: bool = False) -> None:
        self.model, self.name = model, model.instance
        self.space = SearchSpace(model.tree_space)
        self.continued = continued

    def steps(self, prunes: bool) -> list[tuple[int, float]]:
        """(step, cost) of each level a trial trains, in order; only the full level without pruning."""
        if not prunes:
            return [(27, 1.0)]
        charged = [t - before for before, t in zip((0.0, *TRAINSIZES), TRAINSIZES)] if self.continued else TRAINSIZES
        return [(round(t * 27), cost) for t, cost in zip(TRAINSIZES, charged, strict=True)]

    @staticmethod
    def anchor_step(fidelity: float) -> tuple[int, float]:
        """An anchor's job at trainsize ``fidelity``: the lowest level at or above it, (step, cost = level)."""
        level = min((t for t in TRAINSIZES if t >= fidelity * (1 - 1e-9)), default=TRAINSIZES[-1])
        return round(level * 27), level

    def values(self, config: dict[str, Any], steps: list[tuple[int, float]]) -> list[float]:
        """The accuracy at each level of ``steps`` ((step, cost) pairs: the step names the level)."""
        level = {round(t * 27): t for t in TRAINSIZES}
        return [self.final([config], level[step])[0] for step, _ in steps]

    def final(self, configs: list[dict[str, Any]], trainsize: float = 1.0) -> list[float]:
        """Held-out accuracy (the surrogate's ``acc``, in points) of ``configs`` trained on ``trainsize`` of the data."""
        losses = self.model.losses(configs, {**FIDELITY, "trainsize": trainsize})
        return [100.0 * (1.0 - loss) for loss in losses.tolist()]

    def reference(self, seed: int = 12345) -> tuple[float, bool]:
        """Best full-trainsize accuracy of random configurations (no corner check: that is LCBench's)."""
        flat = SearchSpace(self.model.space)  # the surrogate ignores inactive children
        units = np.random.default_rng(seed).random((REFERENCE_SAMPLES, len(flat)))
        return max(self.final([flat.decode(u) for u in units.tolist()])), False


AnyTask = Task | XGBoostTask | TrainingTask


def run_study(task: AnyTask, seed: int, budget: float, sampler: Any, pruner: Pruner, workers: int = 1) -> Trajectory:
    """A real lightning_hpo Study: ask, report every step, should_prune, tell.

    With several ``workers`` that many trials train at once, as on a cluster, simulated in one
    process: each step takes its cost in time, the next step to end is the next reported, and a
    worker whose trial ends asks for the next one while the others' trials are RUNNING, part-way
    through their curves. Once the budget is spent no trial starts; those running train on (their
    epochs past the budget count for nothing, as ``best_within`` reads)."""
    study = Study(
        f"mf-{task.name}-{seed}",
        search_space=task.space,
        mode="max",
        storage=":memory:",
        sampler=sampler,
        pruner=pruner,
    )
    steps = task.steps(prunes=not isinstance(pruner, NopPruner))
    out = Trajectory()

    def start(clock: float) -> dict[str, Any]:
        trial = study.ask()
        out.trials += 1
        values = task.values(dict(trial.params), steps)
        return {"clock": clock, "trial": trial, "values": values, "next": iter(values), "at": 0}

    running = [start(0.0) for _ in range(workers)]
    while running:
        worker = min(running, key=lambda w: w["clock"])  # the first of equal clocks on a tie
        trial, (step, cost) = worker["trial"], steps[worker["at"]]
        accuracy = next(worker["next"])
        worker["clock"] += cost
        worker["at"] += 1
        out.spent += cost
        study.report(trial, step, accuracy)
        started = time.perf_counter()
        stop = step < task.last_step and study.should_prune(trial)
        out.decision_seconds.append(time.perf_counter() - started)
        if stop:
            study.tell(trial, state=TrialState.PRUNED)
            # A real training's curve is trained as it is read (a generator): its final value
            # would cost the rest of the training, so only the surrogates' is kept.
            values = worker["values"]
            out.stopped.append((out.spent, step, values[-1] if isinstance(values, list) else None))
        elif worker["at"] == len(steps):
            study.tell(trial, accuracy)
            out.found.append((out.spent, accuracy))
        else:
            continue
        running.remove(worker)
        if out.spent < budget:
            running.append(start(worker["clock"]))
    return out


def run_optuna(task: AnyTask, seed: int, budget: float, make_sampler: Callable[[int], Any]) -> Trajectory:
    """An Optuna study with HyperbandPruner (the task's steps, eta 3): ask, report, should_prune, tell."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=task.last_step, reduction_factor=3)
    study = optuna.create_study(
        study_name=f"mf-{task.name}-{seed}", direction="maximize", sampler=make_sampler(seed), pruner=pruner
    )
    steps = task.steps(prunes=True)
    out = Trajectory()
    while out.spent < budget:
        trial = study.ask()
        params = suggest_define_by_run(trial, task.space)
        out.trials += 1
        values = task.values(params, steps)
        for (step, cost), accuracy in zip(steps, values, strict=True):
            out.spent += cost
            trial.report(accuracy, step)
            if step < task.last_step and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, accuracy)
            out.found.append((out.spent, accuracy))
    return out


def space_json(task: AnyTask) -> str:
    """The task's space for _mf_anchors.py: lightning_hpo's own JSON form, conditions (``when``) included."""
    return json.dumps(SearchSpace.coerce(task.space).to_json())


def run_anchor(task: AnyTask, seed: int, budget: float, method: str, python: Path) -> Trajectory:
    """DEHB or SMAC in their own venv; this process trains (evaluates) what they ask for, at the task's cost."""
    low, high = task.anchor_fidelities
    command = [str(python), str(HERE / "_mf_anchors.py"), method, str(seed), space_json(task), str(low), str(high)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out = Trajectory()
    try:
        while out.spent < budget:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"{method} stopped early (exit code {process.wait()})")
            job = json.loads(line)
            step, cost = task.anchor_step(job["fidelity"])
            value = next(iter(task.values(job["config"], [(step, cost)])))
            out.spent += cost
            out.trials += 1
            if step == task.last_step:
                out.found.append((out.spent, value))
            process.stdin.write(json.dumps({"value": value, "cost": cost}) + "\n")
            process.stdin.flush()
    finally:
        process.stdin.close()
        process.wait(timeout=60)
    return out


@dataclass(frozen=True)
class Family:
    """A task family: where its data is, its tasks, and how to build one."""

    title: str
    data: Path
    tasks: list[str]
    all_tasks: Callable[[Path], list[str]]
    loader: Callable[[Path], Callable[[str], AnyTask]]
    full: float
    results: str
    methods: tuple[str, ...]


def lcbench_loader(data: Path) -> Callable[[str], Task]:
    surrogate = Surrogate(data)  # one ONNX session for every task
    return lambda name: Task(surrogate, name)


def xgboost_instances(data: Path) -> list[str]:
    space = json.loads((data / "rbv2_xgboost" / "config_space.json").read_text())
    return next(h["choices"] for h in space["hyperparameters"] if h["name"] == "task_id")


FAMILIES = {
    "lcbench": Family(
        "LCBench surrogate",
        DATA,
        DEFAULT_TASKS,
        Surrogate.tasks,
        lcbench_loader,
        EPOCHS,
        "multi_fidelity.json",
        # random_curve is a diagnostic, run on demand
        ("gp_asha", "gp_curve", "gp_none", "gpc_asha", "gpc_curve", "random", "optuna_tpe_hb", "optuna_gp_hb")
        + ("dehb", "smac_hb"),
    ),
    "rbv2_xgboost": Family(
        "YAHPO rbv2_xgboost surrogate, trainsize fidelity",
        data_dir(),
        RBV2_TASKS,
        xgboost_instances,
        lambda data: lambda name: XGBoostTask(XGBoostSurrogate(data, name)),
        1.0,
        "multi_fidelity_rbv2_xgboost.json",
        ("gp_asha", "gp_asha1", "gp_none", "random", "optuna_tpe_hb", "optuna_gp_hb", "dehb", "smac_hb"),
    ),
    # Real training (_mf_training.py): every epoch a real one, so the anchors' from-scratch jobs too.
    "digits": Family(
        "Real training on scikit-learn's digits: an MLP and a CNN, validation accuracy per epoch",
        DATA,
        ["mlp", "cnn"],
        lambda data: ["mlp", "cnn"],
        lambda data: TrainingTask,
        TRAINING_EPOCHS,
        "multi_fidelity_digits.json",
        ("gpc_asha", "gp_asha", "gp_none", "random", "optuna_tpe_hb", "optuna_gp_hb", "dehb", "smac_hb"),
    ),
    # The same instances and decisions, the levels charged as one continued training (XGBoostTask).
    "rbv2_xgboost_continued": Family(
        "YAHPO rbv2_xgboost surrogate, trainsize levels charged as one continued training",
        data_dir(),
        RBV2_TASKS,
        xgboost_instances,
        lambda data: lambda name: XGBoostTask(XGBoostSurrogate(data, name), continued=True),
        1.0,
        "multi_fidelity_rbv2_xgboost_continued.json",
        ("gp_asha", "gp_asha1", "gp_none", "gp_curve", "gpc_curve"),
    ),
}


def curves_gp(seed: int) -> GPSampler:
    """Our GP valuing pruned trials at their curves' predicted ends (``learn_from_curves``, the default)."""
    return GPSampler(seed=seed, device="cpu")


def stored_gp(seed: int) -> GPSampler:
    """Our GP valuing pruned trials at their stored values, their best so far (the default until session 12)."""
    return GPSampler(seed=seed, device="cpu", learn_from_curves=False)


def cost_aware_gp(seed: int) -> GPSampler:
    """Our GP (curves) choosing by expected improvement per expected epoch (see ``_gp_cost``)."""
    sampler = curves_gp(seed)
    sampler._cost_exponent = 1.0  # EI per expected epoch
    return sampler


def running_valued_gp(seed: int) -> GPSampler:
    """The default sampler with RUNNING trials at their curves' predicted ends, not pending points."""
    sampler = curves_gp(seed)
    sampler._value_running = True
    return sampler


def methods(python: Path) -> dict[str, Callable[[AnyTask, int, float], Trajectory]]:
    """Every method by its short name; DEHB and SMAC where their venv is installed."""
    import optuna

    table: dict[str, Callable[[AnyTask, int, float], Trajectory]] = {
        "gp_asha": lambda t, s, b: run_study(t, s, b, stored_gp(s), ASHAPruner()),
        "gp_asha1": lambda t, s, b: run_study(t, s, b, stored_gp(s), ASHAPruner(min_resource=1)),
        "gp_curve": lambda t, s, b: run_study(t, s, b, stored_gp(s), CurvePruner()),
        "gp_none": lambda t, s, b: run_study(t, s, b, stored_gp(s), NopPruner()),
        "gpc_asha": lambda t, s, b: run_study(t, s, b, curves_gp(s), ASHAPruner()),
        "gpc_curve": lambda t, s, b: run_study(t, s, b, curves_gp(s), CurvePruner()),
        "gpc_asha_w4": lambda t, s, b: run_study(t, s, b, curves_gp(s), ASHAPruner(), workers=4),
        "gpcr_asha_w4": lambda t, s, b: run_study(t, s, b, running_valued_gp(s), ASHAPruner(), workers=4),
        "gpcost_asha": lambda t, s, b: run_study(t, s, b, cost_aware_gp(s), ASHAPruner()),
        "random": lambda t, s, b: run_study(t, s, b, RandomSampler(seed=s), NopPruner()),
        "random_curve": lambda t, s, b: run_study(t, s, b, RandomSampler(seed=s), CurvePruner()),
        "optuna_tpe_hb": lambda t, s, b: run_optuna(t, s, b, lambda seed: optuna.samplers.TPESampler(seed=seed)),
        # On a conditional space Optuna's GP samples the children at random (the warning says so, per parameter).
        "optuna_gp_hb": lambda t, s, b: run_optuna(
            t, s, b, lambda seed: optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
        ),
    }
    if python.is_file():
        table["dehb"] = lambda t, s, b: run_anchor(t, s, b, "dehb", python)
        table["smac_hb"] = lambda t, s, b: run_anchor(t, s, b, "smac", python)
    return table


LABELS = {
    "gp_asha": "ours GP + ASHA (default until session 12)",
    "gp_asha1": "ours GP + ASHA(min_resource=1)",
    "gp_curve": "ours GP + CurvePruner",
    "gp_none": "ours GP, no pruning",
    "gpc_asha": "ours GP (curves) + ASHA (default)",
    "gpc_curve": "ours GP (curves) + CurvePruner",
    "gpc_asha_w4": "ours GP (curves) + ASHA, 4 workers",
    "gpcr_asha_w4": "ours GP (curves, running trials valued) + ASHA, 4 workers",
    "gpcost_asha": "ours GP (curves), EI per expected epoch + ASHA",
    "random": "random search",
    "random_curve": "random + CurvePruner",
    "optuna_tpe_hb": "Optuna TPE + Hyperband",
    "optuna_gp_hb": "Optuna GP + Hyperband",
    "dehb": "DEHB",
    "smac_hb": "SMAC3 MultiFidelityFacade",
}


def unit_to_config(unit: np.ndarray) -> dict[str, Any]:
    config = {}
    for u, (name, d) in zip(unit, SPACE.items(), strict=True):
        if d.log:
            value = math.exp(math.log(d.low) + u * (math.log(d.high) - math.log(d.low)))
        else:
            value = d.low + u * (d.high - d.low)
        config[name] = int(round(value)) if isinstance(d, Int) else float(value)
    return config


def final_accuracies(task: Task, configs: list[dict[str, Any]]) -> list[float]:
    """Epoch-52 accuracy of many configurations in one surrogate call."""
    from benchmarks.pruning_lcbench import SURROGATE_INPUTS

    surrogate = task.surrogate
    rows = np.array([[EPOCHS] + [c[n] for n in SURROGATE_INPUTS] for c in configs], dtype=np.float32)
    x_cat = np.full((len(rows), 1), surrogate.task_codes[task.name], dtype=np.int32)
    inputs = {i.name: x for i, x in zip(surrogate.session.get_inputs(), (x_cat, rows), strict=True)}
    return [float(a) for a in surrogate.session.run(None, inputs)[0][:, 1]]


def decision_cost(task: Task, n_trials: int, repeats: int = 30) -> dict[str, float]:
    """Milliseconds per decision of each pruner alone (no storage read), over ``n_trials`` full LCBench curves."""
    from lightning_hpo.trial import Trial

    rng = np.random.default_rng(0)
    configs = [unit_to_config(u) for u in rng.random((n_trials + 1, len(SPACE)))]
    curves = task.surrogate.curves(task.name, configs)
    history = [Trial(i, TrialState.COMPLETE, {}, intermediate_values=dict(c)) for i, c in enumerate(curves[:-1])]
    running = Trial(n_trials, TrialState.RUNNING, {}, intermediate_values=dict(curves[-1][:20]))
    out = {}
    for pruner in (ASHAPruner(), CurvePruner()):
        started = time.perf_counter()
        for _ in range(repeats):
            pruner.prune(running, [*history, running], directions=["max"])
        out[type(pruner).__name__] = 1000 * (time.perf_counter() - started) / repeats
    return out


def wilcoxon(a: list[float], b: list[float]) -> str:
    """Paired two-sided Wilcoxon over task x seed: p-value, and how often a has the lower regret."""
    from scipy.stats import wilcoxon as test

    differences = [x - y for x, y in zip(a, b, strict=True)]
    wins, losses = sum(d < -1e-9 for d in differences), sum(d > 1e-9 for d in differences)
    if wins + losses == 0:
        return "tie (0/0)"
    p = test(differences, zero_method="zsplit").pvalue
    return f"{wins}/{losses}, p={p:.3f}"


def report(results: dict[str, Any], budgets: list[int], corner: dict[str, bool], names: list[str]) -> str:
    regrets = results["regret"]  # regrets[method][budget] -> list over runs (task, seed)
    runs = results["runs"]
    keep = [i for i, (task, _) in enumerate(runs) if not corner[task]]
    tasks = sorted({task for task, _ in runs}, key=[t for t, _ in runs].index)
    seeds = len({seed for _, seed in runs})
    lines = [
        f"{len(tasks)} tasks x {seeds} seeds = {len(runs)} runs. Corner tasks: "
        + (", ".join(t for t in tasks if corner[t]) or "none")
        + f" ({len(runs) - len(keep)} runs).",
        "",
        "### Median regret (accuracy points; mean in brackets), all tasks",
        "",
        "| method | " + " | ".join(f"{b} full trainings" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]

    def cell(values: list[float]) -> str:
        finite = [v if math.isfinite(v) else 100.0 for v in values]
        return f"{statistics.median(finite):.2f} ({statistics.mean(finite):.2f})"

    for name in names:
        lines.append(f"| {LABELS[name]} | " + " | ".join(cell(regrets[name][str(b)]) for b in budgets) + " |")
    if keep and len(keep) < len(runs):
        lines += [
            "",
            "### Median regret (mean in brackets), without the corner tasks",
            "",
            "| method | " + " | ".join(f"{b} full trainings" for b in budgets) + " |",
            "|---|" + "---|" * len(budgets),
        ]
        for name in names:
            row = [cell([regrets[name][str(b)][i] for i in keep]) for b in budgets]
            lines.append(f"| {LABELS[name]} | " + " | ".join(row) + " |")
    for baseline in ("gpc_asha", "gp_asha", "gp_none", "gpc_asha_w4"):
        if baseline not in names:
            continue
        lines += [
            "",
            f"### Paired Wilcoxon against {LABELS[baseline]}: wins/losses (lower regret), two-sided p, all runs",
            "",
            "| method | " + " | ".join(f"{b}" for b in budgets) + " |",
            "|---|" + "---|" * len(budgets),
        ]
        for name in names:
            if name != baseline:
                row = [wilcoxon(regrets[name][str(b)], regrets[baseline][str(b)]) for b in budgets]
                lines.append(f"| {LABELS[name]} | " + " | ".join(row) + " |")
    for b in sorted({budgets[min(1, len(budgets) - 1)], budgets[-1]}):
        lines += [
            "",
            f"### Mean regret per task at {b} full trainings",
            "",
            "| method | " + " | ".join(t + ("*" if corner[t] else "") for t in tasks) + " |",
            "|---|" + "---|" * len(tasks),
        ]
        for name in names:
            row = []
            for t in tasks:
                values = [v for (task, _), v in zip(runs, regrets[name][str(b)], strict=True) if task == t]
                row.append(f"{statistics.mean(v if math.isfinite(v) else 100.0 for v in values):.2f}")
            lines.append(f"| {LABELS[name]} | " + " | ".join(row) + " |")
    lines += [
        "",
        "### Cost",
        "",
        "| method | trials per run | full trainings per run | share of trials trained fully | "
        "seconds per run | pruner ms per decision (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        c = results["cost"][name]
        decisions = c["decision_ms"]
        lines.append(
            f"| {LABELS[name]} | {statistics.mean(c['trials']):.0f} | {statistics.mean(c['full']):.1f} | "
            f"{sum(c['full']) / sum(c['trials']):.2f} | {statistics.mean(c['seconds']):.0f} | "
            + (f"{statistics.median(decisions):.2f}" if any(decisions) else "-")
            + " |"
        )
    return "\n".join(lines)


def shared_runs(first: dict[str, Any], second: dict[str, Any]) -> list[tuple[int, int]]:
    """The runs (task, seed) two result sets both hold, as (index in ``first``, index in ``second``)."""
    at = {tuple(run): j for j, run in enumerate(second["runs"])}
    shared = [(i, at[tuple(run)]) for i, run in enumerate(first["runs"]) if tuple(run) in at]
    if not shared:
        raise SystemExit("the result sets share no run (task, seed)")
    return shared


def reference_offset(first: dict[str, Any], second: dict[str, Any], via: str, i: int, j: int) -> float | None:
    """``first``'s reference minus ``second``'s on run ``i`` of one, ``j`` of the other, read from the
    regrets of ``via``: where its trajectory is the same in both they differ by one constant, the
    difference of the references ("anything a method found above the random one" depends on the
    methods that ran). None where its trajectory differs."""
    offsets = [first["regret"][via][b][i] - second["regret"][via][b][j] for b in second["regret"][via]]
    return offsets[0] if max(offsets) - min(offsets) <= 1e-6 else None


def paired_runs(first: dict[str, Any], second: dict[str, Any], via: str) -> list[tuple[int, int, float, float]]:
    """The runs two result sets both hold, as (index in ``first``, index in ``second``, what to add to
    ``first``'s regrets, what to add to ``second``'s) to put both on the higher of their two
    references, through ``via``, a method both ran with the same code (``reference_offset``)."""
    if via not in first["regret"] or via not in second["regret"]:
        raise SystemExit(f"--via {via}: run it in both result sets, or pass a method they share")
    pairs = []
    for i, j in shared_runs(first, second):
        offset = reference_offset(first, second, via, i, j)
        if offset is None:
            task, seed = first["runs"][i]
            raise SystemExit(
                f"--via {via}: its trajectory on task {task} seed {seed} differs between the "
                "result sets; pass a method both ran with the same code"
            )
        pairs.append((i, j, max(0.0, -offset), max(0.0, offset)))
    return pairs


def join(first: dict[str, Any], second: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The methods of two result sets run on the same tasks and seeds as one result set, on the runs
    both hold, on one reference per run, as if every method had run in one run; and the methods that
    ``second`` changed. The reference is put right through a method both ran with the same code
    (``paired_runs``); a method both ran whose trajectories differ was changed in between, and
    ``second``'s (the later code) is kept."""
    shared = [name for name in first["regret"] if name in second["regret"]]
    runs = shared_runs(first, second)
    unchanged = [
        name for name in shared if all(reference_offset(first, second, name, i, j) is not None for i, j in runs)
    ]
    if not unchanged:
        raise SystemExit(
            f"--beside: no method ran with the same code in both result sets (shared: {shared or 'none'}); "
            "run one beside the new methods to pair the runs through"
        )
    pairs = paired_runs(first, second, unchanged[0])
    joined: dict[str, Any] = {
        "family": first.get("family", "lcbench"),
        "runs": [tuple(first["runs"][i]) for i, _, _, _ in pairs],
        "corner": {**second["corner"], **first["corner"]},
        "regret": {},
        "cost": {},
    }
    if "decision_cost" in first:  # the pruners' own time, measured once
        joined["decision_cost"] = first["decision_cost"]
    changed = [name for name in shared if name not in unchanged]
    sides = {name: 1 if name in changed else 0 for name in first["regret"]}  # in first's order
    sides.update({name: 1 for name in second["regret"] if name not in first["regret"]})
    for name, side in sides.items():
        part = (first, second)[side]
        joined["regret"][name] = {
            b: [values[pair[side]] + pair[2 + side] for pair in pairs] for b, values in part["regret"][name].items()
        }
        cost = part["cost"][name]
        joined["cost"][name] = {
            **{key: [cost[key][pair[side]] for pair in pairs] for key in ("trials", "full", "seconds")},
            "decision_ms": cost["decision_ms"],
        }
    return joined, changed


def compare(before: dict[str, Any], after: dict[str, Any], method: str, via: str) -> str:
    """``method``'s regrets in two result sets (before and after a code change), paired by run and put
    on one reference through ``via``, a method the change leaves alone (``paired_runs``)."""
    if method not in before["regret"] or method not in after["regret"]:
        raise SystemExit(
            f"--method {method}: not in both result sets (they have {sorted(before['regret'])} and "
            f"{sorted(after['regret'])})"
        )
    budgets = list(after["regret"][method])
    pairs = paired_runs(before, after, via)
    rows: dict[str, tuple[list[float], list[float]]] = {b: ([], []) for b in budgets}
    corner = {**before["corner"], **after["corner"]}
    outside_corners: list[bool] = []  # per paired run
    for i, j, add_before, add_after in pairs:
        for b in budgets:
            rows[b][0].append(before["regret"][method][b][i] + add_before)
            rows[b][1].append(after["regret"][method][b][j] + add_after)
        outside_corners.append(not corner[before["runs"][i][0]])

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({statistics.mean(values):.2f})"

    lines = [
        f"{LABELS[method]}, before and after, on {len(outside_corners)} runs in both (reference through {LABELS[via]}); "
        "median regret (mean in brackets), after against before: wins/losses (lower regret), two-sided p",
        "",
        "| runs | budget | before | after | after vs before |",
        "|---|---|---|---|---|",
    ]
    subsets = [("all", [True] * len(outside_corners))]
    if not all(outside_corners):
        subsets.append(("without corner tasks", outside_corners))
    for label, mask in subsets:
        for b in budgets:
            old, new = ([v for v, m in zip(values, mask, strict=True) if m] for values in rows[b])
            lines.append(f"| {label} | {b} | {cell(old)} | {cell(new)} | {wilcoxon(new, old)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="lcbench", help="the task family")
    parser.add_argument("--data", type=Path, default=None, help="the family's data (default: shared/data/yahpo)")
    parser.add_argument(
        "--tasks", nargs="+", default=None, help="OpenML task ids, or 'all' (default: the family's DEFAULT_TASKS)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--budgets", type=int, nargs="+", default=[5, 10, 20, 30], help="in full trainings")
    parser.add_argument("--methods", default=None, help="comma list (default: all that can run here)")
    parser.add_argument("--anchor-python", type=Path, default=ANCHOR_PYTHON, help="python of the DEHB/SMAC venv")
    parser.add_argument("--results", type=Path, default=None, help="default: out/multi_fidelity[_FAMILY].json")
    parser.add_argument("--no-write", action="store_true", help="print only; leave MULTI_FIDELITY.md alone")
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="report the union of earlier --results files; run nothing"
    )
    parser.add_argument(
        "--before", type=Path, nargs="+", help="result files from before a change: compare them with --after"
    )
    parser.add_argument("--after", type=Path, nargs="+", help="result files from after the change; run nothing")
    parser.add_argument("--method", default="gpc_asha", help="with --before/--after: the method that changed")
    parser.add_argument(
        "--beside",
        type=Path,
        nargs="+",
        action="append",
        help="with --merge: result files of more methods on the same runs (with a method both ran with the same "
        "code, to put the references right through); a method changed in between is taken from these; repeatable",
    )
    parser.add_argument("--via", default="gp_asha", help="with --before/--after: a method the change left alone")
    args = parser.parse_args(argv)
    if bool(args.before) != bool(args.after):
        parser.error("--before and --after go together: the result files from before a change and after it")
    if args.before:
        print(compare(merge(args.before), merge(args.after), args.method, args.via))
        return 0
    if args.beside and not args.merge:
        parser.error("--beside goes with --merge: the result files to put the other methods beside")
    if args.merge:
        results = merge(args.merge)
        for files in args.beside or []:
            results, changed = join(results, merge(files))
            for name in changed:
                print(f"{LABELS[name]}: from {', '.join(map(str, files))}, the later code (its trajectories differ)")
        return write_report(results, args, argv)
    family = FAMILIES[args.family]
    data = args.data or family.data
    tasks = family.all_tasks(data) if args.tasks == ["all"] else args.tasks or family.tasks
    make_task = family.loader(data)
    table = methods(args.anchor_python)
    names = args.methods.split(",") if args.methods else [n for n in table if n in family.methods]
    budget = max(args.budgets) * family.full
    results: dict[str, Any] = {
        "family": args.family,
        "runs": [],
        "regret": {n: {str(b): [] for b in args.budgets} for n in names},
        "cost": {n: {"trials": [], "full": [], "seconds": [], "decision_ms": []} for n in names},
    }
    corner: dict[str, bool] = {}
    results["corner"] = corner
    args.results = args.results or HERE / "out" / family.results
    args.results.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for task_id in tasks:
        task = make_task(task_id)
        best_random, corner[task_id] = task.reference()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            trajectories = {}
            for name in names:
                t0 = time.perf_counter()
                trajectories[name] = table[name](task, seed, budget)
                cost = results["cost"][name]
                cost["seconds"].append(time.perf_counter() - t0)
                cost["trials"].append(trajectories[name].trials)
                cost["full"].append(len(trajectories[name].found))
                cost["decision_ms"] += [1000 * s for s in trajectories[name].decision_seconds]
            best = max([best_random] + [v for t in trajectories.values() for _, v in t.found])
            results["runs"].append((task_id, seed))
            for name, trajectory in trajectories.items():
                for b in args.budgets:
                    results["regret"][name][str(b)].append(best - trajectory.best_within(b * family.full))
            summary = ", ".join(f"{n} {best - t.best_within(budget):.2f}" for n, t in trajectories.items())
            print(f"task {task_id} seed {seed} ({time.perf_counter() - started:.0f} s): {summary}", flush=True)
            save(results, args.results)  # after each run: an interrupted run can still be reported (--merge)
    if args.family == "lcbench":
        results["decision_cost"] = {"trials": 150, "ms": decision_cost(make_task(tasks[0]), 150)}
    save(results, args.results)
    return write_report(results, args, argv)


def save(results: dict[str, Any], path: Path) -> None:
    """Write ``results`` as JSON, with a sample of the decision times (every one would weigh megabytes)."""
    thinned = {
        name: {**cost, "decision_ms": sorted(cost["decision_ms"])[:: max(1, len(cost["decision_ms"]) // 2000)]}
        for name, cost in results["cost"].items()
    }
    path.write_text(json.dumps({**results, "cost": thinned}))


def merge(paths: list[Path]) -> dict[str, Any]:
    """The runs of several --results files (run in parallel on disjoint tasks) as one."""
    parts = [json.loads(p.read_text()) for p in paths]
    merged = parts[0]
    for part in parts[1:]:
        merged["runs"] += part["runs"]
        merged["corner"].update(part["corner"])
        for name, budgets in part["regret"].items():
            for b, values in budgets.items():
                merged["regret"][name][b] += values
        for name, cost in part["cost"].items():
            for key, values in cost.items():
                merged["cost"][name][key] += values
    merged["runs"] = [tuple(r) for r in merged["runs"]]
    return merged


def write_report(results: dict[str, Any], args: argparse.Namespace, argv: list[str] | None) -> int:
    names = list(results["regret"])
    budgets = [int(b) for b in next(iter(results["regret"].values()))]
    text = report(results, budgets, results["corner"], names)
    cost = results.get("decision_cost")
    if cost:
        text += (
            f"\n\nA pruner's own time per decision (no storage read), judging a trial at epoch 20 against "
            f"{cost['trials']} full LCBench curves ({cost['trials'] * EPOCHS} reports): "
            + ", ".join(f"{name} {ms:.1f} ms" for name, ms in cost["ms"].items())
            + "; an epoch of a real model takes seconds."
        )
    print(text)
    if not args.no_write:
        family = results.get("family", "lcbench")  # results saved before rbv2_xgboost came are LCBench's
        command = "python benchmarks/multi_fidelity.py " + " ".join(argv if argv is not None else sys.argv[1:])
        path = write_section(
            family,
            f"## {FAMILIES[family].title}\n\n`{command.strip()}`\n\n{text}",
            HERE / "MULTI_FIDELITY.md",
            title="# Multi-fidelity\n",
        )
        print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
