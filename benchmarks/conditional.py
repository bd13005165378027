"""Conditional search spaces: lightning_hpo's GP on the tree (inactive columns pinned) against the
same GP on the flattened space, Optuna TPE (multivariate, group), Hyperopt TPE (native ``hp.choice``
trees) and random search. Writes ``benchmarks/CONDITIONAL.md``.

Tasks:

* ``jenatton``: the tree-structured function of Jenatton et al., "Bayesian optimization with
  tree-structured dependencies" (ICML 2017): a root choice, two second-level choices, four leaf
  parameters and two shared parameters, each active on one branch; minimum 0.1.
* ``yahpo_xgboost``: YAHPO Gym's rbv2_xgboost surrogate (``benchmarks/tasks/yahpo.py``) with its
  real ``booster``-conditional structure: ``eta``, ``gamma``, ``max_depth``, ``min_child_weight``
  and the two ``colsample`` rates only for gbtree and dart, ``rate_drop`` and ``skip_drop`` only
  for dart. Regret against the dense-search reference of ``RESULTS.md``, or the best found.
* ``digits_mlp``: the digits MLP (``benchmarks/tasks/digits_torch.py``: the example's data split, a
  plain torch loop, 4 epochs, batch 64) with optimizer-specific arguments (SGD's momentum, Adam's
  beta1) and per-layer widths (1 to 3 layers: the width of layer k only when there are k layers),
  its best validation loss minimized. No optimum is known: regret against the best any run found.

Methods: ``gp_tree`` (lightning_hpo's GPSampler on the conditional space, inactive Float/Int
columns pinned to the cube's centre), ``gp_tree_far`` (the same, pinned to -1: outside the cube,
the alternative the choice was measured against), ``gp_flat`` (the GP on the space without
``when``, as before conditional parameters existed: every parameter drawn, the objective ignores
the inactive ones), ``optuna_tpe`` (``TPESampler(multivariate=True, group=True)``, define-by-run),
``hyperopt_tpe`` (``tpe.suggest`` on an ``hp.choice`` tree, children labelled per branch) and
``random`` (lightning_hpo's RandomSampler on the conditional space).

Run (a few minutes on a shared machine; small on purpose):
    nice -n 10 python -m benchmarks.conditional --seeds 5 --budget 40
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.methods import (
    METHODS as BENCH_METHODS,
)
from benchmarks.methods import (
    OURS,
    Trace,
    _gp_sampler,
    _into_domain,
    _lightning_hpo_runner,
    _random_sampler,
    hyperopt_space,
    run_hyperopt,
    suggest_define_by_run,
)
from benchmarks.runner import ResultCache
from benchmarks.tasks import Evaluation, Objective, Task
from lightning_hpo import SearchSpace
from lightning_hpo.space import Categorical, Float, Int

#: Dense-search reference of yahpo_xgboost (benchmarks/RESULTS.md, "dense search, or best found").
YAHPO_REFERENCE = 0.00531
RESULTS = Path(__file__).with_name("CONDITIONAL.md")


# -- tasks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionalTask:
    task: Task  # its space is the conditional one
    optimum: float | None  # exact minimum, or None: the reference, or the best found
    reference: float | None = None  # a known upper bound of the minimum (a dense search)

    @property
    def flat(self) -> Task:
        return replace(self.task, space={name: domain.with_when(None) for name, domain in self.task.space.items()})


def jenatton() -> ConditionalTask:
    """Jenatton et al. (2017), Figure 1: f = x_leaf^2 + offset + r, with r = r8 on the x1=0 side, r9 on the other."""
    space = {
        "x1": Categorical([0, 1]),
        "x2": Categorical([0, 1], when={"x1": 0}),
        "x3": Categorical([0, 1], when={"x1": 1}),
        "x4": Float(-1.0, 1.0, when={"x2": 0}),
        "x5": Float(-1.0, 1.0, when={"x2": 1}),
        "x6": Float(-1.0, 1.0, when={"x3": 0}),
        "x7": Float(-1.0, 1.0, when={"x3": 1}),
        "r8": Float(0.0, 1.0, when={"x1": 0}),
        "r9": Float(0.0, 1.0, when={"x1": 1}),
    }

    def value(p: Mapping[str, Any]) -> float:
        if p["x1"] == 0:
            leaf = p["x4"] ** 2 + 0.1 if p["x2"] == 0 else p["x5"] ** 2 + 0.2
            return leaf + p["r8"]
        leaf = p["x6"] ** 2 + 0.3 if p["x3"] == 0 else p["x7"] ** 2 + 0.4
        return leaf + p["r9"]

    def make_objective(seed: int) -> Objective:
        def objective(params: Mapping[str, Any]) -> Evaluation:
            v = value(params)
            return Evaluation(v, v)

        return objective

    task = Task("jenatton", "Jenatton et al. 2017 tree: 2 levels of choices, 4 leaves, 2 shared", space, make_objective)
    return ConditionalTask(task, optimum=0.1)


def yahpo_xgboost() -> ConditionalTask:
    from benchmarks.tasks.yahpo import surrogate, yahpo_xgboost

    return ConditionalTask(
        replace(yahpo_xgboost(), space=surrogate().tree_space), optimum=None, reference=YAHPO_REFERENCE
    )


#: Epochs and batch size of a digits_mlp configuration (about a second of one core).
DIGITS_EPOCHS, DIGITS_BATCH = 4, 64


def digits_mlp() -> ConditionalTask:
    """The digits MLP with an optimizer's own arguments and a width per layer, each only where it applies."""
    width = {"low": 16, "high": 256, "log": True}
    space = {
        "optimizer": Categorical(["adam", "sgd"]),
        "lr": Float(1e-4, 1e-1, log=True),
        "momentum": Float(0.0, 0.99, when={"optimizer": "sgd"}),
        "beta1": Float(0.5, 0.99, when={"optimizer": "adam"}),
        "layers": Categorical([1, 2, 3]),
        "width_1": Int(**width),
        "width_2": Int(**width, when={"layers": [2, 3]}),
        "width_3": Int(**width, when={"layers": [3]}),
        "dropout": Float(0.0, 0.5),
    }

    def value(p: Mapping[str, Any]) -> float:
        import torch

        from benchmarks.tasks.digits_torch import best_validation_loss, mlp

        torch.manual_seed(0)
        model = mlp([p[f"width_{k + 1}"] for k in range(p["layers"])], p["dropout"])

        def optimizer(parameters: Any) -> torch.optim.Optimizer:
            if p["optimizer"] == "sgd":
                return torch.optim.SGD(parameters, lr=p["lr"], momentum=p["momentum"])
            return torch.optim.Adam(parameters, lr=p["lr"], betas=(p["beta1"], 0.999))

        return best_validation_loss(model, optimizer, batch_size=DIGITS_BATCH, epochs=DIGITS_EPOCHS)

    def make_objective(seed: int) -> Objective:
        def objective(params: Mapping[str, Any]) -> Evaluation:
            v = value(params)
            return Evaluation(v, v)

        return objective

    summary = "the digits MLP, 1-3 layers with a width each, SGD (momentum) or Adam (beta1), best validation loss"
    return ConditionalTask(Task("digits_mlp", summary, space, make_objective), optimum=None)


