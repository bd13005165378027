"""``lightning_hpo.cli.LightningCLI``: Lightning's ``LightningCLI`` with a ``tune`` subcommand.

A training script written as Lightning's documentation writes one gains ``tune`` by changing one
import::

    # from lightning.pytorch.cli import LightningCLI
    from lightning_hpo.cli import LightningCLI

    def cli_main():
        LightningCLI(MyModel, MyDataModule)

    if __name__ == "__main__":
        cli_main()

then, beside ``fit``, ``validate``, ``test`` and ``predict``::

    python train.py tune --config config.yaml --tune search.yaml --tune.n_trials 30
    python train.py fit --config lightning_hpo_runs/MyModel/best.yaml      # retrain the best trial

**The search space** is a mapping from config keys to domains, under ``tune.search_space`` (in the
``--tune`` file, a ``tune:`` section of the config, or on the command line); a key names any value
of the config, as ``--print_config`` shows it, so model, data, optimizer and trainer arguments can all
be tuned (``init_args`` may be left out)::

    search_space:
      model.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
      model.hidden: {type: int, low: 16, high: 256, log: true}
      model.optimizer: {type: categorical, choices: [adam, sgd]}
      data.batch_size: [32, 64, 128]                 # a list is a categorical
      trainer.gradient_clip_val: {type: float, low: 0.1, high: 5.0}

On the command line, one flag per key works too: ``--tune.search_space.data.batch_size '[32,64,128]'``.
The ``tune:`` section of a config is ignored by ``fit`` and the other subcommands, so one file serves all.

Parameters declared with :func:`~lightning_hpo.tunable` on the model class join it as ``model.<name>``;
an entry of the config replaces the decorator's for the same key, and ``model.<name>: null`` drops it.

**Each trial is the ``fit`` run of one config**: the parsed config with the trial's values put in,
checked by the ``fit`` parser, then built by LightningCLI's own steps exactly as ``fit`` builds it
(seed, model, datamodule, optimizer, trainer, callbacks, loggers) and trained by ``fit``. The trial
adds its reporter, best checkpoint and, unless the config names loggers, a logger, all under
``<root_dir>/<study>/trial_<n>/``, which always holds the trial's ``config.yaml``
(``fit --config <root_dir>/<study>/trial_<n>/config.yaml`` retrains it). A logger the config names
keeps its own directory, and the trial stores where it wrote (``trainer.log_dir``) as its
``logger_dir`` attribute (``trial.attrs["logger_dir"]``). Either way the trial's loggers get its
params and, when it ends, its state and value, and their MLflow / W&B runs end with it (see
:mod:`lightning_hpo.trackers`; ``lightning-hpo trials`` shows where each run is). Every trial uses
the config's ``seed_everything``, so trials differ by their hyperparameters only. The full config of each trial
is stored with it; at the end, the best one is written to ``best.yaml``.

**Under torchrun** (``torchrun --nproc_per_node=8 train.py tune ...``, with ``trainer.devices`` set to
the processes per node) every trial trains with DDP over all ranks; only global rank 0 opens the
study and writes ``best.yaml`` (see :mod:`lightning_hpo.distributed`). The retrain command it prints
is a ``torchrun`` one with the same processes per node.

The pure config-key machinery lives in :mod:`lightning_hpo._config_space`; every use of a private
member of Lightning's LightningCLI, in :mod:`lightning_hpo._cli_internals`; the files ``tune`` writes
(each trial's ``config.yaml``, ``best.yaml``, the Pareto set's configs), in :mod:`lightning_hpo._tune_files`.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import jsonargparse
import yaml
from jsonargparse import Namespace, get_loader
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.cli import LightningArgumentParser
from typing_extensions import override

from lightning_hpo._budget import check_budget, training_budget
from lightning_hpo._cli_internals import LightningCLIInternals
from lightning_hpo._config_space import (
    PRUNER_NAMES,
    SAMPLER_NAMES,
    by_name,
    check_space_fits,
    search_space_from_config,
    take_search_space_flags,
    with_params,
)
from lightning_hpo._constraints import Constraints, parse_constraints
from lightning_hpo._evaluations import EvaluatedTrial, Evaluations
from lightning_hpo._loop import RunOptions
from lightning_hpo._resume import DEFAULT_KEEP_CHECKPOINTS, check_checkpoint_every, check_keep_checkpoints
from lightning_hpo._study_checks import check_study_name, parse_mode
from lightning_hpo._tune_files import TrialFiles, launcher, write_best_config, write_pareto_configs
from lightning_hpo.decorator import search_space_of
from lightning_hpo.distributed import TrialCoordinator
from lightning_hpo.exceptions import InvalidArgumentError, LightningHPOError
from lightning_hpo.export import CONFIG_ATTR, LAUNCHER_ATTR, SCRIPT_ATTR
from lightning_hpo.folds import Fold, check_folds, check_repeats, datamodule_for_fold
from lightning_hpo.progress import StudyProgress
from lightning_hpo.pruners import Pruner
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.stopping import check_stopper
from lightning_hpo.storage import DEFAULT_ROOT_DIR, open_storage
from lightning_hpo.study import Study
from lightning_hpo.trackers import TrialTrackers
from lightning_hpo.training import (
    TRIAL_TRAINER_DEFAULTS,
    TrialTraining,
    check_monitor,
    release_memory_of_earlier_trials,
    run_study,
)
from lightning_hpo.trial import Trial
from lightning_hpo.tuner import study_directory

__all__ = ["LightningCLI", "SAMPLER_NAMES", "PRUNER_NAMES", "search_space_from_config"]

# jsonargparse 4.49 renamed dump's skip_none to skip_unset.
_DUMP_EVERY_VALUE = (
    {"skip_unset": False}
    if tuple(map(int, jsonargparse.__version__.split(".")[:2])) >= (4, 49)
    else {"skip_none": False}
)


class LightningCLI(LightningCLIInternals):
    """Lightning's ``LightningCLI`` plus a ``tune`` subcommand; a drop-in replacement, same arguments.

    ``fit``, ``validate``, ``test`` and ``predict`` are Lightning's, untouched. ``tune`` runs a study
    (see the module documentation); its flags are the arguments of :meth:`tune`, under ``--tune.*``.
    After ``tune``, :attr:`study` is the study and :attr:`best_config_path` the written ``best.yaml``
    (with several monitors, :attr:`pareto_config_paths` the configs of the Pareto set).

    Example:
        >>> from lightning_hpo.cli import LightningCLI
        >>> LightningCLI(MyModel, MyDataModule,
        ...              args=["tune", "--config", "config.yaml", "--tune.n_trials", "20"])  # doctest: +SKIP
    """

    study: Study | None = None
    best_config_path: Path | None = None
    #: With several monitors: the written config of each trial of the Pareto set.
    pareto_config_paths: tuple[Path, ...] = ()
    # Set while a trial's Trainer is being built (see instantiate_trainer).
    _trial_training: TrialTraining | None = None
    _trial_files: TrialFiles | None = None

    @staticmethod
    @override
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLIInternals.subcommands(), "tune": set()}

    @override
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """As Lightning's, with each ``--tune.search_space.<key> <domain>`` flag added to the parsed space.

        jsonargparse would keep one such flag per first part of the key (see
        :func:`~lightning_hpo._config_space.take_search_space_flags`); other subcommands ignore them.
        """
        argv = sys.argv[1:] if args is None else args
        if not isinstance(argv, (list, tuple)):  # a dict or Namespace: no flags
            super().parse_arguments(parser, args)
            return
        kept, flags = take_search_space_flags(argv, get_loader(parser.parser_mode))
        if not flags:
            super().parse_arguments(parser, args)
            return
        # Lightning's own step for a list of arguments (its args-and-argv warning does not apply).
        self.config = parser.parse_args(kept)
        if self.config.get("subcommand") == "tune":
            key = "tune.tune.search_space"
            self.config[key] = {**(self.config.get(key) or {}), **flags}

    def tune(
        self,
        n_trials: int | None = 20,
        timeout: float | None = None,
        monitor: str | list[str] = "val_loss",
        mode: Literal["min", "max"] | list[Literal["min", "max"]] = "min",
        search_space: dict[str, Any] | None = None,
        sampler: Sampler | str | None = None,
        pruner: Pruner | str | None = None,
        enqueue: list[dict[str, Any]] | str | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        seed: int | None = None,
        root_dir: str = DEFAULT_ROOT_DIR,
        best_config: str | None = None,
        max_consecutive_failures: int | None = 5,
        trial_timeout: float | None = None,
        show_progress: bool = True,
        allow_budget_change: bool = False,
        keep_checkpoints: str | int = DEFAULT_KEEP_CHECKPOINTS,
        checkpoint_every: float | None = None,
        constraints: dict[str, Any] | None = None,
        cv: int | None = None,
        repeats: int = 1,
        stopper: str | None = None,
    ) -> None:
        """Tune hyperparameters: fit one trial per point of the search space, then write the best config.

        Args:
            n_trials: Finished (complete or pruned) trials the study must reach, counting every run and
                worker: rerunning the command resumes the study. null runs until the timeout.
            timeout: Seconds after which no new trial starts.
            monitor: The logged validation metric to optimize, e.g. val_loss; or a list of them to optimize
                together, e.g. [val_loss,n_params] (a trial's values are then its last validation's).
            mode: Whether to minimize (min) or maximize (max) the monitored metric; a list, one per metric,
                with several, e.g. [min,min].
            search_space: Config key -> domain, e.g. {model.lr: {type: float, low: 1.0e-4, high: 0.1,
                log: true}}; types float, int (low, high, log, step), categorical (choices), or a list of
                choices; when: {model.optimizer: sgd} makes a key active only for those values of another.
                Joins the @tunable space of the model class (as model.<name>); null drops a key.
                One flag per key works too: --tune.search_space.model.hidden [16,32,128].
            sampler: Chooses each trial's values: a name (sobol, random, gp) or a lightning_hpo Sampler
                class path with init_args. Default: the Study's default.
            pruner: Stops weak trials early: a name (median, nop, asha, hyperband, curve) or a lightning_hpo
                Pruner class path with init_args. Default: the Study's default (asha).
            enqueue: Configs to run first, before the sampler's: a list of {config key: value} (some or all
                keys of the search space; the sampler fills in the rest), e.g. [{model.lr: 0.001}], or a YAML
                file holding such a list. A config already enqueued or run is not enqueued again, so rerunning
                the command resumes.
            storage: Database URL or SQLite file of the study. Default: sqlite:///<root_dir>/studies.db.
            study_name: Name of the study in the storage. Default: the model class's name.
            seed: Seed of a sampler given by name. Default: the config's seed_everything when it is an int.
            root_dir: Directory of the study's trial logs, checkpoints and configs (<root_dir>/<study>/).
            best_config: File to write the best trial's full config to, for `fit --config`. Default:
                <root_dir>/<study>/best.yaml. With several monitors, each trial of the Pareto set is written
                to <root_dir>/<study>/pareto/trial_<n>.yaml instead.
            max_consecutive_failures: The study stops after this many failed trials in a row (null: never),
                unless they depend on the configuration (others succeed; out of memory, nan, or errors that differ).
            trial_timeout: Seconds after which a trial is stopped and marked FAIL; the study goes on.
            show_progress: Show the live progress display of the study.
            allow_budget_change: Continue a study whose trials ran with another trainer.max_epochs /
                trainer.max_steps (refused by default: trials of different lengths are not comparable).
            keep_checkpoints: What stays on disk once a trial ends: all; best (complete trials keep their best
                checkpoint, pruned and failed ones none); or an int k: only the study's k best trials keep theirs.
            checkpoint_every: Seconds between a running trial's resumable checkpoints (null: at every
                validation). A trial interrupted by a kill, SIGTERM, SIGUSR1 or Ctrl-C resumes from it when the
                command is run again.
            constraints: Outcome constraints on logged or built-in metrics (n_params, peak_memory_mb,
                time_per_epoch_s), e.g. {n_params: [<=, 1.0e6], val_acc: [">=", 0.9]}: the best trial is the
                best one that satisfies them all.
            cv: k-fold cross-validation: each trial trains k models, one per fold, and its value is their mean.
                The datamodule must have a for_fold(fold) method, e.g. lightning_hpo.KFoldDataModule.
            repeats: Train each configuration (each fold, with cv) with this many seeds; the value is the mean.
            stopper: Ends the study before n_trials: regret (once the GP's bound on how much the best trial
                can still improve falls below the evaluation noise: the spread of repeated evaluations, else
                the GP's noise estimate) or none. The decision is stored with the study: other workers stop too,
                and rerunning with --tune.stopper regret runs nothing; with none, the study continues.
        """
        if n_trials is None and timeout is None and not _is_grid(sampler):
            self._fail(
                "tune needs --tune.n_trials, --tune.timeout, or both (or --tune.sampler grid); "
                "otherwise it would never stop."
            )
        fit_parser = self._subcommand_parser("fit")
        base = self._base_fit_config()
        budget = training_budget(base.get("trainer") or {})
        coordinator = TrialCoordinator()
        try:
            directions = parse_mode(mode)
            monitor = check_monitor(monitor, directions)
            keep = check_keep_checkpoints(keep_checkpoints)
            every = check_checkpoint_every(checkpoint_every)
            parsed_constraints = parse_constraints(constraints)
            if best_config is not None and len(monitor) > 1:
                raise InvalidArgumentError(
                    "--tune.best_config names one file, but several monitors have no single best trial: leave it out; "
                    "each trial of the Pareto set is written to <root_dir>/<study>/pareto/trial_<n>.yaml."
                )
            space = search_space_from_config(search_space, search_space_of(type(self.model)))
            check_space_fits(functools.partial(_parse, fit_parser), base, space)
            sampler_seed = seed if seed is not None else _int_or_none(self.config["tune"].get("seed_everything"))
            evaluations = Evaluations(None if cv is None else check_folds(cv), check_repeats(repeats), sampler_seed)
            checked_stopper = check_stopper(stopper)  # before the study is opened: a typo creates no empty study
            name = check_study_name(study_name if study_name is not None else type(self.model).__name__)
            if coordinator.is_leader:  # under torchrun, only global rank 0 opens the study
                self.study = Study(
                    name,
                    search_space=space,
                    mode=list(directions),
                    storage=open_storage(storage, root_dir=root_dir),
                    sampler=by_name("sampler", sampler, SAMPLER_NAMES, Sampler, seed=sampler_seed),
                    pruner=by_name("pruner", pruner, PRUNER_NAMES, Pruner),
                    seed=sampler_seed,
                    constraints=parsed_constraints,
                )
                check_budget(name, self.study.trials, budget, allow_change=allow_budget_change)
                for params in _enqueued_configs(enqueue):
                    self.study.enqueue(params, skip_if_exists=True)
        except LightningHPOError as error:
            self._fail(str(error))
        study = self.study
        study_dir = study_directory(root_dir, name)
        # The config's own loggers (or the default one) get each trial's params and outcome, and
        # their W&B / MLflow runs end with the trial, so the next trial's logger starts a new one.
        trackers = TrialTrackers(None, study_name=name, study_dir=study_dir, monitor=monitor)

        def train_trial(trial: Trial) -> TrialTraining | EvaluatedTrial:
            options: dict[str, Any] = {
                "base": base,
                "monitor": monitor,
                "directions": directions,
                "study_dir": study_dir,
                "budget": budget,
                "resume_options": {"keep_checkpoints": keep, "checkpoint_every": every},
                "trackers": trackers,
                "constraints": parsed_constraints,
            }
            if not evaluations.several:
                return self._train_trial(trial, **options)
            evaluated = EvaluatedTrial(
                self.study, trial, evaluations, study_dir / f"trial_{trial.number}", directions, keep
            )
            return evaluated.train(functools.partial(self._train_evaluation, trial, options))

        try:
            options = RunOptions(
                n_trials=n_trials,
                timeout=timeout,
                max_consecutive_failures=max_consecutive_failures,
                trial_timeout=trial_timeout,
                stopper=checked_stopper,
            )
            progress = StudyProgress(study, n_trials=n_trials, enabled=show_progress, label=monitor)
            with coordinator, progress:
                run_study(coordinator, study, train_trial, options, [progress, trackers], monitor=monitor)
        except KeyboardInterrupt:
            where = study.storage.display_url if study is not None else "the study's storage"
            print(
                f"\nInterrupted. Every finished trial is saved in {where}; rerun the same command to resume the study.",
                file=sys.stderr,
            )
            raise SystemExit(130) from None
        except LightningHPOError as error:  # a misconfiguration that every trial would hit, e.g. a wrong monitor
            self._fail(str(error))
        if study is not None and len(study.directions) > 1:
            self.pareto_config_paths = write_pareto_configs(study, study_dir / "pareto")
        elif study is not None:
            written = write_best_config(study, Path(best_config) if best_config else study_dir / "best.yaml")
            self.best_config_path = written or self.best_config_path

    # -- tune's errors, and one trial ---------------------------------------------------

    def _fail(self, message: str) -> None:
        print(f"{Path(sys.argv[0]).name} tune: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    def _base_fit_config(self) -> dict[str, Any]:
        """The parsed ``tune`` config as a plain ``fit`` config: a dict without the ``tune`` section."""
        dumped = yaml.safe_load(_dump(self._subcommand_parser("tune"), self.config["tune"]))
        dumped.pop("tune", None)
        return dumped

    def _train_evaluation(
        self,
        trial: Trial,
        options: dict[str, Any],
        fold: Fold | None,
        seed: int | None,
        evaluation: dict[str, Any],
    ) -> TrialTraining:
        """One evaluation (a fold, a repeat) of a trial evaluated several times: see :mod:`lightning_hpo._evaluations`."""
        return self._train_trial(trial, **options, evaluation=evaluation, fold=fold, seed=seed)

    def _train_trial(
        self,
        trial: Trial,
        *,
        base: dict[str, Any],
        monitor: tuple[str, ...],
        directions: Sequence[str],
        constraints: Constraints | None = None,
        study_dir: Path,
        budget: dict[str, int],
        resume_options: dict[str, Any],
        trackers: TrialTrackers,
        evaluation: dict[str, Any] | None = None,
        fold: Fold | None = None,
        seed: int | None = None,
    ) -> TrialTraining:
        """Build and train one trial from its config (on every rank under torchrun); rank 0 then records it.

        ``evaluation``, ``fold``, ``seed``: one evaluation of a trial evaluated several times (its
        :class:`TrialTraining` options, the fold its datamodule serves, the seed it trains with).
        """
        release_memory_of_earlier_trials()
        fit_parser = self._subcommand_parser("fit")
        fit_config = _parse(fit_parser, with_params(base, trial.params))
        trainer_config = fit_config.trainer
        training = TrialTraining(
            self.study,
            trial,
            monitor=monitor,
            directions=directions,
            study_dir=study_dir,
            budget=budget,
            with_checkpoint=trainer_config.enable_checkpointing is not False,
            # A logger the config names is built per trial like any class; otherwise the trial's own.
            with_logger=trainer_config.logger in (None, True),
            **resume_options,
            trackers=trackers,
            constraints=constraints,
            **(evaluation or {}),
        )
        config_text = None
        if self.study is not None:
            # As LightningCLI's SaveConfigCallback writes it, so `fit --config` reads it back as it is.
            config_text = _dump(fit_parser, fit_config)
            self.study.storage.update_trial(
                trial.id, attrs={CONFIG_ATTR: config_text, SCRIPT_ATTR: sys.argv[0], LAUNCHER_ATTR: launcher()}
            )
        if training.resume_path is not None:  # after the config is stored: retraining it starts from zero
            fit_config.ckpt_path = str(training.resume_path)
        with self._building_trial(fit_config, training, TrialFiles(training, config_text)):
            # LightningCLI.__init__'s steps, for the trial's config, then `fit` as the CLI runs it.
            self._seed_from_config()
            if seed is not None:
                seed_everything(seed, workers=True, verbose=False)
            self.before_instantiate_classes()
            self.instantiate_classes()
            self.after_instantiate_classes()
            if fold is not None:
                self.datamodule = datamodule_for_fold(self.datamodule, dict(trial.params), fold, is_factory=False)
            return training.train(self.trainer, lambda: self._run_lightning_subcommand("fit"))

    @contextlib.contextmanager
    def _building_trial(self, fit_config: Namespace, training: TrialTraining, files: TrialFiles) -> Iterator[None]:
        """Make the CLI look as if ``fit`` had been run with ``fit_config``, for the time of one trial."""
        saved = self.subcommand, self.config, self.save_config_kwargs
        self.subcommand, self.config = "fit", Namespace(subcommand="fit", fit=fit_config)
        # The trial directory is the trial's own: a config.yaml left there by a deleted study is stale.
        self.save_config_kwargs = {**self.save_config_kwargs, "overwrite": True}
        self._trial_training, self._trial_files = training, files
        # LightningCLI caches the config it stores as the model's hyperparameters: drop the previous one.
        self._forget_config_dump()
        try:
            yield
        finally:
            self.subcommand, self.config, self.save_config_kwargs = saved
            self._trial_training = self._trial_files = None
            self._forget_config_dump()

    @override
    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """As Lightning's, plus, during ``tune``, the trial's callbacks, logger and directory."""
        training, files = self._trial_training, self._trial_files
        if training is not None and files is not None:
            config = self._trainer_init_config()
            callbacks = config.get("callbacks") or []
            callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
            trial_kwargs: dict[str, Any] = {
                "callbacks": [*callbacks, *training.callbacks, files],
                "default_root_dir": str(training.trial_dir),
            }
            if training.logger is not False:
                trial_kwargs["logger"] = training.logger
            trial_kwargs.update({k: v for k, v in TRIAL_TRAINER_DEFAULTS.items() if config.get(k) is None})
            kwargs = {**trial_kwargs, **kwargs}
        return super().instantiate_trainer(**kwargs)


def _parse(parser: LightningArgumentParser, config: dict[str, Any]) -> Namespace:
    """``parser.parse_object`` that raises (the trial then fails with the parser's message) instead of exiting."""
    exit_on_error = parser.exit_on_error
    parser.exit_on_error = False
    try:
        return parser.parse_object(config)
    finally:
        parser.exit_on_error = exit_on_error


def _dump(parser: LightningArgumentParser, config: Namespace) -> str:
    """The whole config as YAML, None values included: a None may differ from the default."""
    return parser.dump(config, **_DUMP_EVERY_VALUE)


def _is_grid(sampler: Any) -> bool:
    return str(sampler).lower() == "grid" or getattr(sampler, "claims_points", False)


def _enqueued_configs(enqueue: list[dict[str, Any]] | str | None) -> list[dict[str, Any]]:
    """``--tune.enqueue``: its list of configs, read from the YAML file it names if it is a path."""
    if enqueue is None:
        return []
    configs: Any = enqueue
    if isinstance(enqueue, str):
        path = Path(enqueue)
        if not path.is_file():
            raise InvalidArgumentError(
                f"--tune.enqueue must be a list of {{config key: value}} or a YAML file holding one, but {enqueue!r} "
                "is not a file."
            )
        configs = yaml.safe_load(path.read_text())
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InvalidArgumentError(
            f"--tune.enqueue must be a list of {{config key: value}}, e.g. [{{model.lr: 0.001}}], but got {configs!r}."
        )
    return configs


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
