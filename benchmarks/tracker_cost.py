"""What an experiment tracker costs a trial: ``Tuner(logger=...)`` against no logger at all.

    nice -n 10 python -m benchmarks.tracker_cost                 # writes benchmarks/TRACKERS.md
    python -m benchmarks.tracker_cost --repeats 1 --trials 2 --out /tmp/trackers.md   # a quick look
    python -m benchmarks.tracker_cost --logging-only   # the ms a trial's thread spends in its tracker, no training
    nice -n 10 python -m benchmarks.tracker_cost --trackers mlflow --repeats 5 --out /tmp/mlflow.md  # one tracker
    nice -n 10 python -m benchmarks.tracker_cost --lengths example --out /tmp/example.md  # the example's trials only

Each repetition runs, for every tracker, a new study of the digits MLP of ``examples/digits.py``
(``SobolSampler`` and ``NopPruner``: every tracker trains the same configurations), with trials of
three lengths: short (2 validations) and long (40 validations, one after every training batch), with
the Trainer settings of ``benchmarks/tuner_overhead.py`` (one validation batch); and the example's
own trial (``example``): its Trainer settings, 15 epochs of 20 batches, a validation of the whole
validation split after each epoch, ``log_every_n_steps=10``. Each length runs with
``logger=False`` in ``trainer_kwargs`` (the baseline), then ``"csv"``, ``"tensorboard"``, ``"mlflow"``
(its default local SQLite store) and ``"wandb"`` (offline mode, its run files on disk). The trackers
take turns in a rotating order, each after an untimed ``gc.collect()``; a warm-up study of each is not
timed (imports, MLflow's database creation). The report gives, per tracker, the median and quartiles
over repetitions of seconds per trial and of the ratio to the baseline measured in the same repetition,
in wall time and in the CPU time of the process (all its threads: what a tracker's background work
costs even where it overlaps training; W&B's service process is not counted).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.regret import quartiles_cell
from benchmarks.tuner_overhead import LONG, SHORT, Length, run_tuner
from lightning_hpo.training import quiet_lightning

HERE = Path(__file__).resolve().parent
#: The seconds of the last run, for ``--report-only``.
DEFAULT_JSON = HERE / "out" / "tracker_cost.json"
#: ``None``: no logger (``trainer_kwargs["logger"] = False``), the baseline.
TRACKERS: tuple[str | None, ...] = (None, "csv", "tensorboard", "mlflow", "wandb")
#: The trial of ``python examples/digits.py``: its default Trainer settings (on the CPU).
EXAMPLE = Length("example", 15, {"max_epochs": 15, "log_every_n_steps": 10, "limit_val_batches": 1.0})
LENGTHS = {length.name: length for length in (SHORT, LONG, EXAMPLE)}


def _name(tracker: str | None) -> str:
    return tracker or "no logger"


def run_study(tracker: str | None, n: int, length: Length, root: Path) -> dict[str, float]:
    """Seconds per trial (``wall``, and ``cpu``: this process's, all its threads) of a new study of
    ``n`` trials logging to ``tracker``."""
    no_logger = {"logger": False} if tracker is None else {}
    seconds = run_tuner(n, length, root, tuner_kwargs={"logger": tracker}, **no_logger)
    return {clock: value / n for clock, value in seconds.items()}


def measure(
    repeats: int,
    n: int,
    root: Path,
    trackers: Sequence[str | None] = TRACKERS,
    lengths: Sequence[Length] = (SHORT, LONG, EXAMPLE),
) -> list[dict[str, dict[str, float]]]:
    """Per repetition: ``{length: {tracker: wall seconds per trial}}``, for the baseline and ``trackers``,
    and the same of this process's CPU seconds under ``"cpu"`` (``{"cpu": {length: {tracker: ...}}}``)."""
    trackers = (None, *(t for t in trackers if t is not None))
    for tracker in trackers:
        run_study(tracker, 1, SHORT, root / f"warm-up-{_name(tracker)}")
    runs = []
    for repeat in range(repeats):
        seconds: dict[str, Any] = {length.name: {} for length in lengths}
        seconds["cpu"] = {length.name: {} for length in lengths}
        order = trackers[repeat % len(trackers) :] + trackers[: repeat % len(trackers)]
        for length in lengths:
            for tracker in order:
                gc.collect()
                where = root / f"{repeat}-{length.name}-{_name(tracker)}"
                measured = run_study(tracker, n, length, where)
                seconds[length.name][_name(tracker)] = measured["wall"]
                seconds["cpu"][length.name][_name(tracker)] = measured["cpu"]
        runs.append(seconds)
        described = "; ".join(
            f"{length}: " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in per.items())
            for length, per in seconds.items()
            if length != "cpu"
        )
        print(f"repetition {repeat + 1}/{repeats}: {described}", flush=True)
    return runs


