"""Samplers choose each trial's parameters: random and Sobol search, and the BoTorch GP sampler."""

from lightning_hpo.samplers.base import Sampler
from lightning_hpo.samplers.uniform import RandomSampler, SobolSampler

__all__ = ["Sampler", "RandomSampler", "SobolSampler"]
