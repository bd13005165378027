from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lightning_hpo import (
    Categorical,
    Float,
    Int,
    NopPruner,
    RandomSampler,
    SobolSampler,
    Study,
    TrialPruned,
    TrialState,
)
from lightning_hpo.exceptions import (
    ArgumentTypeError,
    InvalidArgumentError,
    StudyMismatchError,
    TrialsFailingError,
    TrialStateError,
)
from lightning_hpo.storage import SQLStorage

SPACE = {"x": Float(-2.0, 2.0), "n": Int(1, 8), "kind": Categorical(["a", "b"])}


def quadratic(params: dict) -> float:
    return (params["x"] - 0.5) ** 2 + 0.1 * params["n"] + (params["kind"] == "b")


def make_study(storage="sqlite://", **kwargs) -> Study:
    kwargs.setdefault("search_space", SPACE)
    kwargs.setdefault("seed", 0)
    return Study("s", storage=storage, **kwargs)


class TestAskTell:
    def test_ask_gives_running_trials_with_valid_params(self, storage_url):
        study = make_study(storage_url)
        trials = [study.ask() for _ in range(3)]
        assert [t.number for t in trials] == [0, 1, 2]
        assert all(t.state is TrialState.RUNNING for t in trials)
        for trial in trials:
            study.space.check_params(trial.params)
        assert study.trials[1].params == trials[1].params  # what storage holds is what ask returned

    def test_tell_value_report_and_best(self, storage_url):
        study = make_study(storage_url)
        first, second = study.ask(), study.ask()
        study.report(first, 0, 3.0)
        study.report(first, 1, 2.0)
        assert study.tell(first, 2.5).value == 2.5
        assert study.tell(second, state=TrialState.PRUNED).value is None
        assert study.best_trial.number == 0
        assert study.trials[0].intermediate_values == {0: 3.0, 1: 2.0}

    def test_the_asked_trial_reads_its_outcome_after_tell(self, storage_url):
        study = make_study(storage_url)
        completed, failed = study.ask(), study.ask()
        study.report(completed, 3, 0.7)
        returned = study.tell(completed, 0.5)
        assert completed.state is TrialState.COMPLETE and completed.value == 0.5 and completed == returned
        assert completed.intermediate_values == {3: 0.7} and completed.datetime_complete is not None
        study.tell(failed, state=TrialState.FAIL, error="out of memory")
        assert failed.state is TrialState.FAIL and failed.error == "out of memory"
        assert [completed, failed] == study.trials

    def test_tell_complete_without_value_takes_the_best_report(self):
        study = make_study(mode="max")
        trial = study.ask()
        for step, value in enumerate([0.2, 0.9, 0.5]):
            study.report(trial, step, value)
        assert study.tell(trial, state=TrialState.COMPLETE).value == 0.9

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_non_finite_values_fail_and_never_reach_the_sampler(self, bad):
        study = make_study()
        told = study.tell(study.ask(), bad)
        assert told.state is TrialState.FAIL and "not finite" in told.error
        assert told.values is None

    def test_telling_a_finished_trial_is_an_error(self):
        study = make_study()
        trial = study.ask()
        study.tell(trial, 1.0)
        with pytest.raises(TrialStateError, match="trial 0 is already COMPLETE"):
            study.tell(trial, 2.0)
        with pytest.raises(TrialStateError):
            study.report(trial, 5, 1.0)

    def test_tell_by_number_and_bad_arguments(self):
        study = make_study()
        study.ask()
        assert study.tell(0, 1.5).value == 1.5
        with pytest.raises(InvalidArgumentError, match="needs a value or a state"):
            study.tell(study.ask())
        with pytest.raises(InvalidArgumentError, match="no trial number 42"):
            study.tell(42, 1.0)
        with pytest.raises(ArgumentTypeError, match="must be a number"):
            study.tell(study.ask(), "0.5")
        with pytest.raises(InvalidArgumentError, match="`step` must be an int in \\[0, 2\\*\\*63\\)"):
            study.report(study.ask(), -1, 0.5)

    def test_ask_with_fixed_params_validates_them(self):
        study = make_study()
        assert study.ask({"x": 0.0, "n": 2, "kind": "b"}).params == {"x": 0.0, "n": 2, "kind": "b"}
        with pytest.raises(InvalidArgumentError, match="Parameter 'n': 9 is not in Int"):
            study.ask({"x": 0.0, "n": 9, "kind": "b"})

    def test_tensor_and_numpy_values_are_accepted(self):
        import numpy as np
        import torch

        study = make_study()
        assert study.tell(study.ask(), torch.tensor(0.25)).value == 0.25
        assert study.tell(study.ask(), np.float32(0.5)).value == 0.5

    def test_numpy_and_tensor_parameters_are_taken_as_python_values(self):
        """A grid from ``np.arange`` gives ``np.int64``s, which are not ``int``s."""
        import numpy as np
        import torch

        study = make_study()
        trial = study.ask({"x": np.float32(0.5), "n": np.int64(3), "kind": np.str_("a")})
        assert trial.params == {"x": 0.5, "n": 3, "kind": "a"}
        assert [type(trial.params[n]) for n in ("x", "n", "kind")] == [float, int, str]
        added = study.add_trial({"x": torch.tensor(-1.0), "n": torch.tensor(2), "kind": "b"}, 0.5)
        assert added.params == {"x": -1.0, "n": 2, "kind": "b"} and type(added.params["n"]) is int
        for bad in (np.float64(3.0), np.int64(9), np.bool_(True), np.array([2])):
            with pytest.raises(InvalidArgumentError, match="Parameter 'n'"):
                study.ask({"x": 0.0, "n": bad, "kind": "b"})

    def test_multi_objective_values(self):
        study = make_study(mode=["min", "max"])
        told = study.tell(study.ask(), (1.0, 2.0))
        assert told.values == (1.0, 2.0)
        with pytest.raises(InvalidArgumentError, match="objective value must be a sequence of 2 numbers"):
            study.tell(study.ask(), 1.0)

    def test_multi_objective_reports_are_vectors(self):
        import numpy as np
        import torch

        study = make_study(mode=["min", "max"])
        trial = study.ask()
        study.report(trial, 1, (3.0, 0.5))
        study.report(trial, 2, np.array([2.0, 0.75]))
        study.report(trial, 3, torch.tensor([float("nan"), 0.9]))
        stored = study.trials[0]
        assert stored.intermediate_vectors[1] == (3.0, 0.5) and stored.intermediate_vectors[2] == (2.0, 0.75)
        assert stored.intermediate_values[2] == 2.0  # the first objective, for single-objective readers
        # Without a value, the trial keeps its latest vector of finite values.
        assert study.tell(trial, state=TrialState.PRUNED).values == (2.0, 0.75)

    @pytest.mark.parametrize(
        "mode, value, error, match",
        [
            (
                ["min", "max"],
                1.0,
                InvalidArgumentError,
                r"2 objectives \(mode=\['min', 'max'\]\), so a reported value must be a sequence of 2",
            ),
            (["min", "max"], (1.0, 2.0, 3.0), InvalidArgumentError, "sequence of 2 numbers"),
            (["min", "max"], (1.0, "a"), ArgumentTypeError, "A reported value 1 must be a number"),
            ("min", (1.0, 2.0), InvalidArgumentError, "has one objective, so a reported value must be one number"),
        ],
    )
    def test_a_report_of_the_wrong_shape_is_a_clear_error(self, mode, value, error, match):
        study = make_study(mode=mode)
        with pytest.raises(error, match=match):
            study.report(study.ask(), 1, value)

    def test_best_trials_is_the_pareto_set(self):
        study = make_study(mode=["min", "max"])
        assert study.best_trials == []
        for values in [(1.0, 1.0), (2.0, 3.0), (2.0, 2.0), (3.0, 3.0), (0.5, 0.5), (2.0, 3.0)]:
            study.tell(study.ask(), values)
        study.tell(study.ask(), state=TrialState.FAIL, error="no values")
        assert [t.number for t in study.best_trials] == [0, 1, 4, 5]  # 5 equals 1: both stay
        with pytest.raises(InvalidArgumentError, match="2 objectives, so no single best trial: use `.best_trials`"):
            _ = study.best_trial

    def test_best_trials_of_one_objective_are_the_ties_for_best(self):
        study = make_study(mode="max")
        for value in [1.0, 3.0, 2.0, 3.0]:
            study.tell(study.ask(), value)
        pruned = study.ask()
        study.report(pruned, 0, 9.0)
        study.tell(pruned, state=TrialState.PRUNED)  # a partial value never counts as best
        assert [t.number for t in study.best_trials] == [1, 3]
        assert study.best_trial.number == 1


