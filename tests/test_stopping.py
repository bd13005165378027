"""RegretBoundStopper: when a study stops, what it stores, and what other workers and reruns see."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lightning_hpo import Float, RegretBoundStopper, SobolSampler, StopDecision, Study
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.stopping import FULL_BETA_TRIALS, _beta, _srinivas_beta, recorded_stop
from lightning_hpo.trial import VALUE_SPREAD
from tests.processes import wait_for

SPACE = {"x": Float(-1.0, 1.0), "y": Float(-1.0, 1.0)}


def bowl(params: dict[str, float]) -> float:
    return (params["x"] - 0.3) ** 2 + (params["y"] + 0.2) ** 2


def rough(params: dict[str, float]) -> float:
    """Many narrow wells: a handful of points says little about where the best one lies."""
    return math.sin(23.0 * params["x"]) * math.cos(19.0 * params["y"]) + 0.3 * math.sin(
        41.0 * params["x"] * params["y"]
    )


def sobol_study(name: str = "s", storage: str = ":memory:", mode: str | list[str] = "min") -> Study:
    # Sobol points keep the tests cheap: the stopper fits its own GP whatever the sampler.
    return Study(name, search_space=SPACE, mode=mode, storage=storage, sampler=SobolSampler(seed=0))


def test_stops_on_an_easy_problem_and_stores_why() -> None:
    study = sobol_study()
    study.optimize(bowl, n_trials=40, stopper=RegretBoundStopper(min_trials=8, threshold=0.2))
    decision = recorded_stop(study)
    assert decision is not None and decision.noise_source == "threshold"
    assert decision.regret_bound < 0.2
    assert 8 < len(study.trials) == decision.n_trials < 40  # not at its first look, and well before the budget


def test_does_not_stop_early_on_a_hard_problem() -> None:
    study = sobol_study()
    study.optimize(rough, n_trials=16)
    stopper = RegretBoundStopper(min_trials=8, threshold=0.2)
    assert stopper.evaluate(study) is None
    # What it compared, for benchmarks that try other thresholds: the bound stayed above the threshold.
    check = stopper.measure(study)
    assert check.regret_bound >= check.noise == 0.2 and check.n_trials == 16
    assert RegretBoundStopper(min_trials=17).measure(study) is None


def test_min_trials_guard() -> None:
    study = sobol_study()
    # A threshold no bound stays above: the study stops exactly when min_trials is reached.
    study.optimize(bowl, n_trials=30, stopper=RegretBoundStopper(min_trials=6, threshold=1e9))
    assert len(study.trials) == 6


def test_compares_with_the_value_spread_of_the_trials() -> None:
    study = sobol_study()
    for spread in [0.5, 2.0, 1.0, 3.0, 4.0, 0.2]:
        trial = study.ask()
        study.storage.update_trial(trial.id, attrs={VALUE_SPREAD: [spread]})
        study.tell(trial, bowl(trial.params))
    decision = RegretBoundStopper(min_trials=6).evaluate(study)
    assert decision is not None and decision.noise_source == "value_spread"
    assert decision.noise == pytest.approx(1.5)  # the median spread
    assert "regret bound" in decision.reason and "noise 1.5 after 6 trials" in decision.reason


def test_a_rerun_reports_the_stop_and_runs_nothing_unless_the_stopper_is_left_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    storage = str(tmp_path / "studies.db")
    stopper = RegretBoundStopper(min_trials=5, threshold=1e9)
    sobol_study(storage=storage).optimize(bowl, n_trials=20, stopper=stopper)
    capsys.readouterr()
    again = sobol_study(storage=storage)
    again.optimize(bowl, n_trials=20, stopper="regret")  # a stopper of its own that would not stop yet
    assert len(again.trials) == 5
    assert "study 's' stopped: regret bound" in capsys.readouterr().err
    again.optimize(bowl, n_trials=8)  # no stopper: the study continues
    assert len(again.trials) == 8


def test_the_progress_display_says_why_the_study_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    study = sobol_study()
    study.optimize(bowl, n_trials=20, stopper=RegretBoundStopper(min_trials=5, threshold=1e9), show_progress=True)
    err = capsys.readouterr().err
    assert "study stopped: regret bound" in err and "threshold 1e+09 after 5 trials" in err


@pytest.mark.slow
def test_another_worker_stops_when_one_decides(tmp_path: Path) -> None:
    storage = str(tmp_path / "studies.db")
    sobol_study(storage=storage)  # created before the worker opens it
    # The other worker's own stopper would never decide (min_trials=1000): it stops on the stored decision.
    worker = textwrap.dedent(
        f"""
        import time
        from lightning_hpo import RegretBoundStopper, SobolSampler, Study
        study = Study("s", storage={storage!r}, sampler=SobolSampler(seed=1))
        def slow(params):
            time.sleep(0.3)
            return params["x"] ** 2 + params["y"] ** 2
        study.optimize(slow, n_trials=500, stopper=RegretBoundStopper(min_trials=1000))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, "-c", worker], env=env, stderr=subprocess.PIPE, text=True)
    try:
        study = sobol_study(storage=storage)
        wait_for(lambda: len(study.trials) >= 2)
        study.optimize(bowl, n_trials=500, stopper=RegretBoundStopper(min_trials=6, threshold=1e9))
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped: regret bound" in err
    # Its own stopper could not decide, and it stopped long before its n_trials: it read the stored decision.
    assert recorded_stop(study) is not None
    assert len(study.trials) < 500


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"min_trials": 1}, InvalidArgumentError, "`min_trials >= 2` must hold"),
        ({"min_trials": "5"}, ArgumentTypeError, "`min_trials` must be an int"),
        ({"threshold": -0.1}, InvalidArgumentError, "`threshold > 0` must hold"),
        ({"threshold": float("nan")}, InvalidArgumentError, "`threshold > 0` must hold"),
        ({"threshold": "0.1"}, ArgumentTypeError, "`threshold` must be a number"),
        ({"seed": 1.5}, ArgumentTypeError, "`seed` must be an int"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        RegretBoundStopper(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stopper", "error"),
    [("sometimes", InvalidArgumentError), (5, ArgumentTypeError), (StopDecision, ArgumentTypeError)],
)
def test_bad_stopper_argument(stopper: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="`stopper` must be"):
        sobol_study().optimize(bowl, n_trials=1, stopper=stopper)  # type: ignore[arg-type]


def test_several_objectives_are_refused_clearly() -> None:
    study = sobol_study(mode=["min", "min"])
    with pytest.raises(InvalidArgumentError, match="handles one objective, but study 's' has 2"):
        study.optimize(lambda p: (bowl(p), p["x"]), n_trials=3, stopper="regret")


@pytest.mark.slow
def test_the_tuner_stops_and_rejects_a_bad_stopper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lightning_hpo import Int, Tuner
    from tests.lightning_models import LinearRegression, RegressionData

    kwargs = {
        "search_space": {"lr": Float(1e-3, 1e-1, log=True), "hidden": Int(4, 16)},
        "datamodule": RegressionData(),
        "trainer_kwargs": {"max_epochs": 1, "limit_train_batches": 2, "accelerator": "cpu", "devices": 1},
        "root_dir": tmp_path / "runs",
        "seed": 0,
        "show_progress": False,
    }
    with pytest.raises(InvalidArgumentError, match="`stopper` must be one of 'regret', 'none'"):
        Tuner(LinearRegression, stopper="early", **kwargs)
    result = Tuner(LinearRegression, stopper=RegretBoundStopper(min_trials=3, threshold=1e9), **kwargs).fit(n_trials=20)
    assert len(result.trials) == 3
    assert "stopped: regret bound" in capsys.readouterr().err


def test_the_cli_rejects_a_bad_stopper_before_opening_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lightning_hpo.cli import LightningCLI
    from tests.lightning_models import LinearRegression, RegressionData

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    args = ["tune", "--tune.n_trials", "2", "--tune.stopper", "early", "--tune.root_dir", str(tmp_path / "runs")]
    with pytest.raises(SystemExit) as exit_info:
        LightningCLI(LinearRegression, RegressionData, args=[*args, "--tune.search_space", '{"model.lr": [0.05]}'])
    assert exit_info.value.code == 2
    assert "`stopper` must be one of 'regret', 'none'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no storage, no empty study


def test_the_bound_keeps_the_full_confidence_parameter_on_few_trials() -> None:
    # Divided by 5 (Makarova et al.) only once the GP rests on FULL_BETA_TRIALS trials.
    assert _beta(3, FULL_BETA_TRIALS - 1) == _srinivas_beta(3, FULL_BETA_TRIALS - 1)
    assert _beta(3, FULL_BETA_TRIALS) == pytest.approx(_srinivas_beta(3, FULL_BETA_TRIALS) / 5.0)
    assert _srinivas_beta(3, 40) > _srinivas_beta(3, 30) > _srinivas_beta(2, 30)  # grows with trials and parameters
