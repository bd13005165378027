"""Where the parameters of a trial that :meth:`Study.start_trial <lightning_hpo.Study.start_trial>` starts come from.

:meth:`Study.start_trial` decides the order (the retry of a stale trial, then an enqueued config,
then a grid point or the sampler); the functions here create the trial in storage and give it its
parameters: the oldest enqueued config, completed by the sampler when it names only some
parameters; a grid point claimed in storage, so that no two workers run the same one; or the
sampler's draw from the study's history. Apart from :mod:`lightning_hpo.study` so that the Study
reads as ask -> report -> tell.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lightning_hpo.exceptions import GridExhaustedError
from lightning_hpo.trial import GRID_POINT, Trial, TrialState

if TYPE_CHECKING:
    from lightning_hpo.study import Study

__all__ = ["start_enqueued", "start_claimed", "complete_params"]


def start_enqueued(study: Study, max_active: int | None) -> Trial | None:
    """A trial started from the oldest enqueued config, or ``None`` (nothing enqueued, or ``max_active`` reached)."""
    if not study.storage.get_enqueued_params(study._study_id):  # a read: most studies enqueue nothing
        return None
    return study.storage.create_enqueued_trial(study._study_id, worker=study._liveness.worker, max_active=max_active)


def complete_params(study: Study, created: Trial) -> dict[str, Any]:
    """The parameters of a new trial: those it was created with (an enqueued config), the sampler's for the rest."""
    space = study.space
    given = space.from_stored(created.params)
    if space.is_complete(given):
        return given
    params = _active_set(study, {**_sample(study, created.number), **given}, created.number)
    study.storage.set_trial_params(created.id, space.to_stored(params))
    sampler_attrs = study.sampler.take_trial_attrs(created.number)
    if sampler_attrs:
        study.storage.update_trial(created.id, attrs=sampler_attrs)
    return params


def _sample(study: Study, number: int) -> dict[str, Any]:
    space = study.space
    history = [t for t in study.trials if t.number != number and t.params and space.is_complete(t.params)]
    params = study.sampler.sample(space, history, number=number, directions=study.directions)
    if space.is_conditional:  # samplers that draw every parameter (e.g. Optuna's): keep the active ones
        params = {name: params[name] for name in space.active_names(params) if name in params}
    space.check_params(params)
    return params


def _active_set(study: Study, params: dict[str, Any], number: int) -> dict[str, Any]:
    """``params`` cut to the names their values make active. In a conditional space the given
    values of an enqueued config may activate a parameter the sampler left out (it chose another
    branch): such a parameter gets a uniform draw, seeded by the trial's number."""
    space = study.space
    draw = random.Random(f"{study.name}#{number}")
    while missing := [n for n in space.active_names(params) if n not in params]:
        params.update({n: space[n].decode(draw.random()) for n in missing})
    return {n: params[n] for n in space.active_names(params)}


def start_claimed(study: Study, max_active: int | None) -> Trial | None:
    """A trial on a grid point no other trial holds, claimed in storage (see :class:`~lightning_hpo.GridSampler`)."""
    space, sampler = study.space, study.sampler

    def choose(taken: set[Any]) -> tuple[Any, dict[str, Any]]:
        index, params = sampler.choose(space, taken)  # type: ignore[attr-defined]
        return index, space.to_stored(params)

    try:
        created = study.storage.create_claiming_trial(
            study._study_id, worker=study._liveness.worker, key=GRID_POINT, choose=choose, max_active=max_active
        )
    except GridExhaustedError:
        running = [t.number for t in study.get_trials([TrialState.RUNNING]) if GRID_POINT in t.attrs]
        raise GridExhaustedError(
            f"Study {study.name!r} has run all {sampler.size(space)} points of its grid"  # type: ignore[attr-defined]
            + (f"; trials {running} still run, and a failed one frees its point." if running else "."),
            running=len(running),
        ) from None
    if created is None:
        return None
    study._liveness.own(created.id)
    return replace(created, params=space.from_stored(created.params))
