"""Pruners' decisions as tables of stored histories, then with real studies, a real Tuner and DDP."""

from __future__ import annotations

import doctest
import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest

import lightning_hpo.pruners
from lightning_hpo import Float, SobolSampler, Study
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.pruners import (
    ASHAPruner,
    HyperbandPruner,
    MedianPruner,
    NopPruner,
    PatientPruner,
    PercentilePruner,
    Pruner,
    ThresholdPruner,
)
from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import Trial, TrialState

NAN = math.nan
DONE, RUN, CUT, FAIL = TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED, TrialState.FAIL


def history(*others: tuple[Mapping[int, float], TrialState] | Mapping[int, float]) -> list[Trial]:
    """Trials 1, 2, ... with the given curves (COMPLETE unless a state is given)."""
    trials = []
    for number, other in enumerate(others, start=1):
        curve, state = other if isinstance(other, tuple) else (other, DONE)
        trials.append(Trial(number, state, {}, intermediate_values=dict(curve)))
    return trials


def decide(
    pruner: Pruner, curve: Mapping[int, float], others: Sequence[Trial], mode: str = "min", number: int = 0
) -> bool:
    """The pruner's decision for RUNNING trial ``number`` with ``curve``, among ``others``, as a Study asks it."""
    trial = Trial(number, RUN, {}, intermediate_values=dict(curve))
    return pruner.prune(trial, [trial, *others], directions=[mode])


# -- PercentilePruner / MedianPruner ------------------------------------------------------

FIVE_DONE = history(*({10: v} for v in (0.1, 0.2, 0.3, 0.4, 0.5)))


@pytest.mark.parametrize(
    "pruner, curve, others, mode, expected",
    [
        pytest.param(MedianPruner(n_startup_trials=5), {10: 0.35}, FIVE_DONE, "min", True, id="worse-than-median"),
        pytest.param(MedianPruner(n_startup_trials=5), {10: 0.25}, FIVE_DONE, "min", False, id="better-than-median"),
        pytest.param(MedianPruner(n_startup_trials=5), {10: 0.3}, FIVE_DONE, "min", False, id="equal-to-median-kept"),
        pytest.param(
            MedianPruner(n_startup_trials=5), {0: 0.1, 10: 0.9}, FIVE_DONE, "min", False, id="best-so-far-counts"
        ),
        pytest.param(MedianPruner(n_startup_trials=6), {10: 0.9}, FIVE_DONE, "min", False, id="startup-trials"),
        pytest.param(
            MedianPruner(n_startup_trials=0, n_warmup_steps=11), {10: 0.9}, FIVE_DONE, "min", False, id="warmup"
        ),
        pytest.param(
            MedianPruner(n_startup_trials=0, n_warmup_steps=10), {10: 0.9}, FIVE_DONE, "min", True, id="warmup-ends"
        ),
        pytest.param(MedianPruner(n_startup_trials=5), {10: 0.25}, FIVE_DONE, "max", True, id="max-worse"),
        pytest.param(MedianPruner(n_startup_trials=5), {10: 0.35}, FIVE_DONE, "max", False, id="max-better"),
        pytest.param(
            PercentilePruner(25.0, n_startup_trials=0),
            {10: 0.25},
            FIVE_DONE,
            "min",
            True,
            id="p25-prunes-second-quartile",
        ),
        pytest.param(
            PercentilePruner(25.0, n_startup_trials=0), {10: 0.15}, FIVE_DONE, "min", False, id="p25-keeps-top-quarter"
        ),
        pytest.param(
            PercentilePruner(25.0, n_startup_trials=0), {10: 0.45}, FIVE_DONE, "max", False, id="p25-max-keeps-top"
        ),
        pytest.param(MedianPruner(n_startup_trials=0), {0: NAN, 10: NAN}, [], "min", True, id="nan-only-diverged"),
        pytest.param(MedianPruner(n_startup_trials=9), {0: NAN}, [], "min", True, id="nan-pruned-during-startup"),
        pytest.param(
            MedianPruner(n_startup_trials=0, n_warmup_steps=5), {0: NAN}, [], "min", False, id="nan-in-warmup"
        ),
        pytest.param(MedianPruner(n_startup_trials=0), {0: 0.1, 10: NAN}, FIVE_DONE, "min", False, id="nan-after-best"),
        # Peers count only if they reached the step; each by its best value *by* the step.
        pytest.param(
            MedianPruner(n_startup_trials=0),
            {10: 0.5},
            history({15: 0.1}, {5: 0.1}),
            "min",
            False,
            id="peers-must-have-value-by-step",
        ),
        pytest.param(
            MedianPruner(n_startup_trials=0),
            {10: 0.5},
            history({5: 0.1, 15: 0.9}),
            "min",
            True,
            id="misaligned-peer-best-by-step",
        ),
        pytest.param(
            MedianPruner(n_startup_trials=0),
            {10: 0.5},
            history(({10: 0.1}, RUN), ({10: 0.2}, CUT)),
            "min",
            True,
            id="running-and-pruned-peers-count",
        ),
        pytest.param(
            MedianPruner(n_startup_trials=0),
            {10: 0.5},
            history(({10: 0.1}, FAIL)),
            "min",
            False,
            id="failed-peers-ignored",
        ),
        pytest.param(
            MedianPruner(n_startup_trials=0, n_min_trials=6), {10: 0.9}, FIVE_DONE, "min", False, id="n-min-trials"
        ),
        pytest.param(
            MedianPruner(n_startup_trials=0, interval_steps=10),
            {10: 0.9},
            FIVE_DONE,
            "min",
            True,
            id="interval-first-report",
        ),
        pytest.param(
            MedianPruner(n_startup_trials=0, interval_steps=10),
            {10: 0.9, 15: 0.9},
            history(*({15: v} for v in (0.1, 0.2))),
            "min",
            False,
            id="interval-second-report",
        ),
        pytest.param(
            MedianPruner(n_startup_trials=0, n_warmup_steps=5, interval_steps=10),
            {12: 0.9, 15: 0.9},
            history(*({15: v} for v in (0.1, 0.2))),
            "min",
            True,
            id="interval-starts-after-warmup",
        ),
    ],
)
def test_percentile_decisions(pruner, curve, others, mode, expected):
    assert decide(pruner, curve, others, mode) is expected


