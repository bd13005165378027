"""StudyFeed: what a poll with a version cursor receives, read from a real SQLite database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from lightning_hpo.dashboard._data import StudyFeed
from lightning_hpo.exceptions import StudyNotFoundError
from lightning_hpo.storage import SQLStorage, open_storage
from lightning_hpo.storage.base import TrialOverview
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


def test_a_look_after_an_idle_spell_waits_for_a_fresh_read(db_url: str) -> None:
    study = fill_study("s", db_url, n_trials=2)
    feed = StudyFeed(open_storage(db_url), min_interval=0.05, max_age=0.2)
    version = feed.changes("s")["version"]
    added = study.ask()
    time.sleep(0.3)  # nobody looked for longer than max_age: the next look reads before it answers
    answer = feed.changes("s", version)
    assert [t["number"] for t in answer["trials"]] == [added.number]
    assert answer["study"]["n_trials"] == len(study.trials)


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


def test_rows_and_curves_are_those_of_one_text_per_row(db_url: str) -> None:
    """The rows and curves, read apart and encoded at once, are what the feed sent as one JSON text per trial."""
    import json

    from lightning_hpo.dashboard._rows import ROW_ATTRS, row_json
    from lightning_hpo.snapshot import StudySnapshot
    from lightning_hpo.space import SearchSpace

    study = fill_study("s", db_url)
    storage = open_storage(db_url)
    answer = StudyFeed(storage, background=False).changes("s")
    record = storage.get_study("s")
    space = SearchSpace.from_json(record.space)
    one_by_one = [
        json.loads(row_json(o.trial, o.curve_json, space.from_stored(o.trial.params), 1))
        for o in storage.get_trial_overviews(record.id, attr_keys=ROW_ATTRS)
    ]
    assert answer["trials"] == one_by_one and len(one_by_one) == len(study.trials)
    exact = [
        [[s, v] for s, v in sorted(t.intermediate_values.items())] for t in StudySnapshot.load(storage, "s").trials
    ]
    assert [row["curve"] for row in answer["trials"]] == exact and any(exact)


@pytest.mark.parametrize("mode", ["min", ["min", "max"]])
def test_reads_between_full_ones_keep_the_summary_a_full_read_computes(db_url: str, mode: str | list[str]) -> None:
    from lightning_hpo import Float, Study, TrialState
    from lightning_hpo.dashboard._rows import study_summary
    from lightning_hpo.snapshot import StudySnapshot

    study = Study("s", search_space={"x": Float(0.0, 1.0)}, storage=db_url, mode=mode, seed=0)
    several = isinstance(mode, list)
    storage = open_storage(db_url)
    feed = StudyFeed(storage, min_interval=0.0, full_interval=3600.0, background=False)

    def objectives(value: float) -> float | list[float]:
        return [value, value * value] if several else value

    def tell(value: float, state: TrialState = TrialState.COMPLETE) -> None:
        trial = study.ask()
        study.report(trial, 0, objectives(value))
        if state is TrialState.COMPLETE:
            study.tell(trial, objectives(value))
        else:
            study.tell(trial, state=state)

    for value in (0.5, 0.7):
        tell(value)
    feed.changes("s")
    # A better trial, a tie, a worse one, a pruned, a failed and a running one, read in turn between full reads.
    for value, state in [(0.2, TrialState.COMPLETE), (0.2, TrialState.COMPLETE), (0.9, TrialState.COMPLETE)]:
        tell(value, state)
        assert feed.changes("s")["study"] == study_summary(StudySnapshot.load(storage, "s"))
    tell(0.1, TrialState.PRUNED)
    tell(0.1, TrialState.FAIL)
    running = study.ask()
    study.report(running, 0, objectives(0.05))
    assert feed.changes("s")["study"] == study_summary(StudySnapshot.load(storage, "s"))
    study.tell(running, objectives(-1.0))  # the running trial becomes the best
    summary = feed.changes("s")["study"]
    assert summary == study_summary(StudySnapshot.load(storage, "s"))
    assert running.number in summary["best_numbers"]


class _TrialFinishesBetweenTheReads(SQLStorage):
    """A real SQL storage in which, once, ``between`` runs after the curves are read and before the trials are."""

    def __init__(self, url: str, between: Callable[[], None]) -> None:
        super().__init__(url)
        self.between: Callable[[], None] | None = between
        self.curves_read = threading.Event()

    def get_trial_curves(self, *args: Any, **kwargs: Any) -> dict[int, str]:
        try:
            return super().get_trial_curves(*args, **kwargs)
        finally:
            self.curves_read.set()

    def get_trial_overviews(self, *args: Any, **kwargs: Any) -> list[TrialOverview]:
        if self.between is not None:
            assert self.curves_read.wait(timeout=60)
            self.between()
            self.between = None
        return super().get_trial_overviews(*args, **kwargs)


def test_a_trial_that_finishes_between_the_curves_and_the_rows_gets_its_last_values_on_the_next_read(
    db_url: str,
) -> None:
    """The curves are read before the trials: a trial that finished in between is read again, values and all."""
    study = fill_study("s", db_url, n_trials=3)
    running = next(t for t in study.trials if t.state.value == "RUNNING")

    def finish() -> None:
        study.report(running, 1, 2.0)
        study.tell(running, 2.0)

    feed = StudyFeed(_TrialFinishesBetweenTheReads(db_url, finish), min_interval=0.0, background=False)
    first = feed.changes("s")
    row = next(t for t in first["trials"] if t["number"] == running.number)
    assert (row["state"], row["curve"]) == ("COMPLETE", [[0, 3.0]])  # the curve as it was read
    second = feed.changes("s", first["version"])
    assert [(t["number"], t["curve"]) for t in second["trials"]] == [(running.number, [[0, 3.0], [1, 2.0]])]