TASKS: dict[str, Callable[[], ConditionalTask]] = {
    "jenatton": jenatton,
    "yahpo_xgboost": yahpo_xgboost,
    "digits_mlp": digits_mlp,
}


# -- methods --------------------------------------------------------------------------------------

Runner = Callable[[ConditionalTask, int, int], Trace]


def _on_tree(run: Callable[[Task, Objective, int, int], Trace]) -> Runner:
    return lambda c, budget, seed: run(c.task, c.task.make_objective(seed), budget, seed)


def _on_flat(run: Callable[[Task, Objective, int, int], Trace]) -> Runner:
    return lambda c, budget, seed: run(c.flat, c.task.make_objective(seed), budget, seed)


@contextlib.contextmanager
def _inactive_position(position: float) -> Iterator[None]:
    from lightning_hpo.samplers import _gp_space

    before = _gp_space.INACTIVE_POSITION
    _gp_space.INACTIVE_POSITION = position
    try:
        yield
    finally:
        _gp_space.INACTIVE_POSITION = before


def _gp_pinned_far(c: ConditionalTask, budget: int, seed: int) -> Trace:
    with _inactive_position(-1.0), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BoTorch notes inputs outside the unit cube
        return _on_tree(_lightning_hpo_runner(_gp_sampler))(c, budget, seed)


