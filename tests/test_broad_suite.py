"""The broad scikit-learn suite: its tasks evaluate, the runner lists them, the aggregate figures
(normalized score, rank, paired test) and the bridge to optimizers in their own venv."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest

from benchmarks.tasks import BROAD_TASKS, TASK_BUILDERS, WIDE_TASKS, build_task
from lightning_hpo import SearchSpace
from lightning_hpo.space import Categorical, Float, Int


def test_broad_suite_has_25_registered_tasks_of_every_family() -> None:
    assert len(BROAD_TASKS) >= 25
    assert set(BROAD_TASKS) <= set(TASK_BUILDERS)
    families = {name.split("_")[1] for name in BROAD_TASKS}
    assert {"dt", "rf", "hgb", "knn", "svm", "enet", "logreg", "mlpsgd", "mlpadam"} <= families


@pytest.mark.parametrize(
    "name,params,low,high",
    [
        # 1 - accuracy of a depth-3 tree on wine: well above chance (0.6), below perfect.
        (
            "sk_dt_wine",
            {
                "max_depth": 3,
                "min_samples_split": 0.01,
                "min_samples_leaf": 0.01,
                "max_features": 1.0,
                "criterion": "gini",
            },
            0.02,
            0.3,
        ),
        # RMSE of a near-unregularized linear model on diabetes: about 55 (the target's std is 77).
        ("sk_enet_diabetes", {"alpha": 1e-4, "l1_ratio": 0.5}, 50.0, 60.0),
    ],
)
def test_broad_task_evaluates_deterministically(name: str, params: dict, low: float, high: float) -> None:
    task = build_task(name)
    SearchSpace(task.space).check_params(params)
    first = task.make_objective(0)(params)
    assert low < first.observed < high and first.observed == first.true
    assert task.make_objective(1)(params) == first  # fixed folds and model seed: the seed changes nothing


# Each wide task with the value a failed fit counts as (its metric's worst).
@pytest.mark.parametrize(
    "name,worst",
    [
        ("sk_rfwide_wine", 10.0),
        ("sk_rfwide_diabetes", 200.0),
        ("sk_hgbwide_breast_cancer", 1.0),
        ("sk_mlpadamwide_digits", 1.0),
    ],
)
def test_wide_task_has_eight_numeric_columns_and_evaluates_at_both_ends(name: str, worst: float) -> None:
    task = build_task(name)
    numeric = [n for n, domain in task.space.items() if isinstance(domain, Float | Int)]
    assert len(numeric) >= 8 and name in WIDE_TASKS and name not in BROAD_TASKS
    # Every column at its low end, then at its high end: both corners fit and give different values.
    values = []
    for end in ("low", "high"):
        params = {
            n: d.choices[0 if end == "low" else -1] if isinstance(d, Categorical) else getattr(d, end)
            for n, d in task.space.items()
        }
        evaluation = task.make_objective(0)(params)
        assert evaluation == task.make_objective(1)(params) and evaluation.observed < worst
        values.append(evaluation.observed)
    assert values[0] != values[1]


def test_failed_fit_counts_as_the_worst_value() -> None:
    task = build_task("sk_mlpadam_diabetes")
    # A learning rate far outside the space's range makes the network diverge on every fold.
    params = {
        "width": 8,
        "layers": 1,
        "alpha": 1e-6,
        "batch_size": 16,
        "learning_rate_init": 1e6,
        "beta_1": 0.9,
        "activation": "relu",
    }
    value = task.make_objective(0)(params).observed
    assert math.isfinite(value) and value <= 200.0


def test_normalized_score_and_ranks() -> None:
    from benchmarks.aggregate import _ranks, normalized_scores
    from benchmarks.methods import METHODS
    from benchmarks.report import TaskResults

    task = build_task("sk_enet_diabetes")
    methods = [METHODS["lhpo_random"], METHODS["optuna_tpe"]]
    records = {
        "lhpo_random": [{"seed": 0, "true": [4.0, 2.0, 6.0]}, {"seed": 1, "true": [6.0, 4.0, 4.0]}],
        "optuna_tpe": [{"seed": 0, "true": [4.0, 1.0, 0.0]}, {"seed": 1, "true": [5.0, 4.0, 6.0]}],
    }
    # Reference 0; random's median value is 4: a regret of 2 scores 0.5, of 0 scores 1.
    curves = {"lhpo_random": [[4.0, 2.0, 2.0], [6.0, 4.0, 4.0]], "optuna_tpe": [[4.0, 1.0, 0.0], [5.0, 4.0, 4.0]]}
    result = TaskResults(task, 0.0, curves, records, 0)
    scores = normalized_scores(result, methods, 3)
    assert scores == {"lhpo_random": {0: 0.5, 1: 0.0}, "optuna_tpe": {0: 1.0, 1: 0.0}}
    assert _ranks(scores) == {"lhpo_random": [2.0, 1.5], "optuna_tpe": [1.0, 1.5]}


def test_suite_means_cover_the_runs_every_method_made() -> None:
    """A method run on fewer seeds (an expensive anchor) is compared on its seeds only: the suite's
    mean row averages every method over the same runs as the ranks."""
    from benchmarks.aggregate import aggregate_section
    from benchmarks.methods import METHODS
    from benchmarks.report import TaskResults

    task = build_task("sk_enet_diabetes")
    methods = [METHODS["lhpo_random"], METHODS["optuna_tpe"]]
    records = {
        "lhpo_random": [{"seed": 0, "true": [4.0, 2.0, 6.0]}, {"seed": 1, "true": [6.0, 4.0, 4.0]}],
        "optuna_tpe": [{"seed": 0, "true": [4.0, 1.0, 0.0]}],
    }
    curves = {"lhpo_random": [[4.0, 2.0, 2.0], [6.0, 4.0, 4.0]], "optuna_tpe": [[4.0, 1.0, 0.0]]}
    result = TaskResults(task, 0.0, curves, records, 0)
    lines = aggregate_section([result], methods, methods[0], 3)
    # Seed 0 only: random scores 0.5 (rank 2), TPE 1.0 (rank 1); random's seed 1 (0.0) is left out.
    assert "| **mean over the task x seed runs all ran** | **0.500 (2.00)** | **1.000 (1.00)** | |" in lines


def test_comparison_pairs_the_seeds() -> None:
    """Ours a little better on every one of 8 seeds whose regrets spread widely: the two samples
    overlap (no unpaired test would tell them apart) but the pairs all agree, so the comparison line
    calls it significant; on the 3 seeds an anchor ran, the same agreement is not enough."""
    from benchmarks.methods import METHODS
    from benchmarks.report import TaskResults, _comparison

    task = build_task("sk_enet_diabetes")
    ours, tpe, anchor = METHODS["lhpo_gp"], METHODS["optuna_tpe"], METHODS["optuna_gp"]
    theirs = [float(s + 1) for s in range(8)]
    curves = {
        ours.name: [[0.9 * v] for v in theirs],
        tpe.name: [[v] for v in theirs],
        anchor.name: [[v] for v in theirs[:3]],
    }
    records = {name: [{"seed": s} for s in range(len(c))] for name, c in curves.items()}
    lines = _comparison([TaskResults(task, 0.0, curves, records, 0)], [ours, tpe, anchor], ours, 1)
    assert "Significantly below (paired by seed, p < 0.05) on 1 (sk_enet_diabetes)" in lines[0]
    assert "Significantly below (paired by seed, p < 0.05) on 0, significantly above on 0" in lines[1]


def test_a_significant_test_is_read_in_the_direction_of_its_ranks_not_of_the_mean() -> None:
    """Ours a little better on 15 seeds and much worse on one: the mean favours the other method,
    the signed ranks (and so the significant test) favour ours, and both reports say ours."""
    from benchmarks.aggregate import aggregate_section, signed_rank_direction
    from benchmarks.methods import METHODS
    from benchmarks.report import TaskResults, _comparison

    theirs = [1.0 + s for s in range(16)]
    ours_regret = [v - 0.01 * (s + 1) for s, v in enumerate(theirs)]
    ours_regret[0] = theirs[0] + 1.5  # one loss, larger than the fifteen wins together (1.35)
    assert sum(ours_regret) > sum(theirs)
    assert signed_rank_direction(ours_regret, theirs) == -1  # lower regrets carry the ranks
    assert signed_rank_direction([1.0, 2.0], [1.0, 2.0]) == 0

    task = build_task("sk_enet_diabetes")
    ours, other, random_search = METHODS["lhpo_gp"], METHODS["optuna_gp"], METHODS["lhpo_random"]
    curves = {
        ours.name: [[v] for v in ours_regret],
        other.name: [[v] for v in theirs],
        random_search.name: [[20.0] for _ in theirs],
    }
    records = {name: [{"seed": s, "true": c[s]} for s in range(len(c))] for name, c in curves.items()}
    result = TaskResults(task, 0.0, curves, records, 0)
    lines = _comparison([result], [ours, other], ours, 1)
    assert "Significantly below (paired by seed, p < 0.05) on 1 (sk_enet_diabetes)" in lines[0]
    row = next(line for line in aggregate_section([result], [ours, other, random_search], ours, 1) if "sk_enet" in line)
    assert "optuna_gp +0.0" in row and "lhpo_random +" in row  # before: "optuna_gp -0.0052"


SPACE = {
    "f": Float(0.1, 10.0),
    "flog": Float(1e-4, 1e-1, log=True),
    "i": Int(-3, 9, step=3),
    "ilog": Int(1, 20, log=True),
    "c": Categorical([None, "b", 3]),
}


def test_anchor_space_round_trip() -> None:
    from benchmarks.methods import _anchor_space, _from_anchor

    entries = {e["name"]: e for e in _anchor_space(SPACE)}
    assert entries["i"] == {"name": "i", "kind": "int", "low": 0, "high": 4, "log": False}
    assert entries["c"] == {"name": "c", "kind": "cat", "size": 3}
    params = _from_anchor(SPACE, {"f": 20.0, "flog": 1e-3, "i": 2, "ilog": 7.0, "c": "0"})
    assert params == {"f": 10.0, "flog": 1e-3, "i": 3, "ilog": 7, "c": None}
    SearchSpace(SPACE).check_params(params)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hebo", "smac"])
def test_anchor_runs_through_its_bridge(name: str) -> None:
    """Skipped where ``make bench-anchors`` has not made the library's venv."""
    from benchmarks.methods import METHODS
    from benchmarks.tasks import Evaluation

    method = METHODS[name]
    if method.unavailable() is not None:
        pytest.skip(method.unavailable())
    space = SearchSpace(SPACE)

    def objective(params: dict) -> Evaluation:
        space.check_params(params)
        value = float(params["f"] + math.log(params["flog"]) + params["i"] + params["ilog"])
        return Evaluation(value, value)

    task = build_task("sk_enet_diabetes")
    task = type(task)(name="anchor", summary="", space=SPACE, make_objective=lambda seed: objective)
    # Few trials: past its initial design a suggestion of either library takes seconds on a loaded machine.
    leftovers = set(Path(tempfile.gettempdir()).glob("smac*"))
    trace = method.run(task, objective, 6, 0)
    # Six different configurations, each valid (the objective checks them); the categorical's mapping is
    # tested above: SMAC3 may keep one category through its first six trials.
    assert len(trace.observed) == 6 and len({tuple(sorted(p.items())) for p in trace.params}) == 6
    assert set(Path(tempfile.gettempdir()).glob("smac*")) == leftovers, "the bridge left SMAC3's run history behind"
    assert method.fingerprint().startswith(f"{name}==")
