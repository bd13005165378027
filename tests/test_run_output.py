"""What a user of the Python API sees on stderr: real scripts in subprocesses, output to a pipe."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import TrialState
from tests.processes import interrupt_when

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import signal, sys, time, warnings
    # Ctrl-C as in a terminal: a test run started in the background by a non-interactive shell
    # passes SIGINT down ignored, and Python then keeps ignoring it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, sys.argv[1])
    from lightning_hpo import Categorical, Float, NopPruner, Tuner
    from tests.lightning_models import LinearRegression, RegressionData

    case, url, root = sys.argv[2:5]

    class Module(LinearRegression):
        def setup(self, stage):
            # As libraries do when a model is built: a new filter makes Python forget which warnings
            # it has shown (once per location), so they would repeat for every trial.
            warnings.filterwarnings("ignore", message="some library's own warning")

        def training_step(self, batch, batch_idx):
            if case == "failing":
                raise RuntimeError(f"diverged at lr={self.hparams.lr:.3g}")
            if case == "interrupted":
                time.sleep(0.05)
            return super().training_step(batch, batch_idx)

        def validation_step(self, batch, batch_idx):
            warnings.warn("the user's own warning", UserWarning)
            super().validation_step(batch, batch_idx)

    tuner = Tuner(
        Module,
        search_space={"lr": Float(1e-3, 1e-1, log=True), "activation": Categorical(["relu", "tanh"])},
        datamodule=RegressionData(),
        monitor="val_los" if case == "typo" else "val_loss",
        trainer_kwargs={"max_epochs": 2, "accelerator": "cpu", "devices": 1},
        pruner=NopPruner(),
        storage=url,
        root_dir=root,
        seed=0,
        max_consecutive_failures=3,
    )
    tuner.fit(n_trials=1000 if case == "interrupted" else 3)
    print("DONE", flush=True)
    """
)


def run_script(tmp_path: Path, case: str) -> subprocess.CompletedProcess[str]:
    script, url = tmp_path / "tune.py", f"sqlite:///{tmp_path / 'studies.db'}"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(REPO), case, url, str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=300,
    )


def traceback_of(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    start = lines.index("Traceback (most recent call last):")
    return lines[start:]


@pytest.mark.slow
def test_a_misconfiguration_shows_its_message_without_lightnings_frames(tmp_path):
    done = run_script(tmp_path, "typo")
    assert done.returncode == 1
    traceback = traceback_of(done.stderr)
    assert len(traceback) <= 10, done.stderr  # the user's call and the re-raise; not 50 lines of Lightning
    assert not [line for line in traceback if "lightning/pytorch" in line or "During handling" in line]
    assert traceback[-1] == (
        "lightning_hpo.exceptions.MetricNotFoundError: The trial monitors 'val_los', but no metric of that name was "
        "logged by this validation. Logged metrics: ['train_loss', 'val_loss']. Log it in validation_step with "
        "self.log('val_los', ...), or monitor one of the logged metrics."
    )


@pytest.mark.slow
def test_failing_trials_stop_the_study_with_one_line_each_and_a_short_error(tmp_path):
    done = run_script(tmp_path, "failing")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    fails = [line for line in lines if re.match(r"trial +\d+ FAIL", line)]
    assert len(fails) == 3
    for line in fails:  # one unwrapped line per trial in a pipe; the reason last, apart from the duration
        assert re.fullmatch(
            r"trial +\d FAIL \(error\) in \d+\.\ds  activation='(relu|tanh)' lr=[\d.e-]+  error: RuntimeError: diverged at lr=\S+",
            line,
        ), line
    traceback = traceback_of(done.stderr)
    assert len(traceback) <= 10 and not [line for line in traceback if "lightning/pytorch" in line], done.stderr
    assert re.fullmatch(
        r"lightning_hpo\.exceptions\.TrialsFailingError: 3 trials in a row failed, so study 'Module' stops\. "
        r"The last one, trial 2, failed with: RuntimeError: diverged at lr=\S+ \(each failed trial's `error` holds "
        r"its full traceback; list them with `lightning-hpo trials --storage sqlite:///\S+studies\.db "
        r"--study Module --state FAIL`\)\.",
        traceback[-1],
    )
    assert len(lines) < 25, done.stderr


@pytest.mark.slow
def test_warnings_per_trial_are_silenced_and_others_shown_once(tmp_path):
    done = run_script(tmp_path, "complete")
    assert done.returncode == 0 and "DONE" in done.stdout, done.stderr
    for noise in ("LeafSpec", "log_every_n_steps", "Tip:", "sync_dist"):
        assert noise not in done.stderr
    assert done.stderr.count("UserWarning: the user's own warning") == 1  # 3 trials, 3 validations each
    trial_lines = [line for line in done.stderr.splitlines() if line.startswith("trial ")]
    assert [line.split()[1:3] for line in trial_lines] == [["0", "COMPLETE"], ["1", "COMPLETE"], ["2", "COMPLETE"]]


def _trials(url: str) -> list:
    storage = SQLStorage(url)
    try:
        return storage.get_trials(storage.get_study("Module").id)
    finally:
        storage.close()


@pytest.mark.slow
def test_ctrl_c_ends_with_one_line_that_says_how_to_resume(tmp_path):
    script, url = tmp_path / "tune.py", f"sqlite:///{tmp_path / 'studies.db'}"
    script.write_text(SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(REPO), "interrupted", url, str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = interrupt_when(process, lambda: any(t.intermediate_values for t in _trials(url)))
    assert process.returncode in (-signal.SIGINT, 130), err
    traceback = traceback_of(err)
    assert len(traceback) <= 10 and not [line for line in traceback if "lightning/pytorch" in line], err
    assert traceback[-1] == (
        f"KeyboardInterrupt: study 'Module' was interrupted; its finished trials are saved in {url}: rerun the same "
        "command to resume it."
    )
    assert [t.state for t in _trials(url)][-1] is TrialState.FAIL
