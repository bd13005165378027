"""Stopping a study in time: end it once further trials are unlikely to beat the best by more than
the noise of an evaluation.

:class:`RegretBoundStopper` follows Makarova et al., "Automatic termination for hyperparameter
optimization" (AutoML 2022), as Optuna's ``Terminator`` does. The study's GP (the GPSampler's model,
:mod:`lightning_hpo.samplers._gp_model`) bounds the simple regret of the best trial so far: for a
minimized objective, the lowest upper confidence bound among the points tried, minus the lowest
lower confidence bound anywhere in the space. When that bound falls below the noise of one
evaluation, no further trial can be told apart from the best with confidence, and more search
mostly fits the validation set's noise.

The decision is stored with the study (its study attribute ``"stopped"``): every worker that runs the
study with a stopper stops too, and rerunning the study with a stopper reports the decision and runs
nothing. A run without a stopper (``stopper=None``, ``--tune.stopper none``) ignores the decision and
continues the study.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.trial import VALUE_SPREAD, Trial, TrialState

if TYPE_CHECKING:
    import torch

    from lightning_hpo.study import Study

__all__ = ["RegretBoundStopper", "StopDecision", "STOPPED", "announce", "check_stopper", "recorded_stop"]

#: The study attribute holding the stop decision (a :class:`StopDecision` as JSON).
STOPPED = "stopped"
#: Names accepted by :func:`check_stopper` (the CLI's ``--tune.stopper``).
STOPPER_NAMES = ("regret", "none")


@dataclass(frozen=True)
class StopDecision:
    """Why a study stopped: its regret bound fell below the evaluation noise.

    Attributes:
        regret_bound: the upper bound on the simple regret of the best trial, in the objective's units.
        noise: what it was compared with, in the same units.
        noise_source: ``"value_spread"`` (the spread over folds or seeds that trials carry),
            ``"gp"`` (the noise the GP inferred) or ``"threshold"`` (a fixed threshold given).
        n_trials: the COMPLETE trials the decision was made on.
    """

    regret_bound: float
    noise: float
    noise_source: str
    n_trials: int

    @property
    def reason(self) -> str:
        """One line, e.g. ``regret bound 0.003 < noise 0.004 (value_spread) after 27 trials``."""
        return (
            f"regret bound {self.regret_bound:.4g} < {_SOURCE_WORDS[self.noise_source]} {self.noise:.4g} "
            f"after {self.n_trials} trials"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> StopDecision:
        return cls(**data)


_SOURCE_WORDS = {"value_spread": "noise", "gp": "noise (GP estimate)", "threshold": "threshold"}


class RegretBoundStopper:
    """Stop a single-objective study when its regret bound falls below the evaluation noise.

    Before each new trial, the loop asks :meth:`decide`. Once the study has ``min_trials`` COMPLETE
    trials, the GP (the GPSampler's model, fitted anew on them) gives each point a confidence
    interval ``mean +- sqrt(beta) * sd``, with Srinivas et al.'s ``beta`` (it grows slowly with the
    number of trials and parameters), scaled down by 5 as in Makarova et al. and Optuna once the
    study has 30 trials (before, the GP rests on too few points for the smaller one). The
    regret bound is the best upper confidence bound over the space minus the best lower confidence
    bound among the points tried (for a maximized objective; mirrored for a minimized one). It is
    computed in the GP's outcome space (values softened, warped and standardized) and converted back
    to the objective's units through the slope of the values against their GP outcomes among the
    best quarter of trials, where the bound is decided.

    The noise it is compared with, in this order:

    * ``threshold``, when given (in the objective's units);
    * the median ``trial.attrs["value_spread"]`` (the standard deviation over cross-validation folds
      or repeated seeds) of the COMPLETE trials that carry one: the incumbent's own spread, which
      Makarova et al. use, comes from a handful of folds, and the median over all trials is steadier;
    * otherwise the noise the GP inferred (its likelihood's standard deviation, in the objective's
      units). On a deterministic objective it is tiny, and the study rarely stops: give
      ``threshold`` (the smallest improvement worth another trial) there.

    Args:
        min_trials: COMPLETE trials needed before the study may stop (at least 2; the GP needs a
            spread of points to bound anything, and Optuna's Terminator waits for 20 as well).
        threshold: a fixed noise level, in the objective's units (> 0), instead of the measured one.
        seed: seed of the search for the best upper confidence bound; the decision is a function
            of the stored trials and ``seed``, so every worker reaches the same one.

    Example:
        >>> from lightning_hpo import Float, RegretBoundStopper, Study
        >>> study = Study("stop", search_space={"x": Float(-1.0, 1.0)}, storage=":memory:", seed=0)
        >>> study.optimize(lambda p: p["x"] ** 2, n_trials=100,
        ...                stopper=RegretBoundStopper(min_trials=10, threshold=0.01))  # doctest: +SKIP
    """

    def __init__(self, *, min_trials: int = 20, threshold: float | None = None, seed: int = 0) -> None:
        if not isinstance(min_trials, int) or isinstance(min_trials, bool):
            raise ArgumentTypeError(
                f"RegretBoundStopper: `min_trials` must be an int, but got {min_trials!r} ({type(min_trials).__name__})."
            )
        if min_trials < 2:
            raise InvalidArgumentError(
                f"RegretBoundStopper: `min_trials >= 2` must hold (the GP needs two points), but got {min_trials}."
            )
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
                raise ArgumentTypeError(
                    f"RegretBoundStopper: `threshold` must be a number or None, but got {threshold!r} "
                    f"({type(threshold).__name__})."
                )
            if not (math.isfinite(threshold) and threshold > 0):
                raise InvalidArgumentError(
                    f"RegretBoundStopper: `threshold > 0` must hold (a noise level in the objective's units), but "
                    f"got threshold={threshold!r}. Leave it None to compare with the measured noise."
                )
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ArgumentTypeError(f"RegretBoundStopper: `seed` must be an int, but got {seed!r}.")
        self.min_trials = min_trials
        self.threshold = None if threshold is None else float(threshold)
        self.seed = seed

    def decide(self, study: Study) -> StopDecision | None:
        """The stored decision of ``study``, or a new one (then stored), or ``None`` to go on."""
        recorded = recorded_stop(study)
        if recorded is not None:
            return recorded
        decision = self.evaluate(study)
        if decision is None:
            return None
        return _record(study, decision)

    def evaluate(self, study: Study) -> StopDecision | None:
        """A decision from ``study``'s trials alone (nothing read or written but the trials)."""
        check = self.measure(study)
        if check is None or check.regret_bound >= check.noise:
            return None
        return check

    def measure(self, study: Study) -> StopDecision | None:
        """What :meth:`evaluate` compares, whether or not it stops: the regret bound and the noise, as
        a :class:`StopDecision`'s fields (the study stops when ``regret_bound < noise``), or ``None``
        before ``min_trials`` COMPLETE trials. Benchmarks read it to try other thresholds."""
        if len(study.directions) != 1:
            raise InvalidArgumentError(
                f"RegretBoundStopper handles one objective, but study {study.name!r} has {len(study.directions)} "
                "(mode=[...]). Run it without a stopper, with n_trials or a timeout."
            )
        complete = [t for t in study.get_trials([TrialState.COMPLETE]) if _finite_value(t)]
        if len(complete) < self.min_trials:
            return None
        bound = regret_bound(study, complete, seed=self.seed)
        noise, source = self._noise(complete, bound.gp_noise)
        return StopDecision(regret_bound=bound.value, noise=noise, noise_source=source, n_trials=len(complete))

    def _noise(self, complete: list[Trial], gp_noise: float) -> tuple[float, str]:
        if self.threshold is not None:
            return self.threshold, "threshold"
        spreads = [s for s in (_spread(t) for t in complete) if s is not None]
        if spreads:
            return statistics.median(spreads), "value_spread"
        return gp_noise, "gp"

    def __repr__(self) -> str:
        return f"RegretBoundStopper(min_trials={self.min_trials}, threshold={self.threshold}, seed={self.seed})"


@dataclass(frozen=True)
class RegretBound:
    """:func:`regret_bound`'s result, in the objective's units."""

    value: float
    gp_noise: float


def regret_bound(study: Study, trials: list[Trial], *, seed: int = 0) -> RegretBound:
    """The upper bound on the simple regret of the best of ``trials`` (COMPLETE, finite), and the
    evaluation noise the GP inferred, both in the objective's units (see :class:`RegretBoundStopper`)."""
    trials = sorted(trials, key=lambda t: t.number)
    evidence = Evidence.of(study, trials)
    model = evidence.fit(seed)
    outcome_bound = evidence.bound(model, _beta(len(study.space), len(trials)), seed)
    slope = evidence.units_per_outcome()
    return RegretBound(value=outcome_bound * slope, gp_noise=evidence.gp_noise(model) * slope)


@dataclass(frozen=True)
class Evidence:
    """The trials as the GP sees them: model inputs ``X`` (``n x d``) and outcomes ``Y`` (``n x 1``,
    larger is better), in the space ``gp_space``. The steps of :func:`regret_bound` are its methods, so
    that benchmarks/stopping_replay.py can recompute variants of the bound from recorded trials."""

    gp_space: Any
    X: torch.Tensor
    Y: torch.Tensor

    @classmethod
    def of(cls, study: Study, trials: list[Trial]) -> Evidence:
        return cls.from_params(
            study.space, study.directions[0], [t.params for t in trials], [t.values[0] for t in trials]
        )

    @classmethod
    def from_params(cls, space: Any, direction: str, params: Sequence[Any], values: Sequence[float]) -> Evidence:
        import torch

        from lightning_hpo.samplers._gp_space import GPSpace

        gp_space = GPSpace(space)
        X = gp_space.from_unit(torch.tensor([space.encode(p) for p in params], dtype=torch.float64))
        sign = 1.0 if direction == "max" else -1.0
        Y = torch.tensor([[v * sign] for v in values], dtype=torch.float64)
        return cls(gp_space, X, Y)

    def fit(self, seed: int, Yvar: torch.Tensor | None = None) -> Any:
        """The study's GP (the GPSampler's model) fitted on the trials; ``Yvar`` (``n x 1``, in the
        objective's units squared): each value's known noise variance, as the sampler passes it."""
        import torch

        from lightning_hpo.samplers._gp_model import build_model, fit_hyperparameters
        from lightning_hpo.samplers.gp import _isolated

        with _isolated(torch.device("cpu")):
            torch.manual_seed(seed)
            return build_model(
                self.X, self.Y, self.gp_space, fit_hyperparameters(self.X, self.Y, self.gp_space, Yvar), Yvar
            )

    def bound(self, model: Any, beta: float, seed: int) -> float:
        """The regret bound in the GP's outcome units: the best upper confidence bound anywhere (a
        search as the sampler's) minus the best lower confidence bound among the points tried."""
        import torch
        from botorch.acquisition import UpperConfidenceBound

        from lightning_hpo.samplers._gp_acquisition import maximize
        from lightning_hpo.samplers._gp_model import lengthscales
        from lightning_hpo.samplers.gp import _isolated

        X, Y, gp_space = self.X, self.Y, self.gp_space
        with _isolated(torch.device("cpu")):
            with torch.no_grad():
                posterior = model.posterior(X)
                lower_tried = (posterior.mean - beta**0.5 * posterior.variance.sqrt()).max()
                # Inactive conditional parameters pinned, as the sampler's acquisition sees them.
                upper = gp_space.on_pinned_inputs(UpperConfidenceBound(model, beta=beta))
                generator = torch.Generator().manual_seed(seed + len(X))
            best = maximize(
                upper,
                gp_space,
                incumbents=X[Y[:, 0].topk(min(5, len(Y))).indices],
                scales=lengthscales(model, gp_space),
                generator=generator,
            )
            with torch.no_grad():
                upper_anywhere = torch.maximum(upper(best.reshape(1, 1, -1))[0], upper(X.unsqueeze(-2)).max())
        return max(float(upper_anywhere - lower_tried), 0.0)

    def units_per_outcome(self) -> float:
        from lightning_hpo.samplers._gp_model import model_outcomes

        return _units_per_outcome(self.Y[:, 0], model_outcomes(self.Y)[:, 0])

    @staticmethod
    def gp_noise(model: Any) -> float:
        """The noise sd the GP inferred, in its outcome units."""
        return float(model.likelihood.noise.sqrt().reshape(-1)[0])


#: Trials before which the bound keeps Srinivas et al.'s full confidence parameter (see :func:`_beta`).
FULL_BETA_TRIALS = 30


def _beta(n_params: int, n_trials: int, delta: float = 0.1) -> float:
    """GP-UCB's confidence parameter (Srinivas et al. 2010, Theorem 1), divided by 5 as Makarova et
    al. and Optuna's Terminator use it once the study has ``FULL_BETA_TRIALS`` trials. On fewer, the
    GP's hyperparameters rest on a handful of points, and the divided bound stopped studies at their
    first looks that later trials beat by several times the noise (``benchmarks/STOPPING.md``)."""
    beta = _srinivas_beta(n_params, n_trials, delta)
    return beta if n_trials < FULL_BETA_TRIALS else beta / 5.0


def _srinivas_beta(n_params: int, n_trials: int, delta: float = 0.1) -> float:
    """GP-UCB's confidence parameter (Srinivas et al. 2010, Theorem 1), undivided."""
    return 2.0 * math.log(max(n_params, 1) * n_trials**2 * math.pi**2 / (6.0 * delta))


def _units_per_outcome(values: torch.Tensor, outcomes: torch.Tensor, share: float = 0.25) -> float:
    """Objective units per unit of GP outcome near the best values: the least-squares slope of the
    values against their outcomes among the best ``share`` of trials (at least 5). The GP's outcome
    transform is monotone but not linear, and the bound matters near the best."""
    k = max(5, int(len(values) * share))
    top = values.topk(min(k, len(values))).indices
    y, z = values[top], outcomes[top]
    dz = z - z.mean()
    slope = float((dz * (y - y.mean())).sum() / (dz * dz).sum()) if float((dz * dz).sum()) > 0 else math.nan
    if not (math.isfinite(slope) and slope > 0):  # too few distinct values: the overall scale
        slope = float(values.std()) if len(values) > 1 else 1.0
    return slope


def _finite_value(trial: Trial) -> bool:
    return trial.values is not None and all(math.isfinite(v) for v in trial.values)


def _spread(trial: Trial) -> float | None:
    """The trial's ``VALUE_SPREAD`` (one number, or one per objective: the first), if it has one."""
    spread = trial.attrs.get(VALUE_SPREAD)
    if isinstance(spread, (list, tuple)):
        spread = spread[0] if spread else None
    if isinstance(spread, bool) or not isinstance(spread, (int, float)) or not math.isfinite(spread):
        return None
    return float(spread)


def recorded_stop(study: Study) -> StopDecision | None:
    """The stop decision stored with ``study``, if any worker or earlier run made one."""
    try:
        stored = study.storage.study_attr_get(study._study_id, STOPPED)
    except NotImplementedError:
        return None
    return None if stored is None else StopDecision.from_json(stored)


def _record(study: Study, decision: StopDecision) -> StopDecision:
    """Store ``decision`` unless another worker stored one first; the stored one."""
    try:
        stored = study.storage.study_attr_setdefault(study._study_id, STOPPED, decision.to_json())
    except NotImplementedError:  # a storage without study attributes: this process stops alone
        return decision
    return StopDecision.from_json(stored)


def announce(study: Study, decision: StopDecision, observers: Sequence[Any]) -> None:
    """Say why ``study`` stopped: through the observers that show it (``stopped(decision) -> True``,
    e.g. the progress display), else on stderr."""
    shown = [getattr(observer, "stopped", lambda decision: False)(decision) for observer in observers]
    if not any(shown):
        print(f"lightning_hpo: study {study.name!r} stopped: {decision.reason}.", file=sys.stderr)


def check_stopper(stopper: Any) -> RegretBoundStopper | None:
    """``stopper`` as a stopper or ``None``: ``"regret"`` is a :class:`RegretBoundStopper` with its
    defaults, ``"none"`` no stopper; anything else is a clear error."""
    if stopper is None or isinstance(stopper, RegretBoundStopper):
        return stopper
    if isinstance(stopper, str):
        name = stopper.strip().lower()
        if name not in STOPPER_NAMES:
            raise InvalidArgumentError(
                f"`stopper` must be one of {', '.join(map(repr, STOPPER_NAMES))} (or a RegretBoundStopper), but got "
                f"{stopper!r}."
            )
        return RegretBoundStopper() if name == "regret" else None
    raise ArgumentTypeError(
        f"`stopper` must be a RegretBoundStopper, 'regret', 'none' or None, but got {stopper!r} "
        f"({type(stopper).__name__})."
    )
