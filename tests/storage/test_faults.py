"""Storage faults: a PostgreSQL server that goes away and comes back, and a locked SQLite file."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from lightning_hpo.exceptions import StorageError
from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import TrialState
from tests.tcp_proxy import CuttableProxy

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0, "log": False}}


@pytest.fixture
def proxied_postgres(postgres_url):
    url = sa.engine.make_url(postgres_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.cut()


@pytest.mark.postgres
def test_writes_wait_for_a_server_that_comes_back(proxied_postgres):
    proxy, url = proxied_postgres
    storage = SQLStorage(url, retry_seconds=30)
    study = storage.get_or_create_study("s", SPACE, ["min"]).id
    trial = storage.create_trial(study, worker="w")
    storage.report(trial.id, 1, 0.5)

    proxy.cut()  # every open connection dies; new ones are refused
    restore = threading.Timer(2.0, proxy.start)
    restore.start()
    started = time.monotonic()
    storage.report(trial.id, 2, 0.25)  # blocks, retrying, until the server is back
    storage.finish_trial(trial.id, TrialState.COMPLETE, values=[0.25])
    assert time.monotonic() - started >= 1.5
    restore.join()
    stored = storage.get_trial(trial.id)
    assert stored.intermediate_values == {1: 0.5, 2: 0.25} and stored.state is TrialState.COMPLETE


@pytest.mark.postgres
def test_an_outage_longer_than_the_budget_is_an_error_not_a_lost_write(proxied_postgres):
    proxy, url = proxied_postgres
    storage = SQLStorage(url, retry_seconds=1.0)
    study = storage.get_or_create_study("s", SPACE, ["min"]).id
    trial = storage.create_trial(study, worker="w")
    proxy.cut()
    with pytest.raises(StorageError, match="stayed unavailable for 1 s"):
        storage.report(trial.id, 1, 0.5)
    proxy.start()
    assert storage.get_trial(trial.id).intermediate_values == {}  # nothing half-written


def test_an_unreachable_server_at_open_fails_within_seconds():
    started = time.monotonic()
    with pytest.raises(StorageError, match="stayed unavailable"):
        SQLStorage("postgresql+psycopg://hpo:hpo@127.0.0.1:1/hpo")
    assert time.monotonic() - started < 30


def test_a_long_write_lock_on_sqlite_is_waited_out(tmp_path):
    path = tmp_path / "locked.db"
    storage = SQLStorage(f"sqlite:///{path}")
    study = storage.get_or_create_study("s", SPACE, ["min"]).id
    blocker = sa.create_engine(f"sqlite:///{path}", connect_args={"isolation_level": None})
    conn = blocker.connect()
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # another process holds the write lock...
    threading.Timer(1.5, lambda: conn.exec_driver_sql("COMMIT")).start()  # ...for 1.5 s
    trial = storage.create_trial(study, worker="w")
    assert trial.number == 0
    conn.close()
    blocker.dispose()