# -- ASHAPruner ------------------------------------------------------------------------------

ASHA = ASHAPruner(min_resource=10, max_resource=1000, reduction_factor=3)  # rungs 10, 30, 90, 270
EVERY_20_STEPS = history(*({s: v for s in range(20, 420, 20)} for v in (0.1, 0.2)))
SIX_AT_10 = history(*({10: v} for v in (0.1, 0.2, 0.3, 0.4, 0.5)))


@pytest.mark.parametrize(
    "pruner, curve, others, mode, expected",
    [
        pytest.param(ASHA, {5: 0.9}, SIX_AT_10, "min", False, id="before-first-rung"),
        pytest.param(ASHA, {10: 0.9}, [], "min", False, id="alone-at-rung"),
        pytest.param(ASHA, {10: 0.09}, history({10: 0.1}), "min", False, id="fewer-than-eta-best-goes-on"),
        pytest.param(ASHA, {10: 0.9}, history({10: 0.1}), "min", True, id="fewer-than-eta-others-stop"),
        pytest.param(ASHA, {10: 0.3}, history({10: 0.1}, {10: 0.2}), "min", True, id="worst-of-three"),
        pytest.param(ASHA, {10: 0.05}, history({10: 0.1}, {10: 0.2}), "min", False, id="best-of-three"),
        pytest.param(ASHA, {10: 0.1}, history({10: 0.1}, {10: 0.2}), "min", False, id="tie-with-best-kept"),
        pytest.param(ASHA, {10: 0.15}, SIX_AT_10, "min", False, id="second-of-six-in-top-third"),
        pytest.param(ASHA, {10: 0.25}, SIX_AT_10, "min", True, id="third-of-six-pruned"),
        pytest.param(ASHA, {10: 0.45}, SIX_AT_10, "max", False, id="max-second-of-six"),
        pytest.param(ASHA, {10: 0.35}, SIX_AT_10, "max", True, id="max-fourth-of-six"),
        pytest.param(ASHA, {10: 0.9, 20: 0.9}, SIX_AT_10, "min", False, id="judged-once-on-arrival"),
        pytest.param(ASHA, {20: 0.9, 30: 0.9}, SIX_AT_10, "min", False, id="peers-below-next-rung-not-counted"),
        pytest.param(ASHA, {7: 0.5, 14: 0.1}, history({10: 0.2}, {10: 0.3}), "min", True, id="misaligned-best-by-rung"),
        pytest.param(
            ASHA, {10: 0.15}, history({5: 0.2, 15: 0.01}, {10: 0.3}), "min", False, id="misaligned-peer-best-by-rung"
        ),
        pytest.param(
            ASHA, {10: 0.15}, history({5: 0.1}, {10: 0.2}, {10: 0.3}), "min", False, id="peer-short-of-rung-not-counted"
        ),
        pytest.param(
            ASHA, {10: 0.15}, history(({10: 0.1}, FAIL), {10: 0.2}, {10: 0.3}), "min", False, id="failed-peers-ignored"
        ),
        pytest.param(
            ASHA,
            {10: 0.9},
            history(({10: 0.1}, RUN), ({10: 0.2}, CUT)),
            "min",
            True,
            id="running-and-pruned-peers-count",
        ),
        pytest.param(ASHA, {5: NAN, 10: NAN}, [], "min", True, id="nan-only-by-rung"),
        pytest.param(ASHA, {5: 0.1, 10: NAN}, history({10: 0.2}, {10: 0.3}), "min", False, id="nan-after-best"),
        pytest.param(ASHA, {30: 0.9}, history({10: 0.1}, {10: 0.2}), "min", False, id="no-report-by-rung-not-judged"),
        pytest.param(
            ASHA, {30: 0.9}, history({10: 0.1, 30: 0.1}), "min", True, id="no-report-by-first-rung-judged-at-next"
        ),
        pytest.param(
            ASHA, {5: 0.9, 40: 0.9}, history({10: 0.1}, {10: 0.2}), "min", True, id="judged-at-every-rung-crossed"
        ),
        pytest.param(
            ASHAPruner(min_resource=10, max_resource=30),
            {20: 0.9, 30: 0.9},
            history({30: 0.1}, {30: 0.2}),
            "min",
            False,
            id="no-rung-past-max-over-eta",
        ),
        pytest.param(
            ASHAPruner(min_resource=10),
            {20: 0.9, 30: 0.9},
            history(({30: 0.1}, RUN), ({30: 0.2}, RUN)),
            "min",
            True,
            id="rungs-unbounded-without-max",
        ),
        pytest.param(
            ASHAPruner(),
            {10: 0.9},
            history(({10: 0.1, 90: 0.1}, RUN), ({10: 0.2, 90: 0.1}, RUN)),
            "min",
            False,
            id="auto-waits-for-complete",
        ),
        pytest.param(
            ASHAPruner(),
            {10: 0.9},
            history({10: 0.1, 90: 0.1}, {10: 0.2, 90: 0.1}),
            "min",
            True,
            id="auto-rungs-at-max-over-9",
        ),
        pytest.param(
            ASHAPruner(),
            {9: 0.9},
            history({10: 0.1, 90: 0.1}, {10: 0.2, 90: 0.1}),
            "min",
            False,
            id="auto-before-first-rung",
        ),
        pytest.param(
            ASHAPruner(),
            {20: 0.9, 30: 0.9},
            history({30: 0.1, 90: 0.1}, {30: 0.2, 90: 0.1}),
            "min",
            True,
            id="auto-second-rung",
        ),
        pytest.param(
            ASHAPruner(reduction_factor=2),
            {22: 0.9, 23: 0.9},
            history({22: 0.1, 23: 0.1, 90: 0.1}, {23: 0.2, 90: 0.1}),
            "min",
            True,
            id="auto-eta-2-rung-at-quarter-moved-to-a-report",
        ),
        pytest.param(ASHAPruner(), {20: 0.9, 40: 0.9}, EVERY_20_STEPS, "min", False, id="auto-rung-44-moved-to-60"),
        pytest.param(ASHAPruner(), {20: 0.9, 40: 0.9, 60: 0.9}, EVERY_20_STEPS, "min", True, id="auto-judged-at-60"),
    ],
)
def test_asha_decisions(pruner, curve, others, mode, expected):
    assert decide(pruner, curve, others, mode) is expected


