"""What one ``SQLStorage.report`` costs: CPU time per report, on a SQLite file and on PostgreSQL.

    python -m benchmarks.report_cost                                  # this checkout, SQLite file
    python -m benchmarks.report_cost --tree before=/tmp/old --tree after=. --postgres "$LIGHTNING_HPO_TEST_POSTGRES_URL"

Each round runs, for each source tree and backend in turn, a fresh process that opens the storage,
creates a RUNNING trial, reports ``--warm-up`` values untimed and then ``--reports`` values timed by
the process's CPU clock (``time.process_time``: what other processes on a shared machine disturb
least; a PostgreSQL server's own work is not in it). The table gives the median over the rounds of
each tree's milliseconds per report, and the median of the ratios to the first tree within each
round (the trees of a round ran one after the other, so they shared the machine's load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

#: Run in a fresh process with one tree's lightning_hpo: prints the CPU milliseconds per report.
CHILD = """
import sys, time
from lightning_hpo.storage import SQLStorage
url, study_name, warm_up, reports = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
storage = SQLStorage(url)
study = storage.get_or_create_study(study_name, {}, ["min"]).id
trial = storage.create_trial(study, worker="report_cost").id
for step in range(warm_up):
    storage.report(trial, step, 0.5)
start = time.process_time()
for step in range(reports):
    storage.report(trial, step, step / 7)
took = time.process_time() - start
assert storage.get_trial(trial).intermediate_values[reports - 1] == (reports - 1) / 7
storage.close()
print(took / reports * 1e3)
"""


def cost_per_report(tree: Path, url: str, warm_up: int, reports: int) -> float:
    """CPU milliseconds per report of ``tree``'s lightning_hpo on ``url``, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    study_name = f"report-cost-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, study_name, str(warm_up), str(reports)],
        env=env,
        cwd=tree,  # `python -c` imports from its working directory first
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"The report loop of {tree} on {url.split('@')[-1]} failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def parse_tree(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"--tree takes LABEL=PATH (e.g. before=/tmp/old), but got {text!r}.")
    return label, Path(path).resolve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_cost", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tree", type=parse_tree, action="append", default=[], help="LABEL=PATH of a source tree; repeatable"
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure too (its database gets a study per run)")
    parser.add_argument("--reports", type=int, default=3000, help="timed reports per run (default 3000)")
    parser.add_argument("--warm-up", type=int, default=200, help="untimed reports first (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args(argv)
    trees = args.tree or [("now", Path(__file__).resolve().parents[1])]
    with tempfile.TemporaryDirectory(prefix="report_cost-") as scratch:
        backends = {"SQLite file": lambda: f"sqlite:///{Path(scratch) / uuid.uuid4().hex}.db"}
        if args.postgres:
            backends["PostgreSQL"] = lambda: args.postgres
        costs = {(backend, label): [] for backend in backends for label, _ in trees}
        for round_number in range(args.rounds):
            for backend, url in backends.items():
                for label, tree in trees:
                    costs[backend, label].append(cost_per_report(tree, url(), args.warm_up, args.reports))
            print(
                f"round {round_number + 1}/{args.rounds}: " + ", ".join(f"{k}: {v[-1]:.4f}" for k, v in costs.items())
            )
    first = trees[0][0]
    print(f"\n| CPU ms per report, median of {args.rounds} rounds of {args.reports} | " + " | ".join(backends) + " |")
    print("|---|" + "---|" * len(backends))
    for label, _ in trees:
        cells = []
        for backend in backends:
            cell = f"{statistics.median(costs[backend, label]):.4f}"
            if label != first:
                ratios = [a / b for a, b in zip(costs[backend, label], costs[backend, first], strict=True)]
                cell += f" ({statistics.median(ratios):.2f} x {first})"
            cells.append(cell)
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
