"""Samplers choose each trial's parameters: random, Sobol and grid search, the BoTorch GP sampler, and any
Optuna sampler through :class:`OptunaSampler`.

:class:`GPSampler` and :class:`OptunaSampler` load on first access, so importing this package does not
import torch, BoTorch or Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lightning_hpo.samplers.base import Sampler
from lightning_hpo.samplers.grid import GridSampler
from lightning_hpo.samplers.uniform import RandomSampler, SobolSampler

__all__ = ["Sampler", "RandomSampler", "SobolSampler", "GridSampler", "GPSampler", "OptunaSampler"]

if TYPE_CHECKING:
    from lightning_hpo.samplers.gp import GPSampler
    from lightning_hpo.samplers.optuna import OptunaSampler

_LAZY = {"GPSampler": "lightning_hpo.samplers.gp", "OptunaSampler": "lightning_hpo.samplers.optuna"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lightning_hpo.samplers' has no attribute {name!r}")
