"""Study.enqueue (stored, any worker runs it), Study.add_trial, warm starts, and the CLI's --tune.enqueue."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import yaml

from lightning_hpo import Categorical, Float, Int, RandomSampler, Study
from lightning_hpo.cli import LightningCLI
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, StudyMismatchError
from lightning_hpo.trial import ENQUEUED, WARM_START_FROM, TrialState
from tests.lightning_models import LinearRegression, RegressionData

SPACE = {"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 4), "opt": Categorical(["adam", "sgd"])}


def make_study(storage: str = ":memory:", name: str = "s", space: dict = SPACE, **kwargs) -> Study:
    return Study(name, search_space=space, storage=storage, sampler=RandomSampler(seed=0), **kwargs)


# -- enqueue ---------------------------------------------------------------------------------------


def test_enqueued_configs_run_first_in_order_and_partial_ones_are_filled_by_the_sampler():
    study = make_study()
    study.enqueue({"lr": 1e-3, "layers": 2, "opt": "sgd"})
    study.enqueue({"lr": 1e-2})
    assert study.enqueued == [{"layers": 2, "lr": 1e-3, "opt": "sgd"}, {"lr": 1e-2}]
    study.optimize(lambda p: p["lr"], n_trials=3)
    first, second, third = study.trials
    assert first.params == {"lr": 1e-3, "layers": 2, "opt": "sgd"} and first.attrs[ENQUEUED] == ["layers", "lr", "opt"]
    assert second.params["lr"] == 1e-2 and second.attrs[ENQUEUED] == ["lr"]
    assert set(second.params) == set(SPACE) and SPACE["layers"].contains(second.params["layers"])
    assert ENQUEUED not in third.attrs and study.enqueued == []


def test_an_enqueued_config_counts_towards_n_trials_and_waits_while_n_trials_is_reached():
    study = make_study()
    study.optimize(lambda p: 0.0, n_trials=2)
    study.enqueue({"layers": 3})
    study.optimize(lambda p: 0.0, n_trials=2)  # reached: nothing runs, the config stays queued
    assert len(study.trials) == 2 and study.enqueued == [{"layers": 3}]
    study.optimize(lambda p: 0.0, n_trials=3)
    assert study.trials[-1].params["layers"] == 3 and study.enqueued == []


def test_skip_if_exists_does_not_enqueue_a_config_that_is_queued_or_ran():
    study = make_study()
    study.enqueue({"layers": 2}, skip_if_exists=True)
    study.enqueue({"layers": 2}, skip_if_exists=True)
    assert study.enqueued == [{"layers": 2}]
    study.optimize(lambda p: 0.0, n_trials=1)
    study.enqueue({"layers": 2}, skip_if_exists=True)
    assert study.enqueued == []
    study.enqueue({"layers": 2})  # without it: run it again
    assert study.enqueued == [{"layers": 2}]


def test_numpy_values_are_enqueued_as_python_values():
    import numpy as np

    study = make_study()
    study.enqueue({"lr": np.float32(0.0625), "layers": np.int64(3), "opt": np.str_("sgd")})
    assert study.enqueued == [{"layers": 3, "lr": 0.0625, "opt": "sgd"}]
    study.optimize(lambda p: p["lr"], n_trials=1)
    assert study.trials[0].params == {"layers": 3, "lr": 0.0625, "opt": "sgd"}
    assert type(study.trials[0].params["layers"]) is int


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (
            {"lrr": 0.01},
            InvalidArgumentError,
            r"Study 's': enqueue: every name must be a parameter of the search space \(layers, lr, opt\), but 'lrr'",
        ),
        (
            {"lr": 0.5},
            InvalidArgumentError,
            r"parameter 'lr' must be a value of Float\(0.0001, 0.1, log=True\), but got 0.5",
        ),
        ({"layers": 2.5}, InvalidArgumentError, r"parameter 'layers' must be a value of Int\(1, 4\), but got 2.5"),
        ({"opt": "rmsprop"}, InvalidArgumentError, r"parameter 'opt' must be a value of Categorical"),
        ({}, InvalidArgumentError, r"must name at least one parameter"),
        ([("lr", 0.01)], ArgumentTypeError, r"must be a dict of name -> value"),
    ],
)
def test_bad_enqueued_params_are_refused_naming_the_parameter(params, error, message):
    study = make_study()
    with pytest.raises(error, match=message):
        study.enqueue(params)
    assert study.enqueued == []


ENQUEUE_AND_WORK = textwrap.dedent(
    """
    import sys
    from lightning_hpo import Float, Int, RandomSampler, Study
    space = {"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 4)}
    study = Study("shared", search_space=space, storage=sys.argv[1], sampler=RandomSampler(seed=int(sys.argv[2])))
    study.optimize(lambda p: p["lr"], n_trials=int(sys.argv[3]))
    """
)


@pytest.mark.slow
def test_a_config_enqueued_by_one_process_is_run_once_by_whichever_worker_asks_next(shared_storage_url, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(ENQUEUE_AND_WORK)

    def run(seed: int, what: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(script), shared_storage_url, str(seed), what])

    study = Study(
        "shared", search_space={"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 4)}, storage=shared_storage_url
    )
    study.enqueue({"lr": 0.001, "layers": 4})
    study.enqueue({"layers": 1})
    workers = [run(seed, "6") for seed in (1, 2)]
    assert [w.wait(timeout=240) for w in workers] == [0, 0]
    enqueued = [t for t in study.trials if ENQUEUED in t.attrs]
    assert [t.params for t in enqueued][0] == {"lr": 0.001, "layers": 4}
    assert [t.params["layers"] for t in enqueued] == [4, 1] and study.enqueued == []
    assert [t.number for t in enqueued] == [0, 1]
    assert len(study.trials) == 6


# -- add_trial -------------------------------------------------------------------------------------


def test_add_trial_imports_a_known_result_that_samplers_and_n_trials_see():
    study = make_study()
    known = study.add_trial({"lr": 1e-3, "layers": 2, "opt": "adam"}, 0.25, intermediate_values={1: 0.5, 2: 0.25})
    assert known.state is TrialState.COMPLETE and known.values == (0.25,)
    assert known.intermediate_values == {1: 0.5, 2: 0.25}
    assert study.best_trial.number == known.number
    pruned = study.add_trial(
        {"lr": 1e-2, "layers": 1, "opt": "sgd"}, intermediate_values={1: 0.9}, state=TrialState.PRUNED
    )
    assert pruned.state is TrialState.PRUNED and pruned.values == (0.9,)
    study.optimize(lambda p: 1.0, n_trials=3)
    assert len(study.trials) == 3


def test_add_trial_with_several_objectives():
    study = make_study(mode=["min", "max"])
    trial = study.add_trial({"lr": 1e-3, "layers": 2, "opt": "adam"}, (0.3, 7.0), {1: (0.5, 6.0)})
    assert trial.values == (0.3, 7.0) and trial.intermediate_vectors == {1: (0.5, 6.0)}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (({"lr": 1e-3, "layers": 2}, 0.1), {}, r"Parameters must have exactly the names"),
        (({"lr": 1e-3, "layers": 9, "opt": "adam"}, 0.1), {}, r"Parameter 'layers': 9 is not in Int\(1, 4\)"),
        (({"lr": 1e-3, "layers": 2, "opt": "adam"}, float("nan")), {}, r"value must be finite, but got nan"),
        (({"lr": 1e-3, "layers": 2, "opt": "adam"},), {}, r"needs a `value` or `intermediate_values`"),
        (({"lr": 1e-3, "layers": 2, "opt": "adam"}, 0.1), {"state": TrialState.FAIL}, r"must be COMPLETE or PRUNED"),
        (({"lr": 1e-3, "layers": 2, "opt": "adam"}, 0.1, {-1: 0.2}), {}, r"steps must be ints in \[0, 2\*\*63\)"),
        (
            ({"lr": 1e-3, "layers": 2, "opt": "adam"}, (0.1, 0.2)),
            {},
            r"one objective, so the objective value must be one",
        ),
    ],
)
def test_bad_imports_are_refused_and_leave_no_trial(args, kwargs, message):
    study = make_study()
    with pytest.raises(InvalidArgumentError, match=message):
        study.add_trial(*args, **kwargs)
    assert study.trials == []


# -- warm start ------------------------------------------------------------------------------------


def test_warm_start_imports_the_finished_trials_that_fit_the_new_space_once(tmp_path):
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    old = make_study(storage, name="narrow", space={"lr": Float(1e-3, 1e-1, log=True), "layers": Int(1, 8)})
    old.optimize(lambda p: p["lr"] * p["layers"], n_trials=8)
    failed = old.ask()
    old.tell(failed, state=TrialState.FAIL, error="x")
    # The changed space is a new study: the old one's name with another space stays refused.
    with pytest.raises(StudyMismatchError):
        make_study(storage, name="narrow", space=SPACE)
    new = make_study(storage, name="wide", space=SPACE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imported = new.add_trials_from("narrow", fill={"opt": "adam"})  # the old trials ran with adam
    fits = [t for t in old.get_trials([TrialState.COMPLETE]) if t.params["layers"] <= 4]
    assert 0 < len(fits) < 8
    assert [t.attrs[WARM_START_FROM] for t in imported] == [f"narrow#{t.number}" for t in fits]
    assert [t.values for t in imported] == [t.values for t in fits]
    assert [t.params for t in imported] == [{**src.params, "opt": "adam"} for src in fits]
    (warning,) = caught
    assert f"{8 - len(fits)} trial(s) of 'narrow' lie outside the new search space" in str(warning.message)
    assert "is outside Int(1, 4)" in str(warning.message)
    assert new.add_trials_from(old, fill={"opt": "adam"}) == []  # idempotent: a script may warm start on every run
    assert len(new.trials) == len(fits)


def test_warm_start_drops_trials_missing_a_new_parameter_and_leaves_out_removed_ones(tmp_path):
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    old = make_study(storage, name="old", space={"lr": Float(1e-4, 1e-1, log=True), "momentum": Float(0.0, 1.0)})
    old.add_trial({"lr": 1e-3, "momentum": 0.9}, 0.5, {1: 0.7})
    wider = make_study(storage, name="lr_only", space={"lr": Float(1e-5, 1.0, log=True)})
    (trial,) = wider.add_trials_from(old)
    assert trial.params == {"lr": 1e-3} and trial.values == (0.5,) and trial.intermediate_values == {1: 0.7}
    more = make_study(storage, name="more", space={"lr": Float(1e-4, 1e-1, log=True), "wd": Float(0.0, 1.0)})
    with pytest.warns(UserWarning, match=r"trial 0 \(it has no 'wd'\)"):
        assert more.add_trials_from("old") == []


def test_warm_start_across_modes_is_refused():
    old = make_study(name="a", mode="max")
    with pytest.raises(InvalidArgumentError, match=r"has mode 'max', but 's' has 'min'"):
        make_study(storage=old.storage).add_trials_from(old)


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_enqueue_and_grid_run_the_baseline_then_the_grid_and_a_rerun_resumes(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py"])
    trainer = {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "log_every_n_steps": 1, "limit_train_batches": 2}
    (tmp_path / "trainer.yaml").write_text(yaml.safe_dump(trainer))
    (tmp_path / "baseline.yaml").write_text(yaml.safe_dump([{"model.lr": 0.05}]))
    args = [
        "tune", "--trainer", "trainer.yaml", "--tune.show_progress", "false",
        "--tune.search_space", '{"model.lr": [0.01, 0.05, 0.1]}', "--tune.pruner", "nop",
        "--tune.sampler", "grid", "--tune.n_trials", "null", "--tune.enqueue", "baseline.yaml",
    ]  # fmt: skip
    cli = LightningCLI(LinearRegression, RegressionData, args=args)
    lrs = [t.params["model.lr"] for t in cli.study.trials]
    assert lrs[0] == 0.05 and sorted(lrs[1:]) == [0.01, 0.05, 0.1]
    cli.study.storage.close()
    cli = LightningCLI(LinearRegression, RegressionData, args=args)  # the baseline ran: not enqueued again
    assert len(cli.study.trials) == 4


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"model.lrr": 0.1}]', "but 'model.lrr' is not"),
        ('[{"model.lr": 0.2}]', "parameter 'model.lr' must be a value of Categorical([0.01, 0.1])"),
        ("missing.yaml", "'missing.yaml' is not a file"),
    ],
)
def test_cli_rejects_bad_enqueued_configs(value, message, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py"])
    args = ["tune", "--tune.show_progress", "false", "--tune.search_space", '{"model.lr": [0.01, 0.1]}']
    with pytest.raises(SystemExit) as exit_info:
        LightningCLI(LinearRegression, RegressionData, args=[*args, "--tune.enqueue", value])
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_deleting_a_study_deletes_its_queue(tmp_path):
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    make_study(storage).enqueue({"layers": 2})
    make_study(storage).storage.delete_study("s")
    assert make_study(storage).enqueued == []  # a new study of that name (and maybe that id) starts empty
