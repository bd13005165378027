"""GPSampler: the model-side view of a space, and the sampler's contract, on the CPU (and on the
GPU too, when the GPU check runs them).

BoTorch's optimizers are capped with ``mock_optimize_context_manager`` (two L-BFGS-B steps per
fit and per continuous phase), so each suggestion takes a fraction of a second; suggestions stay
deterministic under the cap. Where the installed BoTorch's helper can't patch (it names optimizer
internals that some builds lack, as on the GPU check's machine), the tests run the real optimizers:
they pass either way, in about 20 s instead of 10 on 2 cores.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import torch
from botorch.test_utils.mock import mock_optimize_context_manager

from lightning_hpo import (
    Categorical,
    Float,
    GPSampler,
    Int,
    NopPruner,
    RandomSampler,
    SearchSpace,
    SobolSampler,
    Study,
)
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.samplers._gp_space import GPSpace
from lightning_hpo.samplers.gp import default_n_startup_trials, fit_subset, fitted_history_size
from lightning_hpo.trial import FAIL_KIND, Trial, TrialState

MIXED = SearchSpace(
    {
        "lr": Float(1e-4, 1e-1, log=True),
        "dropout": Float(0.0, 0.5),
        "layers": Int(1, 6),
        "units": Int(8, 4096, log=True),
        "batch": Int(16, 256, step=16),
        "optimizer": Categorical(["adam", "sgd", "rmsprop"]),
    }
)


@pytest.fixture(autouse=True)
def _capped_optimizers() -> Iterator[None]:
    capped = mock_optimize_context_manager(force=True)
    try:
        capped.__enter__()
    except AttributeError:  # this BoTorch lacks an internal the helper patches: run uncapped
        yield
        return
    try:
        yield
    finally:
        capped.__exit__(None, None, None)


def _mixed_objective(params: dict[str, Any]) -> float:
    return (
        (math.log10(params["lr"]) + 2.0) ** 2
        + (params["dropout"] - 0.1) ** 2
        + 0.1 * abs(params["layers"] - 3)
        + 0.1 * abs(math.log2(params["units"]) - 7)
        + {"adam": 0.0, "sgd": 0.5, "rmsprop": 0.3}[params["optimizer"]]
    )


def _history(space: SearchSpace, n: int, objective=_mixed_objective, *, seed: int = 0) -> list[Trial]:
    """``n`` COMPLETE trials at random points."""
    sampler = RandomSampler(seed=seed)
    trials = []
    for number in range(n):
        params = sampler.sample(space, [], number=number, directions=["min"])
        trials.append(Trial(number=number, state=TrialState.COMPLETE, params=params, values=(objective(params),)))
    return trials


def _suggest(sampler: GPSampler, trials: Sequence[Trial], space: SearchSpace = MIXED, direction: str = "min") -> dict:
    return sampler.sample(space, trials, number=len(trials), directions=[direction])


# -- the model-side view of the space --------------------------------------------------------------


def test_int_grid_positions_are_the_encoding_of_each_value():
    for domain in (Int(1, 6), Int(8, 4096, log=True), Int(16, 256, step=16), Int(-3, 3)):
        space = SearchSpace({"x": domain})
        gp_space = GPSpace(space)
        values = list(range(domain.low, domain.high + 1, domain.step))
        positions = gp_space.grids[0].position(torch.arange(len(values), dtype=torch.float64))
        assert positions.tolist() == pytest.approx([domain.encode(v) for v in values], abs=1e-12)
        U = torch.tensor([[domain.encode(v)] for v in values], dtype=torch.float64)
        assert [space.decode(u)["x"] for u in gp_space.to_unit(gp_space.from_unit(U)).tolist()] == values


def test_categorical_columns_hold_choice_indices_and_decode_back():
    gp_space = GPSpace(MIXED)
    column = list(MIXED).index("optimizer")
    for i, choice in enumerate(["adam", "sgd", "rmsprop"]):
        params = {**RandomSampler(seed=1).sample(MIXED, [], number=0, directions=["min"]), "optimizer": choice}
        X = gp_space.from_unit(torch.tensor([MIXED.encode(params)], dtype=torch.float64))
        assert X[0, column] == i
        assert MIXED.decode(gp_space.to_unit(X)[0].tolist()) == params


def test_uniform_points_map_to_valid_values_of_every_column():
    gp_space = GPSpace(MIXED)
    X = gp_space.from_unit(torch.rand(500, len(MIXED), generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    for column, n in gp_space.categories.items():
        assert set(X[:, column].tolist()) == set(range(n))
    for column, grid in gp_space.grids.items():
        positions = grid.position(torch.arange(grid.size, dtype=torch.float64))
        assert torch.isin(X[:, column], positions).all()
    for row in gp_space.to_unit(X).tolist():
        MIXED.check_params(MIXED.decode(row))


def test_neighbours_change_one_discrete_column_to_a_valid_value():
    gp_space = GPSpace(MIXED)
    X = gp_space.from_unit(torch.rand(3, len(MIXED), generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    neighbours = gp_space.neighbours(X)
    assert neighbours.shape[:2] == (3, neighbours.shape[1]) and neighbours.shape[-1] == len(MIXED)
    changed = (neighbours != X.unsqueeze(1)).sum(-1)
    assert changed.max() == 1
    for column in gp_space.continuous_dims:
        assert (neighbours[..., column] == X[:, column].unsqueeze(1)).all()
    for row in gp_space.to_unit(neighbours.reshape(-1, len(MIXED))).tolist():
        MIXED.check_params(MIXED.decode(row))
    # a large grid (units: 4089 values) tries the adjacent values and steps across its range
    units = list(MIXED).index("units")
    grid = gp_space.grids[units]
    here = int(grid.index(X[0, units]))
    reached = grid.index(neighbours[0, :, units])
    assert {here - 1, here + 1} <= set(reached.tolist())
    assert neighbours[0, :, units].max() - neighbours[0, :, units].min() >= 0.5


def test_all_points_enumerates_a_discrete_space():
    space = SearchSpace({"a": Int(0, 2), "b": Categorical(["x", "y"]), "c": Int(1, 4, log=True)})
    gp_space = GPSpace(space)
    points = gp_space.all_points(dtype=torch.float64)
    assert gp_space.n_discrete_points == len(points) == 3 * 2 * 4
    decoded = {tuple(space.decode(u).values()) for u in gp_space.to_unit(points).tolist()}
    assert len(decoded) == 24
    assert GPSpace(MIXED).n_discrete_points == math.inf


# -- the sampler ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_startup_trials": 1}, InvalidArgumentError, "`n_startup_trials >= 2` must hold"),
        ({"n_startup_trials": 2.5}, ArgumentTypeError, "`n_startup_trials` must be an int or None, but got 2.5"),
        ({"device": "gpu7"}, InvalidArgumentError, "`device` must name a torch device, but got 'gpu7'"),
        ({"device": 3.0}, ArgumentTypeError, "`device` must be 'auto', a device string or a torch.device"),
        ({"seed": -1}, InvalidArgumentError, "`seed >= 0` must hold"),
    ],
)
def test_invalid_arguments_say_rule_and_value(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        GPSampler(**kwargs)


def test_default_startup_scales_with_dimension():
    assert [default_n_startup_trials(d) for d in (1, 2, 5, 6, 10, 40)] == [5, 6, 9, 10, 10, 10]
    assert GPSampler(seed=0).n_startup_trials is None


def test_hyperparameters_are_refitted_as_the_history_grows_by_a_tenth():
    sizes = [fitted_history_size(n) for n in range(1, 61)]
    assert sizes[:30] == list(range(1, 31))
    assert sorted(set(sizes[29:])) == [30, 33, 36, 39, 42, 46, 50, 55, 60]
    assert all(size <= n for n, size in enumerate(sizes, start=1))


def test_past_the_cap_hyperparameters_are_fitted_to_a_spread_of_the_history():
    assert fit_subset(10, 10).tolist() == list(range(10))
    assert fit_subset(10, 4).tolist() == [0, 3, 6, 9]


def test_a_long_history_still_gives_valid_suggestions():
    trials = _history(MIXED, 600)
    sampler = GPSampler(seed=0)
    for number in (600, 601):
        params = sampler.sample(MIXED, trials, number=number, directions=["min"])
        MIXED.check_params(params)
        value = _mixed_objective(params)
        assert value < sorted(t.values[0] for t in trials)[60]  # among the best tenth of the random points
        trials.append(Trial(number=number, state=TrialState.COMPLETE, params=params, values=(value,)))


def test_the_objectives_gp_is_fitted_by_fit_objective_model_once_per_refit(monkeypatch):
    from lightning_hpo.samplers import _gp_model

    space = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(10)})  # where it may keep a wider prior
    trials = _history(space, 20, lambda params: sum((v > 0.5) for v in params.values()))
    fitted_sizes: list[int] = []
    fit = _gp_model.fit_objective_model

    def recording(X, *args, **kwargs):
        fitted_sizes.append(len(X))
        return fit(X, *args, **kwargs)

    monkeypatch.setattr(_gp_model, "fit_objective_model", recording)
    sampler = GPSampler(seed=0)
    first = _suggest(sampler, trials, space)
    assert _suggest(sampler, trials, space) == first  # the cached fit, the same suggestion
    assert fitted_sizes == [20]
    space.check_params(first)


def test_one_sampler_shared_by_two_studies_suggests_as_fresh_samplers_would():
    # The same values at the same trial numbers, at other points: the fit of one study must not serve
    # the other. Past 30 observations one fit serves several suggestions, so it is cached.
    first = _history(MIXED, 34)
    second = [Trial(t.number, t.state, u.params, values=t.values) for t, u in zip(first, _history(MIXED, 34, seed=1))]
    shared = GPSampler(seed=0)
    for trials in (first, second, first, second):
        assert _suggest(shared, trials) == _suggest(GPSampler(seed=0), trials)


def test_startup_phase_is_the_sobol_sequence():
    sobol, gp = SobolSampler(seed=3), GPSampler(seed=3, n_startup_trials=4)
    trials = _history(MIXED, 3)
    for number in range(4):
        expected = sobol.sample(MIXED, trials[:number], number=number, directions=["min"])
        assert gp.sample(MIXED, trials[:number], number=number, directions=["min"]) == expected


def test_suggestions_are_valid_values_of_every_domain():
    trials = _history(MIXED, 12)
    sampler = GPSampler(seed=0, n_startup_trials=5)
    for number in range(12, 15):
        params = sampler.sample(MIXED, trials, number=number, directions=["min"])
        MIXED.check_params(params)
        assert isinstance(params["layers"], int) and isinstance(params["units"], int)
        assert params["batch"] % 16 == 0 and params["optimizer"] in ("adam", "sgd", "rmsprop")
        assert 1e-4 <= params["lr"] <= 1e-1 and 0.0 <= params["dropout"] <= 0.5


def test_same_history_seed_and_number_give_the_same_suggestion():
    trials = _history(MIXED, 10)
    first = _suggest(GPSampler(seed=5, n_startup_trials=5), trials)
    assert _suggest(GPSampler(seed=5, n_startup_trials=5), trials) == first
    assert _suggest(GPSampler(seed=6, n_startup_trials=5), trials) != first


def test_a_seeded_study_is_reproducible_with_the_warm_start_cache():
    def run() -> list[dict]:
        study = Study("repro", search_space=MIXED, storage=":memory:", sampler=GPSampler(seed=1, n_startup_trials=4))
        study.optimize(_mixed_objective, n_trials=7)
        return [t.params for t in study.trials]

    assert run() == run()


def test_mode_max_is_mode_min_of_the_negated_values():
    trials = _history(MIXED, 10)
    negated = [Trial(t.number, t.state, t.params, values=(-t.values[0],)) for t in trials]
    minimized = _suggest(GPSampler(seed=2, n_startup_trials=5), trials, direction="min")
    assert _suggest(GPSampler(seed=2, n_startup_trials=5), negated, direction="max") == minimized


@pytest.mark.parametrize("scale", [2.0**-1000, 2.0**-520, 2.0**600, 2.0**1000])
def test_the_objectives_scale_does_not_change_the_suggestion(scale):
    """Losses of 1e-301 or 1e301 are suggested from as their shapes near 1 are (a power of two
    scales exactly); the GP used to see such a history as constant."""
    trials = _history(MIXED, 12)
    scaled = [Trial(t.number, t.state, t.params, values=(t.values[0] * scale,)) for t in trials]
    assert _suggest(GPSampler(seed=3, n_startup_trials=5), scaled) == _suggest(
        GPSampler(seed=3, n_startup_trials=5), trials
    )


@pytest.mark.parametrize(
    "objective",
    [
        lambda p: 3.0,  # constant: nothing to model
        lambda p: 1.0 if p["optimizer"] == "adam" else 2.0,  # two values: a plateau and a step
        lambda p: 1e300 if p["layers"] > 4 else _mixed_objective(p),  # diverged runs far off the rest
        lambda p: -1e15 * (1.0 + _mixed_objective(p)),  # large, negative
    ],
    ids=["constant", "two-values", "outliers-1e300", "large-negative"],
)
@pytest.mark.parametrize("closed_form", [False, True], ids=["gpytorch-fit", "closed-form-fit"])
def test_degenerate_histories_still_give_valid_new_suggestions_without_warnings(objective, closed_form, monkeypatch):
    from lightning_hpo.samplers import _gp_model

    if closed_form:  # the arithmetic of fits past CLOSED_FORM_FIT_ABOVE observations
        monkeypatch.setattr(_gp_model, "CLOSED_FORM_FIT_ABOVE", 10)
    trials = _history(MIXED, 15, objective)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numerical warning of the fit (jitter, NaN) would fail here
        params = _suggest(GPSampler(seed=0, n_startup_trials=5), trials)
    MIXED.check_params(params)
    assert params not in [t.params for t in trials]


def test_failed_trials_are_ignored():
    trials = _history(MIXED, 10)
    failed = [
        Trial(number=100 + i, state=TrialState.FAIL, params=t.params, error="boom") for i, t in enumerate(trials[:3])
    ]
    plain = _suggest(GPSampler(seed=4, n_startup_trials=5), trials)
    with_failures = GPSampler(seed=4, n_startup_trials=5).sample(MIXED, trials + failed, number=10, directions=["min"])
    assert with_failures == plain


def test_failed_trials_do_not_count_towards_the_startup():
    trials = _history(MIXED, 4)
    failed = [Trial(number=4 + i, state=TrialState.FAIL, params=t.params) for i, t in enumerate(trials)]
    sampler = GPSampler(seed=0, n_startup_trials=5)
    expected = SobolSampler(seed=0).sample(MIXED, [], number=8, directions=["min"])
    assert sampler.sample(MIXED, trials + failed, number=8, directions=["min"]) == expected


def test_pruned_trials_with_a_value_are_observations():
    trials = _history(MIXED, 10)
    pruned = [Trial(number=10, state=TrialState.PRUNED, params=trials[0].params, values=(50.0,))]
    plain = GPSampler(seed=4, n_startup_trials=5).sample(MIXED, trials, number=11, directions=["min"])
    informed = GPSampler(seed=4, n_startup_trials=5).sample(MIXED, trials + pruned, number=11, directions=["min"])
    assert informed != plain
    # without a value (pruned before any report) a pruned trial teaches nothing
    silent = [Trial(number=10, state=TrialState.PRUNED, params=trials[0].params)]
    assert GPSampler(seed=4, n_startup_trials=5).sample(MIXED, trials + silent, number=11, directions=["min"]) == plain


def test_running_trials_push_the_suggestion_away():
    space = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})

    def bowl(params: dict) -> float:
        return (params["x"] - 0.3) ** 2 + (params["y"] - 0.6) ** 2

    trials = _history(space, 12, bowl)
    alone = GPSampler(seed=0, n_startup_trials=5).sample(space, trials, number=13, directions=["min"])
    running = Trial(number=12, state=TrialState.RUNNING, params=alone)
    beside = GPSampler(seed=0, n_startup_trials=5).sample(space, [*trials, running], number=13, directions=["min"])
    distance = math.dist(alone.values(), beside.values())
    assert distance > 0.02


def test_device_cpu_and_auto_agree_on_a_cpu_machine():
    trials = _history(MIXED, 8)
    cpu = _suggest(GPSampler(seed=0, n_startup_trials=5, device="cpu"), trials)
    auto = GPSampler(seed=0, n_startup_trials=5)
    assert auto.device == "auto"
    if not torch.cuda.is_available():
        assert _suggest(auto, trials) == cpu
    assert _suggest(GPSampler(seed=0, n_startup_trials=5, device=torch.device("cpu")), trials) == cpu


def test_several_objectives_spread_suggestions_over_the_pareto_front():
    space = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    study = Study(
        "pareto",
        search_space=space,
        mode=["min", "min"],
        storage=":memory:",
        sampler=GPSampler(seed=0, n_startup_trials=5),
        pruner=NopPruner(),
    )
    study.optimize(lambda p: (p["x"] ** 2 + p["y"], (1 - p["x"]) ** 2 + p["y"]), n_trials=12)
    gp_points = [t.params for t in study.trials[5:]]
    assert len({round(p["x"], 3) for p in gp_points}) > 3  # different scalarizations, different points
    assert sum(p["y"] < 0.2 for p in gp_points) >= 4  # y = 0 is Pareto-optimal: most land near it


def test_categorical_only_space_finds_the_best_cell():
    space = SearchSpace({"a": Categorical(list("pqrs")), "b": Categorical(list("xyz")), "c": Int(0, 4)})

    a_cost, b_cost = {"p": 0.4, "q": 0.0, "r": 0.3, "s": 0.6}, {"x": 0.2, "y": 0.0, "z": 0.5}

    def table(params: dict) -> float:
        return a_cost[params["a"]] + b_cost[params["b"]] + 0.1 * abs(params["c"] - 2)

    sampler = GPSampler(seed=0, n_startup_trials=5)
    study = Study("table", search_space=space, storage=":memory:", sampler=sampler, pruner=NopPruner())
    study.optimize(table, n_trials=16)
    assert study.best_trial.value == 0.0


def test_no_suggestion_repeats_a_configuration_until_the_space_is_used_up():
    """Twelve configurations: the GP tries each once before any repeat (it used to re-run its best
    configuration from the ninth trial on), then may repeat the best."""
    space = SearchSpace({"a": Categorical(list("pqr")), "c": Int(0, 3)})
    study = Study("cells", search_space=space, storage=":memory:", sampler=GPSampler(seed=0, n_startup_trials=4))

    def objective(p: dict[str, Any]) -> float:
        return {"p": 0.0, "q": 0.5, "r": 1.0}[p["a"]] + abs(p["c"] - 1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=12)
    assert not [w for w in caught if "used up" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(objective, n_trials=14)  # the study's total
    # once, though both trials repeat one (it was given every trial)
    assert len([w for w in caught if "the space is used up" in str(w.message)]) == 1
    configurations = [(t.params["a"], t.params["c"]) for t in study.trials]
    assert len(set(configurations[:12])) == 12
    assert configurations[12:] == [("p", 1), ("p", 1)]


def test_an_inactive_parameter_does_not_make_a_repeat_new():
    """Ten configurations, two of them without ``m`` (inactive for ``opt="a"``): a candidate that
    differs from an observed one only in its inactive column is the same configuration (the GP
    re-ran ``opt="a", k="x"`` from the seventh trial on while it compared them unpinned)."""
    space = SearchSpace(
        {"opt": Categorical(["a", "b"]), "m": Int(0, 3, when={"opt": ["b"]}), "k": Categorical(["x", "y"])}
    )
    study = Study("conditional", search_space=space, storage=":memory:", sampler=GPSampler(seed=0, n_startup_trials=3))
    study.optimize(lambda p: (0.0 if p["opt"] == "a" else 1.0 + p["m"]) + 0.3 * (p["k"] == "y"), n_trials=10)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 10


def test_a_configuration_that_failed_by_its_own_fault_is_not_suggested_again():
    """The best corner runs out of memory; the GP re-ran an OOM configuration while others were
    left (trial 16 repeated trial 15's in a run of a fuzz of the sampler)."""
    space = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "n": Int(1, 8), "c": Categorical(["a", "b"])})
    study = Study("oom", search_space=space, storage=":memory:", sampler=GPSampler(seed=0), pruner=NopPruner())
    failed = []
    for _ in range(30):
        trial = study.ask()
        p = trial.params
        size = p["x"] + p["y"] + 0.01 * p["n"] + 0.1 * (p["c"] == "b")
        if size < 0.15:
            failed.append(trial.params)
            study.tell(trial, state=TrialState.FAIL, error="CUDA out of memory", fail_kind="oom")
        else:
            study.tell(trial, size)
    assert len(failed) >= 5
    configurations = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(configurations)) == len(configurations)


