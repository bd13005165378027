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

The checks of the Tuner's arguments are in :mod:`lightning_hpo._tuner_checks`, and the result
object, :class:`TuneResult` (imported from here), in :mod:`lightning_hpo._tune_result`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Union

from lightning_hpo._budget import check_budget, training_budget
from lightning_hpo._constraints import parse_constraints
from lightning_hpo._evaluations import EvaluatedTrial
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
from lightning_hpo._tune_result import TuneResult
from lightning_hpo._tuner_checks import (
    check_datamodule,
    check_evaluations,
    check_logger,
    check_mapping,
    check_model_arguments,
    check_n_jobs,
    check_storage_for_jobs,
    check_trainer_kwargs,
    is_datamodule_factory,
)
from lightning_hpo.decorator import search_space_of
from lightning_hpo.distributed import TrialCoordinator, global_rank
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, LightningHPOError
from lightning_hpo.folds import Fold, datamodule_for_fold
from lightning_hpo.pruners import Pruner
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.space import Domain, SearchSpace
from lightning_hpo.stopping import RegretBoundStopper
from lightning_hpo.storage import DEFAULT_ROOT_DIR, Storage, open_storage
from lightning_hpo.study import DEFAULT_GRACE_PERIOD, Study
from lightning_hpo.trackers import LoggerArg, TrialTrackers
from lightning_hpo.training import (
    TRIAL_TRAINER_DEFAULTS,
    TrialTraining,
    check_monitor,
    quiet_lightning,
    release_memory_of_earlier_trials,
    run_study,
)
from lightning_hpo.trial import Trial

__all__ = ["Tuner", "TuneResult", "study_directory"]

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
        self.model_kwargs = dict(check_mapping("model_kwargs", model_kwargs))
        self.datamodule = datamodule
        self.trainer_kwargs = dict(check_mapping("trainer_kwargs", trainer_kwargs))
        self.root_dir = Path(root_dir)
        self.seed = seed
        self.run_options = RunOptions(
            max_consecutive_failures=max_consecutive_failures, trial_timeout=trial_timeout, stopper=stopper
        )
        self.show_progress = show_progress
        self.n_jobs = check_n_jobs(n_jobs)
        self.keep_checkpoints = check_keep_checkpoints(keep_checkpoints)
        self.checkpoint_every = check_checkpoint_every(checkpoint_every)
        self._model_params = check_model_arguments(model_cls, self.model_kwargs, self.space, datamodule)
        check_datamodule(datamodule)
        self.evaluations = check_evaluations(cv, repeats, seed, datamodule)
        check_trainer_kwargs(self.trainer_kwargs)
        check_logger(logger, self.trainer_kwargs)
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
            check_storage_for_jobs(self.n_jobs, self.study.storage)
            check_budget(name, self.study.trials, self._budget, allow_change=allow_budget_change)
        with quiet_lightning():  # after the n_jobs checks, whose messages are more to the point
            check_trainer_launch(self.trainer_kwargs)
        self.study_name = name
        self.study_dir = study_directory(self.root_dir, name)
        self._trackers = TrialTrackers(logger, study_name=name, study_dir=self.study_dir, monitor=self.monitor)
        if self.study is not None:
            self._trackers.prepare()

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
            try:
                run_study(coordinator, self.study, self._train_trial, options, observers, monitor=self.monitor)
            finally:
                self._trackers.close()  # the trackers' runs ended in the background: all in their stores now
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
        datamodule = self.datamodule(params) if is_datamodule_factory(self.datamodule) else self.datamodule
        return self._train_once(trial, datamodule)

    def _train_evaluation(
        self, trial: Trial, fold: Fold | None, seed: int | None, evaluation: dict[str, Any]
    ) -> TrialTraining:
        """One evaluation of a trial evaluated several times (a fold, a repeat; seeded already), with
        ``evaluation``'s :class:`TrialTraining` options (see :class:`~lightning_hpo._evaluations.EvaluatedTrial`)."""
        release_memory_of_earlier_trials()
        params = dict(trial.params)
        is_factory = is_datamodule_factory(self.datamodule)
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
