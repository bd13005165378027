"""lightning_hpo.Tuner end to end: real Lightning training of tiny modules, real SQLite files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from lightning_hpo import Categorical, Float, Int, NopPruner, Pruner, SobolSampler, TrialState, Tuner, tunable
from lightning_hpo._text import count_of
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, MetricNotFoundError
from lightning_hpo.storage import SQLStorage
from lightning_hpo.tuner import study_directory
from tests.lightning_models import LinearRegression, RegressionData, SizedRegression
from tests.processes import interrupt_when, wait_for

REPO = Path(__file__).resolve().parents[1]
SPACE = {"lr": Float(1e-3, 1e-1, log=True), "hidden": Int(4, 16)}
TRAINER = {"max_epochs": 3, "accelerator": "cpu", "devices": 1}


def make_tuner(tmp_path: Path, **kwargs) -> Tuner:
    kwargs.setdefault("search_space", SPACE)
    kwargs.setdefault("datamodule", RegressionData())
    kwargs.setdefault("trainer_kwargs", TRAINER)
    kwargs.setdefault("pruner", NopPruner())
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("show_progress", False)
    return Tuner(LinearRegression, root_dir=tmp_path / "runs", **kwargs)


@pytest.mark.slow
def test_fit_trains_each_trial_and_returns_the_best(tmp_path):
    result = make_tuner(tmp_path).fit(n_trials=3)
    assert [t.state for t in result.trials] == [TrialState.COMPLETE] * 3
    best = result.best_trial
    assert best.value == min(t.value for t in result.trials) == result.best_value
    assert best.value == min(best.intermediate_values.values())  # a trial's value is its best report
    assert len(best.intermediate_values) == 3  # one report per epoch
    assert result.best_params == best.params and set(best.params) == {"lr", "hidden"}

    study_dir = tmp_path / "runs" / "LinearRegression"
    for trial in result.trials:
        trial_dir = study_dir / f"trial_{trial.number}"
        assert trial.log_dir == str(trial_dir.resolve())
        assert (trial_dir / "metrics.csv").exists() or list(trial_dir.glob("events.out.tfevents*"))
        assert Path(trial.checkpoint_path).is_file()
    assert (tmp_path / "runs" / "studies.db").is_file()

    checkpoint = torch.load(result.best_checkpoint, weights_only=False)
    score = next(v["best_model_score"] for k, v in checkpoint["callbacks"].items() if "ModelCheckpoint" in k)
    assert float(score) == pytest.approx(best.value)
    model = LinearRegression.load_from_checkpoint(result.best_checkpoint)
    assert model.hparams.lr == pytest.approx(best.params["lr"]) and model.hparams.hidden == best.params["hidden"]
    assert isinstance(result.load_best_model(), LinearRegression)


@pytest.mark.slow
def test_several_monitors_give_a_pareto_set_with_last_checkpoints(tmp_path, capsys):
    tuner = Tuner(
        SizedRegression,
        search_space=SPACE,
        datamodule=RegressionData(),
        trainer_kwargs=TRAINER,
        monitor=["val_loss", "n_params"],
        mode=["min", "min"],
        sampler=SobolSampler(seed=0),  # and the default pruner, ASHA, which ranks by Pareto front
        seed=0,
        root_dir=tmp_path / "runs",
        keep_checkpoints="all",  # every trial's checkpoint is checked below
    )
    result = tuner.fit(n_trials=4)
    complete = [t for t in result.trials if t.state is TrialState.COMPLETE]
    assert complete and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in result.trials)
    for trial in complete:
        last = trial.intermediate_vectors[trial.last_step]
        assert trial.values == last  # a trial's values are those of its last validation
        assert trial.values[1] == 6 * trial.params["hidden"] + 1  # Linear(4, h) and Linear(h, 1)
        assert Path(trial.checkpoint_path).name == "last.ckpt"
        assert torch.load(trial.checkpoint_path, weights_only=False)["global_step"] == trial.last_step

    def dominated(t):
        return any(all(a <= b for a, b in zip(o.values, t.values)) and o.values != t.values for o in complete)

    assert result.best_trials == [t for t in complete if not dominated(t)]
    for accessor in ("best_params", "best_value", "best_checkpoint", "best_trial"):
        with pytest.raises(InvalidArgumentError, match=r"2 objectives .*use `result.best_trials`, the Pareto set"):
            getattr(result, accessor)
    model = result.load_model(result.best_trials[0])
    assert isinstance(model, SizedRegression) and model.hparams.hidden == result.best_trials[0].params["hidden"]
    shown = capsys.readouterr().err
    assert (
        f"Pareto front {count_of(len(result.best_trials), 'trial')}" in shown
        and "val_loss=" in shown
        and "n_params=" in shown
    )
    # the metric names travel with the trials, so plots name them
    assert all(t.attrs["monitor"] == ["val_loss", "n_params"] for t in result.trials)
    from lightning_hpo.plots import plot_pareto_front

    ax = plot_pareto_front(result.study).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("val_loss (min)", "n_params (min)")


@pytest.mark.slow
def test_rerun_resumes_the_study(tmp_path):
    make_tuner(tmp_path).fit(n_trials=2)
    result = make_tuner(tmp_path).fit(n_trials=3)
    assert [t.number for t in result.trials] == [0, 1, 2]


class Exploding(LinearRegression):
    def training_step(self, batch, batch_idx):
        if self.hparams.activation == "tanh":
            raise ValueError("tanh trials explode")
        return super().training_step(batch, batch_idx)


@pytest.mark.slow
def test_an_exception_in_user_code_fails_the_trial_and_the_study_goes_on(tmp_path):
    tuner = Tuner(
        Exploding,
        search_space={"activation": Categorical(["relu", "tanh"])},
        datamodule=RegressionData(),
        trainer_kwargs={**TRAINER, "max_epochs": 1},
        sampler=SobolSampler(seed=0),
        pruner=NopPruner(),
        root_dir=tmp_path,
        show_progress=False,
    )
    result = tuner.fit(n_trials=3)
    failed = [t for t in result.trials if t.state is TrialState.FAIL]
    assert failed and all(t.params["activation"] == "tanh" for t in failed)
    assert "Traceback" in failed[0].error and "ValueError: tanh trials explode" in failed[0].error
    assert sum(t.state is TrialState.COMPLETE for t in result.trials) == 3


class PruneAfterFirstReport(Pruner):
    def prune(self, trial, trials, *, directions):
        return trial.number % 2 == 1 and trial.last_step is not None


@pytest.mark.slow
def test_a_pruned_trial_keeps_its_reports_checkpoint_and_step(tmp_path):
    result = make_tuner(tmp_path, pruner=PruneAfterFirstReport(), keep_checkpoints="all").fit(n_trials=2)
    pruned = result.trials[1]
    assert pruned.state is TrialState.PRUNED
    assert pruned.attrs["pruned_step"] == 8 and list(pruned.intermediate_values) == [8]  # 128 / 16 batches
    assert pruned.value == pruned.intermediate_values[8] and Path(pruned.checkpoint_path).is_file()
    assert result.best_trial.number == 0  # pruned trials are never the best


@pytest.mark.slow
def test_missing_metric_stops_the_study_at_the_first_trial(tmp_path):
    tuner = make_tuner(tmp_path, monitor="val_accuracy")
    with pytest.raises(MetricNotFoundError, match=r"Logged metrics: \['train_loss', 'val_loss'\]"):
        tuner.fit(n_trials=5)
    (trial,) = tuner.study.trials
    assert trial.state is TrialState.FAIL and "val_accuracy" in trial.error


@pytest.mark.slow
def test_datamodule_factory_gets_the_data_params(tmp_path):
    seen = []

    def data(params):
        seen.append(params["batch_size"])
        return RegressionData(batch_size=params["batch_size"])

    tuner = make_tuner(
        tmp_path,
        search_space={"lr": Float(1e-3, 1e-1, log=True), "batch_size": Categorical([16, 32])},
        datamodule=data,
        trainer_kwargs={**TRAINER, "max_epochs": 1},
    )
    result = tuner.fit(n_trials=2)
    assert seen == [t.params["batch_size"] for t in result.trials]
    steps = {t.params["batch_size"]: t.last_step for t in result.trials}
    assert all(step == 128 // batch for batch, step in steps.items())


@pytest.mark.slow
def test_user_callbacks_are_fresh_for_each_trial(tmp_path):
    early = pl.callbacks.EarlyStopping("val_loss", patience=0, mode="min")
    make_tuner(tmp_path, trainer_kwargs={**TRAINER, "callbacks": [early]}).fit(n_trials=2)
    assert early.wait_count == 0 and early.best_score.item() == pytest.approx(torch.tensor(float("inf")).item())


@tunable(lr=Float(1e-3, 1e-1, log=True))
class Decorated(LinearRegression):
    pass


@pytest.mark.slow
def test_decorator_space_is_the_default_and_an_explicit_space_wins(tmp_path):
    tuner = Tuner(
        Decorated,
        datamodule=RegressionData(),
        trainer_kwargs={**TRAINER, "max_epochs": 1},
        root_dir=tmp_path,
        show_progress=False,
    )
    assert set(tuner.space) == {"lr"}
    assert set(tuner.fit(n_trials=1).best_params) == {"lr"}
    explicit = Tuner(
        Decorated,
        search_space={"hidden": Int(2, 4)},
        datamodule=RegressionData(),
        study_name="explicit",
        root_dir=tmp_path,
        show_progress=False,
    )
    assert set(explicit.space) == {"hidden"}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"model_cls": LinearRegression()},
            ArgumentTypeError,
            "must be a LightningModule subclass (the class, not an instance)",
        ),
        ({"model_cls": dict}, ArgumentTypeError, "must be a LightningModule subclass"),
        (
            {"search_space": {"learning_rate": Float(0.1, 1.0)}},
            InvalidArgumentError,
            "Search-space parameters ['learning_rate'] are not arguments of LinearRegression.__init__ (it takes ['activation', 'hidden', 'lr'])",
        ),
        (
            {"model_kwargs": {"lr": 0.1}},
            InvalidArgumentError,
            "['lr'] appear both in model_kwargs and in the search space",
        ),
        (
            {"model_kwargs": {"depth": 3}},
            InvalidArgumentError,
            "model_kwargs ['depth'] are not arguments of LinearRegression.__init__",
        ),
        (
            {"trainer_kwargs": {"max_epoch": 3}},
            InvalidArgumentError,
            "trainer_kwargs ['max_epoch'] are not arguments of lightning.pytorch.Trainer",
        ),
        (
            {"trainer_kwargs": {"default_root_dir": "x"}},
            InvalidArgumentError,
            "set by the Tuner for each trial; pass root_dir",
        ),
        ({"trainer_kwargs": {"logger": pl.loggers.CSVLogger("x")}}, InvalidArgumentError, "one logger per trial"),
        ({"datamodule": "digits"}, ArgumentTypeError, "`datamodule` must be a LightningDataModule"),
        ({"monitor": ""}, InvalidArgumentError, "`monitor` must be the name of a logged metric"),
        ({"mode": "maximize"}, InvalidArgumentError, "`mode` must be 'min' or 'max'"),
        (
            {"mode": ["min", "max"]},
            InvalidArgumentError,
            "`monitor` names 1 metric(s) (val_loss) but `mode` gives 2 direction(s) (min, max): give one mode per monitored metric",
        ),
        (
            {"monitor": ["val_loss", "n_params"]},
            InvalidArgumentError,
            "`monitor` names 2 metric(s) (val_loss, n_params) but `mode` gives 1",
        ),
        (
            {"monitor": ["val_loss", "val_loss"], "mode": ["min", "min"]},
            InvalidArgumentError,
            "`monitor` names a metric twice",
        ),
        (
            {"monitor": ["val_loss", 3], "mode": ["min", "min"]},
            InvalidArgumentError,
            "or a list of names for several objectives",
        ),
        (
            {"search_space": None},
            InvalidArgumentError,
            "No search space for LinearRegression: pass search_space=... or decorate",
        ),
    ],
)
def test_bad_arguments_are_refused_at_construction(tmp_path, kwargs, error, message):
    model_cls = kwargs.pop("model_cls", LinearRegression)
    kwargs.setdefault("search_space", SPACE)
    with pytest.raises(error) as info:
        Tuner(model_cls, root_dir=tmp_path, **kwargs)
    assert message in str(info.value)


def test_fit_needs_a_limit(tmp_path):
    with pytest.raises(InvalidArgumentError, match="needs n_trials, timeout, or both"):
        make_tuner(tmp_path).fit()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("digits", "digits"),
        ("../../x", "_.._x-"),
        ("a/b", "a_b-"),
        ("..", "_-"),
        ("name'; DROP TABLE x;--", "name___DROP_TABLE_x_--"),
    ],
)
def test_study_directory_never_leaves_root(tmp_path, name, expected):
    path = study_directory(tmp_path, name)
    assert path.parent == tmp_path.resolve()
    assert path.name.startswith(expected)
    assert study_directory(tmp_path, "a/b") != study_directory(tmp_path, "a_b")


TUNE_SCRIPT = textwrap.dedent(
    """
    import signal, sys, time
    # Ctrl-C as in a terminal: a test run started in the background by a non-interactive shell
    # passes SIGINT down ignored, and Python then keeps ignoring it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, sys.argv[1])
    from lightning_hpo import Float, NopPruner, Tuner
    from tests.lightning_models import LinearRegression, RegressionData, SizedRegression

    class Slow(LinearRegression):
        def training_step(self, batch, batch_idx):
            time.sleep(0.05)
            return super().training_step(batch, batch_idx)

    tuner = Tuner(Slow, search_space={"lr": Float(1e-3, 1e-1, log=True)}, datamodule=RegressionData(),
                  trainer_kwargs={"max_epochs": 2, "accelerator": "cpu", "devices": 1}, pruner=NopPruner(),
                  storage=sys.argv[2], root_dir=sys.argv[3], seed=0)
    try:
        tuner.fit(n_trials=int(sys.argv[4]))
    except KeyboardInterrupt:
        print("INTERRUPTED-CLEANLY", flush=True)
        sys.exit(130)
    print("DONE", flush=True)
    """
)


def _trials(url):
    storage = SQLStorage(url)
    try:
        return storage.get_trials(storage.get_study("Slow").id)
    finally:
        storage.close()  # a poll every 50 ms must not pile up connections to the study's database


@pytest.mark.slow
def test_ctrl_c_marks_the_running_trial_and_exits_cleanly(tmp_path):
    script = tmp_path / "tune.py"
    script.write_text(TUNE_SCRIPT)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    # Far more trials than can finish before the signal: a study that ends by itself would make
    # the signal a no-op.
    process = subprocess.Popen(
        [sys.executable, str(script), str(REPO), url, str(tmp_path / "runs"), "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = interrupt_when(process, lambda: any(t.intermediate_values for t in _trials(url)))
    assert process.returncode == 130, err[-2000:]
    assert "INTERRUPTED-CLEANLY" in out
    last = _trials(url)[-1]
    assert last.state is TrialState.FAIL and "Interrupted by the user" in last.error
    assert not [t for t in _trials(url) if t.state is TrialState.RUNNING]


@pytest.mark.slow
def test_sigkill_mid_study_then_rerun_completes_with_nothing_lost(tmp_path):
    script = tmp_path / "tune.py"
    script.write_text(TUNE_SCRIPT)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    args = [sys.executable, str(script), str(REPO), url, str(tmp_path / "runs"), "4"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def mid_trial() -> bool:
        """Two trials done and the next one reported: a kill now interrupts it. One read per poll."""
        trials = _trials(url)
        return (
            sum(t.state is TrialState.COMPLETE for t in trials) >= 2
            and trials[-1].state is TrialState.RUNNING
            and bool(trials[-1].intermediate_values)
        )

    wait_for(mid_trial)
    process.kill()
    process.wait()
    before = {t.number: t.values for t in _trials(url) if t.state is TrialState.COMPLETE}

    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "DONE" in done.stdout, done.stderr[-2000:]
    after = _trials(url)
    assert sum(t.state is TrialState.COMPLETE for t in after) == 4
    assert all(after[n].values == values for n, values in before.items())
    killed = [t for t in after if t.state is TrialState.FAIL]
    assert len(killed) == 1 and "Stale" in killed[0].error


class WithoutSavedHyperparameters(pl.LightningModule):
    """A module that never calls save_hyperparameters(): still tunable, its best model still loads."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


@pytest.mark.slow
def test_a_module_without_saved_hyperparameters_loads_through_the_result(tmp_path):
    tuner = Tuner(
        WithoutSavedHyperparameters,
        search_space={"lr": Float(1e-3, 1e-1, log=True)},
        datamodule=RegressionData(),
        trainer_kwargs={**TRAINER, "max_epochs": 1},
        root_dir=tmp_path,
        show_progress=False,
    )
    result = tuner.fit(n_trials=2)
    model = result.load_best_model()
    assert model.lr == result.best_params["lr"]
    loaded = torch.load(result.best_checkpoint, weights_only=False)["state_dict"]["layer.weight"]
    assert torch.equal(model.layer.weight.detach(), loaded)