# -- ASHAPruner with several objectives (MO-ASHA) ---------------------------------------------

MO_ASHA = ASHAPruner(min_resource=1, max_resource=9, reduction_factor=3)  # rungs at steps 1 and 3


def vectors(*curves: Mapping[int, tuple[float, ...]]) -> list[Trial]:
    """COMPLETE trials 1, 2, ... with the given multi-objective curves."""
    return [Trial(n, DONE, {}, intermediate_vectors=dict(c)) for n, c in enumerate(curves, start=1)]


# Fronts at rung 1: {(0, 4), (1, 2), (3, 1), (4, 0)} with crowding distances inf, 1.5, 1.25, inf.
FRONT_AT_1 = [{1: (0.0, 4.0)}, {1: (3.0, 1.0)}, {1: (4.0, 0.0)}]
DOMINATED_AT_1 = [{1: (5.0, 5.0)}, {1: (6.0, 6.0)}, {1: (7.0, 7.0)}, {1: (8.0, 8.0)}, {1: (9.0, 9.0)}]


@pytest.mark.parametrize(
    "curve, others, mode, expected",
    [
        # n = 3, k = 1: (1, 1) dominates (2, 2) dominates (3, 3)
        pytest.param(
            {1: (3.0, 3.0)}, vectors({1: (1.0, 1.0)}, {1: (2.0, 2.0)}), ["min", "min"], True, id="third-front"
        ),
        pytest.param(
            {1: (1.5, 1.5)}, vectors({1: (1.0, 1.0)}, {1: (2.0, 2.0)}), ["min", "min"], True, id="second-front"
        ),
        pytest.param(
            {1: (0.5, 3.0)}, vectors({1: (1.0, 1.0)}, {1: (2.0, 2.0)}), ["min", "min"], False, id="on-the-front"
        ),
        pytest.param({1: (1.0, 1.0)}, vectors({1: (1.0, 1.0)}, {1: (2.0, 2.0)}), ["min", "min"], False, id="tie"),
        # "max" objectives are negated: (0.4, 0.95) dominates (0.5, 0.9)
        pytest.param(
            {1: (0.5, 0.9)}, vectors({1: (0.4, 0.95)}, {1: (0.6, 0.8)}), ["min", "max"], True, id="max-dominated"
        ),
        pytest.param(
            {1: (0.3, 0.8)}, vectors({1: (0.4, 0.95)}, {1: (0.6, 0.8)}), ["min", "max"], False, id="max-front"
        ),
        # n = 6, k = 2: front 0 has 4 points; its two extremes (inf) take the places
        pytest.param(
            {1: (1.0, 2.0)}, vectors(*FRONT_AT_1, *DOMINATED_AT_1[:2]), ["min", "min"], True, id="crowded-out"
        ),
        pytest.param(
            {1: (1.0, 2.0)}, vectors(*FRONT_AT_1[::-1], *DOMINATED_AT_1[:2]), ["min", "min"], True, id="order-free"
        ),
        # n = 9, k = 3: the third place goes to the larger crowding distance, 1.5 beats 1.25
        pytest.param({1: (1.0, 2.0)}, vectors(*FRONT_AT_1, *DOMINATED_AT_1), ["min", "min"], False, id="most-isolated"),
        pytest.param(
            {1: (3.0, 1.0)},
            vectors({1: (0.0, 4.0)}, {1: (1.0, 2.0)}, {1: (4.0, 0.0)}, *DOMINATED_AT_1),
            ["min", "min"],
            True,
            id="less-isolated",
        ),
        # At rung 3 each trial stands for its last report at or before step 3, not its best by then.
        pytest.param(
            {1: (1.0, 1.0), 3: (5.0, 5.0)},
            vectors({1: (2.0, 2.0), 3: (2.0, 2.0)}, {1: (3.0, 3.0), 3: (3.0, 3.0)}),
            ["min", "min"],
            True,
            id="rung-3-by-last-report",
        ),
        pytest.param(
            {1: (1.0, 1.0), 3: (1.0, 1.0)},
            vectors({1: (0.0, 0.0), 4: (9.0, 9.0)}, {1: (3.0, 3.0), 3: (3.0, 3.0)}),
            ["min", "min"],
            True,
            id="peer-stands-for-its-report-before-the-rung",
        ),
        pytest.param(
            {2: (9.0, 9.0)}, vectors({1: (0.0, 0.0)}, {1: (0.0, 0.0)}), ["min", "min"], False, id="judged-at-step-2"
        ),
        pytest.param({2: (9.0, 9.0)}, [], ["min", "min"], False, id="alone"),
        pytest.param({1: (NAN, 0.0)}, [], ["min", "min"], True, id="diverged"),
        pytest.param(
            {1: (1.0, 1.0)}, vectors({1: (NAN, 0.0)}, {1: (0.0, NAN)}), ["min", "min"], False, id="nan-peers-left-out"
        ),
        pytest.param(
            {5: (9.0, 9.0)}, vectors({1: (0.0, 0.0)}, {1: (0.0, 0.0)}), ["min", "min"], False, id="no-report-by-a-rung"
        ),
        pytest.param({1: (2.0, 2.0)}, vectors({1: (1.0, 1.0)}), ["min", "min"], True, id="best-while-n-below-eta"),
    ],
)
def test_mo_asha_decisions(curve, others, mode, expected):
    trial = Trial(0, RUN, {}, intermediate_vectors=dict(curve))
    assert MO_ASHA.prune(trial, [trial, *others], directions=mode) is expected


