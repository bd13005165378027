"""Trials that survive preemption: real tuning processes killed or signalled, then run again.

The process tests run tests/resume_script.py (a real Tuner, a tiny real Lightning model, a real
SQLite file) as a subprocess; its ledger says which batches each configuration trained in every
process, so they can check that a resumed configuration redoes at most the training since its last
validation. The others run a Tuner or the CLI in this process, preempted by a SIGTERM it sends itself.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import NOT_RESUMED, RESUME_DIR, RESUMED_AT_STEP, RETRY_OF, TrialState
from tests.lightning_models import LinearRegression
from tests.processes import kill_tree, wait_for

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "resume_script.py"
MAX_EPOCHS, BATCHES = 4, 4  # as in resume_script.py


class Study:
    """One study directory: starts the script, reads the trials and the ledger."""

    def __init__(self, tmp_path: Path, n_trials: int, keep: str = "all") -> None:
        self.url = f"sqlite:///{tmp_path / 'studies.db'}"
        self.root = tmp_path / "runs"
        self.ledger = tmp_path / "ledger"
        self.ledger.touch()
        self.n_trials, self.keep = n_trials, keep
        self._storage: SQLStorage | None = None  # one for every read: tests poll trials() many times a second

    def start(self, *launcher: str) -> subprocess.Popen[str]:
        arguments = [str(SCRIPT), str(REPO), self.url, str(self.root), str(self.n_trials), str(self.ledger), self.keep]
        command = [*launcher, *arguments] if launcher else [sys.executable, *arguments]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )

    def run(self) -> str:
        process = self.start()
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0 and "DONE" in out, err[-3000:]
        return err

    def trials(self) -> list:
        if self._storage is None:
            self._storage = SQLStorage(self.url)
        return self._storage.get_trials(self._storage.get_study("Ledgered").id)

    def batches(self) -> collections.Counter[str]:
        """Training batches per configuration (its lr), over every process."""
        return collections.Counter(line.split()[0] for line in self.ledger.read_text().splitlines())

    def processes_per_config(self) -> dict[str, set[str]]:
        pids: dict[str, set[str]] = collections.defaultdict(set)
        for line in self.ledger.read_text().splitlines():
            lr, _, pid = line.split()
            pids[lr].add(pid)
        return pids

    def trained_batches(self) -> int:
        return len(self.ledger.read_text().splitlines())


def _kill_when(study: Study, process: subprocess.Popen[str], batches: int) -> bool:
    """SIGKILL the process (and its children) once ``batches`` were trained in all; False if it ended first."""
    wait_for(lambda: study.trained_batches() >= batches or process.poll() is not None, timeout=300)
    if process.poll() is not None:
        return False
    kill_tree(process)  # as a lost node: torchrun's agent and every rank
    return True


def _check_finished_study(study: Study) -> None:
    """n_trials finished, each configuration once, nothing RUNNING, and at most one epoch redone per interruption."""
    trials = study.trials()
    finished = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(finished) == study.n_trials and not [t for t in trials if t.state is TrialState.RUNNING]
    assert len({t.params["lr"] for t in finished}) == study.n_trials
    for lr, pids in study.processes_per_config().items():
        interruptions = len(pids) - 1
        assert study.batches()[lr] <= (MAX_EPOCHS + interruptions) * BATCHES, (lr, study.batches()[lr], interruptions)
    for trial in finished:  # a resumed trial's curve goes on from the reports it had
        assert sorted(trial.intermediate_values) == [BATCHES * (e + 1) for e in range(MAX_EPOCHS)]


@pytest.mark.slow
def test_sigkills_at_random_moments_then_reruns_lose_nothing_and_redo_little(tmp_path):
    # Five kills (each process start costs seconds): about half of the 48 batches, so that most
    # trials are interrupted, some more than once, and one at least is resumed from its checkpoint.
    rng, kills = random.Random(0), 5
    study = Study(tmp_path, n_trials=3)
    for _ in range(kills):
        process = study.start()
        # A random moment of training: after 1 to 8 more batches of this process (2 epochs' worth).
        target = study.trained_batches() + rng.randint(1, 2 * BATCHES)
        if not _kill_when(study, process, target):
            break
    study.run()
    _check_finished_study(study)
    resumed = [t for t in study.trials() if t.attrs.get(RESUMED_AT_STEP)]
    assert resumed and all(t.attrs[RETRY_OF] is not None for t in resumed)
    assert max(len(pids) for pids in study.processes_per_config().values()) > 2, "no trial was interrupted twice"
    # Every configuration trained, in all, far less than a restart from zero after each kill would.
    assert sum(study.batches().values()) < study.n_trials * MAX_EPOCHS * BATCHES + kills * BATCHES


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "returncodes"),
    [
        (signal.SIGTERM, {143}),
        (signal.SIGUSR1, {138}),
        (signal.SIGINT, {130, -signal.SIGINT}),
    ],  # Python re-raises SIGINT
)
def test_a_signal_saves_the_trial_and_exits_with_one_line(tmp_path, signum, returncodes):
    # The resume that follows is the same as after SIGKILL (above) or an in-process SIGTERM (below).
    study = Study(tmp_path, n_trials=1)
    process = study.start()
    wait_for(lambda: study.trained_batches() >= BATCHES + 2)  # into the second epoch
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode in returncodes, err[-3000:]
    (interrupted,) = study.trials()
    step = int(err.split("lightning_hpo: trial 0 saved at step ")[1].split(";")[0])
    assert f"lightning_hpo: trial 0 saved at step {step}; rerun to resume." in err
    assert step == study.trained_batches()  # stopped after its batch, and saved there
    assert interrupted.state is TrialState.FAIL and interrupted.error.startswith(
        "Interrupted by the user (Ctrl-C)" if signum == signal.SIGINT else f"Interrupted by {signum.name}"
    )
    assert (Path(interrupted.attrs[RESUME_DIR]) / "checkpoints" / f"resume-step={step}.ckpt").is_file()


class TerminatedOnce(LinearRegression):
    """Sends itself SIGTERM (a preemption) at the third batch of the second epoch (16 per batch), once per test."""

    terminations_left = 0

    def training_step(self, batch, batch_idx):
        if self.global_step == 10 and TerminatedOnce.terminations_left:
            TerminatedOnce.terminations_left -= 1
            os.kill(os.getpid(), signal.SIGTERM)
        return super().training_step(batch, batch_idx)


def _tuner(tmp_path: Path, keep: str | int = "all"):
    from lightning_hpo import Float, NopPruner, Tuner
    from tests.lightning_models import RegressionData

    return Tuner(
        TerminatedOnce,
        search_space={"lr": Float(1e-3, 1e-1, log=True)},
        datamodule=RegressionData(),  # 8 batches an epoch
        trainer_kwargs={"max_epochs": 3, "accelerator": "cpu", "devices": 1, "logger": False},
        pruner=NopPruner(),
        storage=f"sqlite:///{tmp_path / 'studies.db'}",
        root_dir=tmp_path / "runs",
        seed=0,
        show_progress=False,
        keep_checkpoints=keep,
    )


def _terminated_trial_checkpoints(tmp_path: Path, monkeypatch) -> Path:
    """Run a study whose first trial gets SIGTERM at step 10; its checkpoints directory (resumable at steps 8 and 11)."""
    monkeypatch.setattr(TerminatedOnce, "terminations_left", 1)
    with pytest.raises(SystemExit) as stopped:
        _tuner(tmp_path).fit(n_trials=1)
    assert stopped.value.code == 143
    checkpoints = tmp_path / "runs" / "TerminatedOnce" / "trial_0" / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("resume-*")) == ["resume-step=11.ckpt", "resume-step=8.ckpt"]
    return checkpoints


def test_a_truncated_checkpoint_falls_back_to_the_one_before(tmp_path, monkeypatch, caplog):
    newest = _terminated_trial_checkpoints(tmp_path, monkeypatch) / "resume-step=11.ckpt"
    newest.write_bytes(newest.read_bytes()[:1000])  # as a full disk or a bad copy would leave it
    result = _tuner(tmp_path).fit(n_trials=1)
    assert "trial 1 skips unreadable checkpoints resume-step=11.ckpt" in caplog.text
    interrupted, resumed = result.trials
    assert resumed.state is TrialState.COMPLETE and resumed.attrs[RESUMED_AT_STEP] == 8
    assert resumed.params == interrupted.params and sorted(resumed.intermediate_values) == [8, 16, 24]


def test_only_unreadable_checkpoints_restart_the_trial_from_zero_with_a_warning(tmp_path, monkeypatch, caplog):
    checkpoints = _terminated_trial_checkpoints(tmp_path, monkeypatch)
    for path in checkpoints.glob("resume-step=*.ckpt"):
        path.write_bytes(b"not a checkpoint")
    result = _tuner(tmp_path).fit(n_trials=1)
    assert "trial 1 has no readable checkpoint" in caplog.text and "restarts from step 0" in caplog.text
    resumed = result.trials[-1]
    assert resumed.state is TrialState.COMPLETE and resumed.attrs[RESUMED_AT_STEP] == 0
    assert sorted(resumed.intermediate_values) == [8, 16, 24]
    # The interrupted run's best checkpoint went with its resumable ones: the best.ckpt is the new run's.
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == [
        "best.ckpt",
        "resume-step=16.ckpt",
        "resume-step=24.ckpt",
    ]


@pytest.mark.parametrize("keep", ["all", "best", 1])
def test_files_left_after_a_study_match_keep_checkpoints(tmp_path, keep):
    trials = _tuner(tmp_path, keep).fit(n_trials=3).trials
    study_dir = tmp_path / "runs" / "TerminatedOnce"
    left = sorted(p.relative_to(study_dir).as_posix() for p in study_dir.rglob("*.ckpt"))
    best = min(trials, key=lambda t: t.value)
    bests = [f"trial_{t.number}/checkpoints/best.ckpt" for t in trials]
    if keep == "all":
        resumable = [f"trial_{t.number}/checkpoints/resume-step={s}.ckpt" for t in trials for s in (16, 24)]
        assert left == sorted(bests + resumable)
    elif keep == "best":
        assert left == bests
    else:
        assert left == [f"trial_{best.number}/checkpoints/best.ckpt"]
    assert torch.load(best.checkpoint_path, weights_only=False)["global_step"] in best.intermediate_values


def test_a_trial_interrupted_again_and_again_without_progress_is_not_resumed(tmp_path):
    from lightning_hpo import Float
    from lightning_hpo import Study as HPOStudy
    from lightning_hpo.samplers import RandomSampler

    study = HPOStudy(
        "s", search_space={"x": Float(0.0, 1.0)}, storage=f"sqlite:///{tmp_path / 'db'}", sampler=RandomSampler(seed=0)
    )
    trial_dir = tmp_path / "trial_0"
    first = study.ask()
    study.storage.update_trial(first.id, attrs={RESUME_DIR: str(trial_dir)})
    study.tell(first, state=TrialState.FAIL, error="Interrupted by SIGTERM; saved at step 0.")
    chain = [first]
    for _ in range(2):  # each retry dies before it writes a checkpoint
        retry = study.ask()
        assert retry.params == first.params and retry.attrs[RETRY_OF] == chain[-1].number
        study.tell(retry, state=TrialState.FAIL, error="Stale: its worker process host:1 is gone.")
        chain.append(retry)
    fresh = study.ask()  # the third interruption without progress: a new configuration instead
    assert RETRY_OF not in fresh.attrs and fresh.params != first.params
    assert "3 times in a row without writing a new checkpoint" in study.trials[chain[-1].number].attrs[NOT_RESUMED]


@pytest.mark.slow
def test_under_torchrun_a_killed_job_is_resumed_by_the_next_on_every_rank(tmp_path):
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    launcher = (torchrun, "--standalone", "--nproc_per_node=2")
    study = Study(tmp_path, n_trials=1)
    process = study.start(*launcher)
    assert _kill_when(study, process, 2 * BATCHES + 2)  # into the third epoch
    rerun = study.start(*launcher)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and "DONE" in out, err[-3000:]
    _check_finished_study(study)
    resumed = study.trials()[-1]
    assert resumed.attrs[RETRY_OF] == 0 and resumed.attrs[RESUMED_AT_STEP] == 2 * BATCHES


def test_cli_tune_stopped_by_sigterm_resumes_when_rerun_and_keeps_one_checkpoint(tmp_path, monkeypatch, capsys):
    from tests.test_cli import run_cli, tiny_trainer

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(TerminatedOnce, "terminations_left", 1)
    trainer = [f"--trainer.{k}={v}" for k, v in tiny_trainer(max_epochs=3, logger=False).items()]
    args = [
        *("tune", "--seed_everything", "0", "--tune.n_trials", "2", "--tune.pruner", "nop"),
        *("--tune.sampler", "random", "--tune.show_progress", "false", "--tune.keep_checkpoints", "1", *trainer),
        *("--tune.search_space", '{"model.lr": {"type": "float", "low": 0.001, "high": 0.1}}'),
    ]
    with pytest.raises(SystemExit) as stopped:
        run_cli(*args, model=TerminatedOnce)
    assert stopped.value.code == 143  # 128 + SIGTERM
    assert "lightning_hpo: trial 0 saved at step 11; rerun to resume." in capsys.readouterr().err  # 8 batches an epoch
    study = run_cli(*args, model=TerminatedOnce).study
    interrupted, resumed, fresh = study.trials
    assert (interrupted.state, resumed.state, fresh.state) == (
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    )
    assert resumed.params == interrupted.params and resumed.attrs[RETRY_OF] == 0
    assert resumed.attrs[RESUMED_AT_STEP] == 11 and sorted(resumed.intermediate_values) == [8, 16, 24]
    assert resumed.log_dir == interrupted.log_dir  # one directory, one curve
    best = min((resumed, fresh), key=lambda t: t.value)
    assert sorted(Path(tmp_path).rglob("*.ckpt")) == [Path(best.checkpoint_path)]


def test_keep_checkpoints_and_checkpoint_every_are_checked():
    from lightning_hpo import Float, Tuner
    from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError

    def make(**kwargs):
        return Tuner(LinearRegression, search_space={"lr": Float(0.01, 0.1)}, storage=":memory:", **kwargs)

    with pytest.raises(InvalidArgumentError, match=r'`keep_checkpoints` must be "all", "best" or an int k >= 1'):
        make(keep_checkpoints="worst")
    with pytest.raises(InvalidArgumentError, match="but got 0"):
        make(keep_checkpoints=0)
    with pytest.raises(ArgumentTypeError, match=r"but got 1.5 \(float\)"):
        make(keep_checkpoints=1.5)
    with pytest.raises(InvalidArgumentError, match="`checkpoint_every` must be None"):
        make(checkpoint_every=-1)
    assert make(keep_checkpoints="2").keep_checkpoints == 2


def test_the_random_states_a_resumable_checkpoint_saves_are_restored_exactly(tmp_path):
    import numpy as np

    from lightning_hpo.callback import ResumableCheckpoint

    callback = ResumableCheckpoint(tmp_path, number=0)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = tmp_path / "state.pt"
    torch.save(callback.state_dict(), path)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(4), np.random.seed(5), torch.manual_seed(6)
    callback.load_state_dict(torch.load(path, weights_only=True))  # as Lightning loads a checkpoint
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected


def test_metrics_are_read_as_floats_in_their_order_whatever_their_type():
    from lightning_hpo._outcome_metrics import as_floats

    values = {"a": torch.tensor(0.5), "b": 3, "c": torch.tensor([7], dtype=torch.int64), "d": torch.tensor(0.25)}
    floats = as_floats(values)
    assert list(floats.items()) == [("a", 0.5), ("b", 3.0), ("c", 7.0), ("d", 0.25)]
    assert all(type(v) is float for v in floats.values())