def _optuna_tpe(c: ConditionalTask, budget: int, seed: int) -> Trace:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace(c.task.space)
    objective = c.task.make_objective(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed))
        trace = Trace()
        for _ in range(budget):
            start = time.perf_counter()
            trial = study.ask()
            params = suggest_define_by_run(trial, space)
            suggest_seconds = time.perf_counter() - start
            study.tell(trial, trace.evaluate(objective, params, suggest_seconds))
    return trace


def hyperopt_tree(space: SearchSpace) -> dict[str, Any]:
    """The space as Hyperopt users write it: each categorical parent an ``hp.choice`` over one
    dict per choice, holding the choice and the children it activates; a child active under several
    branches gets one label per branch (``eta|booster=dart``). Children with one Categorical parent only."""
    from hyperopt import hp

    children: dict[str, list[str]] = {}
    for name, domain in space.items():
        if len(domain.when) > 1 or any(not isinstance(space[p], Categorical) for p in domain.when):
            raise NotImplementedError(f"{name!r}: only one Categorical parent per child is built as a tree here.")
        for parent in domain.when:
            children.setdefault(parent, []).append(name)

    def expression(name: str, suffix: str) -> Any:
        domain = space[name]
        if name not in children:
            return hyperopt_space({name + suffix: domain.with_when(None)})[name + suffix]
        branches = []
        for choice in domain.choices:
            branch_suffix = f"{suffix}|{name}={choice}"
            active = [child for child in children[name] if choice in space[child].when[name]]
            branches.append({name: choice, **{child: expression(child, branch_suffix) for child in active}})
        return hp.choice(name + suffix, branches)

    return {name: expression(name, "") for name, domain in space.items() if not domain.when}


