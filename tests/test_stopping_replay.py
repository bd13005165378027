"""benchmarks/stopping_replay.py: a recorded run holds what a bound needs, and the replay recomputes
the stopper's own bound from it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from benchmarks.stopping import main as stopping_main
from benchmarks.stopping import problem, run
from benchmarks.stopping_replay import VARIANTS, Replayed, pieces, smooth_divisor, stop_of
from lightning_hpo.space import SearchSpace
from lightning_hpo.stopping import FULL_BETA_TRIALS


def test_a_recorded_run_replays_the_stoppers_own_bound() -> None:
    recorded = run("branin", seed=0, budget=12, repeats=3, min_trials=10)
    assert len(recorded.params) == 12 and all(len(values) == 3 for values in recorded.repeat_values)
    assert recorded.observed == [statistics.mean(values) for values in recorded.repeat_values]
    space = SearchSpace.coerce(problem("branin", 0).space)
    n, bound, noise = recorded.checks[0]
    replayed = pieces(space, recorded.params[:n], recorded.repeat_values[:n], seed=0)
    # The stopper's bound (what RegretBoundStopper.measure returned during the run), from the record alone:
    # before FULL_BETA_TRIALS trials, with the undivided beta.
    assert n < FULL_BETA_TRIALS
    assert replayed["bound:gp:b"] * replayed["slope_top"] == pytest.approx(bound, rel=1e-9)
    assert replayed["spread"] == pytest.approx(noise)
    # Variants' pieces: the undivided beta widens the bound, known noise and shorter lengthscales change it.
    assert replayed["bound:gp:b"] > replayed["bound:gp:b/5"] > 0


def test_record_only_skips_the_stopper_and_keeps_the_trials(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    argv = ["--tasks", "branin", "--seeds", "1", "--budget", "6", "--min-trials", "4", "--record-only"]
    assert stopping_main([*argv, "--runs", str(runs)]) == 0
    (record,) = [json.loads(line) for line in runs.read_text().splitlines()]
    assert record["checks"] == [] and record["stop_at"] is None
    assert record["settings"]["record_only"] == 1
    assert len(record["params"]) == 6 and set(record["params"][0]) == {"x0", "x1"}
    assert stopping_main([*argv, "--runs", str(runs)]) == 0  # resumed: nothing rerun
    assert len(runs.read_text().splitlines()) == 1
    # A hold-out set: other seeds into another file.
    holdout = tmp_path / "holdout.jsonl"
    assert stopping_main([*argv, "--first-seed", "3", "--runs", str(holdout)]) == 0
    (record,) = [json.loads(line) for line in holdout.read_text().splitlines()]
    assert record["seed"] == 3


def _replayed(ratios: dict[int, float], n_params: int = 2, observed: list[float] | None = None) -> Replayed:
    """A run whose bound / spread is ``ratios[n]`` at check ``n`` (bound pieces only, no GP); its best value
    improves by 1 (the spread) at every trial unless ``observed`` says otherwise."""
    checks = {
        n: {
            "bound:gp:b/5": ratio,
            "bound:gp:b": 5**0.5 * ratio,
            "bound:gp:smooth": (5 / smooth_divisor(n)) ** 0.5 * ratio,
            "slope_top": 1.0,
            "spread": 1.0,
        }
        for n, ratio in ratios.items()
    }
    observed = observed or [float(100 - i) for i in range(100)]
    return Replayed("t", 0, n_params, 100, observed, observed, 1.0, 1.0, checks, {}, None)


def test_variants_stop_at_the_first_check_their_rule_accepts() -> None:
    run_ = _replayed({20: 0.9, 24: 0.3, 28: 0.4})
    stopper_now, min_trials = VARIANTS["stopper before (GP noise, beta/5, top-quarter slope)"]
    assert stop_of(run_, stopper_now, min_trials) == 20
    undivided, min_trials = VARIANTS["undivided beta"]
    assert stop_of(run_, undivided, min_trials) == 24  # sqrt(5) x 0.3 < 1
    later, min_trials = VARIANTS["min_trials = max(20, 10 x params), beta/5"]
    assert stop_of(_replayed({20: 0.9, 24: 0.3, 28: 0.4}, n_params=3), later, min_trials) is None  # waits for 30
    # The regret it costs: the noiseless value of the best at the stop minus the best after the budget.
    assert run_.cost(20) == 81.0 - 1.0 and run_.cost(None) == 0.0


def test_rules_on_evidence_the_bound_ignores() -> None:
    # The stopper's bound below the noise from trial 30 on (beta / 5), above it before (the undivided beta).
    ratios = {n: 0.5 for n in range(20, 101)}
    stopper_now, min_trials = VARIANTS["undivided beta before trial 30, beta/5 after (the stopper now)"]
    stagnant, _ = VARIANTS["stopper now + best improved <= noise in the last max(10, t/3)"]
    # A best that keeps improving by the noise at every trial: the bound alone stops, the combined rule never.
    assert stop_of(_replayed(ratios), stopper_now, min_trials) == 30
    assert stop_of(_replayed(ratios), stagnant, min_trials) is None
    # A best that improves by the noise at every trial up to trial 40 and never after: it stops once the
    # last max(10, t/3) trials hold at most one noise's improvement (trials 40-58: 58 - 58 // 3 = 39).
    plateau = [float(100 - i) for i in range(40)] + [61.0] * 60
    assert stop_of(_replayed(ratios, observed=plateau), stagnant, min_trials) == 58
    # Patience: the bound below the noise at the last 3 checks, here trials 34-36.
    patient, _ = VARIANTS["stopper now, below the noise at the last 3 checks"]
    wobbly = {**ratios, 31: 1.5, 33: 1.5}
    assert stop_of(_replayed(wobbly), stopper_now, min_trials) == 30
    assert stop_of(_replayed(wobbly), patient, min_trials) == 36
    # The smooth schedule: beta divided by 1.2 at trial 21 (bound 0.5 x sqrt(5 / 1.2) > 1), by 1.4 at 22.
    smooth, _ = VARIANTS["smooth beta (divisor 1 -> 5 over trials 20-40)"]
    assert smooth_divisor(20) == 1.0 and smooth_divisor(22) == pytest.approx(1.4) and smooth_divisor(45) == 5.0
    assert stop_of(_replayed(ratios), smooth, min_trials) == 22