def test_a_failure_that_is_not_the_configuration_s_fault_may_run_again():
    """Four configurations, three measured: the fourth's interrupted trial leaves it open (it was
    never measured), its OOM trial closes it (the space is then used up)."""
    space = SearchSpace({"a": Categorical(list("pq")), "c": Int(0, 1)})
    measured = [{"a": "p", "c": 0}, {"a": "p", "c": 1}, {"a": "q", "c": 0}]
    trials = [Trial(number=i, state=TrialState.COMPLETE, params=p, values=(float(i),)) for i, p in enumerate(measured)]
    left = {"a": "q", "c": 1}
    for kind, still_open in (("interrupted", True), ("oom", False)):
        lost = Trial(number=3, state=TrialState.FAIL, params=left, attrs={FAIL_KIND: kind})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            suggested = GPSampler(seed=0, n_startup_trials=2).sample(
                space, [*trials, lost], number=4, directions=["min"]
            )
        used_up = [w for w in caught if "used up" in str(w.message)]
        assert (suggested == left and not used_up) if still_open else used_up, (kind, suggested)


def test_a_suggestion_does_not_repeat_a_running_configuration():
    space = SearchSpace({"a": Categorical(list("pqr")), "c": Int(0, 3)})
    trials = _history(space, 8, lambda p: {"p": 0.0, "q": 0.5, "r": 1.0}[p["a"]] + abs(p["c"] - 1))
    alone = GPSampler(seed=0, n_startup_trials=4).sample(space, trials, number=8, directions=["min"])
    running = Trial(number=8, state=TrialState.RUNNING, params=alone)
    beside = GPSampler(seed=0, n_startup_trials=4).sample(space, [*trials, running], number=9, directions=["min"])
    assert beside != alone
    assert beside not in [t.params for t in trials]


