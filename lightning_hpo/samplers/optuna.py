"""Any Optuna sampler (TPE, CMA-ES, NSGA-II, QMC, ...) as a lightning_hpo sampler.

Each suggestion rebuilds an in-memory Optuna study from the study's trials (the storage stays the
single source of truth) and asks the Optuna sampler for one trial, through its relative and
independent sampling as ``Study.ask`` does:

* the domains become ``FloatDistribution`` / ``IntDistribution`` (``log``, ``step``) and
  ``CategoricalDistribution`` over the choice indices (Optuna then needs no JSON-safe choices);
* COMPLETE trials pass their values, PRUNED and RUNNING trials their intermediate values, so TPE
  ranks pruned trials and its ``constant_liar`` sees pending ones; FAIL trials pass as FAIL;
* a trial holds only its own parameters, so a parameter absent from a trial (an inactive
  conditional one) is absent from its Optuna trial too;
* what the Optuna sampler writes into the system attributes of the trial it samples and of the
  study (CMA-ES's state, NSGA-II's generations, QMC's sample counter) is stored with our trial
  (``attrs["sampler_state"]``) and put back when the next suggestion rebuilds the study, so those
  samplers continue from where they were, in any worker.

Trial numbers are kept: trial ``n`` is Optuna's trial ``n`` (numbers without parameters yet become
FAIL placeholders). Optuna's samplers keep their own random state, so unlike the other samplers
here a suggestion depends on what the sampler object drew before, not only on ``(seed, number)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lightning_hpo.exceptions import ArgumentTypeError, MissingExtraError
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.space import Categorical, Domain, Float, SearchSpace
from lightning_hpo.trial import SAMPLER_STATE, Trial, TrialState

if TYPE_CHECKING:
    import optuna

__all__ = ["OptunaSampler"]

_STATES = {
    TrialState.COMPLETE: "COMPLETE",
    TrialState.PRUNED: "PRUNED",
    TrialState.FAIL: "FAIL",
    TrialState.RUNNING: "RUNNING",
}


class OptunaSampler(Sampler):
    """Suggests trials with an Optuna sampler: ``OptunaSampler(optuna.samplers.TPESampler(seed=0))``.

    Multi-objective studies work with the samplers that support them (TPE, NSGA-II, QMC, random);
    CMA-ES handles one objective. Needs Optuna (``pip install 'lightning-hpo[optuna]'``).

    Args:
        optuna_sampler: an instance of an ``optuna.samplers.BaseSampler`` subclass.

    Example:
        >>> import optuna
        >>> from lightning_hpo import Float, Study
        >>> study = Study("tpe", search_space={"x": Float(-3.0, 3.0)}, storage=":memory:",
        ...               sampler=OptunaSampler(optuna.samplers.TPESampler(seed=0)))
        >>> study.optimize(lambda p: (p["x"] - 1.0) ** 2, n_trials=15)
        >>> abs(study.best_trial.params["x"] - 1.0) < 1.0
        True
    """

    def __init__(self, optuna_sampler: optuna.samplers.BaseSampler) -> None:
        optuna = _import_optuna()
        if not isinstance(optuna_sampler, optuna.samplers.BaseSampler):
            raise ArgumentTypeError(
                "OptunaSampler: `optuna_sampler` must be an Optuna sampler instance, e.g. "
                f"optuna.samplers.TPESampler(seed=0), but got {optuna_sampler!r}."
            )
        super().__init__(seed=0)  # unused: the Optuna sampler has its own seed
        self.optuna_sampler = optuna_sampler
        self._states: dict[int, dict[str, Any]] = {}
        # The Optuna trials of finished trials, from the last suggestion: they never change (see _FrozenCache).
        self._cache = _FrozenCache()
        self._lock = threading.Lock()

    def sample(
        self, space: SearchSpace, trials: Sequence[Trial], *, number: int, directions: Sequence[str]
    ) -> dict[str, Any]:
        optuna = _import_optuna()
        distributions = {name: _distribution(domain) for name, domain in space.items()}
        with _quiet_optuna(optuna):
            study = optuna.create_study(
                sampler=self.optuna_sampler,
                directions=["minimize" if d == "min" else "maximize" for d in directions],
            )
        restored = _restore_study_attrs(study, trials)
        with self._lock:
            cache = self._cache
        frozen, cache = _frozen_trials(optuna, space, distributions, trials, cache)
        with self._lock:
            self._cache = cache
        study.add_trials(frozen)
        asked = study.ask(fixed_distributions=distributions)
        state = {
            "trial": _json_safe(study._storage.get_trial_system_attrs(asked._trial_id)),
            "study": _json_safe(
                {
                    key: value
                    for key, value in study._storage.get_study_system_attrs(study._study_id).items()
                    if restored.get(key, _MISSING) != value
                }
            ),
        }
        with self._lock:
            self._states[number] = state
        return {name: space[name].from_stored(value) for name, value in asked.params.items()}

    def take_trial_attrs(self, number: int) -> dict[str, Any]:
        with self._lock:
            state = self._states.pop(number, None)
        return {SAMPLER_STATE: state} if state and (state["trial"] or state["study"]) else {}

    def __repr__(self) -> str:
        return f"OptunaSampler({self.optuna_sampler!r})"


_MISSING = object()


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtraError(
            "OptunaSampler needs Optuna: pip install 'lightning-hpo[optuna]' (or pip install optuna)."
        ) from None
    return optuna


@contextlib.contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    """Without Optuna's "A new study created in memory" line on every suggestion."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _distribution(domain: Domain) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(domain, Float):
        return FloatDistribution(domain.low, domain.high, log=domain.log)
    if isinstance(domain, Categorical):  # by index: Optuna needs choices it can store, ours may be tuples
        return CategoricalDistribution(list(range(len(domain.choices))))
    return IntDistribution(domain.low, domain.high, log=domain.log, step=domain.step)


