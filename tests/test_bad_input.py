"""Thousands of generated bad inputs at the public entry points: only the package's own errors escape.

An internal error (AttributeError, KeyError, IndexError, OverflowError, ...) escaping from a public
entry point is a bug: users must get a LightningHPOError that names the argument and the rule.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lightning_hpo import Categorical, Float, Int, SearchSpace, Study
from lightning_hpo.exceptions import LightningHPOError
from lightning_hpo.storage import open_storage

anything = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.binary(max_size=4),
        st.complex_numbers(allow_nan=True),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)
numbers = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    anything,
)

SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_our_errors(call) -> Any:
    try:
        return call()
    except LightningHPOError:
        return None


@SETTINGS
@given(low=numbers, high=numbers, log=anything)
def test_float_domain(low, high, log):
    domain = only_our_errors(lambda: Float(low, high, log=log))
    if domain is not None:
        assert domain.low < domain.high and math.isfinite(domain.low) and math.isfinite(domain.high)


@SETTINGS
@given(low=numbers, high=numbers, log=anything, step=numbers)
def test_int_domain(low, high, log, step):
    domain = only_our_errors(lambda: Int(low, high, log=log, step=step))
    if domain is not None:
        assert domain.contains(domain.decode(0.5))


@SETTINGS
@given(choices=anything)
def test_categorical_domain(choices):
    domain = only_our_errors(lambda: Categorical(choices))
    if domain is not None:
        assert domain.contains(domain.decode(0.99))


SPACE = SearchSpace({"lr": Float(1e-4, 1.0, log=True), "n": Int(1, 9, step=2), "c": Categorical(["a", None, (1, 2)])})


@SETTINGS
@given(mapping=anything)
def test_search_space_construction(mapping):
    only_our_errors(lambda: SearchSpace(mapping))


@SETTINGS
@given(params=st.one_of(anything, st.fixed_dictionaries({"lr": numbers, "n": numbers, "c": anything})))
def test_params_checks_encoding_and_stored_form(params):
    only_our_errors(lambda: SPACE.check_params(params))
    only_our_errors(lambda: SPACE.encode(params))
    only_our_errors(lambda: SPACE.to_stored(params))
    only_our_errors(lambda: SPACE.from_stored(params))


@SETTINGS
@given(point=st.one_of(anything, st.lists(numbers, min_size=3, max_size=3)))
def test_decoding_any_point(point):
    params = only_our_errors(lambda: SPACE.decode(point))
    if params is not None:
        SPACE.check_params(params)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=anything, mode=anything, grace=numbers, seed=numbers)
def test_study_arguments(name, mode, grace, seed):
    def open_study():
        from lightning_hpo import SobolSampler

        return Study(
            name,
            search_space=SPACE,
            mode=mode,
            storage=":memory:",
            sampler=SobolSampler(seed=seed) if seed is not None else None,
            grace_period=grace,
        )

    only_our_errors(open_study)


@settings(max_examples=200, deadline=None)
@example(url="\x00")  # once found by a fresh draw: a NUL reached sqlite3 as a ValueError
@example(url="sqlite:///studies\x00.db")
@given(url=st.one_of(anything, st.text(max_size=40), st.from_regex(r"[a-z+]{1,12}://[^\s]{0,20}", fullmatch=True)))
def test_storage_urls(url, tmp_path_factory):
    directory = tmp_path_factory.mktemp("urls")
    import os

    cwd = os.getcwd()
    os.chdir(directory)
    try:
        only_our_errors(lambda: open_storage(url))
    finally:
        os.chdir(cwd)


@settings(max_examples=100, deadline=None)
@given(step=numbers, value=numbers, told=anything)
def test_report_and_tell(step, value, told):
    study = Study("s", search_space=SPACE, storage=":memory:", seed=0)
    trial = study.ask()
    only_our_errors(lambda: study.report(trial, step, value))
    only_our_errors(lambda: study.tell(trial, told))


# -- the LightningCLI config parser, the Tuner and the decorator -------------------------------

domain_specs = st.one_of(
    anything,
    st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["float", "int", "categorical"]), anything)},
        optional={
            "low": numbers,
            "high": numbers,
            "log": anything,
            "step": numbers,
            "choices": anything,
            "x": anything,
        },
    ),
)
config_keys = st.one_of(
    st.sampled_from(["model.lr", "model.init_args.hidden", "data.batch_size", "init_args", ""]), st.text(max_size=12)
)


@SETTINGS
@given(spec=st.one_of(anything, st.dictionaries(config_keys, domain_specs, max_size=4)))
def test_cli_search_space_config(spec):
    from lightning_hpo.cli import search_space_from_config

    only_our_errors(lambda: search_space_from_config(spec))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.dictionaries(config_keys, domain_specs, max_size=4))
def test_cli_search_space_config_through_yaml(spec):
    """The same specs as written in a config file and read back by YAML (what `tune --config` does)."""
    import yaml

    from lightning_hpo.cli import search_space_from_config

    try:
        text = yaml.safe_dump({"search_space": spec}, allow_unicode=True)
    except yaml.YAMLError:  # not expressible in a config file in the first place
        return
    only_our_errors(lambda: search_space_from_config(yaml.safe_load(text)["search_space"]))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    arguments=st.fixed_dictionaries(
        {},
        optional={
            "search_space": anything,
            "model_kwargs": anything,
            "trainer_kwargs": anything,
            "monitor": anything,
            "mode": anything,
            "study_name": anything,
            "seed": numbers,
            "grace_period": numbers,
            "retry_stale": anything,
            "max_consecutive_failures": numbers,
            "trial_timeout": numbers,
            "show_progress": anything,
            "n_jobs": numbers,
            "sampler": anything,
            "pruner": anything,
        },
    ),
    n_trials=numbers,
    timeout=numbers,
)
def test_tuner_arguments(arguments, n_trials, timeout, tmp_path):
    from lightning_hpo import Tuner
    from tests.lightning_models import LinearRegression, RegressionData

    arguments.setdefault("search_space", {"lr": Float(1e-3, 1e-1, log=True)})
    tuner = only_our_errors(
        lambda: Tuner(LinearRegression, datamodule=RegressionData(), storage=":memory:", root_dir=tmp_path, **arguments)
    )
    # fit with a valid budget trains for real: only the rejected budgets are thrown at it here
    valid_budget = (n_trials is None or (type(n_trials) is int and n_trials >= 1)) and (
        timeout is None or (type(timeout) in (int, float) and timeout > 0)
    )
    if tuner is not None and not valid_budget:
        only_our_errors(lambda: tuner.fit(n_trials=n_trials, timeout=timeout))


@SETTINGS
@given(domains=st.dictionaries(st.sampled_from(["lr", "hidden", "activation", "other", "self"]), anything, max_size=3))
def test_decorator_arguments(domains):
    import lightning.pytorch as pl

    from lightning_hpo import tunable

    class Model(pl.LightningModule):
        def __init__(self, lr: float = 0.1, hidden: int = 4, activation: str = "relu") -> None:
            super().__init__()

    only_our_errors(lambda: tunable(**domains)(Model))
