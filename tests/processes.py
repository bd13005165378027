"""Driving real subprocesses in tests: wait for a condition, interrupt as Ctrl-C would."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable


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
