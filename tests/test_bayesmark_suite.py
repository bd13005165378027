"""The NeurIPS 2020 BBO challenge's problems (``--tasks bayesmark``): the registry, the space's logit
warp, the challenge's score, and real evaluations by bayesmark in ``.venv-bayesmark`` (``make test``
installs it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.bayesmark_score import main as bayesmark_score_main
from benchmarks.bayesmark_score import normalized, random_baseline_score, score_section
from benchmarks.runner import ResultCache
from benchmarks.tasks import BAYESMARK_TASKS, TASK_BUILDERS, build_task
from benchmarks.tasks.bayesmark import BAYESMARK_VENV, baseline, bayesmark_space, from_search, signature_errors
from lightning_hpo import SearchSpace
from lightning_hpo.space import Categorical, Float, Int

_REPOSITORY = Path(__file__).resolve().parents[1]
MODELS = ("DT", "MLP-adam", "MLP-sgd", "RF", "SVM", "ada", "kNN", "lasso", "linear")


def test_the_108_problems_of_the_challenge_are_registered() -> None:
    assert len(BAYESMARK_TASKS) == 108 and set(BAYESMARK_TASKS) <= set(TASK_BUILDERS)
    assert {f"bm_{p}" for p in baseline()} == set(BAYESMARK_TASKS)
    for model in MODELS:
        names = [n for n in BAYESMARK_TASKS if n.split("_")[1] == model]
        # six datasets x two metrics, the regression ones (boston, diabetes) with mse and mae
        assert len(names) == 12
        assert {n.split("_", 2)[2] for n in names if "_boston_" in n or "_diabetes_" in n} == {
            "boston_mse",
            "boston_mae",
            "diabetes_mse",
            "diabetes_mae",
        }


def test_logit_reals_are_searched_on_their_logit_and_sent_back_in_bayesmarks_units() -> None:
    task = build_task("bm_DT_wine_nll")
    split = task.space["min_samples_split"]
    assert isinstance(split, Float) and not split.log
    assert split.low == pytest.approx(math.log(0.01 / 0.99)) and split.high == pytest.approx(math.log(0.99 / 0.01))
    assert isinstance(task.space["max_depth"], Int) and (task.space["max_depth"].low, task.space["max_depth"].high) == (
        1,
        15,
    )
    corner = from_search("DT_wine_nll", {name: domain.high for name, domain in task.space.items()})
    assert corner["min_samples_split"] == pytest.approx(0.99) and corner["min_samples_leaf"] == pytest.approx(0.49)
    assert corner["max_depth"] == 15 and corner["min_impurity_decrease"] == 0.5  # linear columns untouched
    middle = from_search("DT_wine_nll", {**corner, "max_features": 0.0})
    assert middle["max_features"] == pytest.approx(0.5)


def test_regression_models_have_their_own_spaces() -> None:
    assert set(bayesmark_space("lasso_diabetes_mse")) == {
        "alpha",
        "fit_intercept",
        "normalize",
        "max_iter",
        "tol",
        "positive",
    }
    assert set(bayesmark_space("lasso_wine_acc")) == {"C", "intercept_scaling"}
    space = build_task("bm_linear_boston_mae").space
    assert space["normalize"] == Categorical([False, True])
    assert space["max_iter"] == Int(10, 5000, log=True)
    assert space["tol"] == Float(1e-4, 1e-1, log=True)


def test_normalized_value_and_random_baseline_follow_the_challenges_formula() -> None:
    reference = baseline()["kNN_iris_nll"]
    best, clip = reference["best"], reference["clip"]
    halfway = best + 0.5 * (clip - best)
    assert normalized([clip + 1.0, halfway, clip], "kNN_iris_nll", 3) == pytest.approx(0.5)
    assert normalized([clip + 1.0, halfway], "kNN_iris_nll", 1) == 1.0  # worse than clip: clipped at 1
    assert normalized([best - 10 * (clip - best)], "kNN_iris_nll", 1) == -1.0  # far below best: clipped at -1
    # the challenge's random search gets better with evaluations, and one of its draws scores 0 on average
    scores = [random_baseline_score(list(baseline()), t) for t in (1, 10, 30, 100)]
    assert scores == sorted(scores) and 0.0 <= scores[0] < 30.0 < scores[-1] < 100.0


def _record(task: str, method: str, seed: int, observed: list[float]) -> dict:
    return {"task": task, "method": method, "seed": seed, "budget": len(observed), "observed": observed}


def test_score_section_pairs_problems_and_seeds_every_method_ran(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    problems = ["kNN_iris_nll", "SVM_wine_acc", "ada_diabetes_mae"]
    for index, problem in enumerate(problems):
        reference = baseline()[problem]
        best, clip = reference["best"], reference["clip"]
        for seed in (0, 1):
            # "lhpo_gp" reaches a quarter of the way from best to clip, random search half of it
            cache.save("runs", _record(f"bm_{problem}", "lhpo_gp", seed, [clip, best + 0.25 * (clip - best)]))
            if index < 2:  # random search misses the third problem: it is left out of both scores
                cache.save("runs", _record(f"bm_{problem}", "lhpo_random", seed, [clip, best + 0.5 * (clip - best)]))
    text = score_section(cache, ["lhpo_gp", "lhpo_random"], [0, 1], [1, 2])
    assert "| lhpo_gp | 0.00 | 75.00 |" in text and "| lhpo_random | 0.00 | 50.00 |" in text
    assert "2 problems x 2 seeds" in text
    assert "| lhpo_random | 4 / 0 |" in text and "lhpo_gp ahead" in text
    assert "| SVM (1) | 75.00 | 50.00 |" in text


def test_the_command_scores_the_seeds_it_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = "kNN_iris_nll"
    reference = baseline()[problem]
    best, clip = reference["best"], reference["clip"]
    cache = ResultCache(tmp_path)
    for method, fraction in (("lhpo_gp", 0.25), ("lhpo_random", 0.5)):
        cache.save("runs", _record(f"bm_{problem}", method, 1, [clip, best + fraction * (clip - best)]))
    arguments = ["--out", str(tmp_path), "--samplers", "ours,lhpo_random", "--report-at", "2", "--seeds", "1"]
    assert bayesmark_score_main([*arguments, "--first-seed", "1"]) == 0
    assert "| lhpo_gp | 75.00 |" in capsys.readouterr().out
    # seed 0 was never run: the command says so rather than scoring nothing
    assert bayesmark_score_main(arguments) == 1
    assert "no problem has a run of every method (lhpo_gp, lhpo_random) at every seed (0)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bayesmark_score_main([*arguments, "--first-seed", "-1"])
    assert "--first-seed must be 0 or more, not -1" in capsys.readouterr().err


def test_baseline_file_holds_the_challenges_numbers() -> None:
    data = json.loads((_REPOSITORY / "benchmarks" / "bayesmark_baseline.json").read_text())
    for problem, reference in data["problems"].items():
        curve = reference["random_mean"]
        assert len(curve) == 100 and len(reference["signature"]) == 5
        assert reference["best"] < curve[-1] <= curve[0] <= reference["clip"], problem
        assert all(a >= b for a, b in zip(curve, curve[1:])), problem


# -- evaluated by bayesmark itself ---------------------------------------------------------------


@pytest.fixture(scope="module")
def installed() -> None:
    marker = _REPOSITORY / BAYESMARK_VENV / ".installed"
    if not marker.is_file():
        pytest.fail(f"{marker} is missing: `make test` installs the bayesmark venv (make .venv-bayesmark/.installed).")


# One problem of each model, as classifier and as regressor: each corner of its space is accepted by
# bayesmark (the names and ranges above are its own) and gives a finite loss.
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dataset,metric", [("iris", "acc"), ("diabetes", "mse")])
def test_every_space_is_bayesmarks_own_at_both_corners(installed: None, model: str, dataset: str, metric: str) -> None:
    task = build_task(f"bm_{model}_{dataset}_{metric}")
    for corner in ("low", "high"):
        params = {
            name: (domain.choices[-1] if isinstance(domain, Categorical) else getattr(domain, corner))
            for name, domain in task.space.items()
        }
        SearchSpace(task.space).check_params(params)
        value = task.make_objective(0)(params)
        assert math.isfinite(value.observed) and value.observed == value.true
        if metric == "acc":
            assert -1.0 <= value.observed <= 0.0  # bayesmark minimizes minus the accuracy


def test_the_same_seed_and_trial_draw_the_same_forest_and_another_trial_another(installed: None) -> None:
    task = build_task("bm_RF_wine_nll")
    params = {"max_depth": 3, "max_features": 0.0, "min_samples_split": -2.0, "min_samples_leaf": -3.0}
    params |= {"min_weight_fraction_leaf": -3.0, "min_impurity_decrease": 0.0}
    first, second = task.make_objective(5), task.make_objective(5)
    values = [first(params), first(params)]
    assert [second(params), second(params)] == values
    assert values[0] != values[1]  # the next trial's forest is drawn anew, as in the challenge


def test_a_deterministic_problem_reproduces_the_challenges_signature(installed: None) -> None:
    assert max(signature_errors("kNN_boston_mse")) < 1e-9
    assert max(signature_errors("lasso_diabetes_mae")) < 1e-4


def test_a_configuration_outside_bayesmarks_space_is_refused_with_its_name(installed: None) -> None:
    from benchmarks.tasks.bayesmark import _WORKER

    with pytest.raises(RuntimeError, match=r"kNN_iris_acc: n_neighbors = 40 is outside \(1, 25\)"):
        _WORKER.ask({"problem": "kNN_iris_acc", "params": {"n_neighbors": 40, "p": 2}, "seed": 0})
    with pytest.raises(RuntimeError, match=r"kNN_iris_acc takes \['n_neighbors', 'p'\], but got \['k', 'p'\]"):
        _WORKER.ask({"problem": "kNN_iris_acc", "params": {"k": 3, "p": 2}, "seed": 0})
    # the worker goes on answering after a refused request
    assert _WORKER.ask({"problem": "kNN_iris_acc", "params": {"n_neighbors": 3, "p": 2}, "seed": 0})["visible"] < -0.8


def test_a_diverging_model_counts_as_the_runs_worst_value_and_no_better_than_clip(installed: None) -> None:
    """An MLP with sgd, a large step and momentum near 1 diverges to nan on diabetes (it stopped a
    run of the suite): the challenge scored such a trial at clip."""
    task = build_task("bm_MLP-sgd_diabetes_mse")
    clip = baseline()["MLP-sgd_diabetes_mse"]["clip"]
    diverging = {"hidden_layer_sizes": 130, "alpha": 1e-05, "batch_size": 10, "learning_rate_init": 0.034}
    logit = {"validation_fraction": 0.1139, "momentum": 0.9948}  # searched on their logit
    diverging |= {
        "tol": 0.1,
        "power_t": task.space["power_t"].low,
        **{k: math.log(v / (1 - v)) for k, v in logit.items()},
    }
    sane = {**diverging, "learning_rate_init": 1e-3, "momentum": 0.0}
    objective = task.make_objective(0)
    first = objective(diverging)
    assert first.observed == first.true == clip
    assert objective(sane).observed < clip
    # worse values met before raise the failure's value to the worst of them
    objective = task.make_objective(1)
    slow = objective({**sane, "learning_rate_init": 1e-5, "batch_size": 250, "hidden_layer_sizes": 50})
    assert slow.observed > clip  # an untrained net: about the target's mean square
    assert objective(diverging).observed == slow.observed
