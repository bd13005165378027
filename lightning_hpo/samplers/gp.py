"""Bayesian optimization with a BoTorch Gaussian process: the default sampler of a study.

This module adapts trials to tensors and back; the maths lives in ``_gp_space`` (how the model sees
the space), ``_gp_model`` (the GP) and ``_gp_acquisition`` (qLogNEI, qLogNEHVI for several
objectives, and their maximization), which know nothing of studies. BoTorch is imported on the
first suggestion that needs it, so creating a sampler (and a study) stays cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.samplers.uniform import sobol_point
from lightning_hpo.space import SearchSpace
from lightning_hpo.trial import Trial, TrialState

if TYPE_CHECKING:
    import torch

__all__ = ["GPSampler", "curve_informed", "default_n_startup_trials", "fit_subset", "fitted_history_size"]

#: Quasi-Monte-Carlo samples of the posterior that estimate qLogNEI.
MC_SAMPLES = 128
#: The same for qLogNEHVI, by number of objectives: its cost grows with them (a box decomposition
#: of the sampled Pareto front per sample), steeply so with 3 objectives.
MO_MC_SAMPLES = {2: 64, 3: 32}
#: How many of the best observed points the acquisition search also starts from and near.
N_INCUMBENTS = 5
#: Histories up to this many observations get their own fit of the GP's hyperparameters.
REFIT_EVERY_TRIAL_UNTIL = 30
#: Most observations the GP's hyperparameters are fitted to (see :func:`fit_subset`); the GP
#: still conditions on all of them.
MAX_FITTED_OBSERVATIONS = 1000


def default_n_startup_trials(dimension: int) -> int:
    """Sobol trials before the GP takes over: ``dimension + 4``, at least 5 and at most 10.

    The GP needs a spread of points to fit a lengthscale per parameter, so more in more
    dimensions, but not many: its lengthscale prior grows with the dimension (see
    ``_gp_model._lengthscale_settings``), so its own choices soon beat further space-filling; a cap
    of 10 beat a cap of 20 on the five benchmark tasks with 7 or more parameters
    (``benchmarks/GP_DECISIONS.md``). Optuna's GPSampler uses 10 for every space.
    """
    return max(5, min(dimension + 4, 10))


def fitted_history_size(n_observations: int) -> int:
    """How many observations (the first, by trial number) the GP's hyperparameters are fitted to.

    Every history up to 30 observations gets its own fit; after that, a new fit each time the
    history has grown by a tenth (33, 36, 39, 42, 46, 50, 55, ...), and the GP conditions on
    all observations with the last fit's hyperparameters in between. Hyperparameters move little
    when a tenth more data arrives, and fitting them is a third of a suggestion's time.
    """
    size = min(n_observations, REFIT_EVERY_TRIAL_UNTIL)
    while size + max(size // 10, 1) <= n_observations:
        size += max(size // 10, 1)
    return size


def fit_subset(n: int, at_most: int = MAX_FITTED_OBSERVATIONS) -> torch.Tensor:
    """Indices (ascending) of the ``n`` observations, in trial order, that the hyperparameters are
    fitted to: all of them up to ``at_most``; past it, ``at_most`` of them spread evenly in trial
    order.

    A fit costs the cube of its size at every step (a Cholesky factor and its gradient), so an
    unbounded fit would grow to dominate a long study. An even thinning keeps the fit unbiased
    (a subset weighted towards the best points fitted worse, ``benchmarks/GP_DECISIONS.md``), and
    it is a function of ``n`` alone, so any process picks the same.
    """
    from lightning_hpo.samplers._gp_model import even_thinning

    return even_thinning(n, at_most)


@dataclass(frozen=True)
class _Fit:
    """The last hyperparameters fitted, and what they were fitted to."""

    key: tuple[Any, ...]
    hyperparameters: dict[str, torch.Tensor]


class GPSampler(Sampler):
    """Bayesian optimization: a Gaussian process (BoTorch) proposes where the objective may improve.

    * **Start**: while fewer than ``n_startup_trials`` trials have a value, trial ``n`` takes point
      ``n`` of a scrambled Sobol sequence (as :class:`SobolSampler` would).
    * **Model**: a GP on the encoded unit cube in float64 (log-scaled parameters in log space),
      outcomes made closer to normal (outliers softened, then a Yeo-Johnson warp, see
      ``_gp_model``) and standardized, noise inferred. Int parameters are points of their grid and
      categorical ones have their own kernel (no order among choices), so only valid values are
      ever proposed and none is rounded from a continuous optimum. In spaces of 8 or more Float
      and Int parameters the GP is also fitted under a wider lengthscale prior, kept where it
      predicts the observed values clearly better (``_gp_model.fit_objective_model``).
    * **Acquisition**: ``qLogNoisyExpectedImprovement``, with the study's RUNNING trials as pending
      points, so parallel workers do not propose the same point. ``mode="max"`` flips the sign
      of the values. Several objectives get a GP each and
      ``qLogNoisyExpectedHypervolumeImprovement`` (qLogNEHVI), also with the RUNNING trials
      pending, above a reference point set from the data: in the GP's outcome space (each
      objective to maximize, softened, warped, standardized), the worst observed value of each
      objective minus a tenth of its observed range; or the user's ``reference_point``, placed there
      by the same transforms. Four objectives or more get qLogNParEGO
      (qLogNEI of a random Chebyshev scalarization, drawn anew for each trial) instead: qLogNEHVI's
      box decompositions grow too costly there (see ``_gp_acquisition``).
    * **What it learns from**: COMPLETE trials; PRUNED trials at the final value their learning
      curve predicts (at most the best full run's), with that prediction's variance as known noise
      (:func:`curve_informed`), so a trial stopped early counts for less than one stopped late and
      neither as a finished run (``learn_from_curves=False``: at their stored value, their best so
      far, as if their run had ended there). FAIL trials whose failure is the configuration's fault
      (an exception, out of memory, nan) through a GP of whether a trial fails: the acquisition is
      weighted by the probability that a candidate does not, and a candidate more likely to fail
      than not is ruled out; other failures are ignored. Each outcome constraint of the study gets
      a GP, and the acquisition is weighted by the probability that a candidate satisfies it (see
      ``_gp_feasibility``).
    * **Reproducible**: the suggestion is a function of the stored trials, ``seed`` and the trial
      number alone, in any process. The GP's hyperparameters are fitted from the priors' centres
      to a prefix of the history (see :func:`fitted_history_size`; past 1000 observations, to a
      subset of it: :func:`fit_subset`), so a sampler that remembers the last fit (it reuses it
      until the history has grown by a tenth) and a fresh one that refits agree exactly: the cache
      saves time and never changes a suggestion.
    * **Fast**: a fraction of a second per suggestion on a CPU core, more with several objectives
      (timings in ``benchmarks/RESULTS.md`` and ``benchmarks/MO_RESULTS.md``); torch runs on one
      thread meanwhile, because the GP's many small operations lose time to thread hand-offs. With
      hundreds of trials of history, the incumbent candidates are chosen among the most promising
      observations, and past a thousand the fit sees an even thinning of them (work that would
      grow with the cube of their number), so a study of a thousand trials stays practical
      (``benchmarks/GP_SCALE.md``).

    Args:
        seed: seed of the Sobol start and of every random choice of the GP phase; ``None`` draws one.
        n_startup_trials: trials with a value needed before the GP takes over (at least 2); the
            default is :func:`default_n_startup_trials` of the number of parameters.
        device: where the GP runs: ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``,
            ``"cuda"``, ``"cuda:1"`` or a ``torch.device``.
        learn_from_curves: value each PRUNED trial (single objective) at the final value the curve
            model of :class:`~lightning_hpo.pruners.CurvePruner` predicts from its reports and the
            study's full runs (at most the best full run's), with the prediction's variance as known
            noise (the default); with ``False``, at its best value so far, as if its run had ended
            there. Works with any pruner; several objectives keep the stored values.
        reference_point: for two or three objectives, the worst value of each that still counts, in
            its own units and in the order of ``mode``: the sampler then improves the Pareto front
            where every objective is better than this (the reference point of its hypervolume, as
            Ax's objective thresholds). ``None`` sets it from the data, below the worst observed
            value of each objective, so that every observation counts and the front's ends (the
            best model of any size, the smallest of any accuracy) weigh as much as its middle. Give
            it when only part of the front matters (a least accuracy, a largest model): the trials
            then go there (``benchmarks/MO_RESULTS.md``).

    Example:
        >>> from lightning_hpo import Float, GPSampler, Study
        >>> study = Study("gp", search_space={"x": Float(-2.0, 2.0)}, storage=":memory:",
        ...               sampler=GPSampler(seed=0, n_startup_trials=3))
        >>> study.optimize(lambda params: (params["x"] - 0.5) ** 2, n_trials=6)
        >>> len(study.trials)
        6
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int | None = None,
        device: str | torch.device = "auto",
        learn_from_curves: bool = True,
        reference_point: Sequence[float] | None = None,
    ) -> None:
        super().__init__(seed=seed)
        self.reference_point = _check_reference_point(reference_point)
        if not isinstance(learn_from_curves, bool):
            raise ArgumentTypeError(
                f"GPSampler: `learn_from_curves` must be True or False, but got {learn_from_curves!r} "
                f"({type(learn_from_curves).__name__})."
            )
        self.learn_from_curves = learn_from_curves
        if n_startup_trials is not None:
            if not isinstance(n_startup_trials, int) or isinstance(n_startup_trials, bool):
                raise ArgumentTypeError(
                    f"GPSampler: `n_startup_trials` must be an int or None, but got {n_startup_trials!r}."
                )
            if n_startup_trials < 2:
                raise InvalidArgumentError(
                    f"GPSampler: `n_startup_trials >= 2` must hold (a GP needs two points), but got "
                    f"n_startup_trials={n_startup_trials}."
                )
        self.n_startup_trials = n_startup_trials
        self.device = _check_device(device)
        self._last_fit: _Fit | None = None

    #: Whether the used-up warning was given: once, else a study run past its space's size gives it
    #: every trial (another library's ``catch_warnings`` resets Python's once-per-place registry).
    _warned_used_up = False
    #: How a configuration that failed by its own fault informs the GP (see ``_gp_feasibility``):
    #: valued by this rule of ``_gp_feasibility.IMPUTATIONS`` in the objective's GP (``None``: left
    #: out of it, except failures that broke a constraint early, valued at the worst), and with
    #: ``_failure_weighting``, through a GP of the failures that weights the acquisition, with
    #: ``_failure_min_probability`` as a chance constraint (``None``: the plain weight).
    #: ``benchmarks/constraints.py`` measures other settings through these.
    _failure_imputation: str | None = None
    _failure_weighting: bool = True
    _failure_min_probability: float | None = 0.5
    #: How much a single-objective candidate must beat the incumbent by to count as an improvement,
    #: in standard deviations of the GP's outcomes (EI's classic ``xi``); ``benchmarks/gp_variants.py``
    #: measures other settings through it.
    _improvement_margin: float = 0.0
    #: The acquisition per expected cost to this power (see ``_gp_cost``): 0 leaves it alone;
    #: ``benchmarks/multi_fidelity.py`` measures other settings through it.
    _cost_exponent: float = 0.0
    #: Whether RUNNING trials past their curve's warm-up enter the GP at their curves' predicted
    #: ends (as pruned ones do) instead of as pending points; ``benchmarks/multi_fidelity.py``
    #: measures it with several workers.
    _value_running: bool = False
    #: Draws of the GP's hyperparameters (a Laplace approximation of their posterior) over which a
    #: single-objective acquisition is averaged, with the fitted ones (``_gp_marginal``); 0: the
    #: fitted ones alone. ``benchmarks/gp_variants.py`` measures other settings through it.
    _hyperparameter_draws: int = 0
    #: Whether a suggestion may repeat an observed or pending point while the acquisition search
    #: scored another (``exclude`` of ``_gp_acquisition.maximize``). Not by default: a deterministic
    #: objective learns nothing from a repeat, and a noisy one is evaluated several times through
    #: ``repeats=``; in discrete spaces the GP otherwise re-runs its incumbent once it looks best
    #: everywhere. ``benchmarks/gp_variants.py`` measures the other setting.
    _allow_repeats: bool = False

    def sample(
        self, space: SearchSpace, trials: Sequence[Trial], *, number: int, directions: Sequence[str]
    ) -> dict[str, Any]:
        space = SearchSpace.coerce(space)
        self.check_objectives(directions)
        observed = [t for t in trials if _is_observation(t)]
        n_startup = self.n_startup_trials or default_n_startup_trials(len(space))
        if len(observed) < n_startup:
            return space.decode(sobol_point(len(space), self.seed, number))
        pending = [t for t in trials if t.state is TrialState.RUNNING]
        signs = tuple(1.0 if direction == "max" else -1.0 for direction in directions)
        from lightning_hpo.samplers._gp_feasibility import broke_early, is_configuration_failure, with_imputed_values

        configuration_failures = [t for t in trials if is_configuration_failure(t)]
        # A failure that broke a constraint early stored its violation: it enters the objective's GP
        # at the worst value so that the constraint's GP, fitted on the same observations, sees it.
        imputed = (
            configuration_failures
            if self._failure_imputation is not None
            else [t for t in configuration_failures if broke_early(t)]
        )
        observed += with_imputed_values(imputed, observed, directions, space, self._failure_imputation or "worst")
        failed = configuration_failures if self._failure_weighting else []
        curve_noise = None
        if self.learn_from_curves and len(directions) == 1:
            # Several objectives: pruned trials keep their stored values (the curve is the first
            # objective's alone, and their GPs learn their own noise).
            minimize = directions[0] == "min"
            if self._value_running:
                # One curve model for both: observations are never RUNNING, pending trials always are.
                valued, curve_noise = curve_informed(
                    [*observed, *pending], trials, minimize=minimize, states=(TrialState.PRUNED, TrialState.RUNNING)
                )
                observed, running = valued[: len(observed)], valued[len(observed) :]
                observed += [t for t, before in zip(running, pending, strict=True) if t is not before]
                pending = [t for t, before in zip(running, pending, strict=True) if t is before]
            else:
                observed, curve_noise = curve_informed(observed, trials, minimize=minimize)
        suggestion = self._suggest(
            space,
            observed,
            pending,
            signs=signs,
            number=number,
            failed=failed,
            extra_noise=curve_noise,
            not_again=configuration_failures,
        )
        return space.decode(suggestion)

    def _suggest(
        self,
        space: SearchSpace,
        observed: list[Trial],
        pending: list[Trial],
        *,
        signs: tuple[float, ...],
        number: int,
        failed: Sequence[Trial] = (),
        extra_noise: dict[int, float] | None = None,
        not_again: Sequence[Trial] = (),
    ) -> list[float]:
        """The next point, in the unit encoding; ``not_again``: trials whose configurations are not
        suggested again (besides the observed and pending ones) while the space has others."""
        import torch

        from lightning_hpo.samplers._gp_acquisition import is_one_of, maximize
        from lightning_hpo.samplers._gp_model import build_model, lengthscales
        from lightning_hpo.samplers._gp_space import GPSpace

        device = _resolve_device(self.device)
        tensor_kwargs: dict[str, Any] = {"dtype": torch.float64, "device": device}
        gp_space = GPSpace(space)
        observed = sorted(observed, key=lambda t: t.number)
        X = _points(observed, space, gp_space, tensor_kwargs)
        # BoTorch maximizes: "min" objectives enter negated.
        Y = torch.tensor([t.values for t in observed], **tensor_kwargs) * torch.tensor(signs, **tensor_kwargs)
        X_pending = _points(pending, space, gp_space, tensor_kwargs)
        acquisition_seed, search_seed = _seeds(self.seed, number)
        generator = torch.Generator().manual_seed(search_seed)
        with _isolated(device):
            Yvar = known_noise(observed, extra_noise, **tensor_kwargs)
            hyperparameters, fitted = self._hyperparameters(space, X, Y, gp_space, device=device, Yvar=Yvar)
            model = fitted if fitted is not None else build_model(X, Y, gp_space, hyperparameters, train_Yvar=Yvar)
            torch.manual_seed(acquisition_seed)
            feasible = torch.tensor([t.feasible for t in observed], device=device)
            draws = []
            if self._hyperparameter_draws and len(signs) == 1:
                from lightning_hpo.samplers._gp_marginal import laplace_draws

                draws = [
                    build_model(X, Y, gp_space, draw, train_Yvar=Yvar)
                    for draw in laplace_draws(model, hyperparameters, self._hyperparameter_draws, generator)
                ]
            acquisition, incumbents = _acquisition(
                model,
                X,
                Y,
                X_pending,
                seed=acquisition_seed,
                generator=generator,
                feasible=feasible,
                margin=self._improvement_margin,
                draws=draws,
                reference=None
                if self.reference_point is None
                else torch.tensor(self.reference_point, **tensor_kwargs) * torch.tensor(signs, **tensor_kwargs),
            )
            acquisition = _weighted_by_feasibility(
                acquisition, observed, space, gp_space, tensor_kwargs, failed, self._failure_min_probability
            )
            if self._cost_exponent and acquisition is not None and len(signs) == 1:
                from lightning_hpo.samplers._gp_cost import per_expected_cost

                acquisition = per_expected_cost(
                    acquisition, observed, space, gp_space, exponent=self._cost_exponent, **tensor_kwargs
                )
            acquisition = gp_space.on_pinned_inputs(acquisition)
            # A configuration that failed by its own fault fails again: it is not suggested again either.
            seen = torch.cat(
                [x for x in (X, X_pending, _points(not_again, space, gp_space, tensor_kwargs)) if x is not None]
            )
            best = maximize(
                acquisition,
                gp_space,
                incumbents=incumbents,
                scales=lengthscales(model, gp_space),
                generator=generator,
                exclude=None if self._allow_repeats else seen,
            )
            repeat = not self._allow_repeats and bool(is_one_of(gp_space, best.unsqueeze(0), seen))
            if repeat and not self._warned_used_up:
                self._warned_used_up = True
                warnings.warn(
                    "GPSampler found every configuration of the search space run, running or failed (the space "
                    "is used up), so this trial and the next ones repeat one: the GP's best guess. With a "
                    "deterministic objective, end the study here (GridSampler stops by itself); with a noisy "
                    "one, repeats average out its noise. (Said once per sampler.)",
                    UserWarning,
                    stacklevel=2,
                )
        return gp_space.to_unit(best.unsqueeze(0))[0].tolist()

    def _hyperparameters(
        self,
        space: SearchSpace,
        X: torch.Tensor,
        Y: torch.Tensor,
        gp_space: Any,
        *,
        device: torch.device,
        Yvar: torch.Tensor | None = None,
    ) -> tuple[dict[str, torch.Tensor], Any]:
        """The hyperparameters fitted to the first ``fitted_history_size(n)`` observations (to their
        :func:`fit_subset` past ``MAX_FITTED_OBSERVATIONS``), from the cache when it holds them (it
        always does between two refits in one process); and the model just fitted when it was
        fitted to all ``n`` observations (else ``None``), which is the GP to suggest with."""
        import torch

        from lightning_hpo.samplers._gp_model import fit_objective_model, hyperparameters_of

        size = fitted_history_size(len(X))
        # The fit is a function of these alone: two studies can share a sampler and never its fit.
        key = (space.fingerprint(), str(device), _digest(X[:size]), _digest(Y[:size]))
        key += (None if Yvar is None else _digest(Yvar[:size]),)
        cached = self._last_fit
        if cached is not None and cached.key == key:
            return cached.hyperparameters, None
        # Seeded by the data alone (fit retries draw from the prior), so any process agrees.
        torch.manual_seed(_seeds(self.seed, size, 1)[0])
        fitted = fit_subset(size, MAX_FITTED_OBSERVATIONS).to(X.device)
        model = fit_objective_model(X[fitted], Y[fitted], gp_space, None if Yvar is None else Yvar[fitted])
        hyperparameters = hyperparameters_of(model)
        self._last_fit = _Fit(key, hyperparameters)
        return hyperparameters, model if len(fitted) == len(X) else None

    def __repr__(self) -> str:
        reference = "" if self.reference_point is None else f", reference_point={list(self.reference_point)}"
        return (
            f"GPSampler(seed={self.seed}, n_startup_trials={self.n_startup_trials}, device={self.device!r}, "
            f"learn_from_curves={self.learn_from_curves}{reference})"
        )

    def check_objectives(self, directions: Sequence[str]) -> None:
        if self.reference_point is None:
            return
        from lightning_hpo.samplers._gp_acquisition import MAX_HYPERVOLUME_OBJECTIVES

        if not 2 <= len(directions) <= MAX_HYPERVOLUME_OBJECTIVES:
            kind = "one objective" if len(directions) == 1 else f"{len(directions)} objectives"
            reason = (
                "a single objective has no Pareto front"
                if len(directions) == 1
                else "from 4 objectives the sampler scalarizes them at random (qLogNParEGO), which takes no "
                "reference point"
            )
            raise InvalidArgumentError(
                f"GPSampler(reference_point={list(self.reference_point)}) serves studies of 2 or 3 "
                f"objectives, and this one has {kind} (mode={list(directions)}): {reason}. Leave "
                "reference_point=None."
            )
        if len(self.reference_point) != len(directions):
            raise InvalidArgumentError(
                f"GPSampler(reference_point={list(self.reference_point)}) has {len(self.reference_point)} "
                f"values, but the study has {len(directions)} objectives (mode={list(directions)}): give one "
                "value per objective, in the order of mode."
            )


