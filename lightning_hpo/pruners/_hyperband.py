"""Hyperband: several successive-halving brackets, from aggressive to no pruning at all."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.pruners._base import Pruner, Resource, check_int, check_resource, single_direction
from lightning_hpo.pruners._successive_halving import (
    check_resource_order,
    n_rungs_between,
    survives_new_rungs,
    trial_rungs,
)
from lightning_hpo.trial import Trial

__all__ = ["HyperbandPruner"]

#: With ``min_resource="auto"``, the most aggressive bracket's rungs are at max_resource / eta**k
#: for k = AUTO_RUNGS, ..., 1: one rung earlier than ASHAPruner's, since other brackets hedge.
AUTO_RUNGS = 3


class HyperbandPruner(Pruner):
    """Hyperband over asynchronous successive halving: each trial runs in one of several brackets.

    Bracket ``b`` (0, 1, ..., ``n_brackets - 1``) is :class:`ASHAPruner`'s rule with its ``b``
    lowest rungs removed: bracket 0 prunes from the first rung on, the last bracket never prunes.
    How early a learning curve tells good from bad varies between problems; Hyperband hedges by
    spending part of the trials on each guess. A trial's bracket is a function of its number and
    ``seed`` alone (a CRC32 hash, the same in every process), drawn with the weights of
    Hyperband's paper (more trials in aggressive brackets, where each costs less), and a trial is
    ranked only against the trials of its own bracket.

    Args:
        min_resource: steps of bracket 0's first rung, or ``"auto"``: ``max_resource / eta**3``,
            i.e. with ``eta=3`` four brackets whose first rungs are at 1/27, 1/9 and 1/3 of a
            full run, and one without rungs; moved up to validation steps as ASHAPruner's. An
            explicit ``min_resource`` needs an explicit ``max_resource``: together they fix the
            number of brackets, so a trial's bracket never changes during a study.
        max_resource: steps of a full run, or ``"auto"``: as :class:`ASHAPruner`'s, the trial's
            planned length from its Trainer's ``max_epochs`` / ``max_steps`` when the Tuner knows
            it, else the largest last step among COMPLETE trials.
        reduction_factor: ``eta`` >= 2; about 1/eta of a bracket's trials pass each rung.
        seed: changes which trial numbers go to which bracket (not the proportions).

    Example:
        >>> pruner = HyperbandPruner(min_resource=10, max_resource=270, reduction_factor=3)
        >>> pruner.n_brackets, [pruner.bracket_of(n) for n in range(8)]
        (4, [0, 2, 3, 2, 1, 2, 0, 0])
    """

    def __init__(
        self,
        *,
        min_resource: Resource = "auto",
        max_resource: Resource = "auto",
        reduction_factor: int = 3,
        seed: int = 0,
    ) -> None:
        name = type(self).__name__
        self.min_resource = check_resource(name, "min_resource", min_resource)
        self.max_resource = check_resource(name, "max_resource", max_resource)
        self.reduction_factor = check_int(name, "reduction_factor", reduction_factor, 2)
        self.seed = check_int(name, "seed", seed, 0)
        check_resource_order(name, self.min_resource, self.max_resource)
        if self.min_resource == "auto":
            self.n_brackets = AUTO_RUNGS + 1
        elif self.max_resource == "auto":
            raise InvalidArgumentError(
                f"{name}: an explicit min_resource ({self.min_resource}) needs an explicit max_resource (steps of "
                "a full run), so that the number of brackets is fixed; or leave both 'auto'."
            )
        else:
            self.n_brackets = n_rungs_between(self.min_resource, self.max_resource, self.reduction_factor) + 1
        # Hyperband's allocation: bracket b gets ceil(n * eta**s / (s + 1)) shares, s = n - 1 - b.
        self._shares = [
            math.ceil(self.n_brackets * self.reduction_factor ** (self.n_brackets - 1 - b) / (self.n_brackets - b))
            for b in range(self.n_brackets)
        ]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_resource={self.min_resource!r}, max_resource={self.max_resource!r}, "
            f"reduction_factor={self.reduction_factor!r}, seed={self.seed!r})"
        )

    def bracket_of(self, number: int) -> int:
        """The bracket of trial ``number``: the same in every process and every run."""
        draw = zlib.crc32(f"{self.seed}:{number}".encode()) % sum(self._shares)
        for bracket, share in enumerate(self._shares):
            if draw < share:
                return bracket
            draw -= share
        raise AssertionError("unreachable: draw < sum(shares)")

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        single_direction(self, directions)
        if trial.last_step is None:
            return False
        bracket = self.bracket_of(trial.number)
        rungs = trial_rungs(
            trial,
            trials,
            self.min_resource,
            self.max_resource,
            self.reduction_factor,
            skip=bracket,
            auto_rungs=AUTO_RUNGS,
        )
        if not rungs:
            return False
        same_bracket = [t for t in trials if self.bracket_of(t.number) == bracket]
        return not survives_new_rungs(trial, same_bracket, rungs, self.reduction_factor, directions)
