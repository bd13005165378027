"""The Lightning callback that reports a trial's monitored metric(s) and stops the trial when pruned.

At the end of every validation (also several per epoch with ``val_check_interval < 1``; never
during the sanity check) it:

1. reads the monitored metric (or each of several, for a multi-objective study) and averages it
   over all ranks, so the value stands for the whole validation set even when the user logged it
   without ``sync_dist=True``;
2. on global rank 0 only, stores ``(trainer.global_step, value)`` and asks the pruner;
3. broadcasts rank 0's decision (or its error) to every rank, so all ranks stop, or fail, together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lightning_hpo._budget import BUDGET_ATTR, PLANNED_STEPS_ATTR
from lightning_hpo.exceptions import LightningHPOError, MetricNotFoundError

if TYPE_CHECKING:
    from lightning_hpo.study import Study
    from lightning_hpo.trial import Trial

__all__ = ["TrialReporter"]


class TrialReporter(Callback):
    """Report the monitored metric of a trial at each validation, and prune it when the pruner says so.

    Args:
        study: the trial's study; only global rank 0 uses it (other ranks may pass ``None``).
        trial: the RUNNING trial being trained (``None`` on ranks other than 0).
        monitor: the logged metric to report, e.g. ``"val_loss"``; or, in a study with several
            objectives, a list of them in the order of the study's ``mode``, e.g.
            ``["val_loss", "n_params"]``: each validation then reports one value per metric.
        budget: the Trainer's ``max_epochs`` / ``max_steps`` as the user set them (``{}``: neither),
            or ``None`` when unknown. When given, rank 0 stores it with the trial as training
            starts, with the steps of a full run when the budget is set (see :mod:`lightning_hpo._budget`).

    After ``trainer.fit``, :attr:`pruned_step` is the step at which the trial was pruned (or ``None``)
    and :attr:`reports` holds the ``(step, values)`` pairs reported, on every rank, ``values`` a tuple
    in monitor order (:attr:`reported`: the same, with a float per step when ``monitor`` is one name).
    """

    def __init__(
        self,
        study: Study | None,
        trial: Trial | None,
        monitor: str | Sequence[str],
        budget: Mapping[str, int] | None = None,
    ) -> None:
        self.study = study
        self.trial = trial
        self._one_name = isinstance(monitor, str)
        self.monitor: tuple[str, ...] = (monitor,) if isinstance(monitor, str) else tuple(monitor)
        self.budget = None if budget is None else dict(budget)
        self.pruned_step: int | None = None
        self.reports: list[tuple[int, tuple[float, ...]]] = []

    @property
    def reported(self) -> list[tuple[int, float | tuple[float, ...]]]:
        """The ``(step, value)`` pairs reported, ``value`` shaped as ``monitor`` was given (a name or a list)."""
        return [(step, values[0] if self._one_name else values) for step, values in self.reports]

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.budget is None or not trainer.is_global_zero or self.study is None or self.trial is None:
            return
        attrs: dict[str, object] = {BUDGET_ATTR: self.budget}
        steps = trainer.estimated_stepping_batches
        if self.budget and math.isfinite(steps):
            attrs[PLANNED_STEPS_ATTR] = int(steps)
        self.study.storage.update_trial(self.trial.id, attrs=attrs)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = self._mean_over_ranks(trainer, pl_module)
        step = trainer.global_step
        decision: tuple[bool, str | None] = (False, None)
        if trainer.is_global_zero:
            decision = self._report_and_judge(step, value)
        prune, error = trainer.strategy.broadcast(decision, src=0)
        if error is not None:
            where = " on rank 0" if trainer.world_size > 1 else ""
            raise LightningHPOError(f"Reporting step {step} of the trial failed{where}: {error}")
        self.reports.append((step, value))
        if prune:
            self.pruned_step = step
            trainer.should_stop = True

    def _mean_over_ranks(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[float, ...]:
        metrics = trainer.callback_metrics
        for name in self.monitor:
            if name not in metrics:
                available = sorted(metrics)
                raise MetricNotFoundError(
                    f"The trial monitors {name!r}, but no metric of that name was logged by this validation. "
                    f"Logged metrics: {available if available else 'none'}. Log it in validation_step with "
                    f"self.log({name!r}, ...), or monitor one of the logged metrics."
                )
        if trainer.world_size == 1:  # nothing to average: skip building and reducing a tensor
            return tuple(float(torch.as_tensor(metrics[n]).reshape(-1)[0]) for n in self.monitor)
        # One reduction for all the metrics: one collective per validation, however many there are.
        values = torch.stack(
            [torch.as_tensor(metrics[n]).detach().to(torch.float64).reshape(-1)[0] for n in self.monitor]
        )
        return tuple(trainer.strategy.reduce(values.to(pl_module.device), reduce_op="mean").tolist())

    def _report_and_judge(self, step: int, value: tuple[float, ...]) -> tuple[bool, str | None]:
        if self.study is None or self.trial is None:
            return False, "the TrialReporter on rank 0 has no study or trial"
        try:
            self.study.report(self.trial, step, value)
            return self.study.should_prune(self.trial), None
        except Exception as error:  # noqa: BLE001 - sent to every rank, then raised there
            return False, f"{type(error).__name__}: {error}"
