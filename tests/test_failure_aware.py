"""Failure kinds, the consecutive-failure rule, and the GPSampler that learns where trials fail."""

from __future__ import annotations

import pytest
import torch

from lightning_hpo import Float, GPSampler, SearchSpace, SobolSampler, Study, TrialState
from lightning_hpo._failures import failure_kind, should_stop
from lightning_hpo.exceptions import ConstraintViolated, InvalidArgumentError, TrialsFailingError, TrialTimeoutError
from lightning_hpo.samplers._gp_feasibility import failure_outcome, with_imputed_values
from lightning_hpo.samplers.uniform import sobol_point
from lightning_hpo.trial import CONSTRAINT_VIOLATIONS, FAIL_KIND, Trial


def _raised(error: BaseException) -> BaseException:
    """``error`` as raised, with its traceback and context."""
    try:
        raise error
    except BaseException as raised:  # noqa: BLE001
        return raised


def _wrapped_oom() -> BaseException:
    try:
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        except torch.OutOfMemoryError as oom:
            raise RuntimeError("the training step failed") from oom
    except RuntimeError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "error,kind",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"), "oom"),
        (RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"), "oom"),
        (MemoryError(), "oom"),
        (_wrapped_oom(), "oom"),
        (FloatingPointError("overflow"), "nan"),
        (ValueError("The loss is nan at step 12"), "nan"),
        (ValueError("expected 3 channels"), "error"),
        (ImportError("No module named 'apex'"), "error"),
        (TrialTimeoutError("too slow"), "error"),
        (ConstraintViolated("n_params too large", {"n_params": 1e9}), "infeasible"),
        (InvalidArgumentError("monitor not logged"), "infrastructure"),
        (KeyboardInterrupt(), "interrupted"),
        (SystemExit(1), "interrupted"),
    ],
)
def test_failure_kind_of_an_exception(error, kind):
    assert failure_kind(_raised(error)) == kind


def _failed(number: int, kind: str, error: str = "Traceback...\nValueError: boom") -> Trial:
    return Trial(number=number, state=TrialState.FAIL, params={}, error=error, attrs={FAIL_KIND: kind})


SAME = [_failed(i, "error") for i in range(5)]
DIFFERENT = [_failed(i, "error", f"Traceback...\nValueError: boom {i}") for i in range(5)]
OOM = [_failed(i, "oom", "Traceback...\nMemoryError: out of memory") for i in range(5)]


@pytest.mark.parametrize(
    "streak,limit,succeeded,stop",
    [
        (SAME[:4], 5, False, False),  # not yet max_consecutive_failures
        (SAME, 5, False, True),  # nothing worked in this run
        (SAME, None, False, False),  # None: never
        (SAME, 5, True, True),  # the same error every time, though earlier trials worked
        (DIFFERENT, 5, True, False),  # configuration-dependent errors: the sampler learns
        (OOM, 5, True, False),  # out of memory depends on the configuration by nature
        (OOM * 10, 5, True, True),  # 10 x limit in a row: nothing left to learn
        ([*DIFFERENT[:4], _failed(9, "stale")], 5, True, True),  # not the configuration's fault
    ],
)
def test_when_failures_in_a_row_end_the_study(streak, limit, succeeded, stop):
    assert should_stop(streak, limit=limit, succeeded_in_run=succeeded) is stop


