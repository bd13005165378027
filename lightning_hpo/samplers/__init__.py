"""Samplers choose each trial's parameters: random and Sobol search, and the BoTorch GP sampler.

:class:`GPSampler` loads on first access, so importing this package does not import torch or BoTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_hpo.samplers.base import Sampler
from lightning_hpo.samplers.uniform import RandomSampler, SobolSampler

__all__ = ["Sampler", "RandomSampler", "SobolSampler", "GPSampler"]

if TYPE_CHECKING:
    from lightning_hpo.samplers.gp import GPSampler


def __getattr__(name: str) -> Any:
    if name == "GPSampler":
        from lightning_hpo.samplers.gp import GPSampler

        return GPSampler
    raise AttributeError(f"module 'lightning_hpo.samplers' has no attribute {name!r}")
