"""The storage contract: what a study needs from a database.

Storage is the single source of truth of a study. Samplers and pruners are pure functions of what
it returns, so every worker, rank and resumed run sees the same history.

Contract, for implementers:

* Every method is one transaction, and safe to call from several threads and processes at once.
* ``create_trial`` hands out trial numbers ``0, 1, 2, ...`` per study, each exactly once, even when
  many workers call it at the same moment.
* A RUNNING trial belongs to the worker that created it; only that worker reports, sends heartbeats
  and finishes it, except that any worker may fail it once its heartbeat is stale. Finishing a
  trial that is no longer RUNNING raises :class:`~lightning_hpo.exceptions.TrialStateError`, so two
  workers can never both finish one trial.
* Parameters are kept in their stored form (see :mod:`lightning_hpo.space`): the storage never
  needs the search-space objects, only their JSON.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lightning_hpo.trial import Trial, TrialState

__all__ = ["Storage", "StudyRecord", "TrialOverview"]


@dataclass(frozen=True)
class StudyRecord:
    """What storage keeps about a study itself."""

    id: int
    name: str
    space: Mapping[str, Any]
    directions: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class TrialOverview:
    """A trial as a table row or a chart point shows it (see :meth:`Storage.get_trial_overviews`).

    Attributes:
        trial: the trial without its intermediate values, and with only the attrs asked for.
        curve_json: its intermediate values as JSON text, in step order: ``[[step, value], ...]``, the
            value ``null`` where it was nan or infinite; in a multi-objective study a reported vector
            is ``[step, [value, ...]]`` as stored (``null`` for nan; ``Infinity`` as Python's ``json``
            writes it). ``None`` when it was not asked for (``curves=False``: see :meth:`Storage.get_trial_curves`).
    """

    trial: Trial
    curve_json: str | None


class Storage(abc.ABC):
    """Abstract storage; see the module docstring for the contract."""

    #: The URL to show to people (password hidden).
    display_url: str

    @property
    @abc.abstractmethod
    def shareable_across_processes(self) -> bool:
        """Whether other processes (worker processes of ``n_jobs``, other machines) can open the same storage.

        False for a storage that lives in this process's memory: its trials need no heartbeats,
        and it cannot serve worker processes.
        """

    @abc.abstractmethod
    def get_or_create_study(self, name: str, space: Mapping[str, Any], directions: Sequence[str]) -> StudyRecord:
        """Return the study called ``name``, creating it with this space and directions if it is new.

        Returns the stored record unchanged when the study exists: comparing it with what the
        caller asked for is the caller's job.
        """

    @abc.abstractmethod
    def get_study(self, name: str) -> StudyRecord:
        """Raise :class:`~lightning_hpo.exceptions.StudyNotFoundError` (listing the names) if missing."""

    @abc.abstractmethod
    def list_studies(self) -> list[StudyRecord]: ...

    @abc.abstractmethod
    def delete_study(self, name: str) -> None: ...

    def study_attr_setdefault(self, study_id: int, key: str, value: Any) -> Any:
        """The study-level attribute ``key`` (JSON) as stored, after storing ``value`` if it had none.

        The first writer wins, so workers that open one study concurrently agree on it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not store study attributes.")

    def study_attr_get(self, study_id: int, key: str) -> Any:
        """The study-level attribute ``key`` (JSON) as stored, or ``None`` if it has none; writes nothing."""
        raise NotImplementedError(f"{type(self).__name__} does not store study attributes.")

    @abc.abstractmethod
    def create_trial(
        self,
        study_id: int,
        *,
        worker: str,
        params: Mapping[str, Any] | None = None,
        max_active: int | None = None,
        attrs: Mapping[str, Any] | None = None,
        retry_of: int | None = None,
    ) -> Trial | None:
        """Create a RUNNING trial with the next number.

        With ``max_active``, create it only if fewer than that many trials are RUNNING, COMPLETE or
        PRUNED, and return ``None`` otherwise; the check and the insert are one atomic step, so
        concurrent workers never overshoot ``max_active``.

        With ``retry_of`` (a trial number), the new trial is that trial's retry: its attrs get
        ``{"retry_of": retry_of}``, and it is created only if no trial of the study is a retry of that
        trial yet (``None`` otherwise), in the same atomic step, so a trial is retried at most once.
        """

    def create_claiming_trial(
        self,
        study_id: int,
        *,
        worker: str,
        key: str,
        choose: Callable[[set[Any]], tuple[Any, Mapping[str, Any]]],
        max_active: int | None = None,
    ) -> Trial | None:
        """Create a RUNNING trial that claims a value of ``attrs[key]`` no other non-FAIL trial of the study holds.

        ``choose(taken)`` gets the values of ``attrs[key]`` held by the study's RUNNING, COMPLETE and
        PRUNED trials and returns ``(value, params)`` for the new trial, or raises to create none
        (the exception propagates). Reading ``taken`` and the insert are one atomic step, so two
        workers never claim one value. ``max_active`` is as for :meth:`create_trial`.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot claim values for trials (GridSampler needs it).")

    def enqueue_params(self, study_id: int, params: Mapping[str, Any]) -> None:
        """Append ``params`` (stored form, possibly partial) to the study's queue of configs to run next."""
        raise NotImplementedError(f"{type(self).__name__} cannot enqueue parameters.")

    def get_enqueued_params(self, study_id: int) -> list[dict[str, Any]]:
        """The study's queued configs, oldest first (see :meth:`enqueue_params`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot enqueue parameters.")

    def create_enqueued_trial(self, study_id: int, *, worker: str, max_active: int | None = None) -> Trial | None:
        """Take the oldest queued config and create a RUNNING trial with it, atomically; ``None`` when the queue
        is empty or ``max_active`` (as for :meth:`create_trial`) is reached, and then the queue is unchanged."""
        raise NotImplementedError(f"{type(self).__name__} cannot enqueue parameters.")

    @abc.abstractmethod
    def set_trial_params(self, trial_id: int, params: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def report(self, trial_id: int, step: int, value: float | Sequence[float]) -> None:
        """Store an intermediate value (a repeated step overwrites); the trial must be RUNNING.

        ``value`` is a number, or in a multi-objective study a sequence with one value per
        objective; the trial's ``intermediate_values`` then hold the first objective's and its
        ``intermediate_vectors`` the whole sequence.
        """

    @abc.abstractmethod
    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        *,
        values: Sequence[float] | None = None,
        error: str | None = None,
    ) -> Trial:
        """Move a RUNNING trial to a finished state; return the finished trial."""

    @abc.abstractmethod
    def update_trial(
        self,
        trial_id: int,
        *,
        log_dir: str | None = None,
        checkpoint_path: str | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Set paths and merge ``attrs`` into the trial's attributes (any state)."""

    @abc.abstractmethod
    def heartbeat(self, trial_ids: Iterable[int]) -> None:
        """Mark these trials' workers as alive now (only RUNNING trials are touched)."""

    @abc.abstractmethod
    def get_trials(self, study_id: int, states: Iterable[TrialState] | None = None) -> list[Trial]:
        """All trials of the study (or those in ``states``), by number, with intermediate values."""

    @abc.abstractmethod
    def get_trial(self, trial_id: int) -> Trial: ...

    def get_trial_overviews(
        self,
        study_id: int,
        *,
        attr_keys: Iterable[str] = (),
        after_id: int | None = None,
        ids: Iterable[int] = (),
        finished_since: datetime | None = None,
        curves: bool = True,
    ) -> list[TrialOverview]:
        """The study's trials, by number, as a dashboard shows many of them: see :class:`TrialOverview`.

        Cheaper than :meth:`get_trials` for a large study: only ``attr_keys`` of the attrs are read,
        and the intermediate values come as one JSON text per trial, not decoded. Without a selector,
        every trial; with some, the trials that match any of them: ``id > after_id``, an id in
        ``ids``, or finished at ``finished_since`` or later (what a reader polling for changes asks).
        ``curves=False`` leaves the intermediate values out, for a reader that asks
        :meth:`get_trial_curves` for them at the same time.

        This implementation reads :meth:`get_trials`; a storage can answer it faster.
        """
        keys, chosen = list(attr_keys), set(ids)
        everything = after_id is None and not chosen and finished_since is None

        def wanted(trial: Trial) -> bool:
            finished = trial.datetime_complete is not None and finished_since is not None
            return (
                everything
                or (after_id is not None and trial.id > after_id)
                or trial.id in chosen
                or (finished and trial.datetime_complete >= finished_since)  # type: ignore[operator]
            )

        return [
            TrialOverview(
                replace(
                    trial,
                    intermediate_values={},
                    intermediate_vectors={},
                    attrs={key: trial.attrs[key] for key in keys if key in trial.attrs},
                ),
                _curve_json(trial) if curves else None,
            )
            for trial in self.get_trials(study_id)
            if wanted(trial)
        ]

    def get_trial_curves(
        self,
        study_id: int,
        *,
        after_id: int | None = None,
        ids: Iterable[int] = (),
        finished_since: datetime | None = None,
        up_to_id: int | None = None,
    ) -> dict[int, str]:
        """The intermediate values of the trials :meth:`get_trial_overviews` picks with the same selectors.

        Trial id -> :attr:`TrialOverview.curve_json`, for the trials with at least one value and,
        with ``up_to_id``, an id up to it (the trials an overview read just before saw).
        """
        curves: dict[int, str] = {}
        for o in self.get_trial_overviews(study_id, after_id=after_id, ids=ids, finished_since=finished_since):
            if o.curve_json is not None and o.curve_json != "[]" and (up_to_id is None or o.trial.id <= up_to_id):
                curves[o.trial.id] = o.curve_json
        return curves

    def close(self) -> None:  # noqa: B027 - optional hook: most storages hold nothing to release
        """Release connections; the storage may be used again afterwards."""


def _curve_json(trial: Trial) -> str:
    """A trial's intermediate values as :attr:`TrialOverview.curve_json` holds them."""

    def finite(value: float) -> float | None:
        return value if math.isfinite(value) else None

    points = [
        [step, finite(vector[0])] if len(vector) == 1 else [step, [None if math.isnan(v) else v for v in vector]]
        for step, vector in sorted(trial.intermediate_vectors.items())
    ]
    return json.dumps(points)
