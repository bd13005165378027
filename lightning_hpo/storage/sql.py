"""Storage on SQLAlchemy: SQLite files (the default), in-memory SQLite, and PostgreSQL.

Concurrency:

* SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
  ``BEGIN IMMEDIATE``: a writer takes the write lock before it reads, so two processes can never
  both read "the next number is 7" and then collide. Readers are never blocked by a writer.
* PostgreSQL serializes trial creation per study with ``SELECT ... FOR UPDATE`` on the study row.
* Both retry a transaction, with backoff and within a bounded time, when the database is locked or
  the connection drops (a PostgreSQL restart); after that the error is raised, never swallowed.

Durability: every committed write survives the process being killed. Surviving an OS crash or a
power loss as well takes a flush to disk at the commit (SQLite ``synchronous=FULL``, PostgreSQL
``synchronous_commit=on``), which costs milliseconds; the commits that change a study or finish a
trial make it. The others (a trial's creation, parameters, reports, paths and attributes, and
heartbeats) skip it: the next flushing commit, at the latest the one that finishes the trial,
flushes them too; a power loss before then ends the running trial anyway, which then goes stale
(FAIL) like any trial whose worker died.

One module although it is long: the tables, the engine set-up and the retrying transaction are
what every operation below is written against, and the operations are the Storage contract.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine

from lightning_hpo.exceptions import (
    InvalidArgumentError,
    NotADatabaseError,
    SchemaVersionError,
    StorageError,
    StudyNotFoundError,
    TrialStateError,
)
from lightning_hpo.storage._report_connection import ReportConnection
from lightning_hpo.storage.base import Storage, StudyRecord, TrialOverview
from lightning_hpo.trial import ENQUEUED, RETRY_OF, Trial, TrialState

__all__ = ["SQLStorage", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

#: Bumped whenever the tables change; a database of another version is refused, not migrated blindly.
#: 2: intermediate values keep the whole vector of a multi-objective report.
SCHEMA_VERSION = 2

_T = TypeVar("_T")

metadata = sa.MetaData()
meta_table = sa.Table(
    "hpo_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
studies_table = sa.Table(
    "hpo_studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
    sa.Column("space", sa.Text, nullable=False),
    sa.Column("directions", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
trials_table = sa.Table(
    "hpo_trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("hpo_studies.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("value", sa.Double, nullable=True),  # first objective, for sorting in SQL
    sa.Column("objective_values", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("worker", sa.String(255), nullable=True),
    sa.Column("heartbeat", sa.DateTime, nullable=True),
    sa.Column("datetime_start", sa.DateTime, nullable=True),
    sa.Column("datetime_complete", sa.DateTime, nullable=True),
    sa.Column("log_dir", sa.Text, nullable=True),
    sa.Column("checkpoint_path", sa.Text, nullable=True),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.UniqueConstraint("study_id", "number", name="uq_hpo_trials_study_number"),
)
intermediate_table = sa.Table(
    "hpo_intermediate_values",
    metadata,
    sa.Column("trial_id", sa.Integer, sa.ForeignKey("hpo_trials.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True),
    # NULL stands for nan: SQLite cannot store a nan REAL. In a multi-objective study: the first objective.
    sa.Column("value", sa.Double, nullable=True),
    # A multi-objective report's values as a JSON list (null for nan); NULL for a single value.
    sa.Column("objective_values", sa.Text, nullable=True),
)
# Added after schema version 2 without a version bump: created when missing (see _study_attrs_ready).
study_attrs_table = sa.Table(
    "hpo_study_attrs",
    metadata,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("hpo_studies.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_OUR_TABLES = {t.name for t in metadata.sorted_tables}


def _read_study_attr(conn: Connection, study_id: int, key: str) -> str | None:
    """The stored JSON text of a study attribute, or ``None`` (also before the table exists)."""
    if not sa.inspect(conn).has_table(study_attrs_table.name):
        return None
    where = (study_attrs_table.c.study_id == study_id) & (study_attrs_table.c.key == key)
    return conn.execute(sa.select(study_attrs_table.c.value).where(where)).scalar_one_or_none()


def _trial_queries(condition: Any, steps_condition: Any = None) -> tuple[Any, Any]:
    """The trials that match ``condition``, in number order, and their intermediate values (those that match
    ``steps_condition`` too, when given)."""
    return (
        sa.select(trials_table).where(condition).order_by(trials_table.c.number),
        sa.select(intermediate_table)
        .join(trials_table, trials_table.c.id == intermediate_table.c.trial_id)
        .where(condition if steps_condition is None else sa.and_(condition, steps_condition))
        .order_by(intermediate_table.c.trial_id, intermediate_table.c.step),
    )


# The statements run for every trial and validation are built once, with bound parameters: on
# SQLite, building a statement costs more than running it.
_IN_STUDY = trials_table.c.study_id == sa.bindparam("study_id")
# A study's reads skip the intermediate values already held in its _FinishedSteps.
_NOT_CACHED = intermediate_table.c.trial_id > sa.bindparam("cached_up_to")
_TRIALS_OF_STUDY = _trial_queries(_IN_STUDY, _NOT_CACHED)
_TRIALS_OF_STUDY_IN_STATES = _trial_queries(
    sa.and_(_IN_STUDY, trials_table.c.state.in_(sa.bindparam("states", expanding=True))), _NOT_CACHED
)
_ONE_TRIAL = _trial_queries(trials_table.c.id == sa.bindparam("trial_id"))
_NUMBER_AND_STATE = sa.select(trials_table.c.number, trials_table.c.state).where(
    trials_table.c.id == sa.bindparam("trial_id")
)


_ATTR_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _attr_json(key: str, is_sqlite: bool) -> Any:
    """The JSON text of a trial's ``attrs[key]``, NULL when it has none."""
    if is_sqlite:
        return trials_table.c.attrs.op("->")(f"$.{key}")
    from sqlalchemy.dialects.postgresql import JSON

    return sa.cast(sa.cast(trials_table.c.attrs, JSON).op("->")(key), sa.Text)