def test_mo_asha_prunes_dominated_trials_of_a_real_study():
    """A 2-objective study with the default pruner: dominated trials stop at the first rung."""
    from lightning_hpo import Float, RandomSampler, Study

    study = Study(
        "mo",
        search_space={"a": Float(0.0, 5.0), "b": Float(0.0, 5.0)},
        mode=["min", "min"],
        storage=":memory:",
        sampler=RandomSampler(seed=0),
    )
    assert isinstance(study.pruner, ASHAPruner)
    stopped_at = {}
    for a, b in [(1.0, 1.0), (0.0, 2.0), (2.0, 2.0), (2.0, 0.0), (3.0, 3.0), (0.0, 0.5)]:
        trial = study.ask({"a": a, "b": b})
        for step in range(1, 10):  # 9 steps: the auto rungs of ASHAPruner() fall at steps 1 and 3
            study.report(trial, step, (a + 1.0 / step, b + 1.0 / step))
            if study.should_prune(trial):
                stopped_at[trial.number] = step
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, (a, b))
    # Trial 2 (2, 2) is dominated by trial 0 and trial 4 (3, 3) by all; trial 5 (0, 0.5) dominates
    # trials 0 and 1, which finished before it, and goes on.
    assert stopped_at == {2: 1, 4: 1}
    assert [t.number for t in study.best_trials] == [3, 5]


@pytest.mark.parametrize(
    "min_resource, max_resource, eta, up_to, expected",
    [
        ("auto", 400, 3, 10_000, [400 / 9, 400 / 3]),
        ("auto", 52, 3, 10_000, [52 / 9, 52 / 3]),
        (100, 2000, 3, 10_000, [100, 300]),
        (100, 900, 3, 10_000, [100, 300]),
        (100, 899, 3, 10_000, [100]),
        (100, None, 3, 1000, [100, 300, 900]),
        (100, None, 3, 299, [100]),
        (5, 20, 2, 100, [5, 10]),
        ("auto", None, 3, 10_000, []),
        ("auto", 1040, 3, 10_000, [1040 / 9, 1040 / 3]),
        ("auto", 1040, 3, 200, [1040 / 9]),
        ("auto", 64, 4, 100, [4.0, 16.0]),
    ],
)
def test_asha_rungs(min_resource, max_resource, eta, up_to, expected):
    kwargs = {} if min_resource == "auto" else {"min_resource": min_resource}
    assert ASHAPruner(**kwargs, reduction_factor=eta).rungs(max_resource=max_resource, up_to=up_to) == pytest.approx(
        expected
    )


@pytest.mark.parametrize(
    "max_resource, grid, expected",
    [
        (400, range(20, 420, 20), [60, 140]),
        (52, range(1, 53), [6, 18]),
        (52, range(4, 53, 4), [8, 20]),
        (52, [26, 52], [26]),
        (52, [52], []),
    ],
)
def test_auto_rungs_move_up_to_a_validation_step(max_resource, grid, expected):
    assert ASHAPruner().rungs(max_resource=max_resource, up_to=10_000, grid=list(grid)) == expected


def test_asha_sequential_study_spends_little_and_keeps_the_best():
    """Trials arriving one by one with random quality: each rung keeps the top third of arrivals."""
    import random

    rng = random.Random(0)
    pruner = ASHAPruner(min_resource=1, max_resource=27, reduction_factor=3)  # rungs 1, 3, 9
    trials: list[Trial] = []
    for number in range(60):
        quality = rng.random()
        curve: dict[int, float] = {}
        state = DONE
        for step in range(1, 28):
            curve[step] = quality + 1.0 / step
            trial = Trial(number, RUN, {}, intermediate_values=dict(curve))
            if pruner.prune(trial, [*trials, trial], directions=["min"]):
                state = CUT
                break
        trials.append(Trial(number, state, {}, intermediate_values=curve))
    reached = [sum(t.last_step >= rung for t in trials) for rung in (1, 3, 9, 27)]
    assert reached[0] == 60 and reached[0] > reached[1] > reached[2] > reached[3] >= 2, reached
    assert all(t.last_step in (1, 3, 9) for t in trials if t.state is CUT)
    best = min(trials, key=lambda t: t.intermediate_values[1])
    assert best.state is DONE
    spent = sum(t.last_step for t in trials)
    assert spent < 0.3 * 60 * 27, spent


