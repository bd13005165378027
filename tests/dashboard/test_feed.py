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
