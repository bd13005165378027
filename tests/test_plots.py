from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from lightning_hpo import Categorical, Float, Int, RandomSampler, Study, TrialState
from lightning_hpo.console import main
from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.plots import (
    plot_importance,
    plot_learning_curves,
    plot_optimization_history,
    plot_parallel_coordinates,
    plot_pareto_front,
    plot_slice,
    save_plots,
)

SPACE = {
    "lr": Float(1e-5, 1e-1, log=True),
    "hidden": Int(16, 512, log=True),
    "dropout": Float(0.0, 0.5),
    "optimizer": Categorical(["adam", "sgd"]),
}
PRUNED_STEP = 20


def loss(params: dict) -> float:
    return (math.log10(params["lr"]) + 3) ** 2 + 0.5 * (params["optimizer"] == "sgd")


@pytest.fixture
def study(tmp_path) -> Study:
    """12 complete trials with learning curves, one pruned, one failed, one still running."""
    study = Study(
        "mlp", search_space=SPACE, storage=f"sqlite:///{tmp_path / 'studies.db'}", sampler=RandomSampler(seed=0)
    )
    for _ in range(12):
        trial = study.ask()
        for step in range(0, 50, 10):
            study.report(trial, step, loss(trial.params) + 1.0 / (step + 1))
        study.tell(trial, loss(trial.params))
    pruned = study.ask()
    for step in (0, 10, PRUNED_STEP):
        study.report(pruned, step, 5.0 - step / 100)
    study.storage.update_trial(pruned.id, attrs={"pruned_step": PRUNED_STEP})
    study.tell(pruned, state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.FAIL, error="diverged")
    study.report(study.ask(), 0, 3.0)  # running
    return study


@pytest.fixture(scope="module")  # 30 finished trials that the tests only read
def two_objectives() -> Study:
    study = Study(
        "tradeoff",
        search_space={"x": Float(0.0, 1.0)},
        mode=["max", "min"],
        storage=":memory:",
        sampler=RandomSampler(seed=0),
    )
    study.optimize(lambda p: (p["x"], p["x"] ** 2 + 0.3 * math.sin(20 * p["x"]) ** 2), n_trials=30)
    return study


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_history_shows_complete_values_and_the_best_so_far(study):
    fig = plot_optimization_history(study)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("trial number", "objective (min)")
    assert "'mlp'" in fig.get_suptitle()
    completed = [t for t in study.trials if t.state is TrialState.COMPLETE]
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert points.get_offsets()[:, 1].tolist() == [t.value for t in completed]
    (best_line,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    assert best_line.get_ydata()[-1] == min(t.value for t in completed)
    assert np.all(np.diff(best_line.get_ydata()) <= 0)
    assert plot_optimization_history(study, log_y=True).axes[0].get_yscale() == "log"


def test_history_marks_the_trials_without_a_value_by_number(study):
    fig = plot_optimization_history(study)
    ax, strip = fig.axes
    marks = {line.get_label(): list(line.get_xdata()) for line in strip.get_lines()}
    by_state = {s: [t.number for t in study.trials if t.state is s] for s in TrialState}
    assert marks == {
        "pruned (1)": by_state[TrialState.PRUNED],
        "failed (1)": by_state[TrialState.FAIL],
        "running (1)": by_state[TrialState.RUNNING],
    }
    assert [t.get_text() for t in strip.get_yticklabels()] == ["pruned", "failed", "running"]
    assert strip.get_xlim() == ax.get_xlim()  # the strip shares the trial-number axis
    assert legend_texts(fig) == ["complete (12)", "best so far", "pruned (1)", "failed (1)", "running (1)"]


def test_trial_numbers_and_steps_are_ticked_at_whole_numbers_only(study, tmp_path):
    history = plot_optimization_history(study).axes[0]
    curves = plot_learning_curves(study).axes[0]
    slice_colour_bar = plot_slice(study).axes[-1]
    for ticks in (history.get_xticks(), curves.get_xticks(), slice_colour_bar.get_yticks()):
        assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks)
    # One trial: one tick at its number, not -0.04 ... 0.04.
    single = Study("single", search_space=SPACE, storage=":memory:", sampler=RandomSampler(seed=0))
    trial = single.ask()
    single.report(trial, 0, 1.0)
    single.tell(trial, 1.0)
    assert plot_optimization_history(single).axes[0].get_xticks().tolist() == [0]
    assert plot_learning_curves(single).axes[0].get_xticks().tolist() == [0]
    assert plot_slice(single).axes[-1].get_yticks().tolist() == [0]


