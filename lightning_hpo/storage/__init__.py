"""Where studies live: the storage contract and its SQL implementation.

``open_storage`` turns what users pass as ``storage=`` into a :class:`Storage`:

* ``None``: the default SQLite file ``<root_dir>/studies.db`` (``lightning_hpo_runs/studies.db``);
* ``":memory:"`` or ``"sqlite://"``: an in-memory database, for throwaway studies;
* a SQLAlchemy URL: ``"sqlite:///path.db"``, ``"postgresql+psycopg://user:pw@host/db"``;
* a path to a file (``"runs/studies.db"`` or a :class:`~pathlib.Path`): a SQLite file;
* a :class:`Storage` instance: used as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning_hpo.exceptions import ArgumentTypeError
from lightning_hpo.storage.base import Storage, StudyRecord
from lightning_hpo.storage.sql import SCHEMA_VERSION, SQLStorage

__all__ = [
    "Storage",
    "StudyRecord",
    "SQLStorage",
    "SCHEMA_VERSION",
    "open_storage",
    "default_storage_url",
    "DEFAULT_ROOT_DIR",
    "DEFAULT_DB_NAME",
]

#: The directory of studies, trial logs and checkpoints when none is given: the Tuner's and the
#: CLI's ``root_dir``, the Study's and ``lightning-hpo``'s storage. Never ``lightning_hpo``: next to
#: a user's script such a folder shadows an editable install of the package on the next run.
DEFAULT_ROOT_DIR = "lightning_hpo_runs"
#: The SQLite file of the default storage, inside the root directory.
DEFAULT_DB_NAME = "studies.db"


def default_storage_url(root_dir: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(root_dir) / DEFAULT_DB_NAME}"


def open_storage(
    storage: str | os.PathLike[str] | Storage | None, *, root_dir: str | os.PathLike[str] = DEFAULT_ROOT_DIR
) -> Storage:
    """Open the storage that ``storage`` names (see the module docstring)."""
    if isinstance(storage, Storage):
        return storage
    if storage is None:
        return SQLStorage(default_storage_url(root_dir))
    if isinstance(storage, os.PathLike):
        return SQLStorage(f"sqlite:///{os.fspath(storage)}")
    if not isinstance(storage, str):
        raise ArgumentTypeError(
            f"`storage` must be None, a database URL, a file path or a Storage, but got {storage!r} "
            f"({type(storage).__name__})."
        )
    if storage == ":memory:":
        return SQLStorage("sqlite://")
    if "://" not in storage:
        return SQLStorage(f"sqlite:///{storage}")
    return SQLStorage(storage)