# -- HyperbandPruner -------------------------------------------------------------------------


def numbers_in_bracket(pruner: HyperbandPruner, bracket: int, count: int) -> list[int]:
    return [n for n in range(10_000) if pruner.bracket_of(n) == bracket][:count]


@pytest.mark.parametrize(
    "kwargs, n_brackets",
    [
        ({}, 4),
        ({"reduction_factor": 2}, 4),
        ({"min_resource": 10, "max_resource": 270}, 4),
        ({"min_resource": 10, "max_resource": 269}, 3),
        ({"min_resource": 10, "max_resource": 10}, 1),
        ({"min_resource": 1, "max_resource": 16, "reduction_factor": 2}, 5),
    ],
)
def test_hyperband_brackets(kwargs, n_brackets):
    pruner = HyperbandPruner(**kwargs)
    assert pruner.n_brackets == n_brackets
    counts = Counter(pruner.bracket_of(n) for n in range(20_000))
    eta = pruner.reduction_factor
    shares = [math.ceil(n_brackets * eta ** (n_brackets - 1 - b) / (n_brackets - b)) for b in range(n_brackets)]
    for bracket, share in enumerate(shares):
        assert counts[bracket] / 20_000 == pytest.approx(share / sum(shares), abs=0.01)


def test_hyperband_seed_reshuffles_brackets_in_the_same_proportions():
    first, second = HyperbandPruner(seed=0), HyperbandPruner(seed=1)
    draws = [[p.bracket_of(n) for n in range(5000)] for p in (first, second)]
    assert draws[0] != draws[1]
    for bracket in range(4):
        assert draws[0].count(bracket) == pytest.approx(draws[1].count(bracket), rel=0.1)


def test_hyperband_bracket_is_the_same_in_every_process():
    """The bracket comes from CRC32, not Python's per-process salted hash()."""
    pruner = HyperbandPruner()
    here = [pruner.bracket_of(n) for n in range(50)]
    code = (
        "from lightning_hpo.pruners import HyperbandPruner as H; p = H(); print([p.bracket_of(n) for n in range(50)])"
    )
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert out.stdout.strip() == str(here)


def test_hyperband_compares_only_within_a_bracket():
    pruner = HyperbandPruner(min_resource=10, max_resource=270)  # bracket 0: rungs 10, 30, 90
    judged, *same = numbers_in_bracket(pruner, 0, 3)
    other = numbers_in_bracket(pruner, 1, 2)

    def with_numbers(numbers, values):
        return [Trial(n, DONE, {}, intermediate_values={10: v}) for n, v in zip(numbers, values, strict=True)]

    good_elsewhere = with_numbers(other, [0.1, 0.2])
    assert decide(pruner, {10: 0.9}, good_elsewhere, number=judged) is False
    assert decide(pruner, {10: 0.9}, with_numbers(same, [0.1, 0.2]), number=judged) is True


@pytest.mark.parametrize("bracket, pruned_at", [(0, 10), (1, 30), (2, 90), (3, None)])
def test_hyperband_bracket_skips_its_lowest_rungs(bracket, pruned_at):
    pruner = HyperbandPruner(min_resource=10, max_resource=270)
    judged, *peers = numbers_in_bracket(pruner, bracket, 6)
    others = [Trial(n, DONE, {}, intermediate_values={s: 0.1 for s in (10, 30, 90, 270)}) for n in peers]
    steps = (10, 30, 90, 270)
    first_pruned = next(
        (step for step in steps if decide(pruner, {s: 0.9 for s in steps if s <= step}, others, number=judged)), None
    )
    assert first_pruned == pruned_at


def test_hyperband_auto_waits_for_a_complete_trial():
    pruner = HyperbandPruner()
    judged, *peers = numbers_in_bracket(pruner, 0, 4)
    curves = [{s: 0.1 for s in range(1, 28)} for _ in peers]
    running = [Trial(n, RUN, {}, intermediate_values=c) for n, c in zip(peers, curves, strict=True)]
    complete = [Trial(n, DONE, {}, intermediate_values=c) for n, c in zip(peers, curves, strict=True)]
    assert decide(pruner, {1: 0.9}, running, number=judged) is False
    assert decide(pruner, {1: 0.9}, complete, number=judged) is True  # first auto rung: 27 / 27


def planned(number: int, curve: Mapping[int, float], state: TrialState = RUN, steps: int = 90) -> Trial:
    """A trial whose Trainer planned ``steps`` steps (its max_epochs, stored as training started)."""
    return Trial(number, state, {}, intermediate_values=dict(curve), attrs={"planned_steps": steps})


