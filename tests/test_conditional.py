"""Conditional parameters (``when=``): validation, samplers, storage, the GP's view, importance and
every place params are shown."""

from __future__ import annotations

import csv
import io
import math
import pickle

import numpy as np
import pytest
import torch

from lightning_hpo import (
    Categorical,
    Float,
    GPSampler,
    GridSampler,
    Int,
    RandomSampler,
    SearchSpace,
    SobolSampler,
    Study,
    Tuner,
    importance,
    tunable,
)
from lightning_hpo._config_space import search_space_from_config
from lightning_hpo.console import main
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, StudyMismatchError
from lightning_hpo.samplers._gp_space import INACTIVE_POSITION, GPSpace
from lightning_hpo.table import TrialTable
from tests.lightning_models import LinearRegression, RegressionData

SPACE = SearchSpace(
    {
        "optimizer": Categorical(["adam", "sgd"]),
        "lr": Float(1e-4, 1e-1, log=True),
        "momentum": Float(0.0, 0.99, when={"optimizer": "sgd"}),
        "nesterov": Categorical([False, True], when={"optimizer": "sgd"}),
        "dampening": Float(0.0, 0.5, when={"nesterov": False}),  # a chain: optimizer -> nesterov -> dampening
        "layers": Int(1, 3),
        "width3": Int(8, 64, log=True, when={"layers": [3]}),
    }
)


def objective(params):
    value = math.log10(params["lr"]) ** 2 / 10
    if params["optimizer"] == "sgd":
        value += (params["momentum"] - 0.9) ** 2 + (params["dampening"] if "dampening" in params else 0.0)
    else:
        value += 0.3
    return value + (abs(math.log2(params["width3"]) - 5) / 10 if params["layers"] == 3 else 0.2)