def report(runs: Sequence[Mapping[str, Mapping[str, float]]], n: int, command: str, made: str) -> str:
    import lightning
    import mlflow
    import tensorboard
    import torch
    import wandb

    baseline = _name(None)
    measured = [LENGTHS[name] for name in runs[0] if name != "cpu"]
    names = [baseline, *(name for name in runs[0][measured[0].name] if name != baseline)]
    lines = [
        "# What an experiment tracker costs a trial",
        "",
        f"On {platform.node()} ({os.cpu_count()} CPUs, one torch thread); Python {platform.python_version()}, torch "
        f"{torch.__version__}, lightning {lightning.__version__}, mlflow {mlflow.__version__}, tensorboard "
        f"{tensorboard.__version__}, wandb {wandb.__version__}. `{command}`, "
        f"{made}. See the docstring of `benchmarks/tracker_cost.py`.",
        "",
        f"{len(runs)} repetitions of {n} trials per tracker and length; median [quartiles] over repetitions. "
        f"Ratio: seconds per trial with the tracker / with no logger, in the same repetition; of the "
        f"process's CPU time: the same for the CPU seconds of the process running the trials (all its threads; "
        f"not W&B's service process), less sensitive than wall time to other jobs on the machine.",
        "",
    ]
    for length in measured:
        lines += [
            f"## {length.name.capitalize()} trials ({length.validations} validations)",
            "",
            "| logger | ms per trial | ratio to no logger | ratio of the process's CPU time |",
            "|---|---|---|---|",
        ]
        for tracker in names:
            ms = [1000 * run[length.name][tracker] for run in runs]
            ratios = [run[length.name][tracker] / run[length.name][baseline] for run in runs]
            cpu = [run["cpu"][length.name][tracker] / run["cpu"][length.name][baseline] for run in runs if "cpu" in run]
            cpu_cell = quartiles_cell(cpu, 2) if cpu else "-"
            lines.append(f"| {tracker} | {quartiles_cell(ms, 0)} | {quartiles_cell(ratios, 2)} | {cpu_cell} |")
        lines.append("")
    if SHORT in measured and LONG in measured:
        lines += _line_section(runs, names[1:])
    lines += [
        "Reading it: the short and long digits trials last a second or two, so a tracker's fixed cost (creating "
        "and ending a run: W&B starts a run through its service process, MLflow creates and updates rows of its "
        "store) is a large share of them; for a trial of minutes, `fixed + per_validation * validations` over its "
        'length is the share to expect. The `"mlflow"` and `"wandb"` shortcuts start and end each run in a worker '
        "thread of the trials' process, joined where the trial first needs the run and before `Tuner.fit` returns. "
        'The `"mlflow"` shortcut logs metrics from a background thread at validations, at most once a second '
        "(`MLFlowLogger(synchronous=False)`; ending the run waits for them, without MLflow's idle second), "
        "and its own SQLite store (WAL mode) commits without flushing the disk each time, ending each run with one "
        'flush; its params are written at once. The `"wandb"` shortcut lists the installed packages once per '
        "process instead of at every run's start (W&B's `requirements.txt`, written into each trial's run), and "
        "its `run.log` of each logged step runs in the worker thread too, in order. W&B, "
        "TensorBoard and CSV write each step to a buffer or another process. Timings on a shared machine are "
        "noisy: the quartiles say how much.",
        "",
    ]
    return "\n".join(lines)


def _line_section(runs: Sequence[Mapping[str, Mapping[str, float]]], trackers: Sequence[str]) -> list[str]:
    """The table of each tracker's extra cost fitted as a line through its short and long trials."""
    lines = [
        "## What a tracker adds, as a line",
        "",
        "Each tracker's extra seconds per trial (over no logger, in the same repetition), fitted as "
        f"`fixed + per_validation * validations` through its short ({SHORT.validations} validations) and long "
        f"({LONG.validations}) trials: what a longer trial of yours would pay.",
        "",
        "| logger | extra ms per trial (fixed) | extra ms per validation |",
        "|---|---|---|",
    ]
    for tracker in trackers:
        fixed, per_validation = zip(*(extra_line(run, tracker) for run in runs))
        lines.append(f"| {tracker} | {quartiles_cell(fixed, 0)} | {quartiles_cell(per_validation, 1)} |")
    return [*lines, ""]


