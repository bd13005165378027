"""What ``lightning_hpo.Tuner`` costs on top of the training it runs.

    python -m benchmarks.tuner_overhead                  # about 10 min on 2 cores; writes benchmarks/TUNER_OVERHEAD.md
    python -m benchmarks.tuner_overhead --repeats 2 --trials 3 --out /tmp/overhead.md   # a quick look

The same Sobol configurations of the digits MLP of ``examples/digits.py`` are trained in each
repetition by both sides:

* **bare**: a loop of ``Trainer.fit``, one new module and Trainer per configuration, with
  Lightning's default logger and a ``ModelCheckpoint`` keeping the best ``val_loss`` checkpoint
  (the one the Tuner adds: the two sides then write the same checkpoints);
* **tuner**: ``lightning_hpo.Tuner`` with ``SobolSampler`` and ``NopPruner`` on a SQLite file,
  whose trial ``n`` takes the same Sobol point ``n``; no progress display.

Both sides seed each trial alike (``seed + n``) and give the Trainer the same settings (including
the Tuner's: no progress bar, no model summary), so they train the same models: what differs is
the Tuner's own work (storage, sampling, reporting, its callback and logger, memory release). One
torch thread; the two sides alternate (bare first in even repetitions, Tuner first in odd ones), and
each starts after an untimed ``gc.collect()``.

Short trials validate twice (2 epochs of 4 batches); long ones 40 times (2 epochs of 20 batches,
validating after every batch). Fitting ``seconds per trial = a + b * validations`` to each side
through its short and long trials gives its fixed cost per trial (``a``) and its cost per
validation (``b``, which includes one training batch on both sides); the Tuner's overhead is the
difference of the two sides' ``a`` and of their ``b``, taken within each repetition. The report
gives medians and quartiles over the repetitions, and the ratio Tuner / bare for each length.
``--baseline`` adds the figures of an earlier run (e.g. of older code) as a column.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import json
import os
import platform
import shlex
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightning.pytorch.profilers import SimpleProfiler

from benchmarks.regret import quartiles_cell
from benchmarks.tasks.training import digits_example
from lightning_hpo import NopPruner, SobolSampler, Tuner
from lightning_hpo.space import SearchSpace
from lightning_hpo.training import quiet_lightning

HERE = Path(__file__).resolve().parent
SEED = 0
#: Where each run's figures go, for ``--baseline`` of a later run.
DEFAULT_JSON = HERE / "out" / "tuner_overhead.json"
#: The goal of issue 13: what the Tuner may add.
TARGET_PER_TRIAL_MS = 50.0
TARGET_PER_VALIDATION_MS = 1.0


@dataclass(frozen=True)
class Length:
    """One kind of trial: its name, how many validations it runs, and the Trainer settings that make it so."""

    name: str
    validations: int
    trainer_kwargs: Mapping[str, Any]


#: Short trials: 2 epochs of 4 batches, validating at the end of each epoch.
SHORT = Length("short", 2, {"max_epochs": 2, "limit_train_batches": 4})
#: Long trials: 2 epochs of 20 batches (the whole training set), validating after every batch.
LONG = Length("long", 40, {"max_epochs": 2, "limit_train_batches": 20, "val_check_interval": 1})
SIDES = ("bare", "tuner")
#: Wall time is what a user waits; CPU time (of this process, all its threads) is what the other
#: processes sharing the machine disturb least; the training thread's CPU time leaves out what the
#: Tuner does in background threads (writing checkpoints), which a spare core absorbs. Disk flushes
#: count in the first only.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time, "thread": time.thread_time}
#: How the report names each clock.
CLOCK_NAMES = {"wall": "wall", "cpu": "CPU", "thread": "CPU of the training thread"}


def trainer_kwargs(length: Length) -> dict[str, Any]:
    return {
        "accelerator": "cpu",
        "devices": 1,
        "limit_val_batches": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **length.trainer_kwargs,
    }


def configurations(space: SearchSpace, n: int) -> list[dict[str, Any]]:
    """The parameters that the Tuner's ``SobolSampler(seed=SEED)`` gives trials 0 .. n-1."""
    sampler = SobolSampler(seed=SEED)
    return [sampler.sample(space, [], number=i, directions=["min"]) for i in range(n)]


