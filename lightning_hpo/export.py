"""A trial as a file: its parameters, or, for trials run by ``train.py tune``, its full ``fit`` config.

Shared by the CLI's ``tune`` subcommand (which writes ``best.yaml``) and the ``lightning-hpo``
console script (``best``, ``export``). Light on purpose: no torch, no Lightning.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.progress import format_value
from lightning_hpo.trial import ENQUEUED, RESUME_DIR, RETRY_OF, WARM_START_FROM, Trial

__all__ = [
    "CONFIG_ATTR",
    "SCRIPT_ATTR",
    "LAUNCHER_ATTR",
    "LOGGER_DIR_ATTR",
    "TRACKER_RUNS_ATTR",
    "FORMATS",
    "logs_of",
    "tracker_runs_of",
    "origin_of",
    "describe",
    "export_trial",
    "retrain_command",
]

#: Trial attribute holding the YAML text of the full ``fit`` config of a trial run by ``tune``.
CONFIG_ATTR = "config"
#: Trial attribute holding the training script that ran the trial (``sys.argv[0]``).
SCRIPT_ATTR = "script"
#: Trial attribute holding how the script was started: ``python``, or ``torchrun --standalone --nproc_per_node=8``
LAUNCHER_ATTR = "launcher"
#: Trial attribute holding the directory the trial's Trainer logged to (``trainer.log_dir``): a logger
#: named in the config writes outside the trial directory.
LOGGER_DIR_ATTR = "logger_dir"
#: Trial attribute holding where experiment trackers keep the trial's run: ``["mlflow: <run URL or id>",
#: "wandb: <run URL or offline directory>"]`` (see :mod:`lightning_hpo.trackers`).
TRACKER_RUNS_ATTR = "tracker_runs"
FORMATS = ("yaml", "json")

Format = Literal["yaml", "json"]


def logs_of(trial: Trial) -> str | None:
    """Where the trial's logs are: the directory its Trainer logged to, else its trial directory."""
    return trial.attrs.get(LOGGER_DIR_ATTR) or trial.log_dir


def tracker_runs_of(trial: Trial) -> list[str]:
    """Where experiment trackers (MLflow, W&B) keep the trial's run, one line per run; empty without any."""
    return list(trial.attrs.get(TRACKER_RUNS_ATTR) or ())


def origin_of(trial: Trial) -> str | None:
    """Where the trial's parameters came from, when not from the sampler: ``"enqueued (lr, layers)"``,
    ``"imported from other#3"``, ``"retry of trial 2"`` or ``"resumes trial 2"``; else ``None``."""
    if RETRY_OF in trial.attrs:
        verb = "resumes trial" if RESUME_DIR in trial.attrs else "retry of trial"
        return f"{verb} {trial.attrs[RETRY_OF]}"
    if WARM_START_FROM in trial.attrs:
        return f"imported from {trial.attrs[WARM_START_FROM]}"
    if ENQUEUED in trial.attrs:
        return f"enqueued ({', '.join(map(str, trial.attrs[ENQUEUED]))})"
    return None


def describe(trial: Trial, study_name: str) -> str:
    """``trial 3 of study 'name', value 0.123``: for file headers and messages."""
    values = ", ".join(format_value(v) for v in trial.values or ())
    return f"trial {trial.number} of study {study_name!r}, value {values or '-'}"


def retrain_command(trial: Trial, config_file: str) -> str | None:
    """The command that retrains ``trial`` from its exported config, when the trial knows its script."""
    script = trial.attrs.get(SCRIPT_ATTR)
    if trial.attrs.get(CONFIG_ATTR) is None or not script:
        return None
    return f"{trial.attrs.get(LAUNCHER_ATTR) or 'python'} {script} fit --config {config_file}"


def export_trial(trial: Trial, fmt: Format = "yaml", *, params_only: bool = False, header: str | None = None) -> str:
    """The trial's full ``fit`` config when stored (unless ``params_only``), else its parameters.

    A YAML config is the text LightningCLI wrote, comments and order kept; ``header`` becomes ``#``
    comment lines on top of YAML (JSON has no comments).
    """
    config = trial.attrs.get(CONFIG_ATTR)
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"`fmt` must be one of {FORMATS}, but got {fmt!r}.")
    import yaml

    if config is not None and not params_only:
        if fmt == "json":
            return json.dumps(yaml.safe_load(config), indent=2) + "\n"
        text = config
    else:
        params = {name: _plain(value) for name, value in trial.params.items()}
        if fmt == "json":
            return json.dumps(params, indent=2) + "\n"
        text = yaml.safe_dump(params, sort_keys=False, default_flow_style=False)
    comment = "".join(f"# {line}\n" for line in header.splitlines()) if header else ""
    return comment + text


def _plain(value: Any) -> Any:
    """Parameter values as YAML and JSON hold them (categorical choices may be tuples or other objects)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
