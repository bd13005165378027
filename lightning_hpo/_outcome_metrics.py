"""The metrics a trial's outcome constraints are checked on, as the Tuner and the CLI collect them.

:class:`OutcomeMetrics` is a Lightning callback added to every trial's Trainer. At each validation
(not the sanity check) it keeps a snapshot of what the module logged (``trainer.callback_metrics``,
the scalars) and of three built-in metrics, so a trial is judged by the metrics *of the validation
that gives it its value* (the best one with one monitored metric, the last one with several):

* ``n_params``: the module's parameter count, counted when training starts;
* ``peak_memory_mb``: the peak CUDA memory allocated on the trial's device since training started
  (``torch.cuda.max_memory_allocated``), or on the CPU the process's peak resident set size (of the
  whole process, so it never goes down from one trial to the next);
* ``time_per_epoch_s``: the mean wall time of the training epochs completed so far (validation
  included, as it runs inside the epoch).

A constraint that is already violated when training starts (``n_params``) or after the first
training steps (``peak_memory_mb``, which only grows) stops the trial at once: it FAILs with kind
``"infeasible"`` and its metrics, so the sampler learns the boundary without paying for the training.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from typing_extensions import override

from lightning_hpo._constraints import Constraints, violations
from lightning_hpo.exceptions import ConstraintViolated

__all__ = ["OutcomeMetrics", "BUILTIN_METRICS", "EARLY_MEMORY_CHECK_STEPS", "as_floats"]

BUILTIN_METRICS = ("n_params", "peak_memory_mb", "time_per_epoch_s")
#: Training steps after which a ``peak_memory_mb`` constraint is checked (the peak is reached within
#: the first steps: forward, backward and the optimizer's state all exist after one).
EARLY_MEMORY_CHECK_STEPS = 3


class OutcomeMetrics(pl.Callback):
    """Snapshots of the logged and built-in metrics at each validation, by step; stops a trial that
    violates a constraint known early (see the module docstring).

    Args:
        constraints: the study's constraints (parsed); ``{}`` for none.
    """

    def __init__(self, constraints: Constraints) -> None:
        self.constraints = constraints
        self.by_step: dict[int, dict[str, float]] = {}
        self._n_params: float | None = None
        self._epoch_times: list[float] = []
        self._epoch_start: float | None = None
        self._device: torch.device | None = None

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._n_params = float(sum(p.numel() for p in pl_module.parameters()))
        self._device = pl_module.device
        if self._device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self._device)
        self._stop_if_violated(trainer, {"n_params": self._n_params}, "when training started")

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._epoch_start is not None:
            self._epoch_times.append(time.perf_counter() - self._epoch_start)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if "peak_memory_mb" in self.constraints and trainer.global_step == EARLY_MEMORY_CHECK_STEPS:
            self._stop_if_violated(
                trainer, {"peak_memory_mb": self._peak_memory_mb()}, f"after {EARLY_MEMORY_CHECK_STEPS} steps"
            )

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        logged = as_floats({name: v for name, v in trainer.callback_metrics.items() if _is_scalar(v)})
        self.by_step[trainer.global_step] = {**self.builtin(), **logged}  # the module's own names win

    def builtin(self) -> dict[str, float]:
        """The built-in metrics now (``time_per_epoch_s`` once an epoch has ended)."""
        metrics = {"peak_memory_mb": self._peak_memory_mb()}
        if self._n_params is not None:
            metrics["n_params"] = self._n_params
        if self._epoch_times:
            metrics["time_per_epoch_s"] = sum(self._epoch_times) / len(self._epoch_times)
        elif self._epoch_start is not None:  # validated within the first epoch: the time so far
            metrics["time_per_epoch_s"] = time.perf_counter() - self._epoch_start
        return metrics

    def at(self, step: int | None) -> dict[str, float]:
        """The metrics of the validation at ``step`` (the latest one when there is no such validation)."""
        if step in self.by_step:
            return dict(self.by_step[step])
        return dict(self.by_step[max(self.by_step)]) if self.by_step else self.builtin()

    def _peak_memory_mb(self) -> float:
        if self._device is not None and self._device.type == "cuda":
            return torch.cuda.max_memory_allocated(self._device) / 2**20
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10

    def _stop_if_violated(self, trainer: pl.Trainer, known: Mapping[str, float], when: str) -> None:
        """Raise :class:`ConstraintViolated` on every rank when a constraint on ``known`` fails on any."""
        relevant = {name: rule for name, rule in self.constraints.items() if name in known}
        if not relevant:
            return
        violated = {n: v for n, v in violations(relevant, known).items() if v > 0}
        if trainer.strategy.reduce_boolean_decision(bool(violated), all=False):
            text = ", ".join(f"{n} = {known[n]:g} (must be {relevant[n][0]} {relevant[n][1]:g})" for n in relevant)
            raise ConstraintViolated(
                f"The trial breaks its outcome constraint {when}: {text}; it was stopped before training further.",
                {**self.builtin(), **known},
            )


def as_floats(values: Mapping[str, Any]) -> dict[str, float]:
    """Each value (a number, or a tensor of one element) as a float, in the same order.

    The tensors on an accelerator are read in one transfer per device and dtype: each ``float()``
    of a GPU tensor would wait for the GPU on its own, once per metric at every validation. CPU
    tensors are read one by one, which costs less than stacking them.
    """
    groups: dict[tuple[torch.device, torch.dtype], list[str]] = {}
    floats: dict[str, float] = {}
    for name, value in values.items():
        if isinstance(value, torch.Tensor) and value.device.type != "cpu":
            groups.setdefault((value.device, value.dtype), []).append(name)
        else:
            floats[name] = float(value)
    for names in groups.values():
        read = torch.stack([values[name].detach().reshape(()) for name in names]).tolist()
        floats.update(zip(names, map(float, read)))
    return {name: floats[name] for name in values}


def _is_scalar(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, (int, float)) and not isinstance(value, bool)