def test_learning_curves_mark_pruned_trials_where_they_stopped(study):
    fig = plot_learning_curves(study)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("step", "reported value (min)")
    lines = ax.get_lines()
    curves = [line for line in lines if len(line.get_xdata()) > 1 or line.get_marker() not in ("x",)]
    assert len(curves) == 14  # 12 complete + 1 pruned + 1 running; the failed trial reported nothing
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [0, 10, PRUNED_STEP]
    (cross,) = [line for line in lines if line.get_marker() == "x"]
    assert (list(cross.get_xdata()), list(cross.get_ydata())) == ([PRUNED_STEP], [5.0 - PRUNED_STEP / 100])
    best = study.best_trial.number
    assert legend_texts(fig) == [f"best trial ({best})", "complete", "pruned (x: where it stopped)", "running"]


def test_learning_curves_show_what_a_failed_trial_reported(study):
    failed = study.ask()
    study.report(failed, 0, 2.0)
    study.report(failed, 10, math.nan)  # diverged, then raised
    study.tell(failed, state=TrialState.FAIL, error="diverged")
    fig = plot_learning_curves(study)
    (dash_dot,) = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "-."]
    assert list(dash_dot.get_xdata()) == [0, 10] and dash_dot.get_ydata()[0] == 2.0
    assert "failed" in legend_texts(fig)
    assert fig.axes[0].get_title() == "Learning curves of 'mlp' (15 trials)"


def test_learning_curves_need_reported_values(two_objectives):
    with pytest.raises(InvalidArgumentError, match="no trial that reported intermediate values"):
        plot_learning_curves(two_objectives)


def test_parallel_coordinates_lay_out_log_and_categorical_axes(study):
    fig = plot_parallel_coordinates(study)
    ax, colorbar = fig.axes
    names = ["dropout", "hidden", "lr", "optimizer"]
    assert [t.get_text() for t in ax.get_xticklabels()] == [*names, "objective (min)"]
    assert colorbar.get_ylabel() == "objective (min)"
    labels = {t.get_text() for t in ax.texts}
    assert {"1e-5", "1e-4", "1e-3", "1e-2", "1e-1"} <= labels  # decades of the log axis
    assert {"16", "32", "64", "128", "256", "512"} <= labels  # powers of 2 of the log int axis
    assert {"adam", "sgd"} <= labels
    # Each trial's line passes through its parameters' unit-cube positions: log scale, choice cells.
    completed = [t for t in study.trials if t.state is TrialState.COMPLETE]
    expected = sorted(tuple(np.round(study.space.encode(t.params), 9)) for t in completed)
    drawn = sorted(tuple(np.round(line.get_ydata()[:4], 9)) for line in ax.get_lines() if len(line.get_xdata()) == 5)
    assert drawn == expected


def test_importance_bars_are_sorted_with_the_most_important_on_top(study):
    fig = plot_importance(study, importances={"lr": 0.7, "optimizer": 0.2, "hidden": 0.1, "dropout": 0.0})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dropout", "hidden", "optimizer", "lr"]  # bottom to top
    assert [p.get_width() for p in ax.patches] == [0.0, 0.1, 0.2, 0.7]
    assert ax.get_xlabel().startswith("importance")
    computed = plot_importance(study).axes[0]  # from lightning_hpo.importance
    assert computed.get_yticklabels()[-1].get_text() == "lr"


def test_slice_panels_use_log_axes_for_log_parameters_and_categories(study):
    fig = plot_slice(study)
    panels = {ax.get_xlabel(): ax for ax in fig.axes if ax.get_xlabel()}
    assert set(panels) == {"dropout", "hidden (log)", "lr (log)", "optimizer"}
    assert panels["lr (log)"].get_xscale() == "log" and panels["hidden (log)"].get_xscale() == "log"
    assert panels["dropout"].get_xscale() == "linear"
    assert [t.get_text() for t in panels["optimizer"].get_xticklabels()] == ["adam", "sgd"]
    assert panels["dropout"].get_ylabel() == "objective (min)"
    assert fig.axes[-1].get_ylabel() == "trial number"  # the colour bar
    assert legend_texts(fig) == [f"best trial ({study.best_trial.number})", "failed (1): no value"]
    lr_points = panels["lr (log)"].collections[0].get_offsets()
    completed = [t for t in study.trials if t.state is TrialState.COMPLETE]
    assert lr_points[:, 0].tolist() == [t.params["lr"] for t in completed]
    # Each panel spans its whole domain, whatever the trials sampled.
    low, high = panels["lr (log)"].get_xlim()
    assert low < 1e-5 and high > 1e-1