def _datetime_text(column: Any, is_sqlite: bool) -> Any:
    """A datetime column as SQLite holds it, marked UTC (ISO text, parsed by :func:`_from_text`); as is elsewhere."""
    return sa.type_coerce(column, sa.Text) + "+00:00" if is_sqlite else column


def _from_text(text: str | None) -> datetime | None:
    """An aware UTC datetime from :func:`_datetime_text` (``datetime.fromisoformat`` parses it in C)."""
    return None if text is None else datetime.fromisoformat(text)


def _decode_all(texts: Iterable[str]) -> list[Any]:
    """The JSON texts decoded in one call: one list of their values."""
    return json.loads("[" + ",".join(texts) + "]")


def _picked_attrs(keys: list[str], cells: list[Sequence[str | None]]) -> list[dict[str, Any]]:
    """Each row's attrs from its cells (the JSON text of ``attrs[key]`` per key, ``None`` where it has none).

    Decoded in one call; rows without any of the keys (most, in most studies) are skipped.
    """
    present = [i for i, row in enumerate(cells) if any(cell is not None for cell in row)]
    decoded = iter(_decode_all(cell or "null" for i in present for cell in cells[i]))
    attrs: list[dict[str, Any]] = [{} for _ in cells]
    for i in present:
        attrs[i] = {key: value for key, value in zip(keys, decoded) if value is not None}
    return attrs


#: Each state by its stored name: a dict lookup costs less than ``TrialState(name)`` for every row.
_STATES = {state.value: state for state in TrialState}


def _curve_json(is_sqlite: bool) -> Any:
    """A trial's intermediate values as the JSON text of :attr:`TrialOverview.curve_json`, in step order."""
    steps = intermediate_table.c
    # Every double as text that reads back as the same double: PostgreSQL's text is; SQLite's needs '%!.17g'.
    exact = sa.func.printf("%!.17g", steps.value) if is_sqlite else sa.cast(steps.value, sa.Text)
    number = sa.case((sa.func.abs(steps.value) <= sys.float_info.max, exact), else_="null")
    point = "[" + sa.cast(steps.step, sa.Text) + "," + sa.func.coalesce(steps.objective_values, number) + "]"
    if is_sqlite:
        # SQLite 3.40 has no ORDER BY inside an aggregate: it aggregates the rows of an ordered subquery in order.
        ordered = (
            sa.select(point.label("point"))
            .where(steps.trial_id == trials_table.c.id)
            .order_by(steps.step)
            .correlate(trials_table)
            .subquery()
        )
        joined = sa.select(sa.func.group_concat(ordered.c.point, ",")).scalar_subquery()
    else:
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        joined = (
            sa.select(sa.func.string_agg(point, aggregate_order_by(sa.literal(","), steps.step)))
            .where(steps.trial_id == trials_table.c.id)
            .correlate(trials_table)
            .scalar_subquery()
        )
    return "[" + sa.func.coalesce(joined, "") + "]"


def _overview_condition(
    study_id: int, after_id: int | None, ids: Iterable[int], finished_since: datetime | None
) -> Any:
    """The trials of the study that match any selector of :meth:`Storage.get_trial_overviews`, or all of them."""
    selectors = []
    if after_id is not None:
        selectors.append(trials_table.c.id > after_id)
    if ids := list(ids):
        selectors.append(trials_table.c.id.in_(ids))
    if finished_since is not None:
        selectors.append(trials_table.c.datetime_complete >= _naive(finished_since.astimezone(timezone.utc)))
    condition = trials_table.c.study_id == study_id
    return sa.and_(condition, sa.or_(*selectors)) if selectors else condition


@functools.cache
def _upsert_intermediate(is_sqlite: bool) -> Any:
    """Store an intermediate value of a RUNNING trial, replacing the one stored at the same step.

    One statement: the row is inserted from a SELECT of the trial that matches only while the trial
    is RUNNING, so a finished (or missing) trial affects no row. Every column is a parameter.
    """
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    row_of_running_trial = sa.select(
        trials_table.c.id,
        sa.bindparam("step", type_=sa.BigInteger),
        sa.bindparam("value", type_=sa.Double),
        sa.bindparam("objective_values", type_=sa.Text),
    ).where(trials_table.c.id == sa.bindparam("trial_id"), trials_table.c.state == TrialState.RUNNING.value)
    statement = insert(intermediate_table).from_select(
        ["trial_id", "step", "value", "objective_values"], row_of_running_trial
    )
    return statement.on_conflict_do_update(
        index_elements=[intermediate_table.c.trial_id, intermediate_table.c.step],
        set_={"value": statement.excluded.value, "objective_values": statement.excluded.objective_values},
    ).execution_options(preserve_rowcount=True)  # an INSERT's rowcount is -1 on psycopg without it


