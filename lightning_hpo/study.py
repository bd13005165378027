"""The study: the ask/tell core that the Tuner is built on, usable with any objective function.

:class:`Study` reads as ask -> sample -> report / prune -> tell. What runs around it lives beside it:
the trial loop of :meth:`Study.optimize` (its options, failure policy and observers) in
:mod:`lightning_hpo._loop`; heartbeats, reaping of dead workers' trials and their retry in
:mod:`lightning_hpo._liveness`; where a new trial's parameters come from (enqueued configs, grid
points, the sampler) in :mod:`lightning_hpo._trial_params`; enqueueing, imported results and warm
starts in :mod:`lightning_hpo._trial_imports`; the checks of names, modes, values and metrics, and of
a reopened study against its stored set-up, in :mod:`lightning_hpo._study_checks`.

Over 500 lines although one thing, the Study: about 200 of them are the documentation of its public
methods, kept on them because that is what users read (``help(Study.add_trials_from)``).

Example:
    >>> from lightning_hpo import Study, Float
    >>> study = Study("quadratic", search_space={"x": Float(-3.0, 3.0)}, storage=":memory:", seed=0)
    >>> study.optimize(lambda params: (params["x"] - 1.0) ** 2, n_trials=8)
    >>> len(study.trials)
    8
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lightning_hpo import _trial_imports
from lightning_hpo._constraints import check_metrics, parse_constraints, violations
from lightning_hpo._liveness import DEFAULT_GRACE_PERIOD, HEARTBEAT_INTERVAL, TrialLiveness
from lightning_hpo._loop import RunOptions, TrialObserver, run_trials
from lightning_hpo._setup_checks import check_pruner_objectives
from lightning_hpo._study_checks import (
    Mode,
    check_matches_stored,
    check_study_name,
    metrics_as_floats,
    mode_text,
    objective_values,
    parse_mode,
    stored_constraints,
    value_and_metrics,
)
from lightning_hpo._trial_params import complete_params, start_claimed, start_enqueued
from lightning_hpo.exceptions import (
    ArgumentTypeError,
    InvalidArgumentError,
    StudyNotFoundError,
    TrialPruned,
    format_exception,
)
from lightning_hpo.pareto import best_trials
from lightning_hpo.pruners import ASHAPruner, Pruner
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.samplers.gp import GPSampler
from lightning_hpo.space import Domain, SearchSpace
from lightning_hpo.storage import Storage, StudyRecord, open_storage
from lightning_hpo.trial import (
    CONSTRAINT_VIOLATIONS,
    FAIL_KIND,
    FAIL_KINDS,
    METRICS,
    Direction,
    Trial,
    TrialState,
)

if TYPE_CHECKING:
    import pandas as pd

    from lightning_hpo.stopping import RegretBoundStopper

__all__ = ["Study", "DEFAULT_GRACE_PERIOD", "HEARTBEAT_INTERVAL"]

Objective = Callable[[dict[str, Any]], Any]


class Study:
    """A named set of trials in a storage, with the sampler and pruner that drive it.

    Opening a study that exists resumes it: its trials, space and mode come from storage, and
    asking for a different space or mode is an error rather than a silent mix of two experiments.
    To analyse a finished study, open it by name alone: ``Study("digits", storage="runs/studies.db")``.

    Args:
        name: the study's name in the storage (any printable text; it is data, never code or a path).
        search_space: parameter name -> :class:`~lightning_hpo.Float` / ``Int`` / ``Categorical``.
            Needed to create a study; ``None`` opens an existing one with its stored space.
        mode: ``"min"`` or ``"max"``; a list of them for several objectives. ``None`` takes the
            stored mode of an existing study, and ``"min"`` for a new one.
        storage: ``None`` for the SQLite file ``lightning_hpo_runs/studies.db``, ``":memory:"`` for a
            throwaway study, a database URL or file path, or a :class:`~lightning_hpo.storage.Storage`.
        sampler: defaults to a :class:`~lightning_hpo.GPSampler` (Bayesian optimization with BoTorch,
            after a scrambled Sobol start) seeded with ``seed``; pass ``SobolSampler(seed=...)`` for
            plain space-filling search.
        pruner: defaults to :class:`~lightning_hpo.ASHAPruner` with rungs at 1/9 and 1/3 of a full
            run (see benchmarks/PRUNING_RESULTS.md for why).
        seed: seed of the default sampler.
        grace_period: seconds without a heartbeat after which another worker's RUNNING trial is
            marked FAIL (stale). A trial whose worker ran on this machine and no longer exists is
            marked at once.
        retry_stale: run the parameters of a stale trial once more: the next trial that any worker
            starts is its retry (``attrs["retry_of"]`` holds the stale trial's number). A retry
            that goes stale too is not retried again.
        constraints: outcome constraints, ``{"metric": ("<=", bound)}`` or ``(">=", bound)``: a trial
            is feasible when its metrics (``tell(..., metrics=...)``, an objective's ``(value,
            metrics)``, or what the Tuner's module logs) satisfy all of them. Best trials are chosen
            among feasible ones, and the GPSampler steers towards where they hold. Stored with the
            study: ``None`` reopens a study with its stored constraints.
    """

    def __init__(
        self,
        name: str,
        *,
        search_space: Mapping[str, Domain] | SearchSpace | None = None,
        mode: Mode | None = None,
        storage: str | os.PathLike[str] | Storage | None = None,
        sampler: Sampler | None = None,
        pruner: Pruner | None = None,
        seed: int | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        retry_stale: bool = True,
        constraints: Mapping[str, tuple[str, float]] | None = None,
    ) -> None:
        self.name = check_study_name(name)
        wanted_constraints = None if constraints is None else parse_constraints(constraints)
        space = None if search_space is None else SearchSpace.coerce(search_space)
        directions = None if mode is None else parse_mode(mode)
        if sampler is not None and not isinstance(sampler, Sampler):
            raise ArgumentTypeError(f"`sampler` must be a lightning_hpo Sampler, but got {sampler!r}.")
        if pruner is not None and not isinstance(pruner, Pruner):
            raise ArgumentTypeError(f"`pruner` must be a lightning_hpo Pruner, but got {pruner!r}.")
        if isinstance(grace_period, bool) or not isinstance(grace_period, (int, float)) or not grace_period > 0:
            raise InvalidArgumentError(
                f"`grace_period > 0` (seconds) must hold, but got grace_period={grace_period!r}."
            )
        self.sampler = sampler if sampler is not None else GPSampler(seed=seed)
        self.pruner = pruner if pruner is not None else ASHAPruner()
        if directions is not None:  # checked before the study is created; a reopened one is checked below
            check_pruner_objectives(self.pruner, directions)
            self.sampler.check_objectives(directions)
        self.grace_period = float(grace_period)
        self.retry_stale = bool(retry_stale)
        self.storage = open_storage(storage)
        given_space = space
        if space is None:
            record = self._stored_study()
            space = SearchSpace.from_json(record.space)
        else:
            record = self.storage.get_or_create_study(self.name, space.to_json(), directions or ("min",))
        self.space = space
        if directions is None:
            check_pruner_objectives(self.pruner, tuple(record.directions))
            self.sampler.check_objectives(tuple(record.directions))
        self.directions = directions or tuple(record.directions)
        # A space read back from storage is the stored one (choices stored by repr come back as
        # strings, so it would not compare equal to its own record).
        check_matches_stored(self.name, self.storage.display_url, record, given_space, self.directions)
        self._study_id = record.id
        self.constraints = stored_constraints(self.storage, self._study_id, self.name, wanted_constraints)
        self._liveness = TrialLiveness(self.storage, self._study_id, grace_period=self.grace_period)
        self.fail_stale_trials()

    def _stored_study(self) -> StudyRecord:
        try:
            return self.storage.get_study(self.name)
        except StudyNotFoundError as error:
            raise StudyNotFoundError(
                f"{error} Opening a study without `search_space` reads an existing one; to create "
                f"{self.name!r}, pass search_space=... (and mode=..., default 'min')."
            ) from None

    # -- reading ---------------------------------------------------------------------------

    @property
    def direction(self) -> Direction:
        """``"min"`` or ``"max"`` for a single-objective study."""
        if len(self.directions) != 1:
            raise AttributeError(f"Study {self.name!r} has {len(self.directions)} objectives: use `.directions`.")
        return self.directions[0]

    @property
    def trials(self) -> list[Trial]:
        """Every trial of the study, in number order, with its parameters decoded."""
        return self._decode(self.storage.get_trials(self._study_id))

    def get_trials(self, states: Sequence[TrialState] | None = None) -> list[Trial]:
        return self._decode(self.storage.get_trials(self._study_id, states))

    def get_trial(self, number: int) -> Trial:
        """The trial with this number, as storage holds it now."""
        return self._decode([self._resolve(number)])[0]

    def _decode(self, trials: Sequence[Trial]) -> list[Trial]:
        return [replace(t, params=self.space.from_stored(t.params)) for t in trials]

    @property
    def best_trial(self) -> Trial:
        """The COMPLETE trial with the best value (the lowest number among ties)."""
        if len(self.directions) != 1:
            raise InvalidArgumentError(
                f"Study {self.name!r} has {len(self.directions)} objectives, so no single best trial: "
                "use `.best_trials` (the Pareto set)."
            )
        best = best_trials(self.get_trials([TrialState.COMPLETE]), self.directions)
        if not best:
            feasible = " that satisfies its constraints" if self.constraints else ""
            raise InvalidArgumentError(
                f"Study {self.name!r} has no COMPLETE trial{feasible} yet, so it has no best trial."
            )
        return best[0]

    @property
    def best_trials(self) -> list[Trial]:
        """The feasible COMPLETE trials that no other feasible COMPLETE trial beats, in number order.

        Feasible: satisfying the study's ``constraints`` (every trial, without constraints). With
        several objectives this is the Pareto set: no other trial is at least as good in every
        objective and better in one. With one objective it is the trials with the best value.
        Empty while no trial has completed.
        """
        return best_trials(self.get_trials([TrialState.COMPLETE]), self.directions)

    def trials_dataframe(self) -> pd.DataFrame:
        """Every trial as one row of a pandas DataFrame: number, state, value(s), ``params_<name>``,
        start and end (UTC), duration, the last step reported and how many, error, log directory and
        checkpoint; :class:`~lightning_hpo.table.TrialTable` lists the columns. Needs pandas
        (``pip install 'lightning-hpo[pandas]'``).

        Example:
            >>> from lightning_hpo import Float, Study
            >>> study = Study("table", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
            >>> study.optimize(lambda p: p["x"], n_trials=3)
            >>> study.trials_dataframe()[["number", "state"]].values.tolist()
            [[0, 'COMPLETE'], [1, 'COMPLETE'], [2, 'COMPLETE']]
        """
        from lightning_hpo.table import TrialTable

        return TrialTable.of(self).to_dataframe()

    def _resolve(self, trial: Trial | int) -> Trial:
        if isinstance(trial, Trial) and trial.id >= 0:
            return trial
        number = trial.number if isinstance(trial, Trial) else trial
        if not isinstance(number, int) or isinstance(number, bool):
            raise ArgumentTypeError(f"Expected a Trial or a trial number, but got {trial!r}.")
        for stored in self.storage.get_trials(self._study_id):
            if stored.number == number:
                return stored
        raise InvalidArgumentError(f"Study {self.name!r} has no trial number {number}.")

    # -- ask / tell ------------------------------------------------------------------------

    def ask(self, params: Mapping[str, Any] | None = None) -> Trial:
        """Start a RUNNING trial, with the sampler's parameters or the given ``params``."""
        trial = self.start_trial(params=params)
        assert trial is not None  # no max_active, so a trial is always created
        return trial

    def start_trial(self, *, params: Mapping[str, Any] | None = None, max_active: int | None = None) -> Trial | None:
        """:meth:`ask`, unless ``max_active`` trials are RUNNING, COMPLETE or PRUNED already (then ``None``).

        The trial loop starts its trials with this, so that the workers of a study together never
        run more than ``n_trials``. A stale trial's retry comes first (see ``retry_stale``).
        """
        stored = None if params is None else self.space.to_stored(params)  # checks them
        if stored is not None:
            params = self.space.from_stored(stored)  # numpy scalars as Python's
        self.fail_stale_trials()
        claims_points = getattr(self.sampler, "claims_points", False)  # a GridSampler runs a stale point again
        if params is None and self.retry_stale and not claims_points:
            retry = self._liveness.start_retry(max_active)
            if retry is not None:
                return replace(retry, params=self.space.from_stored(retry.params))
        created = start_enqueued(self, max_active) if params is None else None
        if created is None and params is None and claims_points:
            return start_claimed(self, max_active)
        if created is None:
            created = self.storage.create_trial(
                self._study_id,
                worker=self._liveness.worker,
                params=stored,
                max_active=max_active,
            )
        if created is None:
            return None
        self._liveness.own(created.id)
        try:
            if params is None:
                params = complete_params(self, created)
        except BaseException as error:
            self._finish(created, TrialState.FAIL, error=f"The sampler failed:\n{format_exception(error)}")
            raise
        return replace(created, params=dict(params))

    def fail_stale_trials(self) -> list[int]:
        """Mark FAIL (stale) every RUNNING trial whose worker is dead; return their numbers."""
        return self._liveness.fail_stale_trials()

    def count_finished(self) -> int:
        """The number of COMPLETE and PRUNED trials, from every run and worker (what ``n_trials`` counts)."""
        return len(self.storage.get_trials(self._study_id, [TrialState.COMPLETE, TrialState.PRUNED]))

    def report(self, trial: Trial | int, step: int, value: Any) -> None:
        """Store an intermediate value of a RUNNING trial (``nan`` is kept: pruners treat it as divergence).

        ``value`` is a number, or with several objectives a sequence of one number per objective,
        in the order of ``mode``: ``study.report(trial, step, (val_loss, n_params))``.
        """
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 2**63:
            raise InvalidArgumentError(f"`step` must be an int in [0, 2**63), but got {step!r}.")
        values = objective_values(value, self.directions, self.name, "A reported value")
        self.storage.report(self._resolve(trial).id, step, values[0] if len(values) == 1 else values)

    def should_prune(self, trial: Trial | int) -> bool:
        """Ask the pruner whether this RUNNING trial should stop, from what storage holds now."""
        if not self.pruner.can_prune:
            return False
        stored = self._resolve(trial)
        trials = self.storage.get_trials(self._study_id)
        current = next(t for t in trials if t.id == stored.id)
        return bool(self.pruner.prune(current, trials, directions=self.directions))

    def tell(
        self,
        trial: Trial | int,
        value: Any = None,
        *,
        state: TrialState | None = None,
        error: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        fail_kind: str | None = None,
    ) -> Trial:
        """Finish a RUNNING trial and return it as stored; ``trial`` itself (the object :meth:`ask` returned) is
        brought up to date too.

        * ``tell(trial, 0.12)``: COMPLETE with that value (a tuple for several objectives).
        * ``tell(trial, state=TrialState.COMPLETE)``: COMPLETE with its best intermediate value
          (with several objectives: its latest reported vector of finite values).
        * ``tell(trial, state=TrialState.PRUNED)``: PRUNED; its value is taken as for COMPLETE.
        * ``tell(trial, state=TrialState.FAIL, error="why")``.

        A nan or infinite value makes the trial FAIL with that reason: it never reaches a sampler.
        Telling a trial that already finished raises :class:`~lightning_hpo.exceptions.TrialStateError`.

        ``metrics``: outcome metrics by name (``{"n_params": 1.2e6}``), stored with the trial; a COMPLETE
        trial of a study with ``constraints`` must give every constrained metric. ``fail_kind``: why a
        FAIL trial failed, one of :data:`~lightning_hpo.trial.FAIL_KINDS` (default ``"error"``); only
        failures that are the configuration's fault (error, oom, nan, infeasible) teach the GPSampler.
        """
        stored = self._resolve(trial)
        metrics = metrics_as_floats(metrics)
        if fail_kind is not None and fail_kind not in FAIL_KINDS:
            raise InvalidArgumentError(f"`fail_kind` must be one of {', '.join(FAIL_KINDS)}, but got {fail_kind!r}.")
        if state is not None and not isinstance(state, TrialState):
            raise ArgumentTypeError(f"`state` must be a TrialState, but got {state!r}.")
        if state is TrialState.RUNNING:
            raise InvalidArgumentError("`state` must be COMPLETE, PRUNED or FAIL; a trial starts RUNNING.")
        if state is None:
            if value is None:
                raise InvalidArgumentError("tell() needs a value or a state (COMPLETE, PRUNED or FAIL).")
            state = TrialState.COMPLETE
        if state is TrialState.FAIL:
            self._store_metrics(stored, metrics, {FAIL_KIND: fail_kind or "error"})
            return self._finish(stored, TrialState.FAIL, error=error or "Failed (no reason given).")
        if value is None:
            value = self._best_intermediate(stored)
            if value is None and state is TrialState.COMPLETE:
                raise InvalidArgumentError(
                    f"Trial {stored.number} has no finite intermediate value, so tell() needs an explicit value."
                )
        values = None if value is None else objective_values(value, self.directions, self.name)
        bad = [v for v in values or () if not math.isfinite(v)]
        if bad:
            self._store_metrics(stored, metrics, {FAIL_KIND: "nan"})
            return self._finish(stored, TrialState.FAIL, error=f"The objective returned {bad[0]}, which is not finite.")
        if state is TrialState.COMPLETE and self.constraints:
            check_metrics(self.constraints, metrics, f"trial {stored.number}")
        bad_metrics = {n: v for n, v in metrics.items() if n in self.constraints and not math.isfinite(v)}
        if bad_metrics:
            self._store_metrics(stored, metrics, {FAIL_KIND: "nan"})
            return self._finish(stored, TrialState.FAIL, error=f"The constrained metrics {bad_metrics} are not finite.")
        self._store_metrics(stored, metrics, {})
        return self._finish(stored, state, values=values)

    def _store_metrics(self, trial: Trial, metrics: Mapping[str, float], attrs: Mapping[str, Any]) -> None:
        """Store ``metrics`` with the violations of the constraints on those that are finite, and ``attrs``, before the trial is finished, so no reader sees it finished without them."""
        attrs = dict(attrs)
        if metrics:
            attrs[METRICS] = {n: v if math.isfinite(v) else str(v) for n, v in metrics.items()}
            known = {n: v for n, v in metrics.items() if n in self.constraints and math.isfinite(v)}
            if known:  # all of them on a COMPLETE trial; a trial stopped early may know only some
                attrs[CONSTRAINT_VIOLATIONS] = violations({n: self.constraints[n] for n in known}, known)
        if attrs:
            self.storage.update_trial(trial.id, attrs=attrs)

    def _best_intermediate(self, trial: Trial) -> float | tuple[float, ...] | None:
        """A trial's value from its reports: the best one, or with several objectives the latest finite vector.

        Several objectives have no single best report (two reports may each beat the other in one
        objective), so the latest one stands for where training ended, as a trial's last
        checkpoint does.
        """
        current = self.storage.get_trial(trial.id)
        if len(self.directions) == 1:
            return current.best_intermediate(minimize=self.directions[0] == "min")
        finite = [v for _, v in sorted(current.intermediate_vectors.items()) if all(map(math.isfinite, v))]
        return finite[-1] if finite else None

    def _finish(
        self, trial: Trial, state: TrialState, *, values: Sequence[float] | None = None, error: str | None = None
    ) -> Trial:
        try:
            stored = self.storage.finish_trial(trial.id, state, values=values, error=error)
        finally:
            self._liveness.disown(trial.id)
        finished = replace(stored, params=self.space.from_stored(stored.params))
        trial._update_from(finished)  # the object ask() gave out reads the outcome too, not RUNNING
        return finished

    # -- enqueued configs, imported results, warm start ------------------------------------

    def enqueue(self, params: Mapping[str, Any], *, skip_if_exists: bool = False) -> None:
        """Run ``params`` as the next trial that any worker of the study starts (after the configs enqueued before).

        The config is stored, so another process or a later run picks it up too. ``params`` may name
        only some parameters: the sampler fills in the rest. Each enqueued config runs once.
        With ``skip_if_exists``, nothing is enqueued when the same config is enqueued already or a
        trial that did not fail ran with these values (what a script that enqueues on every run wants).

        Example:
            >>> from lightning_hpo import Float, Int, Study
            >>> study = Study("baseline", search_space={"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 4)},
            ...               storage=":memory:", seed=0)
            >>> study.enqueue({"lr": 1e-3, "layers": 2})
            >>> study.enqueue({"lr": 1e-2})
            >>> study.ask().params
            {'layers': 2, 'lr': 0.001}
            >>> study.ask().params["lr"]
            0.01
        """
        _trial_imports.enqueue(self, params, skip_if_exists=skip_if_exists)

    @property
    def enqueued(self) -> list[dict[str, Any]]:
        """The configs enqueued and not started yet, oldest first (the names given to :meth:`enqueue` only)."""
        return [self.space.from_stored(p) for p in self.storage.get_enqueued_params(self._study_id)]

    def add_trial(
        self,
        params: Mapping[str, Any],
        value: Any = None,
        intermediate_values: Mapping[int, Any] | None = None,
        *,
        state: TrialState = TrialState.COMPLETE,
    ) -> Trial:
        """Import a known result: a finished trial with these ``params`` and ``value`` (and reports), as if it had run.

        Samplers and pruners use it like any other trial, and it counts towards ``n_trials``.

        Args:
            params: a value for every parameter of the space.
            value: the objective value (one per objective); ``None`` takes the best of ``intermediate_values``.
            intermediate_values: ``step -> value`` reported while it ran (a sequence per step with
                several objectives), for the pruner.
            state: ``TrialState.COMPLETE`` or ``TrialState.PRUNED``.

        Example:
            >>> from lightning_hpo import Float, Study
            >>> study = Study("known", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
            >>> study.add_trial({"x": 0.5}, 0.25, intermediate_values={1: 0.4, 2: 0.25}).state
            <TrialState.COMPLETE: 'COMPLETE'>
        """
        return _trial_imports.import_trial(self, params, value, intermediate_values, state=state, attrs={})

    def add_trials_from(self, source: Study | str, *, fill: Mapping[str, Any] | None = None) -> list[Trial]:
        """Warm start: import the COMPLETE and PRUNED trials of another study (e.g. one whose space was narrower).

        Each imported trial keeps its values and reports, and ``attrs["warm_start_from"]`` names its
        origin (``"<study>#<number>"``); calling this again imports only what is new, so a script that
        does it on every run stays correct. A trial is **dropped**, not clipped, when one of its values
        lies outside the new space or a parameter of the new space is missing from it (and from
        ``fill``): clipping would credit a value to a config that never ran. Parameters the new space
        no longer has are left out. Dropped trials are listed in a warning.

        Args:
            source: a :class:`Study`, or the name of a study in this study's storage. Its mode must be this
                study's.
            fill: values of parameters that are new in this space, as the source's trials ran with them
                (e.g. ``{"momentum": 0.0}`` after adding momentum to a study of plain SGD).

        Example:
            >>> from lightning_hpo import Float, Study
            >>> old = Study("narrow", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
            >>> old.optimize(lambda p: p["x"], n_trials=3)
            >>> wide = Study("wide", search_space={"x": Float(0.0, 2.0), "y": Float(0.0, 1.0)},
            ...              storage=old.storage, seed=0)
            >>> len(wide.add_trials_from("narrow", fill={"y": 0.5}))
            3

        Returns:
            the trials imported by this call.
        """
        return _trial_imports.add_trials_from(self, source, fill=fill)

    # -- the loop --------------------------------------------------------------------------

    def optimize(
        self,
        fn: Objective,
        n_trials: int | None = None,
        timeout: float | None = None,
        *,
        max_consecutive_failures: int | None = 5,
        trial_timeout: float | None = None,
        show_progress: bool = False,
        stopper: RegretBoundStopper | str | None = None,
    ) -> None:
        """Run ``fn(params) -> value`` on new trials until the study has ``n_trials`` finished trials.

        ``fn`` may also return ``(value, metrics)``, ``metrics`` a dict of outcome metrics (what the
        study's ``constraints`` are checked on).

        ``n_trials`` counts COMPLETE and PRUNED trials of the whole study, from every run and every
        worker, so rerunning the same call resumes rather than starts over. Failed trials don't
        count. ``fn`` may raise :class:`~lightning_hpo.TrialPruned` to end its trial as PRUNED.

        Args:
            fn: the objective, called with a dict of parameters.
            n_trials: the number of finished trials to reach; ``None`` runs until ``timeout``.
            timeout: seconds after which no new trial starts.
            max_consecutive_failures: stop with :class:`~lightning_hpo.exceptions.TrialsFailingError`
                after this many failures in a row in this process when they do not depend on the
                configuration (``None``: never; the rule is in :mod:`lightning_hpo._failures`).
            trial_timeout: seconds after which a running trial is stopped and marked FAIL
                (uses SIGALRM: main thread, POSIX only).
            show_progress: show a live progress display.
            stopper: ends the study before ``n_trials`` once more trials are unlikely to beat the best by
                more than the evaluation noise: a :class:`~lightning_hpo.RegretBoundStopper`, ``"regret"``
                (one with its defaults) or ``None``. The decision is stored: other workers with a
                stopper stop too, and a rerun with one runs nothing (see :mod:`lightning_hpo.stopping`).
        """
        if not callable(fn):
            raise ArgumentTypeError(f"`fn` must be callable, but got {fn!r}.")
        options = RunOptions(
            n_trials=n_trials,
            timeout=timeout,
            max_consecutive_failures=max_consecutive_failures,
            trial_timeout=trial_timeout,
            stopper=stopper,
        )

        def run(trial: Trial) -> Trial:
            try:
                outcome = fn(dict(trial.params))
            except TrialPruned:
                return self.tell(trial, state=TrialState.PRUNED)
            value, metrics = value_and_metrics(outcome)
            return self.tell(trial, value, metrics=metrics)

        from lightning_hpo.progress import StudyProgress

        with StudyProgress(self, n_trials=n_trials, enabled=show_progress) as progress:
            self.run_trials(run, options, observers=[progress])

    def run_trials(
        self, run: Callable[[Trial], Trial], options: RunOptions, *, observers: Sequence[TrialObserver] = ()
    ) -> None:
        """The trial loop shared by :meth:`optimize`, the Tuner and the CLI (see :mod:`lightning_hpo._loop`).

        ``run`` gets a RUNNING trial and must return it finished; ``observers`` are told of each
        trial this process starts and finishes.
        """
        run_trials(self, run, options, observers)

    def __repr__(self) -> str:
        return f"Study({self.name!r}, mode={mode_text(self.directions)}, storage={self.storage.display_url!r})"