@pytest.mark.slow
def test_beats_random_search_on_a_seeded_run():
    space = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(3)} | {"k": Categorical(["a", "b", "c"])})
    centres = {"a": (0.2, 0.7, 0.4), "b": (0.6, 0.2, 0.8), "c": (0.8, 0.8, 0.1)}

    def objective(params: dict) -> float:
        centre = centres[params["k"]]
        return sum((params[f"x{i}"] - c) ** 2 for i, c in enumerate(centre)) + (0.0 if params["k"] == "b" else 0.3)

    best = {}
    for name, sampler in {"gp": GPSampler(seed=0, n_startup_trials=6), "random": RandomSampler(seed=0)}.items():
        study = Study(name, search_space=space, storage=":memory:", sampler=sampler, pruner=NopPruner())
        study.optimize(objective, n_trials=25)
        best[name] = study.best_trial.value
    assert best["gp"] < best["random"]


# -- several objectives ----------------------------------------------------------------------------

SQUARE = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})


def _two_bowls(params: dict) -> tuple[float, float]:
    """Two objectives to minimize whose Pareto set is the segment y = 0.2, 0.2 <= x <= 0.8."""
    return (params["x"] - 0.2) ** 2 + (params["y"] - 0.2) ** 2, (params["x"] - 0.8) ** 2 + (params["y"] - 0.2) ** 2