def _flatten(tree: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in tree.items():
        if isinstance(value, Mapping):
            params.update(_flatten(value))
        else:
            params[name] = value
    return params


def _hyperopt_tpe(c: ConditionalTask, budget: int, seed: int) -> Trace:
    space = SearchSpace(c.task.space)

    def to_params(tree: dict[str, Any]) -> dict[str, Any]:
        params = _flatten(tree)
        params = _into_domain({n: space[n] for n in params}, params)
        space.check_params(params)  # the tree gives exactly the active parameters
        return params

    return run_hyperopt(hyperopt_tree(space), to_params, c.task.make_objective(seed), "tpe", budget, seed)


METHODS: dict[str, tuple[str, Runner]] = {
    "gp_tree": ("lightning_hpo GP, conditional (pinned at 0.5)", _on_tree(_lightning_hpo_runner(_gp_sampler))),
    "gp_tree_far": ("lightning_hpo GP, conditional (pinned at -1)", _gp_pinned_far),
    "gp_flat": ("lightning_hpo GP, flattened (before)", _on_flat(_lightning_hpo_runner(_gp_sampler))),
    "optuna_tpe": ("Optuna TPE (multivariate, group)", _optuna_tpe),
    "hyperopt_tpe": ("Hyperopt TPE (hp.choice tree)", _hyperopt_tpe),
    "random": ("random (lightning_hpo)", _on_tree(_lightning_hpo_runner(_random_sampler))),
}


# -- the run and the report -----------------------------------------------------------------------


def _best_so_far(values: list[float]) -> list[float]:
    return list(np.minimum.accumulate(values))


def _records(
    cache: ResultCache, code: str, conditional: ConditionalTask, method: str, seeds: range, budget: int
) -> list[dict[str, Any]]:
    """One run record per seed: from the cache when it was made by the same code, else run now."""
    name = conditional.task.name
    records = []
    for seed in seeds:
        record = cache.load("conditional", name, method, seed)
        if record is None or record["fingerprint"] != code or record["budget"] != budget:
            started = time.perf_counter()
            trace = METHODS[method][1](conditional, budget, seed)
            record = {"task": name, "method": method, "seed": seed, "budget": budget, "fingerprint": code}
            record.update(true=trace.true, suggest_seconds=trace.suggest_seconds)
            cache.save("conditional", record)
            took = time.perf_counter() - started
            print(
                f"{name} {method} seed {seed}: best {min(trace.true):.4g} ({took:.0f} s)", file=sys.stderr, flush=True
            )
        records.append(record)
    return records


def _section(
    conditional: ConditionalTask, records: Mapping[str, list[dict[str, Any]]], report_at: list[int]
) -> list[str]:
    """The task's table: median regret [quartiles] of each method at each of ``report_at`` trials."""
    curves = {m: [_best_so_far(r["true"]) for r in runs] for m, runs in records.items()}
    optimum = conditional.optimum
    if optimum is None:
        best_found = min(min(c) for runs in curves.values() for c in runs)
        optimum = best_found if conditional.reference is None else min(conditional.reference, best_found)
    regrets = {m: [[c[t - 1] - optimum for c in runs] for t in report_at] for m, runs in curves.items()}
    medians = {m: [statistics.median(at) for at in by_t] for m, by_t in regrets.items()}
    lines = [f"## {conditional.task.name}: {conditional.task.summary}", ""]
    lines += ["| method | " + " | ".join(f"regret @ {t}" for t in report_at) + " | seconds / suggestion |"]
    lines += ["|---" * (len(report_at) + 2) + "|"]
    for method, by_t in regrets.items():
        cells = []
        for k, at in enumerate(by_t):
            q25, q75 = np.percentile(at, [25, 75])
            text = f"{medians[method][k]:.3g} [{q25:.3g}, {q75:.3g}]"
            cells.append(f"**{text}**" if medians[method][k] == min(v[k] for v in medians.values()) else text)
        seconds = statistics.mean(s for r in records[method] for s in r["suggest_seconds"])
        lines.append(f"| {METHODS[method][0]} | " + " | ".join(cells) + f" | {seconds:.3f} |")
    return [*lines, "", _summary(medians, report_at[-1]), ""]


def _summary(medians: Mapping[str, list[float]], budget: int) -> str:
    """One line: the best median regret at ``budget``, and the ratios that the GP's design rests on."""
    final = {method: values[-1] for method, values in medians.items()}
    best = min(final, key=final.__getitem__)
    parts = [f"At {budget} trials the best median regret is {METHODS[best][0]}'s ({final[best]:.3g})."]
    for other, what in (
        ("gp_flat", "the flattened GP"),
        ("gp_tree_far", "pinning at -1"),
        ("optuna_tpe", "Optuna TPE"),
    ):
        if "gp_tree" in final and other in final and final[other] > 0:
            parts.append(f"Conditional GP / {what}: {final['gp_tree'] / final[other]:.2g}.")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--cache", type=Path, default=Path(__file__).with_name("out"))
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    report_at = sorted({args.budget // 2, args.budget})
    # Runs are cached (benchmarks/out/conditional/, gitignored) and redone when lightning_hpo's
    # deciding code changed, as in the main suite.
    cache = ResultCache(args.cache)
    code = BENCH_METHODS[OURS].fingerprint()
    lines = [
        "# Conditional search spaces",
        "",
        f"Written by `python -m benchmarks.conditional {' '.join(argv if argv is not None else sys.argv[1:])}` "
        f"(seeds {seeds.start}..{seeds.stop - 1}; {args.budget} trials per run). A small run on a loaded 2-core "
        "machine: few seeds and trials, so differences within the quartile ranges are noise.",
        "",
        "Median simple regret over seeds [25th, 75th percentile]: the true value of the best trial so far "
        "minus the optimum (jenatton: 0.1, exact; yahpo_xgboost: the dense-search reference of RESULTS.md "
        f"({YAHPO_REFERENCE}) or the best any run found, if lower). Lower is better; the best median is in bold. "
        "Seconds: the mean time of one suggestion (start-up trials included), on a machine shared with other "
        "jobs: compare within a column only roughly.",
        "",
    ]
    tasks = [TASKS[name]() for name in args.tasks.split(",")]
    methods = args.methods.split(",")
    for seed in seeds:  # seeds outermost, so an interrupted run has every task and method at its first seeds
        for conditional in tasks:
            for method in methods:
                _records(cache, code, conditional, method, range(seed, seed + 1), args.budget)
    for conditional in tasks:
        records = {m: _records(cache, code, conditional, m, seeds, args.budget) for m in methods}
        section = _section(conditional, records, report_at)
        print("\n".join(section), flush=True)
        lines += section
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
