"""``lightning_hpo.Tuner``: tune a LightningModule's hyperparameters, one fresh model and Trainer per trial.

Not to be confused with Lightning's own ``lightning.pytorch.tuner.Tuner`` (learning rate and batch
size finders).

Per trial, the Tuner:

* builds ``model_cls(**model_kwargs, **params)`` (and the datamodule, when given as a factory);
* builds a ``Trainer`` from ``trainer_kwargs`` plus a :class:`~lightning_hpo.callback.TrialReporter`
  (reports and prunes), a ``ModelCheckpoint`` on the monitored metric, and a logger, all writing
  under ``root_dir/<study>/trial_<n>/``;
* trains, then stores the outcome. **A trial's value is the best monitored value it reported**
  (lowest for ``mode="min"``), at the same validation as its best checkpoint; a pruned trial is
  PRUNED with the step it stopped at; an exception in user code makes it FAIL with the traceback
  stored, and the study goes on.

**Several objectives**: ``Tuner(monitor=["val_loss", "n_params"], mode=["min", "min"])``. A
trial's values are those of its last validation, and its checkpoint is the last one, the model
they describe (see :mod:`lightning_hpo.training` for why). The default pruner ranks trials by
Pareto front (see :class:`~lightning_hpo.ASHAPruner`). The result's ``best_trials`` is the Pareto
set, each trial with its ``values`` and ``checkpoint_path``; ``best_params`` and the other
single-best accessors raise, since no trial is best in every metric.

**Cross-validation and repeats**: ``Tuner(..., cv=k, repeats=r)`` trains ``k * r`` models per trial
(one per fold and seed) and stores the mean, each evaluation's value and their spread (see
:mod:`lightning_hpo._evaluations`; how the datamodule gets its fold: :mod:`lightning_hpo.folds`).

Under ``torchrun`` every trial is one DDP training over all ranks, and only global rank 0 opens the
study (see :mod:`lightning_hpo.distributed`); with ``n_jobs=k`` the Tuner runs k trials at once in
k worker processes, one GPU each when there are GPUs (see :mod:`lightning_hpo.workers`).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Union

from lightning_hpo._budget import check_budget, training_budget
from lightning_hpo._constraints import parse_constraints
from lightning_hpo._evaluations import EvaluatedTrial, Evaluations
from lightning_hpo._loop import RunOptions, TrialObserver
from lightning_hpo._resume import (
    DEFAULT_KEEP_CHECKPOINTS,
    KeepCheckpoints,
    check_checkpoint_every,
    check_keep_checkpoints,
)
from lightning_hpo._setup_checks import check_pruner_objectives, check_trainer_launch
from lightning_hpo._short_errors import call_with_short_errors
from lightning_hpo._study_checks import Mode, check_study_name, parse_mode
from lightning_hpo.decorator import init_arguments, search_space_of
from lightning_hpo.distributed import TrialCoordinator, global_rank, world_size
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, LightningHPOError
from lightning_hpo.folds import Fold, check_folds, check_repeats, datamodule_for_fold
from lightning_hpo.pruners import Pruner
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.space import Domain, SearchSpace
from lightning_hpo.stopping import RegretBoundStopper
from lightning_hpo.storage import DEFAULT_ROOT_DIR, Storage, open_storage
from lightning_hpo.study import DEFAULT_GRACE_PERIOD, Study
from lightning_hpo.trackers import LoggerArg, TrialTrackers, check_logger_arg, logger_object_error
from lightning_hpo.training import (
    TRIAL_TRAINER_DEFAULTS,
    TrialTraining,
    check_monitor,
    quiet_lightning,
    release_memory_of_earlier_trials,
    run_study,
)
from lightning_hpo.trial import Direction, Trial

__all__ = ["Tuner", "TuneResult", "study_directory"]

# Trainer arguments the Tuner sets itself for each trial.
_MANAGED_TRAINER_ARGS = ("default_root_dir",)

DataModuleArg = Union[Any, Callable[[dict[str, Any]], Any], None]


def study_directory(root_dir: str | os.PathLike[str], study_name: str) -> Path:
    """The directory of a study's trial logs and checkpoints, always inside ``root_dir``.

    Study names are data, not paths: characters other than letters, digits, ``.``, ``_`` and ``-``
    become ``_``, and a name that had to change gets a short hash of the original, so two names
    never share a directory (``"a/b"`` and ``"a_b"`` stay apart; ``"../x"`` stays inside).
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", study_name).lstrip(".") or "_"
    if safe != study_name:
        safe = f"{safe[:80]}-{hashlib.sha256(study_name.encode()).hexdigest()[:8]}"
    root = Path(root_dir).resolve()
    path = (root / safe).resolve()
    if path.parent != root:  # cannot happen after the substitution above; a guard, not a rule
        raise InvalidArgumentError(f"Study name {study_name!r} would leave the root directory {str(root)!r}.")
    return path


