"""Pruners decide, from stored intermediate values, whether a running trial should stop early.

A pruner is a pure, stateless function of the trial being judged and the study's other trials, so
every process that asks (workers, DDP ranks, a resumed run) gets the same answer from the same
history. Steps are what the callback reports: ``trainer.global_step`` at each validation.

* :class:`MedianPruner`, :class:`PercentilePruner`: worse than most trials that got as far.
* :class:`ASHAPruner`: asynchronous successive halving; :class:`HyperbandPruner`: several ASHA
  brackets. Good defaults for learning curves: rungs scale with the length of a full run.
  ASHAPruner (the default) also judges multi-objective studies, by Pareto front (MO-ASHA); the
  other ranking pruners judge one objective and refuse several.
* :class:`CurvePruner`: model-based; stops a trial whose learning curve has little chance to end
  above the best full run (its own pace extrapolated, and how similar earlier runs ended).
* :class:`ThresholdPruner`: nan or out-of-bounds values (diverging runs).
* :class:`PatientPruner`: wraps another pruner, pruning only trials that stopped improving.
* :class:`NopPruner`: never prunes.
"""

from __future__ import annotations

from lightning_hpo.pruners._base import NopPruner, Pruner, best_up_to, peers_at, single_direction
from lightning_hpo.pruners._curve import CurvePruner
from lightning_hpo.pruners._hyperband import HyperbandPruner
from lightning_hpo.pruners._patient import PatientPruner
from lightning_hpo.pruners._percentile import MedianPruner, PercentilePruner
from lightning_hpo.pruners._successive_halving import ASHAPruner
from lightning_hpo.pruners._threshold import ThresholdPruner

__all__ = [
    "Pruner",
    "NopPruner",
    "PercentilePruner",
    "MedianPruner",
    "ASHAPruner",
    "HyperbandPruner",
    "CurvePruner",
    "ThresholdPruner",
    "PatientPruner",
    "best_up_to",
    "peers_at",
    "single_direction",
]
