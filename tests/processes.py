"""Driving real subprocesses in tests: wait for a condition, interrupt as Ctrl-C would, end a hung one loudly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def wait_for(predicate: Callable[[], object], timeout: float = 120.0) -> None:
    """Poll ``predicate`` until it holds; an exception counts as "not yet" (e.g. no database yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - the database is not there yet
            pass
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def interrupt_when(process: subprocess.Popen[str], ready: Callable[[], object]) -> tuple[str, str]:
    """Send SIGINT to ``process`` once ``ready()`` holds; its stdout and stderr once it ended."""
    try:
        wait_for(ready)
        assert process.poll() is None, "the process ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        return process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, and by those, ... (torchrun starts its ranks in sessions of their own)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def kill_tree(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL ``process`` and every process it started, as a lost node would end them; its stdout and stderr."""
    for pid in [process.pid, *descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return process.communicate()


def communicate_or_fail(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """``process``'s stdout and stderr once it ended. One still running after ``timeout`` seconds is hung:
    it is killed with everything it started (no rank left behind to load the next tests), and the test
    fails with the tail of its stderr, where a script that arms ``faulthandler`` left its stacks."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _, err = kill_tree(process)
    pytest.fail(
        f"{' '.join(map(str, process.args))}\ndid not end within {timeout:.0f} s: killed it and every process it "
        f"started. The tail of its stderr:\n{err[-12000:]}",
        pytrace=False,
    )
