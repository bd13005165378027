"""Runs (task, method, seed) one after another and caches each result as a JSON file, so an
interrupted suite resumes where it stopped and the report can be rebuilt without running.

Layout under the output folder::

    runs/<task>/<method>/seed<k>.json      regret runs
    timing/<task>/<method>/seed<k>.json    long runs for the time per suggestion
    references/<task>.json                 dense-search bounds of tasks without a known optimum

A cached run is reused when it has at least the budget asked for and was made by the same code
(the method's fingerprint); otherwise it is run again.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.methods import Method
from benchmarks.regret import simple_regret
from benchmarks.tasks import Task

__all__ = ["ResultCache", "run_all"]

Log = Callable[[str], None]


class ResultCache:
    """The JSON files of one output folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, kind: str, task: str, method: str, seed: int) -> Path:
        return self.root / kind / task / method / f"seed{seed}.json"

    def load(self, kind: str, task: str, method: str, seed: int) -> dict[str, Any] | None:
        path = self.path(kind, task, method, seed)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None  # a run killed while writing: run it again

    def save(self, kind: str, record: dict[str, Any]) -> Path:
        path = self.path(kind, record["task"], record["method"], record["seed"])
        _write_json(path, record)
        return path

    def records(self, kind: str, task: str, method: str, seeds: Sequence[int], budget: int) -> list[dict[str, Any]]:
        """The cached records of these seeds that reach ``budget`` trials (whatever their code)."""
        found = []
        for seed in seeds:
            record = self.load(kind, task, method, seed)
            if record is not None and record["budget"] >= budget:
                found.append(record)
        return found

    def reference(self, task: Task, log: Log) -> float | None:
        """The task's dense-search bound, computed once and cached (``None`` if it has none)."""
        if task.reference is None:
            return None
        path = self.root / "references" / f"{task.name}.json"
        if path.is_file():
            return float(json.loads(path.read_text())["value"])
        log(f"{task.name}: computing the reference, {task.reference_source} (once; cached in {path})")
        start = time.perf_counter()
        value = task.reference()
        _write_json(path, {"task": task.name, "value": value, "seconds": time.perf_counter() - start})
        return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)  # atomic: a killed run never leaves half a file


def run_one(task: Task, method: Method, seed: int, budget: int) -> dict[str, Any]:
    """Run ``method`` on ``task`` for ``budget`` trials with ``seed``; return the record to cache."""
    objective = task.make_objective(seed)
    gc.collect()
    start = time.perf_counter()
    trace = method.run(task, objective, budget, seed)
    wall = time.perf_counter() - start
    return {
        "task": task.name,
        "method": method.name,
        "label": method.label,
        "seed": seed,
        "budget": budget,
        "fingerprint": method.fingerprint(),
        "observed": trace.observed,
        "true": trace.true,
        "suggest_seconds": trace.suggest_seconds,
        "objective_seconds": trace.objective_seconds,
        "wall_seconds": wall,
        "params": trace.params,
        "host": socket.gethostname(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def run_all(
    cache: ResultCache,
    kind: str,
    task: Task,
    methods: Sequence[Method],
    seeds: Sequence[int],
    budget: int,
    *,
    rerun: bool,
    log: Log,
) -> None:
    """Make sure the cache holds a current run of every (method, seed) at ``budget``.

    Seeds go in the outer loop, so an interrupted suite has every method at its first seeds.
    """
    fingerprints = {m.name: m.fingerprint() for m in methods}
    for seed in seeds:
        for method in methods:
            cached = cache.load(kind, task.name, method.name, seed)
            if (
                not rerun
                and cached is not None
                and cached["budget"] >= budget
                and cached["fingerprint"] == fingerprints[method.name]
            ):
                continue
            record = run_one(task, method, seed, budget)
            cache.save(kind, record)
            log(_describe(record, task))


def _describe(record: dict[str, Any], task: Task) -> str:
    times = record["suggest_seconds"]
    text = (
        f"{record['task']:>18} {record['method']:<15} seed {record['seed']:<2} {record['budget']} trials "
        f"in {record['wall_seconds']:6.1f} s (objective {record['objective_seconds']:.1f} s, "
        f"median suggestion {1e3 * statistics.median(times):.1f} ms)"
    )
    if task.optimum is not None:
        regret = simple_regret(record["observed"], record["true"], task.optimum)[-1]
        text += f", regret {regret:.3g}"
    return text
