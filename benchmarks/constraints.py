"""Failures and outcome constraints: lightning_hpo's GPSampler against Optuna's, and against itself before.

Every method runs the same problems, budgets and seeds, in one process, one run at a time:

* ``ours``: lightning_hpo's ``GPSampler``: a GP of whether a trial failed by its own fault weights
  its acquisition, under a chance constraint (a candidate more likely to fail than not is ruled
  out), failed points left out of the objective's GP, and a GP per outcome constraint weights its
  acquisition too (``samplers/_gp_feasibility.py``);
* other failure models of the same sampler (:data:`FAILURE_MODELS`): ``ours_worst_value`` (the
  sampler's rule before: failed points enter the objective's GP at the worst observed value, no
  failure GP), ``failure_gp`` (the failure GP without the chance constraint),
  ``failure_gp_chance80`` (the chance constraint at 0.8), ``failure_gp_nearest_chance`` (failed
  points valued as the nearest observed configuration, and the chance constraint),
  ``failure_gp_nearest``, ``failure_gp_worst``, ``failure_gp_p75`` and ``failure_gp_median`` (the
  failure GP without the chance constraint, and failed points valued as the nearest observed
  configuration, or at the worst value, the 75th percentile counted from the best, the median),
  ``median_value`` (the median, no failure GP), ``posterior_value`` and ``failure_gp_posterior``
  (failed points valued two posterior standard deviations worse than the posterior mean of a GP of
  the observed values, no better than the best observed value, without and with the failure GP),
  ``posterior_median`` (the same, no better than the median). Failures that broke a constraint
  early enter the objective's GP at the worst value in every model;
* ``ours_before``: the same sampler seeing what it saw before this change: FAIL trials and the
  trials' constraint values removed from its history (it optimizes the objective alone);
* ``ours_impute``: the worst-value rule applied outside the sampler, as it was first measured
  (failed trials then also count towards the start-up);
* ``optuna_gp``: Optuna's ``GPSampler`` with ``constraints_func`` (it ignores failed trials);
* ``optuna_tpe``: Optuna's ``TPESampler`` with ``constraints_func`` (likewise).

Problems, each minimized, with a known (constrained) optimum:

* ``hartmann6_oom`` (issue 17, (a)): Hartmann6 on the unit cube, where a trial raises
  ``torch.OutOfMemoryError`` when ``x3 + x6 > 1.2``: a third of the cube, bordering the optimum
  (``x3 + x6 = 1.134`` there), as a batch size times a width does in a real study. Optimum -3.32237.
* ``gardner`` (issue 17, (c)): Gardner et al. (2014), "Bayesian optimization with inequality
  constraints", section 5.1: ``cos(2x) cos(y) + sin(x)`` on ``[0, 6]^2`` subject to
  ``cos(x) cos(y) - sin(x) sin(y) <= 0.5``; its constrained optimum is found on a dense grid here.
* ``gramacy``: Gramacy et al. (2016), the toy problem: ``x1 + x2`` on ``[0, 1]^2`` subject to
  ``1.5 - x1 - 2 x2 - 0.5 sin(2 pi (x1^2 - 2 x2)) <= 0`` and ``x1^2 + x2^2 <= 1.5``; optimum 0.5998.
* ``digits_oom`` (issue 17, (b)): the MLP of ``examples/digits.py`` (same layers, same 70/15/15
  split) trained for a few epochs on scikit-learn's digits, its best validation loss minimized over
  learning rate, width, batch size and dropout; a configuration whose width times batch size exceeds
  a budget raises ``torch.OutOfMemoryError`` before training, as activations over a GPU's memory would.
* ``digits_n_params`` (issue 17, (d)): the same MLP subject to ``n_params <= 50,000`` (the width
  binds at about 190 units), the parameter count given with the value.

The two digits problems train with a plain torch loop (the example's model and optimizer, one
thread, the same seed for every configuration, so a configuration's value is deterministic):
Lightning's fixed cost per trial would be most of the run. Their optimum is unknown: regret is
taken against the best feasible value any method found on the problem in the same run.

Figures per problem and method, mean over seeds: the constrained regret at the end (best feasible
value minus the optimum; a run without a feasible trial counts the worst feasible value seen by
any run), and the share of trials after the start-up phase (trial 10 on) that failed or broke a
constraint: the trials spent where the answer cannot be. Every method has its default start-up
(ours: 10 Sobol trials in 6 dimensions and 6 in 2; Optuna's GP: 10 random; TPE: 10).

Run from the repository root (needs the ``benchmarks`` extra for Optuna)::

    nice -n 10 python -m benchmarks.constraints --seeds 2 --out benchmarks/CONSTRAINTS_RUN.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from lightning_hpo import Float, GPSampler, Study, TrialState
from lightning_hpo.trial import CONSTRAINT_VIOLATIONS, Trial

#: Trials from this number on count as after the start-up phase, for every method.
AFTER_STARTUP = 10


@dataclass(frozen=True)
class Problem:
    """``objective(params) -> (value, metrics)`` to minimize, subject to ``constraints`` on the metrics."""

    name: str
    space: dict[str, Float]
    objective: Callable[[Mapping[str, float]], tuple[float, dict[str, float]]]
    constraints: dict[str, tuple[str, float]]
    #: ``None``: unknown, the best feasible value found in the run stands for it.
    optimum: float | None
    n_trials: int


def _hartmann6_oom() -> Problem:
    from botorch.test_functions import Hartmann

    hartmann = Hartmann(dim=6)

    def objective(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        x = [params[f"x{i}"] for i in range(6)]
        if x[2] + x[5] > 1.2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated: x3 + x6 > 1.2)")
        return float(hartmann(torch.tensor([x], dtype=torch.float64))), {}

    space = {f"x{i}": Float(0.0, 1.0) for i in range(6)}
    return Problem("hartmann6_oom", space, objective, {}, -3.32237, 30)


def _gardner_c(x: Any, y: Any) -> Any:
    return np.cos(x) * np.cos(y) - np.sin(x) * np.sin(y)


def _gardner_f(x: Any, y: Any) -> Any:
    return np.cos(2 * x) * np.cos(y) + np.sin(x)


def _gardner() -> Problem:
    grid = np.linspace(0.0, 6.0, 3001)
    X, Y = np.meshgrid(grid, grid)
    optimum = float(np.min(np.where(_gardner_c(X, Y) <= 0.5, _gardner_f(X, Y), np.inf)))

    def objective(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        x, y = params["x"], params["y"]
        return float(_gardner_f(x, y)), {"c": float(_gardner_c(x, y))}

    return Problem("gardner", {"x": Float(0.0, 6.0), "y": Float(0.0, 6.0)}, objective, {"c": ("<=", 0.5)}, optimum, 20)


def _gramacy() -> Problem:
    def objective(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        x1, x2 = params["x1"], params["x2"]
        c1 = 1.5 - x1 - 2 * x2 - 0.5 * math.sin(2 * math.pi * (x1**2 - 2 * x2))
        return x1 + x2, {"c1": c1, "c2": x1**2 + x2**2}

    space = {"x1": Float(0.0, 1.0), "x2": Float(0.0, 1.0)}
    return Problem("gramacy", space, objective, {"c1": ("<=", 0.0), "c2": ("<=", 1.5)}, 0.5998, 20)


#: Epochs per digits configuration: enough for losses to separate configurations, ~1 s on one core.
DIGITS_EPOCHS = 4
#: Width x batch size over this raises an out-of-memory error (``digits_oom``).
DIGITS_ACTIVATION_BUDGET = 8192
#: The parameter budget of ``digits_n_params``.
DIGITS_MAX_PARAMS = 50_000
DIGITS_SPACE = {
    "lr": Float(1e-4, 1e-1, log=True),
    "hidden": Float(16.0, 512.0, log=True),
    "batch_size": Float(16.0, 512.0, log=True),
    "dropout": Float(0.0, 0.5),
}


def _digits_problem(name: str, constraints: dict[str, tuple[str, float]], oom_budget: float | None) -> Problem:
    from benchmarks.tasks.digits_torch import best_validation_loss, mlp, n_params

    def objective(params: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        hidden, batch_size = round(params["hidden"]), round(params["batch_size"])
        if oom_budget is not None and hidden * batch_size > oom_budget:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated: width {hidden} x batch {batch_size})")
        torch.manual_seed(0)
        model = mlp([hidden, hidden], params["dropout"])  # examples/digits.py's two layers

        def adamw(parameters: Any) -> torch.optim.Optimizer:
            return torch.optim.AdamW(parameters, lr=params["lr"], weight_decay=1e-5)

        value = best_validation_loss(model, adamw, batch_size=batch_size, epochs=DIGITS_EPOCHS)
        return value, {"n_params": float(n_params(model))}

    return Problem(name, DIGITS_SPACE, objective, constraints, None, 25)


def _digits_oom() -> Problem:
    return _digits_problem("digits_oom", {}, DIGITS_ACTIVATION_BUDGET)


def _digits_n_params() -> Problem:
    return _digits_problem("digits_n_params", {"n_params": ("<=", DIGITS_MAX_PARAMS)}, None)


PROBLEMS = {
    "hartmann6_oom": _hartmann6_oom,
    "gardner": _gardner,
    "gramacy": _gramacy,
    "digits_oom": _digits_oom,
    "digits_n_params": _digits_n_params,
}


class GPBeforeFailureAwareness(GPSampler):
    """The GPSampler as it was before failures and constraints informed it: it sees neither."""

    def sample(self, space: Any, trials: Sequence[Trial], *, number: int, directions: Sequence[str]) -> dict[str, Any]:
        history = [replace(t, attrs={}) for t in trials if t.state is not TrialState.FAIL]
        return super().sample(space, history, number=number, directions=directions)


class GPWorstValueForFailures(GPSampler):
    """Failed trials as COMPLETE ones with the worst observed value (as SMAC imputes a failed run's
    cost), given to the sampler: how the rule was first measured, before the sampler did it itself."""

    def sample(self, space: Any, trials: Sequence[Trial], *, number: int, directions: Sequence[str]) -> dict[str, Any]:
        values = [t.values[0] for t in trials if t.state is TrialState.COMPLETE and t.values]
        worst = (max(values) if directions[0] == "min" else min(values)) if values else None
        history = [
            replace(t, state=TrialState.COMPLETE, values=(worst,), attrs={})
            if t.state is TrialState.FAIL and worst is not None
            else t
            for t in trials
            if t.state is not TrialState.FAIL or worst is not None
        ]
        return super().sample(space, history, number=number, directions=directions)


def _failure_model(imputation: str | None, weighting: bool, min_probability: float | None) -> type[GPSampler]:
    """The GPSampler with another failure model: failed configurations valued by ``imputation`` (a
    rule of ``_gp_feasibility.IMPUTATIONS``; ``None``: left out of the objective's GP), and a GP of
    the failures weighting the acquisition or not, with ``min_probability`` as a chance constraint."""
    attributes = {
        "_failure_imputation": imputation,
        "_failure_weighting": weighting,
        "_failure_min_probability": min_probability,
    }
    return type(f"GPSampler_{imputation}_{weighting}", (GPSampler,), attributes)


#: Failure models measured against the sampler's (``benchmarks/CONSTRAINTS.md``).
FAILURE_MODELS = {
    "ours_worst_value": _failure_model("worst", False, None),
    "failure_gp": _failure_model(None, True, None),
    "failure_gp_nearest": _failure_model("nearest", True, None),
    "failure_gp_worst": _failure_model("worst", True, None),
    "failure_gp_p75": _failure_model("p75", True, None),
    "failure_gp_median": _failure_model("median", True, None),
    "median_value": _failure_model("median", False, None),
    "posterior_value": _failure_model("posterior", False, None),
    "failure_gp_posterior": _failure_model("posterior", True, None),
    "posterior_median": _failure_model("posterior_median", False, None),
    "failure_gp_chance80": _failure_model(None, True, 0.8),
    "failure_gp_nearest_chance": _failure_model("nearest", True, 0.5),
}


@dataclass
class Run:
    """What one run gives: per trial, its value (None when it failed) and whether it was feasible."""

    values: list[float | None]
    feasible: list[bool]
    seconds: float

    def best(self) -> float | None:
        found = [v for v, ok in zip(self.values, self.feasible) if v is not None and ok]
        return min(found) if found else None

    def wasted_share(self) -> float:
        """Trials after the start-up that failed or broke a constraint."""
        late = [v is None or not ok for v, ok in zip(self.values[AFTER_STARTUP:], self.feasible[AFTER_STARTUP:])]
        return sum(late) / max(len(late), 1)


def _satisfied(problem: Problem, metrics: Mapping[str, float]) -> bool:
    return all(
        (metrics[n] <= bound) if op == "<=" else (metrics[n] >= bound) for n, (op, bound) in problem.constraints.items()
    )


def run_ours(problem: Problem, seed: int, before: bool = False, impute: bool = False, variant: str = "") -> Run:
    sampler_cls = GPBeforeFailureAwareness if before else GPWorstValueForFailures if impute else GPSampler
    sampler_cls = FAILURE_MODELS.get(variant, sampler_cls)
    sampler = sampler_cls(seed=seed)
    study = Study(
        "bench", search_space=problem.space, storage=":memory:", sampler=sampler, constraints=problem.constraints
    )
    started = time.perf_counter()
    # n_trials trials, failed ones included, as for Optuna below (Study.optimize's n_trials counts
    # finished trials: a sampler blind to failures may propose a failing point forever).
    for _ in range(problem.n_trials):
        trial = study.ask()
        try:
            value, metrics = problem.objective(dict(trial.params))
        except torch.OutOfMemoryError as error:
            study.tell(trial, state=TrialState.FAIL, error=str(error), fail_kind="oom")
            continue
        study.tell(trial, value, metrics=metrics)
    seconds = time.perf_counter() - started
    trials = study.trials
    values = [t.value if t.state is TrialState.COMPLETE else None for t in trials]
    feasible = [all(v <= 0 for v in t.attrs.get(CONSTRAINT_VIOLATIONS, {}).values()) for t in trials]
    return Run(values, feasible, seconds)


def run_optuna(problem: Problem, seed: int, kind: str) -> Run:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = sorted(problem.constraints)

    def constraints_func(trial: Any) -> list[float]:
        return [float(v) for v in trial.user_attrs.get("violations", [0.0] * len(names))]

    kwargs: dict[str, Any] = {"seed": seed, "constraints_func": constraints_func if names else None}
    sampler = optuna.samplers.GPSampler(**kwargs) if kind == "gp" else optuna.samplers.TPESampler(**kwargs)
    study = optuna.create_study(sampler=sampler)
    values: list[float | None] = []
    feasible: list[bool] = []
    started = time.perf_counter()
    while len(values) < problem.n_trials:
        trial = study.ask()
        params = {n: trial.suggest_float(n, d.low, d.high, log=d.log) for n, d in problem.space.items()}
        try:
            value, metrics = problem.objective(params)
        except torch.OutOfMemoryError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            values.append(None)
            feasible.append(True)
            continue
        violations = [
            metrics[n] - bound if op == "<=" else bound - metrics[n]
            for n, (op, bound) in sorted(problem.constraints.items())
        ]
        trial.set_user_attr("violations", violations)
        study.tell(trial, value)
        values.append(value)
        feasible.append(_satisfied(problem, metrics))
    return Run(values, feasible, time.perf_counter() - started)


METHODS: dict[str, Callable[[Problem, int], Run]] = {
    "ours": lambda p, s: run_ours(p, s),
    "ours_before": lambda p, s: run_ours(p, s, before=True),
    "ours_impute": lambda p, s: run_ours(p, s, impute=True),
    **{name: (lambda p, s, name=name: run_ours(p, s, variant=name)) for name in FAILURE_MODELS},
    "optuna_gp": lambda p, s: run_optuna(p, s, "gp"),
    "optuna_tpe": lambda p, s: run_optuna(p, s, "tpe"),
}


def _timed(problem: Problem, method: str, seed: int) -> Run:
    run = METHODS[method](problem, seed)
    line = f"  {problem.name} {method} seed {seed}: best {run.best()}, wasted {run.wasted_share():.3f}, {run.seconds:.0f} s"
    print(line, file=sys.stderr, flush=True)
    return run


def _regrets(problem: Problem, runs: Mapping[str, Sequence[Run]]) -> dict[str, list[float]]:
    """Per method, per seed: the best feasible value minus the optimum (the best feasible value of
    the whole run when the optimum is unknown); a run with no feasible trial counts the worst
    feasible value of any run."""
    feasible = [v for rs in runs.values() for r in rs for v, ok in zip(r.values, r.feasible) if v is not None and ok]
    optimum = problem.optimum if problem.optimum is not None else min(feasible)
    # Clipped at 0: the literature's optima are rounded (Gramacy's 0.5998).
    return {
        method: [max((r.best() if r.best() is not None else max(feasible)) - optimum, 0.0) for r in method_runs]
        for method, method_runs in runs.items()
    }


def _against_ours(regrets: Mapping[str, Sequence[float]], method: str) -> str:
    """Seeds where ours reached a lower / higher regret than ``method``, and the paired test's p."""
    if method == "ours" or "ours" not in regrets:
        return ""
    from benchmarks.aggregate import _wilcoxon

    ours, other = regrets["ours"], regrets[method]
    better = sum(a < b for a, b in zip(ours, other))
    worse = sum(a > b for a, b in zip(ours, other))
    return f"{better} / {worse}, p = {_wilcoxon(ours, other):.2g}"


#: Where ``--digest`` looks: two tasks of the main suite (no failures, no constraints) and a
#: constrained problem without failures, whose suggestions a change to the failure model must not move.
DIGEST_TASKS = ("branin", "mixed")
DIGEST_PROBLEMS = ("gardner",)
DIGEST_TRIALS = 20


def digest() -> dict[str, str]:
    """Per task, the SHA-256 of every trial's parameters and value in a seeded 20-trial GPSampler run."""
    import hashlib

    from benchmarks.tasks import TASK_BUILDERS

    studies = {}
    for name in DIGEST_TASKS:
        task = TASK_BUILDERS[name]()
        study = Study(name, search_space=task.space, storage=":memory:", sampler=GPSampler(seed=0))
        objective = task.make_objective(0)
        study.optimize(lambda params, objective=objective: objective(params).observed, n_trials=DIGEST_TRIALS)
        studies[name] = study
    for name in DIGEST_PROBLEMS:
        problem = PROBLEMS[name]()
        sampler = GPSampler(seed=0)
        study = Study(
            name, search_space=problem.space, storage=":memory:", sampler=sampler, constraints=problem.constraints
        )
        study.optimize(problem.objective, n_trials=DIGEST_TRIALS)
        studies[name] = study
    return {
        name: hashlib.sha256(repr([(t.params, t.values) for t in study.trials]).encode()).hexdigest()
        for name, study in studies.items()
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--out", default=None, help="also write the markdown table to this file")
    parser.add_argument(
        "--digest", action="store_true", help="print the digest of seeded runs without failures (see digest()) and stop"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.digest:
        for name, value in digest().items():
            print(f"{name}: {value}")
        return
    lines = [
        "| problem | method | seeds | regret: mean ± sd | median | ours better / worse, Wilcoxon p"
        " | failed or infeasible after start-up | s per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for problem_name in args.problems:
        problem = PROBLEMS[problem_name]()
        runs = {m: [_timed(problem, m, seed) for seed in seeds] for m in args.methods}
        regrets = _regrets(problem, runs)
        for method, method_runs in runs.items():
            wasted = [r.wasted_share() for r in method_runs]
            line = (
                f"| {problem.name} | {method} | {len(method_runs)} | {np.mean(regrets[method]):.4f} ± "
                f"{np.std(regrets[method]):.4f} | {np.median(regrets[method]):.4f} | "
                f"{_against_ours(regrets, method)} | {100 * np.mean(wasted):.0f}% | "
                f"{np.mean([r.seconds for r in method_runs]):.1f} |"
            )
            lines.append(line)
            print(line, flush=True)
        print(f"  {problem.name} regrets per seed: {regrets}", file=sys.stderr, flush=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as out:
            out.write(table + "\n")


if __name__ == "__main__":
    main()
