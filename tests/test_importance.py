from __future__ import annotations

import math
import subprocess
import sys

import pytest

from lightning_hpo import Categorical, Float, Int, RandomSampler, Study, TrialState, importance
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.snapshot import StudySnapshot

SPACE = {
    "lr": Float(1e-5, 1e-1, log=True),
    "optimizer": Categorical(["adam", "sgd", "rmsprop"]),
    "layers": Int(1, 4),
    "dropout": Float(0.0, 0.5),
}


def study_of(fn, n_trials=40, space=SPACE, mode="min", seed=0) -> Study:
    study = Study("imp", search_space=space, storage=":memory:", mode=mode, sampler=RandomSampler(seed=seed))
    study.optimize(fn, n_trials=n_trials)
    return study


def drives_lr_then_optimizer(p) -> float:
    # dropout does nothing; layers a little; sgd is worse; lr matters most, on its log scale.
    return (math.log10(p["lr"]) + 3) ** 2 + 0.8 * (p["optimizer"] == "sgd") + 0.1 * p["layers"]


@pytest.fixture(scope="module")
def driven() -> Study:
    return study_of(drives_lr_then_optimizer)


@pytest.fixture(scope="module")
def driven_scores(driven: Study) -> dict[str, float]:
    """Its importance with seed 0, computed once (a GP fit per call) for the tests that read it."""
    return importance(driven, seed=0)


def test_parameters_that_drive_the_objective_rank_above_one_that_does_nothing(driven_scores):
    scores = driven_scores
    assert list(scores) == ["lr", "optimizer", "layers", "dropout"]
    # The terms are additive, so each share is its variance over the total, over the space as sampled:
    # log10(lr) + 3 uniform on [-2, 2]; sgd one time in 3; layers uniform on {1, 2, 3, 4}.
    variances = {"lr": 16 / 5 - (4 / 3) ** 2, "optimizer": 0.8**2 * 2 / 9, "layers": 0.1**2 * 15 / 12, "dropout": 0.0}
    expected = {name: v / sum(variances.values()) for name, v in variances.items()}
    assert scores == pytest.approx(expected, abs=0.01)
    assert scores["dropout"] < 1e-3 < scores["layers"]
    assert sum(scores.values()) == pytest.approx(1.0)


def test_the_same_seed_gives_the_same_result(driven, driven_scores):
    assert importance(driven, seed=0) == driven_scores  # computed again
    other = importance(driven, seed=4)
    assert list(other) == list(driven_scores)  # another seed, same ranking


@pytest.mark.parametrize("index", ["total", "first"])
def test_a_categorical_without_order_is_found(index):
    # The middle choice is best: no ordering of the choices would make this monotone.
    space = {"kind": Categorical(["a", "b", "c"]), "x": Float(0.0, 1.0)}
    scores = importance(study_of(lambda p: (p["kind"] != "b") + 0.1 * p["x"], space=space), index=index)
    assert list(scores) == ["kind", "x"] and scores["kind"] > 0.8


def test_log_parameters_are_measured_on_their_log_scale():
    # On the log scale lr < 1e-3 is half the range (variance 0.25); on a linear scale 1% of it.
    # x's step has variance 0.0625, so lr wins only if lr is taken on its log scale.
    space = {"lr": Float(1e-5, 1e-1, log=True), "x": Float(0.0, 1.0)}
    scores = importance(study_of(lambda p: (p["lr"] < 1e-3) + 0.5 * (p["x"] < 0.5), n_trials=60, space=space))
    assert scores["lr"] > 0.6 > scores["x"] > 0.1


def test_each_objective_of_a_multi_objective_study():
    space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}
    study = study_of(lambda p: (p["x"], -3 * p["y"]), space=space, mode=["min", "max"], n_trials=20)
    assert list(importance(study, objective=0)) == ["x", "y"]
    assert list(importance(study, objective=1)) == ["y", "x"]
    with pytest.raises(InvalidArgumentError, match=r"`objective` must be in \[0, 1\] .* but got 2"):
        importance(study, objective=2)


def test_too_few_complete_trials_is_a_clear_error():
    study = study_of(lambda p: p["lr"], n_trials=3)
    pruned = study.ask()
    study.report(pruned, 1, 0.5)
    study.tell(pruned, state=TrialState.PRUNED)
    with pytest.raises(
        InvalidArgumentError, match=r"at least 4 COMPLETE trials .* 'imp' has 3 \(PRUNED trials, 1 here"
    ):
        importance(study)


def test_a_constant_objective_explains_nothing():
    assert importance(study_of(lambda p: 1.0, n_trials=5)) == dict.fromkeys(sorted(SPACE), 0.0)


def test_arguments_are_checked():
    study = study_of(drives_lr_then_optimizer, n_trials=5)
    with pytest.raises(InvalidArgumentError, match="power of 2 >= 2, but got 1000"):
        importance(study, n_samples=1000)
    with pytest.raises(InvalidArgumentError, match="'total' or 'first', but got 'main'"):
        importance(study, index="main")
    with pytest.raises(ArgumentTypeError, match="Expected a lightning_hpo Study, but got"):
        importance({"lr": 1.0})


def test_a_snapshot_read_from_storage_gives_the_same_result(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = Study("imp", search_space=SPACE, storage=url, sampler=RandomSampler(seed=0))
    study.optimize(drives_lr_then_optimizer, n_trials=12)
    assert importance(StudySnapshot.load(study.storage, "imp")) == importance(study)


def test_the_function_stays_the_package_attribute_whatever_is_imported_first():
    code = (
        "import lightning_hpo.importance, lightning_hpo.plots; from lightning_hpo import importance; "
        "import lightning_hpo; assert callable(importance) and callable(lightning_hpo.importance)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
