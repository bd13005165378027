"""The search space over config keys of the ``tune`` subcommand, on plain dicts (no Lightning, no parser)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_hpo import Categorical, CurvePruner, Float, Int, MedianPruner, NopPruner, SobolSampler
from lightning_hpo._config_space import (
    PRUNER_NAMES,
    SAMPLER_NAMES,
    by_name,
    check_space_fits,
    locate,
    search_space_from_config,
    take_search_space_flags,
    with_params,
)
from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.pruners import Pruner
from lightning_hpo.samplers.base import Sampler

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "spec, decorated, expected",
    [
        (
            {"model.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}},
            None,
            {"model.lr": Float(1e-4, 0.1, log=True)},
        ),
        ({"data.batch_size": [16, 32]}, None, {"data.batch_size": Categorical([16, 32])}),
        ({"model.init_args.lr": {"type": "float", "low": 0.1, "high": 0.2}}, None, {"model.lr": Float(0.1, 0.2)}),
        (None, {"lr": Float(0.1, 0.2)}, {"model.lr": Float(0.1, 0.2)}),
        (
            {"model.lr": {"type": "float", "low": 0.3, "high": 0.4}},
            {"lr": Float(0.1, 0.2)},
            {"model.lr": Float(0.3, 0.4)},
        ),
        ({"model.lr": None, "data.batch_size": [8]}, {"lr": Float(0.1, 0.2)}, {"data.batch_size": Categorical([8])}),
        (
            {"model.hidden": {"type": "int", "low": 2, "high": 8}, "model.lr": None},
            {"lr": Float(0.1, 0.2), "hidden": Int(4, 16)},
            {"model.hidden": Int(2, 8)},
        ),
    ],
)
def test_search_space_joins_the_decorator_and_the_config(spec, decorated, expected) -> None:
    assert search_space_from_config(spec, decorated) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"model.lr": {"type": "flot", "low": 1, "high": 2}}, "type float, int or categorical"),
        ({"model.lr": {"type": "float", "low": 1}}, "missing: ['high']"),
        ({"model.lr": {"type": "float", "low": 1, "high": 2, "lg": True}}, "unknown: ['lg']"),
        ({"model.lr": {"type": "float", "low": 2, "high": 1}}, "`low < high` must hold"),
        ({"model.lr": None}, "The search space is empty"),
        ({"model.opt": {"choices": ["adam", "sgd"]}}, "tune.search_space['model.opt'] must be a mapping with type"),
        ({"model.lr": 0.1}, "tune.search_space['model.lr'] must be a mapping with type"),
        ([["model.lr", [0.1]]], "tune.search_space must map config keys to domains"),
    ],
)
def test_search_space_errors_name_the_key_and_the_rule(spec, message) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        search_space_from_config(spec)


SUBCLASS_CONFIG = {
    "model": {"class_path": "pkg.Net", "init_args": {"lr": 0.1, "hidden": 8}},
    "data": {"batch_size": 16},
    "trainer": {"callbacks": [{"class_path": "EarlyStopping", "init_args": {"patience": 3}}], "logger": None},
}


@pytest.mark.parametrize(
    "key, container, index",
    [
        ("model.lr", SUBCLASS_CONFIG["model"]["init_args"], "lr"),  # init_args implied
        ("model.init_args.hidden", SUBCLASS_CONFIG["model"]["init_args"], "hidden"),
        ("data.batch_size", SUBCLASS_CONFIG["data"], "batch_size"),
        ("trainer.callbacks.0.patience", SUBCLASS_CONFIG["trainer"]["callbacks"][0]["init_args"], "patience"),
    ],
)
def test_locate_finds_the_value_a_key_names(key, container, index) -> None:
    assert locate(SUBCLASS_CONFIG, key) == (container, index)


@pytest.mark.parametrize(
    "key, message",
    [
        ("model.lrr", "'model' has no 'lrr' (it has ['hidden', 'lr']; did you mean 'model.lr'?)"),
        ("nothing.here", "the config has no 'nothing'"),
        ("trainer.callbacks.1.patience", "'trainer.callbacks' has no '1'"),
        ("trainer.logger.save_dir", "'trainer.logger' has no 'save_dir' (it is null in the config: set it first)"),
        ("data.batch_size.x", "'data.batch_size' has no 'x' (it is 16)"),
    ],
)
def test_a_key_that_names_nothing_says_what_is_there(key, message) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(f"Search-space key {key!r} names nothing in the config")):
        locate(SUBCLASS_CONFIG, key)
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        locate(SUBCLASS_CONFIG, key)


def test_with_params_sets_each_key_on_a_copy() -> None:
    config = with_params(SUBCLASS_CONFIG, {"model.lr": 0.5, "trainer.callbacks.0.patience": 7, "data.batch_size": (1,)})
    assert config["model"]["init_args"] == {"lr": 0.5, "hidden": 8}
    assert config["trainer"]["callbacks"][0]["init_args"]["patience"] == 7
    assert config["data"]["batch_size"] == [1]  # a tuple choice as YAML holds it
    assert SUBCLASS_CONFIG["model"]["init_args"]["lr"] == 0.1  # the base is untouched


def parse_like_a_typed_parser(config: dict) -> dict:
    """Stands in for the ``fit`` parser's checks: ``hidden`` must be an int."""
    hidden = config["model"]["init_args"]["hidden"]
    if not isinstance(hidden, int):
        raise TypeError(f"Expected an int for model.init_args.hidden, got {hidden!r}")
    return config


