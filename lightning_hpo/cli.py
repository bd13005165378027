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
    python train.py fit --config lightning_hpo/MyModel/best.yaml      # retrain the best trial

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

Parameters declared with :func:`~lightning_hpo.tunable` on the model class join it as ``model.<name>``;
an entry of the config replaces the decorator's for the same key, and ``model.<name>: null`` drops it.

**Each trial is the ``fit`` run of one config**: the parsed config with the trial's values put in,
checked by the ``fit`` parser, then built by LightningCLI's own steps exactly as ``fit`` builds it
(seed, model, datamodule, optimizer, trainer, callbacks, loggers) and trained by ``fit``. The trial
adds its reporter, best checkpoint and, unless the config names loggers, a logger, all under
``<root_dir>/<study>/trial_<n>/``, where LightningCLI also saves the trial's ``config.yaml``. Every
trial uses the config's ``seed_everything``, so trials differ by their hyperparameters only. The full
config of each trial is stored with it; at the end, the best one is written to ``best.yaml``.

**Under torchrun** (``torchrun --nproc_per_node=8 train.py tune ...``, with ``trainer.devices`` set to
the processes per node) every trial trains with DDP over all ranks; only global rank 0 opens the
study and writes ``best.yaml`` (see :mod:`lightning_hpo.distributed`).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import inspect
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import jsonargparse
import yaml
from jsonargparse import Namespace, class_from_function
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.cli import LightningCLI as _LightningCLI

from lightning_hpo.decorator import search_space_of
from lightning_hpo.distributed import TrialCoordinator
from lightning_hpo.exceptions import InvalidArgumentError, LightningHPOError
from lightning_hpo.export import CONFIG_ATTR, SCRIPT_ATTR, describe, export_trial
from lightning_hpo.pruners import Pruner
from lightning_hpo.samplers.base import Sampler
from lightning_hpo.space import Categorical, Domain, Float, Int, SearchSpace
from lightning_hpo.storage import open_storage
from lightning_hpo.study import Study, check_study_name, parse_mode
from lightning_hpo.training import (
    TRIAL_TRAINER_DEFAULTS,
    TrialTraining,
    check_monitor,
    quiet_lightning,
    release_memory_of_earlier_trials,
)
from lightning_hpo.trial import Trial, TrialState
from lightning_hpo.tuner import study_directory

__all__ = ["LightningCLI", "SAMPLER_NAMES", "PRUNER_NAMES", "search_space_from_config"]

#: Names accepted by ``--tune.sampler`` -> lightning_hpo class; a name works once its class exists.
SAMPLER_NAMES = {"sobol": "SobolSampler", "random": "RandomSampler", "gp": "GPSampler"}
#: Names accepted by ``--tune.pruner`` -> lightning_hpo class (built with its defaults).
PRUNER_NAMES = {"median": "MedianPruner", "nop": "NopPruner", "asha": "ASHAPruner", "hyperband": "HyperbandPruner"}

_DOMAIN_TYPES: dict[str, type] = {"float": Float, "int": Int, "categorical": Categorical}
# jsonargparse 4.49 renamed dump's skip_none to skip_unset.
_DUMP_EVERY_VALUE = (
    {"skip_unset": False}
    if tuple(map(int, jsonargparse.__version__.split(".")[:2])) >= (4, 49)
    else {"skip_none": False}
)
# Keys of a class_path/init_args block that are the block's own, not arguments of the class.
_CLASS_KEYS = ("class_path", "init_args", "dict_kwargs")


