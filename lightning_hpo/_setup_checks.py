"""Checks of a study's set-up that would otherwise fail only inside the first trial.

Each runs when the Study or the Tuner is built, before any trial is created, so a misconfiguration
costs a clear error instead of a FAIL record and a long traceback from inside Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.pruners import Pruner
from lightning_hpo.trial import Trial, TrialState

__all__ = ["check_pruner_objectives", "check_trainer_launch"]

#: The Trainer arguments that decide how many processes a trial's training runs.
_PROCESS_ARGS = ("accelerator", "strategy", "devices", "num_nodes", "plugins")


def check_pruner_objectives(pruner: Pruner, directions: Sequence[str]) -> None:
    """Refuse a pruner that judges one objective in a study with several.

    Pruners are pure functions of their arguments, so asking this one about a trial that reported
    nothing yet is harmless; a pruner that can judge only one objective says so at once (see
    :func:`~lightning_hpo.pruners.single_direction`) and its message becomes this error.
    """
    if len(directions) < 2:
        return
    probe = Trial(0, TrialState.RUNNING, {})
    try:
        pruner.prune(probe, [probe], directions=directions)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"pruner={pruner!r} does not fit mode={list(directions)}: {error}") from None
    except Exception:  # noqa: BLE001 - a user's pruner may need real history; its first report judges it then
        return


def check_trainer_launch(trainer_kwargs: Mapping[str, Any]) -> None:
    """Refuse trainer arguments whose trials would start processes lightning_hpo does not run.

    E.g. ``strategy="ddp", devices=2`` without torchrun: Lightning would launch a second process per
    trial that never sees the study. The process count is Lightning's own, from a Trainer built with
    only the arguments that decide it (building one starts no process).
    """
    import lightning.pytorch as pl

    from lightning_hpo.distributed import check_trainer_processes

    hardware = {name: trainer_kwargs[name] for name in _PROCESS_ARGS if name in trainer_kwargs}
    trainer = pl.Trainer(
        **hardware,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    check_trainer_processes(trainer)