def known_noise(
    observed: Sequence[Trial], extra: Mapping[int, float] | None = None, **tensor_kwargs: Any
) -> torch.Tensor | None:
    """``n x 1``: the noise variance of each observed value, known for trials evaluated several
    times (``attrs[VALUE_SPREAD]`` squared over the number of evaluations; 0 for the others) plus
    ``extra[trial.number]`` where given (the variance of a pruned trial's predicted final value,
    see :func:`curve_informed`), or ``None`` when no trial knows it, or the study has several
    objectives (their GPs learn theirs)."""
    import torch

    from lightning_hpo.trial import EVALUATION_VALUES, VALUE_SPREAD

    variances = []
    for trial in observed:
        variance = (extra or {}).get(trial.number, 0.0)
        spread, evaluations = trial.attrs.get(VALUE_SPREAD), trial.attrs.get(EVALUATION_VALUES)
        if isinstance(spread, list) and len(spread) == 1 and isinstance(evaluations, list) and evaluations:
            variance += float(spread[0]) ** 2 / len(evaluations)
        variances.append(variance)
    if not any(variances) or len(observed[0].values) != 1:
        return None
    return torch.tensor(variances, **tensor_kwargs).unsqueeze(-1)


def curve_informed(
    observed: Sequence[Trial],
    trials: Sequence[Trial],
    *,
    minimize: bool,
    states: tuple[TrialState, ...] = (TrialState.PRUNED,),
) -> tuple[list[Trial], dict[int, float]]:
    """``observed`` with each PRUNED trial (each trial in ``states``) valued at the curve model's
    prediction of its final value (see ``pruners._curve_model``: its own extrapolation mixed with the
    full runs of ``trials``), capped at the best full run's final value, and the variance of each
    prediction by trial number, to add to the GP's known noise.

    A trial stopped early then enters with a wide variance, one stopped late with a narrow one,
    instead of as a finished run with its best value so far. The cap: the model's own extrapolation
    is deliberately optimistic (made to keep crossing curves alive, not to estimate a value), and
    early in a fast-rising curve it is far above anything reachable (above 100% accuracy), which
    drew the GP back to configurations the pruner then stopped (benchmarks/MULTI_FIDELITY.md,
    digits); a trial the pruner stopped is worth at most what the best full run reached. A trial
    the model cannot predict keeps its stored value: without a full run in the study (or a report
    in the first half of the trial's own run) nothing calibrates how much of its pace is left,
    while the stored value is at least a value the trial reached. RUNNING trials stay pending
    points unless ``states`` names them (the sampler's ``_value_running``, measured with several workers).
    """
    from lightning_hpo.pruners._curve_model import CurveModel

    model = CurveModel(trials, minimize)
    sign = -1.0 if minimize else 1.0
    out, variances = [], {}
    for trial in observed:
        step = trial.last_step
        full = model.full_steps(trial) if trial.state in states and step is not None else None
        prediction = model.forecast(trial, step, full) if full is not None and step < full else None
        if prediction is None:
            out.append(trial)
            continue
        mean, variances[trial.number] = prediction.mean_and_variance()
        mean = min(mean, prediction.incumbent)
        out.append(dataclasses.replace(trial, values=(sign * mean,)))
    return out, variances


