"""The package's exception hierarchy.

Every error raised on purpose by lightning_hpo derives from :class:`LightningHPOError`, and also from
the builtin it refines (``ValueError`` for bad values, ``TypeError`` for wrong types, ...), so callers
can catch either the package's errors as a whole or the usual builtin.
"""

from __future__ import annotations

import traceback

__all__ = [
    "LightningHPOError",
    "InvalidArgumentError",
    "ArgumentTypeError",
    "MissingExtraError",
    "StorageError",
    "NotADatabaseError",
    "SchemaVersionError",
    "StudyNotFoundError",
    "StudyMismatchError",
    "TrialStateError",
    "MetricNotFoundError",
    "TrialsFailingError",
    "TrialError",
    "TrialTimeoutError",
    "ConstraintViolated",
    "DistributedError",
    "TrialPruned",
    "GridExhaustedError",
    "ends_study",
    "format_exception",
]


class LightningHPOError(Exception):
    """Base class of every error lightning_hpo raises on purpose."""


class InvalidArgumentError(LightningHPOError, ValueError):
    """An argument has the right type but a value that breaks a rule; the message names both."""


class ArgumentTypeError(LightningHPOError, TypeError):
    """An argument has the wrong type; the message names the argument and the type received."""


class MissingExtraError(LightningHPOError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra to install."""


class StorageError(LightningHPOError):
    """The storage could not be opened or used."""


class NotADatabaseError(StorageError):
    """The storage file exists but is not a database."""


class SchemaVersionError(StorageError):
    """The database was written by a lightning_hpo with another schema version."""


class StudyNotFoundError(StorageError, LookupError):
    """No study of that name exists in the storage."""


class StudyMismatchError(LightningHPOError, ValueError):
    """A study was reopened with a search space or mode other than the one it was created with."""


class TrialStateError(LightningHPOError, RuntimeError):
    """An operation does not fit the trial's state, e.g. telling a trial that already finished."""


class MetricNotFoundError(LightningHPOError, LookupError):
    """The monitored metric was not logged; the message lists the metrics that were."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0]) if self.args else ""


class TrialsFailingError(LightningHPOError, RuntimeError):
    """Trials keep failing in a row, so the study stops; the message shows the last failure."""


class TrialError(LightningHPOError):
    """Fails one trial only: the study records it and goes on (other package errors stop the study)."""


class TrialTimeoutError(TrialError, TimeoutError):
    """A trial ran longer than its ``trial_timeout``."""


class ConstraintViolated(TrialError):
    """Stops a trial whose outcome constraint is already violated (a parameter count known before training).

    Attributes:
        metrics: the metrics known so far, stored with the trial.
    """

    def __init__(self, message: str, metrics: dict[str, float]) -> None:
        super().__init__(message)
        self.metrics = metrics


class DistributedError(LightningHPOError, RuntimeError):
    """The processes of one run fell out of step: a rank of a torchrun job, or a worker process of
    ``Tuner(n_jobs=...)``, failed outside a trial or did not answer in time; the message says which and why."""


class GridExhaustedError(LightningHPOError, LookupError):
    """Every point of a :class:`~lightning_hpo.GridSampler` grid has run or is running: no trial is left to start.

    ``running`` is how many points other workers still run (one of them may fail and free its point).
    The trial loop ends cleanly on it once ``running`` is 0.
    """

    def __init__(self, message: str, *, running: int) -> None:
        super().__init__(message)
        self.running = running

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TrialPruned(Exception):
    """Raise inside an objective to end its trial as PRUNED.

    Not a :class:`LightningHPOError`: it is control flow, not an error.
    """


def ends_study(error: BaseException) -> bool:
    """Whether ``error``, raised while a trial ran, ends the study rather than failing only that trial.

    lightning_hpo's own errors (a misconfiguration, which every other trial would hit too) and
    interruptions (Ctrl-C, ``SystemExit``) end it; :class:`TrialError` (e.g. a trial timeout) and
    any other exception from user code fail the trial only.
    """
    if isinstance(error, TrialError):
        return False
    return isinstance(error, LightningHPOError) or not isinstance(error, Exception)


def format_exception(error: BaseException) -> str:
    """The traceback of ``error`` as Python prints it, as stored with a failed trial."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