class LightningCLI(_LightningCLI):
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

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**_LightningCLI.subcommands(), "tune": set()}

    def tune(
        self,
        n_trials: int | None = 20,
        timeout: float | None = None,
        monitor: str | list[str] = "val_loss",
        mode: Literal["min", "max"] | list[Literal["min", "max"]] = "min",
        search_space: dict[str, Any] | None = None,
        sampler: Sampler | str | None = None,
        pruner: Pruner | str | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        seed: int | None = None,
        root_dir: str = "lightning_hpo",
        best_config: str | None = None,
        max_consecutive_failures: int | None = 5,
        trial_timeout: float | None = None,
        show_progress: bool = True,
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
                choices. Joins the @tunable space of the model class (as model.<name>); null drops a key.
            sampler: Chooses each trial's values: a name (sobol, random, gp) or a lightning_hpo Sampler
                class path with init_args. Default: the Study's default.
            pruner: Stops weak trials early: a name (median, nop, asha, hyperband) or a lightning_hpo
                Pruner class path with init_args. Default: the Study's default (asha).
            storage: Database URL or SQLite file of the study. Default: sqlite:///<root_dir>/studies.db.
            study_name: Name of the study in the storage. Default: the model class's name.
            seed: Seed of a sampler given by name. Default: the config's seed_everything when it is an int.
            root_dir: Directory of the study's trial logs, checkpoints and configs (<root_dir>/<study>/).
            best_config: File to write the best trial's full config to, for `fit --config`. Default:
                <root_dir>/<study>/best.yaml. With several monitors, each trial of the Pareto set is written
                to <root_dir>/<study>/pareto/trial_<n>.yaml instead.
            max_consecutive_failures: The study stops after this many failed trials in a row (null: never).
            trial_timeout: Seconds after which a trial is stopped and marked FAIL; the study goes on.
            show_progress: Show the live progress display of the study.
        """
        if n_trials is None and timeout is None:
            self._fail("tune needs --tune.n_trials, --tune.timeout, or both; otherwise it would never stop.")
        fit_parser = self._parser("fit")
        base = self._base_fit_config()
        coordinator = TrialCoordinator()
        try:
            directions = parse_mode(mode)
            monitor = check_monitor(monitor, directions)
            if best_config is not None and not isinstance(monitor, str):
                raise InvalidArgumentError(
                    "--tune.best_config names one file, but several monitors have no single best trial: leave it out; "
                    "each trial of the Pareto set is written to <root_dir>/<study>/pareto/trial_<n>.yaml."
                )
            space = search_space_from_config(search_space, search_space_of(type(self.model)))
            _check_space_fits(fit_parser, base, space)
            sampler_seed = seed if seed is not None else _int_or_none(self.config["tune"].get("seed_everything"))
            name = check_study_name(study_name if study_name is not None else type(self.model).__name__)
            if coordinator.is_leader:  # under torchrun, only global rank 0 opens the study
                self.study = Study(
                    name,
                    search_space=space,
                    mode=list(directions),
                    storage=open_storage(storage, root_dir=root_dir),
                    sampler=_by_name("sampler", sampler, SAMPLER_NAMES, Sampler, seed=sampler_seed),
                    pruner=_by_name("pruner", pruner, PRUNER_NAMES, Pruner),
                    seed=sampler_seed,
                )
        except LightningHPOError as error:
            self._fail(str(error))
        study = self.study
        study_dir = study_directory(root_dir, name)

        def train_trial(trial: Trial) -> TrialTraining:
            return self._train_trial(trial, base=base, monitor=monitor, mode=directions, study_dir=study_dir)

        try:
            with quiet_lightning(), coordinator:
                coordinator.run_trials(
                    study,
                    train=train_trial,
                    record=lambda trial, training: training.finish(),
                    n_trials=n_trials,
                    timeout=timeout,
                    max_consecutive_failures=max_consecutive_failures,
                    trial_timeout=trial_timeout,
                    show_progress=show_progress,
                    progress_label=monitor,
                )
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
            self._write_pareto_configs(study_dir / "pareto")
        elif study is not None:
            self._write_best_config(Path(best_config) if best_config else study_dir / "best.yaml")

    # -- the tune subcommand's parser and dispatch ---------------------------------------

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        # Lightning takes each subcommand's description from getattr(trainer_class, name). Trainer has
        # no `tune`, so lend the class one while the parsers are built; trainers are built later from
        # the user's own class.
        trainer_class = self.trainer_class
        klass = trainer_class if isinstance(trainer_class, type) else class_from_function(trainer_class)
        if not hasattr(klass, "tune"):
            self.trainer_class = type(klass.__name__, (klass,), {"tune": type(self).tune})
        try:
            super()._add_subcommands(parser, **kwargs)
        finally:
            self.trainer_class = trainer_class

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        if subcommand != "tune":
            return super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        parser = self.init_parser(**kwargs)
        self._add_arguments(parser)
        # Under --tune.*, so they never clash with the model's, data's or trainer's arguments.
        added = parser.add_method_arguments(type(self), "tune", nested_key="tune")
        self._subcommand_method_arguments["tune"] = added
        return parser

    def _run_subcommand(self, subcommand: str) -> None:
        if subcommand != "tune":
            super()._run_subcommand(subcommand)
            return
        # As Lightning runs the others: before_<subcommand> hook, the subcommand, after_<subcommand> hook.
        before, after = getattr(self, "before_tune", None), getattr(self, "after_tune", None)
        if callable(before):
            before()
        options = self.config_init["tune"]["tune"]
        self.tune(**{name: options[name] for name in inspect.signature(self.tune).parameters})
        if callable(after):
            after()

    def _fail(self, message: str) -> None:
        print(f"{Path(sys.argv[0]).name} tune: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    # -- one trial ------------------------------------------------------------------------

    def _base_fit_config(self) -> dict[str, Any]:
        """The parsed ``tune`` config as a plain ``fit`` config: a dict without the ``tune`` section."""
        dumped = yaml.safe_load(_dump(self._parser("tune"), self.config["tune"]))
        dumped.pop("tune", None)
        return dumped

    def _train_trial(
        self, trial: Trial, *, base: dict[str, Any], monitor: str | list[str], mode: Sequence[str], study_dir: Path
    ) -> TrialTraining:
        """Build and train one trial from its config (on every rank under torchrun); rank 0 then records it."""
        release_memory_of_earlier_trials()
        fit_parser = self._parser("fit")
        fit_config = _parse(fit_parser, _with_params(base, trial.params))
        if self.study is not None:
            self.study.storage.update_trial(
                trial.id,
                attrs={
                    # As LightningCLI's SaveConfigCallback writes it, so `fit --config` reads it back as it is.
                    CONFIG_ATTR: _dump(fit_parser, fit_config),
                    SCRIPT_ATTR: sys.argv[0],
                },
            )
        trainer_config = fit_config.trainer
        training = TrialTraining(
            self.study,
            trial,
            monitor=monitor,
            mode=mode,
            study_dir=study_dir,
            with_checkpoint=trainer_config.enable_checkpointing is not False,
            # A logger the config names is built per trial like any class; otherwise the trial's own.
            with_logger=trainer_config.logger in (None, True),
        )
        with self._building_trial(fit_config, training):
            # LightningCLI.__init__'s steps, for the trial's config, then `fit` as the CLI runs it.
            self._set_seed()
            self.before_instantiate_classes()
            self.instantiate_classes()
            self.after_instantiate_classes()
            return training.train(self.trainer, lambda: self._run_subcommand("fit"))

    @contextlib.contextmanager
    def _building_trial(self, fit_config: Namespace, training: TrialTraining) -> Iterator[None]:
        """Make the CLI look as if ``fit`` had been run with ``fit_config``, for the time of one trial."""
        saved = self.subcommand, self.config, self.save_config_kwargs
        self.subcommand, self.config = "fit", Namespace(subcommand="fit", fit=fit_config)
        # The trial directory is the trial's own: a config.yaml left there by a deleted study is stale.
        self.save_config_kwargs = {**self.save_config_kwargs, "overwrite": True}
        self._trial_training = training
        # LightningCLI caches the config it stores as the model's hyperparameters: drop the previous one.
        self.__dict__.pop("config_dump", None)
        try:
            yield
        finally:
            self.subcommand, self.config, self.save_config_kwargs = saved
            self._trial_training = None
            self.__dict__.pop("config_dump", None)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """As Lightning's, plus, during ``tune``, the trial's callbacks, logger and directory."""
        training = self._trial_training
        if training is not None:
            config = self._get(self.config_init, "trainer", default={})
            callbacks = config.get("callbacks") or []
            callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
            trial_kwargs: dict[str, Any] = {
                "callbacks": callbacks + training.callbacks,
                "default_root_dir": str(training.trial_dir),
            }
            if training.logger is not False:
                trial_kwargs["logger"] = training.logger
            trial_kwargs.update({k: v for k, v in TRIAL_TRAINER_DEFAULTS.items() if config.get(k) is None})
            kwargs = {**trial_kwargs, **kwargs}
        return super().instantiate_trainer(**kwargs)

    # -- the end ---------------------------------------------------------------------------

    def _write_best_config(self, path: Path) -> None:
        assert self.study is not None
        if not any(t.state is TrialState.COMPLETE for t in self.study.trials):
            print(f"No trial of study {self.study.name!r} completed, so there is no best config to write.")
            return
        best = self.study.best_trial
        params = ", ".join(f"{k}={v!r}" for k, v in best.params.items())
        print(f"Best: {describe(best, self.study.name)}: {params}")
        if best.attrs.get(CONFIG_ATTR) is None:
            print("That trial was not run by `tune`, so it has no stored config to write.")
            return
        shown = _shown_path(path)
        command = f"python {_shown_path(Path(sys.argv[0]))} fit --config {shown}"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"Best config: {describe(best, self.study.name)}.\nRetrain it: {command}"
        path.write_text(export_trial(best, "yaml", header=header))
        self.best_config_path = path
        print(f"Best config written to {shown}; retrain it with:\n  {command}")

    def _write_pareto_configs(self, directory: Path) -> None:
        """Several objectives: print the Pareto set and write each of its trials' configs to ``directory``."""
        assert self.study is not None
        front = self.study.best_trials
        if not front:
            print(f"No trial of study {self.study.name!r} completed, so there is no Pareto set to write.")
            return
        print(f"Pareto set of study {self.study.name!r}: {len(front)} trial(s), none better in every objective.")
        written = []
        for trial in front:
            params = ", ".join(f"{k}={v!r}" for k, v in trial.params.items())
            print(f"  {describe(trial, self.study.name)}: {params}")
            if trial.attrs.get(CONFIG_ATTR) is None:
                continue
            path = directory / f"trial_{trial.number}.yaml"
            command = f"python {_shown_path(Path(sys.argv[0]))} fit --config {_shown_path(path)}"
            directory.mkdir(parents=True, exist_ok=True)
            header = f"Pareto-optimal: {describe(trial, self.study.name)}.\nRetrain it: {command}"
            path.write_text(export_trial(trial, "yaml", header=header))
            written.append(path)
            print(f"    retrain it with: {command}")
        self.pareto_config_paths = tuple(written)


def search_space_from_config(spec: Mapping[str, Any] | None, decorated: SearchSpace | None = None) -> SearchSpace:
    """The study's space: the ``@tunable`` space of the model (as ``model.<name>``) updated by ``spec``.

    ``spec`` maps config keys to domains written as in the module documentation; ``init_args`` in a
    key is dropped (``model.init_args.lr`` is ``model.lr``); a ``None`` domain removes the key.

    Example:
        >>> search_space_from_config({"model.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}})
        SearchSpace({'model.lr': Float(0.0001, 0.1, log=True)})
    """
    domains: dict[str, Domain] = {f"model.{name}": domain for name, domain in (decorated or {}).items()}
    if spec is not None and not isinstance(spec, Mapping):
        raise InvalidArgumentError(f"tune.search_space must map config keys to domains, but got {spec!r}.")
    for key, domain_spec in (spec or {}).items():
        key = ".".join(part for part in str(key).split(".") if part != "init_args")
        if domain_spec is None:
            domains.pop(key, None)
        else:
            domains[key] = _domain(key, domain_spec)
    if not domains:
        raise InvalidArgumentError(
            "The search space is empty: give tune.search_space (e.g. {model.lr: {type: float, low: 1.0e-4, "
            "high: 0.1, log: true}}) or decorate the model class with @lightning_hpo.tunable(...)."
        )
    return SearchSpace(domains)


def _domain(key: str, spec: Any) -> Domain:
    if isinstance(spec, (list, tuple)):
        spec = {"type": "categorical", "choices": list(spec)}
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if not isinstance(kind, str) or kind not in _DOMAIN_TYPES:
        raise InvalidArgumentError(
            f"tune.search_space[{key!r}] must be a mapping with type float, int or categorical, or a list of "
            f"choices, but got {spec!r}."
        )
    domain_cls = _DOMAIN_TYPES[kind]
    arguments = {k: v for k, v in spec.items() if k != "type"}
    accepted = [n for n in inspect.signature(domain_cls).parameters]
    unknown = sorted(set(arguments) - set(accepted))
    missing = [
        n for n, p in inspect.signature(domain_cls).parameters.items() if p.default is p.empty and n not in arguments
    ]
    if unknown or missing:
        raise InvalidArgumentError(
            f"tune.search_space[{key!r}]: a {kind} domain takes {accepted}, but got {spec!r}"
            + (f" (unknown: {unknown})" if unknown else "")
            + (f" (missing: {missing})" if missing else "")
            + "."
        )
    try:
        return domain_cls(**arguments)
    except LightningHPOError as error:
        raise type(error)(f"tune.search_space[{key!r}]: {error}") from None


def _locate(config: dict[str, Any], key: str) -> tuple[Any, Any]:
    """The container in ``config`` and the index in it of the value that search-space ``key`` names.

    ``init_args`` is implied: ``model.lr`` is ``model.init_args.lr`` when the model is given by
    ``class_path``; list items are named by position (``trainer.callbacks.0.patience``).
    """
    node: Any = config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and "class_path" in node and part not in _CLASS_KEYS:
            node = node.setdefault("init_args", {})
        if isinstance(node, dict) and part in node:
            index: Any = part
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            index = int(part)
        else:
            where = ".".join(parts[:depth])
            if isinstance(node, dict):
                names = sorted(n for n in node if n not in _CLASS_KEYS)
                close = difflib.get_close_matches(part, names, n=1)
                has = f"it has {names}" + (f"; did you mean {'.'.join([*parts[:depth], close[0]])!r}?" if close else "")
            elif node is None:
                has = "it is null in the config: set it first"
            else:
                has = f"it is {node!r}"
            raise InvalidArgumentError(
                f"Search-space key {key!r} names nothing in the config: "
                f"{repr(where) if where else 'the config'} has no {part!r} ({has})."
            )
        if depth == len(parts) - 1:
            return node, index
        node = node[index]
    raise AssertionError("unreachable: a key has at least one part")


def _with_params(base: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with each search-space key set to its value in ``params``."""
    config = copy.deepcopy(base)
    for key, value in params.items():
        node, index = _locate(config, key)
        node[index] = list(value) if isinstance(value, tuple) else value
    return config


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


def _check_space_fits(fit_parser: LightningArgumentParser, base: dict[str, Any], space: SearchSpace) -> None:
    """Fail before the first trial when a key names nothing in the config or a domain gives the wrong type."""
    for key, domain in space.items():
        probes = domain.choices if isinstance(domain, Categorical) else (domain.low,)
        for value in probes:
            try:
                _parse(fit_parser, _with_params(base, {key: value}))
            except LightningHPOError:
                raise
            except Exception as error:  # noqa: BLE001 - the parser's message says what does not fit
                raise InvalidArgumentError(
                    f"Search-space key {key!r}: the config does not accept the value {value!r} of {domain!r}: {error}"
                ) from None


def _by_name(kind: str, value: Any, names: Mapping[str, str], base: type, **kwargs: Any) -> Any:
    """A sampler or pruner given by name, built with ``kwargs``; instances pass through."""
    if value is None or isinstance(value, base):
        return value
    import lightning_hpo

    available = {name: cls for name, cls in names.items() if hasattr(lightning_hpo, cls)}
    cls_name = available.get(str(value).lower())
    if cls_name is None:
        raise InvalidArgumentError(
            f"--tune.{kind} {value!r} is neither a known name ({', '.join(available)}) nor a {base.__name__} "
            f"class path (e.g. lightning_hpo.{next(iter(available.values()))})."
        )
    cls = getattr(lightning_hpo, cls_name)
    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in kwargs.items() if k in accepted})


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (shorter commands to copy)."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)
