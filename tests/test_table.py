"""Every trial as a table: TrialTable's rows, its CSV and JSON, and Study.trials_dataframe()."""

from __future__ import annotations

import csv
import doctest
import io
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

import lightning_hpo.table
from lightning_hpo import Categorical, Float, Int, NopPruner, SearchSpace, Study, StudySnapshot, TrialState, Tuner
from lightning_hpo.exceptions import LightningHPOError, MissingExtraError
from lightning_hpo.export import LOGGER_DIR_ATTR, TRACKER_RUNS_ATTR
from lightning_hpo.table import TrialTable
from lightning_hpo.trial import MONITOR, Trial
from tests.lightning_models import LinearRegression, RegressionData, SizedRegression

SPACE = {"lr": Float(1e-4, 1e-1, log=True), "opt": Categorical(["adam", "sgd"])}
ERROR = 'Traceback (most recent call last):\n  File "train.py", line 3\nValueError: diverged, "badly"'


def _one_trial_in_each_state(url: str, mode: str | list[str] = "min") -> Study:
    """Trials 0-3: COMPLETE after reports at steps 10 and 20, FAIL, PRUNED at step 40, still RUNNING."""
    study = Study("table", search_space=SPACE, mode=mode, storage=url, seed=0)

    def objective(*values: float) -> float | tuple[float, ...]:
        return values[0] if isinstance(mode, str) else values

    done = study.ask()
    study.report(done, 10, objective(0.3, 0.3))
    study.report(done, 20, objective(0.2, 0.2))
    study.tell(done, objective(0.2, 7.0))
    study.tell(study.ask(), state=TrialState.FAIL, error=ERROR)
    pruned = study.ask()
    study.report(pruned, 40, objective(0.5, 0.5))
    study.tell(pruned, state=TrialState.PRUNED)
    study.ask()
    return study


def _csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames), list(reader)


def _csv_text(table: TrialTable) -> str:
    buffer = io.StringIO()
    table.to_csv(buffer)
    return buffer.getvalue()


def test_one_row_per_trial_with_every_column(storage_url):
    study = _one_trial_in_each_state(storage_url)
    table = TrialTable.of(study)
    assert ",".join(table.columns) == (
        "number,state,value,params_lr,params_opt,datetime_start,datetime_complete,duration_s,last_step,n_reports,"
        "error,log_dir,checkpoint"
    )
    rows = table.rows
    assert all(tuple(row) == table.columns for row in rows)
    assert [row["number"] for row in rows] == [0, 1, 2, 3]
    assert [row["state"] for row in rows] == ["COMPLETE", "FAIL", "PRUNED", "RUNNING"]
    assert [row["value"] for row in rows] == [0.2, None, 0.5, None]  # a PRUNED trial keeps its best report
    assert [row["last_step"] for row in rows] == [20, None, 40, None]
    assert [row["n_reports"] for row in rows] == [2, 0, 1, 0]
    assert [row["error"] for row in rows] == [None, ERROR, None, None]  # the whole traceback
    for row, trial in zip(rows, study.trials):
        assert (row["params_lr"], row["params_opt"]) == (trial.params["lr"], trial.params["opt"])
        assert row["datetime_start"] == trial.datetime_start and row["datetime_start"].tzinfo == timezone.utc
        assert row["datetime_complete"] == trial.datetime_complete and row["duration_s"] == trial.duration
        assert row["log_dir"] is None and row["checkpoint"] is None
    assert rows[3]["datetime_complete"] is None and rows[3]["duration_s"] is None
    assert rows[0]["duration_s"] == (rows[0]["datetime_complete"] - rows[0]["datetime_start"]).total_seconds() > 0

    frame = study.trials_dataframe()
    assert list(frame.columns) == list(table.columns) and len(frame) == 4
    assert frame["state"].tolist() == ["COMPLETE", "FAIL", "PRUNED", "RUNNING"]
    assert str(frame["datetime_start"].dtype).startswith("datetime64") and str(frame["datetime_start"].dt.tz) == "UTC"
    assert frame["datetime_start"].tolist() == [pd.Timestamp(t.datetime_start) for t in study.trials]


