"""One conformance class, run against every backend: SQLite file, SQLite in memory, PostgreSQL."""

from __future__ import annotations

import math
import multiprocessing
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from lightning_hpo.exceptions import (
    InvalidArgumentError,
    NotADatabaseError,
    SchemaVersionError,
    StorageError,
    StudyNotFoundError,
    TrialStateError,
)
from lightning_hpo.storage import SCHEMA_VERSION, SQLStorage, open_storage
from lightning_hpo.trial import TrialState

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0, "log": False}}


class TestStorageConformance:
    @pytest.fixture
    def storage(self, storage_url: str) -> SQLStorage:
        storage = SQLStorage(storage_url)
        yield storage
        storage.close()

    def test_studies_by_name(self, storage):
        first = storage.get_or_create_study("a", SPACE, ["min"])
        again = storage.get_or_create_study("a", {"other": {}}, ["max"])
        assert again.id == first.id and again.space == SPACE and again.directions == ("min",)
        storage.get_or_create_study("b; DROP TABLE hpo_trials; --", SPACE, ["max", "min"])
        assert [s.name for s in storage.list_studies()] == ["a", "b; DROP TABLE hpo_trials; --"]
        assert storage.get_study("b; DROP TABLE hpo_trials; --").directions == ("max", "min")

    def test_missing_study_lists_the_existing_ones(self, storage):
        storage.get_or_create_study("alpha", SPACE, ["min"])
        with pytest.raises(StudyNotFoundError, match="No study named 'beta'.*'alpha'"):
            storage.get_study("beta")

    def test_trial_numbers_are_sequential_per_study(self, storage):
        a = storage.get_or_create_study("a", SPACE, ["min"]).id
        b = storage.get_or_create_study("b", SPACE, ["min"]).id
        numbers_a = [storage.create_trial(a, worker="w").number for _ in range(3)]
        numbers_b = [storage.create_trial(b, worker="w").number for _ in range(2)]
        assert numbers_a == [0, 1, 2] and numbers_b == [0, 1]

    def test_concurrent_creation_gives_unique_numbers(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        with ThreadPoolExecutor(8) as pool:
            numbers = list(pool.map(lambda _: storage.create_trial(study, worker="w").number, range(40)))
        assert sorted(numbers) == list(range(40))

    def test_max_active_caps_running_and_finished_but_not_failed(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        first = storage.create_trial(study, worker="w", max_active=2)
        second = storage.create_trial(study, worker="w", max_active=2)
        assert storage.create_trial(study, worker="w", max_active=2) is None
        storage.finish_trial(first.id, TrialState.FAIL, error="boom")
        third = storage.create_trial(study, worker="w", max_active=2)
        assert (second.number, third.number) == (1, 2)

    def test_a_trial_is_retried_at_most_once_even_by_concurrent_workers(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        stale = storage.create_trial(study, worker="w", params={"x": 0.25})
        storage.finish_trial(stale.id, TrialState.FAIL, error="Stale: gone.")
        with ThreadPoolExecutor(8) as pool:
            created = list(
                pool.map(
                    lambda _: storage.create_trial(study, worker="w", params={"x": 0.25}, retry_of=stale.number),
                    range(8),
                )
            )
        (retry,) = [t for t in created if t is not None]
        assert retry.attrs == {"retry_of": 0} and storage.get_trial(retry.id).attrs == {"retry_of": 0}
        assert storage.create_trial(study, worker="w", retry_of=retry.number).attrs == {
            "retry_of": 1
        }  # another trial's retry

    def test_a_trial_stores_everything(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        trial = storage.create_trial(study, worker="host:1", params={"x": 0.25}, attrs={"retry_of": 4})
        storage.report(trial.id, 10, 0.5)
        storage.report(trial.id, 20, float("nan"))
        storage.report(trial.id, 30, float("inf"))
        storage.report(trial.id, 10, 0.4)  # a repeated step overwrites
        storage.update_trial(trial.id, log_dir="/logs/t0", checkpoint_path="/ckpt/best.ckpt", attrs={"pruned_step": 30})
        done = storage.finish_trial(trial.id, TrialState.PRUNED, values=[0.4])
        assert done.state is TrialState.PRUNED and done.value == 0.4
        assert done.params == {"x": 0.25} and done.worker == "host:1"
        assert done.intermediate_values[10] == 0.4 and math.isnan(done.intermediate_values[20])
        assert done.intermediate_values[30] == math.inf
        assert (done.log_dir, done.checkpoint_path) == ("/logs/t0", "/ckpt/best.ckpt")
        assert done.attrs == {"retry_of": 4, "pruned_step": 30}
        assert done.datetime_start <= done.datetime_complete and done.heartbeat is not None
        assert done.datetime_complete.tzinfo is not None

    def test_multi_objective_reports_keep_their_vectors(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min", "max"]).id
        trial = storage.create_trial(study, worker="w")
        storage.report(trial.id, 10, [0.5, 2.0])
        storage.report(trial.id, 20, [float("nan"), float("inf")])
        storage.report(trial.id, 30, (0.25, float("nan")))
        storage.report(trial.id, 30, (0.2, 3.0))  # a repeated step overwrites the whole vector
        done = storage.finish_trial(trial.id, TrialState.PRUNED, values=[0.2, 3.0])
        assert done.intermediate_vectors[10] == (0.5, 2.0) and done.intermediate_vectors[30] == (0.2, 3.0)
        first, second = done.intermediate_vectors[20]
        assert math.isnan(first) and second == math.inf
        assert done.intermediate_values[10] == 0.5 and math.isnan(done.intermediate_values[20])
        assert done.intermediate_values[30] == 0.2  # the first objective, for single-objective readers
        assert storage.get_trials(study)[0].intermediate_vectors == done.intermediate_vectors

    def test_single_values_read_back_as_vectors_of_one(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        trial = storage.create_trial(study, worker="w")
        storage.report(trial.id, 1, 0.5)
        assert storage.get_trial(trial.id).intermediate_vectors == {1: (0.5,)}

    def test_failures_keep_their_error_text(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        trial = storage.create_trial(study, worker="w")
        failed = storage.finish_trial(trial.id, TrialState.FAIL, error="Traceback ...\nValueError: bad")
        assert failed.error.endswith("ValueError: bad") and failed.values is None

    def test_a_finished_trial_cannot_change(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        trial = storage.create_trial(study, worker="w")
        storage.finish_trial(trial.id, TrialState.COMPLETE, values=[1.0])
        with pytest.raises(TrialStateError, match="trial 0 is already COMPLETE"):
            storage.finish_trial(trial.id, TrialState.FAIL)
        with pytest.raises(TrialStateError, match="already COMPLETE"):
            storage.report(trial.id, 1, 0.0)
        with pytest.raises(InvalidArgumentError, match="finished state"):
            storage.finish_trial(trial.id, TrialState.RUNNING)

    def test_heartbeat_moves_forward_only_for_running_trials(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        running = storage.create_trial(study, worker="w")
        done = storage.create_trial(study, worker="w")
        done_before = storage.finish_trial(done.id, TrialState.COMPLETE, values=[0.0]).heartbeat
        storage.heartbeat([running.id, done.id])
        assert storage.get_trial(running.id).heartbeat >= running.heartbeat
        assert storage.get_trial(done.id).heartbeat == done_before

    def test_get_trials_filters_by_state_in_number_order(self, storage):
        study = storage.get_or_create_study("a", SPACE, ["min"]).id
        trials = [storage.create_trial(study, worker="w") for _ in range(4)]
        storage.finish_trial(trials[2].id, TrialState.COMPLETE, values=[1.0])
        storage.finish_trial(trials[0].id, TrialState.COMPLETE, values=[2.0])
        assert [t.number for t in storage.get_trials(study, [TrialState.COMPLETE])] == [0, 2]
        assert [t.number for t in storage.get_trials(study)] == [0, 1, 2, 3]

    def test_delete_study_removes_its_trials_only(self, storage):
        a = storage.get_or_create_study("a", SPACE, ["min"]).id
        b = storage.get_or_create_study("b", SPACE, ["min"]).id
        storage.report(storage.create_trial(a, worker="w").id, 1, 1.0)
        storage.create_trial(b, worker="w")
        storage.delete_study("a")
        assert [s.name for s in storage.list_studies()] == ["b"]
        assert len(storage.get_trials(b)) == 1


def test_schema_version_is_stored_and_checked(shared_storage_url):
    SQLStorage(shared_storage_url).close()
    engine = sa.create_engine(shared_storage_url)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT value FROM hpo_meta WHERE key='schema_version'").scalar() == str(
            SCHEMA_VERSION
        )
        conn.exec_driver_sql("UPDATE hpo_meta SET value='999' WHERE key='schema_version'")
    engine.dispose()
    with pytest.raises(
        SchemaVersionError, match=f"schema version 999, but this lightning_hpo reads version {SCHEMA_VERSION}"
    ):
        SQLStorage(shared_storage_url)


def test_a_database_of_the_previous_schema_version_is_refused(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    SQLStorage(url).close()
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as version 1 wrote it: no vectors column
        conn.execute("UPDATE hpo_meta SET value='1' WHERE key='schema_version'")
        conn.execute("ALTER TABLE hpo_intermediate_values DROP COLUMN objective_values")
    with pytest.raises(
        SchemaVersionError, match=f"schema version 1, but this lightning_hpo reads version {SCHEMA_VERSION}"
    ):
        SQLStorage(url)


def _create_trials(url: str, count: int) -> list[int]:
    storage = SQLStorage(url)
    study = storage.get_or_create_study("shared", SPACE, ["min"]).id
    return [storage.create_trial(study, worker=str(os.getpid())).number for _ in range(count)]


def test_processes_share_a_study_without_duplicate_numbers(shared_storage_url):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_create_trials, [(shared_storage_url, 25)] * 4)
    numbers = sorted(n for r in results for n in r)
    assert numbers == list(range(100))


def test_not_a_database_names_the_file(tmp_path: Path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(NotADatabaseError, match=f"SQLite file '{path}' is not a database"):
        SQLStorage(f"sqlite:///{path}")
    assert path.read_text().startswith("these are my notes")  # nothing was written to it


def test_a_sqlite_file_without_our_tables_gets_them(tmp_path: Path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    SQLStorage(f"sqlite:///{path}").get_or_create_study("s", SPACE, ["min"])
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_sqlite_runs_in_wal_mode(tmp_path: Path):
    path = tmp_path / "s.db"
    SQLStorage(f"sqlite:///{path}").get_or_create_study("s", SPACE, ["min"])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_only_commits_that_finish_a_trial_or_change_a_study_wait_for_the_disk(shared_storage_url):
    statements: list[str] = []

    def record(conn, cursor, statement, *rest):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        storage = SQLStorage(shared_storage_url)

        def flushed(action) -> bool:
            start = len(statements)
            action()
            if storage.sqlite_path is not None:  # the setting stays on the connection until changed
                return [s for s in statements if s.startswith("PRAGMA synchronous=")][-1] == "PRAGMA synchronous=FULL"
            return "SET LOCAL synchronous_commit TO OFF" not in statements[start:]

        def report_flushed(trial_id: int, step: int, value: float) -> bool:
            storage.report(trial_id, step, value)
            # Reports run on a connection of their own, set up once (lightning_hpo/storage/_report_connection.py).
            connection = storage._report_connection()._connection
            if storage.sqlite_path is not None:
                return connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            setting = connection.execute("SHOW synchronous_commit").fetchone()[0]
            connection.rollback()
            return setting != "off"

        created: list = []
        assert flushed(lambda: created.append(storage.get_or_create_study("s", SPACE, ["min"])))
        assert not flushed(lambda: created.append(storage.create_trial(created[0].id, worker="w")))
        trial_id = created[1].id
        assert not flushed(lambda: storage.set_trial_params(trial_id, {"x": 0.5}))
        assert not report_flushed(trial_id, 1, 0.5)
        assert not flushed(lambda: storage.update_trial(trial_id, log_dir="logs"))
        assert not flushed(lambda: storage.heartbeat([trial_id]))
        assert flushed(lambda: storage.finish_trial(trial_id, TrialState.COMPLETE, values=[0.5]))
        assert not report_flushed(storage.create_trial(created[0].id, worker="w").id, 1, 0.4)
        assert flushed(lambda: storage.delete_study("s"))
        storage.close()
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def test_an_uncreatable_directory_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="Cannot create the directory of the SQLite file"):
        SQLStorage(f"sqlite:///{blocker / 'sub' / 's.db'}")


def test_a_directory_is_not_a_storage_file(tmp_path: Path):
    with pytest.raises(StorageError, match="is a directory"):
        SQLStorage(f"sqlite:///{tmp_path}")


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u:p@h/db", "uses 'mysql'; supported are 'sqlite'"),
        ("://nothing", "is not a database URL"),
        ("a b://c", "is not a database URL"),
    ],
)
def test_unsupported_urls(url, message):
    with pytest.raises(InvalidArgumentError, match=message):
        open_storage(url)


def test_open_storage_accepts_paths_and_memory(tmp_path: Path):
    assert open_storage(":memory:").in_memory
    assert open_storage(tmp_path / "p.db").sqlite_path == tmp_path / "p.db"
    assert open_storage(str(tmp_path / "q.db")).sqlite_path == tmp_path / "q.db"
    assert open_storage(None, root_dir=tmp_path / "root").sqlite_path == tmp_path / "root" / "studies.db"


@pytest.mark.postgres
def test_postgres_password_is_hidden_in_messages(postgres_url):
    storage = SQLStorage(postgres_url)
    assert ":hpo@" not in storage.display_url and "***" in storage.display_url