def _objectives(m: int):
    """``m`` objectives to minimize on SQUARE: squared distances to ``m`` corners' neighbours."""
    centres = [(0.2, 0.2), (0.8, 0.2), (0.5, 0.8), (0.2, 0.8)][:m]
    return lambda p: tuple((p["x"] - a) ** 2 + (p["y"] - b) ** 2 for a, b in centres)


def _mo_history(n: int, objective=_two_bowls, *, seed: int = 0) -> list[Trial]:
    sampler = RandomSampler(seed=seed)
    trials = []
    for number in range(n):
        params = sampler.sample(SQUARE, [], number=number, directions=["min"])
        trials.append(Trial(number=number, state=TrialState.COMPLETE, params=params, values=tuple(objective(params))))
    return trials


class _Stop(Exception):
    """Raised by the spy below once it has seen the acquisition function."""


def _acquisition_of(monkeypatch, trials: Sequence[Trial], directions: list[str], **sampler_kwargs: Any):
    """The acquisition function GPSampler builds for ``trials`` (its search is not run)."""
    from lightning_hpo.samplers import _gp_acquisition

    seen = []

    def spy(acquisition, *args, **kwargs):
        seen.append(acquisition)
        raise _Stop

    monkeypatch.setattr(_gp_acquisition, "maximize", spy)
    with pytest.raises(_Stop):
        GPSampler(seed=0, n_startup_trials=5, **sampler_kwargs).sample(
            SQUARE, trials, number=len(trials), directions=directions
        )
    return seen[0]


