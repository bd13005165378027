"""Run the benchmark suite: ``python -m benchmarks --help``.

Runs every (task, method, seed) one after another, caches each result under ``--out``, and
writes the results table and plots. Rerunning resumes; ``--report-only`` rebuilds the table from
the cache without running anything.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="lightning_hpo against Optuna (GP, TPE), Hyperopt TPE and random search.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 cheap tasks, 2 seeds, 12 trials, a short timing run; "
        "writes to benchmarks/out/quick/ unless --out/--results are given",
    )
    parser.add_argument(
        "--tasks",
        help="comma-separated task names, 'all', 'broad' (the scikit-learn suite of "
        "tasks/sklearn_suite.py), 'highdim' (10- and 20-D probes) or 'wide' (scikit-learn models with "
        "8-9 Float and Int columns), 'pool' (40 YAHPO surrogate problems drawn at random, held out), "
        "'pool2' (40 more, drawn from the instances the first pool left), 'bayesmark' (the NeurIPS 2020 "
        "BBO challenge's 108 problems, evaluated in .venv-bayesmark) "
        "(default: the full suite; see --list)",
    )
    parser.add_argument(
        "--samplers",
        help="comma-separated methods (default: ours,optuna_gp,optuna_tpe,"
        "hyperopt_tpe,lhpo_random); 'ours' is lightning_hpo's GPSampler, or its Sobol stand-in",
    )
    parser.add_argument(
        "--seeds", type=int, help="seeds 0..N-1 for every task (default: 10; 5 for tasks that train models)"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="start the seeds here: FIRST..FIRST+N-1 (e.g. 1 with --seeds 1 runs and reports seed 1 alone)",
    )
    parser.add_argument("--budget", type=int, help="trials per run (default 50)")
    parser.add_argument("--report-at", help="comma-separated trial counts of the regret tables (default 20,BUDGET)")
    parser.add_argument(
        "--timing-task", default="hartmann6", help="task of the time-per-suggestion runs (default hartmann6)"
    )
    parser.add_argument("--timing-history", help="history sizes at which suggestions are timed (default 50,200)")
    parser.add_argument("--timing-window", type=int, help="suggestions pooled around each history size (default 10)")
    parser.add_argument("--timing-seeds", type=int, help="seeds of the timing runs (default 3)")
    parser.add_argument("--timing-samplers", help="methods of the timing runs (default: those of --samplers)")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing runs")
    parser.add_argument("--out", type=Path, help="cache folder (default benchmarks/out)")
    parser.add_argument(
        "--results", type=Path, help="the table to write (default benchmarks/RESULTS.md; plots go beside it)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the table and plots from the cache; run nothing"
    )
    parser.add_argument(
        "--rerun", action="store_true", help="run the selected (task, method, seed) again even if cached"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/BLAS threads for every method (default 1: equal footing, clean timings)",
    )
    parser.add_argument("--device", help="device of lightning_hpo's GPSampler (default: its own default)")
    parser.add_argument("--list", action="store_true", help="list the tasks and methods, then exit")
    args = parser.parse_args(argv)
    if args.first_seed < 0:
        parser.error(f"--first-seed must be 0 or more, not {args.first_seed}")
    return args


def _names(text: str | None, default: tuple[str, ...]) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else list(default)


def _ints(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(n) for n in _names(text, ())) if text else default


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before numpy/torch load: the same thread count for every library.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    from benchmarks import methods as methods_module
    from benchmarks.methods import DEFAULT_METHODS, METHODS, OURS, STAND_IN, resolve_methods
    from benchmarks.report import TimingSpec, write_report
    from benchmarks.runner import ResultCache, run_all
    from benchmarks.tasks import (
        BAYESMARK_TASKS,
        BROAD_TASKS,
        DEFAULT_TASKS,
        HIGH_DIM_TASKS,
        POOL2_TASKS,
        POOL_TASKS,
        QUICK_TASKS,
        TASK_BUILDERS,
        WIDE_TASKS,
        build_task,
    )

    def log(message: str) -> None:
        print(message, flush=True)

    if args.list:
        print("tasks:", ", ".join(TASK_BUILDERS), f"\ndefault suite: {', '.join(DEFAULT_TASKS)}")
        print(f"broad suite (--tasks broad): {', '.join(BROAD_TASKS)}")
        print(f"high-dimensional probes (--tasks highdim): {', '.join(HIGH_DIM_TASKS)}")
        print(f"wide scikit-learn spaces (--tasks wide): {', '.join(WIDE_TASKS)}")
        print(f"held-out YAHPO pool (--tasks pool): {', '.join(POOL_TASKS)}")
        print(f"second held-out YAHPO pool (--tasks pool2): {', '.join(POOL2_TASKS)}")
        print(f"NeurIPS 2020 BBO challenge (--tasks bayesmark): {', '.join(BAYESMARK_TASKS)}")
        for method in METHODS.values():
            reason = method.unavailable()
            print(f"  {method.name:<16} {method.label}" + (f"  [unavailable: {reason}]" if reason else ""))
        return 0

    quick = args.quick
    out = args.out or (HERE / "out" / "quick" if quick else HERE / "out")
    results_path = args.results or (out / "RESULTS.md" if quick else HERE / "RESULTS.md")
    groups = {
        "all": tuple(TASK_BUILDERS),
        "broad": BROAD_TASKS,
        "highdim": HIGH_DIM_TASKS,
        "wide": WIDE_TASKS,
        "pool": POOL_TASKS,
        "pool2": POOL2_TASKS,
        "bayesmark": BAYESMARK_TASKS,
    }
    if args.tasks in groups:
        task_names = list(groups[args.tasks])
    else:
        task_names = _names(args.tasks, QUICK_TASKS if quick else DEFAULT_TASKS)
    budget = args.budget or (12 if quick else 50)
    budgets = tuple(b for b in _ints(args.report_at, (6, 12) if quick else (20, 50)) if b <= budget) or (budget,)
    if budget not in budgets and args.report_at is None:
        budgets = (*budgets, budget)
    methods_module.set_gp_device(args.device)
    methods = resolve_methods(_names(args.samplers, DEFAULT_METHODS))
    missing = {m.name: m.unavailable() for m in methods if m.unavailable()}
    if missing:
        for name, reason in missing.items():
            log(f"error: method {name} cannot run: {reason}")
        return 2
    if any(m.name == STAND_IN for m in methods) and METHODS[OURS].unavailable():
        log(f"note: lightning_hpo has no GPSampler here, so 'ours' is the stand-in {STAND_IN} (SobolSampler)")
    timing_methods = resolve_methods(_names(args.timing_samplers, tuple(m.name for m in methods)))
    timing = None
    if not args.no_timing:
        timing = TimingSpec(
            task=args.timing_task,
            histories=_ints(args.timing_history, (10,) if quick else (50, 200)),
            window=args.timing_window or (4 if quick else 10),
            seeds=tuple(range(args.timing_seeds or (1 if quick else 3))),
        )

    cache = ResultCache(out)
    tasks = [build_task(name) for name in task_names]
    seeds_of = {t.name: args.seeds or (2 if quick else t.default_seeds) for t in tasks}
    started = time.perf_counter()
    if not args.report_only:
        for task in tasks:
            cache.reference(task, log)
            seeds = range(args.first_seed, args.first_seed + seeds_of[task.name])
            run_all(cache, "runs", task, methods, seeds, budget, rerun=args.rerun, log=log)
        if timing is not None:
            timing_task = build_task(timing.task)
            run_all(
                cache, "timing", timing_task, timing_methods, timing.seeds, timing.budget, rerun=args.rerun, log=log
            )
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    path = write_report(
        cache=cache,
        tasks=tasks,
        methods=methods,
        seeds_of=seeds_of,
        first_seed=args.first_seed,
        budgets=budgets,
        timing=timing,
        timing_methods=timing_methods,
        results_path=results_path,
        command=command.strip(),
        log=log,
    )
    log(f"wrote {path} and its plots ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
