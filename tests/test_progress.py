from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from lightning_hpo import Float, Study, TrialState
from lightning_hpo.progress import StudyProgress

REPO = str(Path(__file__).resolve().parents[1])


def text_of(progress: StudyProgress) -> str:
    console = Console(width=150, record=True, file=io.StringIO())
    console.print(progress.render())
    return console.export_text()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the display did not refresh in time")
        time.sleep(0.02)


@pytest.fixture
def study(tmp_path) -> Study:
    return Study("live", search_space={"x": Float(0.0, 1.0)}, storage=f"sqlite:///{tmp_path / 'studies.db'}", seed=0)


def test_running_trials_show_their_latest_report_between_starts_and_finishes(study):
    study.tell(study.ask(), 0.5)
    with StudyProgress(study, n_trials=5, label="val_loss", refresh_interval=0.05) as progress:
        trial = study.ask()  # started elsewhere: the display learns of it from storage alone
        study.report(trial, 7, 0.123)
        wait_for(lambda: "0.123" in text_of(progress))
        row = next(line for line in text_of(progress).splitlines() if "0.123" in line)
        assert row.split()[:3] == ["1", "7", "0.123"]
        study.report(trial, 8, 0.0987)
        wait_for(lambda: "0.0987" in text_of(progress))
        text = text_of(progress)
        assert "running trial" in text and "last val_loss" in text
        assert "best val_loss=0.5 (trial 0)" in text
        study.tell(trial, 0.0987)
        wait_for(lambda: "running trial" not in text_of(progress))
    assert not progress._refresher.is_alive()


def test_a_multi_objective_study_shows_its_pareto_front(tmp_path):
    study = Study("mo", search_space={"x": Float(0.0, 1.0)}, mode=["min", "min"], storage=":memory:")
    for values in [(1.0, 2.0), (2.0, 1.0), (3.0, 3.0)]:
        study.tell(study.ask(), values)
    running = study.ask()
    study.report(running, 5, (0.5, 7.0))
    with StudyProgress(study, n_trials=4, label=["loss", "size"]) as progress:
        text = text_of(progress)
        assert "Pareto front 2 trials\n  trial 0: loss=1 size=2" in text and "  trial 1: loss=2 size=1" in text
        assert "trial 2:" not in text
        assert "last loss, size" in text
        row = next(line for line in text.splitlines() if "0.5, 7" in line)
        assert row.split()[:4] == ["3", "5", "0.5,", "7"]


@pytest.mark.parametrize(
    "variable,value,shown", [("RANK", "1", False), ("RANK", "0", True), ("LOCAL_RANK", "1", False)]
)
def test_only_global_rank_zero_displays(study, monkeypatch, variable, value, shown):
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    with StudyProgress(study, n_trials=1) as progress:
        progress.started(study.ask())
        assert (progress._live is not None) is shown


def test_finished_trials_are_printed_one_line_each(study, capsys):
    study.optimize(lambda p: p["x"], n_trials=2, show_progress=True)
    pruned = study.ask()
    study.report(pruned, 3, 0.7)
    with StudyProgress(study, n_trials=3, label="loss") as progress:
        progress.finished(study.tell(pruned, state=TrialState.PRUNED))
    err = capsys.readouterr().err
    assert "trial   1 COMPLETE value=" in err and "trial   2 PRUNED at step 3, best loss=0.7" in err


class ReadCountingStudy(Study):
    """A real study that counts how often the whole study is read."""

    reads = 0

    @property
    def trials(self):
        self.reads += 1
        return super().trials


def test_the_display_reads_the_whole_study_once_per_trial(tmp_path):
    study = ReadCountingStudy("counted", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
    with StudyProgress(study, n_trials=3, label="loss", refresh_interval=60) as progress:
        reads = 0
        for number in range(3):
            trial = study.ask()
            before = study.reads
            progress.started(trial)
            assert "running 1" in text_of(progress) and f"{number}/3 trials finished" in text_of(progress)
            reads += study.reads - before
            told = study.tell(trial, 1.0 - number / 10)
            before = study.reads
            progress.finished(told)
            reads += study.reads - before
        assert reads == 3  # the display's own reads: one per trial
        assert "3/3 trials finished" in text_of(progress) and "best loss=0.8 (trial 2)" in text_of(progress)


def test_in_a_pipe_the_summary_is_never_cropped(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    script = tmp_path / "long_names.py"
    script.write_text(
        "from lightning_hpo import Float, RandomSampler, Study\n"
        "space = {f'a_rather_long_parameter_name_{i}': Float(0.0, 1.0) for i in range(4)}\n"
        "study = Study('wide', search_space=space, storage=':memory:', sampler=RandomSampler(seed=0))\n"
        "study.optimize(lambda p: 0.5, n_trials=2, show_progress=True)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    assert done.returncode == 0, done.stderr
    (best,) = [line for line in done.stderr.splitlines() if line.startswith("best value=")]
    assert "a_rather_long_parameter_name_3=" in best, f"cropped: {best!r}"