@pytest.mark.parametrize(
    "m, acquisition_name",
    [
        (1, "CachedLogNEI"),
        (2, "CachedLogNEHVI"),
        (3, "CachedLogNEHVI"),
        (4, "qLogNParEGO"),
    ],
)
def test_acquisition_by_number_of_objectives(monkeypatch, m, acquisition_name):
    trials = _mo_history(10, _objectives(m))
    acquisition = _acquisition_of(monkeypatch, trials, ["min"] * m)
    assert type(acquisition).__name__ == acquisition_name


def test_hypervolume_reference_point_is_the_nadir_minus_a_tenth_of_the_range(monkeypatch):
    from lightning_hpo.samplers._gp_model import model_outcomes

    trials = _mo_history(10)
    # "max" on the second objective: its values enter the GP as they are, the first one negated
    trials = [Trial(t.number, t.state, t.params, values=(t.values[0], -t.values[1])) for t in trials]
    acquisition = _acquisition_of(monkeypatch, trials, ["min", "max"])
    Y = torch.tensor([[-t.values[0], t.values[1]] for t in trials], dtype=torch.float64)
    outcomes = model_outcomes(Y)
    low, high = outcomes.min(0).values, outcomes.max(0).values
    assert acquisition.ref_point.tolist() == pytest.approx((low - 0.1 * (high - low)).tolist(), abs=1e-12)


