"""The connection a thread reports a trial's intermediate values through, kept open between its reports.

A report is written at every validation, so what a transaction costs around its one statement
matters there: through SQLAlchemy, checking a connection out of the pool and back, copying its
execution options, the events that begin the transaction and the execution context cost several
times the statement itself. A :class:`ReportConnection` is a DBAPI connection of the thread's own,
out of the pool, that runs the upsert compiled once, in a transaction of its own, committed before
:meth:`ReportConnection.upsert` returns: a report is as durable as before (in the database when
``report`` returns; see the durability note of :mod:`lightning_hpo.storage.sql`). On SQLite the
transaction is ``BEGIN IMMEDIATE``, the upsert, ``COMMIT`` (the write lock taken first, as for every
write of the storage); on PostgreSQL the connection is in autocommit mode, so the one statement is
its own transaction: one round trip to the server.

It is used only for reports, so it is set up once for them (no flush to disk at the commit) and
never handed back to the pool, where another operation would inherit that setting. An error of the
driver closes it, and is raised as SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError` (marked
``connection_invalidated`` when the connection dropped), which the storage's retry loop judges like
any other; the next attempt opens a new one. Its liveness is thus only checked on an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import Engine

__all__ = ["ReportConnection"]

_T = TypeVar("_T")


class ReportConnection:
    """A DBAPI connection of one thread, out of ``engine``'s pool, that runs ``statement`` in a transaction of its own.

    Args:
        engine: the storage's engine (SQLite file or PostgreSQL; an in-memory SQLite database is one
            connection that every operation shares, so it has none of its own).
        statement: the one statement a report runs (an INSERT whose bound parameters are the row's columns).
        is_sqlite: whether ``engine`` is SQLite (transactions begin with ``BEGIN IMMEDIATE``).
    """

    def __init__(self, engine: Engine, statement: Any, *, is_sqlite: bool) -> None:
        self._dialect = engine.dialect
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        compiled = statement.compile(dialect=engine.dialect)
        self._sql: str = compiled.string
        self._positions: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        # The statement's own constants (e.g. the state a trial must be in) are bound parameters too.
        self._constants: dict[str, Any] = dict(compiled.params)
        self._is_sqlite = is_sqlite
        self._pid = os.getpid()
        self.closed = False
        self._holder = engine.connect()  # raises a refused connection as SQLAlchemy's DBAPIError
        self._connection = self._holder.connection.driver_connection
        self._holder.detach()  # closed, never returned to the pool, when closed below
        self._cursor = self._connection.cursor()
        # No flush to disk at a report's commit (see the durability note of lightning_hpo.storage.sql).
        if is_sqlite:
            self._guarded(lambda: self._cursor.execute("PRAGMA synchronous=NORMAL"), "PRAGMA synchronous=NORMAL")
        else:
            self._guarded(self._set_no_commit_flush, "SET synchronous_commit TO OFF")

    @property
    def usable(self) -> bool:
        """Open, and opened in this process (a child forked after it was opened must neither use nor close the
        parent's connection: closing a PostgreSQL connection there would end the parent's session)."""
        return not self.closed and self._pid == os.getpid()

    def upsert(self, row: Mapping[str, Any]) -> int:
        """Run the statement with ``row``'s parameters and commit; returns how many rows it wrote."""
        params = {**self._constants, **row}
        args: Any = params if self._positions is None else tuple(params[name] for name in self._positions)
        return self._guarded(lambda: self._execute(args), self._sql, args)

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        self._holder.close()

    def _execute(self, args: Any) -> int:
        cursor = self._cursor
        if self._is_sqlite:
            cursor.execute("BEGIN IMMEDIATE")  # takes the write lock now, as every write of the storage does
            cursor.execute(self._sql, args)
            rows = cursor.rowcount
            cursor.execute("COMMIT")
        else:  # autocommit: the statement is its own transaction, committed before the server replies
            cursor.execute(self._sql, args)
            rows = cursor.rowcount
        return rows

    def _set_no_commit_flush(self) -> None:
        self._connection.autocommit = True  # one statement per report: no BEGIN and COMMIT round trips around it
        self._cursor.execute("SET synchronous_commit TO OFF")

    def _guarded(self, action: Callable[[], _T], sql: str, args: Any = None) -> _T:
        """``action()``; on any error, the connection closed (which ends its transaction) and a driver's error
        raised as SQLAlchemy's, as its own execution would raise it."""
        try:
            return action()
        except self._dbapi_error as error:
            dropped = self._dialect.is_disconnect(error, self._connection, self._cursor)
            self._abandon()
            raise exc.DBAPIError.instance(
                sql, args, error, self._dbapi_error, connection_invalidated=dropped, dialect=self._dialect
            ) from error
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        # Closed without the rollback a close would try first (on a dropped connection it fails, and is
        # logged): closing the connection ends its transaction.
        self.closed = True
        self._holder.invalidate()
        self._holder.close()