def test_csv_reads_back_with_the_csv_module_and_with_pandas(tmp_path):
    study = _one_trial_in_each_state(f"sqlite:///{tmp_path / 'studies.db'}")
    table = TrialTable.of(study)
    text = _csv_text(table)
    header, rows = _csv_rows(text)
    assert header == list(table.columns) and len(rows) == 4
    complete, failed, pruned, running = rows
    assert (complete["number"], complete["state"], float(complete["value"])) == ("0", "COMPLETE", 0.2)
    assert float(complete["params_lr"]) == study.trials[0].params["lr"]  # floats keep every digit
    assert datetime.fromisoformat(complete["datetime_start"]) == study.trials[0].datetime_start
    assert complete["datetime_start"].endswith("+00:00")
    assert (complete["last_step"], complete["n_reports"], complete["error"]) == ("20", "2", "")
    assert failed["error"] == ERROR  # newlines, commas and quotes survive the quoting
    assert (failed["value"], pruned["last_step"], running["datetime_complete"], running["duration_s"]) == (
        "",
        "40",
        "",
        "",
    )

    frame = pd.read_csv(io.StringIO(text), parse_dates=["datetime_start", "datetime_complete"])
    assert list(frame.columns) == list(table.columns)
    assert frame["number"].tolist() == [0, 1, 2, 3] and frame["last_step"].tolist()[::2] == [20, 40]
    assert frame["value"].isna().tolist() == [False, True, False, True]
    assert frame["error"][1] == ERROR and frame["datetime_start"][0] == pd.Timestamp(study.trials[0].datetime_start)


def test_json_is_an_array_of_rows(tmp_path):
    study = _one_trial_in_each_state(f"sqlite:///{tmp_path / 'studies.db'}")
    table = TrialTable.of(study)
    rows = json.loads(table.to_json())
    assert [list(row) for row in rows] == [list(table.columns)] * 4
    assert [row["value"] for row in rows] == [0.2, None, 0.5, None]
    assert rows[1]["error"] == ERROR and rows[3]["datetime_complete"] is None
    assert [datetime.fromisoformat(row["datetime_start"]) for row in rows] == [t.datetime_start for t in study.trials]
    frame = pd.read_json(io.StringIO(table.to_json()), orient="records")
    assert list(frame.columns) == list(table.columns) and frame["state"].tolist()[-1] == "RUNNING"


def test_several_objectives_have_a_column_each(tmp_path):
    study = _one_trial_in_each_state(f"sqlite:///{tmp_path / 'studies.db'}", mode=["min", "max"])
    table = TrialTable.of(study)
    assert table.columns[:5] == ("number", "state", "values_0", "values_1", "params_lr")
    assert [(row["values_0"], row["values_1"]) for row in table.rows] == [
        (0.2, 7.0),
        (None, None),
        (0.5, 0.5),
        (None, None),
    ]
    header, rows = _csv_rows(_csv_text(table))
    assert header == list(table.columns) and [row["values_1"] for row in rows] == ["7.0", "", "0.5", ""]
    frame = study.trials_dataframe()
    assert frame["values_1"].isna().tolist() == [False, True, False, True]


def _snapshot(trials: list[Trial], directions: tuple[str, ...] = ("min",)) -> StudySnapshot:
    space = SearchSpace({"lr": Float(0.01, 1.0), "layers": Int(1, 4)})
    return StudySnapshot("handmade", space, directions, tuple(trials))


@pytest.mark.parametrize(
    "monitor, directions, expected",
    [
        (["val_loss"], ("min",), ["value_val_loss"]),
        (["val_loss", "n_params"], ("min", "min"), ["values_val_loss", "values_n_params"]),
        (["val_loss", "val_loss"], ("min", "max"), ["values_0", "values_1"]),  # names that would collide
    ],
)
def test_value_columns_are_named_after_the_monitored_metrics(monitor, directions, expected):
    values = tuple(float(i) for i in range(len(directions)))
    trial = Trial(0, TrialState.COMPLETE, {"lr": 0.1, "layers": 2}, values=values, attrs={MONITOR: monitor})
    table = TrialTable.of(_snapshot([trial], directions))
    assert list(table.columns[2 : 2 + len(expected)]) == expected
    assert [table.rows[0][c] for c in expected] == list(values)


