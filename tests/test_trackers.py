"""``Tuner(logger=...)``: each trial's loggers, and its outcome in MLflow, W&B, TensorBoard and CSV.

Real trackers, real training: MLflow on a local SQLite store read back with MlflowClient, W&B in
offline mode read back from its run files, TensorBoard's event files read with its event reader.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from lightning.pytorch.loggers import CSVLogger

from lightning_hpo import Float, Pruner, TrialState, Tuner
from lightning_hpo._mlflow_sqlite import on_local_disk
from lightning_hpo.console import main as console_main
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, MissingExtraError
from lightning_hpo.export import TRACKER_RUNS_ATTR
from lightning_hpo.trackers import RUN_IDS_FILE, TrialMLFlowLogger, TrialTrackers
from lightning_hpo.trial import Trial
from tests.lightning_models import LinearRegression, RegressionData

REPO = Path(__file__).resolve().parents[1]
SPACE = {"lr": Float(0.01, 0.1, log=True)}
TINY = {"max_epochs": 2, "limit_train_batches": 2, "accelerator": "cpu", "log_every_n_steps": 1}
OUTCOMES = [TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED]


class PruneTrial(Pruner):
    def __init__(self, number: int) -> None:
        self.number = number

    def prune(self, trial, trials, *, directions):
        return trial.number == self.number


def failing_second_fit() -> type:
    """LinearRegression whose second instance raises while training: trial 1 FAILs."""
    fits = itertools.count()

    class FailsSecond(LinearRegression):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.fails = next(fits) == 1

        def training_step(self, batch, batch_idx):
            if self.fails:
                raise RuntimeError("scripted failure")
            return super().training_step(batch, batch_idx)

    return FailsSecond


def tiny_tuner(logger, model: type = LinearRegression, **kwargs) -> Tuner:
    return Tuner(
        model,
        search_space=SPACE,
        datamodule=RegressionData(),
        trainer_kwargs=TINY,
        seed=0,
        show_progress=False,
        logger=logger,
        **kwargs,
    )


def tune_three_outcomes(logger):
    """Trials 0, 1, 2 end COMPLETE, FAIL and PRUNED."""
    tuner = tiny_tuner(logger, failing_second_fit(), pruner=PruneTrial(2), study_name="study")
    return tuner.fit(n_trials=2)  # COMPLETE and PRUNED count; the FAIL between them does not


@pytest.mark.slow
def test_mlflow_one_run_per_trial_in_an_experiment_named_after_the_study(monkeypatch, capsys) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = tune_three_outcomes("mlflow")
    trials = result.trials
    assert [t.state for t in trials] == OUTCOMES
    store = (Path("lightning_hpo_runs") / "mlflow.db").resolve()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("study")
    runs = {r.data.tags["lightning_hpo.trial"]: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["0", "1", "2"]
    for trial in trials:
        run = runs[str(trial.number)]
        assert run.info.run_name == f"trial_{trial.number}"
        assert run.data.tags["lightning_hpo.study"] == "study"
        assert run.data.tags["lightning_hpo.state"] == trial.state.value
        assert float(run.data.params["lr"]) == pytest.approx(trial.params["lr"])
        assert trial.attrs[TRACKER_RUNS_ATTR] == [f"mlflow: run {run.info.run_id} in sqlite:///{store}"]
    assert [runs[n].info.status for n in "012"] == ["FINISHED", "FAILED", "KILLED"]
    complete = runs["0"]
    assert complete.data.metrics["trial/val_loss"] == pytest.approx(trials[0].value)
    # The monitored metric at every validation, as the module logged it.
    history = client.get_metric_history(complete.info.run_id, "val_loss")
    assert [m.value for m in history] == pytest.approx(list(trials[0].intermediate_values.values()))
    # `lightning-hpo trials` and `best` show where each trial's run is.
    capsys.readouterr()
    console_main(["trials", "--storage", str(Path("lightning_hpo_runs") / "studies.db")])
    shown = "".join(capsys.readouterr().out.split())  # the table may wrap long lines
    assert all(runs[n].info.run_id in shown for n in "012")
    assert str(Path("lightning_hpo_runs") / "study" / "trial_1") in shown
    console_main(["best", "--storage", str(Path("lightning_hpo_runs") / "studies.db")])
    assert complete.info.run_id in "".join(capsys.readouterr().out.split())


BUFFERING = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"


class LogsItsHyperparamsAgain(LinearRegression):
    """Saves its hyperparameters (Lightning logs them) and logs them again at every validation."""

    def on_validation_epoch_end(self) -> None:
        self.logger.log_hyperparams(self.hparams)


@pytest.mark.slow
def test_mlflow_keeps_every_param_and_metric_when_the_module_logs_its_hyperparameters_again(monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(BUFFERING, raising=False)
    (trial,) = tiny_tuner("mlflow", LogsItsHyperparamsAgain, study_name="again").fit(n_trials=1).trials
    client = MlflowClient(tracking_uri=f"sqlite:///{(Path('lightning_hpo_runs') / 'mlflow.db').resolve()}")
    (run,) = client.search_runs([client.get_experiment_by_name("again").experiment_id])
    # The trial's params, then the module's (the same lr), then the module's again: each once.
    assert run.data.params == {"lr": str(trial.params["lr"]), "hidden": "8", "activation": "relu"}
    assert run.info.status == "FINISHED" and run.data.tags["lightning_hpo.state"] == "COMPLETE"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.value for m in history] == pytest.approx(list(trial.intermediate_values.values()))
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 4  # 2 epochs of 2 steps
    assert run.data.metrics["trial/val_loss"] == pytest.approx(trial.value)
    assert BUFFERING not in os.environ  # set only while a run ends


@pytest.mark.slow
def test_each_mlflow_run_of_a_trial_trained_twice_ends_with_the_trial(monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tuner = tiny_tuner("mlflow", study_name="repeated", repeats=2)
    (trial,) = tuner.fit(n_trials=1).trials
    client = MlflowClient(tracking_uri=f"sqlite:///{(Path('lightning_hpo_runs') / 'mlflow.db').resolve()}")
    runs = client.search_runs([client.get_experiment_by_name("repeated").experiment_id])
    # One per training of the trial, each with the trial's outcome.
    assert sorted(r.info.run_name for r in runs) == ["trial_0/repeat_0", "trial_0/repeat_1"]
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["lightning_hpo.state"] == "COMPLETE"
        assert run.data.metrics["trial/val_loss"] == pytest.approx(trial.value)


def test_the_mlflow_shortcut_writes_params_at_once_and_refuses_a_changed_value_as_mlflow_does(tmp_path) -> None:
    from mlflow.exceptions import MlflowException

    logger = TrialMLFlowLogger(experiment_name="e", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}", synchronous=False)
    logger.log_hyperparams({"lr": 0.1, "layers": 2})
    logger.log_hyperparams({"lr": 0.1, "width": 8})  # the same value again: kept once
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        logger.log_hyperparams({"lr": 0.2, "depth": 3})  # refused whole, as MLflow refuses it
    # In the store already, before the run ends: nothing waits in MLflow's background queue.
    assert logger.experiment.get_run(logger.run_id).data.params == {"lr": "0.1", "layers": "2", "width": "8"}


def _journal_mode(db: Path) -> str:
    connection = sqlite3.connect(db)
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


def test_the_mlflow_shortcuts_own_store_commits_in_wal_mode_and_a_tracking_uri_is_left_as_it_is(
    tmp_path, monkeypatch
) -> None:
    from mlflow.tracking import MlflowClient
    from sqlalchemy import text

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trackers = TrialTrackers("mlflow", study_name="wal", study_dir=tmp_path / "runs" / "wal", monitor=("val_loss",))
    trackers.prepare()
    trial = Trial(number=0, state=TrialState.RUNNING, params={"lr": 0.1})
    logger = trackers.loggers_for(trial)
    trackers.watch(trial, [logger])
    logger.log_metrics({"val_loss": 0.5}, step=1)
    trackers.finished(Trial(0, TrialState.COMPLETE, {"lr": 0.1}, values=(0.5,), intermediate_values={1: 0.5}))
    trackers.close()  # the run ends in the background: done when this returns
    store = tmp_path / "runs" / "mlflow.db"
    assert _journal_mode(store) == "wal"
    with logger.experiment._tracking_client.store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL: no flush at each commit
    run = MlflowClient(f"sqlite:///{store}").get_run(logger.run_id)  # what MLflow's UI reads
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.1"}
    assert run.data.metrics == {"val_loss": 0.5, "trial/val_loss": 0.5}

    theirs = tmp_path / "theirs.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{theirs}")
    TrialTrackers("mlflow", study_name="wal", study_dir=tmp_path / "runs" / "wal", monitor=("val_loss",)).prepare()
    assert _journal_mode(theirs) == "delete"  # SQLite's default, as MLflow leaves it


@pytest.mark.parametrize(
    ("mounts", "local"),
    [
        ("/dev/sda1 / ext4 rw 0 0\n", True),
        ("/dev/sda1 / ext4 rw 0 0\nserver:/export /shared nfs4 rw 0 0\n", False),
        ("/dev/sda1 / ext4 rw 0 0\nserver:/export /shared/other nfs4 rw 0 0\n", True),
        ("server:/ / nfs rw 0 0\n/dev/sdb1 /shared xfs rw 0 0\n", True),  # the innermost mount decides
        ("/dev/sda1 / ext4 rw 0 0\nuser@host: /shared fuse.sshfs rw 0 0\n", False),
        ("/dev/sda1 / ext4 rw 0 0\nlustre@tcp:/fs /shared lustre rw 0 0\n", False),
        ("", False),  # cannot tell: MLflow's default journal
    ],
)
def test_wal_only_on_a_disk_of_this_machine(mounts, local) -> None:
    assert on_local_disk(Path("/shared/runs/mlflow.db"), mounts) is local


def test_the_mlflow_shortcut_holds_training_metrics_until_a_validation_logs_the_monitored_one(tmp_path) -> None:
    import mlflow

    store = f"sqlite:///{tmp_path / 'm.db'}"
    logger = TrialMLFlowLogger(experiment_name="e", tracking_uri=store, synchronous=False, flush_on=("val_loss",))
    client = logger.experiment

    def written() -> dict[str, list[int]]:
        mlflow.flush_async_logging()  # what MLflow's background thread was handed is in the store
        return {key: [m.step for m in client.get_metric_history(logger.run_id, key)] for key in ("loss", "val_loss")}

    logger.log_metrics({"loss": 1.0}, step=10)
    logger.log_metrics({"loss": 0.5}, step=20)
    assert written() == {"loss": [], "val_loss": []}
    logger.log_metrics({"val_loss": 0.7}, step=20)  # the validation: one write for the three
    assert written() == {"loss": [10, 20], "val_loss": [20]}
    logger.log_metrics({"loss": 0.25}, step=30)
    logger.finalize("success")  # the training's end writes what is held
    assert written() == {"loss": [10, 20, 30], "val_loss": [20]}


def test_the_mlflow_shortcut_writes_held_metrics_at_a_validation_at_most_once_per_interval(tmp_path) -> None:
    import mlflow

    logger = TrialMLFlowLogger(
        experiment_name="e",
        tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        synchronous=False,
        flush_on=("val_loss",),
        min_write_interval_s=3600,
    )
    logger.log_metrics({"val_loss": 0.7}, step=1)
    logger.log_metrics({"val_loss": 0.6}, step=2)  # validations within the interval: held
    mlflow.flush_async_logging()
    assert logger.experiment.get_metric_history(logger.run_id, "val_loss") == []
    logger.finalize("success")
    mlflow.flush_async_logging()
    assert [m.step for m in logger.experiment.get_metric_history(logger.run_id, "val_loss")] == [1, 2]


def test_the_mlflow_shortcut_starts_its_run_in_the_background_and_notes_it_once_started(tmp_path, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trackers = TrialTrackers("mlflow", study_name="bg", study_dir=tmp_path / "runs" / "bg", monitor=("val_loss",))
    trackers.prepare()
    trial = Trial(number=0, state=TrialState.RUNNING, params={"lr": 0.1})
    logger = trackers.loggers_for(trial)
    assert logger.starting  # handed to the trackers' thread with the trial's params
    noted: list[list[str]] = []
    assert trackers.watch(trial, [logger], noted.append) == []  # noted once the run has started
    logger.log_metrics({"loss": 1.0}, step=1)  # held: it needs no run
    logger.log_hyperparams({"lr": 0.1})  # the trial's params again: nothing to write, nothing to wait for
    assert noted == [] and logger.starting
    logger.finalize("success")  # the training's end writes the held metrics: the trial's thread joins the start
    run_id = logger.run_id
    store = tmp_path / "runs" / "mlflow.db"
    assert noted == [[f"mlflow: run {run_id} in sqlite:///{store}"]]
    assert json.loads((tmp_path / "runs" / "bg" / "trial_0" / RUN_IDS_FILE).read_text()) == {"mlflow": run_id}
    trackers.finished(Trial(0, TrialState.PRUNED, {"lr": 0.1}, intermediate_values={1: 0.5}))
    trackers.close()  # the run ends in the background: done when this returns
    run = MlflowClient(f"sqlite:///{store}").get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["lightning_hpo.state"] == "PRUNED"
    assert run.data.params == {"lr": "0.1"} and run.data.metrics == {"loss": 1.0}


def test_a_run_that_fails_to_start_fails_the_trial_where_it_is_first_needed(tmp_path, monkeypatch) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trackers = TrialTrackers("mlflow", study_name="gone", study_dir=tmp_path / "runs" / "gone", monitor=("val_loss",))
    trackers.prepare()
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    client.delete_experiment(client.get_experiment_by_name("gone").experiment_id)  # its runs can't be created
    trial = Trial(number=0, state=TrialState.RUNNING, params={"lr": 0.1})
    logger = trackers.loggers_for(trial)
    logger.log_metrics({"loss": 1.0}, step=1)
    with pytest.raises(MlflowException, match="active"):
        logger.finalize("success")  # the training's end writes the held metric: it needs the run
    with pytest.warns(UserWarning, match="could not record the outcome of trial 0"):
        trackers.finished(Trial(0, TrialState.FAIL, {"lr": 0.1}))
        trackers.close()


def wandb_offline_records(run_file: Path) -> dict[str, list]:
    """The records of an offline W&B run file, by type: a LevelDB-style log of protobuf ``Record``s
    (a 7-byte file header, 32 KiB blocks, each chunk with a 7-byte header: crc32, length, type)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pending, records = run_file.read_bytes(), 7, b"", {}
    while pos + 7 <= len(data):
        if (left := 32768 - pos % 32768) < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = wandb_internal_pb2.Record.FromString(pending)
            records.setdefault(record.WhichOneof("record_type"), []).append(
                getattr(record, record.WhichOneof("record_type"))
            )
            pending = b""
    return records


