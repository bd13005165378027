"""Trials whose parameters come from outside the sampler: what :meth:`Study.enqueue`, :meth:`Study.add_trial`
and :meth:`Study.add_trials_from` do (the Study keeps the methods and their documentation).

Enqueued configs are stored, so any worker of the study starts them; an imported trial is created
RUNNING, given its reports and finished with ``tell`` like any other, so samplers and pruners see
nothing different; a warm start imports another study's trials that fit this study's space. Apart
from :mod:`lightning_hpo.study` so that the Study reads as ask -> report -> tell.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lightning_hpo._study_checks import mode_text, objective_values
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import WARM_START_FROM, Trial, TrialState

if TYPE_CHECKING:
    from lightning_hpo.study import Study

__all__ = ["enqueue", "import_trial", "add_trials_from", "partial_to_stored", "why_outside"]


def enqueue(study: Study, params: Mapping[str, Any], *, skip_if_exists: bool) -> None:
    """:meth:`Study.enqueue`."""
    stored = partial_to_stored(study.space, params, f"Study {study.name!r}: enqueue")
    if skip_if_exists and _holds_config(study, stored):
        return
    study.storage.enqueue_params(study._study_id, stored)


def _holds_config(study: Study, stored: Mapping[str, Any]) -> bool:
    """Whether these stored values are enqueued already, or a trial that did not fail has them."""
    if dict(stored) in study.storage.get_enqueued_params(study._study_id):
        return True
    return any(
        all(name in t.params and t.params[name] == value for name, value in stored.items())
        for t in study.storage.get_trials(study._study_id)
        if t.state is not TrialState.FAIL
    )


def import_trial(
    study: Study,
    params: Mapping[str, Any],
    value: Any,
    intermediate_values: Mapping[int, Any] | None,
    *,
    state: TrialState,
    attrs: Mapping[str, Any],
) -> Trial:
    """A trial that ran elsewhere, stored with its ``value`` and reports (see :meth:`Study.add_trial`)."""
    if state not in (TrialState.COMPLETE, TrialState.PRUNED):
        raise InvalidArgumentError(f"An imported trial must be COMPLETE or PRUNED, but got state={state!r}.")
    study.space.check_params(params)
    reports = dict(intermediate_values or {})
    for step, reported in reports.items():
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 2**63:
            raise InvalidArgumentError(f"`intermediate_values` steps must be ints in [0, 2**63), but got {step!r}.")
        objective_values(reported, study.directions, study.name, f"The intermediate value at step {step}")
    values = None if value is None else objective_values(value, study.directions, study.name)
    if values is not None and not all(map(math.isfinite, values)):
        raise InvalidArgumentError(f"An imported trial's value must be finite, but got {value!r}.")
    if values is None and not reports:
        raise InvalidArgumentError("An imported trial needs a `value` or `intermediate_values` to take it from.")
    created = study.storage.create_trial(
        study._study_id, worker=study._liveness.worker, params=study.space.to_stored(params), attrs=attrs
    )
    assert created is not None  # no max_active
    study._liveness.own(created.id)
    try:
        for step, reported in sorted(reports.items()):
            study.report(created, step, reported)
        return study.tell(created, values, state=state)
    except BaseException:
        study._finish(created, TrialState.FAIL, error="Importing this trial failed.")
        raise


def add_trials_from(study: Study, source: Study | str, *, fill: Mapping[str, Any] | None) -> list[Trial]:
    """:meth:`Study.add_trials_from`: the trials of ``source`` imported by this call."""
    from lightning_hpo.study import Study  # the module that calls this one

    if isinstance(source, str):
        source = Study(source, storage=study.storage)
    if not isinstance(source, Study):
        raise ArgumentTypeError(f"`source` must be a Study or a study name, but got {source!r}.")
    if source.directions != study.directions:
        raise InvalidArgumentError(
            f"Study {source.name!r} has mode {mode_text(source.directions)}, but {study.name!r} has "
            f"{mode_text(study.directions)}: their values do not compare, so none can be imported."
        )
    space = study.space
    filled = space.from_stored(partial_to_stored(space, fill, "add_trials_from: fill")) if fill else {}
    done = {t.attrs.get(WARM_START_FROM) for t in study.storage.get_trials(study._study_id)}
    imported, dropped = [], []
    for trial in source.get_trials([TrialState.COMPLETE, TrialState.PRUNED]):
        origin = f"{source.name}#{trial.number}"
        if origin in done:
            continue
        params = {**filled, **{name: value for name, value in trial.params.items() if name in space}}
        problem = why_outside(space, params)
        if problem is not None:
            dropped.append(f"trial {trial.number} ({problem})")
            continue
        params = {name: params[name] for name in space.active_names(params)}  # this space's conditions
        reports = trial.intermediate_vectors if len(study.directions) > 1 else trial.intermediate_values
        imported.append(
            import_trial(study, params, trial.values, reports, state=trial.state, attrs={WARM_START_FROM: origin})
        )
    if dropped:
        warnings.warn(
            f"Study {study.name!r}: {len(dropped)} trial(s) of {source.name!r} lie outside the new search space "
            f"and were not imported: {', '.join(dropped[:5])}{', ...' if len(dropped) > 5 else ''}.",
            stacklevel=3,
        )
    return imported


def partial_to_stored(space: SearchSpace, params: Any, what: str) -> dict[str, Any]:
    """Some of ``space``'s parameters in stored form; raises naming the first name or value that does not fit."""
    if not isinstance(params, Mapping):
        raise ArgumentTypeError(f"{what}: `params` must be a dict of name -> value, but got {params!r}.")
    if not params:
        raise InvalidArgumentError(f"{what}: `params` must name at least one parameter, but got {params!r}.")
    unknown = [name for name in params if name not in space]
    if unknown:
        raise InvalidArgumentError(
            f"{what}: every name must be a parameter of the search space ({', '.join(space.names)}), "
            f"but {', '.join(map(repr, unknown))} is not."
        )
    for name, value in params.items():
        if not space[name].contains(value):
            raise InvalidArgumentError(
                f"{what}: parameter {name!r} must be a value of {space[name]!r}, but got {value!r}."
            )
    return {name: space[name].to_stored(value) for name, value in params.items()}


def why_outside(space: SearchSpace, params: Mapping[str, Any]) -> str | None:
    """Why ``params`` (another study's, restricted to ``space``'s names) is no point of ``space``, or ``None``."""
    for name, domain in space.items():
        if name in params and not domain.contains(params[name]):
            return f"{name}={params[name]!r} is outside {domain!r}"
    active = space.active_names(params)
    missing = [name for name in active if name not in params]
    if missing:
        return f"it has no {missing[0]!r}"
    return None