@pytest.mark.parametrize(
    "curve, steps, others, expected",
    [
        # Rungs at 90 / 9 = 10 and 90 / 3 = 30 from the first trials on, no COMPLETE trial needed.
        pytest.param(
            {10: 0.9}, 90, [planned(1, {10: 0.1}), planned(2, {10: 0.2})], True, id="first-rung-at-max-over-9"
        ),
        pytest.param({10: 0.05}, 90, [planned(1, {10: 0.1}), planned(2, {10: 0.2})], False, id="top-third-goes-on"),
        pytest.param({9: 0.9}, 90, [planned(1, {10: 0.1}), planned(2, {10: 0.2})], False, id="before-the-first-rung"),
        # Without a COMPLETE trial, a rung moves up to the trial's own next validation: 10 -> 12.
        pytest.param({6: 0.9, 12: 0.9}, 90, [planned(1, {12: 0.1}), planned(2, {12: 0.2})], True, id="own-grid"),
        # The planned length wins over a short COMPLETE trial (e.g. stopped early at step 30).
        pytest.param(
            {10: 0.9},
            900,
            [planned(1, {10: 0.1, 30: 0.1}, DONE), planned(2, {10: 0.2, 30: 0.1}, DONE)],
            False,
            id="planned-length-over-short-complete-trial",
        ),
    ],
)
def test_asha_auto_rungs_follow_the_trials_planned_steps(curve, steps, others, expected):
    trial = planned(0, curve, steps=steps)
    assert ASHAPruner().prune(trial, [trial, *others], directions=["min"]) is expected


def test_hyperband_auto_rungs_follow_the_trials_planned_steps():
    pruner = HyperbandPruner()
    judged, *peers = numbers_in_bracket(pruner, 0, 4)
    running = [planned(n, {s: 0.1 for s in range(1, 28)}, steps=27) for n in peers]
    trial = planned(judged, {1: 0.9}, steps=27)
    assert pruner.prune(trial, [trial, *running], directions=["min"]) is True  # first auto rung: 27 / 27


# -- ThresholdPruner and PatientPruner -------------------------------------------------------


@pytest.mark.parametrize(
    "pruner, curve, expected",
    [
        (ThresholdPruner(upper=10.0), {0: 2.3, 5: 9.9}, False),
        (ThresholdPruner(upper=10.0), {0: 2.3, 5: 10.1}, True),
        (ThresholdPruner(upper=10.0), {0: 2.3, 5: math.inf}, True),
        (ThresholdPruner(upper=10.0), {0: 2.3, 5: NAN}, True),
        (ThresholdPruner(), {0: NAN}, True),
        (ThresholdPruner(), {0: NAN, 5: 1.0}, False),
        (ThresholdPruner(upper=10.0), {0: 11.0, 5: 1.0}, False),
        (ThresholdPruner(lower=0.5), {0: 0.6, 5: 0.4}, True),
        (ThresholdPruner(lower=0.5), {0: 0.6, 5: -math.inf}, True),
        (ThresholdPruner(lower=0.5, upper=1.0), {0: 0.7}, False),
        (ThresholdPruner(upper=1.0, n_warmup_steps=10), {5: NAN}, False),
        (ThresholdPruner(upper=1.0, n_warmup_steps=10), {5: 0.1, 10: 5.0}, True),
        (ThresholdPruner(upper=1.0, interval_steps=10), {0: 0.1, 5: 5.0}, False),
        (ThresholdPruner(), {}, False),
    ],
)
def test_threshold_decisions(pruner, curve, expected):
    assert decide(pruner, curve, []) is expected


class AlwaysPrune(Pruner):
    """Says yes to everything: shows when PatientPruner consults its wrapped pruner."""

    def prune(self, trial, trials, *, directions):
        return True


@pytest.mark.parametrize(
    "pruner, curve, mode, expected",
    [
        (PatientPruner(None, patience=2), {0: 1.0, 1: 0.9, 2: 0.8, 3: 0.7}, "min", False),
        (PatientPruner(None, patience=2), {0: 1.0, 1: 0.5, 2: 0.6, 3: 0.5}, "min", True),
        (PatientPruner(None, patience=2), {0: 1.0, 1: 0.5, 2: 0.6, 3: 0.49}, "min", False),
        (PatientPruner(None, patience=2, min_delta=0.05), {0: 1.0, 1: 0.5, 2: 0.6, 3: 0.49}, "min", True),
        (PatientPruner(None, patience=2), {0: 1.0, 1: 1.5}, "min", False),
        (PatientPruner(None, patience=1), {0: 1.0, 1: 1.0}, "min", True),
        (PatientPruner(None, patience=1), {0: 1.0, 1: 0.9}, "min", False),
        (PatientPruner(None, patience=1), {0: 0.5, 1: 0.6, 2: 0.7}, "max", False),
        (PatientPruner(None, patience=1), {0: 0.7, 1: 0.6, 2: 0.7}, "max", True),
        (PatientPruner(None, patience=1), {0: 1.0, 1: NAN, 2: NAN}, "min", True),
        (PatientPruner(None, patience=2), {0: NAN, 1: 1.0, 2: 2.0}, "min", False),
        (PatientPruner(NopPruner(), patience=1), {0: 1.0, 1: 2.0, 2: 2.0}, "min", False),
        (PatientPruner(AlwaysPrune(), patience=1), {0: 1.0, 1: 2.0, 2: 2.0}, "min", True),
        (PatientPruner(AlwaysPrune(), patience=1), {0: 1.0, 1: 2.0, 2: 0.5}, "min", False),
    ],
)
def test_patient_decisions(pruner, curve, mode, expected):
    assert decide(pruner, curve, [], mode) is expected