def test_an_absent_parameter_is_an_empty_cell_and_retries_get_a_column():
    trials = [
        Trial(0, TrialState.FAIL, {"lr": 0.5}, datetime_start=datetime(2026, 1, 2, 3, 4, 5), attrs={"retried_by": 1}),
        Trial(1, TrialState.COMPLETE, {"lr": 0.5, "layers": 3}, values=(1.0,), attrs={"retry_of": 0}),
    ]
    table = TrialTable.of(_snapshot(trials))
    assert table.columns[-2:] == ("retry_of", "origin") and [row["retry_of"] for row in table.rows] == [None, 0]
    assert [row["origin"] for row in table.rows] == [None, "retry of trial 0"]
    assert table.rows[0]["params_layers"] is None
    # a naive time (a hand-made trial; storage always gives UTC) is taken as UTC
    assert table.rows[0]["datetime_start"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    header, rows = _csv_rows(_csv_text(table))
    assert rows[0]["params_layers"] == "" and rows[0]["datetime_start"] == "2026-01-02T03:04:05.000000+00:00"
    assert json.loads(table.to_json())[0]["params_layers"] is None
    assert "retry_of" not in TrialTable.of(_snapshot(trials[:1])).columns  # only when a trial is a retry


def test_a_retry_of_a_stale_trial_is_marked_in_its_row(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = Study("stale", search_space=SPACE, storage=url, seed=0, grace_period=0.05)
    study.ask()  # its heartbeat is never renewed
    time.sleep(0.2)
    study.fail_stale_trials()
    study.optimize(lambda p: p["lr"], n_trials=1)
    rows = TrialTable.of(study).rows
    assert [(row["state"], row["retry_of"]) for row in rows] == [("FAIL", None), ("COMPLETE", 0)]
    assert rows[0]["error"].startswith("Stale") and rows[1]["params_lr"] == rows[0]["params_lr"]


def test_the_log_directory_is_where_the_logger_wrote():
    attrs = {LOGGER_DIR_ATTR: "/elsewhere/lightning_logs/version_0"}  # a logger named in a CLI config
    trials = [
        Trial(0, TrialState.COMPLETE, {"lr": 0.1, "layers": 1}, values=(1.0,), log_dir="/runs/trial_0", attrs=attrs),
        Trial(1, TrialState.COMPLETE, {"lr": 0.1, "layers": 1}, values=(1.0,), log_dir="/runs/trial_1"),
    ]
    rows = TrialTable.of(_snapshot(trials)).rows
    assert [row["log_dir"] for row in rows] == ["/elsewhere/lightning_logs/version_0", "/runs/trial_1"]


def test_an_empty_study_has_the_columns_and_no_rows():
    study = Study("empty", search_space=SPACE, storage=":memory:")
    table = TrialTable.of(study)
    assert table.rows == () and _csv_text(table) == ",".join(table.columns) + "\n"
    assert table.to_json() == "[]\n"
    frame = study.trials_dataframe()
    assert frame.empty and list(frame.columns) == list(table.columns)


def test_without_pandas_the_dataframe_names_the_extra_to_install(monkeypatch):
    study = Study("no_pandas", search_space=SPACE, storage=":memory:", seed=0)
    study.optimize(lambda p: p["lr"], n_trials=1)
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` meets when it is not installed
    with pytest.raises(MissingExtraError, match=r"needs pandas.*`pip install 'lightning-hpo\[pandas\]'`") as error:
        study.trials_dataframe()
    assert isinstance(error.value, ImportError) and isinstance(error.value, LightningHPOError)
    assert len(json.loads(TrialTable.of(study).to_json())) == 1  # the files need no pandas


def test_docstring_examples():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(lightning_hpo.table) + finder.find(Study.trials_dataframe, "trials_dataframe"):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 6


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, monitor, value_columns",
    [
        (LinearRegression, "val_loss", ["value_val_loss"]),
        (SizedRegression, ["val_loss", "n_params"], ["values_val_loss", "values_n_params"]),
    ],
)
def test_a_tuner_study_gives_each_trials_logs_checkpoint_and_steps(tmp_path, model, monitor, value_columns):
    tuner = Tuner(
        model,
        search_space={"lr": Float(1e-3, 1e-1, log=True), "hidden": Int(4, 16)},
        datamodule=RegressionData(),
        trainer_kwargs={"max_epochs": 2, "accelerator": "cpu", "devices": 1},
        monitor=monitor,
        mode="min" if isinstance(monitor, str) else ["min", "min"],
        pruner=NopPruner(),
        seed=0,
        show_progress=False,
        root_dir=tmp_path / "runs",
    )
    result = tuner.fit(n_trials=2)
    frame = result.study.trials_dataframe()
    assert list(frame.columns[2 : 2 + len(value_columns)]) == value_columns
    assert frame["state"].tolist() == ["COMPLETE", "COMPLETE"]
    for (_, row), trial in zip(frame.iterrows(), result.trials):
        assert [row[c] for c in value_columns] == list(trial.values)
        assert row["log_dir"] == trial.log_dir and Path(row["log_dir"]).is_dir()
        assert row["checkpoint"] == trial.checkpoint_path and Path(row["checkpoint"]).is_file()
        assert row["last_step"] == trial.last_step > 0 and row["n_reports"] == 2  # one report per epoch
        assert (row["params_lr"], row["params_hidden"]) == (trial.params["lr"], trial.params["hidden"])


def test_a_trials_origin_and_tracker_runs_get_columns_when_a_trial_has_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    other = Study("other", search_space=SPACE, storage=url, seed=0)
    other.optimize(lambda p: p["lr"], n_trials=1)
    study = Study("origins", search_space=SPACE, storage=url, seed=0)
    study.add_trials_from("other")
    study.enqueue({"lr": 0.01})
    study.optimize(lambda p: p["lr"], n_trials=3)  # with the imported one: the enqueued trial, then a sampled one
    run = "mlflow: run 0a1b in sqlite:///mlflow.db"
    study.storage.update_trial(study.trials[2].id, attrs={TRACKER_RUNS_ATTR: [run, "wandb: https://wandb.ai/r"]})
    table = TrialTable.of(study)
    assert table.columns[-2:] == ("origin", "tracker_runs") and "retry_of" not in table.columns
    assert [row["origin"] for row in table.rows] == ["imported from other#0", "enqueued (lr)", None]
    assert [row["tracker_runs"] for row in table.rows] == [None, None, f"{run}; wandb: https://wandb.ai/r"]
    _, rows = _csv_rows(_csv_text(table))
    assert [row["origin"] for row in rows] == ["imported from other#0", "enqueued (lr)", ""]
    assert list(study.trials_dataframe()["origin"].fillna("-")) == ["imported from other#0", "enqueued (lr)", "-"]
    plain = Study("plain", search_space=SPACE, storage=url, seed=0)
    plain.optimize(lambda p: p["lr"], n_trials=1)
    assert not {"origin", "tracker_runs"} & set(TrialTable.of(plain).columns)


def test_a_resumed_trial_says_which_trial_it_resumes():
    trials = [
        Trial(0, TrialState.FAIL, {"lr": 0.5}, attrs={"resume_dir": "/runs/trial_0", "retried_by": 1}),
        Trial(1, TrialState.COMPLETE, {"lr": 0.5}, values=(1.0,), attrs={"retry_of": 0, "resume_dir": "/runs/trial_0"}),
        Trial(2, TrialState.COMPLETE, {"lr": 0.2}, values=(1.0,), attrs={"retry_of": 0}),
    ]
    rows = TrialTable.of(_snapshot(trials)).rows
    assert [row["origin"] for row in rows] == [None, "resumes trial 0", "retry of trial 0"]
    assert [row["retry_of"] for row in rows] == [None, 0, 0]