@pytest.mark.parametrize(
    "Y, expected",
    [
        ([[0.0, 1.0], [1.0, 0.0]], [-0.1, -0.1]),
        ([[2.0, -3.0], [4.0, 1.0], [3.0, 0.0]], [1.8, -3.4]),
        ([[5.0, 1.0], [5.0, 2.0]], [4.9, 0.9]),  # a constant column gets a margin of a tenth of 1
    ],
)
def test_reference_point_by_hand(Y, expected):
    from lightning_hpo.samplers._gp_acquisition import reference_point

    assert reference_point(torch.tensor(Y, dtype=torch.float64)).tolist() == pytest.approx(expected)


def test_the_acquisition_counts_the_fronts_points_beyond_the_given_reference_point(monkeypatch):
    from lightning_hpo.samplers._gp_model import model_outcomes

    trials = _mo_history(10)
    # "max" on the second objective: the user's reference is in its own units, the GP's is negated.
    trials = [Trial(t.number, t.state, t.params, values=(t.values[0], -t.values[1])) for t in trials]
    given = [0.15, -0.3]
    acquisition = _acquisition_of(monkeypatch, trials, ["min", "max"], reference_point=given)
    Y = torch.tensor([[-t.values[0], t.values[1]] for t in trials], dtype=torch.float64)
    beyond = Y > torch.tensor([-given[0], given[1]], dtype=torch.float64)
    assert beyond.any(0).all() and not beyond.all(0).any()  # the reference splits both columns
    # The observations beyond the reference in each objective are those beyond its image.
    assert torch.equal(model_outcomes(Y) > acquisition.ref_point, beyond)


def test_a_given_reference_point_sends_the_trials_to_the_part_of_the_front_beyond_it():
    def in_region(values: tuple[float, ...]) -> bool:
        return values[0] < 0.05 and values[1] < 0.5  # the Pareto set's end near x = 0.2

    counts = {}
    for reference in (None, [0.05, 0.5]):
        study = Study(
            f"ref{reference}",
            search_space=SQUARE,
            mode=["min", "min"],
            storage=":memory:",
            sampler=GPSampler(seed=0, n_startup_trials=5, reference_point=reference),
            pruner=NopPruner(),
        )
        study.optimize(_two_bowls, n_trials=16)
        counts[str(reference)] = sum(in_region(t.values) for t in study.trials[5:])
    # Without it the 11 GP trials spread along the whole Pareto set (3 land in the region).
    assert counts["[0.05, 0.5]"] >= 9 and counts["None"] <= 5


