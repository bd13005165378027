"""Cross-validated and repeated trials: ``Tuner(cv=k, repeats=r)``, ``KFoldDataModule``, and their bad input."""

from __future__ import annotations

import statistics
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_hpo import Float, Fold, KFoldDataModule, TrialState, Tuner
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.pruners import NopPruner, ThresholdPruner
from lightning_hpo.trial import EVALUATION_VALUES, PRUNED_STEP, VALUE_SPREAD
from tests.lightning_models import LinearRegression, RegressionData, regression_data

TRAINER = {"max_epochs": 2, "limit_train_batches": 2, "logger": False, "enable_checkpointing": False}


def _data(batch_size: int = 16) -> KFoldDataModule:
    return KFoldDataModule(regression_data(48, seed=0), batch_size=batch_size)


def _tuner(tmp_path: Path, **kwargs) -> Tuner:
    options = {
        "search_space": {"lr": Float(0.01, 0.1, log=True)},
        "datamodule": _data(),
        "trainer_kwargs": TRAINER,
        "root_dir": tmp_path,
        "seed": 0,
        "show_progress": False,
        **kwargs,
    }
    return Tuner(LinearRegression, **options)


# -- the fold wrapper ----------------------------------------------------------------------


def test_kfold_splits_every_sample_once_into_balanced_stratified_folds() -> None:
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.array([0] * 15 + [1] * 5)
    dm = KFoldDataModule((x, y), batch_size=4, stratify=True)
    validations = [dm.fold_indices(Fold(i, 5, seed=3))[1] for i in range(5)]
    assert sorted(np.concatenate(validations).tolist()) == list(range(20))
    assert [len(v) for v in validations] == [4] * 5
    assert all((y[v] == 1).sum() == 1 for v in validations)  # the class proportions of the whole set
    training, validation = dm.fold_indices(Fold(2, 5, seed=3))
    assert not set(training) & set(validation) and len(training) == 16
    # The seed alone decides the split: the same for every trial, another one per repeat.
    assert np.array_equal(dm.fold_indices(Fold(0, 5, seed=3))[1], validations[0])
    assert not np.array_equal(dm.fold_indices(Fold(0, 5, seed=4))[1], validations[0])