@dataclass(frozen=True)
class TuneResult:
    """What :meth:`Tuner.fit` returns.

    Attributes:
        study: the :class:`~lightning_hpo.Study` (still open: more trials can be run); ``None`` on
            the ranks of a torchrun job other than global rank 0, which never open storage.
        trials: every trial of the study when ``fit`` returned (the same on every rank).
        best_trials: the COMPLETE trials that no other COMPLETE trial beats, in number order: with
            several monitored metrics the Pareto set (each trial with its ``values`` and its last
            checkpoint, ``checkpoint_path``); with one, the trials tied for the best value.
        directions: the study's ``mode``, one entry per monitored metric.

    ``best_trial``, ``best_params``, ``best_value``, ``best_checkpoint`` and ``load_best_model``
    are for one monitored metric: with several, no trial is best in all of them, so they raise
    and point to ``best_trials`` (and :meth:`load_model` loads any one trial).
    """

    study: Study | None
    trials: list[Trial]
    best_trials: list[Trial]
    directions: tuple[Direction, ...]
    model_cls: type
    model_kwargs: Mapping[str, Any]

    @property
    def best_trial(self) -> Trial | None:
        """The best COMPLETE trial (the lowest number among ties), or ``None`` if none completed."""
        if len(self.directions) != 1:
            raise InvalidArgumentError(
                f"The study has {len(self.directions)} objectives (mode={list(self.directions)}), so no trial is "
                "best in all of them: use `result.best_trials`, the Pareto set, each trial with `.params`, `.values` "
                "and `.checkpoint_path` (`result.load_model(trial)` loads one)."
            )
        return self.best_trials[0] if self.best_trials else None

    def _best(self) -> Trial:
        best = self.best_trial
        if best is None:
            name = f"Study {self.study.name!r}" if self.study is not None else "The study"
            raise LightningHPOError(f"{name} has no COMPLETE trial, so there is no best one yet.")
        return best

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self._best().params)

    @property
    def best_value(self) -> float:
        value = self._best().value
        assert value is not None
        return value

    @property
    def best_checkpoint(self) -> str | None:
        """Path of the best trial's best checkpoint (``None`` if checkpointing was off)."""
        return self._best().checkpoint_path

    def load_best_model(self, **kwargs: Any) -> Any:
        """``model_cls.load_from_checkpoint`` on the best checkpoint, with the trial's arguments.

        Works whether or not the module calls ``save_hyperparameters()``.
        """
        return self.load_model(self._best(), **kwargs)

    def load_model(self, trial: Trial, **kwargs: Any) -> Any:
        """``model_cls.load_from_checkpoint`` on ``trial``'s checkpoint (e.g. one of ``best_trials``), with its arguments."""
        if trial.checkpoint_path is None:
            raise LightningHPOError(f"Trial {trial.number} has no checkpoint (checkpointing was disabled).")
        if not Path(trial.checkpoint_path).is_file():
            raise LightningHPOError(
                f"Trial {trial.number}'s checkpoint {trial.checkpoint_path} is no longer on disk. The Tuner's "
                "`keep_checkpoints` removes the checkpoints of PRUNED and FAIL trials and, with an int k (the "
                "default), of the COMPLETE trials outside the study's k best. Load one of the best trials, or "
                "keep every checkpoint with Tuner(..., keep_checkpoints='all')."
            )
        return self.model_cls.load_from_checkpoint(
            trial.checkpoint_path, **{**self.model_kwargs, **dict(trial.params), **kwargs}
        )


