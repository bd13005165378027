"""The dashboard on a study of 10,000 trials: server time to open it, and bytes per live update.

Measures, in the server process (no browser, no network):

* **open**: answering ``since=0`` plus the JSON encoding the response does, both the first time the
  server looks at the study (a read of every trial through ``Storage.get_trial_overviews``) and once
  it has read it (the studies page did, or another client): what opening the study page costs;
* **baseline**: the same first open through the read the dashboard used before (``StudySnapshot.load``:
  ``get_trials`` decoding every intermediate value, then one dict per trial and point, encoded by ``json``);
* **poll**: a later poll when nothing changed (the summary only; the read of the study that a
  poll may start runs in the background, at most every twice its own duration, and costs as much
  as the first open);
* **update**: the server time of the poll that reads the study again after one new trial reported
  one value (an incremental read: the new trial and those running or lately finished), and its bytes.

With ``--against REV`` (a git revision of this repository), the first open is also timed with the
dashboard and storage of that revision: each side in its own process, the two alternating, so
that both see the same load; the ratio of each pair is printed with the median.

The study is written with the SQL storage's own table definitions in bulk (the storage API would
take minutes for 10,000 trials on 2 cores); the dashboard then reads it through ``Storage`` as always.

Run from the repository root (needs the ``dashboard`` extra)::

    python benchmarks/dashboard_speed.py                                   # SQLite, in a temporary folder
    source .ci/postgres.sh && python benchmarks/dashboard_speed.py --storage "$LIGHTNING_HPO_TEST_POSTGRES_URL"
    python benchmarks/dashboard_speed.py --against 0228d1b --pairs 5      # this tree against that commit
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from lightning_hpo import Categorical, Float, Int, SearchSpace  # noqa: E402
from lightning_hpo.dashboard._data import StudyFeed  # noqa: E402
from lightning_hpo.dashboard._rows import study_summary, trial_row  # noqa: E402
from lightning_hpo.snapshot import StudySnapshot  # noqa: E402
from lightning_hpo.storage import Storage, open_storage  # noqa: E402
from lightning_hpo.storage.sql import intermediate_table, trials_table  # noqa: E402

SPACE = SearchSpace(
    {
        "lr": Float(1e-5, 1e-1, log=True),
        "hidden": Int(16, 512, log=True),
        "dropout": Float(0.0, 0.5),
        "optimizer": Categorical(["adam", "sgd", "adamw"]),
    }
)


def build_study(storage: Storage, url: str, name: str, n_trials: int, steps: int, seed: int) -> None:
    """A finished study: 80 % COMPLETE with ``steps`` reports, 15 % PRUNED halfway, 5 % FAIL."""
    record = storage.get_or_create_study(name, SPACE.to_json(), ["min"])
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc).replace(tzinfo=None)
    trials, reports = [], []
    engine = sa.create_engine(url)
    with engine.connect() as conn:  # ids are given, after those of any other study in the database
        first_id = conn.execute(sa.select(sa.func.coalesce(sa.func.max(trials_table.c.id), 0))).scalar_one() + 1
    for number in range(n_trials):
        params = SPACE.decode([rng.random() for _ in range(len(SPACE))])
        kind = rng.random()
        state = "COMPLETE" if kind < 0.8 else "PRUNED" if kind < 0.95 else "FAIL"
        n_steps = steps if state == "COMPLETE" else steps // 2 if state == "PRUNED" else 1
        curve = [1.0 / (step + 1) + rng.random() * 0.1 for step in range(n_steps)]
        value = None if state == "FAIL" else min(curve)
        trial_id = first_id + number
        trials.append(
            {
                "id": trial_id,
                "study_id": record.id,
                "number": number,
                "state": state,
                "params": json.dumps(SPACE.to_stored(params), sort_keys=True),
                "value": value,
                "objective_values": None if value is None else json.dumps([value]),
                "error": "Traceback (most recent call last):\nRuntimeError: diverged" if state == "FAIL" else None,
                "worker": "bench:1",
                "heartbeat": start + timedelta(seconds=60 * number + 59),
                "datetime_start": start + timedelta(seconds=60 * number),
                "datetime_complete": start + timedelta(seconds=60 * number + 59),
                "attrs": "{}",
            }
        )
        reports += [
            {"trial_id": trial_id, "step": s, "value": v, "objective_values": None} for s, v in enumerate(curve)
        ]
    with engine.begin() as conn:
        conn.execute(sa.insert(trials_table), trials)
        conn.execute(sa.insert(intermediate_table), reports)
        if engine.dialect.name == "postgresql":  # ids were given: move the sequence past them
            conn.exec_driver_sql(f"SELECT setval('hpo_trials_id_seq', {first_id + n_trials - 1})")
    engine.dispose()


def timed_changes(feed: StudyFeed, name: str, since: int) -> tuple[float, int, dict]:
    """Seconds to answer one poll (read, rows, JSON encoding as the response does it) and its bytes."""
    began = time.perf_counter()
    body = feed.changes_json(name, since)
    return time.perf_counter() - began, len(body), json.loads(body)


def timed_baseline(storage: Storage, name: str) -> tuple[float, int, dict]:
    """The first open as the dashboard answered it before ``get_trial_overviews``: every trial decoded."""
    began = time.perf_counter()
    snapshot = StudySnapshot.load(storage, name)
    rows = [
        {
            **trial_row(t),
            "curve": [[s, v if math.isfinite(v) else None] for s, v in sorted(t.intermediate_values.items())],
        }
        for t in snapshot.trials
    ]
    answer = {"study": study_summary(snapshot), "version": 1, "reset": True, "trials": rows}
    body = json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return time.perf_counter() - began, len(body), {}


# Run in a process of its own with the package of one revision first on its path: the seconds of each first open.
_TIME_FIRST_OPENS = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from lightning_hpo.dashboard._data import StudyFeed
from lightning_hpo.storage import open_storage
storage = open_storage(sys.argv[2])
seconds = []
for _ in range(int(sys.argv[4])):
    began, cpu = time.perf_counter(), time.process_time()
    StudyFeed(storage, background=False).changes_json(sys.argv[3], 0)
    seconds.append((time.perf_counter() - began, time.process_time() - cpu))
storage.close()
print(json.dumps(seconds))
"""