def test_kfold_needs_a_fold_and_k_within_the_dataset() -> None:
    dm = KFoldDataModule((np.zeros((3, 1)), np.zeros(3)), batch_size=2)
    with pytest.raises(InvalidArgumentError, match="serves no fold"):
        dm.val_dataloader()
    with pytest.raises(InvalidArgumentError, match=r"at most the dataset's size, but got cv=4 for 3 samples"):
        dm.for_fold(Fold(0, 4))
    assert len(dm.for_fold(Fold(1, 3)).val_dataloader().dataset) == 1


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cv": 1}, InvalidArgumentError, r"`cv >= 2` must hold .* got cv=1"),
        ({"cv": 2.0}, ArgumentTypeError, r"`cv` \(the number of folds\) must be an int, but got 2.0"),
        ({"cv": 49}, InvalidArgumentError, r"cv=49 for 48 samples"),
        ({"repeats": 0}, InvalidArgumentError, r"`repeats >= 1` must hold .* got repeats=0"),
        ({"repeats": "3"}, ArgumentTypeError, r"`repeats` must be an int, but got '3'"),
        ({"cv": 3, "datamodule": RegressionData()}, InvalidArgumentError, r"the datamodule must receive the fold"),
    ],
)
def test_bad_cross_validation_arguments_fail_at_construction(tmp_path: Path, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        _tuner(tmp_path, **kwargs)


def test_a_factory_that_ignores_the_fold_is_warned_about(tmp_path: Path) -> None:
    def same_split(params, fold):  # takes the fold, but always serves fold 0
        return _data().for_fold(Fold(0, fold.k))

    tuner = _tuner(tmp_path, cv=3, datamodule=same_split)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner.fit(n_trials=1)
    assert [str(w.message) for w in caught if "ignore its fold" in str(w.message)]


# -- trials evaluated several times -----------------------------------------------------------


def test_cv_trial_value_is_the_mean_of_its_folds_with_the_spread(tmp_path: Path) -> None:
    result = _tuner(tmp_path, cv=3, trainer_kwargs={**TRAINER, "enable_checkpointing": True}).fit(n_trials=2)
    for trial in result.trials:
        assert trial.state is TrialState.COMPLETE
        values = trial.attrs[EVALUATION_VALUES]
        assert len(values) == 3 and len(set(values)) == 3  # three folds, three different validation sets
        assert trial.value == pytest.approx(statistics.fmean(values))
        assert trial.attrs[VALUE_SPREAD] == [pytest.approx(statistics.pstdev(values))]
    # The trial keeps the checkpoint of its best fold (the others are removed).
    best = result.best_trial
    assert best is not None and best.checkpoint_path and Path(best.checkpoint_path).is_file()
    assert len(list(Path(best.log_dir).glob("fold_*/checkpoints/*.ckpt"))) == 1
    assert isinstance(result.load_best_model(), LinearRegression)


def test_repeats_train_with_different_seeds_and_are_reproducible(tmp_path: Path) -> None:
    def values(name: str) -> list[float]:
        tuner = _tuner(tmp_path, repeats=2, datamodule=RegressionData(), study_name=name)
        return tuner.fit(n_trials=1).trials[0].attrs[EVALUATION_VALUES]

    first = values("a")
    assert len(first) == 2 and first[0] != first[1]
    assert values("b") == first


def test_a_hopeless_cv_trial_stops_within_its_first_fold(tmp_path: Path) -> None:
    tuner = _tuner(tmp_path, cv=3, pruner=ThresholdPruner(upper=0.0))  # every reported loss is too high
    trial = tuner.fit(n_trials=1).trials[0]
    assert trial.state is TrialState.PRUNED
    assert trial.attrs[PRUNED_STEP] < 4  # a fold is 2 epochs of 2 batches: pruned inside fold 0
    assert trial.attrs[EVALUATION_VALUES] == []


@pytest.mark.slow  # two worker processes that import torch and Lightning
def test_cv_with_n_jobs(tmp_path: Path) -> None:
    # No pruning: with the default ASHA, whichever slot reports first may prune the other (timing).
    result = _tuner(tmp_path, cv=2, n_jobs=2, pruner=NopPruner()).fit(n_trials=2)
    complete = [t for t in result.trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 2 and all(len(t.attrs[EVALUATION_VALUES]) == 2 for t in complete)


def test_fold_major_steps_compare_fold_zero_of_every_trial(tmp_path: Path) -> None:
    trial = _tuner(tmp_path, cv=2).fit(n_trials=1).trials[0]
    steps = sorted(trial.intermediate_values)
    assert steps == [2, 4, 6, 8]  # fold 0 at steps 2 and 4, fold 1 at 4 + 2 and 4 + 4
    assert torch.isclose(torch.tensor(trial.intermediate_values[8]), torch.tensor(trial.value))


# -- the GP reads the spread as the noise of a trial's value ------------------------------------


def test_gp_takes_the_spread_of_evaluated_trials_as_their_noise() -> None:
    from lightning_hpo import GPSampler, Study
    from lightning_hpo.samplers._gp_model import build_model
    from lightning_hpo.samplers._gp_space import GPSpace
    from lightning_hpo.samplers.gp import known_noise

    space = {"x": Float(0.0, 1.0)}
    study = Study("noisy", search_space=space, storage=":memory:", sampler=GPSampler(seed=0, n_startup_trials=4))
    for i, x in enumerate([0.1, 0.35, 0.6, 0.85, 0.5]):
        trial = study.ask({"x": x})
        if i == 2:  # evaluated 4 times, with a spread of 0.5
            study.storage.update_trial(trial.id, attrs={EVALUATION_VALUES: [0.0] * 4, VALUE_SPREAD: [0.5]})
        study.tell(trial, (x - 0.4) ** 2)
    trials = sorted(study.trials, key=lambda t: t.number)
    variances = known_noise(trials, dtype=torch.float64)
    assert variances is not None and variances[:, 0].tolist() == [0.0, 0.0, 0.0625, 0.0, 0.0]
    assert known_noise(trials[:2], dtype=torch.float64) is None  # no trial knows its noise: the plain GP
    gp_space = GPSpace(study.space)
    X = gp_space.from_unit(torch.tensor([[t.params["x"]] for t in trials], dtype=torch.float64))
    Y = -torch.tensor([[t.value] for t in trials], dtype=torch.float64)
    noise = build_model(X, Y, gp_space, train_Yvar=variances).likelihood.noise.detach()
    assert noise[2] > noise[0] and noise[0] == noise[1]  # the noisy point's own noise, on top of the learned one
    assert 0.0 <= study.ask().params["x"] <= 1.0  # and the sampler suggests with it


# -- the CLI's --tune.cv and --tune.repeats -------------------------------------------------------


class RegressionFolds(KFoldDataModule):
    """A datamodule class the CLI can build from a config, that serves folds."""

    def __init__(self, batch_size: int = 16) -> None:
        super().__init__(regression_data(48, seed=0), batch_size=batch_size)


def _run_tune(tmp_path: Path, *flags: str):
    from lightning_hpo.cli import LightningCLI

    args = ["tune", "--tune.show_progress", "false", "--tune.search_space", '{"model.lr": [0.05]}']
    args += ["--trainer.max_epochs", "1", "--trainer.logger", "false", "--trainer.limit_train_batches", "2"]
    return LightningCLI(LinearRegression, RegressionFolds, args=[*args, "--tune.root_dir", str(tmp_path), *flags])


def test_cli_tune_cross_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    cli = _run_tune(tmp_path, "--tune.cv", "2", "--tune.n_trials", "1", "--tune.seed", "0")
    (trial,) = cli.study.trials
    assert trial.state is TrialState.COMPLETE and len(trial.attrs[EVALUATION_VALUES]) == 2
    assert trial.value == pytest.approx(statistics.fmean(trial.attrs[EVALUATION_VALUES]))


def test_cli_tune_rejects_a_bad_cv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    with pytest.raises(SystemExit) as exit_info:
        _run_tune(tmp_path, "--tune.cv", "1")
    assert exit_info.value.code == 2
    assert "`cv >= 2` must hold" in capsys.readouterr().err


# -- torchrun: every rank trains the same folds in order; rank 0 records ------------------------------

TORCHRUN_SCRIPT = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from lightning_hpo import Float, KFoldDataModule, Pruner, Tuner
from tests.lightning_models import LinearRegression, regression_data

out_dir, rank = sys.argv[2], int(os.environ["RANK"])


class PruneTrialOne(Pruner):
    def prune(self, trial, trials, *, directions):
        return trial.number == 1


class Recorded(LinearRegression):
    def on_fit_end(self):
        with open(os.path.join(out_dir, f"rank{rank}.jsonl"), "a") as f:
            f.write(json.dumps({"dir": os.path.relpath(self.trainer.default_root_dir, out_dir),
                                "world": self.trainer.world_size}) + "\\n")


if __name__ == "__main__":
    tuner = Tuner(Recorded, search_space={"lr": Float(1e-2, 1e-1, log=True)}, cv=2,
                  datamodule=KFoldDataModule(regression_data(32), batch_size=8),
                  storage=f"sqlite:///{out_dir}/studies.db", root_dir=out_dir, seed=0, show_progress=False,
                  pruner=PruneTrialOne(), trainer_kwargs={"max_epochs": 1, "strategy": "ddp", "accelerator": "cpu",
                  "devices": 2, "logger": False, "enable_checkpointing": False})
    tuner.fit(n_trials=2)
"""


@pytest.mark.slow
def test_cv_under_torchrun_trains_the_same_folds_on_every_rank(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from lightning_hpo.storage import SQLStorage

    script = tmp_path / "tune.py"
    script.write_text(TORCHRUN_SCRIPT)
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    repo = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", str(script), repo, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": repo},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    records = [[json.loads(line) for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert records[0] == records[1]  # the same evaluations, in the same order, each over both ranks
    expected = ["Recorded/trial_0/fold_0", "Recorded/trial_0/fold_1", "Recorded/trial_1/fold_0"]
    assert [r["dir"] for r in records[0]] == expected and {r["world"] for r in records[0]} == {2}
    storage = SQLStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    first, second = sorted(storage.get_trials(storage.get_study("Recorded").id), key=lambda t: t.number)
    assert first.state is TrialState.COMPLETE and len(first.attrs[EVALUATION_VALUES]) == 2
    assert second.state is TrialState.PRUNED  # pruned in fold 0: fold 1 never trained, on either rank
