"""Asynchronous successive halving (ASHA): rungs of growing training, the top 1/eta go on at each.

This module also holds the rung logic that :mod:`._hyperband` runs once per bracket.

What a "resource" is here: the steps a trial reported (``trainer.global_step`` at each validation).
A trial *reaches* a rung at step ``r`` when it reports at a step ``>= r``, and its value at that
rung is its best value reported at steps ``<= r`` ("best by step r"). So trials that validate at
different steps (another batch size, validations several per epoch or every few epochs) are
compared for the same amount of training, never crediting one with steps it ran past the rung.

With several objectives the rungs are the same and the ranking at a rung is MO-ASHA's (Schmucker
et al., 2021, "Multi-objective Asynchronous Successive Halving"): see :class:`ASHAPruner`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from lightning_hpo._budget import planned_steps
from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.pareto import in_top_k, minimization_form
from lightning_hpo.pruners._base import (
    Pruner,
    Resource,
    best_up_to,
    check_int,
    check_resource,
    others_at,
    peers_at,
    previous_step,
    vector_up_to,
)
from lightning_hpo.trial import Trial, TrialState

__all__ = ["ASHAPruner"]

#: With ``min_resource="auto"``, ASHA's rungs are at max_resource / eta**k for k = AUTO_RUNGS, ..., 1.
AUTO_RUNGS = 2


class ASHAPruner(Pruner):
    """Asynchronous successive halving: at each rung, a trial goes on only if it is in the top 1/eta.

    Rungs sit at ``min_resource * eta**k`` steps (k = 0, 1, ...) up to ``max_resource / eta``, so
    the trials that pass the last rung still train ``eta`` times longer. When a trial first
    reports at or past a rung, it is ranked against every other trial (RUNNING, COMPLETE or
    PRUNED, not FAIL) that reached the rung, each by its best value by that step. It goes on only
    if it is among the best ``n // eta`` of the ``n`` trials there (itself included), or the best
    of them while ``n < eta``; ties count in its favour. Promotion is asynchronous: a trial is
    judged once per rung, on arrival, against the trials that got there before it, and never
    waits for others (a Lightning run can't be paused and resumed later, so waiting would hold
    its worker). A trial that reported only nan/inf by a rung is pruned there (it diverged); one
    with no report by a rung is not judged at that rung.

    **Several objectives** (``mode=["min", "max"]``, reports of one value per objective): the same
    rungs, with MO-ASHA's ranking (Schmucker et al., 2021). At a rung, each trial that reached it
    stands for the values of its last report at or before the rung (a state its model was really
    in, as a multi-objective trial's final values are those of its last validation; the best value
    of each objective taken apart could mix reports and describe no model at all). These points
    are ranked by non-dominated sorting (Pareto fronts), and within the front that does not fit
    whole into the ``n // eta`` places, by NSGA-II's crowding distance, the more isolated first, so
    that the trials that go on spread along the front. The trial goes on if it is in the top
    ``n // eta`` (the best front, while ``n < eta``), ties in its favour. A trial whose values at
    the rung include nan or inf is pruned there (it diverged). With one objective this is the
    rule above, except that each trial stands for its best value by the rung.

    Args:
        min_resource: steps of the first rung (with 20 optimizer steps per epoch, 60 is epoch 3),
            or ``"auto"``: ``max_resource / eta**2``, i.e. rungs at 1/9 and 1/3 of a full run with
            ``eta=3``, each moved up to the next step at which the longest COMPLETE trial
            validated. Early values say little about where a run ends (on LCBench, the rank
            correlation of epoch-1 accuracy with the final one is about 0, at a tenth of the
            epochs about 0.93): the first rung should not come too early.
        max_resource: steps of a full run, or ``"auto"``: the length of the trial's run as its
            Trainer's ``max_epochs`` / ``max_steps`` set it (the Tuner stores it with each trial,
            see below), else the largest last step among COMPLETE trials.
        reduction_factor: ``eta`` >= 2; about 1/eta of the trials pass each rung.

    **Where "auto" takes the length of a full run.** When the Tuner is given ``max_epochs`` or
    ``max_steps`` in ``trainer_kwargs``, each trial stores the optimizer steps its Trainer plans
    (``Trainer.estimated_stepping_batches``) as training starts, and the rungs are 1/9 and 1/3 of
    that, from the first trial on, moved up to the trial's own validation steps until a trial
    completes, then to those of the longest COMPLETE trial. Without either limit (a Study driven
    by hand, or a Trainer left at Lightning's default length), the length is learnt from the
    longest COMPLETE trial, and nothing is pruned before one completes; an early-stopped first
    trial then makes the rungs early, which is why the Trainer's budget is preferred.

    Example:
        >>> ASHAPruner(min_resource=100, reduction_factor=3).rungs(max_resource=2000, up_to=2000)
        [100, 300]
    """

    def __init__(
        self,
        *,
        min_resource: Resource = "auto",
        max_resource: Resource = "auto",
        reduction_factor: int = 3,
    ) -> None:
        name = type(self).__name__
        self.min_resource = check_resource(name, "min_resource", min_resource)
        self.max_resource = check_resource(name, "max_resource", max_resource)
        self.reduction_factor = check_int(name, "reduction_factor", reduction_factor, 2)
        check_resource_order(name, self.min_resource, self.max_resource)

    def rungs(self, *, max_resource: int | None, up_to: float, grid: Sequence[int] = ()) -> list[float]:
        """The rungs' steps up to ``up_to``, lowest first, for full runs of ``max_resource`` steps.

        ``grid``: the steps a complete trial reported, which ``"auto"`` rungs are moved up to.
        """
        return rung_steps(
            self.min_resource,
            max_resource,
            self.reduction_factor,
            skip=0,
            auto_rungs=AUTO_RUNGS,
            up_to=up_to,
            grid=grid,
        )

    def prune(self, trial: Trial, trials: Sequence[Trial], *, directions: Sequence[str]) -> bool:
        if trial.last_step is None:
            return False
        rungs = trial_rungs(
            trial, trials, self.min_resource, self.max_resource, self.reduction_factor, skip=0, auto_rungs=AUTO_RUNGS
        )
        return not survives_new_rungs(trial, trials, rungs, self.reduction_factor, directions)


def check_resource_order(owner: str, min_resource: Resource, max_resource: Resource) -> None:
    if isinstance(min_resource, int) and isinstance(max_resource, int) and min_resource > max_resource:
        raise InvalidArgumentError(
            f"{owner}: `min_resource <= max_resource` must hold, but got ({min_resource=}, {max_resource=})."
        )


def reference_trial(trials: Sequence[Trial]) -> Trial | None:
    """The COMPLETE trial that ran the most steps (the lowest number among ties), or None."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.last_step is not None]
    if not complete:
        return None
    return max(complete, key=lambda t: (t.last_step, -t.number))


def trial_rungs(
    trial: Trial,
    trials: Sequence[Trial],
    min_resource: Resource,
    max_resource: Resource,
    eta: int,
    *,
    skip: int,
    auto_rungs: int,
) -> list[float]:
    """The rungs ``trial`` has reached (see :func:`rung_steps`), for the study's ``trials``.

    An ``"auto"`` ``max_resource`` is the trial's planned length (its Trainer's ``max_epochs`` /
    ``max_steps`` in steps, stored when its training started) when known, else the last step of
    the longest COMPLETE trial. ``"auto"`` rungs are moved up to the steps at which that COMPLETE
    trial validated, or before there is one, to those at which this trial did.
    """
    reference = reference_trial(trials)
    planned = planned_steps(trial)
    if max_resource != "auto":
        full_run: int | None = max_resource
    elif planned is not None:
        full_run = planned
    else:
        full_run = None if reference is None else reference.last_step
    grid = trial if reference is None else reference
    return rung_steps(
        min_resource,
        full_run,
        eta,
        skip=skip,
        auto_rungs=auto_rungs,
        up_to=trial.last_step if trial.last_step is not None else 0,
        grid=list(grid.intermediate_values),
    )


def rung_steps(
    min_resource: Resource,
    max_resource: int | None,
    eta: int,
    *,
    skip: int,
    auto_rungs: int,
    up_to: float,
    grid: Sequence[int] = (),
) -> list[float]:
    """Rung steps ``<= up_to``, lowest first; ``skip`` drops the lowest rungs (a Hyperband bracket).

    With an explicit ``min_resource`` the rungs are ``min_resource * eta**(skip + k)`` while
    ``rung * eta <= max_resource`` (unbounded while ``max_resource`` is unknown). With ``"auto"``
    they are ``max_resource / eta**k`` for ``k = auto_rungs - skip, ..., 1``, none while
    ``max_resource`` is unknown, each moved up to the first step of ``grid`` (the steps a complete
    trial reported) at or past it: so a rung falls on a validation, rather than judging trials by
    the validation before it (e.g. 52 epochs / 27 = 1.9 would otherwise judge epoch 1).
    """
    if min_resource == "auto":
        if max_resource is None:
            return []
        targets = [max_resource / eta**k for k in range(auto_rungs - skip, 0, -1)]
        steps = sorted(grid)
        if steps:
            targets = [steps[bisect.bisect_left(steps, t)] if t <= steps[-1] else t for t in targets]
        rungs = sorted({t for t in targets if t < max_resource})
        return [r for r in rungs if r <= up_to]
    rungs = []
    rung = min_resource * eta**skip
    while rung <= up_to and (max_resource is None or rung * eta <= max_resource):
        rungs.append(rung)
        rung *= eta
    return rungs


def survives_new_rungs(
    trial: Trial, trials: Sequence[Trial], rungs: Sequence[float], eta: int, directions: Sequence[str]
) -> bool:
    """False if ``trial``'s latest report reached a rung where it is not in the top 1/eta."""
    last = trial.last_step
    before = previous_step(trial)
    for rung in rungs:
        if last is None or rung > last or (before is not None and rung <= before):
            continue  # not reached yet, or reached and judged at an earlier report
        if len(directions) == 1:
            survives = _survives_rung(trial, trials, rung, eta, minimize=directions[0] == "min")
        else:
            survives = _survives_rung_pareto(trial, trials, rung, eta, directions)
        if not survives:
            return False
    return True


def _survives_rung(trial: Trial, trials: Sequence[Trial], rung: float, eta: int, minimize: bool) -> bool:
    """One objective: the trial's best value by the rung is among the best ``n // eta`` there."""
    value = best_up_to(trial, rung, minimize)
    if value is None:
        # Only nan/inf by this rung: the run diverged. No report by it at all: not judged here.
        return not any(step <= rung for step in trial.intermediate_values)
    peers = peers_at(trial, trials, rung, minimize)
    better = sum((p < value) if minimize else (p > value) for p in peers)
    return better < max(1, (len(peers) + 1) // eta)


def _survives_rung_pareto(
    trial: Trial, trials: Sequence[Trial], rung: float, eta: int, directions: Sequence[str]
) -> bool:
    """Several objectives (MO-ASHA): the trial's values at the rung are in the top ``n // eta`` by
    Pareto front, then crowding distance (see :class:`ASHAPruner`)."""
    own = vector_up_to(trial, rung)
    if own is None:
        return True  # no report by this rung: not judged here
    if not all(map(math.isfinite, own)):
        return False  # the run diverged
    peers = [vector_up_to(other, rung) for other in others_at(trial, trials, rung)]
    points = [own, *(p for p in peers if p is not None and all(map(math.isfinite, p)))]
    return in_top_k(minimization_form(points, directions), 0, max(1, len(points) // eta))


def n_rungs_between(min_resource: int, max_resource: int, eta: int) -> int:
    """How many times ``min_resource`` can be multiplied by ``eta`` and stay ``<= max_resource``."""
    count, rung = 0, min_resource * eta
    while rung <= max_resource:
        count, rung = count + 1, rung * eta
    return count