def test_slice_marks_failed_trials_at_their_parameters_on_the_edge_of_worse_values(study):
    fig = plot_slice(study)
    (failed,) = [t for t in study.trials if t.state is TrialState.FAIL]
    panel = next(ax for ax in fig.axes if ax.get_xlabel() == "lr (log)")
    (cross,) = [line for line in panel.get_lines() if line.get_marker() == "x"]
    assert list(cross.get_xdata()) == [failed.params["lr"]]
    assert list(cross.get_ydata()) == [0.96]  # in axes coordinates: at the top, where a loss is worst
    worst = max(t.value for t in study.trials if t.state is TrialState.COMPLETE)
    assert panel.get_ylim()[1] > worst + 0.05 * np.ptp(panel.get_ylim())  # above every point


def test_slice_of_a_multi_objective_study_stars_the_pareto_front(two_objectives):
    fig = plot_slice(two_objectives, objective=1)
    stars = fig.axes[0].collections[1].get_offsets()
    assert sorted(stars[:, 1].tolist()) == sorted(t.values[1] for t in two_objectives.best_trials)
    assert legend_texts(fig) == [f"Pareto front ({len(two_objectives.best_trials)} trials)"]


def test_pareto_front_highlights_the_non_dominated_trials(two_objectives):
    fig = plot_pareto_front(two_objectives)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("objective 0 (max)", "objective 1 (min)")
    dominated, front = (c.get_offsets() for c in ax.collections)
    expected = sorted(t.values for t in two_objectives.best_trials)
    assert sorted(map(tuple, front.tolist())) == expected
    assert len(dominated) + len(front) == 30 and len(dominated) > 0
    assert {t.get_text() for t in ax.texts} == {str(t.number) for t in two_objectives.best_trials}
    assert legend_texts(fig) == ["dominated", f"Pareto front ({len(expected)})"]


def test_plots_that_cannot_apply_say_why(study, two_objectives):
    with pytest.raises(InvalidArgumentError, match="needs a study with several objectives"):
        plot_pareto_front(study)
    with pytest.raises(InvalidArgumentError, match=r"`objective` must be in \[0, 0\]"):
        plot_slice(study, objective=1)
    empty = Study("empty", search_space=SPACE, storage=":memory:")
    with pytest.raises(InvalidArgumentError, match="no COMPLETE trial yet, so there is nothing to plot"):
        plot_optimization_history(empty)


def test_multi_objective_history_follows_the_chosen_objective(two_objectives):
    ax = plot_optimization_history(two_objectives, objective=0).axes[0]
    assert ax.get_ylabel() == "objective 0 (max)"
    assert np.all(np.diff(ax.get_lines()[0].get_ydata()) >= 0)  # maximizing: the best so far only rises


def test_save_plots_writes_pngs_and_reports_what_it_skipped(two_objectives, tmp_path):
    written, skipped = save_plots(two_objectives, tmp_path / "plots", objective=1)
    assert sorted(p.name for p in written) == [
        "history.png",
        "importance.png",
        "parallel_coordinates.png",
        "pareto_front.png",
        "slice.png",
    ]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)
    assert list(skipped) == ["learning_curves.png"]


def test_cli_writes_the_plots_and_never_writes_to_the_database(study, tmp_path, capsys):
    database = tmp_path / "studies.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    out = tmp_path / "plots"
    assert main(["plot", "--storage", f"sqlite:///{database}", "--study", "mlp", "--out", str(out)]) == 0
    names = ["history.png", "learning_curves.png", "parallel_coordinates.png", "importance.png", "slice.png"]
    assert capsys.readouterr().out.split() == [str(out / n) for n in names]
    assert all((out / n).read_bytes().startswith(b"\x89PNG") for n in names)
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before