def _start() -> dict[str, float]:
    return {clock: read() for clock, read in CLOCKS.items()}


def _since(start: Mapping[str, float]) -> dict[str, float]:
    return {clock: read() - start[clock] for clock, read in CLOCKS.items()}


def run_bare(configs: Sequence[Mapping[str, Any]], length: Length, root: Path) -> dict[str, float]:
    """Seconds (of each clock) to train every configuration in a plain loop of ``Trainer.fit``."""
    import lightning.pytorch as pl

    example = digits_example()
    datamodule = example.DigitsDataModule()
    start = _start()
    for number, params in enumerate(configs):
        pl.seed_everything(SEED + number, workers=True, verbose=False)
        model = example.DigitsClassifier(**params)
        best = pl.callbacks.ModelCheckpoint(monitor="val_loss", mode="min", save_top_k=1)
        trainer = pl.Trainer(**trainer_kwargs(length), callbacks=[best], default_root_dir=root / f"config_{number}")
        trainer.fit(model, datamodule=datamodule)
    return _since(start)


def run_tuner(
    n: int, length: Length, root: Path, *, tuner_kwargs: Mapping[str, Any] | None = None, **extra_trainer_kwargs: Any
) -> dict[str, float]:
    """Seconds (of each clock) of ``Tuner.fit`` running ``n`` trials of a new study (``tuner_kwargs``: more
    arguments of the Tuner)."""
    example = digits_example()
    tuner = Tuner(
        example.DigitsClassifier,
        search_space=example.SEARCH_SPACE,
        datamodule=example.DigitsDataModule(),
        trainer_kwargs={**trainer_kwargs(length), **extra_trainer_kwargs},
        sampler=SobolSampler(seed=SEED),
        pruner=NopPruner(),
        storage=f"sqlite:///{root / 'studies.db'}",
        study_name=f"overhead-{uuid.uuid4().hex[:8]}",
        root_dir=root,
        seed=SEED,
        show_progress=False,
        **(tuner_kwargs or {}),
    )
    start = _start()
    result = tuner.fit(n_trials=n)
    seconds = _since(start)
    assert tuner.study is not None
    tuner.study.storage.close()
    if len(result.trials) != n or any(t.value is None for t in result.trials):
        raise SystemExit(f"The Tuner did not complete {n} trials: {result.trials}")
    return seconds


def measure(
    repeats: int, n: int, root: Path, tuner_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, dict[str, dict[str, float]]]]:
    """Per repetition and clock: seconds per trial of each side (bare, tuner) for each length (short, long)."""
    space = SearchSpace.coerce(digits_example().SEARCH_SPACE)
    configs = configurations(space, n)
    # Lightning and the Tuner import and set up lazily on first use; that is not what is measured.
    run_bare(configs[:1], SHORT, root / "warm-up-bare")
    run_tuner(1, SHORT, root / "warm-up-tuner", tuner_kwargs=tuner_kwargs)
    runs = []
    for repeat in range(repeats):
        seconds: dict[str, dict[str, dict[str, float]]] = {clock: {side: {} for side in SIDES} for clock in CLOCKS}
        for length in (SHORT, LONG):
            order = SIDES if repeat % 2 == 0 else SIDES[::-1]
            for side in order:
                where = root / f"{repeat}-{length.name}-{side}"
                # Each side starts with nothing left to collect: an automatic full collection (a large part
                # of a second, walking all of torch) is then due to what that side allocates, not to the other.
                gc.collect()
                took = (
                    run_bare(configs, length, where)
                    if side == "bare"
                    else run_tuner(n, length, where, tuner_kwargs=tuner_kwargs)
                )
                for clock in CLOCKS:
                    seconds[clock][side][length.name] = took[clock] / n
        runs.append(seconds)
        described = "; ".join(f"{clock}: {_describe(costs(seconds[clock]))}" for clock in CLOCKS)
        print(f"repetition {repeat + 1}/{repeats}: {described}", flush=True)
    return runs


