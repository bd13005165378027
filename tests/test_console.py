from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

import lightning_hpo
from lightning_hpo import Categorical, Float, Study, TrialState
from lightning_hpo.console import main
from lightning_hpo.space import SearchSpace
from lightning_hpo.storage import SQLStorage


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = Study(
        "digits",
        search_space={"lr": Float(1e-4, 1e-1, log=True), "opt": Categorical(["adam", (1, 2)])},
        storage=url,
        seed=0,
    )
    study.optimize(lambda p: p["lr"], n_trials=3)
    failing = study.ask()
    study.tell(failing, state=TrialState.FAIL, error="Traceback...\nValueError: diverged")
    pruned = study.ask()
    study.report(pruned, 40, 0.5)
    study.tell(pruned, state=TrialState.PRUNED)
    Study("other", search_space={"x": Float(0, 1)}, storage=url, mode="max")
    return url


def test_studies_table(db, capsys):
    assert main(["studies", "--storage", db]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "other" in out and "max" in out
    row = next(line for line in out.splitlines() if "digits" in line)
    assert [c.strip() for c in row.split("│")[3:8]] == ["5", "3", "1", "1", "0"]


def test_trials_table_shows_params_states_and_reasons(db, capsys):
    assert main(["trials", "--storage", db, "--study", "digits"]) == 0
    out = capsys.readouterr().out
    assert "ValueError: diverged" in out and "pruned at step 40" in out
    assert "adam" in out and "(1, 2)" in out and "COMPLETE" in out


def test_trials_filtered_by_state(db, capsys):
    assert main(["trials", "--storage", db, "--study", "digits", "--state", "FAIL"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" in out and "COMPLETE" not in out


def test_errors_are_one_clear_line(db, tmp_path, capsys):
    assert main(["trials", "--storage", db, "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lightning-hpo: error: No study named 'nope'") and "'digits', 'other'" in err
    assert main(["studies", "--storage", str(tmp_path / "missing.db")]) == 2
    assert "There is no database at" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()  # looking never creates a database
    assert main(["studies", "--storage", "mysql://x/y"]) == 2
    assert "supported are 'sqlite'" in capsys.readouterr().err


def test_console_script_is_installed_and_cheap():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lightning_hpo.console", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "studies" in done.stdout
    assert " torch" not in done.stderr and "lightning.pytorch" not in done.stderr


# -- best and export ----------------------------------------------------------------------------


def _best_of_digits(url):
    """The best trial as the console sees it: params decoded with the stored space (a tuple choice by its repr)."""
    storage = SQLStorage(url)
    record = storage.get_study("digits")
    best = min((t for t in storage.get_trials(record.id) if t.state is TrialState.COMPLETE), key=lambda t: t.value)
    return replace(best, params=SearchSpace.from_json(record.space).from_stored(best.params))


def test_best_shows_the_best_trials_value_and_params(db, capsys):
    best = _best_of_digits(db)
    assert main(["best", "--storage", db, "--study", "digits"]) == 0
    out = capsys.readouterr().out
    rows = {cells[0]: cells[1] for cells in (
        [c.strip() for c in line.strip("│ ").split("│")] for line in out.splitlines() if line.count("│") == 3
    )}  # fmt: skip
    assert rows["trial"] == str(best.number)
    assert float(rows["value"]) == pytest.approx(best.value, rel=1e-5)
    assert float(rows["lr"]) == pytest.approx(best.params["lr"], rel=1e-5) and rows["opt"] == repr(best.params["opt"])


def test_study_may_be_left_out_only_when_the_storage_holds_one(db, tmp_path, capsys):
    assert main(["best", "--storage", db]) == 2
    assert "holds 2 studies, so pass --study NAME; they are: 'digits', 'other'" in capsys.readouterr().err
    single = f"sqlite:///{tmp_path / 'single.db'}"
    Study("only", search_space={"x": Float(0, 1)}, storage=single, seed=0).optimize(lambda p: p["x"], n_trials=2)
    assert main(["export", "--storage", single]) == 0
    assert "of study 'only'" in capsys.readouterr().out


def test_export_writes_the_best_params_as_yaml_or_json(db, tmp_path, capsys):
    best = _best_of_digits(db)
    expected = dict(best.params)
    assert main(["export", "--storage", db, "--study", "digits"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# Best trial: trial {best.number} of study 'digits'")
    assert yaml.safe_load(text) == expected
    assert main(["export", "--storage", db, "--study", "digits", "--output", str(tmp_path / "out" / "best.json")]) == 0
    assert json.loads((tmp_path / "out" / "best.json").read_text()) == expected
    assert main(["export", "--storage", db, "--study", "digits", "--trial", "0", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["lr"] == pytest.approx(_trial(db, 0).params["lr"])


def _trial(url, number):
    storage = SQLStorage(url)
    return next(t for t in storage.get_trials(storage.get_study("digits").id) if t.number == number)


def test_export_gives_the_stored_fit_config_of_a_cli_trial(db, tmp_path, capsys):
    best = _best_of_digits(db)
    config = "# lightning.pytorch==2.6.6\nseed_everything: 3\nmodel:\n  lr: 0.01\n"
    SQLStorage(db).update_trial(_trial(db, best.number).id, attrs={"config": config, "script": "train.py"})
    out_file = tmp_path / "best.yaml"
    assert main(["export", "--storage", db, "--study", "digits", "-o", str(out_file)]) == 0
    assert f"Retrain it with: python train.py fit --config {out_file}" in capsys.readouterr().out
    written = out_file.read_text()
    assert written.endswith(config) and f"# Retrain it: python train.py fit --config {out_file}\n" in written
    assert main(["export", "--storage", db, "--study", "digits", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"seed_everything": 3, "model": {"lr": 0.01}}
    assert main(["export", "--storage", db, "--study", "digits", "--params"]) == 0
    assert set(yaml.safe_load(capsys.readouterr().out)) == {"lr", "opt"}
    assert main(["best", "--storage", db, "--study", "digits"]) == 0
    assert "Its full fit config is stored: lightning-hpo export" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["best", "--study", "other"], "Study 'other' has no COMPLETE trial yet"),
        (["export", "--study", "digits", "--trial", "9"], "Study 'digits' has no trial 9 (it has 5 trials, from 0)"),
        (["export", "--study", "nope"], "No study named 'nope'"),
    ],
)
def test_best_and_export_errors(db, argv, message, capsys):
    assert main([*argv, "--storage", db]) == 2
    assert message in capsys.readouterr().err


def _table_rows(out: str) -> list[list[str]]:
    """The cells of each body row of a rich table."""
    return [[c.strip() for c in line.strip("│ ").split("│")] for line in out.splitlines() if line.startswith("│")]


@pytest.mark.parametrize("mode, front_size", [(["min", "max"], 3), (["min", "min"], 1)])
def test_best_of_a_multi_objective_study_shows_its_pareto_front(tmp_path, capsys, mode, front_size):
    url = f"sqlite:///{tmp_path / 'multi.db'}"
    study = Study("pareto", search_space={"x": Float(0, 1)}, mode=mode, storage=url, seed=0)
    study.optimize(lambda p: (p["x"], p["x"]), n_trials=3)
    assert main(["best", "--storage", url]) == 0
    out = capsys.readouterr().out
    trials = "1 trial" if front_size == 1 else f"{front_size} trials"
    assert f"Pareto front of 'pareto' ({'/'.join(mode)})" in out and f": {trials}" in out
    rows = _table_rows(out)
    assert [int(row[0]) for row in rows] == [t.number for t in study.best_trials]
    assert [float(row[1]) for row in rows] == pytest.approx([t.values[0] for t in study.best_trials], rel=1e-5)
    assert "Export one: lightning-hpo export" in out and "--trial N" in out
    assert main(["studies", "--storage", url]) == 0
    assert f"{trials} on the Pareto front" in capsys.readouterr().out
    assert main(["export", "--storage", url]) == 2
    assert "`lightning-hpo best` shows its Pareto front" in capsys.readouterr().err


def test_trials_table_shows_the_last_reported_step(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'steps.db'}"
    study = Study("curves", search_space={"x": Float(0, 1)}, storage=url, seed=0)
    trial = study.ask()
    for step in (0, 50, 100):  # three reports, the last at step 100
        study.report(trial, step, 1.0 / (step + 1))
    study.tell(trial, 0.01)
    study.tell(study.ask(), 0.5)  # reported nothing
    assert main(["trials", "--storage", url]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "last step" in line)
    column = [c.strip() for c in header.strip("┃ ").split("┃")].index("last step")
    assert [row[column] for row in _table_rows(out)] == ["100", "-"]


# -- export of every trial as a table --------------------------------------------------------------


def _table_of_digits(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "PRUNED"]
    return rows


def test_export_format_csv_writes_every_trial_as_a_table(db, tmp_path, capsys):
    out = tmp_path / "tables" / "trials.csv"
    argv = ["export", "--storage", db, "--study", "digits"]
    assert main([*argv, "--format", "csv", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"Wrote {out} (5 trials of study 'digits', one row each, CSV).\n"
    rows = _table_of_digits(out.read_text())
    assert list(rows[0])[:5] == ["number", "state", "value", "params_lr", "params_opt"]
    assert rows[3]["error"] == "Traceback...\nValueError: diverged" and rows[4]["last_step"] == "40"
    assert float(rows[0]["value"]) == _trial(db, 0).value
    assert pd.read_csv(out)["number"].tolist() == [0, 1, 2, 3, 4]
    assert [p.name for p in out.parent.iterdir()] == ["trials.csv"]  # no temporary file left behind
    assert main([*argv, "--out", str(tmp_path / "by_suffix.csv")]) == 0  # a .csv file is the table too
    assert (tmp_path / "by_suffix.csv").read_text() == out.read_text()
    capsys.readouterr()
    assert main([*argv, "--all", "--out", "-"]) == 0  # CSV on standard output, and nothing else
    assert capsys.readouterr().out == out.read_text()


def test_export_all_as_json_is_the_table_and_plain_json_stays_one_trial(db, tmp_path, capsys):
    argv = ["export", "--storage", db, "--study", "digits"]
    assert main([*argv, "--all", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "PRUNED"]
    assert rows[3]["error"] == "Traceback...\nValueError: diverged" and rows[3]["value"] is None
    assert main([*argv, "--all", "--out", str(tmp_path / "trials.json")]) == 0
    assert json.loads((tmp_path / "trials.json").read_text()) == rows
    assert main([*argv, "--format", "json", "--out", str(tmp_path / "best.json")]) == 0  # without --all: one trial
    assert json.loads((tmp_path / "best.json").read_text()) == dict(_best_of_digits(db).params)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--all", "--trial", "0"], "The table of every trial (--all or --format csv) takes no --trial"),
        (["--format", "csv", "--params", "--force"], "takes no --params / --force, which choose what to export"),
        (["--all", "--format", "yaml"], "is written as CSV or JSON, not YAML: pass --format csv or --format json"),
    ],
)
def test_export_table_refuses_the_options_of_one_trial(db, flags, message, capsys):
    assert main(["export", "--storage", db, "--study", "digits", *flags]) == 2
    assert message in capsys.readouterr().err


def test_export_replaces_a_file_whole_or_not_at_all(db, tmp_path, capsys):
    out = tmp_path / "trials.csv"
    out.write_text("old\n")
    assert main(["export", "--storage", db, "--study", "digits", "--out", str(out)]) == 0
    assert out.read_text().startswith("number,state,value,")
    blocked = tmp_path / "blocked.csv"
    blocked.mkdir()  # a directory in the way: the rename fails
    assert main(["export", "--storage", db, "--study", "digits", "--out", str(blocked)]) == 2
    assert f"lightning-hpo: error: Cannot write {str(blocked)!r}" in capsys.readouterr().err
    assert blocked.is_dir() and not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- the installed console script, in a subprocess ------------------------------------------------


def _lightning_hpo(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the ``lightning-hpo`` script that the package installs beside this Python."""
    script = Path(sys.executable).with_name("lightning-hpo")
    return subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=120)


def test_version_comes_from_the_package():
    done = _lightning_hpo("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"lightning-hpo {lightning_hpo.__version__}\n", "")


def test_export_of_a_trial_that_did_not_complete_says_so_and_needs_force(db):
    failed = _trial(db, 3)
    assert failed.state is TrialState.FAIL
    done = _lightning_hpo("export", "--storage", db, "--study", "digits", "--trial", "3")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "lightning-hpo: error: Trial 3 of study 'digits' did not complete (FAIL: ValueError: diverged), so it "
        "has no result to export. Pass --force to export its parameters anyway.\n"
    )
    done = _lightning_hpo("export", "--storage", db, "--study", "digits", "--trial", "3", "--force")
    assert done.returncode == 0
    assert done.stderr == (
        "lightning-hpo: warning: trial 3 of study 'digits' did not complete (FAIL: ValueError: diverged); "
        "exporting its parameters anyway (--force).\n"
    )
    assert done.stdout.startswith("# Trial: trial 3 of study 'digits', value -; it did not complete (FAIL: ")
    assert yaml.safe_load(done.stdout)["lr"] == pytest.approx(failed.params["lr"])
    pruned = _lightning_hpo("export", "--storage", db, "--study", "digits", "--trial", "4")
    assert pruned.returncode == 2 and "did not complete (PRUNED: pruned at step 40)" in pruned.stderr
    assert "--force" in _lightning_hpo("export", "--help").stdout


def test_the_installed_script_exports_the_table_as_csv_without_pandas(db, tmp_path):
    out = tmp_path / "trials.csv"
    blocker = tmp_path / "no_pandas"
    blocker.mkdir()
    (blocker / "pandas.py").write_text("raise ImportError('pandas is not installed')\n")
    script = Path(sys.executable).with_name("lightning-hpo")
    argv = [str(script), "export", "--storage", db, "--study", "digits", "--format", "csv", "--out", str(out)]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])},
    )
    assert (done.returncode, done.stderr) == (0, "")
    _table_of_digits(out.read_text())
    help_text = _lightning_hpo("export", "--help").stdout
    assert "--all" in help_text and "--out" in help_text and "csv" in help_text


def test_trials_table_marks_enqueued_trials(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = Study("queue", search_space={"x": Float(0, 1)}, storage=url, seed=0)
    study.enqueue({"x": 0.25})
    study.optimize(lambda p: p["x"], n_trials=2)
    assert main(["trials", "--storage", url, "--study", "queue"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "COMPLETE" in line]
    assert ["enqueued" in row for row in rows] == [True, False]