# How long a transaction is retried while the database is locked or unreachable.
_RETRY_SECONDS = 120.0
# How long opening a storage retries before saying the database can't be reached.
_FIRST_CONNECT_RETRY_SECONDS = 10.0
# Arbitrary constant: the PostgreSQL advisory lock that serializes schema creation.
_SCHEMA_LOCK_KEY = 0x4C48504F


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _as_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def _is_transient(error: exc.DBAPIError) -> bool:
    """Errors worth retrying: a locked SQLite database, or a PostgreSQL connection that dropped."""
    if error.connection_invalidated:
        return True
    message = str(error.orig).lower() if error.orig is not None else str(error).lower()
    transient = (
        "database is locked",
        "database table is locked",
        "database is busy",
        "server closed the connection",
        "connection refused",
        "terminating connection",
        "the database system is starting up",
        "the database system is shutting down",
        "could not connect",
        "connection is closed",
        "consuming input failed",
        "deadlock detected",
        "could not serialize access",
    )
    return isinstance(error, exc.OperationalError) and any(t in message for t in transient)


class SQLStorage(Storage):
    """Storage in a SQL database through SQLAlchemy.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///path/to/file.db``, ``sqlite://`` (in memory) or
            ``postgresql+psycopg://user:password@host/dbname``.
        retry_seconds: how long a transaction is retried while the database is locked or
            unreachable (e.g. a PostgreSQL restart) before :class:`StorageError` is raised.

    Example:
        >>> storage = SQLStorage("sqlite://")
        >>> storage.list_studies()
        []
    """

    def __init__(self, url: str | URL, *, retry_seconds: float = _RETRY_SECONDS) -> None:
        try:
            self._url = sa.engine.make_url(url)
        except (exc.ArgumentError, ValueError) as error:
            raise InvalidArgumentError(
                f"Storage URL {str(url)!r} is not a database URL: {error}. Use e.g. 'sqlite:///studies.db' or "
                "'postgresql+psycopg://user:password@host/dbname'."
            ) from None
        backend = self._url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise InvalidArgumentError(
                f"Storage URL {self._url.render_as_string(hide_password=True)!r} uses {backend!r}; "
                "supported are 'sqlite' (file or memory) and 'postgresql'."
            )
        if "\x00" in str(self._url.database or ""):
            raise InvalidArgumentError(
                f"Storage URL {self._url.render_as_string(hide_password=True)!r} names a database with a NUL "
                "character in it, which no file or database name may contain; check how the URL was built."
            )
        self._retry_seconds = float(retry_seconds)
        self._is_sqlite = backend == "sqlite"
        self._in_memory = self._is_sqlite and self._url.database in (None, "", ":memory:")
        self._url = _with_available_postgres_driver(self._url)
        self.display_url = self._url.render_as_string(hide_password=True)
        # One in-memory database is one connection, so its users must take turns.
        self._memory_lock = threading.RLock() if self._in_memory else None
        self._engine: Engine | None = None
        self._init_lock = threading.Lock()
        self._finished_steps: dict[int, _FinishedSteps] = {}  # study id -> what its last full read cached
        self._report_connections: dict[int, ReportConnection] = {}  # thread id -> its connection for reports
        self._report_connections_lock = threading.Lock()
        self._engine_for_use()

    # -- connections -----------------------------------------------------------------------

    @property
    def in_memory(self) -> bool:
        return self._in_memory

    @property
    def shareable_across_processes(self) -> bool:
        return not self._in_memory

    @property
    def sqlite_path(self) -> Path | None:
        return None if (not self._is_sqlite or self._in_memory) else Path(self._url.database)

    def _describe(self) -> str:
        path = self.sqlite_path
        return f"the SQLite file {str(path)!r}" if path is not None else f"the database {self.display_url!r}"

    def _engine_for_use(self) -> Engine:
        if self._engine is not None:
            return self._engine
        with self._init_lock:
            if self._engine is None:
                engine = self._create_engine()
                try:
                    self._init_schema(engine)
                except BaseException:
                    engine.dispose()
                    raise
                self._engine = engine
        return self._engine

    def _create_engine(self) -> Engine:
        if not self._is_sqlite:
            try:
                return sa.create_engine(self._url, pool_pre_ping=True)
            except ImportError as error:
                raise StorageError(
                    f"No driver for {self.display_url!r} ({error}); install one with "
                    "`pip install 'lightning-hpo[postgresql]'`."
                ) from None
        if self._in_memory:
            engine = sa.create_engine(
                "sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            path = self.sqlite_path
            assert path is not None
            if path.exists() and path.is_dir():
                raise StorageError(
                    f"Storage path {str(path)!r} is a directory; give a file path, e.g. {str(path / 'studies.db')!r}."
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageError(f"Cannot create the directory of the SQLite file {str(path)!r}: {error}.") from None
            # The busy timeout makes a writer wait for the lock instead of failing at once.
            engine = sa.create_engine(self._url, connect_args={"timeout": 30.0})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if not self._in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            options = connection.get_execution_options()
            if not options.get("hpo_write", False):
                connection.exec_driver_sql("BEGIN")
                return
            # FULL flushes the WAL at commit; NORMAL leaves that to the next FULL commit (see the module doc).
            synchronous = "FULL" if options["hpo_durable"] else "NORMAL"
            if not self._in_memory and connection.info.get("hpo_synchronous") != synchronous:
                connection.exec_driver_sql(f"PRAGMA synchronous={synchronous}")
                connection.info["hpo_synchronous"] = synchronous
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _init_schema(self, engine: Engine) -> None:
        def create(conn: Connection) -> None:
            if not self._is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            existing = set(sa.inspect(conn).get_table_names())
            if meta_table.name in existing:
                version = conn.execute(
                    sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
                ).scalar_one_or_none()
                if version != str(SCHEMA_VERSION):
                    raise SchemaVersionError(
                        f"{self._describe()} holds lightning_hpo studies of schema version {version}, but this "
                        f"lightning_hpo reads version {SCHEMA_VERSION}. Open it with the lightning_hpo that wrote "
                        "it, or use another storage."
                    )
                return
            if existing & _OUR_TABLES:
                raise SchemaVersionError(
                    f"{self._describe()} has lightning_hpo tables ({sorted(existing & _OUR_TABLES)}) but no schema "
                    "version: it was not written by a compatible lightning_hpo. Use another storage."
                )
            metadata.create_all(conn)
            conn.execute(sa.insert(meta_table), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])

        # A wrong URL should fail within seconds, not after the mid-study outage budget.
        self._run(
            create, write=True, engine=engine, retry_seconds=min(_FIRST_CONNECT_RETRY_SECONDS, self._retry_seconds)
        )

    def _run(
        self,
        operation: Callable[[Connection], _T],
        *,
        write: bool = False,
        durable: bool = True,
        engine: Engine | None = None,
        retry_seconds: float | None = None,
    ) -> _T:
        """Run ``operation`` in one transaction, retrying transient errors for a bounded time.

        ``durable=False``: a write of a running trial, not flushed to disk at its commit (see the module doc).
        """
        engine = engine or self._engine_for_use()

        def attempt() -> _T:
            if self._memory_lock is not None:
                with self._memory_lock:
                    return self._run_once(engine, operation, write, durable)
            return self._run_once(engine, operation, write, durable)

        return self._retrying(attempt, retry_seconds)

    def _retrying(self, attempt: Callable[[], _T], retry_seconds: float | None = None) -> _T:
        """``attempt()``, called again with backoff while it raises a transient error, for at most ``retry_seconds``."""
        retry_seconds = self._retry_seconds if retry_seconds is None else retry_seconds
        deadline = time.monotonic() + retry_seconds
        delay = 0.02
        while True:
            try:
                return attempt()
            except exc.DBAPIError as error:
                self._raise_if_permanent(error)
                if time.monotonic() + delay > deadline:
                    raise StorageError(
                        f"{self._describe()} stayed unavailable for {retry_seconds:.0f} s: {error.orig}"
                    ) from error
                log.debug("Transient storage error, retrying in %.2f s: %s", delay, error.orig)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _run_once(self, engine: Engine, operation: Callable[[Connection], _T], write: bool, durable: bool) -> _T:
        with engine.connect() as conn:
            if write:
                conn = conn.execution_options(hpo_write=True, hpo_durable=durable)
            with conn.begin():
                if write and not durable and not self._is_sqlite:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                return operation(conn)

    def _raise_if_permanent(self, error: exc.DBAPIError) -> None:
        message = str(error.orig).lower()
        if "file is not a database" in message or "file is encrypted" in message:
            raise NotADatabaseError(
                f"{self._describe()} is not a database (SQLite says: {error.orig}). "
                "Point the storage at a lightning_hpo database or a new file."
            ) from None
        if "readonly database" in message or "unable to open database file" in message:
            raise StorageError(
                f"Cannot write {self._describe()}: {error.orig}. Check that the file and its directory exist "
                "and are writable."
            ) from None
        if not _is_transient(error):
            raise StorageError(f"Storage error on {self._describe()}: {error.orig}") from error

    def close(self) -> None:
        with self._report_connections_lock:
            connections, self._report_connections = self._report_connections, {}
        for connection in connections.values():
            if connection.usable:
                connection.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __getstate__(self) -> dict[str, Any]:
        if self._in_memory:
            raise TypeError("An in-memory storage cannot be sent to another process; use a SQLite file or PostgreSQL.")
        state = self.__dict__.copy()
        state.update(_engine=None, _init_lock=None, _finished_steps={}, _report_connections={})
        state.update(_report_connections_lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_lock = threading.Lock()
        self._report_connections_lock = threading.Lock()

    # -- studies ---------------------------------------------------------------------------

    @staticmethod
    def _study_from_row(row: Any) -> StudyRecord:
        return StudyRecord(
            id=row.id,
            name=row.name,
            space=json.loads(row.space),
            directions=tuple(json.loads(row.directions)),
            created_at=_as_utc(row.created_at),
        )

    def get_or_create_study(self, name: str, space: Mapping[str, Any], directions: Sequence[str]) -> StudyRecord:
        def operation(conn: Connection) -> StudyRecord:
            row = conn.execute(sa.select(studies_table).where(studies_table.c.name == name)).one_or_none()
            if row is None:
                conn.execute(
                    sa.insert(studies_table).values(
                        name=name,
                        space=json.dumps(dict(space), sort_keys=True),
                        directions=json.dumps(list(directions)),
                        created_at=_utcnow(),
                    )
                )
                row = conn.execute(sa.select(studies_table).where(studies_table.c.name == name)).one()
            return self._study_from_row(row)

        try:
            return self._run(operation, write=True)
        except StorageError as error:
            # Another worker created the same study between our read and our insert: read theirs.
            if isinstance(error.__cause__, exc.IntegrityError):
                return self.get_study(name)
            raise

    def get_study(self, name: str) -> StudyRecord:
        row = self._run(
            lambda conn: conn.execute(sa.select(studies_table).where(studies_table.c.name == name)).one_or_none()
        )
        if row is None:
            names = [s.name for s in self.list_studies()]
            raise StudyNotFoundError(
                f"No study named {name!r} in {self._describe()}; "
                + (f"the studies there are: {', '.join(map(repr, names))}." if names else "it holds no studies.")
            )
        return self._study_from_row(row)

    def list_studies(self) -> list[StudyRecord]:
        rows = self._run(lambda conn: conn.execute(sa.select(studies_table).order_by(studies_table.c.id)).all())
        return [self._study_from_row(row) for row in rows]

    def delete_study(self, name: str) -> None:
        study_id = self.get_study(name).id

        def operation(conn: Connection) -> None:
            trial_ids = sa.select(trials_table.c.id).where(trials_table.c.study_id == study_id)
            conn.execute(sa.delete(intermediate_table).where(intermediate_table.c.trial_id.in_(trial_ids)))
            conn.execute(sa.delete(trials_table).where(trials_table.c.study_id == study_id))
            if sa.inspect(conn).has_table(study_attrs_table.name):
                conn.execute(sa.delete(study_attrs_table).where(study_attrs_table.c.study_id == study_id))
            conn.execute(sa.delete(studies_table).where(studies_table.c.id == study_id))
            self._write_queue(conn, study_id, [])

        self._run(operation, write=True)
        self._finished_steps.pop(study_id, None)

    def study_attr_setdefault(self, study_id: int, key: str, value: Any) -> Any:
        """The study attribute ``key`` as stored, after storing ``value`` (JSON) if it had none."""
        encoded = json.dumps(value, sort_keys=True)

        def read(conn: Connection) -> str | None:
            return _read_study_attr(conn, study_id, key)

        # Every open of a study asks; only its first open writes (a read-only viewer then writes nothing).
        already = self._run(read, write=False)
        if already is not None:
            return json.loads(already)

        def operation(conn: Connection) -> str:
            # Databases written before this table existed get it on first use (no schema version change).
            study_attrs_table.create(conn, checkfirst=True)
            stored = read(conn)
            if stored is None:
                conn.execute(sa.insert(study_attrs_table).values(study_id=study_id, key=key, value=encoded))
                stored = encoded
            return stored

        try:
            return json.loads(self._run(operation, write=True))
        except StorageError as error:
            if isinstance(error.__cause__, exc.IntegrityError):  # another worker stored it first: read theirs
                return json.loads(self._run(operation, write=True))
            raise

    def study_attr_get(self, study_id: int, key: str) -> Any:
        """The study attribute ``key`` as stored, or ``None``; writes nothing (not even the table)."""

        stored = self._run(lambda conn: _read_study_attr(conn, study_id, key), write=False)
        return None if stored is None else json.loads(stored)

    # -- trials ----------------------------------------------------------------------------

    def create_trial(
        self,
        study_id: int,
        *,
        worker: str,
        params: Mapping[str, Any] | None = None,
        max_active: int | None = None,
        attrs: Mapping[str, Any] | None = None,
        retry_of: int | None = None,
    ) -> Trial | None:
        if retry_of is not None:
            attrs = {**(attrs or {}), RETRY_OF: retry_of}

        def operation(conn: Connection) -> Trial | None:
            self._lock_study(conn, study_id)
            if retry_of is not None and self._has_retry(conn, study_id, retry_of):
                return None
            if self._is_full(conn, study_id, max_active):
                return None
            return self._insert_trial(conn, study_id, worker=worker, params=params or {}, attrs=attrs or {})

        return self._run(operation, write=True, durable=False)

    def _lock_study(self, conn: Connection, study_id: int) -> None:
        """Serialize the trial creations of a study (SQLite's BEGIN IMMEDIATE already serializes writers)."""
        if not self._is_sqlite:
            conn.execute(sa.select(studies_table.c.id).where(studies_table.c.id == study_id).with_for_update())

    @staticmethod
    def _is_full(conn: Connection, study_id: int, max_active: int | None) -> bool:
        if max_active is None:
            return False
        active = conn.execute(
            sa.select(sa.func.count())
            .select_from(trials_table)
            .where(trials_table.c.study_id == study_id, trials_table.c.state != TrialState.FAIL.value)
        ).scalar_one()
        return active >= max_active

    @staticmethod
    def _insert_trial(
        conn: Connection, study_id: int, *, worker: str, params: Mapping[str, Any], attrs: Mapping[str, Any]
    ) -> Trial:
        number = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(trials_table.c.number), -1) + 1).where(
                trials_table.c.study_id == study_id
            )
        ).scalar_one()
        now = _utcnow()
        trial_id = conn.execute(
            sa.insert(trials_table).values(
                study_id=study_id,
                number=number,
                state=TrialState.RUNNING.value,
                params=json.dumps(dict(params), sort_keys=True),
                worker=worker,
                heartbeat=now,
                datetime_start=now,
                attrs=json.dumps(dict(attrs), sort_keys=True),
            )
        ).inserted_primary_key[0]
        return Trial(
            number=number,
            state=TrialState.RUNNING,
            params=dict(params),
            datetime_start=_as_utc(now),
            worker=worker,
            heartbeat=_as_utc(now),
            attrs=dict(attrs),
            id=trial_id,
        )

    def create_claiming_trial(
        self,
        study_id: int,
        *,
        worker: str,
        key: str,
        choose: Callable[[set[Any]], tuple[Any, Mapping[str, Any]]],
        max_active: int | None = None,
    ) -> Trial | None:
        def operation(conn: Connection) -> Trial | None:
            self._lock_study(conn, study_id)
            if self._is_full(conn, study_id, max_active):
                return None
            # attrs is JSON text: the LIKE only narrows the rows down to those worth parsing.
            holders = conn.execute(
                sa.select(trials_table.c.attrs).where(
                    trials_table.c.study_id == study_id,
                    trials_table.c.state != TrialState.FAIL.value,
                    trials_table.c.attrs.like(f'%"{key}"%'),
                )
            ).scalars()
            taken = {attrs[key] for attrs in map(json.loads, holders) if key in attrs}
            value, params = choose(taken)
            return self._insert_trial(conn, study_id, worker=worker, params=params, attrs={key: value})

        return self._run(operation, write=True, durable=False)

    # The queue of enqueued configs of each study, as one JSON list in the key-value table hpo_meta.
    @staticmethod
    def _queue_key(study_id: int) -> str:
        return f"enqueued:{study_id}"

    def _read_queue(self, conn: Connection, study_id: int) -> list[dict[str, Any]]:
        text = conn.execute(
            sa.select(meta_table.c.value).where(meta_table.c.key == self._queue_key(study_id))
        ).scalar_one_or_none()
        return [] if text is None else json.loads(text)

    def _write_queue(self, conn: Connection, study_id: int, queue: Sequence[Mapping[str, Any]]) -> None:
        conn.execute(sa.delete(meta_table).where(meta_table.c.key == self._queue_key(study_id)))
        if queue:
            conn.execute(sa.insert(meta_table).values(key=self._queue_key(study_id), value=json.dumps(list(queue))))

    def enqueue_params(self, study_id: int, params: Mapping[str, Any]) -> None:
        def operation(conn: Connection) -> None:
            self._lock_study(conn, study_id)
            self._write_queue(conn, study_id, [*self._read_queue(conn, study_id), dict(params)])

        self._run(operation, write=True)

    def get_enqueued_params(self, study_id: int) -> list[dict[str, Any]]:
        return self._run(lambda conn: self._read_queue(conn, study_id))

    def create_enqueued_trial(self, study_id: int, *, worker: str, max_active: int | None = None) -> Trial | None:
        def operation(conn: Connection) -> Trial | None:
            self._lock_study(conn, study_id)
            queue = self._read_queue(conn, study_id)
            if not queue or self._is_full(conn, study_id, max_active):
                return None
            self._write_queue(conn, study_id, queue[1:])
            attrs = {ENQUEUED: sorted(queue[0])}
            return self._insert_trial(conn, study_id, worker=worker, params=queue[0], attrs=attrs)

        return self._run(operation, write=True)

    @staticmethod
    def _has_retry(conn: Connection, study_id: int, number: int) -> bool:
        # attrs is JSON text: the LIKE only narrows the rows down to those worth parsing.
        candidates = conn.execute(
            sa.select(trials_table.c.attrs).where(
                trials_table.c.study_id == study_id, trials_table.c.attrs.like(f'%"{RETRY_OF}"%')
            )
        ).scalars()
        return any(json.loads(text).get(RETRY_OF) == number for text in candidates)

    def _require_running(self, conn: Connection, trial_id: int, action: str) -> None:
        row = conn.execute(_NUMBER_AND_STATE, {"trial_id": trial_id}).one_or_none()
        if row is None:
            raise TrialStateError(f"Cannot {action}: no trial with id {trial_id} in {self._describe()}.")
        if row.state != TrialState.RUNNING.value:
            raise TrialStateError(
                f"Cannot {action}: trial {row.number} is already {row.state}; only a RUNNING trial can be changed."
            )

    def set_trial_params(self, trial_id: int, params: Mapping[str, Any]) -> None:
        def operation(conn: Connection) -> None:
            self._require_running(conn, trial_id, "set the parameters")
            conn.execute(
                sa.update(trials_table)
                .where(trials_table.c.id == trial_id)
                .values(params=json.dumps(dict(params), sort_keys=True))
            )

        self._run(operation, write=True, durable=False)

    def report(self, trial_id: int, step: int, value: float | Sequence[float]) -> None:
        vector = None if isinstance(value, (int, float)) else [float(v) for v in value]
        first = float(value) if vector is None else vector[0]
        stored = None if math.isnan(first) else first
        stored_vector = None if vector is None else json.dumps([None if math.isnan(v) else v for v in vector])
        row = {"trial_id": trial_id, "step": step, "value": stored, "objective_values": stored_vector}

        def in_one_transaction(conn: Connection) -> None:
            if conn.execute(_upsert_intermediate(self._is_sqlite), row).rowcount == 0:
                self._require_running(conn, trial_id, f"report step {step}")  # missing or finished: say which

        # At every validation: through this thread's own connection (see _report_connection), unless the
        # database is one connection in memory. When it wrote nothing, the transaction above words the error.
        if self._in_memory or self._retrying(lambda: self._report_connection().upsert(row)) == 0:
            self._run(in_one_transaction, write=True, durable=False)

    def _report_connection(self) -> ReportConnection:
        """This thread's connection for reports, opened at its first report (or after an error closed it)."""
        thread = threading.get_ident()
        connection = self._report_connections.get(thread)
        if connection is None or not connection.usable:
            connection = ReportConnection(
                self._engine_for_use(), _upsert_intermediate(self._is_sqlite), is_sqlite=self._is_sqlite
            )
            with self._report_connections_lock:
                self._report_connections[thread] = connection
                ended = set(self._report_connections) - {alive.ident for alive in threading.enumerate()}
                ended_connections = [self._report_connections.pop(ident) for ident in ended]
            for ended_connection in ended_connections:  # those of threads that ended: not to pile up
                if ended_connection.usable:
                    ended_connection.close()
        return connection

    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        *,
        values: Sequence[float] | None = None,
        error: str | None = None,
    ) -> Trial:
        if state is TrialState.RUNNING:
            raise InvalidArgumentError("finish_trial needs a finished state (COMPLETE, PRUNED or FAIL), got RUNNING.")
        values_list = None if values is None else [float(v) for v in values]
        stored_values = None if values_list is None else json.dumps(values_list)
        attempts = 0

        def operation(conn: Connection) -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and self._already_finished_as(conn, trial_id, state, stored_values, error):
                return  # our first attempt committed, then the connection dropped before its reply
            self._require_running(conn, trial_id, f"mark it {state.value}")
            conn.execute(
                sa.update(trials_table)
                .where(trials_table.c.id == trial_id, trials_table.c.state == TrialState.RUNNING.value)
                .values(
                    state=state.value,
                    value=None if not values_list else values_list[0],
                    objective_values=stored_values,
                    error=error,
                    datetime_complete=_utcnow(),
                )
            )

        self._run(operation, write=True)
        return self.get_trial(trial_id)

    @staticmethod
    def _already_finished_as(
        conn: Connection, trial_id: int, state: TrialState, stored_values: str | None, error: str | None
    ) -> bool:
        row = conn.execute(
            sa.select(trials_table.c.state, trials_table.c.objective_values, trials_table.c.error).where(
                trials_table.c.id == trial_id
            )
        ).one_or_none()
        return row is not None and (row.state, row.objective_values, row.error) == (state.value, stored_values, error)

    def update_trial(
        self,
        trial_id: int,
        *,
        log_dir: str | None = None,
        checkpoint_path: str | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        def operation(conn: Connection) -> None:
            current = conn.execute(sa.select(trials_table.c.attrs).where(trials_table.c.id == trial_id)).scalar_one()
            changes: dict[str, Any] = {}
            if log_dir is not None:
                changes["log_dir"] = log_dir
            if checkpoint_path is not None:
                changes["checkpoint_path"] = checkpoint_path
            if attrs:
                changes["attrs"] = json.dumps({**json.loads(current), **attrs}, sort_keys=True)
            if changes:
                conn.execute(sa.update(trials_table).where(trials_table.c.id == trial_id).values(**changes))

        self._run(operation, write=True, durable=False)

    def heartbeat(self, trial_ids: Iterable[int]) -> None:
        ids = list(trial_ids)
        if not ids:
            return
        self._run(
            lambda conn: conn.execute(
                sa.update(trials_table)
                .where(trials_table.c.id.in_(ids), trials_table.c.state == TrialState.RUNNING.value)
                .values(heartbeat=_utcnow())
            ),
            write=True,
            durable=False,
        )

    def get_trials(self, study_id: int, states: Iterable[TrialState] | None = None) -> list[Trial]:
        cached = self._finished_steps.get(study_id, _NOTHING_CACHED)
        if states is None:
            trials, cached = self._run(
                lambda conn: _read_trials(conn, _TRIALS_OF_STUDY, {"study_id": study_id}, cached)
            )
            self._finished_steps[study_id] = cached.advanced(trials)
            return trials
        parameters = {"study_id": study_id, "states": [TrialState(s).value for s in states]}
        return self._run(lambda conn: _read_trials(conn, _TRIALS_OF_STUDY_IN_STATES, parameters, cached))[0]

    def get_trial(self, trial_id: int) -> Trial:
        trials, _ = self._run(lambda conn: _read_trials(conn, _ONE_TRIAL, {"trial_id": trial_id}))
        if not trials:
            raise TrialStateError(f"No trial with id {trial_id} in {self._describe()}.")
        return trials[0]

    def get_trial_overviews(
        self,
        study_id: int,
        *,
        attr_keys: Iterable[str] = (),
        after_id: int | None = None,
        ids: Iterable[int] = (),
        finished_since: datetime | None = None,
        curves: bool = True,
    ) -> list[TrialOverview]:
        # The database does the work Python would do per value: it picks the attrs out of their JSON and
        # writes each trial's intermediate values as one JSON text, which a dashboard sends on as it is.
        keys = list(attr_keys)
        for key in keys:
            if not _ATTR_KEY.fullmatch(key):
                raise InvalidArgumentError(f"An attr key must be a plain name (letters, digits, _), but got {key!r}.")
        condition = _overview_condition(study_id, after_id, ids, finished_since)
        t = trials_table.c
        times = [_datetime_text(c, self._is_sqlite) for c in (t.datetime_start, t.datetime_complete, t.heartbeat)]
        columns = [t.id, t.number, t.state, t.params, t.objective_values, t.error, t.worker, *times]
        columns += [t.log_dir, t.checkpoint_path, _curve_json(self._is_sqlite) if curves else sa.null()]
        columns += [_attr_json(key, self._is_sqlite) for key in keys]
        rows = self._run(lambda conn: conn.execute(sa.select(*columns).where(condition).order_by(t.number)).all())
        # One json.loads per column, not per row: each cell is JSON that storage wrote.
        params = _decode_all(row[3] for row in rows)
        values = _decode_all(row[4] or "null" for row in rows)
        attrs = _picked_attrs(keys, [row[13:] for row in rows])
        as_time = _from_text if self._is_sqlite else _as_utc
        return [
            TrialOverview(
                Trial(
                    number=number,
                    state=_STATES.get(state) or TrialState(state),
                    params=params[i],
                    values=None if values[i] is None else tuple(values[i]),
                    datetime_start=as_time(start),
                    datetime_complete=as_time(complete),
                    error=error,
                    worker=worker,
                    heartbeat=as_time(heartbeat),
                    log_dir=log_dir,
                    checkpoint_path=checkpoint_path,
                    attrs=attrs[i],
                    id=trial_id,
                ),
                curve,
            )
            for i, (
                trial_id,
                number,
                state,
                _,
                _,
                error,
                worker,
                start,
                complete,
                heartbeat,
                log_dir,
                checkpoint_path,
                curve,
                *_,
            ) in enumerate(rows)
        ]

    def get_trial_curves(
        self,
        study_id: int,
        *,
        after_id: int | None = None,
        ids: Iterable[int] = (),
        finished_since: datetime | None = None,
        up_to_id: int | None = None,
    ) -> dict[int, str]:
        condition = _overview_condition(study_id, after_id, ids, finished_since)
        if up_to_id is not None:
            condition = sa.and_(condition, trials_table.c.id <= up_to_id)
        lines = sa.select(trials_table.c.id, _curve_json(self._is_sqlite).label("curve")).where(condition).subquery()
        # One aggregate per trial, each over its own index range: the cost follows the study, not the
        # database (a grouped join over the values may scan those of every study). They come as one text
        # ("id curve" lines) in one row, so that a reader in a thread of its own runs beside the caller:
        # SQLite lets go of the GIL while it makes a row but needs it back for the next, and while the
        # caller runs Python it gets it back only at the interpreter's switch interval: with a row per trial,
        # the database and the caller took turns more than they worked at once.
        line = sa.cast(lines.c.id, sa.Text) + " " + lines.c.curve
        joined = sa.func.group_concat(line, "\n") if self._is_sqlite else sa.func.string_agg(line, "\n")
        text = self._run(lambda conn: conn.execute(sa.select(joined)).scalar_one())
        curves = {}
        for each in text.split("\n") if text else ():
            trial_id, curve = each.split(" ", 1)
            if curve != "[]":
                curves[int(trial_id)] = curve
        return curves


@dataclass(frozen=True)
class _FinishedSteps:
    """The intermediate values of a study's finished trials, kept so that each read fetches only the others.

    A trial's intermediate values never change once it has finished (:meth:`SQLStorage.report`
    needs a RUNNING trial, and nothing turns a finished trial back to RUNNING), while the rest of
    its row may (``update_trial``: paths and attrs), so rows are always read and only these are kept.
    Every trial with an id up to ``up_to`` had finished when they were read; trial ids only grow,
    so any other trial, and any that finishes later, has a larger id and is read in full.
    ``trials`` maps each such id to ``(number, datetime_start)``, which tell a reused id (a deleted
    study's) from the cached trial, and to the intermediate values and vectors of the :class:`Trial` read then.
    """

    up_to: int = -1
    trials: Mapping[int, tuple[tuple[int, datetime | None], Mapping[int, float], Mapping[int, tuple[float, ...]]]] = (
        field(default_factory=dict)
    )

    def holds(self, row: Any) -> bool:
        entry = self.trials.get(row.id)
        return entry is not None and entry[0] == (row.number, row.datetime_start)

    def advanced(self, trials: Sequence[Trial]) -> _FinishedSteps:
        """What to keep after a read of every trial of the study: all the trials below its first unfinished one."""
        up_to = min((t.id for t in trials if t.state is TrialState.RUNNING), default=math.inf) - 1
        up_to = max((t.id for t in trials if t.id <= up_to), default=-1)
        if up_to == self.up_to:
            return self
        kept = {
            t.id: ((t.number, _naive(t.datetime_start)), t.intermediate_values, t.intermediate_vectors)
            for t in trials
            if t.id <= up_to
        }
        return _FinishedSteps(up_to, kept)


_NOTHING_CACHED = _FinishedSteps()


def _naive(moment: datetime | None) -> datetime | None:
    """A datetime as the database returns it (naive UTC)."""
    return None if moment is None else moment.replace(tzinfo=None)


def _read_trials(
    conn: Connection,
    queries: tuple[Any, Any],
    parameters: Mapping[str, Any],
    cached: _FinishedSteps = _NOTHING_CACHED,
) -> tuple[list[Trial], _FinishedSteps]:
    """The trials and, unless ``cached`` holds them, their intermediate values; and the ``cached`` the read could use."""
    rows_query, steps_query = queries
    rows = conn.execute(rows_query, parameters).all()
    if not all(cached.holds(row) for row in rows if row.id <= cached.up_to):
        cached = _NOTHING_CACHED  # ids of deleted trials were reused: read everything again
    steps = conn.execute(steps_query, {**parameters, "cached_up_to": cached.up_to}).all()
    return _trials_from_rows(rows, steps, cached), cached


def _trials_from_rows(rows: Sequence[Any], steps: Sequence[Any], cached: _FinishedSteps) -> list[Trial]:
    by_trial: dict[int, dict[int, float]] = {}
    vectors_by_trial: dict[int, dict[int, tuple[float, ...]]] = {}
    for step in steps:
        by_trial.setdefault(step.trial_id, {})[step.step] = math.nan if step.value is None else step.value
        if step.objective_values is not None:
            vector = tuple(math.nan if v is None else v for v in json.loads(step.objective_values))
            vectors_by_trial.setdefault(step.trial_id, {})[step.step] = vector
    for trial_id, (_, values, vectors) in cached.trials.items():
        by_trial[trial_id] = values  # type: ignore[assignment]  # shared by the Trials read: they are read-only
        vectors_by_trial[trial_id] = vectors  # type: ignore[assignment]
    return [
        Trial(
            number=row.number,
            state=TrialState(row.state),
            params=json.loads(row.params),
            values=None if row.objective_values is None else tuple(json.loads(row.objective_values)),
            intermediate_values=by_trial.get(row.id, {}),
            intermediate_vectors=vectors_by_trial.get(row.id, {}),
            datetime_start=_as_utc(row.datetime_start),
            datetime_complete=_as_utc(row.datetime_complete),
            error=row.error,
            worker=row.worker,
            heartbeat=_as_utc(row.heartbeat),
            log_dir=row.log_dir,
            checkpoint_path=row.checkpoint_path,
            attrs=json.loads(row.attrs),
            id=row.id,
        )
        for row in rows
    ]


def _with_available_postgres_driver(url: URL) -> URL:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 when that is what is installed."""
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg2":
        return url
    if "+" in url.drivername:  # psycopg2 asked for by name: keep it
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
        return url.set(drivername="postgresql+psycopg")
    return url
