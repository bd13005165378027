"""StudyFeed: what a poll with a version cursor receives, read from a real SQLite database."""

from __future__ import annotations

import threading
import time

import pytest

from lightning_hpo.dashboard._data import StudyFeed
from lightning_hpo.exceptions import StudyNotFoundError
from lightning_hpo.storage import open_storage
from tests.dashboard.conftest import fill_study


def test_callers_during_the_first_read_wait_for_it(db_url: str) -> None:
    study = fill_study("s", db_url, n_trials=3)
    feed = StudyFeed(open_storage(db_url))
    sizes: list[int] = []
    threads = [threading.Thread(target=lambda: sizes.append(len(feed.changes("s")["trials"]))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sizes == [len(study.trials)] * 8


def test_a_name_that_is_no_study_raises_and_leaves_nothing(db_url: str) -> None:
    fill_study("s", db_url, n_trials=1)
    feed = StudyFeed(open_storage(db_url))
    with pytest.raises(StudyNotFoundError):
        feed.changes("../s")
    assert feed.changes("s", 0)["version"] == 1  # no version was spent on the missing study


def test_polls_answer_at_once_and_a_background_read_brings_the_change(db_url: str) -> None:
    study = fill_study("s", db_url, n_trials=2)
    feed = StudyFeed(open_storage(db_url), min_interval=0.0)
    version = feed.changes("s")["version"]
    added = study.ask()
    seen: list[int] = []
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        answer = feed.changes("s", version)
        seen = [t["number"] for t in answer["trials"]]
        time.sleep(0.05)
    assert seen == [added.number]
    assert answer["study"]["n_trials"] == len(study.trials) and not answer["reset"]
    assert feed.changes("s", answer["version"])["trials"] == []


def test_reads_between_full_ones_fetch_new_running_and_lately_finished_trials(db_url: str) -> None:
    from lightning_hpo.trial import RETRIED_BY

    study = fill_study("s", db_url, n_trials=3)
    feed = StudyFeed(open_storage(db_url), min_interval=0.0, full_interval=3600.0, background=False)
    feed.FINISHED_LOOKBACK = 0.0  # trials finished before the last read count as old
    version = feed.changes("s")["version"]
    running = next(t for t in study.trials if t.state.value == "RUNNING")
    study.report(running, 1, 2.0)
    study.tell(running, 1.5)
    added = study.ask()
    old = study.trials[0]
    study.storage.update_trial(old.id, attrs={RETRIED_BY: 99})  # an old trial's change waits for a full read
    answer = feed.changes("s", version)
    assert [(t["number"], t["state"]) for t in answer["trials"]] == [
        (running.number, "COMPLETE"),
        (added.number, "RUNNING"),
    ]
    assert answer["study"]["n_trials"] == len(study.trials)
    feed.full_interval = 0.0  # the next full read is due after ten times as long as the last took
    full = feed.changes("s", answer["version"])
    deadline = time.monotonic() + 10
    while not full["trials"] and time.monotonic() < deadline:
        time.sleep(0.05)
        full = feed.changes("s", answer["version"])
    assert [(t["number"], t["origin"]) for t in full["trials"]] == [(old.number, {RETRIED_BY: 99})]


def test_a_study_deleted_and_created_again_starts_its_clients_over(db_url: str) -> None:
    fill_study("s", db_url, n_trials=3)
    feed = StudyFeed(open_storage(db_url), min_interval=0.0, full_interval=0.0, background=False)
    version = feed.changes("s")["version"]
    storage = open_storage(db_url)
    storage.delete_study("s")
    fill_study("s", db_url, n_trials=1, seed=1)
    answer = feed.changes("s", version)
    deadline = time.monotonic() + 10
    while not answer["reset"] and time.monotonic() < deadline:  # the next full read sees the new study
        time.sleep(0.05)
        answer = feed.changes("s", version)
    assert answer["reset"] and [t["number"] for t in answer["trials"]] == [0, 1]
    assert not feed.changes("s", answer["version"])["reset"]