def test_the_same_failure_every_time_stops_with_its_traceback():
    study = Study("typo", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", sampler=SobolSampler(seed=0))

    def objective(params):
        import lightning_hpo_no_such_module  # noqa: F401

    with pytest.raises(TrialsFailingError, match=r"(?s)5 trials in a row.*same way.*Traceback.*objective"):
        study.optimize(objective, n_trials=10)
    assert [t.fail_kind for t in study.trials] == ["error"] * 5


def test_failure_kinds_are_stored_and_told():
    study = Study("kinds", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", sampler=SobolSampler(seed=0))
    outcomes = iter([float("nan"), MemoryError("out of memory"), 0.5])

    def objective(params):
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    study.optimize(objective, n_trials=1)
    assert [(t.state, t.fail_kind) for t in study.trials] == [
        (TrialState.FAIL, "nan"),
        (TrialState.FAIL, "oom"),
        (TrialState.COMPLETE, None),
    ]
    trial = study.ask()
    study.tell(trial, state=TrialState.FAIL, error="the node died", fail_kind="infrastructure")
    assert study.get_trial(trial.number).fail_kind == "infrastructure"
    with pytest.raises(InvalidArgumentError, match=r"`fail_kind` must be one of error, oom, .* got 'bogus'"):
        study.tell(study.ask(), state=TrialState.FAIL, fail_kind="bogus")


def _corner(params: dict[str, float]) -> float:
    """A bowl whose minimum (0.5, 0.5) borders a corner that runs out of memory."""
    if params["x"] > 0.6 and params["y"] > 0.6:
        raise torch.OutOfMemoryError("CUDA out of memory")
    return (params["x"] - 0.5) ** 2 + (params["y"] - 0.5) ** 2


@pytest.mark.slow
def test_gp_learns_the_failing_corner_and_the_study_goes_on():
    study = Study(
        "corner",
        search_space={"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)},
        storage=":memory:",
        sampler=GPSampler(seed=0, n_startup_trials=5),
    )
    study.optimize(_corner, n_trials=10)
    gp_phase = [t for t in study.trials if t.number >= 5]
    failures = [t for t in gp_phase if t.state is TrialState.FAIL]
    assert {t.fail_kind for t in failures} <= {"oom"}
    assert len(failures) <= len(gp_phase) // 3
    assert study.best_trial.value < 0.01


def test_only_failures_that_are_the_configurations_fault_inform_the_gp():
    space = SearchSpace.coerce({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    done = [
        Trial(number=i, state=TrialState.COMPLETE, params=space.decode(sobol_point(2, 0, i)), values=(float(i % 3),))
        for i in range(6)
    ]

    def suggest(kind: str | None = None) -> dict:
        failed = [Trial(number=6, state=TrialState.FAIL, params={"x": 0.9, "y": 0.1}, attrs={FAIL_KIND: kind})]
        history = done + (failed if kind else [])
        return GPSampler(seed=0, n_startup_trials=5).sample(space, history, number=7, directions=["min"])

    plain = suggest()
    assert suggest("interrupted") == suggest("stale") == suggest("infrastructure") == plain
    assert suggest("oom") != plain  # the failure GP weights the acquisition around it


def test_failed_points_are_valued_like_their_nearest_observed_neighbour_or_by_rank():
    space = SearchSpace.coerce({"x": Float(0.0, 1.0)})
    observed = [
        Trial(number=i, state=TrialState.COMPLETE, params={"x": i / 4}, values=(float(i), -float(i))) for i in range(5)
    ]
    failed = [Trial(number=9, state=TrialState.FAIL, params={"x": 0.7}, attrs={FAIL_KIND: "oom"})]

    def imputed(rule: str, directions=("min", "max")) -> tuple:
        (trial,) = with_imputed_values(failed, observed, directions, space, rule)
        assert (trial.number, trial.state, trial.params) == (9, TrialState.COMPLETE, {"x": 0.7})
        return trial.values

    assert imputed("nearest") == (3.0, -3.0)  # x = 0.75
    assert imputed("worst") == (4.0, -4.0)
    assert imputed("worst", ("max", "min")) == (0.0, 0.0)
    assert imputed("median") == (2.0, -2.0)
    assert imputed("p75") == (3.0, -3.0)
    assert with_imputed_values(failed, [], ["min"], space, "nearest") == []


def test_posterior_values_follow_the_observed_neighbourhood_within_the_observed_range():
    space = SearchSpace.coerce({"x": Float(0.0, 1.0)})
    observed = [
        Trial(number=i, state=TrialState.COMPLETE, params={"x": i / 4}, values=(float(i), -float(i))) for i in range(5)
    ]
    failed = [
        Trial(number=9 + i, state=TrialState.FAIL, params={"x": x}, attrs={FAIL_KIND: "oom"})
        for i, x in enumerate([0.05, 0.95])
    ]
    near_best, near_worst = (
        t.values for t in with_imputed_values(failed, observed, ["min", "max"], space, "posterior")
    )
    # Each objective in its own direction ("max" of the negated values mirrors "min").
    assert near_best[0] == pytest.approx(-near_best[1]) and near_worst[0] == pytest.approx(-near_worst[1])
    # A failure next to the best observation is valued close to it (no better), one next to the worst
    # close to that (no worse); the rule with the median cap values neither better than the median.
    assert 0.0 <= near_best[0] < 2.0 < near_worst[0] <= 4.0
    capped = with_imputed_values(failed, observed, ["min", "max"], space, "posterior_median")
    assert [t.values[0] for t in capped] == [pytest.approx(max(2.0, near_best[0])), pytest.approx(near_worst[0])]


def test_whether_a_trial_failed_is_an_outcome_of_its_own():
    observed = [Trial(number=i, state=TrialState.COMPLETE, params={}, values=(0.0,)) for i in range(3)]
    oom = Trial(number=3, state=TrialState.FAIL, params={}, attrs={FAIL_KIND: "oom"})
    early = Trial(
        number=4, state=TrialState.FAIL, params={}, attrs={FAIL_KIND: "infeasible", CONSTRAINT_VIOLATIONS: {"n": 1.0}}
    )
    imputed = with_imputed_values([oom, early], observed, ["min"], SearchSpace.coerce({"x": Float(0.0, 1.0)}), "worst")
    outcome = failure_outcome(observed + imputed, [oom, early])
    # The imputed copies count as failed; a trial stopped by a broken constraint is that constraint's.
    assert [t.number for t in outcome.trials] == [0, 1, 2, 3]
    assert outcome.values == [-1.0, -1.0, -1.0, 1.0]
    assert failure_outcome(observed, []) is None
    assert failure_outcome(observed, [early]) is None


@pytest.mark.slow
def test_gp_finds_an_optimum_on_the_edge_of_a_failing_region_without_crossing_it_again_and_again():
    # The larger x the better, up to 0.6 where trials run out of memory: the best configuration is
    # the largest that fits, as with a model's width. Without the chance constraint, the failure
    # GP's weight alone keeps proposing x well past 0.6 here (benchmarks/CONSTRAINTS.md); with it
    # the GP probes the edge and stays out of the failing region.
    study = Study(
        "edge", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", sampler=GPSampler(seed=0, n_startup_trials=5)
    )
    for _ in range(15):
        trial = study.ask()
        if trial.params["x"] > 0.6:
            study.tell(trial, state=TrialState.FAIL, error="CUDA out of memory", fail_kind="oom")
        else:
            study.tell(trial, -trial.params["x"])
    proposed_by_gp = [t.params["x"] for t in study.trials[5:] if t.state is TrialState.FAIL]
    once_seen = proposed_by_gp[2:]  # the GP's failures after its first two taught it the region
    assert once_seen and all(x < 0.65 for x in once_seen)
    assert study.best_trial.params["x"] > 0.595


def test_failure_models_differ_only_where_configurations_failed():
    space = SearchSpace.coerce({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    done = [
        Trial(number=i, state=TrialState.COMPLETE, params=space.decode(sobol_point(2, 0, i)), values=(float(i % 3),))
        for i in range(6)
    ]
    failed = [Trial(number=6, state=TrialState.FAIL, params={"x": 0.9, "y": 0.1}, attrs={FAIL_KIND: "oom"})]
    worst_value = type("WorstValue", (GPSampler,), {"_failure_imputation": "worst", "_failure_weighting": False})

    def suggest(sampler_class: type, history: list) -> dict:
        return sampler_class(seed=0, n_startup_trials=5).sample(space, history, number=7, directions=["min"])

    assert suggest(worst_value, done) == suggest(GPSampler, done)
    assert suggest(worst_value, done + failed) != suggest(GPSampler, done + failed)
