"""The ``tune`` subcommand of lightning_hpo.cli.LightningCLI, with real parsing, training and storage.

In-process tests drive the CLI with ``args=[...]`` on tiny models; the end-to-end test runs the
LightningCLI example script in subprocesses: ``tune``, then ``fit --config best.yaml``.
"""

from __future__ import annotations

import csv
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning
import lightning.pytorch as pl
import pytest
import yaml
from lightning.pytorch.cli import LightningCLI as LightningsCLI

from lightning_hpo import Categorical, Float, GPSampler, RandomSampler, SobolSampler, Study, TrialState, tunable
from lightning_hpo._cli_internals import PRIVATE_ATTRIBUTES, PRIVATE_METHODS, LightningCLIInternals
from lightning_hpo.cli import LightningCLI
from lightning_hpo.console import main as console_main
from lightning_hpo.export import retrain_command
from lightning_hpo.pruners import MedianPruner, NopPruner
from tests.lightning_models import LinearRegression, RegressionData, SizedRegression

REPO = Path(__file__).resolve().parents[1]


@tunable(lr=Float(1e-3, 0.1, log=True), activation=Categorical(["relu", "tanh"]))
class TunableRegression(LinearRegression):
    """LinearRegression with its space declared by the decorator."""


@pytest.fixture(autouse=True)
def _script_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads sys.argv only for the script name it prints; make it the one a user would run."""
    monkeypatch.setattr(sys, "argv", ["train.py"])


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def run_cli(*args: str, model: type = LinearRegression, data: type = RegressionData, **kwargs) -> LightningCLI:
    return LightningCLI(model, data, args=list(args), **kwargs)


def tiny_trainer(**overrides) -> dict:
    return {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "log_every_n_steps": 1, **overrides}


def stored_config(trial) -> dict:
    return yaml.safe_load(trial.attrs["config"])


# -- tune, in process ---------------------------------------------------------------------------


@pytest.mark.slow
def test_tune_with_a_config_file_tunes_model_data_and_trainer_arguments(tmp_path: Path, capsys) -> None:
    config = write_yaml(
        tmp_path / "cfg.yaml",
        {
            "seed_everything": 7,
            "trainer": tiny_trainer(),
            "model": {"hidden": 4},
            "tune": {
                "n_trials": 3,
                "pruner": "nop",
                "sampler": "random",
                "show_progress": False,
                "search_space": {
                    "model.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
                    "data.batch_size": [16, 64],
                    "trainer.max_epochs": [1, 2],
                },
            },
        },
    )
    cli = run_cli("tune", "--config", str(config))

    study = cli.study
    assert isinstance(study.sampler, RandomSampler) and study.sampler.seed == 7  # seed_everything seeds it
    assert isinstance(study.pruner, NopPruner)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        stored = stored_config(trial)
        assert stored["model"]["lr"] == trial.params["model.lr"]
        assert stored["data"]["batch_size"] == trial.params["data.batch_size"]
        assert stored["trainer"]["max_epochs"] == trial.params["trainer.max_epochs"]
        assert "tune" not in stored and stored["seed_everything"] == 7
        # The trainer really ran the tuned number of epochs, with the tuned batch size (128 samples).
        steps_per_epoch = 128 // trial.params["data.batch_size"]
        assert sorted(trial.intermediate_values) == [
            steps_per_epoch * (e + 1) for e in range(trial.params["trainer.max_epochs"])
        ]
        trial_dir = Path(trial.log_dir)
        assert trial_dir == (Path("lightning_hpo_runs") / "LinearRegression" / f"trial_{trial.number}").resolve()
        assert yaml.safe_load((trial_dir / "config.yaml").read_text()) == stored
        assert Path(trial.checkpoint_path).is_file()
        # The trial's own logger (TensorBoard when installed, else CSV) writes in the trial directory.
        assert trial.attrs["logger_dir"] == str(trial_dir)
        assert (trial_dir / "metrics.csv").is_file() or any(trial_dir.glob("events.out.tfevents*"))
        assert trial.attrs["launcher"] == "python"
    assert not Path("lightning_hpo").exists()  # it would shadow the package for a script run here

    best = study.best_trial
    assert cli.best_config_path == (Path("lightning_hpo_runs") / "LinearRegression" / "best.yaml").resolve()
    assert yaml.safe_load(cli.best_config_path.read_text()) == stored_config(best)
    out = capsys.readouterr().out
    assert "python train.py fit --config lightning_hpo_runs/LinearRegression/best.yaml" in out

    # fit reads best.yaml back as it is, with the best trial's values.
    refit = run_cli("fit", "--config", str(cli.best_config_path), "--trainer.enable_progress_bar", "false")
    assert refit.model.hparams.lr == best.params["model.lr"]
    assert refit.datamodule.batch_size == best.params["data.batch_size"]
    assert refit.trainer.max_epochs == best.params["trainer.max_epochs"]


@pytest.mark.slow
def test_tune_in_subclass_mode_with_a_decorated_model(tmp_path: Path) -> None:
    config = write_yaml(
        tmp_path / "cfg.yaml",
        {
            "trainer": tiny_trainer(logger=False),
            "model": {"class_path": f"{__name__}.TunableRegression", "init_args": {"hidden": 4}},
            "data": {"class_path": "tests.lightning_models.RegressionData"},
        },
    )
    cli = run_cli(
        "tune",
        "--config", str(config),
        "--tune.n_trials", "2",
        "--tune.show_progress", "false",
        "--tune.study_name", "decorated",
        "--tune.root_dir", "runs",
        "--tune.sampler", "lightning_hpo.SobolSampler",
        "--tune.sampler.seed", "3",
        "--tune.pruner", "MedianPruner",
        "--tune.pruner.n_startup_trials", "1",
        "--tune.search_space", '{"model.activation": null, "data.batch_size": [8, 32]}',
        "--tune.best_config", "out/best.yaml",
        model=pl.LightningModule,
        data=pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
    )  # fmt: skip
    study = cli.study
    assert study.name == "decorated"
    assert dict(study.space) == {"data.batch_size": Categorical([8, 32]), "model.lr": Float(1e-3, 0.1, log=True)}
    assert isinstance(study.sampler, SobolSampler) and study.sampler.seed == 3
    assert isinstance(study.pruner, MedianPruner) and study.pruner.n_startup_trials == 1
    lrs = []
    for trial in study.trials:
        assert trial.state is TrialState.COMPLETE
        model_config = stored_config(trial)["model"]
        assert model_config["class_path"] == f"{__name__}.TunableRegression"
        assert model_config["init_args"]["lr"] == trial.params["model.lr"]
        # Each trial's checkpoint holds its own hyperparameters, so it loads as that trial's model.
        loaded = TunableRegression.load_from_checkpoint(trial.checkpoint_path)
        assert loaded.hparams.lr == trial.params["model.lr"] and loaded.hparams.hidden == 4
        assert (Path("runs") / "decorated" / f"trial_{trial.number}" / "config.yaml").is_file()
        lrs.append(loaded.hparams.lr)
    assert lrs[0] != lrs[1]
    assert cli.best_config_path == Path("out/best.yaml") and cli.best_config_path.is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags",
    [
        ["--tune.monitor", "[val_loss,n_params]", "--tune.mode", "[min,min]"],
        ["--tune.monitor", "val_loss", "--tune.monitor+", "n_params", "--tune.mode", "min", "--tune.mode+", "min"],
    ],
    ids=["lists", "appended"],
)
def test_tune_with_several_monitors_writes_the_pareto_set(flags, capsys) -> None:
    cli = run_cli(
        "tune", *flags, "--seed_everything", "0", "--tune.n_trials", "3", "--tune.sampler", "random",
        "--tune.show_progress", "false",
        "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
        "--tune.search_space", '{"model.lr": {"type": "float", "low": 0.001, "high": 0.1}, "model.hidden": [2, 4, 8]}',
        model=SizedRegression,
    )  # fmt: skip
    study = cli.study
    assert study.directions == ("min", "min")
    complete = study.get_trials([TrialState.COMPLETE])
    assert len(study.trials) == 3 and complete  # the default pruner, ASHA, may stop a dominated trial
    for trial in complete:
        assert trial.values == trial.intermediate_vectors[trial.last_step]  # the last validation's values
        assert Path(trial.checkpoint_path).name == "last.ckpt"
    front = study.best_trials
    directory = (Path("lightning_hpo_runs") / "SizedRegression" / "pareto").resolve()
    assert cli.pareto_config_paths == tuple(directory / f"trial_{t.number}.yaml" for t in front)
    for trial, path in zip(front, cli.pareto_config_paths):
        assert yaml.safe_load(path.read_text()) == stored_config(trial)
    assert cli.best_config_path is None and not (directory.parent / "best.yaml").exists()
    out = capsys.readouterr().out
    assert f"Pareto set of study 'SizedRegression': {len(front)} trial(s)" in out
    assert f"python train.py fit --config lightning_hpo_runs/SizedRegression/pareto/trial_{front[0].number}.yaml" in out


@pytest.mark.slow
def test_tune_with_several_monitors_takes_the_gp_samplers_reference_point() -> None:
    cli = run_cli(
        "tune", "--tune.monitor", "[val_loss,n_params]", "--tune.mode", "[min,min]", "--tune.n_trials", "4",
        "--tune.sampler", "lightning_hpo.GPSampler", "--tune.sampler.seed", "0",
        "--tune.sampler.n_startup_trials", "2", "--tune.sampler.reference_point", "[10.0, 100]",
        "--tune.show_progress", "false", "--tune.pruner", "nop",
        "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
        "--tune.search_space", '{"model.lr": {"type": "float", "low": 0.001, "high": 0.1}, "model.hidden": [2, 4, 8]}',
        model=SizedRegression,
    )  # fmt: skip
    assert isinstance(cli.study.sampler, GPSampler) and cli.study.sampler.reference_point == (10.0, 100.0)
    assert [t.state for t in cli.study.trials] == [TrialState.COMPLETE] * 4  # two of them the GP's


@pytest.mark.slow
def test_rerunning_tune_resumes_the_study_and_a_new_study_reuses_the_directories(tmp_path: Path) -> None:
    args = [
        "tune",
        "--trainer", str(write_yaml(tmp_path / "trainer.yaml", tiny_trainer(limit_train_batches=2))),
        "--tune.show_progress", "false",
        "--tune.search_space", '{"model.lr": {"type": "float", "low": 0.001, "high": 0.1}}',
    ]  # fmt: skip
    run_cli(*args, "--tune.n_trials", "1")
    cli = run_cli(*args, "--tune.n_trials", "2")
    assert [(t.number, t.state) for t in cli.study.trials] == [(0, TrialState.COMPLETE), (1, TrialState.COMPLETE)]
    # A new study over the old one's trial directories: their leftovers don't fail the new trials.
    cli.study.storage.close()
    Path("lightning_hpo_runs/studies.db").unlink()
    cli = run_cli(*args, "--tune.n_trials", "1")
    assert [(t.number, t.state) for t in cli.study.trials] == [(0, TrialState.COMPLETE)]


@pytest.mark.slow
def test_a_logger_named_in_the_config_logs_each_trial_and_each_trial_directory_keeps_its_config(
    tmp_path, capsys
) -> None:
    csv_logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "logs"}}
    config = write_yaml(tmp_path / "cfg.yaml", {"seed_everything": 0, "trainer": tiny_trainer(logger=csv_logger)})
    cli = run_cli(
        "tune", "--config", str(config), "--tune.n_trials", "2", "--tune.sampler", "sobol", "--tune.pruner", "nop",
        "--tune.show_progress", "false", "--tune.search_space", '{"model.lr": {"type": "float", "low": 0.01, "high": 0.1}}',
    )  # fmt: skip
    trials = cli.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        trial_dir = (Path("lightning_hpo_runs") / "LinearRegression" / f"trial_{trial.number}").resolve()
        assert yaml.safe_load((trial_dir / "config.yaml").read_text()) == stored_config(trial)
        logger = stored_config(trial)["trainer"]["logger"]  # the trial ran the config's logger
        assert logger["class_path"] == csv_logger["class_path"] and logger["init_args"]["save_dir"] == "logs"
        logger_dir = Path(trial.attrs["logger_dir"])
        assert logger_dir == (Path("logs") / "lightning_logs" / f"version_{trial.number}").resolve()
        assert logged_values(logger_dir / "metrics.csv", "val_loss") == pytest.approx(
            list(trial.intermediate_values.values())
        )
    # `lightning-hpo best` points to where the best trial's logs are, not to its checkpoint directory.
    capsys.readouterr()
    console_main(["best", "--storage", str(Path("lightning_hpo_runs") / "studies.db")])
    best_logs = cli.study.best_trial.attrs["logger_dir"]
    assert best_logs in "".join(capsys.readouterr().out.split())  # the table may wrap a long path
    # The promise of the module documentation: any trial retrains from its directory's config.
    last = trials[-1]
    refit = run_cli("fit", "--config", str(Path(last.log_dir) / "config.yaml"))
    assert refit.model.hparams.lr == last.params["model.lr"]
    assert logged_values(Path(refit.trainer.log_dir) / "metrics.csv", "val_loss") == pytest.approx(
        list(last.intermediate_values.values())
    )


@pytest.mark.slow
def test_one_config_serves_tune_and_fit_and_list_flags_give_categoricals(tmp_path) -> None:
    config = write_yaml(
        tmp_path / "cfg.yaml",
        {
            "trainer": tiny_trainer(limit_train_batches=2),
            "model": {"hidden": 4},
            "tune": {
                "n_trials": 1,
                "show_progress": False,
                "search_space": {"model.lr": {"type": "float", "low": 0.01, "high": 0.1}},
            },
        },
    )
    cli = run_cli(
        "tune", "--config", str(config),
        "--tune.search_space.model.hidden", "[2,4,8]", "--tune.search_space.data.batch_size", "[16, 32]",
        "--tune.search_space.model.activation", "{type: categorical, choices: [relu, tanh]}",
    )  # fmt: skip
    assert dict(cli.study.space) == {
        "model.lr": Float(0.01, 0.1),
        "model.hidden": Categorical([2, 4, 8]),
        "data.batch_size": Categorical([16, 32]),
        "model.activation": Categorical(["relu", "tanh"]),
    }
    assert [t.state for t in cli.study.trials] == [TrialState.COMPLETE]

    csv_logger = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "logs"]
    fit = run_cli("fit", "--config", str(config), *csv_logger)
    assert fit.model.hparams.hidden == 4 and fit.trainer.max_epochs == 1
    saved = yaml.safe_load((Path(fit.trainer.log_dir) / "config.yaml").read_text())
    assert "tune" not in saved and saved["model"]["hidden"] == 4
    validated = run_cli("validate", "--config", str(config), "--trainer.logger", "false")  # the others ignore it too
    assert validated.model.hparams.hidden == 4


def parameter_shape(function) -> str:
    """``"self, parser, **kwargs"``: names, ``*``/``**`` for variadic parameters, ``=`` after defaulted ones."""
    shown = []
    for parameter in inspect.signature(function).parameters.values():
        stars = {parameter.VAR_POSITIONAL: "*", parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
        shown.append(f"{stars}{parameter.name}{'' if parameter.default is parameter.empty else '='}")
    return ", ".join(shown)


@pytest.mark.parametrize("name", list(PRIVATE_METHODS))
def test_the_private_lightningcli_methods_used_are_the_tested_ones(name) -> None:
    method = getattr(LightningsCLI, name, None)
    if method is None:
        pytest.fail(
            f"Lightning {lightning.__version__}'s LightningCLI has no {name}, which lightning_hpo/_cli_internals.py "
            "uses: adapt that module to this Lightning version.",
            pytrace=False,
        )
    if parameter_shape(method) != PRIVATE_METHODS[name]:
        pytest.fail(
            f"Lightning {lightning.__version__}'s LightningCLI.{name} takes ({parameter_shape(method)}), but "
            f"lightning_hpo/_cli_internals.py was written for ({PRIVATE_METHODS[name]}): check what it now does "
            "and adapt that module.",
            pytrace=False,
        )


def test_the_private_lightningcli_attributes_used_are_set_by_a_fit_run() -> None:
    cli = LightningsCLI(LinearRegression, RegressionData, args=["fit", "--trainer.fast_dev_run", "1"])
    missing = [name for name in PRIVATE_ATTRIBUTES if name not in vars(cli)]
    assert not missing, (
        f"Lightning {lightning.__version__}'s LightningCLI no longer sets {missing} on a fit run; "
        "lightning_hpo/_cli_internals.py relies on them."
    )
    assert "fit" in cli._subcommand_method_arguments


def test_every_overridden_lightningcli_method_says_override_and_keeps_its_parameters() -> None:
    overridden = [
        (cls, name, member.__func__ if isinstance(member, staticmethod) else member)
        for cls in (LightningCLIInternals, LightningCLI)
        for name, member in vars(cls).items()
        if callable(getattr(LightningsCLI, name, None))
    ]
    assert {name for _, name, _ in overridden} >= {"_add_subcommands", "_run_subcommand", "instantiate_trainer"}
    for cls, name, function in overridden:
        assert getattr(function, "__override__", False), f"{cls.__name__}.{name} lacks @override"
        assert parameter_shape(function) == parameter_shape(getattr(LightningsCLI, name)), f"{cls.__name__}.{name}"


def test_help_of_tune_documents_every_flag(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("tune", "--help")
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    documented = inspect.getdoc(LightningCLI.tune)
    for name in list(inspect.signature(LightningCLI.tune).parameters)[1:]:
        described = re.search(rf"^    {name}: (.+)$", documented, re.MULTILINE)
        assert described, f"{name} has no description in LightningCLI.tune's docstring"
        first_words = " ".join(described.group(1).split()[:4])
        # A list-valued flag is shown twice: --tune.monitor MONITOR, --tune.monitor+ MONITOR
        assert re.search(rf"--tune\.{name} \S+(, --tune\.{name}\+ \S+)? {re.escape(first_words)}", help_text), name


def test_tune_is_listed_beside_lightnings_subcommands(capsys) -> None:
    with pytest.raises(SystemExit):
        run_cli("--help")
    listing = capsys.readouterr().out
    for subcommand in ("fit", "validate", "test", "predict", "tune"):
        assert re.search(rf"^\s+{subcommand}\s+\S", listing, re.MULTILINE), subcommand


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tune.search_space", '{"model.lrr": [0.1, 0.2]}'], "'model' has no 'lrr'"),
        (["--tune.search_space", '{"model.lrr": [0.1, 0.2]}'], "did you mean 'model.lr'?"),
        (["--tune.search_space", '{"nothing.here": [1]}'], "the config has no 'nothing'"),
        (
            ["--tune.search_space", '{"model.hidden": {"type": "float", "low": 1, "high": 8}}'],
            "Expected a <class 'int'>",
        ),
        (["--tune.search_space", '{"model.activation": ["relu", 3]}'], "does not accept the value 3"),
        (["--tune.sampler", "sobl"], "'sobl' is neither a known name (sobol, random"),
        (["--tune.pruner", "medain"], "'medain' is neither a known name (median, nop"),
        (["--tune.n_trials", "null"], "needs --tune.n_trials, --tune.timeout, or both"),
        (["--tune.search_space", "null"], "The search space is empty"),
        (
            ["--tune.monitor", "[val_loss,n_params]"],
            "`monitor` names 2 metric(s) (val_loss, n_params) but `mode` gives 1",
        ),
        (
            ["--tune.monitor", "[val_loss,n_params]", "--tune.mode", "[min,min]", "--tune.best_config", "b.yaml"],
            "--tune.best_config names one file, but several monitors have no single best trial",
        ),
    ],
)
def test_tune_rejects_a_bad_setup_before_any_trial(extra, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("tune", "--tune.show_progress", "false", "--tune.search_space", '{"model.lr": [0.1]}', *extra)
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not Path("lightning_hpo_runs/LinearRegression").exists()


# -- end to end, in subprocesses: the LightningCLI example ------------------------------------------


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def logged_values(metrics_csv: Path, name: str) -> list[float]:
    with open(metrics_csv) as f:
        return [float(row[name]) for row in csv.DictReader(f) if row.get(name)]


CLI_SCRIPT = """
from lightning_hpo.cli import LightningCLI
from lightning_hpo.export import retrain_command
from tests.lightning_models import LinearRegression, RegressionData