@pytest.mark.parametrize(
    "reference, error, match",
    [
        ("0.5, 1e5", ArgumentTypeError, "list of numbers"),
        ({"accuracy": 0.5}, ArgumentTypeError, "list of numbers"),
        ([0.5, True], ArgumentTypeError, "must hold numbers"),
        ([0.5, "1e5"], ArgumentTypeError, "must hold numbers"),
        ([0.5, float("nan")], InvalidArgumentError, "finite"),
        ([0.5], InvalidArgumentError, "one value per objective"),
    ],
)
def test_a_bad_reference_point_is_refused_at_construction(reference, error, match):
    with pytest.raises(error, match=match):
        GPSampler(reference_point=reference)


def test_a_reference_point_from_numpy_or_torch_is_a_tuple_of_floats():
    import numpy as np

    assert GPSampler(reference_point=np.array([0.5, 1e5])).reference_point == (0.5, 1e5)
    assert GPSampler(reference_point=torch.tensor([1, 2])).reference_point == (1.0, 2.0)
    assert "reference_point=[0.5, 100000.0]" in repr(GPSampler(seed=0, reference_point=[0.5, 1e5]))


@pytest.mark.parametrize(
    "mode, match",
    [
        ("min", "a single objective has no Pareto front"),
        (["min", "max", "min"], "has 2 values, but the study has 3 objectives"),
        (["min"] * 4, "qLogNParEGO"),
    ],
)
def test_a_reference_point_that_does_not_fit_the_study_is_refused_before_anything_is_stored(tmp_path, mode, match):
    from lightning_hpo.exceptions import StudyNotFoundError

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    sampler = GPSampler(seed=0, reference_point=[0.5, 1e5])
    with pytest.raises(InvalidArgumentError, match=match):
        Study("refused", search_space=SQUARE, mode=mode, storage=url, sampler=sampler)
    with pytest.raises(StudyNotFoundError):
        Study("refused", storage=url)
    # A stored study of one objective, reopened with the sampler: refused as it opens.
    Study("one", search_space=SQUARE, storage=url).storage.close()
    with pytest.raises(InvalidArgumentError, match="a single objective"):
        Study("one", storage=url, sampler=sampler)


def test_running_trials_push_a_multi_objective_suggestion_away():
    trials = _mo_history(12)
    alone = GPSampler(seed=0, n_startup_trials=5).sample(SQUARE, trials, number=13, directions=["min", "min"])
    running = Trial(number=12, state=TrialState.RUNNING, params=alone)
    beside = GPSampler(seed=0, n_startup_trials=5).sample(
        SQUARE, [*trials, running], number=13, directions=["min", "min"]
    )
    assert math.dist(alone.values(), beside.values()) > 0.05


def test_a_multi_objective_suggestion_compiles_nothing(tmp_path, monkeypatch):
    # BoTorch would JIT-compile its fused qLogNEHVI kernel here: a minute of a C++ compiler per environment.
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "torch_extensions"))
    GPSampler(seed=0, n_startup_trials=5).sample(SQUARE, _mo_history(8), number=8, directions=["min", "min"])
    assert not (tmp_path / "torch_extensions").exists()


def test_pareto_front_beats_sobol_on_a_seeded_two_objective_problem():
    from lightning_hpo.pareto import hypervolume

    space = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(3)})

    def zdt1(params: dict) -> tuple[float, float]:
        x = [params[f"x{i}"] for i in range(3)]
        g = 1.0 + 9.0 * sum(x[1:]) / 2
        return x[0], g * (1.0 - math.sqrt(x[0] / g))

    volumes = {}
    for name, sampler in {"gp": GPSampler(seed=0, n_startup_trials=6), "sobol": SobolSampler(seed=0)}.items():
        study = Study(
            name, search_space=space, mode=["min", "min"], storage=":memory:", sampler=sampler, pruner=NopPruner()
        )
        study.optimize(zdt1, n_trials=20)
        volumes[name] = hypervolume([t.values for t in study.trials], reference_point=[1.1, 11.0])
    # the GP's front is markedly better, not by a hair
    assert volumes["gp"] > volumes["sobol"] + 1.0  # 11.69 against 9.98 (the best front: 11.77)


# -- the acquisition search -------------------------------------------------------------------------


def test_gradient_components_pointing_out_of_the_box_are_dropped():
    from lightning_hpo.samplers._gp_acquisition import _projected

    X = torch.tensor([[0.0, 1.0, 0.5, 0.0, 1.0]], dtype=torch.float64)
    gradient = torch.tensor([[-1.0, 2.0, -3.0, 4.0, -5.0]], dtype=torch.float64)
    assert _projected(gradient, X).tolist() == [[0.0, 0.0, -3.0, 4.0, -5.0]]


