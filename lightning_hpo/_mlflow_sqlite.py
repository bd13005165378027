"""The MLflow shortcut's own SQLite store (``<root_dir>/mlflow.db``): commits without a flush to disk each.

MLflow's SQLAlchemy store commits several times per call (creating a run, each ``log_batch``, ending
the run), and SQLite's default rollback journal flushes the disk two or three times per commit:
most of what a short trial pays for MLflow. The store the shortcut creates itself is switched, once,
to WAL mode (as the study's own SQLite storage runs), and this process's connections to it commit
with ``synchronous=NORMAL``: a commit appends to the write-ahead log without waiting for the disk.
Every commit still survives the process being killed; what an OS crash or power loss could lose is
made durable when each trial's run ends, by one flush of the log (:func:`flush`), so a finished
trial's run is on disk, as with the default settings.

WAL needs every process that opens the file to run on one machine (they share its index in memory):
on a network filesystem (NFS, Lustre, GPFS, CIFS, FUSE mounts...), where workers on several nodes
may share the directory, the store keeps MLflow's default journal (point ``MLFLOW_TRACKING_URI`` at
a tracking server there). A file in WAL mode is an ordinary SQLite database: MLflow's UI and
``MlflowClient`` read and write it as before. A store given by ``MLFLOW_TRACKING_URI`` is left as it is.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from pathlib import Path
from typing import Any

#: Filesystems whose files other machines may open: SQLite's WAL index cannot be shared there.
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "9p", "afs", "panfs"}
)
_tuned_engines: weakref.WeakSet[Any] = weakref.WeakSet()


def on_local_disk(path: Path, mounts: str | None = None) -> bool:
    """Whether ``path`` is on a filesystem of this machine only, as ``mounts`` (the text of
    ``/proc/self/mounts`` by default) says; ``False`` when that cannot be told (no ``/proc``, as on
    macOS or Windows)."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return False
    where = str(path.resolve())
    best, fstype = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, fstype = point, fields[2]
    return bool(best) and fstype not in NETWORK_FILESYSTEMS and not fstype.startswith("fuse")


def use_wal(db: Path) -> bool:
    """Switch the SQLite file ``db`` (which MLflow has created) to WAL mode, once for good, when it
    is on a local disk. Whether it is in WAL mode now."""
    if not on_local_disk(db):
        return False
    connection = sqlite3.connect(db, timeout=20)
    try:
        return connection.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal"
    finally:
        connection.close()


def commit_without_flush(client: Any) -> None:
    """Make this process's connections to ``client``'s SQLite store (an ``MlflowClient``) commit
    without flushing the disk, when the file is in WAL mode. Once per process and store; a store
    that is not a SQLAlchemy one (a tracking server) is left as it is."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    # MLflow keeps one engine per database URI and process, which its stores share.
    engine = getattr(getattr(getattr(client, "_tracking_client", None), "store", None), "engine", None)
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite" or engine in _tuned_engines:
        return

    def no_flush_in_wal_mode(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", no_flush_in_wal_mode)
    engine.dispose()  # connections already pooled reconnect with the setting (those in use are dropped when returned)
    _tuned_engines.add(engine)


def flush(db: Path) -> None:
    """Flush to disk what the commits of ``db`` left in its write-ahead log (nothing to do without one)."""
    try:
        descriptor = os.open(f"{db}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