class TestReopen:
    def test_reopening_resumes_the_same_trials(self, shared_storage_url):
        make_study(shared_storage_url).optimize(quadratic, n_trials=3)
        again = make_study(shared_storage_url)
        assert [t.state for t in again.trials] == [TrialState.COMPLETE] * 3

    def test_a_different_space_or_mode_is_refused(self, shared_storage_url):
        make_study(shared_storage_url).optimize(quadratic, n_trials=1)
        with pytest.raises(
            StudyMismatchError, match=r"different search space \(x: Float\(-2.0, 2.0\) -> Float\(-2.0, 3.0\)\)"
        ):
            make_study(shared_storage_url, search_space={**SPACE, "x": Float(-2.0, 3.0)})
        with pytest.raises(StudyMismatchError, match=r"mode 'min' \(now 'max'\)"):
            make_study(shared_storage_url, mode="max")
        with pytest.raises(StudyMismatchError, match=r"y: absent -> Float"):
            make_study(shared_storage_url, search_space={**SPACE, "y": Float(0.0, 1.0)})
        assert len(make_study(shared_storage_url).trials) == 1  # nothing was lost or mixed

    def test_same_space_in_another_order_is_the_same_study(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        make_study(url).optimize(quadratic, n_trials=1)
        make_study(url, search_space=dict(reversed(list(SPACE.items())))).optimize(quadratic, n_trials=2)


class TestOptimize:
    def test_n_trials_counts_finished_trials_of_the_whole_study(self):
        study = make_study()
        study.optimize(quadratic, n_trials=4)
        study.optimize(quadratic, n_trials=6)  # resumes: two more
        assert len(study.trials) == 6

    def test_failed_trials_do_not_count_and_keep_their_traceback(self):
        calls = []

        def flaky(params):
            calls.append(1)
            if len(calls) % 2:
                raise ValueError("odd call")
            return quadratic(params)

        study = make_study()
        study.optimize(flaky, n_trials=3)
        states = [t.state for t in study.trials]
        assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.FAIL) == 3
        failed = study.get_trials([TrialState.FAIL])[0]
        assert "Traceback" in failed.error and "ValueError: odd call" in failed.error

    def test_an_objective_that_returns_none_stops_the_study_saying_so(self):
        study = make_study()
        study.optimize(quadratic, n_trials=2)
        with pytest.raises(ArgumentTypeError, match=r"The objective returned None.*Is a `return` missing\?"):
            study.optimize(lambda params: None, n_trials=4)
        failed = study.trials[-1]
        assert len(study.trials) == 3 and failed.state is TrialState.FAIL and "returned None" in failed.error
        study.optimize(quadratic, n_trials=4)  # fixed: the study goes on
        assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 4

    def test_a_study_that_keeps_failing_stops_with_the_last_error(self):
        def broken(params):
            raise RuntimeError(f"broken at x={params['x']:.3f}")

        study = make_study()
        with pytest.raises(TrialsFailingError, match=r"(?s)3 trials in a row failed.*RuntimeError: broken at x="):
            study.optimize(broken, n_trials=10, max_consecutive_failures=3)
        assert len(study.trials) == 3

    def test_trial_pruned_ends_as_pruned(self):
        study = make_study()
        study.optimize(lambda p: (_ for _ in ()).throw(TrialPruned()), n_trials=2)
        assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2

    def test_timeout_stops_starting_trials(self):
        import time

        study = make_study()
        study.optimize(lambda p: time.sleep(0.05) or 0.0, timeout=0.3)
        assert 1 <= len(study.trials) <= 8

    def test_keyboard_interrupt_marks_the_trial_and_propagates(self):
        def interrupted(params):
            raise KeyboardInterrupt

        study = make_study()
        with pytest.raises(KeyboardInterrupt):
            study.optimize(interrupted, n_trials=3)
        (trial,) = study.trials
        assert trial.state is TrialState.FAIL and "Interrupted" in trial.error

    def test_same_seed_same_history(self):
        first, second = make_study(seed=3), make_study(seed=3)
        first.optimize(quadratic, n_trials=5)
        second.optimize(quadratic, n_trials=5)
        assert [t.params for t in first.trials] == [t.params for t in second.trials]
        third = make_study(seed=4)
        third.optimize(quadratic, n_trials=5)
        assert [t.params for t in third.trials] != [t.params for t in first.trials]

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"n_trials": 0}, "`n_trials >= 1` must hold"),
            ({"n_trials": 2.5}, "`n_trials` must be an int or None"),
            ({"n_trials": 1, "timeout": -1}, "`timeout` must be a number of seconds > 0"),
        ],
    )
    def test_bad_loop_arguments(self, kwargs, message):
        with pytest.raises((InvalidArgumentError, ArgumentTypeError), match=message):
            make_study().optimize(quadratic, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "minimize"}, "`mode` must be 'min' or 'max'"),
        ({"mode": []}, "non-empty list"),
        ({"sampler": "tpe"}, "`sampler` must be a lightning_hpo Sampler"),
        ({"pruner": object()}, "`pruner` must be a lightning_hpo Pruner"),
        ({"grace_period": 0}, "`grace_period > 0`"),
        ({"search_space": {}}, "at least one parameter"),
    ],
)
def test_bad_study_arguments(kwargs, message):
    with pytest.raises((InvalidArgumentError, ArgumentTypeError), match=message):
        make_study(**kwargs)


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "x" * 513])
def test_bad_study_names(name):
    with pytest.raises(InvalidArgumentError, match="A study name must be"):
        Study(name, search_space=SPACE, storage=":memory:")