#: The Tuner's own callbacks, as Lightning's profiler names their hook at the end of each validation.
TUNER_CALLBACKS = {
    "TrialReporter (report, pruner)": "[Callback]TrialReporter.on_validation_end",
    "OutcomeMetrics (metrics snapshot)": "[Callback]OutcomeMetrics.on_validation_end",
    "ResumableCheckpoint (resumable checkpoint)": "[Callback]lightning_hpo.ResumableCheckpoint.on_validation_end",
}


def callback_ms(
    n: int, root: Path, tuner_kwargs: Mapping[str, Any] | None = None
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Milliseconds of each call of each of the Tuner's callbacks at the end of a validation in ``n`` long
    trials, as Lightning's profiler times them (wall time), and in CPU time of the training thread: the
    Tuner's own work at each validation."""
    profiler = _ThreadTimeProfiler(dirpath=root, filename="profile")
    run_tuner(n, LONG, root, tuner_kwargs=tuner_kwargs, profiler=profiler)

    # Each trial's first call is at the sanity check, where the callbacks do nothing.
    def per_validation(durations: Mapping[str, list[float]]) -> dict[str, list[float]]:
        return {
            name: [1000 * d for i, d in enumerate(durations[hook]) if i % (LONG.validations + 1)]
            for name, hook in TUNER_CALLBACKS.items()
        }

    return per_validation(profiler.recorded_durations), per_validation(profiler.thread_durations)


class _ThreadTimeProfiler(SimpleProfiler):
    """Lightning's SimpleProfiler (wall time), which also records each action's CPU time of the calling
    thread (``thread_durations``): what a machine shared with other processes disturbs least."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.thread_durations: dict[str, list[float]] = collections.defaultdict(list)
        self._thread_starts: dict[str, float] = {}

    def start(self, action_name: str) -> None:
        super().start(action_name)
        self._thread_starts[action_name] = time.thread_time()

    def stop(self, action_name: str) -> None:
        spent = time.thread_time() - self._thread_starts.pop(action_name)
        super().stop(action_name)
        self.thread_durations[action_name].append(spent)


def callbacks_report(figures: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown table of :func:`callback_ms`: one row per callback, one column per run."""
    lines = [
        "| ms per validation, timed by Lightning's profiler | " + " | ".join(f["label"] for f in figures) + " |",
        "|---|" + "---|" * len(figures),
    ]
    for key, clock in (("callback_ms", "wall"), ("callback_cpu_ms", "CPU of the training thread")):
        for name in [*TUNER_CALLBACKS, "all three"]:
            cells = []
            for f in figures:
                calls = f.get(key, {})
                per_call = [sum(c) for c in zip(*calls.values())] if name == "all three" and calls else calls.get(name)
                cells.append(quartiles_cell(per_call, 2) if per_call else "-")
            lines.append(f"| {name}, {clock} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def costs(seconds: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """From one repetition's seconds per trial: each side's line ``a + b * validations``, and the Tuner's extra."""
    result = {}
    for side in SIDES:
        short, long = seconds[side][SHORT.name], seconds[side][LONG.name]
        per_validation = (long - short) / (LONG.validations - SHORT.validations)
        result[f"{side}_per_trial_ms"] = 1000 * (short - per_validation * SHORT.validations)
        result[f"{side}_per_validation_ms"] = 1000 * per_validation
        for length in (SHORT, LONG):
            result[f"{side}_{length.name}_ms"] = 1000 * seconds[side][length.name]
    result["overhead_per_trial_ms"] = result["tuner_per_trial_ms"] - result["bare_per_trial_ms"]
    result["overhead_per_validation_ms"] = result["tuner_per_validation_ms"] - result["bare_per_validation_ms"]
    for length in (SHORT, LONG):
        result[f"ratio_{length.name}"] = seconds["tuner"][length.name] / seconds["bare"][length.name]
    return result


def _describe(cost: Mapping[str, float]) -> str:
    return (
        f"overhead {cost['overhead_per_trial_ms']:.0f} ms per trial, {cost['overhead_per_validation_ms']:.2f} ms per "
        f"validation, Tuner / bare {cost['ratio_short']:.2f} (short), {cost['ratio_long']:.2f} (long)"
    )


#: The report's rows: (what, clock, key in `costs`, decimals).
ROWS = [
    *(
        row
        for clock in CLOCKS
        for row in (
            (f"Tuner overhead per trial, {CLOCK_NAMES[clock]} (ms)", clock, "overhead_per_trial_ms", 0),
            (f"Tuner overhead per validation, {CLOCK_NAMES[clock]} (ms)", clock, "overhead_per_validation_ms", 2),
            (
                f"Tuner / bare, short trials ({SHORT.validations} validations), {CLOCK_NAMES[clock]}",
                clock,
                "ratio_short",
                2,
            ),
            (
                f"Tuner / bare, long trials ({LONG.validations} validations), {CLOCK_NAMES[clock]}",
                clock,
                "ratio_long",
                2,
            ),
        )
    ),
    ("bare loop: ms per short trial, wall", "wall", "bare_short_ms", 0),
    ("bare loop: ms per long trial, wall", "wall", "bare_long_ms", 0),
    ("bare loop: fixed ms per trial, wall", "wall", "bare_per_trial_ms", 0),
    ("bare loop: ms per validation (with its training batch), wall", "wall", "bare_per_validation_ms", 2),
]


def report(figures: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown report: one column per run's figures (e.g. of the code before and after a change)."""
    import lightning
    import sqlalchemy
    import torch

    # Runs made before the training thread was timed lack its clock: their cells say "-".
    runs = {
        f["label"]: [{clock: costs(s[clock]) for clock in CLOCKS if clock in s} for s in f["seconds"]] for f in figures
    }
    labels = list(runs)
    lines = [
        "# What `lightning_hpo.Tuner` costs on top of a bare loop of `Trainer.fit`",
        "",
        f"On {platform.node()} ({os.cpu_count()} CPUs, one torch thread); Python {platform.python_version()}, torch "
        f"{torch.__version__}, lightning {lightning.__version__}, SQLAlchemy {sqlalchemy.__version__}. See the "
        "docstring of `benchmarks/tuner_overhead.py` for the set-up.",
        "",
        *(f"* {f['label']}: `{f['command']}`, {f['made']}" for f in figures),
        "",
        f"Each repetition trains {figures[-1]['trials']} configurations of the digits MLP on each side, short trials "
        f"({SHORT.validations} validations) and long ones ({LONG.validations}), the two sides alternating: a bare "
        "loop of `Trainer.fit` (default logger, the ModelCheckpoint the Tuner adds), and the Tuner with "
        "SobolSampler and NopPruner on a SQLite file, without its progress display; the same Trainer settings "
        "and seeds on both sides. "
        "Fitting `seconds per trial = a + b * validations` to each side, the Tuner's overhead is the difference of "
        "the two `a` (per trial) and of the two `b` (per validation), in wall time, in this process's CPU time "
        "(all threads; the other processes on a shared machine disturb it less, but it leaves out waiting for disk "
        "flushes) and in the CPU time of the training thread alone (without the Tuner's background checkpoint "
        "writes). Cells: median [25th, 75th percentile] over "
        "the repetitions; the ratios pair each side with the other in the same repetition.",
        "",
        f"Goal (issue 13): at most {TARGET_PER_TRIAL_MS:.0f} ms per trial and {TARGET_PER_VALIDATION_MS:.0f} ms per "
        "validation.",
        "",
        "| | " + " | ".join(f"{label} ({len(runs[label])} repetitions)" for label in labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for title, clock, key, digits in ROWS:
        cells = [
            quartiles_cell([r[clock][key] for r in runs[label]], digits) if clock in runs[label][0] else "-"
            for label in labels
        ]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append(
        "| Tuner's callback at each validation, timed by Lightning's profiler (ms) | "
        + " | ".join(quartiles_cell(_reporter_ms(f), 2) for f in figures)
        + " |"
    )
    for name in TUNER_CALLBACKS:
        cells = [quartiles_cell(f["callback_cpu_ms"][name], 2) if "callback_cpu_ms" in f else "-" for f in figures]
        lines.append(f"| {name} at each validation, CPU of the training thread (ms) | " + " | ".join(cells) + " |")
    shares = [quartiles_cell([_wall_per_cpu(repetition) for repetition in f["seconds"]], 1) for f in figures]
    lines += [
        "",
        "How busy the machine was: the bare loop's wall time was "
        + ", ".join(f"{share} times its CPU time ({f['label']})" for share, f in zip(shares, figures))
        + ". On an idle machine it is about 1; above that, other processes had the cores, and wall-time "
        "differences are that much noisier than CPU-time ones.",
    ]
    return "\n".join(lines) + "\n"


def _reporter_ms(figures: Mapping[str, Any]) -> list[float]:
    """The TrialReporter's calls (``reporter_ms`` in runs made before every callback was timed)."""
    return figures["callback_ms"][next(iter(TUNER_CALLBACKS))] if "callback_ms" in figures else figures["reporter_ms"]


def _wall_per_cpu(repetition: Mapping[str, Mapping[str, Mapping[str, float]]]) -> float:
    """Wall time over CPU time of one repetition's bare loop (short and long trials together)."""
    return sum(repetition["wall"]["bare"].values()) / sum(repetition["cpu"]["bare"].values())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuner_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="repetitions (default 8)")
    parser.add_argument("--trials", type=int, default=6, help="configurations per side and length (default 6)")
    parser.add_argument("--out", type=Path, default=HERE / "TUNER_OVERHEAD.md", help="the report to write")
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="this run's figures (default benchmarks/out/tuner_overhead.json)",
    )
    parser.add_argument("--label", default="now", help="this run's column in the report (default 'now')")
    parser.add_argument(
        "--checkpoint-every",
        type=float,
        default=None,
        help="the Tuner's checkpoint_every in seconds (default: its own, a resumable checkpoint at every validation)",
    )
    parser.add_argument(
        "--callbacks-only",
        action="store_true",
        help="time only the Tuner's callbacks at each validation (--trials long trials); print their table",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the report from --json (and --baseline); run nothing"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="the --json of an earlier run (e.g. of older code) to show in its own column first; repeatable",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tuner_kwargs = {} if args.checkpoint_every is None else {"checkpoint_every": args.checkpoint_every}
    if args.callbacks_only:
        with _one_thread_in(Path(tempfile.mkdtemp())) as root:
            wall, cpu = callback_ms(args.trials, root, tuner_kwargs)
            figures = {"label": args.label, "callback_ms": wall, "callback_cpu_ms": cpu}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
        print(callbacks_report([*(json.loads(path.read_text()) for path in args.baseline), figures]))
        return 0
    if args.report_only:
        figures = json.loads(args.json.read_text())
    else:
        seconds, (callbacks, callbacks_cpu) = run(args.repeats, args.trials, tuner_kwargs)
        figures = {
            "label": args.label,
            "command": shlex.join(
                ["python", "-m", "benchmarks.tuner_overhead", *(argv if argv is not None else sys.argv[1:])]
            ),
            "made": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "trials": args.trials,
            "seconds": seconds,
            "callback_ms": callbacks,
            "callback_cpu_ms": callbacks_cpu,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
    text = report([*(json.loads(path.read_text()) for path in args.baseline), figures])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


def run(
    repeats: int, trials: int, tuner_kwargs: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, dict[str, dict[str, float]]]], tuple[dict[str, list[float]], dict[str, list[float]]]]:
    """:func:`measure` and :func:`callback_ms` with one torch thread, in a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp, _one_thread_in(Path(tmp)) as root:
        return measure(repeats, trials, root, tuner_kwargs), callback_ms(trials, root / "profiled", tuner_kwargs)


@contextlib.contextmanager
def _one_thread_in(root: Path) -> Iterator[Path]:
    """One torch thread and Lightning's noise silenced, the same for every measurement."""
    import torch

    torch.set_num_threads(1)
    with warnings.catch_warnings(), quiet_lightning():
        warnings.filterwarnings("ignore", module="lightning")  # e.g. "few dataloader workers": the same on both sides
        yield root


if __name__ == "__main__":
    sys.exit(main())