if __name__ == "__main__":
    LightningCLI(LinearRegression, RegressionData)
"""


def test_a_process_group_left_alive_by_a_lightning_subcommand_is_destroyed_at_exit(tmp_path: Path) -> None:
    # Lightning's DDP fit leaves its group alive; gloo can abort the process at interpreter exit if it is.
    import torch.distributed as dist

    from lightning_hpo._cli_internals import _destroy_process_group_left_alive

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        _destroy_process_group_left_alive()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    _destroy_process_group_left_alive()  # no group: nothing to do


@pytest.mark.slow
def test_under_torchrun_tune_prints_a_torchrun_retrain_command_that_repeats_the_best_trial(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(CLI_SCRIPT)
    ddp = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp", "--trainer.max_epochs=2",
           "--trainer.logger=lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir=logs"]  # fmt: skip
    tuned = run_script(
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py", "tune", *ddp,
        "--tune.n_trials=2", "--tune.pruner=nop", "--tune.show_progress=false",
        "--tune.search_space.model.lr", "{type: float, low: 0.01, high: 0.1}",  # read from sys.argv
        cwd=tmp_path,
    )  # fmt: skip
    # Each trial is one DDP training of both ranks, stored once, by rank 0, which alone writes best.yaml.
    study = Study(
        "LinearRegression",
        search_space={"model.lr": Float(0.01, 0.1)},
        storage=str(tmp_path / "lightning_hpo_runs" / "studies.db"),
    )
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 and len({t.worker for t in study.trials}) == 1
    assert all(list(t.intermediate_values) == [4, 8] for t in study.trials)  # 2 ranks: 4 steps an epoch
    assert tuned.stdout.count("Best config written to") == 1
    command = re.search(r"retrain it with:\n\s+(torchrun .+)\n", tuned.stdout)
    assert command, tuned.stdout
    assert command.group(1) == (
        "torchrun --standalone --nproc_per_node=2 train.py fit --config lightning_hpo_runs/LinearRegression/best.yaml"
    )
    best = study.best_trial
    assert best.attrs["launcher"] == "torchrun --standalone --nproc_per_node=2"
    # ... which `lightning-hpo export` prints too.
    assert retrain_command(best, "b.yaml") == "torchrun --standalone --nproc_per_node=2 train.py fit --config b.yaml"
    logs = tmp_path / "logs" / "lightning_logs"
    assert Path(best.attrs["logger_dir"]) == logs / f"version_{best.number}"  # one logger version per trial
    assert (Path(best.log_dir) / "config.yaml").is_file()

    # The printed command, run as it is: same config and seed, so the same training as the trial.
    run_script("-m", "torch.distributed.run", *command.group(1).split()[1:], cwd=tmp_path)
    trial_log, refit_log = logs / f"version_{best.number}" / "metrics.csv", logs / "version_2" / "metrics.csv"
    assert logged_values(refit_log, "val_loss") == pytest.approx(logged_values(trial_log, "val_loss"))


@pytest.mark.slow
def test_cli_example_tunes_then_fit_retrains_the_best_trial(tmp_path: Path) -> None:
    """The README's three commands: fit's config + a tune file -> study -> `fit --config best.yaml` reproduces."""
    script = REPO / "examples" / "cli_digits.py"
    budget = ["--tune.n_trials", "2", "--tune.root_dir", "runs", "--tune.show_progress", "false",
              "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "5"]  # fmt: skip
    tuned = run_script(
        str(script), "tune",
        "--config", str(REPO / "examples" / "cli_digits.yaml"),
        "--tune", str(REPO / "examples" / "cli_digits_tune.yaml"),
        *budget,
        cwd=tmp_path,
    )  # fmt: skip
    command = re.search(r"retrain it with:\n\s+python (\S+) fit --config (\S+)\n", tuned.stdout)
    assert command, tuned.stdout
    assert command.group(1) == str(script)
    best_yaml = tmp_path / command.group(2)
    assert best_yaml == tmp_path / "runs" / "DigitsClassifier" / "best.yaml"

    study = Study(
        "DigitsClassifier", search_space=_stored_space(tmp_path), storage=str(tmp_path / "runs" / "studies.db")
    )
    best = study.best_trial
    assert len(study.trials) == 2

    # The printed command, with a CSV logger so this test can read the metric (it does not touch training).
    run_script(
        str(script), "fit", "--config", str(best_yaml),
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "refit",
        "--trainer.enable_progress_bar", "false",
        cwd=tmp_path,
    )  # fmt: skip
    refit_dir = tmp_path / "refit" / "lightning_logs" / "version_0"
    refit_config = yaml.safe_load((refit_dir / "config.yaml").read_text())
    for key, value in best.params.items():
        section, name = key.split(".")
        assert refit_config[section][name] == value, key
    # Same config, same seed: the retrained run repeats the best trial's validations exactly.
    assert min(logged_values(refit_dir / "metrics.csv", "val_loss")) == pytest.approx(best.value, rel=1e-6)
    assert logged_values(refit_dir / "metrics.csv", "val_loss") == pytest.approx(
        list(best.intermediate_values.values())
    )


def _stored_space(tmp_path: Path):
    from lightning_hpo.space import SearchSpace
    from lightning_hpo.storage import open_storage

    storage = open_storage(str(tmp_path / "runs" / "studies.db"))
    return SearchSpace.from_json(storage.get_study("DigitsClassifier").space)


def test_cli_module_is_not_imported_by_the_package() -> None:
    code = "import sys, lightning_hpo; lightning_hpo.Study; print('lightning_hpo.cli' in sys.modules, 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_a_metric_that_is_never_logged_stops_tune_with_the_logged_ones(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            "tune", "--tune.monitor", "val_acc", "--tune.show_progress", "false", "--trainer.max_epochs", "1",
            "--tune.search_space", '{"model.lr": [0.1]}',
        )  # fmt: skip
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "The trial monitors 'val_acc'" in err and "Logged metrics: ['train_loss', 'val_loss']" in err