def test_default_storage_is_a_sqlite_file_under_lightning_hpo_runs(tmp_path):
    study = Study("default", search_space=SPACE)
    assert study.storage.sqlite_path == Path("lightning_hpo_runs") / "studies.db"
    assert (tmp_path / "lightning_hpo_runs" / "studies.db").exists()


class TestStaleTrials:
    def test_a_trial_of_a_dead_local_process_is_failed_at_once(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        study = make_study(url)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stored = study.storage.create_trial(study._study_id, worker=f"{os.uname().nodename}:{dead.pid}")
        assert make_study(url).trials[stored.number].state is TrialState.FAIL
        assert "is gone" in make_study(url).trials[stored.number].error

    def test_a_remote_trial_fails_only_after_the_grace_period(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        study = make_study(url, grace_period=30)
        stored = study.storage.create_trial(study._study_id, worker="other-host:1234")
        assert study.fail_stale_trials() == []
        import sqlalchemy as sa

        from lightning_hpo.storage.sql import trials_table

        old = (datetime.now(timezone.utc) - timedelta(seconds=31)).replace(tzinfo=None)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.update(trials_table).where(trials_table.c.id == stored.id).values(heartbeat=old))
        engine.dispose()
        assert study.fail_stale_trials() == [stored.number]
        assert "no heartbeat from other-host:1234 for more than 30 s" in study.trials[0].error

    def test_an_orphan_of_this_process_is_failed(self):
        study = make_study()
        stored = study.storage.create_trial(study._study_id, worker=f"{os.uname().nodename}:{os.getpid()}")
        assert study.fail_stale_trials() == [stored.number]

    def test_a_running_trial_of_another_in_memory_study_does_not_hide_an_orphan(self):
        running = make_study()
        running.ask()  # this process runs trial id 1 of its own in-memory database
        study = make_study()
        stored = study.storage.create_trial(study._study_id, worker=f"{os.uname().nodename}:{os.getpid()}")
        assert study.fail_stale_trials() == [stored.number]

    def test_heartbeats_keep_a_long_trial_alive(self, tmp_path, monkeypatch):
        import time

        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        study = make_study(url, grace_period=0.5)
        study._liveness._heartbeat._interval = 0.1
        trial = study.ask()
        time.sleep(1.0)
        other = make_study(url, grace_period=0.5)  # another worker opening the study
        assert other.fail_stale_trials() == []
        assert study.tell(trial, 1.0).state is TrialState.COMPLETE


class TestRetryOfStaleTrials:
    def _kill_a_worker_holding_a_trial(self, url: str, **study_kwargs) -> int:
        """Start a worker that runs one slow trial, SIGKILL it mid-trial; return the killed trial's number."""
        script = (
            "import sys, time\n"
            "from lightning_hpo import Study, Float, Int, Categorical, RandomSampler\n"
            f"study = Study('s', search_space={SPACE!r}, storage=sys.argv[1], sampler=RandomSampler(seed=0))\n"
            "study.optimize(lambda p: print('RUNNING', flush=True) or time.sleep(600), n_trials=1)\n"
        )
        worker = subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True)
        assert worker.stdout.readline().strip() == "RUNNING"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        storage = SQLStorage(url)
        (running,) = storage.get_trials(storage.get_study("s").id, [TrialState.RUNNING])
        return running.number

    @pytest.mark.slow
    def test_a_killed_workers_trial_is_failed_then_its_params_run_once_more(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        killed = self._kill_a_worker_holding_a_trial(url)
        study = make_study(url)  # opening the study reaps the dead worker's trial
        stale = study.trials[killed]
        assert stale.state is TrialState.FAIL and stale.error.startswith("Stale: its worker process")
        seen = []
        study.optimize(lambda params: seen.append(dict(params)) or quadratic(params), n_trials=3)
        retry = study.trials[killed + 1]
        assert seen[0] == stale.params and retry.params == stale.params
        assert retry.attrs == {"retry_of": killed} and retry.state is TrialState.COMPLETE
        assert study.trials[killed].attrs == {"retried_by": retry.number, "fail_kind": "stale"}
        assert [t.attrs for t in study.trials[killed + 2 :]] == [{}, {}]  # fresh samples afterwards

    @pytest.mark.slow
    def test_a_retry_that_goes_stale_is_not_retried_again(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        first = self._kill_a_worker_holding_a_trial(url)
        second = self._kill_a_worker_holding_a_trial(url)  # this worker picked up the retry, and died too
        study = make_study(url)
        assert study.trials[second].attrs == {"retry_of": first, "fail_kind": "stale"}
        assert study.trials[second].state is TrialState.FAIL
        study.optimize(quadratic, n_trials=1)
        assert study.trials[-1].attrs == {} and len(study.trials) == second + 2

    def test_retry_stale_false_samples_new_params(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        study = make_study(url, retry_stale=False)
        stored = study.storage.create_trial(
            study._study_id, worker="other-host:1", params={"x": 0.0, "n": 1, "kind": 0}
        )
        study.storage.finish_trial(stored.id, TrialState.FAIL, error="Stale: no heartbeat.")
        study.optimize(quadratic, n_trials=1)
        assert study.trials[-1].attrs == {}

    def test_a_worker_that_loses_the_claim_of_one_stale_trial_retries_the_next(self, tmp_path):
        # Two workers start together after a machine loss: both find the oldest stale trial first.
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        study = make_study(url)
        stale, stored = [], [{"x": x, "n": 1, "kind": 0} for x in (0.1, 0.2)]
        for params in stored:
            trial = study.storage.create_trial(study._study_id, worker="other-host:1", params=params)
            study.storage.finish_trial(trial.id, TrialState.FAIL, error="Stale: no heartbeat.")
            stale.append(trial.number)
        # The other worker claimed the first one and has not marked it retried yet.
        other = study.storage.create_trial(study._study_id, worker="other-host:2", params=stored[0], retry_of=stale[0])
        assert other is not None
        retry = study.ask()
        assert retry.params == study.trials[1].params and retry.attrs == {"retry_of": stale[1]}

    def test_an_ordinary_failure_is_not_retried(self):
        study = make_study()
        trial = study.ask()
        study.tell(trial, state=TrialState.FAIL, error="ZeroDivisionError")
        assert study.ask().attrs == {}


def test_the_sampler_sees_other_workers_running_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    script = (
        "import sys, time\n"
        "from lightning_hpo import Study, Float, Int, Categorical, RandomSampler\n"
        f"study = Study('s', search_space={SPACE!r}, storage=sys.argv[1], sampler=RandomSampler(seed=0))\n"
        "study.ask()\n"
        "print('ASKED', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "ASKED"
        seen = []

        class Recording(SobolSampler):
            def sample(self, space, trials, *, number, directions):
                seen.append([(t.number, t.state, t.worker) for t in trials])
                return super().sample(space, trials, number=number, directions=directions)

        make_study(url, sampler=Recording(seed=0)).ask()
        ((pending,),) = seen
        assert pending[:2] == (0, TrialState.RUNNING) and pending[2].endswith(f":{other.pid}")
    finally:
        other.communicate("\n", timeout=60)


WORKER = textwrap.dedent(
    """
    import sys, time
    from lightning_hpo import Study, Float, RandomSampler
    # The random sampler: the workers start in a second (no torch) and share the study at once.
    study = Study("shared", search_space={"x": Float(0.0, 1.0)}, storage=sys.argv[1],
                  sampler=RandomSampler(seed=int(sys.argv[2])))
    study.optimize(lambda p: time.sleep(0.05) or p["x"], n_trials=int(sys.argv[3]))
    """
)


@pytest.mark.slow
def test_several_processes_fill_n_trials_exactly(shared_storage_url, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen([sys.executable, str(script), shared_storage_url, str(seed), "24"]) for seed in range(4)
    ]
    assert [w.wait(timeout=240) for w in workers] == [0] * 4
    storage = SQLStorage(shared_storage_url)
    trials = storage.get_trials(storage.get_study("shared").id)
    assert [t.number for t in trials] == list(range(24))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.worker for t in trials}) > 1


KILLABLE = textwrap.dedent(
    """
    import sys, time
    from lightning_hpo import Study, Float, RandomSampler
    study = Study("killed", search_space={"x": Float(0.0, 1.0)}, storage=sys.argv[1], sampler=RandomSampler(seed=0))
    def slow(params):
        time.sleep(0.3)
        return params["x"]
    study.optimize(slow, n_trials=int(sys.argv[2]))
    """
)


@pytest.mark.slow
def test_sigkill_mid_study_then_rerun_completes_with_nothing_lost(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    storage = SQLStorage(url)
    process = subprocess.Popen([sys.executable, str(script), url, "12"])
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            study_id = storage.get_study("killed").id
            if sum(t.state is TrialState.COMPLETE for t in storage.get_trials(study_id)) >= 3:
                break
        except Exception:  # noqa: BLE001 - the study does not exist yet
            pass
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {t.number: t for t in storage.get_trials(study_id) if t.state is TrialState.COMPLETE}
    assert len(before) >= 3

    assert subprocess.run([sys.executable, str(script), url, "12"], timeout=120).returncode == 0
    after = storage.get_trials(study_id)
    complete = [t for t in after if t.state is TrialState.COMPLETE]
    assert len(complete) == 12
    for number, trial in before.items():  # every completed trial survived, unchanged
        assert after[number].state is TrialState.COMPLETE and after[number].values == trial.values
    assert not [t for t in after if t.state is TrialState.RUNNING]
    assert all("Stale" in t.error for t in after if t.state is TrialState.FAIL)


def test_samplers_get_history_without_the_new_trial():
    seen = []

    class Recording(SobolSampler):
        def sample(self, space, trials, *, number, directions):
            seen.append((number, [t.number for t in trials], [t.state for t in trials]))
            return super().sample(space, trials, number=number, directions=directions)

    study = make_study(sampler=Recording(seed=0), pruner=NopPruner())
    running = study.ask()
    study.ask()
    study.tell(running, 1.0)
    study.ask()
    assert seen == [
        (0, [], []),
        (1, [0], [TrialState.RUNNING]),
        (2, [0, 1], [TrialState.COMPLETE, TrialState.RUNNING]),
    ]


def test_random_sampler_is_a_function_of_seed_and_number():
    space = make_study().space
    a = [RandomSampler(seed=1).sample(space, [], number=n, directions=["min"]) for n in range(5)]
    b = [RandomSampler(seed=1).sample(space, [], number=n, directions=["min"]) for n in reversed(range(5))]
    assert a == list(reversed(b))
