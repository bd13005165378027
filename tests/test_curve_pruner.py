"""CurvePruner through a real Study: seeded synthetic learning curves, reported step by step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_hpo import Float, Study
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.pruners import ASHAPruner, CurvePruner, Pruner
from lightning_hpo.samplers import RandomSampler
from lightning_hpo.trial import TrialState

STEPS = 30
SPACE = {"x": Float(0, 1)}


def curve(rng: np.random.Generator, top: float, pace: float, start: float = 0.0) -> list[float]:
    """Accuracy rising from ``start`` to ``top`` with time constant ``pace`` (steps), plus a little noise."""
    t = np.arange(1, STEPS + 1)
    return list(start + (top - start) * (1 - np.exp(-t / pace)) + rng.normal(0, 0.003, STEPS))


def study_with_fast_learners(pruner: Pruner) -> Study:
    """Five COMPLETE trials whose curves rise fast and flatten near 0.85."""
    study = Study(
        "curves", search_space=SPACE, mode="max", storage=":memory:", sampler=RandomSampler(seed=0), pruner=pruner
    )
    rng = np.random.default_rng(0)
    for _ in range(5):
        run(study, curve(rng, top=rng.uniform(0.83, 0.87), pace=2.0))
    return study


def run(study: Study, values: list[float]) -> int | None:
    """Report ``values`` at steps 1, 2, ...; the step at which the trial was pruned, or None."""
    trial = study.ask()
    for step, value in enumerate(values, start=1):
        study.report(trial, step, value)
        if study.should_prune(trial):
            study.tell(trial, state=TrialState.PRUNED)
            return step
    study.tell(trial, max(values))
    return None


def test_stops_a_hopeless_curve_early() -> None:
    study = study_with_fast_learners(CurvePruner())
    flat = curve(np.random.default_rng(1), top=0.32, pace=2.0, start=0.3)
    assert run(study, flat) == 4  # the first step past a ninth of the run


def test_keeps_a_slow_starter_that_crosses_the_best_curve() -> None:
    slow = curve(np.random.default_rng(2), top=0.97, pace=8.0)
    assert slow[3] < 0.5 and max(slow) > 0.9  # far behind at the first judged step, ahead at the end
    assert run(study_with_fast_learners(CurvePruner()), slow) is None
    assert run(study_with_fast_learners(ASHAPruner()), slow) is not None  # a rank at a rung drops it


def test_stops_a_curve_that_history_says_flattens() -> None:
    """A trial climbing at the pace the fast learners had, but from lower: they all flattened, so it will."""
    study = study_with_fast_learners(CurvePruner())
    late = curve(np.random.default_rng(3), top=0.6, pace=2.0)
    assert run(study, late) is not None


def test_needs_an_incumbent_and_minimizes_too() -> None:
    pruner = CurvePruner()
    study = Study(
        "loss", search_space=SPACE, mode="min", storage=":memory:", sampler=RandomSampler(seed=0), pruner=pruner
    )
    rng = np.random.default_rng(4)
    losses = [1 - v for v in curve(rng, top=0.85, pace=2.0)]
    assert run(study, [1 - v for v in curve(rng, top=0.3, pace=2.0)]) is None  # no full run yet: nothing to beat
    assert run(study, losses) is None
    assert run(study, [1 - v for v in curve(rng, top=0.32, pace=2.0, start=0.3)]) is not None


def test_a_diverged_trial_is_stopped() -> None:
    study = study_with_fast_learners(CurvePruner())
    assert run(study, [math.nan] * STEPS) == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"threshold": 0}, InvalidArgumentError, "0 < threshold < 1"),
        ({"threshold": 1.5}, InvalidArgumentError, "threshold=1.5"),
        ({"threshold": math.nan}, InvalidArgumentError, "threshold=nan"),
        ({"threshold": "0.1"}, ArgumentTypeError, "must be a number"),
        ({"margin": -0.1}, InvalidArgumentError, "margin >= 0"),
        ({"bandwidth": 0}, InvalidArgumentError, "bandwidth > 0"),
        ({"min_resource": 0}, InvalidArgumentError, "min_resource >= 1"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        CurvePruner(**kwargs)


def test_refuses_several_objectives() -> None:
    with pytest.raises(InvalidArgumentError, match="judges one objective"):
        Study("mo", search_space=SPACE, mode=["min", "max"], storage=":memory:", pruner=CurvePruner())