def _items(updates) -> dict:
    return {u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in updates}


def wandb_offline_runs(wandb_dir: Path) -> dict[str, dict]:
    """Run id -> the offline run's last ``run`` record, its config, summary, exit code and directory."""
    import wandb

    # This process's W&B service writes the offline files and may still hold their last block on a
    # loaded machine: shutting it down flushes them, as the end of a user's process does.
    wandb.teardown()
    runs = {}
    for run_file in wandb_dir.glob("offline-run-*/run-*.wandb"):
        records = wandb_offline_records(run_file)
        assert "run" in records, f"{run_file} holds no run record (records: {sorted(records)})"
        config = {}  # the config at init, then its updates
        for r in records["run"]:
            config.update(_items(r.config.update))
        for r in records.get("config", []):
            config.update(_items(r.update))
        run = records["run"][-1]
        runs[run.run_id] = {
            "run": run,
            "config": config,
            "summary": {k: v for r in records["summary"] for k, v in _items(r.update).items()},
            "exit_code": records["exit"][0].exit_code,
            "dir": run_file.parent,
        }
    return runs


@pytest.mark.slow
def test_wandb_offline_groups_trials_by_study_with_config_and_summary(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tune_three_outcomes("wandb")
    assert not [w for w in caught if "anonymous" in str(w.message)]
    runs = {r["run"].display_name: r for r in wandb_offline_runs(tmp_path / "wandb_dir" / "wandb").values()}
    assert sorted(runs) == ["trial_0", "trial_1", "trial_2"]
    for trial in result.trials:
        found = runs[f"trial_{trial.number}"]
        run, summary = found["run"], found["summary"]
        assert run.run_group == "study" and trial.state.value in run.tags
        assert found["config"]["lr"] == pytest.approx(trial.params["lr"])
        assert summary["trial/state"] == trial.state.value
        assert found["exit_code"] == (1 if trial.state is TrialState.FAIL else 0)
        assert trial.attrs[TRACKER_RUNS_ATTR] == [f"wandb: offline run {run.run_id} in {found['dir']}"]
        assert (
            "\nlightning==" in (found["dir"] / "files" / "requirements.txt").read_text()
        )  # listed once, saved in each
        if trial.state is TrialState.COMPLETE:
            assert summary["trial/val_loss"] == pytest.approx(trial.value)
        if trial.state is not TrialState.FAIL:
            # Every step written by the trackers' thread is in the run once fit returns, in its order (also
            # for the PRUNED trial): each validation's val_loss, as the study stored it, at increasing steps.
            history = wandb_offline_records(next(found["dir"].glob("run-*.wandb")))["history"]
            assert [h.step.num for h in history] == sorted({h.step.num for h in history})
            rows = [_items(h.item) for h in history]
            validations = {row["trainer/global_step"]: row["val_loss"] for row in rows if "val_loss" in row}
            assert list(validations) == sorted(validations)
            assert list(validations.values()) == pytest.approx(list(trial.intermediate_values.values()))


@pytest.mark.slow
def test_each_wandb_run_of_a_trial_trained_twice_has_its_own_curve_and_the_trial_outcome(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (trial,) = tiny_tuner("wandb", study_name="repeated", repeats=2).fit(n_trials=1).trials
    runs = {found["run"].display_name: found for found in wandb_offline_runs(tmp_path / "wandb").values()}
    # One per training, not the second training logging into the first's run.
    assert sorted(runs) == ["trial_0/repeat_0", "trial_0/repeat_1"]
    for found in runs.values():
        assert found["run"].run_group == "repeated"
        assert found["summary"]["trial/state"] == "COMPLETE" and found["exit_code"] == 0
        assert found["summary"]["trial/val_loss"] == pytest.approx(trial.value)
        history = wandb_offline_records(next(found["dir"].glob("run-*.wandb")))["history"]
        assert sum("val_loss" in _items(h.item) for h in history) == 2  # its own 2 epochs


@pytest.mark.slow
def test_the_wandb_shortcut_writes_its_steps_in_order_in_its_thread_and_ends_the_run_when_closed(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    trackers = TrialTrackers("wandb", study_name="bg", study_dir=tmp_path / "runs" / "bg", monitor=("val_loss",))
    trial = Trial(number=0, state=TrialState.RUNNING, params={"lr": 0.1})
    logger = trackers.loggers_for(trial)
    noted: list[list[str]] = []
    trackers.watch(trial, [logger], noted.append)
    for step in range(1, 4):  # handed to the trackers' thread, which is still running wandb.init
        logger.log_metrics({"loss": 1.0 / step}, step=step)
    logger.experiment.log({"mine": 1.0})  # the user's own log: after the steps logged before it
    logger.log_metrics({1: 2.0}, step=4)  # W&B refuses a key that is not a string, in the trackers' thread
    with pytest.raises(TypeError, match="must be strings"):
        logger.experiment  # noqa: B018 - the failed write's error, on the trial's thread
    logger.log_metrics({"loss": 0.1}, step=5)  # after a failed write, not written
    logger.finalize("success")
    trackers.finished(Trial(0, TrialState.COMPLETE, {"lr": 0.1}, values=(0.25,), intermediate_values={3: 0.25}))
    trackers.close()
    (found,) = wandb_offline_runs(tmp_path / "wandb").values()
    assert noted == [[f"wandb: offline run {found['run'].run_id} in {found['dir']}"]]
    assert found["config"]["lr"] == 0.1 and found["exit_code"] == 0
    assert found["summary"]["trial/state"] == "COMPLETE" and found["summary"]["trial/val_loss"] == 0.25
    history = [_items(h.item) for h in wandb_offline_records(next(found["dir"].glob("run-*.wandb")))["history"]]
    logged = [("mine", None) if "mine" in h else (h["loss"], h["trainer/global_step"]) for h in history]
    assert logged == [(1.0, 1), (0.5, 2), (1 / 3, 3), ("mine", None)]


def test_tensorboard_event_files_hold_hparams_data_with_the_trial_value() -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    result = tiny_tuner("tensorboard", pruner=PruneTrial(1)).fit(n_trials=2)
    assert [t.state for t in result.trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    for trial in result.trials:
        events = EventAccumulator(trial.log_dir)
        events.Reload()
        content = events.PluginTagToContent("hparams")
        data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hparams = data.session_start_info.hparams
        assert hparams["lr"].number_value == pytest.approx(trial.params["lr"])
        assert hparams["trial/state"].string_value == trial.state.value
        experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
        assert [m.name.tag for m in experiment.metric_infos] == ["trial/val_loss"]
        assert events.Scalars("trial/val_loss")[-1].value == pytest.approx(trial.value)
        assert "hp_metric" not in events.Tags()["scalars"]


def test_each_training_of_a_trial_trained_twice_logs_in_its_own_directory_of_the_trial() -> None:
    result = tiny_tuner("csv", repeats=2, study_name="twice").fit(n_trials=2)
    for trial in result.trials:
        for training in ("repeat_0", "repeat_1"):
            hparams = yaml.safe_load((Path(trial.log_dir) / training / "hparams.yaml").read_text())
            assert hparams["lr"] == pytest.approx(trial.params["lr"]) and hparams["trial/state"] == "COMPLETE"


def test_the_users_own_logger_factory_gets_the_trial_and_its_outcome(tmp_path) -> None:
    made = []

    def csv_per_trial(trial):
        made.append(trial.number)
        return [CSVLogger(tmp_path / "mine", name="study", version=f"trial_{trial.number}")]

    result = tiny_tuner(csv_per_trial).fit(n_trials=2)
    assert made == [0, 1]
    for trial in result.trials:
        run_dir = tmp_path / "mine" / "study" / f"trial_{trial.number}"
        hparams = yaml.safe_load((run_dir / "hparams.yaml").read_text())
        assert hparams["trial/state"] == "COMPLETE" and hparams["lr"] == pytest.approx(trial.params["lr"])
        lines = (run_dir / "metrics.csv").read_text().splitlines()
        header = lines[0].split(",")
        finals = [row.split(",")[header.index("trial/val_loss")] for row in lines[1:]]
        assert float(next(v for v in finals if v)) == pytest.approx(trial.value)


def test_a_logger_object_in_trainer_kwargs_points_to_the_logger_argument(tmp_path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"logger=lambda trial: CSVLogger\(\.\.\.\)"):
        Tuner(LinearRegression, search_space=SPACE, trainer_kwargs={"logger": CSVLogger(tmp_path)})
    with pytest.raises(ArgumentTypeError, match=r"A Logger object can't be shared"):
        Tuner(LinearRegression, search_space=SPACE, logger=CSVLogger(tmp_path))
    with pytest.raises(InvalidArgumentError, match=r"must be one of \['tensorboard', 'csv', 'mlflow', 'wandb'\]"):
        Tuner(LinearRegression, search_space=SPACE, logger="neptune")
    with pytest.raises(InvalidArgumentError, match=r"trainer_kwargs\['logger'\] is False"):
        Tuner(LinearRegression, search_space=SPACE, logger="csv", trainer_kwargs={"logger": False})


def test_a_factory_that_returns_no_logger_fails_with_what_it_returned() -> None:
    tuner = tiny_tuner(lambda trial: "wandb")
    with pytest.raises(ArgumentTypeError, match=r"for trial 0 it returned 'wandb'"):
        tuner.fit(n_trials=1)


@pytest.mark.parametrize("shortcut", ["mlflow", "wandb"])
def test_a_missing_tracker_package_names_the_extra(shortcut, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, shortcut, None)  # what an environment without the package finds
    with pytest.raises(MissingExtraError, match=rf"pip install 'lightning-hpo\[{shortcut}\]'"):
        Tuner(LinearRegression, search_space=SPACE, logger=shortcut)


TORCHRUN_SCRIPT = """
import os, sys
sys.path.insert(0, sys.argv[1])
from lightning_hpo import Float, Tuner
from tests.lightning_models import LinearRegression, RegressionData

if __name__ == "__main__":
    Tuner(LinearRegression, search_space={"lr": Float(0.01, 0.1, log=True)}, datamodule=RegressionData(),
          root_dir=sys.argv[2], seed=0, show_progress=False, logger="mlflow",
          trainer_kwargs={"max_epochs": 1, "limit_train_batches": 2, "accelerator": "cpu", "devices": 2,
                          "strategy": "ddp"}).fit(n_trials=2)
"""


@pytest.mark.slow
def test_under_torchrun_each_trial_is_one_mlflow_run_logged_by_rank_zero(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    script = tmp_path / "tune.py"
    script.write_text(TORCHRUN_SCRIPT)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": store}
    done = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", str(script), str(REPO), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("LinearRegression").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["trial_0", "trial_1"]
    assert {r.data.tags["lightning_hpo.state"] for r in runs} == {"COMPLETE"}
    assert all(len(client.get_metric_history(r.info.run_id, "val_loss")) == 1 for r in runs)


RESUMED_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from lightning_hpo import Float, NopPruner, Tuner
from tests.lightning_models import LinearRegression, RegressionData

class Slow(LinearRegression):
    def training_step(self, batch, batch_idx):
        time.sleep(0.5)  # time to be killed in the middle of the trial
        return super().training_step(batch, batch_idx)

Tuner(Slow, search_space={"lr": Float(0.01, 0.1, log=True)}, datamodule=RegressionData(batch_size=64),
      storage=sys.argv[2], root_dir=sys.argv[3], seed=0, show_progress=False, logger="mlflow", pruner=NopPruner(),
      trainer_kwargs={"max_epochs": 4, "accelerator": "cpu", "log_every_n_steps": 1}).fit(n_trials=1)
"""  # the process exits as soon as fit returns: what MLflow's background thread wrote must be in the store


def _at(metric) -> tuple[int, int]:
    return metric.step, metric.timestamp


@pytest.mark.slow
def test_a_killed_trial_resumed_by_the_next_process_continues_its_mlflow_run(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from lightning_hpo.storage import SQLStorage
    from tests.processes import wait_for

    script = tmp_path / "tune.py"
    script.write_text(RESUMED_SCRIPT)
    url, root = f"sqlite:///{tmp_path / 'studies.db'}", tmp_path / "runs"
    command = [sys.executable, str(script), str(REPO), url, str(root)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    trial_dir = root / "Slow" / "trial_0"
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")

    def second_epoch_saved() -> bool:  # 2 batches an epoch: its checkpoint, and its val_loss in the run
        if not (trial_dir / "checkpoints" / "resume-step=4.ckpt").is_file():
            return False
        run_id = json.loads((trial_dir / RUN_IDS_FILE).read_text())["mlflow"]
        return len(client.get_metric_history(run_id, "val_loss")) >= 2

    try:  # SIGKILL: the run stays RUNNING, as after a lost node
        wait_for(second_epoch_saved, timeout=300)
    finally:
        killed.kill()
        killed.communicate()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    storage = SQLStorage(url)
    interrupted, resumed = storage.get_trials(storage.get_study("Slow").id)
    storage.close()
    assert resumed.state is TrialState.COMPLETE and resumed.attrs["retry_of"] == interrupted.number
    (run,) = client.search_runs([client.get_experiment_by_name("Slow").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["lightning_hpo.state"] == "COMPLETE"
    assert run.data.tags["lightning_hpo.trial"] == str(resumed.number)
    assert interrupted.attrs[TRACKER_RUNS_ATTR] == resumed.attrs[TRACKER_RUNS_ATTR]
    # One curve, every epoch's validation in it: those of the killed process, then the resumed one's.
    curve = {m.step: m.value for m in sorted(client.get_metric_history(run.info.run_id, "val_loss"), key=_at)}
    assert len(resumed.intermediate_values) == 4 and resumed.attrs["resumed_at_step"] == 4
    assert [curve[step] for step in sorted(curve)] == pytest.approx(list(resumed.intermediate_values.values()))
    assert run.data.metrics["trial/val_loss"] == pytest.approx(resumed.value)


@pytest.mark.slow
def test_a_wandb_logger_named_in_a_cli_config_gets_one_run_per_trial_with_its_outcome(tmp_path, monkeypatch) -> None:
    from lightning_hpo.cli import LightningCLI

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setattr(sys, "argv", ["train.py"])
    logger = {"class_path": "lightning.pytorch.loggers.WandbLogger", "init_args": {"save_dir": str(tmp_path)}}
    trainer = {**TINY, "max_epochs": 1, "logger": logger}
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"seed_everything": 0, "trainer": trainer}))
    cli = LightningCLI(
        LinearRegression,
        RegressionData,
        args=["tune", "--config", str(config), "--tune.n_trials", "2", "--tune.show_progress", "false",
              "--tune.search_space", '{"model.lr": {"type": "float", "low": 0.01, "high": 0.1}}'],
    )  # fmt: skip
    runs = wandb_offline_runs(tmp_path / "wandb")
    assert len(runs) == 2  # without ending each trial's run, the second trial's logger reuses the first's
    for trial in cli.study.trials:
        (line,) = trial.attrs[TRACKER_RUNS_ATTR]
        found = runs[line.split()[3]]  # "wandb: offline run <id> in <dir>"
        assert found["summary"]["trial/state"] == "COMPLETE"
        assert found["summary"]["trial/val_loss"] == pytest.approx(trial.value)
        assert found["exit_code"] == 0


def test_tracker_cost_report_gives_each_tracker_its_ratio_to_no_logger() -> None:
    from benchmarks.tracker_cost import report

    runs = [
        {"short": {"no logger": 1.0, "csv": 1.1, "tensorboard": 1.2, "mlflow": 1.5, "wandb": 2.0}, "long": {}}
        for _ in range(3)
    ]
    for run in runs:
        run["long"] = {name: 2 * seconds for name, seconds in run["short"].items()}
        # The process's CPU seconds: a tracker's background threads count here even where they overlap training.
        run["cpu"] = {length: {name: 1.2 if name == "mlflow" else 1.0 for name in run["short"]} for length in run}
    text = report(runs, 4, "python -m benchmarks.tracker_cost", "2026-12-01 18:00 UTC")
    assert "| csv | 1100 [1100, 1100] | 1.10 [1.10, 1.10] | 1.00 [1.00, 1.00] |" in text
    assert "| mlflow | 1500 [1500, 1500] | 1.50 [1.50, 1.50] | 1.20 [1.20, 1.20] |" in text
    assert "| mlflow | 3000 [3000, 3000] | 1.50 [1.50, 1.50] |" in text  # long trials: twice the time, same ratio
    # csv adds 100 ms to 2 validations and 200 ms to 40: (200 - 100) / 38 = 2.6 ms per validation, 95 ms fixed.
    assert "| csv | 95 [95, 95] | 2.6 [2.6, 2.6] |" in text