def _points(trials: Sequence[Trial], space: SearchSpace, gp_space: Any, tensor_kwargs: dict[str, Any]) -> Any:
    """The trials' configurations as the GP's inputs, one row each; ``None`` when there are none."""
    import torch

    if not trials:
        return None
    return gp_space.from_unit(torch.tensor([space.encode(t.params) for t in trials], **tensor_kwargs))


def _weighted_by_feasibility(
    acquisition: Any,
    observed: list[Trial],
    space: SearchSpace,
    gp_space: Any,
    tensor_kwargs: dict[str, Any],
    failed: Sequence[Trial] = (),
    failure_min_probability: float | None = None,
) -> Any:
    """``acquisition`` weighted by the GPs of the constraints and of the ``failed`` trials, where
    there are any (the failures' with ``failure_min_probability`` as a chance constraint)."""
    from lightning_hpo.samplers._gp_feasibility import (
        FeasibilityModel,
        FeasibilityWeighted,
        failure_outcome,
        feasibility_outcomes,
    )

    outcomes = feasibility_outcomes(observed)
    failures = failure_outcome(observed, failed)
    outcomes += [failures] if failures is not None else []
    if not outcomes:
        return acquisition
    models = []
    for outcome in outcomes:
        X = _points(outcome.trials, space, gp_space, tensor_kwargs)
        floor = failure_min_probability if outcome is failures else None
        models.append(FeasibilityModel(X, outcome, gp_space, min_probability=floor))
    return FeasibilityWeighted(acquisition, models)