def test_bound_moves_send_one_column_at_a_time_where_its_gradient_points():
    from lightning_hpo.samplers._gp_acquisition import _to_bounds

    X = torch.tensor([[0.3, 0.6, 0.5], [0.2, 0.2, 0.2]], dtype=torch.float64)
    gradient = torch.tensor([[1.0, -1.0, 0.0], [-2.0, 0.0, 3.0]], dtype=torch.float64)
    moved = _to_bounds(X, gradient, [0, 1])  # column 2 is not continuous here: never moved
    assert moved.tolist() == [
        [[1.0, 0.6, 0.5], [0.3, 0.0, 0.5]],
        [[0.0, 0.2, 0.2], [0.2, 0.2, 0.2]],
    ]


def test_search_reaches_an_optimum_in_a_corner():
    """An acquisition rising towards the corner (1, 0, 1) of three of six Float columns, with
    lengthscales far shorter than the way there: the search ends exactly on the three bounds
    (steps of a few lengthscales alone end short of them)."""
    from lightning_hpo.samplers._gp_acquisition import maximize

    space = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(6)})
    gp_space = GPSpace(space)

    class Corner(torch.nn.Module):
        def forward(self, X: torch.Tensor) -> torch.Tensor:
            x = X.squeeze(-2)
            return x[:, 0] - x[:, 1] + x[:, 2] - 0.1 * (x[:, 3:] - 0.5).pow(2).sum(-1)

    incumbents = torch.full((2, 6), 0.5, dtype=torch.float64)
    best = maximize(
        Corner(),
        gp_space,
        incumbents=incumbents,
        scales=torch.full((6,), 0.01, dtype=torch.float64),
        generator=torch.Generator().manual_seed(0),
    )
    assert best[:3].tolist() == [1.0, 0.0, 1.0]


def test_the_search_returns_no_excluded_point_while_another_was_scored():
    """A discrete space scored point by point and a Float one searched: an excluded maximum (an
    observed or pending point) gives way to the best other point, unless every point is excluded."""
    from lightning_hpo.samplers._gp_acquisition import maximize

    class Rising(torch.nn.Module):
        def forward(self, X: torch.Tensor) -> torch.Tensor:
            return X.squeeze(-2).sum(-1)

    def best(space: SearchSpace, exclude: torch.Tensor | None) -> torch.Tensor:
        gp_space = GPSpace(space)
        return maximize(
            Rising(),
            gp_space,
            incumbents=gp_space.from_unit(torch.full((2, gp_space.dim), 0.5, dtype=torch.float64)),
            scales=torch.full((gp_space.dim,), 0.1, dtype=torch.float64),
            generator=torch.Generator().manual_seed(0),
            exclude=exclude,
        )

    discrete = SearchSpace({"n": Int(1, 5), "kind": Categorical(["a", "b", "c"])})
    points = GPSpace(discrete).all_points(dtype=torch.float64)
    top = points[points.sum(-1).argmax()]
    assert torch.equal(best(discrete, None), top)
    second = best(discrete, top.unsqueeze(0))
    assert not torch.equal(second, top)
    assert second.sum() == points[~(points == top).all(-1)].sum(-1).max()
    assert torch.equal(best(discrete, points), top)  # nothing else left: the best, repeated

    floats = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(3)})
    corner = torch.ones(3, dtype=torch.float64)
    assert torch.equal(best(floats, None), corner)
    other = best(floats, corner.unsqueeze(0))
    assert not torch.equal(other, corner) and other.sum() > 2.5


def test_the_search_scores_only_points_on_every_discrete_grid():
    """An acquisition that rewards moving discrete columns as much as Float ones: once a start has
    changed a category, its next momentum steps must still leave that column on a choice (a
    fraction of the change is a value the kernel has never seen, scored high, but decoded to an
    observed choice: the sampler then repeated observed configurations)."""
    from lightning_hpo.samplers._gp_acquisition import maximize

    gp_space = GPSpace(MIXED)
    scored: list[torch.Tensor] = []

    class RisingEverywhere(torch.nn.Module):
        def forward(self, X: torch.Tensor) -> torch.Tensor:
            scored.append(X.detach().reshape(-1, X.shape[-1]))
            x = X.squeeze(-2)
            return x.sum(-1) - (x[:, 0] - 0.7).pow(2)

    maximize(
        RisingEverywhere(),
        gp_space,
        incumbents=gp_space.from_unit(torch.full((2, gp_space.dim), 0.2, dtype=torch.float64)),
        scales=torch.full((gp_space.dim,), 0.2, dtype=torch.float64),
        generator=torch.Generator().manual_seed(0),
    )
    points = torch.cat(scored)
    for column, grid in gp_space.grids.items():
        positions = grid.position(torch.arange(grid.size, dtype=torch.float64))
        on_grid = (points[:, column : column + 1] - positions).abs().min(dim=1).values < 1e-9
        assert on_grid.all(), f"Int column {column} scored off its grid"
    for column, n in gp_space.categories.items():
        assert torch.isin(points[:, column], torch.arange(n, dtype=torch.float64)).all(), column