@pytest.mark.parametrize(
    "pruner, can_prune",
    [
        (NopPruner(), False),
        (PatientPruner(NopPruner(), patience=2), False),
        (PatientPruner(None, patience=2), True),
        (PatientPruner(MedianPruner(), patience=2), True),
        (MedianPruner(), True),
        (ASHAPruner(), True),
        (HyperbandPruner(), True),
        (ThresholdPruner(upper=1.0), True),
        (AlwaysPrune(), True),
    ],
)
def test_can_prune_is_false_only_for_pruners_that_never_prune(pruner, can_prune):
    assert pruner.can_prune is can_prune


class CountingStorage(SQLStorage):
    """A SQLite storage that counts the reads of a study's trials."""

    reads = 0

    def get_trials(self, study_id, states=None):
        self.reads += 1
        return super().get_trials(study_id, states)


@pytest.mark.parametrize("pruner, reads", [(NopPruner(), 0), (MedianPruner(), 1)])
def test_a_study_reads_no_history_to_ask_a_pruner_that_never_prunes(tmp_path, pruner, reads):
    storage = CountingStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    study = Study(
        "s", search_space={"x": Float(0.0, 1.0)}, storage=storage, sampler=SobolSampler(seed=0), pruner=pruner
    )
    trial = study.ask()
    study.report(trial, 1, 0.5)
    before = storage.reads
    assert study.should_prune(trial) is False
    assert storage.reads - before == reads


# -- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: PercentilePruner(101.0), InvalidArgumentError, r"0 <= percentile <= 100.*101"),
        (lambda: PercentilePruner("50"), ArgumentTypeError, "percentile"),
        (lambda: MedianPruner(n_warmup_steps=-1), InvalidArgumentError, r"n_warmup_steps >= 0.*-1"),
        (lambda: MedianPruner(interval_steps=0), InvalidArgumentError, r"interval_steps >= 1"),
        (lambda: MedianPruner(n_startup_trials=2.0), ArgumentTypeError, r"n_startup_trials.*int.*float"),
        (lambda: ASHAPruner(min_resource=0), InvalidArgumentError, r"min_resource >= 1.*0"),
        (lambda: ASHAPruner(min_resource="max"), ArgumentTypeError, r"'auto' or an int.*'max'"),
        (lambda: ASHAPruner(reduction_factor=1), InvalidArgumentError, r"reduction_factor >= 2.*1"),
        (
            lambda: ASHAPruner(min_resource=100, max_resource=10),
            InvalidArgumentError,
            r"min_resource <= max_resource.*100.*10",
        ),
        (lambda: HyperbandPruner(min_resource=10), InvalidArgumentError, r"explicit max_resource"),
        (lambda: HyperbandPruner(max_resource=True), ArgumentTypeError, "max_resource"),
        (lambda: HyperbandPruner(seed=-1), InvalidArgumentError, r"seed >= 0"),
        (lambda: ThresholdPruner(lower=2.0, upper=1.0), InvalidArgumentError, r"lower <= upper"),
        (lambda: ThresholdPruner(upper=NAN), InvalidArgumentError, "nan"),
        (lambda: ThresholdPruner(upper="10"), ArgumentTypeError, "upper"),
        (lambda: PatientPruner(MedianPruner, patience=1), ArgumentTypeError, "wrapped"),
        (lambda: PatientPruner(None, patience=0), InvalidArgumentError, r"patience >= 1.*0"),
        (lambda: PatientPruner(None, patience=1, min_delta=-0.1), InvalidArgumentError, r"min_delta >= 0"),
    ],
)
def test_invalid_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("pruner", [MedianPruner(), HyperbandPruner(), PatientPruner(None, patience=1)])
def test_single_objective_pruners_refuse_multi_objective_and_name_the_one_that_works(pruner):
    trial = Trial(0, RUN, {}, intermediate_values={1: 1.0, 2: 1.0, 3: 1.0})
    with pytest.raises(
        InvalidArgumentError, match=r"judges one objective, but the study has 2: use ASHAPruner \(the default\)"
    ):
        pruner.prune(trial, [trial], directions=["min", "max"])


def test_docstring_examples():
    for module in (
        lightning_hpo.pruners._base,
        lightning_hpo.pruners._percentile,
        lightning_hpo.pruners._successive_halving,
        lightning_hpo.pruners._hyperband,
        lightning_hpo.pruners._threshold,
        lightning_hpo.pruners._patient,
    ):
        failures, tried = doctest.testmod(module)
        assert failures == 0 and tried > 0, module.__name__


# -- with real studies, a real Tuner, and DDP --------------------------------------------------


def test_two_workers_on_one_database_take_the_same_decisions(tmp_path):
    """Decisions come from storage alone: a second Study handle on the same file agrees at every report."""
    from lightning_hpo import Float, Study

    url = f"sqlite:///{tmp_path / 'studies.db'}"

    def handle() -> Study:
        pruner = HyperbandPruner(min_resource=1, max_resource=27)
        return Study("s", search_space={"x": Float(0.0, 1.0)}, storage=url, pruner=pruner, seed=0)

    worker, observer = handle(), handle()
    decisions = []
    for _ in range(20):
        trial = worker.ask()
        quality = trial.params["x"]
        for step in range(1, 28):
            worker.report(trial, step, quality + 1.0 / step)
            prune = worker.should_prune(trial)
            assert observer.should_prune(trial.number) is prune
            if prune:
                break
        decisions.append(prune)
        worker.tell(trial, state=TrialState.PRUNED if prune else TrialState.COMPLETE)
    pruned = [t for t in worker.trials if t.state is CUT]
    assert 0 < len(pruned) == sum(decisions) < 20
    assert all(t.value == min(t.intermediate_values.values()) for t in pruned)


