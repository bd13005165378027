"""Reports go through a connection of the reporting thread's own (lightning_hpo/storage/_report_connection.py):
each guarantee of ``report`` holds there too."""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from lightning_hpo.exceptions import TrialStateError
from lightning_hpo.storage import SQLStorage
from lightning_hpo.trial import TrialState

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0, "log": False}}


@pytest.fixture
def storage(shared_storage_url: str) -> SQLStorage:
    storage = SQLStorage(shared_storage_url)
    yield storage
    storage.close()


def _running_trial(storage: SQLStorage) -> int:
    study = storage.get_or_create_study("s", SPACE, ["min"]).id
    return storage.create_trial(study, worker="w").id


def test_a_report_of_a_missing_or_finished_trial_says_which(storage_url):
    storage = SQLStorage(storage_url)
    trial_id = _running_trial(storage)
    storage.report(trial_id, 1, 0.5)
    with pytest.raises(TrialStateError, match=f"Cannot report step 2: no trial with id {trial_id + 1} in"):
        storage.report(trial_id + 1, 2, 0.5)
    storage.finish_trial(trial_id, TrialState.PRUNED)
    with pytest.raises(TrialStateError, match="Cannot report step 3: trial 0 is already PRUNED"):
        storage.report(trial_id, 3, 0.5)
    assert storage.get_trial(trial_id).intermediate_values == {1: 0.5}
    storage.close()


@pytest.mark.slow
def test_a_report_survives_a_sigkill_right_after_it_returned(shared_storage_url, tmp_path: Path):
    # The child kills itself the moment its last report returns: nothing may be left to write.
    child = textwrap.dedent(
        """
        import os, signal, sys
        from lightning_hpo.storage import SQLStorage
        storage = SQLStorage(sys.argv[1])
        study = storage.get_or_create_study("s", {}, ["min"]).id
        trial = storage.create_trial(study, worker="w").id
        for step in range(1, 31):
            storage.report(trial, step, step / 10)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child, shared_storage_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    storage = SQLStorage(shared_storage_url)
    (trial,) = storage.get_trials(storage.get_study("s").id)
    assert trial.state is TrialState.RUNNING
    assert trial.intermediate_values == {step: step / 10 for step in range(1, 31)}
    storage.close()


def test_each_thread_reports_through_its_own_connection_closed_when_the_thread_ended_or_at_close(storage):
    trial_ids = [_running_trial(storage) for _ in range(4)]
    all_started = threading.Barrier(4)  # four live threads at once: four threads, four connections

    def report_all(trial_id: int) -> None:
        for step in range(20):
            storage.report(trial_id, step, trial_id + step / 100)
            if step == 0:
                all_started.wait(30)

    threads = [threading.Thread(target=report_all, args=(trial_id,)) for trial_id in trial_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for trial_id in trial_ids:
        assert storage.get_trial(trial_id).intermediate_values == {s: trial_id + s / 100 for s in range(20)}
    opened = list(storage._report_connections.values())
    assert len({id(c) for c in opened}) == 4
    storage.report(trial_ids[0], 20, 1.0)  # this thread's first report closes those of the threads that ended
    assert all(connection.closed for connection in opened)
    (own,) = storage._report_connections.values()
    storage.close()
    assert own.closed
    storage.report(trial_ids[0], 21, 2.0)  # a closed storage opens again, as for its other operations
    assert storage.get_trial(trial_ids[0]).intermediate_values[21] == 2.0


def test_a_storage_that_reported_is_still_sent_to_other_processes(storage):
    trial_id = _running_trial(storage)
    storage.report(trial_id, 1, 0.5)
    copy = pickle.loads(pickle.dumps(storage))
    copy.report(trial_id, 2, 0.25)
    assert storage.get_trial(trial_id).intermediate_values == {1: 0.5, 2: 0.25}
    copy.close()


def _report_in_child(storage: SQLStorage, trial_id: int) -> None:
    storage.report(trial_id, 2, 0.25)


def test_a_forked_child_neither_uses_nor_closes_the_parents_connection(storage):
    trial_id = _running_trial(storage)
    storage.report(trial_id, 1, 0.5)
    parents = storage._report_connection()
    child = multiprocessing.get_context("fork").Process(target=_report_in_child, args=(storage, trial_id))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    storage.report(trial_id, 3, 0.125)
    assert storage._report_connection() is parents  # no error reopened it: the child left it alone
    assert storage.get_trial(trial_id).intermediate_values == {1: 0.5, 2: 0.25, 3: 0.125}


@pytest.mark.postgres
def test_a_report_whose_connection_the_server_ended_is_retried_on_a_new_one(postgres_url):
    storage = SQLStorage(postgres_url)
    trial_id = _running_trial(storage)
    storage.report(trial_id, 1, 0.5)
    admin = sa.create_engine(postgres_url)
    with admin.connect() as conn:
        ended = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar_one()
    admin.dispose()
    assert ended >= 1
    storage.report(trial_id, 2, 0.25)
    storage.finish_trial(trial_id, TrialState.COMPLETE, values=[0.25])
    with pytest.raises(TrialStateError, match="already COMPLETE"):
        storage.report(trial_id, 3, 0.5)
    assert storage.get_trial(trial_id).intermediate_values == {1: 0.5, 2: 0.25}
    storage.close()