def test_check_space_fits_tries_every_choice_and_the_low_end() -> None:
    fits = search_space_from_config({"model.hidden": [4, 8], "model.lr": {"type": "float", "low": 0.1, "high": 1.0}})
    check_space_fits(parse_like_a_typed_parser, SUBCLASS_CONFIG, fits)

    bad_choice = search_space_from_config({"model.hidden": [4, "wide"]})
    with pytest.raises(InvalidArgumentError) as error:
        check_space_fits(parse_like_a_typed_parser, SUBCLASS_CONFIG, bad_choice)
    assert str(error.value) == (
        "Search-space key 'model.hidden': the config does not accept the value 'wide' of Categorical([4, 'wide']): "
        "Expected an int for model.init_args.hidden, got 'wide'"
    )
    bad_type = search_space_from_config({"model.hidden": {"type": "float", "low": 1.0, "high": 8.0}})
    with pytest.raises(InvalidArgumentError, match=r"does not accept the value 1\.0 of Float\(1\.0, 8\.0\)"):
        check_space_fits(parse_like_a_typed_parser, SUBCLASS_CONFIG, bad_type)
    with pytest.raises(InvalidArgumentError, match="'model' has no 'width'"):
        check_space_fits(parse_like_a_typed_parser, SUBCLASS_CONFIG, search_space_from_config({"model.width": [1]}))


@pytest.mark.parametrize(
    "argv, kept, flags",
    [
        (
            ["tune", "--tune.search_space.model.hidden", "[16, 32]", "--tune.search_space.model.lr=null", "-c", "x"],
            ["tune", "-c", "x"],
            {"model.hidden": [16, 32], "model.lr": None},
        ),
        (
            ["--tune.search_space", '{"a.b": [1]}', "--tune.search_space.a.c", '{"type": "int", "low": 1, "high": 2}'],
            ["--tune.search_space", '{"a.b": [1]}'],
            {"a.c": {"type": "int", "low": 1, "high": 2}},
        ),
        (["--tune.search_space.a.b=[1]", "--tune.search_space.a.b=[2]"], [], {"a.b": [2]}),  # the last one counts
        (["fit", "--tune.search_space.model.hidden"], ["fit", "--tune.search_space.model.hidden"], {}),  # no value
        (["--tune.search_space.", "[1]"], ["--tune.search_space.", "[1]"], {}),  # no key
    ],
)
def test_search_space_flags_are_taken_out_of_the_arguments(argv, kept, flags) -> None:
    assert take_search_space_flags(argv, json.loads) == (kept, flags)


def test_samplers_and_pruners_by_name() -> None:
    sampler = by_name("sampler", "Sobol", SAMPLER_NAMES, Sampler, seed=3)
    assert isinstance(sampler, SobolSampler) and sampler.seed == 3
    assert isinstance(by_name("pruner", "nop", PRUNER_NAMES, Pruner, seed=3), NopPruner)  # takes no seed
    assert isinstance(by_name("pruner", "curve", PRUNER_NAMES, Pruner), CurvePruner)
    median = MedianPruner(n_startup_trials=1)
    assert by_name("pruner", median, PRUNER_NAMES, Pruner) is median
    assert by_name("pruner", None, PRUNER_NAMES, Pruner) is None
    with pytest.raises(InvalidArgumentError) as error:
        by_name("sampler", "sobl", SAMPLER_NAMES, Sampler)
    assert str(error.value) == (
        "--tune.sampler 'sobl' is neither a known name (sobol, random, gp, grid) nor a Sampler class path "
        "(e.g. lightning_hpo.SobolSampler)."
    )


def test_the_module_imports_neither_lightning_nor_a_parser() -> None:
    code = (
        "import sys, lightning_hpo._config_space; "
        "print(*(m in sys.modules for m in ('lightning', 'torch', 'jsonargparse')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.split() == ["False", "False", "False"]
