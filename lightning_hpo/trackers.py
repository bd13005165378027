"""Experiment trackers per trial: ``Tuner(..., logger=...)``, and each trial's outcome recorded in them.

A trial trains with Lightning loggers of its own, made by the ``logger`` argument of the Tuner:

* ``None`` (the default): TensorBoard when it is installed (as Lightning's default), else CSV;
* a shortcut, ``"tensorboard"``, ``"csv"``, ``"mlflow"`` or ``"wandb"``, that groups the trials of a
  study the way each tracker's UI compares runs;
* a function ``trial -> Logger | list[Logger]``, e.g.
  ``lambda trial: WandbLogger(project="digits", group="study", name=f"trial_{trial.number}")``.

Whatever made them, when a trial ends (COMPLETE, PRUNED or FAIL) its loggers get its outcome:

* MLflow: one run ``trial_<n>`` per trial in an experiment named after the study; the trial's
  params; tags ``lightning_hpo.study``, ``lightning_hpo.trial``, ``lightning_hpo.state``; the metric
  ``trial/<monitor>`` (the trial's value); run status FINISHED, KILLED (pruned) or FAILED. One
  experiment per study rather than a parent run with nested trial runs: the experiment's run table
  and charts compare the trials directly, and a parent run would have to be created once for all
  the workers of a study, without a race. A trial trained several times (``cv``, ``repeats``) has a
  run per training (``trial_<n>/fold_<k>``, ``trial_<n>/repeat_<k>``), each ending with the trial's outcome.
* W&B: group = study, run name ``trial_<n>``, config = params; summary ``trial/<monitor>`` and
  ``trial/state``; the state as a tag; a FAIL trial's run ends as failed. As with MLflow, a run per
  training of a trial trained several times, each ending with the trial's outcome: the shortcut's runs
  are made with ``reinit="create_new"``, so ``wandb.run`` is not set to them (log with
  ``self.logger.experiment``, as Lightning's documentation does).
* TensorBoard: HParams plugin data, the params and ``trial/state`` as hyperparameters and
  ``trial/<monitor>`` as the metric, so the HParams tab of ``tensorboard --logdir <study_dir>``
  compares the trials.
* CSV: ``trial/<monitor>`` in ``metrics.csv``; params and state in ``hparams.yaml``.

A tracker that fails to take the outcome (a network error, say) gets a warning: the outcome is in
the study's storage already, and the study goes on.

The per-validation curve of the monitored metric is logged by Lightning itself, as the module logs it
(the MLflow shortcut's by MLflow's background thread, at most once a second, which ending the run
waits for). The MLflow and W&B shortcuts start each run, and end it, in a worker thread of the
process (see :mod:`lightning_hpo._shortcut_loggers`), and the W&B shortcut's ``run.log`` of each
logged step there too, in order: the trial's thread trains meanwhile, and goes on
to the next trial while the last one's run ends. Every metric, tag and the final status are in the
tracker's store (W&B: its run files) when the trial loop ends, before ``Tuner.fit`` returns
(:meth:`TrialTrackers.close`); a process that ends otherwise waits for them as it exits.
The MLflow shortcut writes params at once (they are few, and a merged write carrying one twice
would be refused whole): a param logged again with the same value is kept once, and one logged again
with another value raises MLflow's ``MlflowException`` ("Changing param values is not allowed") where
it is logged, as Lightning's default ``MLFlowLogger`` does.
A trial that resumes a preempted one from its checkpoint continues the interrupted trial's MLflow and
W&B runs of a shortcut: one run per trial, its steps going on.
Under torchrun every rank builds the trial's loggers (its Trainer needs them), but Lightning's
loggers only write on global rank 0, and only rank 0 records the outcome: one run per trial. With
``n_jobs`` each worker process makes and closes its own trials' loggers.

Over 500 lines although one thing, the trial's trackers from the ``logger`` argument to the
outcome in each tracker: a tenth of them is this documentation; the shortcuts' own loggers live in
:mod:`lightning_hpo._shortcut_loggers`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, WandbLogger

from lightning_hpo._mlflow_sqlite import flush, use_wal
from lightning_hpo._shortcut_loggers import StartsInBackground, TrialMLFlowLogger, TrialWandbLogger
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError, MissingExtraError
from lightning_hpo.trial import RESUME_DIR, Trial, TrialState

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

__all__ = [
    "SHORTCUTS",
    "LoggerArg",
    "TrialMLFlowLogger",
    "TrialTrackers",
    "check_logger_arg",
    "logger_object_error",
    "record_outcome",
    "tracker_runs",
]

#: The names ``Tuner(logger=...)`` accepts, and the module (and extra) each one needs.
SHORTCUTS: Mapping[str, tuple[str, str | None]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "csv": ("lightning", None),
    "mlflow": ("mlflow", "mlflow"),
    "wandb": ("wandb", "wandb"),
}

LoggerArg = Union[str, Callable[[Trial], Any], None]

_STATE_KEY = "trial/state"
#: In a trial's directory: the MLflow and W&B runs of its shortcut loggers, ``{"mlflow": run_id,
#: "wandb": run_id}``, which a trial that resumes it (in the same directory) continues.
RUN_IDS_FILE = "tracker_run_ids.json"
_MLFLOW_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
#: The least time between two writes of the MLflow shortcut's held metrics at a validation.
MLFLOW_WRITE_INTERVAL_S = 1.0


def check_logger_arg(logger: Any) -> LoggerArg:
    """``logger`` as ``Tuner(logger=...)`` takes it: ``None``, a shortcut or a function of the trial.

    A shortcut whose package is missing raises :class:`MissingExtraError` naming the extra to install.
    """
    if logger is None or (callable(logger) and not isinstance(logger, type)):
        return logger
    if not isinstance(logger, str):
        raise ArgumentTypeError(
            f"`logger` must be one of {list(SHORTCUTS)} or a function trial -> Logger | list[Logger], "
            f"but got {logger!r} ({type(logger).__name__}). A Logger object can't be shared by the trials: "
            f"write `logger=lambda trial: {type(logger).__name__}(...)`."
        )
    if logger not in SHORTCUTS:
        raise InvalidArgumentError(f"`logger` must be one of {list(SHORTCUTS)} or a function, but got {logger!r}.")
    module, extra = SHORTCUTS[logger]
    if importlib.util.find_spec(module) is None:
        install = f"lightning-hpo[{extra}]" if extra else module
        raise MissingExtraError(
            f"logger={logger!r} needs the {module} package, which is not installed: `pip install '{install}'`."
        )
    return logger


def logger_object_error(logger: Any) -> InvalidArgumentError:
    """The error for a Logger object in ``trainer_kwargs``: every trial needs loggers of its own."""
    return InvalidArgumentError(
        f"trainer_kwargs['logger'] must be True, False or absent, but got {logger!r}: the Tuner makes one logger "
        f"per trial, and one logger object would put every trial in one run. Pass `logger=lambda trial: {type(logger).__name__}(...)` to the Tuner "
        f"(a fresh logger per trial), or a shortcut: logger={'|'.join(map(repr, SHORTCUTS))}."
    )


class TrialTrackers:
    """Makes each trial's loggers, and records each trial's outcome in them when it ends.

    A :class:`~lightning_hpo._loop.TrialObserver` of the trial loop on the process that records
    trials (global rank 0): :meth:`watch` is told the Trainer's loggers once the trial trains (any
    loggers, also those a CLI config names), :meth:`finished` the finished trial.

    Args:
        logger: see :func:`check_logger_arg`.
        study_name: names the MLflow experiment and the W&B group.
        study_dir: trials log to ``study_dir / f"trial_{n}"``; the MLflow shortcut's SQLite store is
            ``study_dir.parent / "mlflow.db"`` (one store for every study of the root directory; WAL
            mode on a local disk, see :mod:`lightning_hpo._mlflow_sqlite`) unless ``MLFLOW_TRACKING_URI``
            is set.
        monitor: the monitored metrics, whose values the trackers get as ``trial/<metric>``.

    Example:
        >>> trackers = TrialTrackers("csv", study_name="demo", study_dir=Path("runs/demo"), monitor=("val_loss",))
        >>> type(trackers.loggers_for(Trial(number=0, state=TrialState.RUNNING, params={}))).__name__
        'CSVLogger'
    """

    def __init__(self, logger: LoggerArg, *, study_name: str, study_dir: Path, monitor: Sequence[str]) -> None:
        self.logger = check_logger_arg(logger)
        self.study_name = study_name
        self.study_dir = Path(study_dir)
        self.monitor = tuple(monitor)
        self._watched: dict[int, list[Logger]] = {}
        self._run_dirs: dict[int, Path] = {}  # where each trial's shortcut loggers note their runs
        self._mlflow_experiment_id: str | None = None  # the MLflow shortcut's, once known in this process
        self._worker: tuple[int, ThreadPoolExecutor] | None = None  # (its process id, the executor)
        self._ending: list[tuple[Trial, Logger, Future[None]]] = []

    def __getstate__(self) -> dict[str, Any]:
        # A copy for a worker process (n_jobs) gets its own thread, and no other trial's runs.
        return {**self.__dict__, "_worker": None, "_ending": [], "_watched": {}}

    def _executor(self) -> ThreadPoolExecutor:
        """The thread that starts and ends the shortcuts' runs, one after the other, in their order
        (a process forked from this one has none of its threads: it makes its own)."""
        if self._worker is None or self._worker[0] != os.getpid():
            self._worker = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="lightning_hpo-trackers"))
        return self._worker[1]

    def prepare(self) -> None:
        """Create what the trials' loggers share, once, before any trial runs (by the process that
        opened the study): the MLflow shortcut's store and experiment, which worker processes
        (``n_jobs``) would otherwise race to create."""
        if self.logger != "mlflow":
            return
        from mlflow.tracking import MlflowClient

        tracking_uri, artifact_location = self._mlflow_store()
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(self.study_name)
        if experiment is None:
            self._mlflow_experiment_id = client.create_experiment(self.study_name, artifact_location=artifact_location)
        elif experiment.lifecycle_stage == "active":  # a deleted one: MLflow's own error when a run is created
            self._mlflow_experiment_id = experiment.experiment_id
        if (local_store := self._mlflow_local_store()) is not None:
            use_wal(local_store)

    def _mlflow_local_store(self) -> Path | None:
        """The SQLite file of the MLflow shortcut's default store; ``None`` under ``MLFLOW_TRACKING_URI``."""
        return None if os.environ.get("MLFLOW_TRACKING_URI") else self.study_dir.parent / "mlflow.db"

    def _mlflow_store(self) -> tuple[str, str | None]:
        """The tracking URI, and where artifacts go: the study directory for the local default store,
        the server's choice (``None``) for ``MLFLOW_TRACKING_URI``."""
        local_store = self._mlflow_local_store()
        if local_store is None:
            return os.environ["MLFLOW_TRACKING_URI"], None
        return f"sqlite:///{local_store}", str(self.study_dir / "mlflow_artifacts")

    def loggers_for(self, trial: Trial, run_dir: Path | None = None) -> Logger | list[Logger]:
        """The loggers of ``trial``'s Trainer (on every rank under torchrun).

        ``run_dir``: where the training logs, in the study directory; default ``trial_<n>`` there. It
        names the shortcuts' runs: ``trial_3``, or ``trial_3/fold_1`` for a training of a trial
        evaluated several times (``cv``, ``repeats``). A trial that resumes an interrupted one logs on
        in that trial's directory, and the shortcuts' MLflow and W&B loggers in that trial's runs.
        """
        from lightning.pytorch.loggers import Logger

        if callable(self.logger):
            made = self.logger(trial)
            loggers = made if isinstance(made, (list, tuple)) else [made]
            if not loggers or not all(isinstance(lg, Logger) for lg in loggers):
                raise ArgumentTypeError(
                    f"The `logger` function must return a lightning.pytorch Logger or a non-empty list of them, "
                    f"but for trial {trial.number} it returned {made!r}."
                )
            return list(loggers) if isinstance(made, (list, tuple)) else made
        run_dir = Path(run_dir) if run_dir is not None else self.study_dir / f"trial_{trial.number}"
        self._run_dirs[trial.number] = run_dir
        logger = self._shortcut(self.logger or _default_shortcut(), trial, run_dir)
        if isinstance(logger, StartsInBackground):
            # Its run starts now, while the Trainer sets up; it ends with the trial, even one that fails
            # before it trains.
            logger.start_in(self._executor())
            self._watched.setdefault(trial.number, []).append(logger)
        return logger

    def _continued_run(self, trial: Trial, tracker: str) -> str | None:
        """The id of the ``tracker`` run that ``trial`` continues: the interrupted trial's, when it resumes one."""
        if RESUME_DIR not in trial.attrs:
            return None
        try:
            return json.loads((self._run_dirs[trial.number] / RUN_IDS_FILE).read_text()).get(tracker)
        except (OSError, ValueError):  # the interrupted trial died before its runs were noted: new runs
            return None

    def _shortcut(self, name: str, trial: Trial, run_dir: Path) -> Logger:
        from lightning.pytorch import loggers

        if name == "tensorboard":
            # No hp_metric placeholder: the trial's HParams data is written once, with its outcome.
            return loggers.TensorBoardLogger(run_dir.parent, name=run_dir.name, version="", default_hp_metric=False)
        if name == "csv":
            return loggers.CSVLogger(run_dir.parent, name=run_dir.name, version="")
        # "trial_3/fold_1": a training of a trial evaluated several times, named as its directory.
        run_dir_path, study_dir = run_dir.resolve(), self.study_dir.resolve()
        in_study = run_dir_path.relative_to(study_dir) if run_dir_path.is_relative_to(study_dir) else run_dir.name
        run_name = Path(in_study).as_posix()
        if name == "mlflow":
            tracking_uri, artifact_location = self._mlflow_store()
            continued = self._continued_run(trial, "mlflow")
            return TrialMLFlowLogger(
                experiment_name=self.study_name,
                run_name=run_name,
                tracking_uri=tracking_uri,
                tags={"lightning_hpo.study": self.study_name, "lightning_hpo.trial": str(trial.number)},
                artifact_location=artifact_location,
                run_id=continued,
                continued=continued is not None,
                params=trial.params,
                experiment_id=self._mlflow_experiment_id,
                local_store=self._mlflow_local_store(),
                flush_on=self.monitor,
                min_write_interval_s=MLFLOW_WRITE_INTERVAL_S,
                # MLflow's background thread writes each validation's metrics; ending the run
                # (record_outcome) waits until they are all in the store.
                synchronous=False,
            )
        save_dir = os.environ.get("WANDB_DIR") or run_dir
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        import wandb

        logger = TrialWandbLogger(
            name=run_name,
            group=self.study_name,
            save_dir=str(save_dir),
            job_type="trial",
            id=self._continued_run(trial, "wandb"),  # Lightning inits with resume="allow": the same run goes on
            # A run of its own for each training of a trial (cv, repeats), all open until the trial ends:
            # W&B then neither returns the open run nor sets it as the process's `wandb.run`, which
            # Lightning's next WandbLogger would take over instead of starting its own.
            reinit="create_new",
            # W&B lists the installed packages at every run's start, most of a run's fixed cost: the
            # trials of a process share one environment, so the list is made once (_note_runs writes it).
            settings=wandb.Settings(x_save_requirements=False),
        )
        # Lightning passes anonymous=None, which W&B warns about at every init ("has no effect").
        logger._wandb_init.pop("anonymous", None)
        return logger

    def watch(
        self, trial: Trial, loggers: Sequence[Logger], note_runs: Callable[[list[str]], None] | None = None
    ) -> list[str]:
        """Give ``loggers`` the trial's params now, and its outcome when it ends; where its runs are.

        A shortcut's run still starting in the background is noted once it has started, where the
        trial's thread first needs it (its first metrics written, the training's end at the latest):
        with ``note_runs``, called there with the runs' lines, an empty list is returned. Without it,
        this waits for the start and returns them.
        """
        # A trial trained several times (cv, repeats) has loggers per training (the shortcuts leave their
        # MLflow and W&B runs open): each gets the trial's outcome when it ends.
        earlier = [logger for logger in self._watched.get(trial.number, ()) if _run_of_its_own(logger)]
        self._watched[trial.number] = list({id(logger): logger for logger in [*earlier, *loggers]}.values())
        for logger in loggers:
            # The values as they are: the logger converts them as it converts the module's own hyperparameters
            # (MLflow refuses a second, differently written value of a param). TensorBoard: once, with the outcome.
            if isinstance(logger, (MLFlowLogger, WandbLogger, CSVLogger)):
                logger.log_hyperparams(dict(trial.params))

        def note() -> list[str]:
            if isinstance(self.logger, str):
                self._note_runs(trial, loggers)
            runs = tracker_runs(loggers)
            if note_runs is not None and runs:
                note_runs(runs)
            return runs

        starting = [logger for logger in loggers if isinstance(logger, StartsInBackground) and logger.starting]
        if starting and note_runs is not None:
            starting[0].when_started(note)  # a shortcut: its one logger
            return []
        return note()

    def _note_runs(self, trial: Trial, loggers: Sequence[Logger]) -> None:
        """Note the shortcut's MLflow / W&B run in the trial's directory, for a trial that resumes it."""
        runs = {}
        for logger in loggers:
            if isinstance(logger, MLFlowLogger):
                runs["mlflow"] = logger.run_id
                self._mlflow_experiment_id = logger.experiment_id
            elif isinstance(logger, WandbLogger):
                run = _wandb_run(logger)
                runs["wandb"] = run.id
                (Path(run.dir) / "requirements.txt").write_text(_requirements())
        run_dir = self._run_dirs.get(trial.number)
        if runs and run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / RUN_IDS_FILE).write_text(json.dumps(runs))

    def started(self, trial: Trial) -> None:
        """Nothing to do: a trial's loggers are made with its Trainer."""

    def finished(self, trial: Trial) -> None:
        """Record ``trial``'s outcome in its loggers and end their runs: the shortcuts' MLflow and W&B
        runs in the background (:meth:`close` waits for them), the others at once."""
        self._run_dirs.pop(trial.number, None)
        for logger in self._watched.pop(trial.number, ()):
            try:
                if isinstance(logger, StartsInBackground):
                    logger.join_start()  # here, on the trial's thread, with what waits for the start
                    ending = self._executor().submit(record_outcome, logger, trial, self.monitor, self.study_name)
                    self._ending.append((trial, logger, ending))
                else:
                    record_outcome(logger, trial, self.monitor, self.study_name)
            except Exception as error:  # noqa: BLE001 - the outcome is stored; a tracker's failure must not end the study
                _warn_not_recorded(logger, trial, error)
        self._collect_ended(wait=False)

    def close(self) -> None:
        """Wait until every run ended in the background has ended: its metrics, tags and final status
        are in the tracker's store (W&B: its run files) when this returns. The trial loop calls it
        when it ends, before ``Tuner.fit`` returns (and in each worker process of ``n_jobs``)."""
        self._collect_ended(wait=True)

    def _collect_ended(self, wait: bool) -> None:
        """Forget the runs that have ended (all of them, when ``wait``), warning about those that failed to."""
        pending = []
        for trial, logger, ending in self._ending:
            if not wait and not ending.done():
                pending.append((trial, logger, ending))
                continue
            try:
                ending.result()
            except Exception as error:  # noqa: BLE001 - as in finished()
                _warn_not_recorded(logger, trial, error)
        self._ending = pending