def first_opens(source: Path, url: str, name: str, repeats: int) -> tuple[float, float]:
    """The median server time of ``repeats`` first opens by the package in ``source``, in a process of its own,
    and the median CPU time of that process during one (its threads; not a database server's)."""
    command = [sys.executable, "-c", _TIME_FIRST_OPENS, str(source), url, name, str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    return statistics.median(wall for wall, _ in runs), statistics.median(cpu for _, cpu in runs)


def compare_first_opens(
    revision: str, url: str, name: str, pairs: int, repeats: int
) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """(this tree, ``revision``) first opens as :func:`first_opens` times them, ``pairs`` times, alternating."""
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "lightning_hpo"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        return [
            (first_opens(ROOT, url, name, repeats), first_opens(Path(folder), url, name, repeats)) for _ in range(pairs)
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", help="database URL (default: a SQLite file in a temporary folder)")
    parser.add_argument("--n-trials", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=20, help="reports per COMPLETE trial")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also time the first open with this git revision's package")
    parser.add_argument("--pairs", type=int, default=5, help="with --against: processes per side, alternating")
    parser.add_argument("--only-against", action="store_true", help="with --against: skip the other measurements")
    args = parser.parse_args(argv)
    if args.only_against and not args.against:
        parser.error(f"--only-against needs --against REV (a git revision to compare with), but got {args.against!r}")
    with tempfile.TemporaryDirectory() as folder:
        url = args.storage or f"sqlite:///{Path(folder) / 'studies.db'}"
        storage = open_storage(url)
        name = f"dashboard_speed_{args.n_trials}_{int(time.time())}"
        began = time.perf_counter()
        build_study(storage, url, name, args.n_trials, args.steps, seed=0)
        print(
            f"built {args.n_trials} trials x {args.steps} steps in {time.perf_counter() - began:.1f} s ({storage.display_url})"
        )
        try:
            if args.against:
                pairs = compare_first_opens(args.against, url, name, args.pairs, args.repeats)
                for i, what in enumerate(("server time", "CPU time of the server process")):
                    print(
                        f"first open, {what}, this tree/{args.against}: "
                        + ", ".join(f"{new[i] * 1000:.0f}/{old[i] * 1000:.0f} ms" for new, old in pairs)
                        + f"; median ratio {statistics.median(new[i] / old[i] for new, old in pairs):.2f}"
                    )
                if args.only_against:
                    return 0
            cold, baseline = [], []
            for _ in range(args.repeats):  # alternated, so that both see the same load
                cold.append(timed_changes(StudyFeed(storage, background=False), name, 0))
                fresh = open_storage(url)  # a storage's get_trials keeps finished trials' curves: start without
                baseline.append(timed_baseline(fresh, name))
                fresh.close()
            feed = StudyFeed(storage, min_interval=3600.0)  # read once, then answer from that read
            version = timed_changes(feed, name, 0)[2]["version"]
            warm = [timed_changes(feed, name, 0) for _ in range(args.repeats)]
            quiet = [timed_changes(feed, name, version) for _ in range(args.repeats)]
            polling = StudyFeed(storage, min_interval=0.0, background=False)
            version = timed_changes(polling, name, 0)[2]["version"]
            record = storage.get_study(name)
            trial = storage.create_trial(record.id, worker="bench:2", params=SPACE.to_stored(SPACE.decode([0.5] * 4)))
            storage.report(trial.id, 0, 0.5)
            update_seconds, update_bytes, answer = timed_changes(polling, name, version)
            assert [t["number"] for t in answer["trials"]] == [args.n_trials], answer["trials"]
        finally:
            storage.delete_study(name)
            storage.close()

    def ms(runs: list[tuple[float, int, dict]]) -> str:
        return f"{statistics.median(seconds for seconds, _, _ in runs) * 1000:6.0f} ms"

    print(f"open, first look at the study (reads it):  {ms(cold)} server time, {cold[0][1] / 1e6:.2f} MB sent")
    print(
        f"  the same before (StudySnapshot.load):     {ms(baseline)} server time, {baseline[0][1] / 1e6:.2f} MB sent; "
        f"ratio {statistics.median(b[0] / c[0] for b, c in zip(baseline, cold)):.1f}x"
    )
    print(f"open, study already read (another page):   {ms(warm)} server time, {warm[0][1] / 1e6:.2f} MB sent")
    print(f"poll, nothing changed:                     {ms(quiet)} server time, {quiet[0][1]:,} bytes sent")
    print(
        f"update after 1 new trial with 1 report:    {update_seconds * 1000:6.0f} ms server time, {update_bytes:,} bytes sent"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
