"""Warnings while trials train: Lightning's per-Trainer noise silenced, any other warning shown once.

A study builds one Trainer per trial, so a warning Lightning gives once per Trainer would repeat
for every trial. Three are known noise for a study and are silenced by their exact text:

* the ``_pytree`` ``LeafSpec`` deprecation, a torch/Lightning version mismatch the user can't act on;
* "The number of training batches (...) is smaller than the logging interval": trials log to
  their own logger, and short trials are the point of a study;
* "It is recommended to use ``self.log('<monitored metric>', ..., sync_dist=True)``" under DDP:
  the reporting callback averages each monitored metric over the ranks itself. The warning stays
  for the other metrics.

Every other warning is shown once per study run (the first time its text appears), not once per trial.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["trial_warnings"]

#: Texts (regular expressions matched at the start of the message) of the per-trial noise.
PER_TRIAL_NOISE = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
)


@contextlib.contextmanager
def trial_warnings(monitor: Sequence[str] = ()) -> Iterator[None]:
    """While trials train: silence the noise above, show any other warning once.

    ``monitor``: the monitored metrics, whose ``sync_dist`` recommendation is silenced.
    """
    with warnings.catch_warnings():  # restores the filters and ``showwarning`` afterwards
        for text in PER_TRIAL_NOISE:
            warnings.filterwarnings("ignore", message=text)
        for name in monitor:
            warnings.filterwarnings(
                "ignore", message=rf"It is recommended to use `self\.log\({re.escape(repr(name))}, "
            )
        warnings.showwarning = _once(warnings.showwarning)
        yield


def _once(show: Callable[..., None]) -> Callable[..., None]:
    """``show`` for the first warning of each category and text only.

    Python's own "once per location" memory is cleared whenever any code adds a filter, as
    libraries do when a model is built, so it can't be relied on across trials.
    """
    shown: set[tuple[type[Warning], str]] = set()

    def show_once(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        key = (category, str(message))
        if key not in shown:
            shown.add(key)
            show(message, category, *args, **kwargs)

    return show_once