def _warn_not_recorded(logger: Logger, trial: Trial, error: BaseException) -> None:
    warnings.warn(
        f"{type(logger).__name__} could not record the outcome of trial {trial.number} "
        f"({trial.state.value}): {type(error).__name__}: {error}",
        stacklevel=3,
    )


def record_outcome(logger: Logger, trial: Trial, monitor: Sequence[str], study_name: str) -> None:
    """Write ``trial``'s state and value(s) to ``logger`` as its tracker shows them, and end its run."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    values = {f"trial/{name}": v for name, v in zip(monitor, trial.values or ()) if math.isfinite(v)}
    step = max(trial.intermediate_values, default=0)
    state = trial.state.value
    if isinstance(logger, MLFlowLogger):
        from mlflow.entities import Metric, RunTag

        if isinstance(logger, TrialMLFlowLogger):
            logger.write_held_metrics()
        client, run_id = logger.experiment, logger.run_id
        tags = {
            "lightning_hpo.study": study_name,
            "lightning_hpo.trial": str(trial.number),
            "lightning_hpo.state": state,
        }
        metrics = [Metric(key, value, int(time.time() * 1000), step) for key, value in values.items()]
        status = _MLFLOW_STATUS.get(trial.state, "FAILED")
        _end_mlflow_run(client, run_id, status, metrics, [RunTag(key, value) for key, value in tags.items()])
        if isinstance(logger, TrialMLFlowLogger) and logger.local_store is not None:
            flush(logger.local_store)  # the run's writes, committed without a flush, now on disk
    elif isinstance(logger, WandbLogger):
        if isinstance(logger, TrialWandbLogger) and (error := logger.unraised_write_error()) is not None:
            warnings.warn(
                f"W&B could not log all the steps of trial {trial.number}: {type(error).__name__}: {error}",
                stacklevel=2,
            )
        run = logger.experiment
        run.summary.update({**values, _STATE_KEY: state})
        run.tags = tuple(dict.fromkeys([*(run.tags or ()), state]))
        run.finish(exit_code=1 if trial.state is TrialState.FAIL else 0)
    elif isinstance(logger, TensorBoardLogger):
        _write_hparams(logger, trial, monitor, values, step)
    elif isinstance(logger, CSVLogger):
        logger.log_hyperparams({_STATE_KEY: state})
        if values:
            logger.log_metrics(values, step)
        logger.save()
    elif values:
        logger.log_metrics(values, step)
        logger.save()


def _end_mlflow_run(client: Any, run_id: str, status: str, metrics: list[Any], tags: list[Any]) -> None:
    """Write the outcome's metrics and tags to an MLflow run and end it, without MLflow's idle second.

    Ending a run (``set_terminated``) stops MLflow's background logging thread and waits until every
    write is in the store, but the thread waits for new writes in ``queue.get(timeout=1)`` and sees
    the stop only when that returns: up to a second per run. Under
    ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS`` it waits on the stop itself. So the variable is set for
    these few milliseconds only (writes during training are not merged), the outcome is written in
    the background, which wakes the thread, and the run ends at once, after that write. A value the
    user set for the variable is left as it is.
    """
    with _mlflow_thread_waits_on_stop():
        outcome = client.log_batch(run_id, metrics=metrics, tags=tags, synchronous=False)
        client.set_terminated(run_id, status)
    outcome.wait()  # the write's error, if the store refused it


@contextlib.contextmanager
def _mlflow_thread_waits_on_stop() -> Iterator[None]:
    name = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"
    if os.environ.get(name):
        yield
        return
    os.environ[name] = "1"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _write_hparams(logger: Any, trial: Trial, monitor: Sequence[str], values: dict[str, float], step: int) -> None:
    """TensorBoard's HParams data for one trial: its params and state, and its value(s) as the metrics.

    Every trial names every metric, with or without a value, since the HParams tab takes the metric
    columns from one trial's data.
    """
    try:
        from torch.utils.tensorboard.summary import hparams
    except ImportError:  # Lightning's TensorBoardLogger also runs on tensorboardX alone
        from tensorboardX.summary import hparams

    params = {name: _tensorboard_value(value) for name, value in trial.params.items()}
    params[_STATE_KEY] = trial.state.value
    metric_names = {f"trial/{name}": math.nan for name in monitor}
    experiment, start, end = hparams(
        params, metric_names, hparam_domain_discrete={_STATE_KEY: [s.value for s in TrialState]}
    )
    writer = logger.experiment
    file_writer = writer._get_file_writer()  # as Lightning's TensorBoardLogger.log_hyperparams writes them
    for summary in (experiment, start, end):
        file_writer.add_summary(summary, step)
    for key, value in values.items():
        writer.add_scalar(key, value, step)
    writer.flush()
    writer.close()


def tracker_runs(loggers: Sequence[Logger]) -> list[str]:
    """Where the MLflow and W&B runs of these loggers are, as ``"mlflow: ..."`` / ``"wandb: ..."`` lines."""
    from lightning.pytorch.loggers import WandbLogger

    runs = []
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            uri, run_id, experiment_id = logger._tracking_uri, logger.run_id, logger.experiment_id
            link = f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
            runs.append(f"mlflow: {link}" if uri.startswith("http") else f"mlflow: run {run_id} in {uri}")
        elif isinstance(logger, WandbLogger):
            run = _wandb_run(logger)
            runs.append(f"wandb: {run.url}" if run.url else f"wandb: offline run {run.id} in {Path(run.dir).parent}")
    return runs


def _wandb_run(logger: WandbLogger) -> Any:
    """``logger``'s W&B run, the shortcut's without waiting for the steps it is still writing."""
    return logger.run if isinstance(logger, TrialWandbLogger) else logger.experiment


@functools.lru_cache(maxsize=1)
def _requirements() -> str:
    """The installed packages as W&B saves them with a run (``requirements.txt``), listed once per process."""
    from importlib.metadata import distributions

    found = {(d.metadata["Name"], d.version) for d in distributions() if d.metadata and d.metadata["Name"]}
    return "".join(f"{name}=={version}\n" for name, version in sorted(found))


def _run_of_its_own(logger: Logger) -> bool:
    """Whether ``logger`` of a trial's training keeps its run when the trial trains again: all do but
    a W&B logger, whose run Lightning's ``WandbLogger`` of the next training takes over (the process's
    open run) unless it was made with ``reinit="create_new"``, as the shortcut's are."""
    from lightning.pytorch.loggers import WandbLogger

    return not isinstance(logger, WandbLogger) or logger._wandb_init.get("reinit") == "create_new"


def _default_shortcut() -> str:
    """TensorBoard when it is installed (as Lightning's default), else CSV."""
    has_tensorboard = any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))
    return "tensorboard" if has_tensorboard else "csv"


def _tensorboard_value(value: Any) -> Any:
    """A hyperparameter as TensorBoard's HParams data takes it (a number, a string or a bool)."""
    return value if isinstance(value, (bool, int, float, str)) else repr(value)
