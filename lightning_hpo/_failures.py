"""What kind of failure a failed trial is, and when failures in a row should end a study.

Each FAIL trial stores its kind (``Trial.attrs["fail_kind"]``, see :data:`~lightning_hpo.trial.FAIL_KINDS`):

* ``"oom"``: out of memory (``torch.OutOfMemoryError``, a CUDA/MPS "out of memory" error, ``MemoryError``);
* ``"nan"``: a nan or infinite objective or metric, or an error about non-finite values;
* ``"error"``: any other exception from the user's code;
* ``"infeasible"``: a constraint known early was violated (e.g. ``n_params`` at the start), so the
  trial was stopped at once (:class:`~lightning_hpo.exceptions.ConstraintViolated`);
* ``"interrupted"``: Ctrl-C, ``SystemExit``, a signal;
* ``"stale"``: its worker stopped sending heartbeats;
* ``"infrastructure"``: lightning_hpo's own errors (a misconfiguration, the storage, the processes of a job).

The first four are the configuration's fault, so the GPSampler learns where they happen; the
others say nothing about the parameters and are ignored by it.

**When failures end a study** (:func:`should_stop`): after ``max_consecutive_failures`` failed
trials in a row in this process, the study stops when

1. no trial of this run has succeeded: the code fails whatever the parameters (an ImportError,
   a typo), or
2. the failures are all the same: one kind and the same exception type and message (a data file
   that went missing mid-study), unless they are out-of-memory or nan failures, which depend on the
   configuration by nature, or
3. a failure is not the configuration's fault (interrupted, stale, infrastructure), or
4. ``10 x max_consecutive_failures`` trials in a row failed, whatever they were: the sampler had
   its chances to learn where the configurations fail.

Otherwise (some configurations succeed, the failures differ or are out-of-memory/nan) the sampler is
learning where the space fails, and the study goes on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lightning_hpo.exceptions import ConstraintViolated, LightningHPOError, TrialError
from lightning_hpo.trial import CONFIGURATION_FAIL_KINDS, Trial

__all__ = ["failure_kind", "failure_signature", "should_stop", "HARD_STOP_FACTOR"]

#: Failures in a row, in units of ``max_consecutive_failures``, that end a study in any case.
HARD_STOP_FACTOR = 10

_OOM = re.compile(r"out of memory|CUDNN_STATUS_ALLOC_FAILED|CUBLAS_STATUS_ALLOC_FAILED", re.IGNORECASE)
_NAN = re.compile(r"\bnan\b|\binf\b|non-?finite|not finite", re.IGNORECASE)


def failure_kind(error: BaseException) -> str:
    """The kind of failure an exception raised while a trial ran stands for (see the module docstring)."""
    if not isinstance(error, Exception):
        return "interrupted"
    if isinstance(error, ConstraintViolated):
        return "infeasible"
    chain = list(_chain(error))
    if any(_is_out_of_memory(e) for e in chain):
        return "oom"
    if isinstance(error, LightningHPOError) and not isinstance(error, TrialError):
        return "infrastructure"
    if any(isinstance(e, FloatingPointError) or _NAN.search(str(e)) for e in chain):
        return "nan"
    return "error"


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from or during (Lightning wraps some)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    return isinstance(error, RuntimeError) and bool(_OOM.search(str(error)))


def failure_signature(trial: Trial) -> tuple[str | None, str]:
    """The kind of a failed trial and its error's last line (exception type and message)."""
    lines = (trial.error or "").strip().splitlines()
    return trial.fail_kind, lines[-1] if lines else ""


def should_stop(streak: Sequence[Trial], *, limit: int | None, succeeded_in_run: bool) -> bool:
    """Whether ``streak``, the failed trials in a row that this process ran (oldest first), ends the study.

    ``limit`` is ``max_consecutive_failures`` (``None``: never stop); ``succeeded_in_run`` whether
    a trial of this run finished COMPLETE or PRUNED.
    """
    if limit is None or len(streak) < limit:
        return False
    recent = streak[-limit:]
    if not succeeded_in_run or len(streak) >= HARD_STOP_FACTOR * limit:
        return True
    if any(t.fail_kind not in CONFIGURATION_FAIL_KINDS for t in recent):
        return True
    signatures = {failure_signature(t) for t in recent}
    return len(signatures) == 1 and recent[-1].fail_kind == "error"