@pytest.mark.parametrize(
    "domains, error, message",
    [
        (
            {"a": Float(0, 1, when={"opt": "sgd"})},
            InvalidArgumentError,
            "Parameter 'a': when={'opt': ...} names an unknown parameter; the parent must be a parameter of the space, "
            "one of ['a']",
        ),
        (
            {"a": Float(0, 1), "b": Float(0, 1, when={"a": 0.5})},
            InvalidArgumentError,
            "names Float(0.0, 1.0); a parent must be another Categorical or Int parameter",
        ),
        ({"a": Int(0, 3, when={"a": 1})}, InvalidArgumentError, "when={'a': ...} names itself"),
        (
            {"opt": Categorical(["adam", "sgd"]), "m": Float(0, 1, when={"opt": ["sgd", "rmsprop"]})},
            InvalidArgumentError,
            "Parameter 'm': when={'opt': ...}: the value 'rmsprop' is not in 'opt''s domain Categorical(['adam', 'sgd'])",
        ),
        (
            {"n": Int(1, 3), "w": Int(1, 8, when={"n": 4})},
            InvalidArgumentError,
            "the value 4 is not in 'n''s domain Int(1, 3)",
        ),
        (
            {
                "a": Categorical([1, 2], when={"c": 1}),
                "b": Categorical([1, 2], when={"a": 1}),
                "c": Categorical([1, 2], when={"b": 2}),
            },
            InvalidArgumentError,
            "The when= conditions form a cycle: a -> c -> b -> a",
        ),
    ],
)
def test_bad_conditions_are_refused_when_the_space_is_built(domains, error, message):
    with pytest.raises(error) as info:
        SearchSpace(domains)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: Float(0, 1, when="sgd"), ArgumentTypeError, "`when` must be a non-empty mapping of parent name"),
        (lambda: Float(0, 1, when={}), ArgumentTypeError, "`when` must be a non-empty mapping"),
        (lambda: Int(0, 1, when={"opt": []}), InvalidArgumentError, "must list at least one value"),
        (lambda: Categorical(["a"], when={1: "x"}), ArgumentTypeError, "the parents in `when` must be parameter names"),
        (lambda: Float(0, 1, when={"opt": [["sgd"]]}), ArgumentTypeError, "must be hashable, but got ['sgd']"),
    ],
)
def test_bad_when_arguments_say_rule_and_value(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


def test_when_is_an_immutable_attribute_that_survives_pickle_json_and_repr():
    domain = Float(0.0, 0.99, when={"optimizer": "sgd"})
    assert domain.when == {"optimizer": ("sgd",)} and Float(0, 1).when == {}
    domain.when["optimizer"] = ("adam",)  # a copy: the domain is unchanged
    assert domain.when == {"optimizer": ("sgd",)}
    assert pickle.loads(pickle.dumps(domain)) == domain and domain != Float(0.0, 0.99)
    assert repr(domain) == "Float(0.0, 0.99, when={'optimizer': ['sgd']})"
    assert SearchSpace.from_json(SPACE.to_json()) == SPACE
    # Unconditional domains keep the stored form they always had, so existing studies reopen.
    assert Float(0, 1).to_json() == {"type": "float", "low": 0.0, "high": 1.0, "log": False}


def test_numpy_values_in_when_and_choices_are_stored_as_python_values(tmp_path):
    """They were stored by repr (``np.int64(2)``), so the stored space could not be built again."""
    space = {
        "opt": Categorical(np.array(["adam", "sgd"])),
        "momentum": Float(0.0, 0.9, when={"opt": np.str_("sgd")}),
        "layers": Int(1, 3),
        "width2": Int(8, 64, when={"layers": np.array([2, 3])}),
    }
    assert space["width2"].when == {"layers": (2, 3)} and type(space["width2"].when["layers"][0]) is int
    storage = f"sqlite:///{tmp_path / 'numpy.db'}"
    Study("numpy", search_space=space, storage=storage, seed=0).optimize(
        lambda p: p.get("momentum", 0.0) + p["layers"], n_trials=4
    )
    assert Study("numpy", storage=storage).space == SearchSpace(space)


def test_check_params_wants_exactly_the_active_names():
    SPACE.check_params({"optimizer": "adam", "lr": 1e-3, "layers": 1})
    SPACE.check_params(
        {"optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "nesterov": False, "dampening": 0.1, "layers": 1}
    )
    with pytest.raises(InvalidArgumentError, match=r"'momentum' is active only when optimizer in \['sgd'\], but got "):
        SPACE.check_params({"optimizer": "adam", "lr": 1e-3, "momentum": 0.9, "layers": 1})
    with pytest.raises(InvalidArgumentError, match=r"missing=\['momentum', 'nesterov'\] and unknown=\[\]"):
        SPACE.check_params({"optimizer": "sgd", "lr": 1e-3, "layers": 1})
    with pytest.raises(InvalidArgumentError, match=r"'dampening' is active only when nesterov in \[False\]"):
        SPACE.check_params(
            {"optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "nesterov": True, "dampening": 0.1, "layers": 1}
        )


@pytest.mark.parametrize(
    "sampler", [RandomSampler(seed=0), SobolSampler(seed=0), GPSampler(seed=0, n_startup_trials=4)], ids=repr
)
def test_every_sampler_gives_only_valid_active_sets(sampler, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = Study("cond", search_space=SPACE, storage=url, sampler=sampler)
    study.optimize(objective, n_trials=12 if isinstance(sampler, GPSampler) else 24)
    for trial in study.trials:
        SPACE.check_params(trial.params)
        assert ("momentum" in trial.params) == (trial.params["optimizer"] == "sgd")
    assert {len(t.params) for t in study.trials} != {len(SPACE)}  # some parameters were inactive
    # The stored space carries `when`: the study reopens with the same space, and not with the flat one.
    again = Study("cond", search_space=SPACE, storage=url, sampler=sampler)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]
    assert Study("cond", storage=url).space == SPACE
    with pytest.raises(StudyMismatchError, match="momentum: Float\\(0.0, 0.99, when="):
        Study("cond", search_space={n: d.with_when(None) for n, d in SPACE.items()}, storage=url)


def test_gp_space_pins_inactive_columns_through_chains():
    gp_space = GPSpace(SPACE)
    columns = {name: i for i, name in enumerate(SPACE)}
    adam = {"optimizer": "adam", "lr": 1e-3, "layers": 1}
    sgd = {"optimizer": "sgd", "lr": 1e-3, "momentum": 0.5, "nesterov": True, "layers": 3, "width3": 16}
    X = gp_space.from_unit(torch.tensor([SPACE.encode(adam), SPACE.encode(sgd)], dtype=torch.float64))
    assert not X.isnan().any()
    for name in ("momentum", "dampening", "width3"):  # inactive ordinal columns sit at the pin
        assert X[0, columns[name]] == INACTIVE_POSITION
    assert X[0, columns["nesterov"]] == 2  # an extra level of the categorical kernel: no choice
    assert X[1, columns["dampening"]] == INACTIVE_POSITION  # nesterov=True turns its child off
    assert X[1, columns["momentum"]] == SPACE["momentum"].encode(0.5)
    assert gp_space.active_mask(X).tolist() == [[n in adam for n in SPACE], [n in sgd for n in SPACE]]
    # Candidates differing only in inactive columns look the same to the acquisition.
    seen = []
    acquisition = gp_space.on_pinned_inputs(torch.nn.Module())
    acquisition.acquisition.forward = lambda X: seen.append(X) or X.sum(dim=-1)
    moved = X[:1].clone()
    moved[0, columns["momentum"]] = 0.9
    assert acquisition(moved) == acquisition(X[:1])
    assert gp_space.on_pinned_inputs(acquisition) is not acquisition
    assert GPSpace(SearchSpace({"x": Float(0, 1)})).on_pinned_inputs(acquisition) is acquisition


def test_importance_gives_an_unused_branch_nothing():
    space = SearchSpace(
        {
            "optimizer": Categorical(["adam", "sgd"]),
            "momentum": Float(0.0, 1.0, when={"optimizer": "sgd"}),
            "beta": Float(0.0, 1.0, when={"optimizer": "adam"}),  # active, but never matters
            "x": Float(0.0, 1.0),
        }
    )
    study = Study("imp", search_space=space, storage=":memory:", sampler=RandomSampler(seed=0))
    study.optimize(
        lambda p: (5 * (p["momentum"] - 0.5) ** 2 if p["optimizer"] == "sgd" else 1.0) + 0.1 * p["x"], n_trials=40
    )
    scores = importance(study, seed=0)
    assert set(scores) == set(space) and math.isclose(sum(scores.values()), 1.0)
    assert list(scores)[:2] == ["optimizer", "momentum"] and scores["beta"] < 0.01


def test_inactive_params_are_absent_in_the_table_csv_and_console(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = Study("shown", search_space=SPACE, storage=url, sampler=RandomSampler(seed=1))
    study.optimize(objective, n_trials=8)
    out = io.StringIO()
    TrialTable.of(study).to_csv(out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    for row, trial in zip(rows, study.trials):
        assert (row["params_momentum"] == "") == ("momentum" not in trial.params)
    assert any(row["params_momentum"] == "" for row in rows) and "nan" not in out.getvalue().lower()
    assert main(["trials", "--storage", url, "--study", "shown"]) == 0
    assert "nan" not in capsys.readouterr().out.lower()


def test_plots_skip_inactive_params(tmp_path):
    from lightning_hpo.plots import plot_parallel_coordinates, plot_slice

    study = Study("plots", search_space=SPACE, storage=":memory:", sampler=RandomSampler(seed=2))
    study.optimize(objective, n_trials=10)
    slice_figure = plot_slice(study)
    panel = slice_figure.axes[list(SPACE).index("momentum")]
    xs = np.ma.filled(panel.collections[0].get_offsets()[:, 0].astype(float), np.nan)
    assert np.isfinite(xs).sum() == sum("momentum" in t.params for t in study.trials) < len(study.trials)
    plot_parallel_coordinates(study).savefig(tmp_path / "parallel.png")
    slice_figure.savefig(tmp_path / "slice.png")


def test_the_cli_yaml_and_tunable_name_parents_by_config_key():
    decorated = SearchSpace(
        {"optimizer": Categorical(["adam", "sgd"]), "nesterov": Categorical([False, True], when={"optimizer": "sgd"})}
    )
    spec = {"model.init_args.momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"model.optimizer": "sgd"}}}
    space = search_space_from_config(spec, decorated)
    assert space["model.momentum"].when == {"model.optimizer": ("sgd",)}
    assert space["model.nesterov"].when == {"model.optimizer": ("sgd",)}
    with pytest.raises(InvalidArgumentError, match="when=\\{'optimizer': ...\\} names an unknown parameter"):
        search_space_from_config({"model.m": {"type": "float", "low": 0, "high": 1, "when": {"optimizer": "sgd"}}})


@tunable(
    lr=Float(0.01, 0.1, log=True),
    activation=Categorical(["relu", "tanh"]),
    hidden=Int(2, 4, when={"activation": "tanh"}),
)
class ConditionalRegression(LinearRegression):
    """``hidden`` is tuned only with tanh; relu trials get the default of ``__init__`` (8)."""


def test_a_tuner_trial_gets_the_modules_default_for_an_inactive_param(tmp_path):
    tuner = Tuner(
        ConditionalRegression,
        datamodule=RegressionData(),
        trainer_kwargs={"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1},
        sampler=RandomSampler(seed=2),
        root_dir=tmp_path / "runs",
        keep_checkpoints="all",  # every trial's model is loaded below
    )
    result = tuner.fit(n_trials=4)
    assert {t.params["activation"] for t in result.trials} == {"relu", "tanh"}
    for trial in result.trials:
        assert ("hidden" in trial.params) == (trial.params["activation"] == "tanh")
        model = result.load_model(trial)
        assert model.net[0].out_features == trial.params.get("hidden", 8)


@pytest.mark.parametrize("method", ["optuna_tpe", "hyperopt_tpe", "random"])
def test_conditional_benchmark_methods_sample_valid_active_sets(method):
    from benchmarks.conditional import METHODS, jenatton

    task = jenatton()
    trace = METHODS[method][1](task, 12, 0)
    space = SearchSpace(task.task.space)
    for params, value in zip(trace.params, trace.true):
        space.check_params(params)
        assert value >= task.optimum
    assert {p["x1"] for p in trace.params} == {0, 1}


def test_the_cli_tunes_a_yaml_space_with_when(tmp_path, monkeypatch):
    import yaml

    from lightning_hpo.cli import LightningCLI

    monkeypatch.setattr("sys.argv", ["train.py"])
    config = tmp_path / "cfg.yaml"
    trainer = {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1}
    space = {
        "model.activation": ["relu", "tanh"],
        "model.hidden": {"type": "int", "low": 2, "high": 3, "when": {"model.activation": "tanh"}},
    }
    tune = {"n_trials": 3, "show_progress": False, "sampler": "random", "seed": 0, "search_space": space}
    config.write_text(yaml.safe_dump({"trainer": trainer, "model": {"hidden": 5}, "tune": tune}))
    cli = LightningCLI(LinearRegression, RegressionData, args=["tune", "--config", str(config)])
    assert cli.study.space["model.hidden"].when == {"model.activation": ("tanh",)}
    trials = cli.study.trials
    assert [t.params.get("model.hidden") for t in trials] == [2, 3, None]
    for trial in trials:  # the config's value (5) stays where the key was inactive
        assert yaml.safe_load(trial.attrs["config"])["model"]["hidden"] == trial.params.get("model.hidden", 5)


def test_a_grid_over_a_conditional_space_runs_each_active_set_once():
    space = {
        "opt": Categorical(["adam", "sgd"]),
        "momentum": Float(0.0, 0.99, when={"opt": "sgd"}),
        "layers": Int(1, 2),
        "width2": Int(4, 5, when={"layers": 2}),
    }
    study = Study("grid", search_space=space, storage=":memory:", sampler=GridSampler({"momentum": [0.0, 0.9]}, seed=0))
    study.optimize(lambda p: p["layers"] + p.get("momentum", 0.0), n_trials=None)
    points = [tuple(sorted(t.params.items())) for t in study.trials]
    # opt: adam, sgd x 2 momenta = 3 branches; layers: 1, 2 x 2 widths = 3 branches.
    assert len(points) == len(set(points)) == 9
    assert all(("momentum" in t.params) == (t.params["opt"] == "sgd") for t in study.trials)


def test_an_enqueued_partial_config_gets_the_parameters_its_values_make_active():
    space = {"opt": Categorical(["adam", "sgd"]), "momentum": Float(0.0, 0.99, when={"opt": "sgd"}), "lr": Float(0, 1)}
    study = Study("enqueue", search_space=space, storage=":memory:", seed=3)
    for opt in ["sgd", "adam", "sgd"]:
        study.enqueue({"opt": opt})
    for _ in range(3):
        trial = study.ask()
        study.space.check_params(trial.params)
        study.tell(trial, trial.params["lr"])
    assert [t.params["opt"] for t in study.trials] == ["sgd", "adam", "sgd"]
    assert ["momentum" in t.params for t in study.trials] == [True, False, True]


def test_a_warm_start_into_a_conditional_space_keeps_each_trials_active_parameters():
    flat = Study(
        "flat", search_space={"opt": Categorical(["adam", "sgd"]), "momentum": Float(0, 1)}, storage=":memory:"
    )
    for opt, momentum in [("adam", 0.5), ("sgd", 0.9)]:
        flat.add_trial({"opt": opt, "momentum": momentum}, 1.0)
    space = {"opt": Categorical(["adam", "sgd"]), "momentum": Float(0, 1, when={"opt": "sgd"})}
    study = Study("tree", search_space=space, storage=flat.storage)
    study.add_trials_from(flat)
    assert [t.params for t in study.trials] == [{"opt": "adam"}, {"opt": "sgd", "momentum": 0.9}]


def test_an_optuna_sampler_on_a_conditional_space_gives_only_active_parameters():
    import optuna

    from lightning_hpo import OptunaSampler

    space = {"opt": Categorical(["adam", "sgd"]), "momentum": Float(0.0, 0.99, when={"opt": "sgd"}), "lr": Float(0, 1)}
    sampler = OptunaSampler(optuna.samplers.TPESampler(seed=0, n_startup_trials=3))
    study = Study("tpe", search_space=space, storage=":memory:", sampler=sampler)
    study.optimize(lambda p: p["lr"] + p.get("momentum", 0.0), n_trials=8)
    assert all(("momentum" in t.params) == (t.params["opt"] == "sgd") for t in study.trials)
    assert {t.params["opt"] for t in study.trials} == {"adam", "sgd"}


def test_the_digits_benchmark_task_trains_the_layers_and_optimizer_its_active_params_name():
    from benchmarks.conditional import METHODS, digits_mlp

    task = digits_mlp()
    objective = task.task.make_objective(0)
    adam = {"optimizer": "adam", "lr": 3e-3, "beta1": 0.9, "layers": 1, "width_1": 16, "dropout": 0.0}
    # The flattened space's methods pass every parameter: the inactive ones change nothing.
    unused = {"momentum": 0.5, "width_2": 200, "width_3": 100}
    assert objective(adam).true == objective({**adam, **unused}).true
    assert objective(adam).true != objective({**adam, "layers": 2, "width_2": 16}).true
    # Hyperopt's tree gives a width per layer under the layer counts that have it.
    trace = METHODS["hyperopt_tpe"][1](task, 3, 0)
    space = SearchSpace(task.task.space)
    for params in trace.params:
        space.check_params(params)
        assert [k for k in (1, 2, 3) if f"width_{k}" in params] == list(range(1, params["layers"] + 1))
