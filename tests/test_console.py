from __future__ import annotations

import subprocess
import sys

import pytest

from lightning_hpo import Categorical, Float, Study, TrialState
from lightning_hpo.console import main


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = Study("digits", search_space={"lr": Float(1e-4, 1e-1, log=True), "opt": Categorical(["adam", (1, 2)])},
                  storage=url, seed=0)
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
