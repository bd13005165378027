"""Set-up errors raised when the Study or Tuner is built, before a trial exists; the study's budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_hpo import Float, MedianPruner, PatientPruner, Pruner, Study, Tuner
from lightning_hpo._budget import check_budget, training_budget
from lightning_hpo.exceptions import InvalidArgumentError, StudyMismatchError
from lightning_hpo.pruners import ASHAPruner, HyperbandPruner, NopPruner
from lightning_hpo.trial import Trial, TrialState
from tests.lightning_models import LinearRegression, RegressionData, SizedRegression

SPACE = {"lr": Float(1e-3, 1e-1, log=True)}


# -- a pruner that judges one objective, in a study with several ----------------------------


@pytest.mark.parametrize("pruner", [MedianPruner(), PatientPruner(None, patience=2), HyperbandPruner()])
def test_study_refuses_a_single_objective_pruner_with_several_objectives(tmp_path, pruner):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    with pytest.raises(InvalidArgumentError, match=r"judges one objective.*use ASHAPruner") as raised:
        Study("mo", search_space=SPACE, mode=["min", "min"], pruner=pruner, storage=url)
    assert "rank 0" not in str(raised.value)
    assert not (tmp_path / "studies.db").exists()  # refused before the study was created


class NeedsHistory(Pruner):
    """A user's pruner that reads the history in a way the construction check can't foresee."""

    def prune(self, trial, trials, *, directions):
        return trials[1].last_step > 10


@pytest.mark.parametrize("pruner", [ASHAPruner(), NopPruner(), NeedsHistory()])
def test_pruners_that_may_judge_several_objectives_are_accepted(tmp_path, pruner):
    study = Study("mo", search_space=SPACE, mode=["min", "max"], pruner=pruner, storage=None)
    assert study.pruner is pruner


def test_tuner_refuses_a_single_objective_pruner_with_several_monitors(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"MedianPruner.*judges one objective"):
        Tuner(
            SizedRegression,
            search_space=SPACE,
            datamodule=RegressionData(),
            monitor=["val_loss", "n_params"],
            mode=["min", "min"],
            pruner=MedianPruner(),
            root_dir=tmp_path,
        )
    assert not list(tmp_path.iterdir())


# -- a Trainer that would launch its own processes ----------------------------------------


@pytest.mark.parametrize(
    "trainer_kwargs",
    [
        {"accelerator": "cpu", "strategy": "ddp", "devices": 2},
        {"accelerator": "cpu", "strategy": "ddp_spawn", "devices": 2},
        {"accelerator": "cpu", "devices": 2, "num_nodes": 2},
    ],
)
def test_tuner_refuses_ddp_without_torchrun_before_any_trial(tmp_path, trainer_kwargs):
    with pytest.raises(InvalidArgumentError, match=r"runs \d processes .* Start DDP trials with torchrun"):
        Tuner(
            LinearRegression,
            search_space=SPACE,
            datamodule=RegressionData(),
            trainer_kwargs=trainer_kwargs,
            root_dir=tmp_path,
        )
    assert Study("LinearRegression", search_space=SPACE, storage=tmp_path / "studies.db").trials == []


def test_tuner_accepts_one_process_trainers(tmp_path):
    tuner = Tuner(
        LinearRegression,
        search_space=SPACE,
        datamodule=RegressionData(),
        trainer_kwargs={"accelerator": "cpu", "devices": 1, "strategy": "auto"},
        root_dir=tmp_path,
    )
    assert tuner.study is not None and tuner.study.trials == []


# -- the study's budget --------------------------------------------------------------------


@pytest.mark.parametrize(
    "trainer_kwargs, budget",
    [
        ({}, {}),
        ({"max_epochs": 10}, {"max_epochs": 10}),
        ({"max_epochs": None, "max_steps": -1}, {}),
        ({"max_epochs": -1, "max_steps": 500, "accelerator": "cpu"}, {"max_steps": 500}),
        ({"max_epochs": 3, "max_steps": 100}, {"max_epochs": 3, "max_steps": 100}),
    ],
)
def test_training_budget_keeps_the_limits_set(trainer_kwargs, budget):
    assert training_budget(trainer_kwargs) == budget


def trials_with(*budgets: dict | None) -> list[Trial]:
    return [Trial(n, TrialState.COMPLETE, {}, attrs={} if b is None else {"budget": b}) for n, b in enumerate(budgets)]


@pytest.mark.parametrize(
    "trials, budget, allow_change, refused",
    [
        pytest.param([], {"max_epochs": 5}, False, False, id="new-study"),
        pytest.param(trials_with(None, None), {"max_epochs": 5}, False, False, id="trials-without-budget"),
        pytest.param(trials_with({"max_epochs": 5}), {"max_epochs": 5}, False, False, id="same"),
        pytest.param(trials_with({"max_epochs": 5}), {"max_epochs": 6}, False, True, id="changed"),
        pytest.param(trials_with({"max_epochs": 5}), {}, False, True, id="limit-removed"),
        pytest.param(trials_with({}), {"max_steps": 100}, False, True, id="limit-added"),
        pytest.param(trials_with({"max_epochs": 5}), {"max_epochs": 6}, True, False, id="changed-allowed"),
        pytest.param(trials_with({"max_epochs": 5}, {"max_epochs": 6}), {"max_epochs": 6}, False, False, id="latest"),
    ],
)
def test_check_budget(trials, budget, allow_change, refused):
    if refused:
        with pytest.raises(StudyMismatchError, match=r"study_name=.*allow_budget_change=True"):
            check_budget("s", trials, budget, allow_change=allow_change)
    else:
        check_budget("s", trials, budget, allow_change=allow_change)


def budget_tuner(root: Path, max_epochs: int, **kwargs) -> Tuner:
    return Tuner(
        LinearRegression,
        search_space=SPACE,
        datamodule=RegressionData(),
        trainer_kwargs={"max_epochs": max_epochs, "accelerator": "cpu", "devices": 1},
        pruner=NopPruner(),
        root_dir=root,
        seed=0,
        show_progress=False,
        **kwargs,
    )


@pytest.mark.slow
def test_a_changed_max_epochs_is_refused_unless_allowed(tmp_path):
    first = budget_tuner(tmp_path, 2).fit(n_trials=1)
    (trial,) = first.trials
    # 128 samples in batches of 16: 8 optimizer steps per epoch.
    assert trial.attrs["budget"] == {"max_epochs": 2} and trial.attrs["planned_steps"] == 16
    with pytest.raises(StudyMismatchError) as refused:
        budget_tuner(tmp_path, 3)
    assert str(refused.value) == (
        "Study 'LinearRegression' was trained with max_epochs=2 (trial 0), but this Tuner has max_epochs=3: its "
        "trials would not be comparable with the earlier ones. Pass a new study_name=... to start a study with "
        "this budget, restore the earlier trainer_kwargs to resume, or pass allow_budget_change=True to continue "
        "this study with mixed budgets."
    )
    assert budget_tuner(tmp_path, 2).fit(n_trials=2).trials[1].attrs["planned_steps"] == 16  # same budget resumes
    mixed = budget_tuner(tmp_path, 3, allow_budget_change=True).fit(n_trials=3)
    assert mixed.trials[2].attrs == {**mixed.trials[2].attrs, "budget": {"max_epochs": 3}, "planned_steps": 24}
    assert budget_tuner(tmp_path, 3).study is not None  # the study's budget is now its latest trial's
    assert budget_tuner(tmp_path, 5, study_name="longer").study.trials == []