def _acquisition(
    model: Any,
    X: torch.Tensor,
    Y: torch.Tensor,
    X_pending: torch.Tensor | None,
    *,
    seed: int,
    generator: torch.Generator,
    feasible: torch.Tensor,
    margin: float = 0.0,
    draws: Sequence[Any] = (),
    reference: torch.Tensor | None = None,
) -> tuple[Any, torch.Tensor]:
    """The acquisition function for the ``n x m`` outcomes ``Y`` (larger is better), and the
    observed points its search starts from and near. Only the ``feasible`` observations (a mask)
    may be the incumbent; while none is, the acquisition is ``None`` (feasibility alone decides).
    With ``draws`` (GPs of other hyperparameters, one outcome), the mean acquisition of ``model``
    and them (``_gp_marginal``). ``reference``: the user's reference point of several objectives, in
    the terms of ``Y``; ``None`` sets it from the data."""
    import torch

    from lightning_hpo.samplers import _gp_acquisition as acquisitions
    from lightning_hpo.samplers._gp_model import model_outcomes, outcome_image

    m = Y.shape[-1]
    candidates = feasible.nonzero().squeeze(-1)
    if not len(candidates):
        return None, X[Y[:, 0].topk(min(N_INCUMBENTS, len(Y))).indices]
    if m == 1:
        each = [
            acquisitions.noisy_log_improvement(
                gp,
                X_pending,
                mc_samples=MC_SAMPLES,
                seed=seed,
                baseline_candidates=None if feasible.all() else candidates,
                margin=margin,
            )
            for gp in [model, *draws]
        ]
        if draws:
            from lightning_hpo.samplers._gp_marginal import LogMeanAcquisition

            acquisition = LogMeanAcquisition(each)
        else:
            (acquisition,) = each
        best = Y[candidates, 0].topk(min(N_INCUMBENTS, len(candidates))).indices
        return acquisition, X[candidates[best]]
    observed_Y = Y
    X, Y = X[candidates], Y[candidates]
    incumbents = _pareto_incumbents(X, Y, generator)
    if m <= acquisitions.MAX_HYPERVOLUME_OBJECTIVES:
        # The GP sees the outcomes of every observation (softened, warped, standardized together);
        # the front, its reference point and the baseline are the feasible observations'. A user's
        # point is placed among the outcomes by the very transforms fitted to them.
        if reference is None:
            ref_point = acquisitions.reference_point(model_outcomes(observed_Y)[candidates])
        else:
            ref_point = outcome_image(observed_Y, reference.unsqueeze(0))[0]
        acquisition = acquisitions.noisy_log_hypervolume_improvement(
            model,
            X,
            X_pending,
            ref_point=ref_point,
            mc_samples=MO_MC_SAMPLES[min(m, 3)],
            seed=seed,
        )
        return acquisition, incumbents
    # A random scalarization per trial: weights drawn uniformly from the simplex.
    weights = -torch.rand(m, generator=generator, dtype=torch.float64).log()
    weights = (weights / weights.sum()).to(X.device)
    acquisition = acquisitions.noisy_log_parego(model, X, X_pending, weights=weights, mc_samples=MC_SAMPLES, seed=seed)
    return acquisition, incumbents


