"""The examples run as users run them: in a subprocess, with a small budget."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_digits_example_tunes_and_reports_where_everything_is(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "digits.py"),
            "--n-trials",
            "4",
            "--max-epochs",
            "3",
            "--root-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for label in ("best val_loss", "best params", "test accuracy", "study", "best checkpoint"):
        assert label in out
    lines = {line.split("  ")[0]: line.split()[-1] for line in out.splitlines() if line.strip()}
    checkpoint = lines["best checkpoint"]
    assert Path(checkpoint).is_file() and checkpoint.startswith(str(tmp_path / "runs"))
    assert "trial   3" in done.stderr  # the progress display showed each trial
    for noise in ("Tip:", "LeafSpec", "GPU available"):  # the test evaluation is as quiet as the trials
        assert noise not in done.stderr + out, noise
    accuracy = float(next(line for line in out.splitlines() if line.startswith("test accuracy")).split()[2])
    assert accuracy > 0.5  # a real classifier was trained (10 classes: chance is 0.1)


@pytest.mark.slow
def test_ddp_digits_example_under_torchrun_prints_once_from_rank_zero(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    done = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            str(EXAMPLES / "ddp_digits.py"),
            "--n-trials",
            "2",
            "--max-epochs",
            "2",
            "--root-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best val_loss") == 1 and "processes         2 per trial" in done.stdout
    checkpoint = next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith("best checkpoint"))
    assert Path(checkpoint).is_file()