class Tuner:
    """Tune the hyperparameters of a LightningModule.

    Args:
        model_cls: the ``LightningModule`` subclass; each trial builds ``model_cls(**model_kwargs, **params)``.
        search_space: parameter name -> domain; defaults to the space of the class's ``@tunable``.
        model_kwargs: fixed arguments of ``model_cls``.
        datamodule: a ``LightningDataModule`` shared by all trials, or a function ``params -> datamodule``
            (then parameters that ``model_cls`` does not take, such as ``batch_size``, go to it only),
            or ``None`` when the module brings its own dataloaders.
        trainer_kwargs: arguments of ``lightning.pytorch.Trainer`` (callbacks are copied per trial).
        monitor: the logged validation metric to optimize, or a list of them to optimize together
            (multi-objective: see :class:`TuneResult` and the module documentation).
        mode: ``"min"`` or ``"max"``; with several monitors, a list of them, one per metric.
        sampler, pruner: see :class:`~lightning_hpo.Study` for the defaults.
        storage: where the study lives; default ``sqlite:///<root_dir>/studies.db``.
        study_name: default: the model class's name. Rerunning with the same name resumes.
        root_dir: trial logs and checkpoints go to ``root_dir/<study_name>/trial_<n>/`` (default
            ``lightning_hpo_runs``).
        seed: seeds the sampler, and each trial with ``seed + trial number``.
        grace_period, retry_stale: see :class:`~lightning_hpo.Study`.
        max_consecutive_failures: the study stops after this many failed trials in a row, unless
            they depend on the configuration (some trials succeed and the failures differ, or run
            out of memory, or give nan): the sampler then learns where they happen
            (:mod:`lightning_hpo._failures` has the rule).
        trial_timeout: seconds after which a trial is stopped and marked FAIL (``None``: no limit).
        show_progress: show the live progress display.
        n_jobs: trials to run at once, each in its own worker process, pinned to its own GPU when
            there are GPUs (see :mod:`lightning_hpo.workers`). Needs a storage that processes can
            share (a SQLite file, the default, or PostgreSQL).
        allow_budget_change: continue a study whose trials ran with other ``max_epochs`` /
            ``max_steps`` in ``trainer_kwargs``. By default that is refused: the study's budget is
            stored with its trials, and trials of different lengths are not comparable.
        keep_checkpoints: what stays on disk once a trial ends: ``"all"``; ``"best"`` (COMPLETE
            trials keep their best checkpoint, PRUNED and FAIL trials none); or an int ``k``, the
            default ``3``: only the study's ``k`` best COMPLETE trials keep theirs, so the disk a
            study takes does not grow with ``n_trials``. The resumable state of a trial goes when it
            ends (except with ``"all"``).
        checkpoint_every: seconds between a running trial's resumable checkpoints (written at a
            validation); ``None``, the default, writes one at every validation. An interrupted trial
            (SIGKILL, SIGTERM, SLURM's SIGUSR1, Ctrl-C) resumes from it at the next run of the study.
        logger: each trial's Lightning logger(s): ``"tensorboard"``, ``"csv"``, ``"mlflow"`` or
            ``"wandb"`` (one run per trial, grouped by study, with its params and outcome), or a
            function ``trial -> Logger | list[Logger]`` (module-level with ``n_jobs > 1``, which
            pickles it); default: TensorBoard when installed, else CSV. See :mod:`lightning_hpo.trackers`.
        constraints: outcome constraints on logged or built-in metrics (``n_params``,
            ``peak_memory_mb``, ``time_per_epoch_s``), e.g. ``{"n_params": ("<=", 1e6)}``: see
            :class:`~lightning_hpo.Study`. A trial is judged by the metrics of the validation that
            gives it its value; one whose ``n_params`` breaks a constraint stops before training.
        cv: k-fold cross-validation: each trial trains ``k`` models, one per fold, and its value is
            their mean (the spread stored; see :mod:`lightning_hpo._evaluations`). The datamodule
            receives each fold by the contract of :mod:`lightning_hpo.folds` (e.g. a
            :class:`~lightning_hpo.KFoldDataModule`). ``None``: one training on the datamodule's split.
            An interrupted trial resumes in the fold it was in, keeping the folds it finished.
        repeats: train each configuration (each fold, with ``cv``) with this many seeds; the value is
            the mean over all of them.
        stopper: ends the study before ``n_trials`` once further trials are unlikely to beat the best by
            more than the evaluation noise: a :class:`~lightning_hpo.RegretBoundStopper`, ``"regret"`` or
            ``None`` (see :mod:`lightning_hpo.stopping`; its decision is stored with the study).

    Set-up errors are raised here, before any trial runs: a pruner that judges one objective with
    several monitors, a Trainer that would launch processes itself (``strategy="ddp"`` with
    ``devices=2`` outside torchrun), a changed budget.

    Under ``torchrun``, every rank builds the Tuner and calls ``fit``: each trial trains with DDP
    over all ranks, and only global rank 0 opens the study (``tuner.study`` is ``None`` elsewhere).

    Example:
        >>> tuner = Tuner(MyModule, datamodule=dm, monitor="val_loss", mode="min",
        ...               search_space={"lr": Float(1e-4, 1e-1, log=True)})  # doctest: +SKIP
        >>> result = tuner.fit(n_trials=20)  # doctest: +SKIP
        >>> result.best_params, result.best_value, result.best_checkpoint  # doctest: +SKIP
    """

    def __init__(
        self,
        model_cls: type,
        *,
        search_space: Mapping[str, Domain] | SearchSpace | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        datamodule: DataModuleArg = None,
        trainer_kwargs: Mapping[str, Any] | None = None,
        monitor: str | Sequence[str] = "val_loss",
        mode: Mode = "min",
        sampler: Sampler | None = None,
        pruner: Pruner | None = None,
        storage: str | os.PathLike[str] | Storage | None = None,
        study_name: str | None = None,
        root_dir: str | os.PathLike[str] = DEFAULT_ROOT_DIR,
        seed: int | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        retry_stale: bool = True,
        max_consecutive_failures: int | None = 5,
        trial_timeout: float | None = None,
        show_progress: bool = True,
        n_jobs: int = 1,
        allow_budget_change: bool = False,
        keep_checkpoints: KeepCheckpoints = DEFAULT_KEEP_CHECKPOINTS,
        checkpoint_every: float | None = None,
        logger: LoggerArg = None,
        constraints: Mapping[str, tuple[str, float]] | None = None,
        cv: int | None = None,
        repeats: int = 1,
        stopper: RegretBoundStopper | str | None = None,
    ) -> None:
        import lightning.pytorch as pl

        if not (inspect.isclass(model_cls) and issubclass(model_cls, pl.LightningModule)):
            raise ArgumentTypeError(
                f"`model_cls` must be a LightningModule subclass (the class, not an instance), but got {model_cls!r}."
            )
        if search_space is None:
            search_space = search_space_of(model_cls)
            if search_space is None:
                raise InvalidArgumentError(
                    f"No search space for {model_cls.__name__}: pass search_space=... or decorate the class "
                    "with @lightning_hpo.tunable(...)."
                )
        self.model_cls = model_cls
        self.space = SearchSpace.coerce(search_space)
        self.model_kwargs = dict(_check_mapping("model_kwargs", model_kwargs))
        self.datamodule = datamodule
        self.trainer_kwargs = dict(_check_mapping("trainer_kwargs", trainer_kwargs))
        self.root_dir = Path(root_dir)
        self.seed = seed
        self.run_options = RunOptions(
            max_consecutive_failures=max_consecutive_failures, trial_timeout=trial_timeout, stopper=stopper
        )
        self.show_progress = show_progress
        self.n_jobs = _check_n_jobs(n_jobs)
        self.keep_checkpoints = check_keep_checkpoints(keep_checkpoints)
        self.checkpoint_every = check_checkpoint_every(checkpoint_every)
        self._model_params = self._check_model_arguments()
        self._check_datamodule(pl)
        self.evaluations = self._check_evaluations(cv, repeats)
        self._check_trainer_kwargs(pl)
        self._check_logger(logger)
        self._budget = training_budget(self.trainer_kwargs)
        self.directions = parse_mode(mode)
        self.constraints = parse_constraints(constraints)
        self.monitor = check_monitor(monitor, self.directions)
        if pruner is not None:
            check_pruner_objectives(pruner, self.directions)
        name = check_study_name(study_name if study_name is not None else model_cls.__name__)
        # Known on every rank (under torchrun only rank 0 opens the study): a grid may run to its end.
        self._runs_a_grid = bool(getattr(sampler, "claims_points", False))
        # Under torchrun only global rank 0 opens the study (the TrialCoordinator's leader); the other
        # ranks train the trials it sends.
        self.study: Study | None = None
        if global_rank() == 0:
            self.study = Study(
                name,
                search_space=self.space,
                mode=mode,
                storage=open_storage(storage, root_dir=self.root_dir),
                sampler=sampler,
                pruner=pruner,
                seed=seed,
                grace_period=grace_period,
                retry_stale=retry_stale,
                constraints=constraints,
            )
            self._check_storage_for_jobs(self.study.storage)
            check_budget(name, self.study.trials, self._budget, allow_change=allow_budget_change)
        with quiet_lightning():  # after the n_jobs checks, whose messages are more to the point
            check_trainer_launch(self.trainer_kwargs)
        self.study_name = name
        self.study_dir = study_directory(self.root_dir, name)
        self._trackers = TrialTrackers(logger, study_name=name, study_dir=self.study_dir, monitor=self.monitor)
        if self.study is not None:
            self._trackers.prepare()

    # -- validation at construction ------------------------------------------------------

    def _check_model_arguments(self) -> set[str]:
        """The space's names that go to ``model_cls``; raise for names nothing accepts."""
        named, takes_any = init_arguments(self.model_cls)
        accepted = set(named)
        overlap = sorted(set(self.model_kwargs) & set(self.space))
        if overlap:
            raise InvalidArgumentError(
                f"{overlap} appear both in model_kwargs and in the search space; a parameter is either fixed or tuned."
            )
        unknown_fixed = sorted(n for n in self.model_kwargs if n not in accepted) if not takes_any else []
        if unknown_fixed:
            raise InvalidArgumentError(
                f"model_kwargs {unknown_fixed} are not arguments of {self.model_cls.__name__}.__init__ "
                f"(it takes {sorted(accepted)})."
            )
        to_model = set(self.space) if takes_any else set(self.space) & accepted
        elsewhere = sorted(set(self.space) - to_model)
        if elsewhere and not _is_datamodule_factory(self.datamodule):
            raise InvalidArgumentError(
                f"Search-space parameters {elsewhere} are not arguments of {self.model_cls.__name__}.__init__ "
                f"(it takes {sorted(accepted)}). Rename them, or pass datamodule=<function of params> to use them there."
            )
        return to_model

    def _check_datamodule(self, pl: Any) -> None:
        dm = self.datamodule
        if dm is None or isinstance(dm, pl.LightningDataModule) or _is_datamodule_factory(dm):
            return
        raise ArgumentTypeError(
            f"`datamodule` must be a LightningDataModule, a function params -> LightningDataModule, or None, "
            f"but got {dm!r}."
        )

    def _check_evaluations(self, cv: Any, repeats: Any) -> Evaluations:
        evaluations = Evaluations(None if cv is None else check_folds(cv), check_repeats(repeats), self.seed)
        if cv is None:
            return evaluations
        dm = self.datamodule
        if dm is None or not (_is_datamodule_factory(dm) or callable(getattr(dm, "for_fold", None))):
            raise InvalidArgumentError(
                f"cv={cv} trains each trial on {cv} folds, so the datamodule must receive the fold, but got "
                f"datamodule={dm!r}. Pass a lightning_hpo.KFoldDataModule(dataset, ...), a datamodule with a "
                "for_fold(fold) method, or a factory (params, fold) -> datamodule."
            )
        check_folds(cv, getattr(dm, "n_samples", None))
        return evaluations

    def _check_storage_for_jobs(self, storage: Storage) -> None:
        if self.n_jobs == 1:
            return
        if world_size() > 1:
            raise InvalidArgumentError(
                f"n_jobs={self.n_jobs} runs trials in worker processes, but this is one of {world_size()} torchrun "
                "ranks, which train each trial together. Use n_jobs=1 under torchrun, or several torchrun jobs on "
                "one storage."
            )
        if not storage.shareable_across_processes:
            raise InvalidArgumentError(
                f"n_jobs={self.n_jobs} runs trials in separate processes, which cannot share an in-memory storage "
                f"(got {storage.display_url!r}). Use a SQLite file (the default) or a PostgreSQL URL."
            )

    def _check_trainer_kwargs(self, pl: Any) -> None:
        accepted = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
        unknown = sorted(set(self.trainer_kwargs) - accepted)
        if unknown:
            raise InvalidArgumentError(f"trainer_kwargs {unknown} are not arguments of lightning.pytorch.Trainer.")
        managed = sorted(set(self.trainer_kwargs) & set(_MANAGED_TRAINER_ARGS))
        if managed:
            raise InvalidArgumentError(
                f"trainer_kwargs {managed} are set by the Tuner for each trial; pass root_dir=... to the Tuner instead."
            )
        logger = self.trainer_kwargs.get("logger")
        if logger not in (None, True, False):
            raise logger_object_error(logger)

    def _check_logger(self, logger: Any) -> None:
        check_logger_arg(logger)
        if logger is not None and self.trainer_kwargs.get("logger") is False:
            raise InvalidArgumentError(
                f"logger={logger!r} asks for loggers, but trainer_kwargs['logger'] is False; drop one of the two."
            )

    def enqueue(self, params: Mapping[str, Any], *, skip_if_exists: bool = False) -> None:
        """Run ``params`` (some or all of the space's names) as the study's next trial: see
        :meth:`Study.enqueue <lightning_hpo.Study.enqueue>`. Stored, so any worker may run it."""
        if self.study is not None:  # under torchrun, rank 0 holds the study
            self.study.enqueue(params, skip_if_exists=skip_if_exists)

    # -- running -------------------------------------------------------------------------

    def fit(self, n_trials: int | None = None, timeout: float | None = None) -> TuneResult:
        """Run trials until the study has ``n_trials`` COMPLETE or PRUNED trials (all runs and workers).

        Args:
            n_trials: the number of finished trials to reach; ``None`` runs until ``timeout`` (with a
                GridSampler and no timeout: until every point of the grid has run).
            timeout: seconds after which no new trial starts.
        """
        if n_trials is None and timeout is None and not self._runs_a_grid:
            raise InvalidArgumentError(
                "Tuner.fit needs n_trials, timeout, or both (or a GridSampler); otherwise it would never stop."
            )
        return call_with_short_errors(self.study, self.study_name, lambda: self._fit(n_trials, timeout))

    def _fit(self, n_trials: int | None, timeout: float | None) -> TuneResult:
        from lightning_hpo.progress import StudyProgress

        options = replace(self.run_options, n_trials=n_trials, timeout=timeout)
        progress = StudyProgress(self.study, n_trials=n_trials, enabled=self.show_progress, label=self.monitor)
        with progress:
            # A rerun of a finished study has no trial to start: no worker processes to spawn for it.
            if self.n_jobs == 1 or self._finished(n_trials):
                return self._result(*self._run_trials_here(options, [progress]))
            from lightning_hpo.workers import run_in_workers

            # Each worker runs the trial loop of a copy of this Tuner; this process shows their progress.
            run_in_workers(functools.partial(self._run_trials_here, options), self.n_jobs, poll=progress.catch_up)
            _show_stop(progress, self.study, options)
        return self.result()

    def _finished(self, n_trials: int | None) -> bool:
        return self.study is not None and n_trials is not None and self.study.count_finished() >= n_trials

    def _run_trials_here(
        self, options: RunOptions, observers: Sequence[TrialObserver] = ()
    ) -> tuple[list[Trial], list[Trial]]:
        """The study's trial loop in this process (with every rank under torchrun); the trials and best trials."""
        with TrialCoordinator() as coordinator:
            observers = [*observers, self._trackers]
            run_study(coordinator, self.study, self._train_trial, options, observers, monitor=self.monitor)
            return coordinator.share(self._trials_and_best)

    def result(self) -> TuneResult:
        """The study's trials and best trial as storage holds them now (on the process that opened the study)."""
        return self._result(*self._trials_and_best())

    def _trials_and_best(self) -> tuple[list[Trial], list[Trial]]:
        if self.study is None:
            raise LightningHPOError("Only global rank 0 opens the study; on this rank, use the result of fit().")
        return self.study.trials, self.study.best_trials

    def _result(self, trials: list[Trial], best_trials: list[Trial]) -> TuneResult:
        return TuneResult(
            study=self.study,
            trials=trials,
            best_trials=best_trials,
            directions=self.directions,
            model_cls=self.model_cls,
            model_kwargs=self.model_kwargs,
        )

    def _train_trial(self, trial: Trial) -> TrialTraining | EvaluatedTrial:
        """Build and train one trial's module (on every rank under torchrun); rank 0 then records it."""
        import lightning.pytorch as pl

        release_memory_of_earlier_trials()
        if self.evaluations.several:
            evaluated = EvaluatedTrial(
                self.study,
                trial,
                self.evaluations,
                self.study_dir / f"trial_{trial.number}",
                self.directions,
                self.keep_checkpoints,
            )
            return evaluated.train(functools.partial(self._train_evaluation, trial))
        if self.seed is not None:
            pl.seed_everything(self.seed + trial.number, workers=True, verbose=False)
        params = dict(trial.params)
        datamodule = self.datamodule(params) if _is_datamodule_factory(self.datamodule) else self.datamodule
        return self._train_once(trial, datamodule)

    def _train_evaluation(
        self, trial: Trial, fold: Fold | None, seed: int | None, evaluation: dict[str, Any]
    ) -> TrialTraining:
        """One evaluation of a trial evaluated several times (a fold, a repeat; seeded already), with
        ``evaluation``'s :class:`TrialTraining` options (see :class:`~lightning_hpo._evaluations.EvaluatedTrial`)."""
        release_memory_of_earlier_trials()
        params = dict(trial.params)
        is_factory = _is_datamodule_factory(self.datamodule)
        if fold is not None:
            datamodule = datamodule_for_fold(self.datamodule, params, fold, is_factory=is_factory)
        else:
            datamodule = self.datamodule(params) if is_factory else self.datamodule
        return self._train_once(trial, datamodule, **evaluation)

    def _train_once(self, trial: Trial, datamodule: Any, **evaluation: Any) -> TrialTraining:
        """Build the module and Trainer and train once; ``evaluation``: :class:`TrialTraining`'s options of one evaluation."""
        import lightning.pytorch as pl

        params = dict(trial.params)
        model = self.model_cls(**self.model_kwargs, **{k: v for k, v in params.items() if k in self._model_params})

        kwargs = {**TRIAL_TRAINER_DEFAULTS, **self.trainer_kwargs}
        callbacks = copy.deepcopy(list(kwargs.pop("callbacks", None) or []))
        training = TrialTraining(
            self.study,
            trial,
            monitor=self.monitor,
            directions=self.directions,
            study_dir=self.study_dir,
            with_checkpoint=kwargs.get("enable_checkpointing", True) is not False,
            with_logger=kwargs.pop("logger", True) is not False,
            budget=self._budget,
            keep_checkpoints=self.keep_checkpoints,
            checkpoint_every=self.checkpoint_every,
            trackers=self._trackers,
            constraints=self.study.constraints if self.study is not None else self.constraints,
            **evaluation,
        )
        trainer = pl.Trainer(
            **kwargs,
            callbacks=callbacks + training.callbacks,
            logger=training.logger,
            default_root_dir=training.trial_dir,
        )
        return training.train(
            trainer, lambda: trainer.fit(model, datamodule=datamodule, ckpt_path=training.resume_path)
        )


def _show_stop(progress: TrialObserver, study: Study | None, options: RunOptions) -> None:
    """Show the stop decision the workers made, if they made one (they run the loop, not this process)."""
    if options.stopper is None or study is None:
        return
    from lightning_hpo.stopping import announce, recorded_stop  # noqa: PLC0415 - only with n_jobs > 1

    decision = recorded_stop(study)
    if decision is not None:
        announce(study, decision, [progress])


def _check_n_jobs(n_jobs: Any) -> int:
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool):
        raise ArgumentTypeError(f"`n_jobs` must be an int, but got {n_jobs!r} ({type(n_jobs).__name__}).")
    if n_jobs < 1:
        raise InvalidArgumentError(f"`n_jobs >= 1` must hold, but got n_jobs={n_jobs!r}.")
    return n_jobs


def _check_mapping(name: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"`{name}` must be a dict, but got {value!r} ({type(value).__name__}).")
    return value


def _is_datamodule_factory(value: Any) -> bool:
    import lightning.pytorch as pl

    return callable(value) and not isinstance(value, pl.LightningDataModule) and not inspect.isclass(value)
