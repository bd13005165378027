"""Jobs for the worker-process tests of :func:`lightning_hpo.workers.run_in_workers`.

A spawned worker imports the module of the job it runs: these live apart from the test modules,
which import Lightning, so that a worker starts in a second rather than after Lightning's import.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_intra_op_threads(directory: str) -> None:
    import torch

    Path(directory, str(os.getpid())).write_text(str(torch.get_num_threads()))


def fail_in_worker() -> None:
    raise ValueError("broken job")
