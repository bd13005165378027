"""What a user sees when a study stops: the reason in a few lines, not Lightning's internal frames.

The CLI (``lightning-hpo``, ``train.py tune``) prints one line per error; the Python API raises, so
Python prints a traceback, which this keeps to the user's own call: an error that ends a study
(a misconfiguration, trials failing in a row) is re-raised from ``Tuner.fit`` without the frames
it crossed inside Lightning and the trial loop (the full traceback is stored with the trial), and
Ctrl-C ends with one line that says the study can be resumed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from lightning_hpo.exceptions import LightningHPOError, TrialsFailingError

if TYPE_CHECKING:
    from lightning_hpo.study import Study
    from lightning_hpo.trial import Trial

__all__ = ["call_with_short_errors", "trials_failing_error"]

_T = TypeVar("_T")


def trials_failing_error(study: Study, failures: int, last: Trial, *, same: bool = False) -> TrialsFailingError:
    """The error that stops a study after ``failures`` failed trials in a row, ``last`` the latest.

    It shows the last failure's exception line, and where the full tracebacks are; when every one
    failed the same way (``same``: one exception type and message), its traceback too.
    """
    lines = (last.error or "").strip().splitlines()
    reason = lines[-1] if lines else "no error recorded"
    where = "each failed trial's `error` holds its full traceback"
    if study.storage.shareable_across_processes:
        where += (
            f"; list them with `lightning-hpo trials --storage {study.storage.display_url} "
            f"--study {study.name} --state FAIL`"
        )
    message = (
        f"{failures} trials in a row failed, so study {study.name!r} stops. The last one, trial {last.number}, "
        f"failed with: {reason} ({where})."
    )
    if same and last.error:
        message += f" Every one failed the same way:\n{last.error}"
    return TrialsFailingError(message)


def call_with_short_errors(study: Study | None, study_name: str, run: Callable[[], _T]) -> _T:
    """``run()``, re-raising what ends a study with a short traceback, and Ctrl-C as a one-line note.

    ``study`` is ``None`` on the ranks of a torchrun job other than global rank 0. (Not a context
    manager: ``contextlib`` would put back the long traceback of an exception re-raised from it.)
    """
    try:
        return run()
    except KeyboardInterrupt:
        where = f" in {study.storage.display_url}" if study is not None else ""
        raise KeyboardInterrupt(
            f"study {study_name!r} was interrupted; its finished trials are saved{where}: rerun the same command "
            "to resume it."
        ) from None
    except LightningHPOError as error:
        # The frames below are Lightning's and the loop's; the stored trial keeps the full traceback.
        raise error.with_traceback(None) from None