@pytest.mark.slow
def test_tuner_prunes_with_asha_and_keeps_the_pruned_trials_record():
    """A real Tuner: pruned trials end PRUNED at a rung, with their values, checkpoint and pruned step."""
    from lightning_hpo import Float, Tuner
    from tests.lightning_models import LinearRegression, RegressionData

    tuner = Tuner(
        LinearRegression,
        search_space={"lr": Float(1e-4, 0.3, log=True)},
        datamodule=RegressionData(batch_size=16),  # 8 steps per epoch
        trainer_kwargs={"max_epochs": 6, "accelerator": "cpu", "logger": False},
        pruner=ASHAPruner(min_resource=8, max_resource=48, reduction_factor=2),  # rungs 8 and 16
        seed=0,
        keep_checkpoints="all",  # every trial's checkpoint is checked below
    )
    result = tuner.fit(n_trials=6)
    states = Counter(t.state for t in result.trials)
    assert states[CUT] >= 1 and states[DONE] >= 2 and states[FAIL] == 0, states
    for trial in result.trials:
        assert trial.checkpoint_path is not None and os.path.isfile(trial.checkpoint_path)
        if trial.state is CUT:
            assert trial.attrs["pruned_step"] == trial.last_step in (8, 16)
            assert trial.value == min(trial.intermediate_values.values())
        else:
            assert trial.last_step == 48 and "pruned_step" not in trial.attrs
    assert result.best_trial.state is DONE


@pytest.mark.parametrize(
    "trainer_kwargs, steps",
    [
        pytest.param({"max_epochs": 8}, [4, 8, 12, 16], id="every-epoch"),
        pytest.param({"max_epochs": 8, "val_check_interval": 0.5}, [2, 4, 6, 8], id="twice-per-epoch"),
        pytest.param({"max_epochs": 16, "check_val_every_n_epoch": 2}, [8, 16, 24, 32], id="every-second-epoch"),
        pytest.param(
            {"max_epochs": -1, "max_steps": 20, "val_check_interval": 3}, [3, 7, 11, 15], id="every-3-batches-max-steps"
        ),
    ],
)
def test_pruned_trial_stops_right_after_the_pruning_validation(trainer_kwargs, steps):
    """Whatever the validation frequency, training ends at the step whose report was pruned."""
    import lightning.pytorch as pl

    from lightning_hpo import Float, Study, TrialReporter
    from tests.lightning_models import ScriptedModule

    study = Study("s", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", pruner=ThresholdPruner(upper=1.0))
    reporter = TrialReporter(study, study.ask(), "val_loss")
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        callbacks=[reporter],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(ScriptedModule([0.5, 0.4, 0.3, 5.0, 0.2, 0.1]))
    assert [step for step, _ in reporter.reported] == steps
    assert reporter.pruned_step == trainer.global_step == steps[-1]
    assert sorted(study.trials[0].intermediate_values) == steps


DDP_SCRIPT = r"""
import json, os, sys
import lightning.pytorch as pl
import torch
from lightning_hpo import Float, Study, ThresholdPruner, TrialReporter, TrialState
from tests.lightning_models import ScriptedModule

rank = int(os.environ["RANK"])
study = trial = None
if rank == 0:
    space = {"x": Float(0.0, 1.0)}
    study = Study("ddp", search_space=space, storage=sys.argv[1], pruner=ThresholdPruner(upper=1.0), seed=0)
    trial = study.ask()
reporter = TrialReporter(study, trial, "val_loss")
trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=8, callbacks=[reporter], logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
trainer.fit(ScriptedModule([0.5, 0.4, 0.3, 5.0, 0.2, 0.1, 0.1, 0.1]))
if rank == 0:
    study.storage.update_trial(trial.id, attrs={"pruned_step": reporter.pruned_step})
    study.tell(trial, state=TrialState.PRUNED)
with open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w") as f:
    outcome = {"global_step": trainer.global_step, "pruned_step": reporter.pruned_step, "reported": reporter.reported}
    json.dump(outcome, f)
# A gloo group still alive at interpreter exit can abort the process (pytorch/pytorch#179291).
torch.distributed.destroy_process_group()
"""


@pytest.mark.slow
def test_ddp_ranks_stop_at_the_same_step(tmp_path):
    """torchrun, 2 CPU processes: rank 0 decides from storage, both ranks stop after the same validation."""
    from lightning_hpo import Float, Study

    script = tmp_path / "ddp_trial.py"
    script.write_text(DDP_SCRIPT)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        url,
        str(tmp_path),
    ]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    steps_per_epoch = 2  # 8 samples, batch 2, split over 2 ranks
    assert ranks[0] == ranks[1]
    assert ranks[0]["pruned_step"] == ranks[0]["global_step"] == 4 * steps_per_epoch
    assert [v for _, v in ranks[0]["reported"]] == pytest.approx([0.5, 0.4, 0.3, 5.0])  # float32 metrics

    (trial,) = Study("ddp", search_space={"x": Float(0.0, 1.0)}, storage=url).trials
    assert trial.state is CUT and trial.attrs["pruned_step"] == 8
    assert trial.intermediate_values == pytest.approx({2: 0.5, 4: 0.4, 6: 0.3, 8: 5.0})
    assert trial.value == pytest.approx(0.3)