@contextlib.contextmanager
def _isolated(device: torch.device) -> Iterator[None]:
    """Run the GP's work without side effects on the caller, and fast.

    * The global torch generator is forked: BoTorch draws from it in places (baseline pruning, fit
      retries), which the sampler seeds, and the caller's stream must not move.
    * torch runs on one CPU thread: the GP's many small operations only lose time to thread
      hand-offs, badly so when other processes share the cores (``benchmarks/GP_DECISIONS.md``).
    * The routine numerical notes of GPyTorch and BoTorch (jitter added to a nearly singular
      covariance, a fit stopped at its step cap) are silenced: they are handled, and a study would
      print them on every trial.
    """
    import torch
    from botorch.exceptions.warnings import OptimizationWarning
    from linear_operator.utils.warnings import NumericalWarning

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalWarning)
            warnings.simplefilter("ignore", OptimizationWarning)
            yield
    finally:
        torch.set_num_threads(threads)


def _pareto_incumbents(X: torch.Tensor, Y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Up to ``N_INCUMBENTS`` of the observed points on the Pareto front of ``Y`` (larger is better),
    drawn at random when the front has more, so that successive searches start near different
    parts of it."""
    import torch

    from lightning_hpo.pareto import non_dominated_mask

    front = torch.from_numpy(np.flatnonzero(non_dominated_mask(-Y.cpu().numpy()))).to(X.device)
    if len(front) > N_INCUMBENTS:
        front = front[torch.randperm(len(front), generator=generator)[:N_INCUMBENTS].to(X.device)]
    return X[front]


def _digest(tensor: torch.Tensor) -> tuple[tuple[int, ...], bytes]:
    """The exact shape and contents of ``tensor``, as a hashable key."""
    return tuple(tensor.shape), hashlib.sha256(tensor.detach().cpu().numpy().tobytes()).digest()


def _seeds(*entropy: int) -> tuple[int, int]:
    """Two independent 63-bit seeds derived from ``entropy`` (the sampler's seed, a trial number...)."""
    first, second = np.random.SeedSequence(list(entropy)).generate_state(2, dtype=np.uint64)
    return int(first) >> 1, int(second) >> 1


def _is_observation(trial: Trial) -> bool:
    """COMPLETE trials, and PRUNED ones stored with a value, inform the GP."""
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED) or trial.values is None:
        return False
    return all(math.isfinite(v) for v in trial.values)


def _check_reference_point(reference_point: Any) -> tuple[float, ...] | None:
    if reference_point is None:
        return None
    if type(reference_point).__name__ in ("ndarray", "Tensor"):  # numpy and torch, without importing torch
        reference_point = reference_point.tolist()
    if isinstance(reference_point, (str, bytes, Mapping)) or not isinstance(reference_point, Sequence):
        raise ArgumentTypeError(
            f"GPSampler: `reference_point` must be a list of numbers, one per objective, or None, but got "
            f"{reference_point!r} ({type(reference_point).__name__})."
        )
    values = []
    for value in reference_point:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ArgumentTypeError(
                f"GPSampler: `reference_point` must hold numbers, but got {value!r} ({type(value).__name__}) "
                f"in {list(reference_point)!r}."
            )
        if not math.isfinite(value):
            raise InvalidArgumentError(
                f"GPSampler: every value of `reference_point` must be finite, but got {list(reference_point)!r}: "
                "give the worst value of each objective that still counts."
            )
        values.append(float(value))
    if len(values) < 2:
        raise InvalidArgumentError(
            f"GPSampler: `reference_point` needs one value per objective of a study of 2 or 3 objectives, but "
            f"got {list(reference_point)!r}."
        )
    return tuple(values)


def _check_device(device: Any) -> str | torch.device:
    if isinstance(device, str) and device == "auto":
        return device
    import torch

    if not isinstance(device, (str, torch.device)):
        raise ArgumentTypeError(
            f"GPSampler: `device` must be 'auto', a device string or a torch.device, but got {device!r} "
            f"({type(device).__name__})."
        )
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise InvalidArgumentError(
            f"GPSampler: `device` must name a torch device, but got {device!r}: {error}"
        ) from None


def _resolve_device(device: str | torch.device) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
