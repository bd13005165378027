"""The files the ``tune`` subcommand writes beside its study, and the retrain commands it prints.

Each trial's ``config.yaml`` in its directory (:class:`TrialFiles`, which also stores where the
trial's logger wrote), and, when the study ends, ``best.yaml`` or, with several objectives, the
config of each trial of the Pareto set, each headed by the command that retrains it (``python`` or
``torchrun`` as this process was started: :func:`launcher`). Apart from :mod:`lightning_hpo.cli`,
which parses configs and runs trials, because these only write what the study holds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from typing_extensions import override

from lightning_hpo.distributed import world_size
from lightning_hpo.export import CONFIG_ATTR, LOGGER_DIR_ATTR, describe, export_trial
from lightning_hpo.study import Study
from lightning_hpo.training import TrialTraining
from lightning_hpo.trial import TrialState

__all__ = ["TrialFiles", "write_best_config", "write_pareto_configs", "launcher"]


class TrialFiles(Callback):
    """Writes the trial's ``config.yaml`` to its directory, and stores where its Trainer logs.

    LightningCLI's SaveConfigCallback writes ``config.yaml`` to ``trainer.log_dir``, which is the
    directory of the logger the config names (its ``log_dir``, or ``save_dir`` for loggers without
    one), else the trial directory. So the trial directory gets its own copy, and ``trainer.log_dir``
    is stored as the trial's ``logger_dir`` attribute. Both at ``setup``, once the loggers have
    created their directories (earlier, a CSVLogger would warn about a directory not empty).
    """

    def __init__(self, training: TrialTraining, config_text: str | None) -> None:
        self.study, self.trial, self.trial_dir = training.study, training.trial, training.trial_dir
        self.config_text = config_text  # None on the ranks that do not record the trial

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        log_dir = trainer.log_dir  # asked on every rank: it is a broadcast
        if self.study is None or self.config_text is None:
            return
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        (self.trial_dir / "config.yaml").write_text(self.config_text)
        if log_dir is not None:
            local = "://" not in str(log_dir)  # a remote URL (s3://...) is kept as it is
            self.study.storage.update_trial(
                self.trial.id, attrs={LOGGER_DIR_ATTR: str(Path(log_dir).resolve()) if local else str(log_dir)}
            )


def write_best_config(study: Study, path: Path) -> Path | None:
    """Print the best trial and write its config to ``path``; ``path``, or ``None`` when there is none to write."""
    if not any(t.state is TrialState.COMPLETE for t in study.trials):
        print(f"No trial of study {study.name!r} completed, so there is no best config to write.")
        return None
    best = study.best_trial
    params = ", ".join(f"{k}={v!r}" for k, v in best.params.items())
    print(f"Best: {describe(best, study.name)}: {params}")
    if best.attrs.get(CONFIG_ATTR) is None:
        print("That trial was not run by `tune`, so it has no stored config to write.")
        return None
    command = _retrain_command(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"Best config: {describe(best, study.name)}.\nRetrain it: {command}"
    path.write_text(export_trial(best, "yaml", header=header))
    print(f"Best config written to {_shown_path(path)}; retrain it with:\n  {command}")
    return path


def write_pareto_configs(study: Study, directory: Path) -> tuple[Path, ...]:
    """Several objectives: print the Pareto set and write each of its trials' configs to ``directory``.

    Returns the files written (none for trials that ``tune`` did not run, which have no stored config).
    """
    front = study.best_trials
    if not front:
        print(f"No trial of study {study.name!r} completed, so there is no Pareto set to write.")
        return ()
    print(f"Pareto set of study {study.name!r}: {len(front)} trial(s), none better in every objective.")
    written = []
    for trial in front:
        params = ", ".join(f"{k}={v!r}" for k, v in trial.params.items())
        print(f"  {describe(trial, study.name)}: {params}")
        if trial.attrs.get(CONFIG_ATTR) is None:
            continue
        path = directory / f"trial_{trial.number}.yaml"
        command = _retrain_command(path)
        directory.mkdir(parents=True, exist_ok=True)
        header = f"Pareto-optimal: {describe(trial, study.name)}.\nRetrain it: {command}"
        path.write_text(export_trial(trial, "yaml", header=header))
        written.append(path)
        print(f"    retrain it with: {command}")
    return tuple(written)


def launcher() -> str:
    """How this process was started, for retrain commands: ``torchrun`` with the same layout, else ``python``.

    One node gets ``--standalone`` (a free rendezvous port); several nodes need the user's rendezvous
    flags (``--rdzv-endpoint``...) added, as for the study itself.
    """
    processes = world_size()
    if processes == 1:
        return "python"
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", processes))
    nodes = processes // per_node
    layout = f"--nnodes={nodes}" if nodes > 1 else "--standalone"
    return f"torchrun {layout} --nproc_per_node={per_node}"


def _retrain_command(config_path: Path) -> str:
    return f"{launcher()} {_shown_path(Path(sys.argv[0]))} fit --config {_shown_path(config_path)}"


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (shorter commands to copy)."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)