def test_cli_says_why_when_there_is_nothing_to_plot(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    Study("empty", search_space=SPACE, storage=url)
    assert main(["plot", "--storage", url, "--study", "empty", "--out", str(tmp_path / "plots")]) == 1
    assert "skipped history.png: Study 'empty' has no COMPLETE trial yet" in capsys.readouterr().err
    assert main(["plot", "--storage", url, "--study", "empty", "--out", str(tmp_path), "--objective", "1"]) == 2
    assert "`objective` must be in [0, 0]" in capsys.readouterr().err


def test_axes_of_huge_integer_ranges_get_a_few_round_ticks():
    study = Study("wide", search_space={"n": Int(0, 10**12)}, storage=":memory:", seed=0)
    study.optimize(lambda p: p["n"] / 1e12, n_trials=4)
    labels = [t.get_text() for t in plot_parallel_coordinates(study).axes[0].texts]
    assert labels[:6] == ["0", "200000000000", "400000000000", "600000000000", "800000000000", "1000000000000"]
    assert [t.get_text() for t in plot_slice(study).axes[0].get_xticklabels()][-1] == "1000000000000"


def test_parallel_coordinates_draw_failed_trials_through_their_parameters_only(study):
    fig = plot_parallel_coordinates(study)
    ax = fig.axes[0]
    (failed,) = [t for t in study.trials if t.state is TrialState.FAIL]
    (dashed,) = [line for line in ax.get_lines() if line.get_linestyle() == "--" and len(line.get_xdata())]
    assert list(dashed.get_xdata()) == [0, 1, 2, 3]  # the four parameter axes, not the objective's
    assert np.allclose(dashed.get_ydata(), study.space.encode(failed.params))
    assert legend_texts(fig) == ["failed (1): no value"]


@pytest.mark.parametrize("values", [[0.25], [0.25, 0.25, 0.25]], ids=["one trial", "equal values"])
def test_a_colour_bar_of_one_value_is_ticked_at_that_value(values):
    study = Study("flat", search_space=SPACE, storage=":memory:", sampler=RandomSampler(seed=0))
    for value in values:
        study.tell(study.ask(), value)
    fig = plot_parallel_coordinates(study)
    colour_bar = fig.axes[1]
    assert colour_bar.get_yticks().tolist() == [0.25]
    assert [t.get_text() for t in colour_bar.get_yticklabels()] == ["0.25"]
    low, high = colour_bar.get_ylim()
    assert 0 < low < 0.25 < high < 0.5  # around the value, not -0.25 ... 0.75
    count = "1 complete trial" if len(values) == 1 else "3 complete trials"
    assert fig.axes[0].get_title() == f"Parallel coordinates of 'flat' ({count})"


def test_importance_from_few_trials_carries_a_caveat(study):
    few = Study("few", search_space=SPACE, storage=":memory:", sampler=RandomSampler(seed=0))
    few.optimize(loss, n_trials=5)
    texts = [t.get_text() for t in plot_importance(few, importances={"lr": 1.0}).axes[0].texts]
    assert texts == ["1.000", "Only 5 complete trials: a rough guess until about 10 have completed"]
    texts = [t.get_text() for t in plot_importance(study, importances={"lr": 1.0}).axes[0].texts]
    assert texts == ["1.000"]  # 12 complete trials: no caveat


@pytest.mark.parametrize(
    "domain, labels",
    [
        (Float(1e-3, 5e-3, log=True), ["0.001", "0.002", "0.005"]),
        (Float(2e-3, 4e-3, log=True), ["0.002", "0.003", "0.004"]),
        (Float(1e-4, 5e-3, log=True), ["0.0001", "0.0002", "0.0005", "0.001", "0.002", "0.005"]),
        (Float(1e-5, 1e-1, log=True), ["1e-5", "1e-4", "1e-3", "1e-2", "1e-1"]),
        (Float(1e-12, 1e3, log=True), ["1e-12", "1e-9", "1e-6", "1e-3", "1e0", "1e3"]),
        (Float(2.1e-3, 2.4e-3, log=True), ["0.0021", "0.0022", "0.0023", "0.0024"]),
        (Float(-3.0, 7.3), ["-2.5", "0", "2.5", "5"]),
        (Int(16, 512, log=True), ["16", "32", "64", "128", "256", "512"]),
        (Int(16, 48, log=True), ["16", "24", "32", "48"]),
        (Float(0.0, 0.5), ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]),
    ],
)
def test_numeric_axes_get_several_round_ticks(domain, labels):
    study = Study("ticks", search_space={"p": domain}, storage=":memory:", sampler=RandomSampler(seed=0))
    study.optimize(lambda p: 1.0, n_trials=2)
    assert [t.get_text() for t in plot_slice(study).axes[0].get_xticklabels()] == labels
    assert [t.get_text() for t in plot_parallel_coordinates(study).axes[0].texts][: len(labels)] == labels
