"""The curve model shared by CurvePruner and GPSampler(learn_from_curves=True): where a learning curve ends."""

from __future__ import annotations

import math

import pytest

from lightning_hpo.pruners._curve_model import forecast, full_run_steps
from lightning_hpo.trial import Trial, TrialState

FULL = 32


def rising(number: int, top: float, pace: float, steps: int = FULL, state: TrialState = TrialState.COMPLETE) -> Trial:
    """A curve rising to ``top`` with time constant ``pace`` (steps), reported at steps 1..``steps``."""
    values = {s: top * (1 - math.exp(-s / pace)) for s in range(1, steps + 1)}
    return Trial(number, state, {}, intermediate_values=values)


def peers() -> list[Trial]:
    """Full runs that rise fast (at a range of paces) and flatten near 0.8."""
    return [rising(i, top=0.78 + 0.01 * i, pace=1.0 + 0.5 * i) for i in range(5)]


def test_a_flattening_curve_ends_near_where_it_is_and_narrower_the_later_it_is_seen():
    history = peers()
    early, late = (rising(9, top=0.7, pace=2.0, steps=s, state=TrialState.RUNNING) for s in (4, 16))
    predictions = {}
    for trial in (early, late):
        prediction = forecast(trial, [*history, trial], trial.last_step, FULL, minimize=False)
        assert prediction is not None
        predictions[trial.last_step] = prediction.mean_and_variance()
    mean, variance = predictions[16]
    # Peers that flattened at the same (nearly zero) pace say little is left: close to its 0.7.
    assert 0.699 <= mean < 0.705 and variance < 1e-4
    assert predictions[4][1] > 100 * variance  # a trial seen at an eighth of its run is far less certain
    assert forecast(late, [*history, late], 16, FULL, minimize=False).probability_above(0.78) < 0.05


def test_a_slow_starter_still_climbing_may_cross_the_fast_ones():
    history = peers()
    slow = rising(9, top=0.95, pace=12.0, steps=8, state=TrialState.RUNNING)  # at 0.46 by step 8
    alone = forecast(slow, [*history, slow], 8, FULL, minimize=False)
    mean, variance = alone.mean_and_variance()
    # The fast peers, flat by step 8, weigh little; its own pace says it climbs far, uncertainly.
    assert max(alone.peer_weights[:3]) < 0.01
    assert mean > 0.46 + 0.2 and variance > 0.01
    assert alone.probability_above(alone.incumbent) > 0.05  # CurvePruner() keeps it
    # A peer that started as slowly and crossed them speaks for it with the most weight.
    crossed = rising(5, top=0.9, pace=12.0)
    informed = forecast(slow, [*history, crossed, slow], 8, FULL, minimize=False)
    assert max(informed.peer_weights) == informed.peer_weights[-1] > 0.9
    assert informed.mean_and_variance()[0] > mean


def test_minimizing_mirrors_maximizing():
    def mirrored(trial: Trial) -> Trial:
        values = {s: -v for s, v in trial.intermediate_values.items()}
        return Trial(trial.number, trial.state, {}, intermediate_values=values)

    history = peers()
    trial = rising(9, top=0.7, pace=6.0, steps=10, state=TrialState.RUNNING)
    up = forecast(trial, [*history, trial], 10, FULL, minimize=False)
    down = forecast(mirrored(trial), [*map(mirrored, history), mirrored(trial)], 10, FULL, minimize=True)
    assert up.mean_and_variance() == pytest.approx(down.mean_and_variance())


def test_no_prediction_without_full_runs_or_a_pace():
    trial = rising(0, top=0.7, pace=3.0, steps=10, state=TrialState.RUNNING)
    assert forecast(trial, [trial], 10, FULL, minimize=False) is None  # no peer
    assert full_run_steps(trial, [trial]) is None  # and no full run's length to read
    history = peers()
    assert full_run_steps(trial, [*history, trial]) == FULL
    late_starter = Trial(9, TrialState.RUNNING, {}, intermediate_values={6: 0.5, 8: 0.6})
    assert forecast(late_starter, [*history, late_starter], 8, FULL, minimize=False) is None  # nothing by step 4


def test_no_prediction_from_a_report_at_step_zero_alone():
    # Lightning's first epoch is step 0: a trial stopped there has no first half to take a pace from.
    history = [Trial(i, TrialState.COMPLETE, {}, intermediate_values={0: 0.1 * i, 7: 0.5 + 0.1 * i}) for i in range(3)]
    first_epoch = Trial(9, TrialState.PRUNED, {}, intermediate_values={0: 0.3})
    assert forecast(first_epoch, [*history, first_epoch], 0, 7, minimize=False) is None