def extra_line(run: Mapping[str, Mapping[str, float]], tracker: str) -> tuple[float, float]:
    """``(fixed ms, ms per validation)`` that ``tracker`` adds to a trial in one repetition."""
    baseline = _name(None)
    short, long = (1000 * (run[n.name][tracker] - run[n.name][baseline]) for n in (SHORT, LONG))
    per_validation = (long - short) / (LONG.validations - SHORT.validations)
    return short - per_validation * SHORT.validations, per_validation


def logging_cost(trials: int, validations: int, root: Path) -> dict[str, tuple[float, float, float]]:
    """Milliseconds a trial's own thread spends in its tracker, without training: the shortcuts against
    the same loggers as Lightning makes them by default (MLflow synchronous, W&B listing the packages
    at every run's start). Per tracker, medians over ``trials`` runs: ``(start, per validation, end)``:
    making the loggers and giving them the params; one ``log_metrics``; recording the outcome and
    ending the run (for the MLflow shortcut, waiting for its background thread's writes: in a real
    trial they overlap training)."""
    import statistics
    import time

    from lightning.pytorch.loggers import MLFlowLogger, WandbLogger

    from lightning_hpo.trackers import TrialTrackers
    from lightning_hpo.trial import Trial, TrialState

    store = f"sqlite:///{root / 'mlflow.db'}"
    variants: dict[str, Any] = {
        "mlflow (synchronous, Lightning's default)": lambda trial: MLFlowLogger("cost-sync", tracking_uri=store),
        "mlflow shortcut": "mlflow",
        "wandb (packages listed per run)": lambda trial: WandbLogger(save_dir=str(root), group="cost"),
        "wandb shortcut": "wandb",
    }
    costs = {}
    for name, logger in variants.items():
        trackers = TrialTrackers(logger, study_name="cost", study_dir=root / "cost", monitor=("val_loss",))
        trackers.prepare()
        timings = []
        for number in range(trials + 1):  # the first run is a warm-up
            trial = Trial(number=number, state=TrialState.RUNNING, params={"lr": 0.1})
            start = time.perf_counter()
            loggers = trackers.loggers_for(trial)
            trackers.watch(trial, loggers if isinstance(loggers, list) else [loggers])
            logged = time.perf_counter()
            for step in range(validations):
                for lg in loggers if isinstance(loggers, list) else [loggers]:
                    lg.log_metrics({"val_loss": 1.0 / (step + 1)}, step)
            ended = time.perf_counter()
            reports = {step: 1.0 / (step + 1) for step in range(validations)}
            done = Trial(number, TrialState.COMPLETE, {"lr": 0.1}, values=(0.5,), intermediate_values=reports)
            trackers.finished(done)
            timings.append((logged - start, (ended - logged) / validations, time.perf_counter() - ended))
        costs[name] = tuple(1000 * statistics.median(column) for column in zip(*timings[1:]))
    return costs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--trials", type=int, default=4, help="trials per study (default 4)")
    parser.add_argument(
        "--trackers", nargs="+", choices=TRACKERS[1:], default=TRACKERS[1:], help="against no logger (default: all)"
    )
    parser.add_argument(
        "--lengths", nargs="+", choices=list(LENGTHS), default=list(LENGTHS), help="trial lengths (default: all)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "TRACKERS.md", help="the Markdown report")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="the seconds measured, for --report-only")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from --json, measuring nothing")
    parser.add_argument(
        "--logging-only", action="store_true", help="print the ms a trial's thread spends in its tracker, no training"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import sys

    import torch

    args = parse_args(argv)
    torch.set_num_threads(1)
    # W&B without an account or network: its run files are written as they would be synced.
    os.environ.update({"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if args.logging_only:
        with tempfile.TemporaryDirectory(prefix="tracker-cost-") as tmp, quiet_lightning("val_loss"):
            os.environ["WANDB_DIR"] = tmp
            costs = logging_cost(args.trials, LONG.validations, Path(tmp))
        print("| logger | start ms | ms per validation | end ms |\n|---|---|---|---|")
        for name, (start, per_validation, end) in costs.items():
            print(f"| {name} | {start:.0f} | {per_validation:.1f} | {end:.0f} |")
        return 0
    if args.report_only:
        saved = json.loads(args.json.read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="tracker-cost-") as tmp, quiet_lightning("val_loss"):
            os.environ["WANDB_DIR"] = tmp
            runs = measure(args.repeats, args.trials, Path(tmp), args.trackers, [LENGTHS[n] for n in args.lengths])
        command = "python -m benchmarks.tracker_cost " + " ".join(sys.argv[1:] if argv is None else argv)
        made = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        saved = {"runs": runs, "trials": args.trials, "command": command.strip(), "made": made}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(saved, indent=1))
    text = report(saved["runs"], saved["trials"], saved["command"], saved["made"])
    args.out.write_text(text + "\n")
    print(text)
    print(f"Written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
