"""What a study's reads cost as it grows: ``get_trials`` and ``Study.should_prune`` (ASHA) at every validation.

    python -m benchmarks.study_reads                      # SQLite file; about a minute; prints a table
    python -m benchmarks.study_reads --postgres URL       # the same on PostgreSQL too
    python -m benchmarks.study_reads --out benchmarks/STUDY_READS.md

For each size (200 and 1000 finished trials, each with 20 reported values, plus one RUNNING trial
with 5) it times, in one process:

* **every value fetched**: each read starts with the storage's cache of finished trials' values
  emptied, so it fetches every intermediate value, as every read did before that cache existed;
* **cached**: reads after a first one, which fetch the rows of all trials but the intermediate
  values only of trials that had not finished at the previous read;

and ``Study.report`` of the running trial; in wall time and in this process's CPU time. Cells:
median [25th, 75th percentile] in ms over the repetitions. The study is filled through the
storage's own API (create, report, finish).
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy

from benchmarks.regret import quartiles_cell
from lightning_hpo import ASHAPruner, Float, Study
from lightning_hpo.trial import TrialState

SIZES = (200, 1000)
REPORTS_PER_TRIAL = 20
SEED = 0
SPACE = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}
#: Wall time is what a worker waits (PostgreSQL's own work included); the CPU time of this process
#: is what other processes sharing the machine disturb least.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def fill(study: Study, n_trials: int) -> None:
    """``n_trials`` finished trials (4 in 5 COMPLETE, the others PRUNED) with decreasing noisy curves."""
    storage, rng = study.storage, random.Random(SEED)
    study_id = study._study_id
    for number in range(n_trials):
        params = {"x": rng.random(), "y": rng.random()}
        trial = storage.create_trial(study_id, worker="bench", params=study.space.to_stored(params))
        assert trial is not None
        level = rng.uniform(0.2, 1.0)
        for step in range(1, REPORTS_PER_TRIAL + 1):
            storage.report(trial.id, step, level / step**0.5 + rng.gauss(0.0, 0.01))
        state = TrialState.PRUNED if number % 5 == 4 else TrialState.COMPLETE
        storage.finish_trial(trial.id, state, values=[level / REPORTS_PER_TRIAL**0.5])


def forget_finished_values(study: Study) -> None:
    """Empty the storage's cache of finished trials' values (absent in older code: then nothing is cached)."""
    getattr(study.storage, "_finished_steps", {}).clear()


def time_ms(
    action: Callable[[], object], repeats: int, before_each: Callable[[], None] = lambda: None
) -> dict[str, list[float]]:
    """Milliseconds per call of ``action``, by each clock."""
    timings: dict[str, list[float]] = {clock: [] for clock in CLOCKS}
    for _ in range(repeats):
        before_each()
        start = {clock: read() for clock, read in CLOCKS.items()}
        action()
        for clock, read in CLOCKS.items():
            timings[clock].append((read() - start[clock]) * 1000)
    return timings


def measure(url: str, n_trials: int, repeats: int) -> dict[str, list[float]]:
    """Per row of the table (what is timed, and the clock): the milliseconds of each call."""
    pruner = ASHAPruner(min_resource=1, max_resource=REPORTS_PER_TRIAL, reduction_factor=3)
    study = Study(f"reads-{n_trials}", search_space=SPACE, storage=url, pruner=pruner)
    fill(study, n_trials)
    running = study.ask(params={"x": 0.5, "y": 0.5})
    for step in range(1, 6):
        study.report(running, step, 0.5)
    study_id = study._study_id
    steps = iter(range(6, 6 + 10 * repeats))
    read = lambda: study.storage.get_trials(study_id)  # noqa: E731
    prune = lambda: study.should_prune(running)  # noqa: E731
    read()  # the first read fills the cache
    timed = {
        "get_trials, every value fetched": time_ms(read, repeats, lambda: forget_finished_values(study)),
        "get_trials, cached": time_ms(read, repeats),
        "should_prune (ASHA), every value fetched": time_ms(prune, repeats, lambda: forget_finished_values(study)),
        "should_prune (ASHA), cached": time_ms(prune, repeats),
        "report": time_ms(lambda: study.report(running, next(steps), 0.4), repeats),
    }
    study.storage.delete_study(study.name)
    return {f"{what}, {clock}": by_clock[clock] for clock in CLOCKS for what, by_clock in timed.items()}


def report(results: dict[str, dict[int, dict[str, list[float]]]], repeats: int) -> str:
    lines = [
        "# What a study's reads cost as it grows",
        "",
        f"`python -m benchmarks.study_reads`: Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}; "
        f"{REPORTS_PER_TRIAL} reported values per finished trial, {repeats} repetitions; ms, median [25th, 75th "
        "percentile]. See the module docstring for what each row times.",
        "",
    ]
    for backend, by_size in results.items():
        sizes = sorted(by_size)
        lines += [
            f"| {backend} | " + " | ".join(f"{n} finished trials" for n in sizes) + " |",
            "|---" * (len(sizes) + 1) + "|",
        ]
        for row in next(iter(by_size.values())):
            lines.append(f"| {row} | " + " | ".join(quartiles_cell(by_size[n][row], 2) for n in sizes) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.study_reads", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per row (default 15)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="finished trials (default 200 1000)")
    parser.add_argument("--postgres", help="also measure on this PostgreSQL URL (its studies are deleted after)")
    parser.add_argument("--out", type=Path, help="write the table there too")
    args = parser.parse_args(argv)
    results: dict[str, dict[int, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"SQLite file": f"sqlite:///{Path(tmp) / 'reads.db'}"}
        if args.postgres:
            urls["PostgreSQL"] = args.postgres
        for backend, url in urls.items():
            for n_trials in args.sizes:
                print(f"{backend}: {n_trials} trials ...", file=sys.stderr)
                results.setdefault(backend, {})[n_trials] = measure(url, n_trials, args.repeats)
    text = report(results, args.repeats)
    if args.out is not None:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