@dataclasses.dataclass(frozen=True)
class _FrozenCache:
    """The Optuna trials built for the finished trials of one search space, by ``(id, number, end time)``.

    A finished trial's parameters, values and reports never change, and its end time tells it from
    any other trial with that id and number (a deleted study's), so its Optuna trial can be reused.
    """

    space: str = ""
    trials: Mapping[tuple[int, int, Any], Any] = dataclasses.field(default_factory=dict)


def _frozen_trials(
    optuna: Any,
    space: SearchSpace,
    distributions: dict[str, Any],
    trials: Sequence[Trial],
    cache: _FrozenCache = _FrozenCache(),  # noqa: B008 - immutable
) -> tuple[list[Any], _FrozenCache]:
    """Our trials as Optuna trials numbered as ours (numbers missing from ``trials`` as FAIL placeholders),
    and the cache for the next call."""
    by_number = {t.number: t for t in trials}
    cached = cache.trials if cache.space == space.fingerprint() else {}
    kept: dict[tuple[int, int, Any], Any] = {}
    frozen = []
    for number in range(max(by_number, default=-1) + 1):
        trial = by_number.get(number)
        if trial is None:
            frozen.append(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
            continue
        key = (trial.id, trial.number, trial.datetime_complete)
        if trial.state is not TrialState.RUNNING and key in cached:
            frozen.append(kept.setdefault(key, cached[key]))
            continue
        params = {name: space[name].to_stored(value) for name, value in trial.params.items() if name in space}
        finished_with_values = trial.state is TrialState.COMPLETE and trial.values is not None
        created = optuna.trial.create_trial(
            state=optuna.trial.TrialState[_STATES[trial.state]],
            params=params,
            distributions={name: distributions[name] for name in params},
            values=list(trial.values) if finished_with_values else None,
            intermediate_values={s: v for s, v in trial.intermediate_values.items() if math.isfinite(v)},
            system_attrs=dict((trial.attrs.get(SAMPLER_STATE) or {}).get("trial") or {}),
        )
        frozen.append(_adopted(created))
        if trial.state is not TrialState.RUNNING:
            kept[key] = frozen[-1]
    return frozen, _FrozenCache(space.fingerprint(), kept)


def _adopted(trial: Any) -> Any:
    """``trial`` as an Optuna trial that copying returns as it is.

    Optuna's in-memory storage deep-copies every trial added to a study, which was most of the cost
    of a suggestion; these trials are built for one throwaway study, which is the only thing that
    ever holds them, so the copy protects nothing.
    """
    adopted = object.__new__(_adopted_class(type(trial)))
    adopted.__dict__.update(trial.__dict__)
    return adopted


@functools.lru_cache(maxsize=1)
def _adopted_class(frozen_trial: type) -> type:
    def keep(self: Any, memo: dict[int, Any]) -> Any:
        return self

    return type("AdoptedFrozenTrial", (frozen_trial,), {"__deepcopy__": keep})


def _restore_study_attrs(study: Any, trials: Sequence[Trial]) -> dict[str, Any]:
    """Put back the study system attributes the Optuna sampler wrote, the latest trial's winning; return them."""
    restored: dict[str, Any] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        restored.update((trial.attrs.get(SAMPLER_STATE) or {}).get("study") or {})
    for key, value in restored.items():
        study._storage.set_study_system_attr(study._study_id, key, value)
    return restored


def _json_safe(attrs: dict[str, Any]) -> dict[str, Any]:
    """The attributes that survive JSON (trial attrs are JSON); others are dropped, costing only continuity."""
    kept = {}
    for key, value in attrs.items():
        try:
            kept[key] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            continue
    return kept
