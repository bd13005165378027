"""Plots of a study, as matplotlib figures.

Each function takes a :class:`~lightning_hpo.Study` (or a
:class:`~lightning_hpo.snapshot.StudySnapshot`) and returns a ``matplotlib.figure.Figure``. The
figures are built without pyplot, so they need no display, hold no global state and are never
shown twice in a notebook: save one with ``fig.savefig("history.png")``, or let a notebook display
it. :func:`save_plots` writes every plot that applies as PNG files (``lightning-hpo plot`` calls it).

A plot that has nothing to show (no COMPLETE trial yet, one objective for a Pareto front) raises
:class:`~lightning_hpo.exceptions.InvalidArgumentError` saying so. How the plots place values on
their axes is in :mod:`lightning_hpo._plot_axes`; their palette and per-state styles, in :mod:`lightning_hpo._plot_style`.

Example:
    >>> from lightning_hpo import Float, Study
    >>> study = Study("demo", search_space={"x": Float(0.0, 1.0)}, storage=":memory:", seed=0)
    >>> study.optimize(lambda p: (p["x"] - 0.3) ** 2, n_trials=8)
    >>> plot_optimization_history(study).axes[0].get_xlabel()
    'trial number'
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_hpo._plot_axes import (
    axis_ticks,
    colour_norm,
    draw_axis,
    encode_objective,
    encoded_params,
    number_text,
    parameter_positions,
    set_parameter_axis,
    set_whole_number_x_axis,
    tick_the_only_value,
    whole_numbers,
)
from lightning_hpo._plot_style import (
    BLUE,
    CURVE_STYLES,
    GREEN,
    GREY,
    MARK_STYLES,
    STATE_WORDS,
    VERMILLION,
    new_figure,
    require_completed,
)
from lightning_hpo._text import count_of
from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.snapshot import StudyLike, StudySnapshot
from lightning_hpo.trial import PRUNED_STEP, TrialState

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_optimization_history",
    "plot_learning_curves",
    "plot_parallel_coordinates",
    "plot_importance",
    "plot_slice",
    "plot_pareto_front",
    "save_plots",
]

#: Below this many COMPLETE trials, :func:`plot_importance` marks its bars as a rough guess.
RELIABLE_IMPORTANCE_TRIALS = 10


def plot_optimization_history(study: StudyLike, *, objective: int = 0, log_y: bool = False) -> Figure:
    """Each COMPLETE trial's value by trial number, with the best value so far as a staircase.

    Trials that break the study's outcome constraints are hollow grey points, outside the staircase.

    Trials without a value are marked by number in a strip above the plot: PRUNED ones (their
    values were measured after less training; the learning curves show them), FAIL and RUNNING
    ones. The legend counts each kind.

    Args:
        study: the study.
        objective: which objective of a multi-objective study.
        log_y: a logarithmic value axis (for positive values spanning decades).
    """
    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    completed = require_completed(snapshot)
    minimize = snapshot.directions[objective] == "min"
    feasible = [t for t in completed if t.feasible]
    infeasible = [t for t in completed if not t.feasible]
    numbers = [t.number for t in feasible]
    values = [t.values[objective] for t in feasible]
    best_so_far = _running_best(values, minimize)
    without_value = {state: [t.number for t in snapshot.trials if t.state is state] for state in MARK_STYLES}
    without_value = {state: marked for state, marked in without_value.items() if marked}

    fig = new_figure(7.0, 4.2 + 0.25 * len(without_value))
    if without_value:
        grid = fig.add_gridspec(2, 1, height_ratios=[0.3 * len(without_value), 3.0])
        ax = fig.add_subplot(grid[1])
        _draw_trials_without_value(fig.add_subplot(grid[0], sharex=ax), without_value)
    else:
        ax = fig.add_subplot()
    ax.scatter(numbers, values, s=22, color=BLUE, label=f"complete ({len(feasible)})", zorder=3)
    if infeasible:  # they have a value but break a constraint: never the best
        ax.scatter(
            [t.number for t in infeasible],
            [t.values[objective] for t in infeasible],
            s=22,
            facecolors="none",
            edgecolors=GREY,
            label=f"infeasible ({len(infeasible)})",
            zorder=3,
        )
    last = max(t.number for t in snapshot.trials)
    if feasible:
        ax.step(
            numbers + [last],
            best_so_far + best_so_far[-1:],
            where="post",
            color=VERMILLION,
            lw=1.8,
            label="best so far",
            zorder=4,
        )
    ax.set_xlabel("trial number")
    set_whole_number_x_axis(ax, min(t.number for t in snapshot.trials), last)
    ax.set_ylabel(snapshot.objective_label(objective))
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.suptitle(f"Optimization history of {snapshot.name!r}")
    fig.legend(loc="outside lower center", ncols=3 if without_value else 2, frameon=False)
    return fig


def plot_learning_curves(study: StudyLike, *, log_y: bool = False) -> Figure:
    """The values every trial reported while it ran, by step; pruned trials marked where they stopped.

    Complete trials are blue lines, the best one green; pruned trials are dashed orange lines
    ending in a cross at the step they were pruned; failed trials are dash-dotted red lines up to
    their last report; running trials are dotted purple lines.

    Args:
        study: the study.
        log_y: a logarithmic value axis (losses often need one).
    """
    from matplotlib.lines import Line2D

    snapshot = StudySnapshot.of(study)
    curves = [t for t in snapshot.trials if t.intermediate_values]
    if not curves:
        raise InvalidArgumentError(
            f"Study {snapshot.name!r} has no trial that reported intermediate values (study.report or the "
            "Tuner's TrialReporter), so there are no learning curves to plot."
        )
    best = snapshot.best_trial
    fig = new_figure(7.0, 4.2)
    ax = fig.add_subplot()
    handles: list[Line2D] = []
    for trial in curves:
        steps = sorted(trial.intermediate_values)
        values = [trial.intermediate_values[s] for s in steps]
        if best is not None and trial.number == best.number:
            handles += ax.plot(steps, values, color=GREEN, lw=2.2, zorder=5, label=f"best trial ({trial.number})")
            continue
        ax.plot(steps, values, **CURVE_STYLES[trial.state])
        if trial.state is TrialState.PRUNED:
            stop = trial.attrs.get(PRUNED_STEP, steps[-1])
            stop = stop if stop in trial.intermediate_values else steps[-1]
            ax.plot([stop], [trial.intermediate_values[stop]], "x", color=VERMILLION, ms=7, mew=1.6, zorder=4)
    # One legend entry per kind of line, not per trial.
    shown = {t.state for t in curves if best is None or t.number != best.number}
    where_pruned = {"marker": "x", "mec": VERMILLION, "mew": 1.6, "markevery": [1]}
    for state, style in CURVE_STYLES.items():
        if state in shown:
            pruned = state is TrialState.PRUNED
            marks, label = (where_pruned, "pruned (x: where it stopped)") if pruned else ({}, STATE_WORDS[state])
            handles.append(Line2D([], [], **style, **marks, label=label))
    ax.set_xlabel("step")
    all_steps = [step for t in curves for step in t.intermediate_values]
    set_whole_number_x_axis(ax, min(all_steps), max(all_steps))
    ax.set_ylabel("reported value" + (f" ({snapshot.directions[0]})" if len(snapshot.directions) == 1 else ""))
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title(f"Learning curves of {snapshot.name!r} ({count_of(len(curves), 'trial')})")
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), frameon=False)
    return fig


def plot_parallel_coordinates(study: StudyLike, *, objective: int = 0) -> Figure:
    """One line per COMPLETE trial through one vertical axis per parameter, then the objective.

    Each parameter axis is laid out as the samplers see it: log parameters on a log scale,
    categoricals as evenly spaced labelled choices. Lines are coloured by the objective; the best
    trials are the brightest and drawn on top. Failed trials are dashed red lines through their
    parameters only (they have no value), so regions where training breaks show.

    Args:
        study: the study.
        objective: which objective of a multi-objective study.
    """
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable

    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    completed = require_completed(snapshot)
    failed = [t for t in snapshot.trials if t.state is TrialState.FAIL]
    minimize = snapshot.directions[objective] == "min"
    names = list(snapshot.space.names)
    values = np.array([t.values[objective] for t in completed])
    low, high = float(values.min()), float(values.max())
    rows = np.column_stack([encoded_params(snapshot, completed), [encode_objective(v, low, high) for v in values]])

    fig = new_figure(max(6.0, 1.25 * (len(names) + 1) + 2.0), 4.6)
    ax = fig.add_subplot()
    cmap = colormaps["viridis_r" if minimize else "viridis"]
    norm = colour_norm(low, high, pad=abs(low) / 20 or 0.5)
    order = np.argsort(-values if minimize else values, kind="stable")  # best drawn last, on top
    xs = np.arange(len(names) + 1)
    for i in order:
        ax.plot(xs, rows[i], color=cmap(norm(values[i])), lw=1.0, alpha=0.75)
    if failed:
        for params in encoded_params(snapshot, failed):
            ax.plot(xs[:-1], params, color=VERMILLION, lw=1.0, ls="--", alpha=0.6, zorder=2)
        ax.plot([], [], color=VERMILLION, ls="--", label=f"{STATE_WORDS[TrialState.FAIL]} ({len(failed)}): no value")
        fig.legend(loc="outside lower center", frameon=False)
    for x, name in enumerate(names):
        draw_axis(ax, x, axis_ticks(snapshot.space[name]))
    objective_ticks = np.linspace(low, high, 5) if high > low else np.array([low])
    draw_axis(ax, len(names), [(encode_objective(v, low, high), number_text(v)) for v in objective_ticks])
    ax.set_xticks(xs, [*names, snapshot.objective_label(objective)], rotation=20 if len(names) > 5 else 0)
    ax.set_xlim(-0.6, len(names) + 0.25)
    ax.set_ylim(-0.04, 1.04)
    ax.set_yticks([])
    ax.tick_params(axis="x", length=0)
    for side in ("left", "right", "top", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"Parallel coordinates of {snapshot.name!r} ({count_of(len(completed), 'complete trial')})")
    colorbar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=snapshot.objective_label(objective), pad=0.01
    )
    tick_the_only_value(colorbar, low, high, number_text(low))
    return fig


def plot_importance(
    study: StudyLike,
    *,
    objective: int = 0,
    seed: int = 0,
    importances: Mapping[str, float] | None = None,
) -> Figure:
    """Horizontal bars of :func:`lightning_hpo.importance`, the most important parameter on top.

    With fewer than ``RELIABLE_IMPORTANCE_TRIALS`` COMPLETE trials the figure says, in red under
    its title, that the bars are a rough guess: the model behind them is fitted to too few points
    to tell parameters apart reliably.

    Args:
        study: the study.
        objective: which objective of a multi-objective study.
        seed: the seed of :func:`~lightning_hpo.importance`.
        importances: already computed importances to draw instead of computing them.
    """
    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    if importances is None:
        from lightning_hpo.importance import importance

        importances = importance(snapshot, objective=objective, seed=seed)
    ranked = sorted(importances.items(), key=lambda item: (-item[1], item[0]))
    names = [name for name, _ in ranked][::-1]
    shares = [share for _, share in ranked][::-1]

    fig = new_figure(6.5, 1.2 + 0.42 * len(names))
    ax = fig.add_subplot()
    bars = ax.barh(names, shares, color=BLUE, height=0.6)
    ax.bar_label(bars, labels=[f"{s:.3f}" for s in shares], padding=3)
    ax.set_xlim(0, max(max(shares, default=0.0) * 1.18, 0.05))
    ax.set_xlabel("importance (share of the objective's variance, total-effect Sobol index)")
    ax.grid(axis="x", alpha=0.3)
    label = "" if len(snapshot.directions) == 1 else f", {snapshot.objective_label(objective)}"
    n_completed = len(snapshot.completed())
    few = n_completed < RELIABLE_IMPORTANCE_TRIALS
    ax.set_title(f"Hyperparameter importance in {snapshot.name!r}{label}", pad=20 if few else None)
    if few:  # the caveat, in the room left between the title and the bars
        ax.annotate(
            f"Only {count_of(n_completed, 'complete trial')}: a rough guess "
            f"until about {RELIABLE_IMPORTANCE_TRIALS} have completed",
            xy=(0.5, 1.0),
            xycoords="axes fraction",
            xytext=(0, 5),
            textcoords="offset points",
            ha="center",
            va="bottom",
            color=VERMILLION,
            fontsize=9,
        )
    return fig


def plot_slice(study: StudyLike, *, objective: int = 0) -> Figure:
    """The objective against each parameter, one panel per parameter, coloured by trial number.

    Each panel spans its parameter's whole domain. Log parameters get a log axis; categoricals are
    spread over their labelled choices (with a little horizontal jitter so equal points stay
    visible). The best trial is a red star (every trial of the Pareto front, in a study with
    several objectives). Failed trials, which have no value, are crosses at their parameter along
    the edge of the worse values.

    Args:
        study: the study.
        objective: which objective of a multi-objective study.
    """
    import numpy as np
    from matplotlib.transforms import blended_transform_factory

    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    completed = require_completed(snapshot)
    failed = [t for t in snapshot.trials if t.state is TrialState.FAIL]
    names = list(snapshot.space.names)
    values = np.array([t.values[objective] for t in completed])
    numbers = np.array([t.number for t in completed])
    best = [snapshot.best_trial] if len(snapshot.directions) == 1 else snapshot.best_trials
    is_best = np.isin(numbers, [t.number for t in best])
    best_label = (
        f"best trial ({best[0].number})" if len(best) == 1 else f"Pareto front ({count_of(len(best), 'trial')})"
    )
    minimize = snapshot.directions[objective] == "min"
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = new_figure(3.3 * columns + 1.0, 2.9 * rows + 0.6)
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False)
    norm = colour_norm(numbers.min(), numbers.max(), pad=0.5)
    rng = np.random.default_rng(0)
    jitter, failed_jitter = rng.uniform(-0.12, 0.12, len(completed)), rng.uniform(-0.12, 0.12, len(failed))
    scatter = None
    for k, name in enumerate(names):
        ax = axes[k // columns][k % columns]
        domain = snapshot.space[name]
        set_parameter_axis(ax, domain)
        xs, failed_xs = (
            parameter_positions(name, domain, completed, jitter),
            parameter_positions(name, domain, failed, failed_jitter),
        )
        scatter = ax.scatter(xs, values, c=numbers, cmap="viridis", norm=norm, s=18, alpha=0.85, edgecolors="none")
        ax.scatter(
            xs[is_best],
            values[is_best],
            marker="*",
            s=130,
            color=VERMILLION,
            edgecolors="black",
            linewidths=0.5,
            zorder=5,
            label=best_label,
        )
        if failed:
            on_edge = blended_transform_factory(ax.transData, ax.transAxes)
            ax.plot(
                failed_xs,
                np.full(len(failed), 0.96 if minimize else 0.04),
                ls="",
                transform=on_edge,
                label=f"{STATE_WORDS[TrialState.FAIL]} ({len(failed)}): no value",
                **MARK_STYLES[TrialState.FAIL],
            )
        ax.set_xlabel(name + (" (log)" if getattr(domain, "log", False) else ""))
        ax.grid(alpha=0.3)
        if k % columns == 0:
            ax.set_ylabel(snapshot.objective_label(objective))
    if failed:  # room for the crosses on the edge of the worse values (the panels share their y axis)
        low, high = axes[0][0].get_ylim()
        room = 0.1 * (high - low)
        axes[0][0].set_ylim((low, high + room) if minimize else (low - room, high))
    for k in range(len(names), rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    colorbar = fig.colorbar(scatter, ax=axes, label="trial number", shrink=0.9)
    colorbar.ax.yaxis.set_major_locator(whole_numbers())
    tick_the_only_value(colorbar, numbers.min(), numbers.max(), str(numbers.min()))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), frameon=False)
    fig.suptitle(f"Slice plot of {snapshot.name!r}")
    return fig


def plot_pareto_front(study: StudyLike, *, objectives: tuple[int, int] = (0, 1)) -> Figure:
    """Two objectives of a multi-objective study against each other, the Pareto front highlighted.

    Points on the front (no other COMPLETE trial is as good in both objectives and better in one)
    are labelled with their trial number and joined by the staircase that bounds the dominated
    region; dominated trials are grey. With more than two objectives, the front is the one of the
    two objectives shown.

    Args:
        study: a study with at least two objectives.
        objectives: the two objectives to plot (x, y).
    """
    import numpy as np

    from lightning_hpo.pareto import minimization_form, non_dominated_mask

    snapshot = StudySnapshot.of(study)
    if len(snapshot.directions) < 2:
        raise InvalidArgumentError(
            f"A Pareto front needs a study with several objectives, but {snapshot.name!r} has one "
            f"(mode={snapshot.directions[0]!r}); plot_optimization_history shows a single objective."
        )
    if len(objectives) != 2 or objectives[0] == objectives[1]:
        raise InvalidArgumentError(f"`objectives` must be two different objective indices, but got {objectives!r}.")
    x_index, y_index = (snapshot.check_objective(i) for i in objectives)
    completed = require_completed(snapshot)
    points = np.array([[t.values[x_index], t.values[y_index]] for t in completed])
    directions = [snapshot.directions[x_index], snapshot.directions[y_index]]
    on_front = non_dominated_mask(minimization_form(points, directions))

    fig = new_figure(6.5, 5.0)
    ax = fig.add_subplot()
    ax.scatter(points[~on_front, 0], points[~on_front, 1], s=20, color=GREY, alpha=0.6, label="dominated")
    front = points[on_front]
    order = np.argsort(front[:, 0] if directions[0] == "min" else -front[:, 0], kind="stable")
    ax.step(front[order, 0], front[order, 1], where="post", color=BLUE, lw=1.2, alpha=0.7)
    ax.scatter(front[:, 0], front[:, 1], s=36, color=BLUE, zorder=3, label=f"Pareto front ({int(on_front.sum())})")
    for trial, point in zip((t for t, keep in zip(completed, on_front) if keep), front):
        ax.annotate(str(trial.number), point, textcoords="offset points", xytext=(4, 4), fontsize=8, color=BLUE)
    ax.set_xlabel(snapshot.objective_label(x_index))
    ax.set_ylabel(snapshot.objective_label(y_index))
    ax.grid(alpha=0.3)
    ax.set_title(f"Pareto front of {snapshot.name!r} ({count_of(len(completed), 'complete trial')})")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


def save_plots(
    study: StudyLike, out_dir: str | os.PathLike[str], *, objective: int = 0, seed: int = 0, dpi: int = 120
) -> tuple[list[Path], dict[str, str]]:
    """Write every plot that applies to ``out_dir`` as PNG files.

    Returns:
        The files written, and the file name -> the reason of each plot that was skipped (e.g. no
        learning curves when no trial reported intermediate values).
    """
    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    makers: dict[str, Any] = {
        "history.png": lambda: plot_optimization_history(snapshot, objective=objective),
        "learning_curves.png": lambda: plot_learning_curves(snapshot),
        "parallel_coordinates.png": lambda: plot_parallel_coordinates(snapshot, objective=objective),
        "importance.png": lambda: plot_importance(snapshot, objective=objective, seed=seed),
        "slice.png": lambda: plot_slice(snapshot, objective=objective),
    }
    if len(snapshot.directions) > 1:
        makers["pareto_front.png"] = lambda: plot_pareto_front(snapshot)
    written, skipped = [], {}
    for file_name, make in makers.items():
        try:
            figure = make()
        except InvalidArgumentError as error:
            skipped[file_name] = str(error)
            continue
        path = out / file_name
        figure.savefig(path, dpi=dpi)
        written.append(path)
    return written, skipped


# -- helpers -------------------------------------------------------------------------------


def _running_best(values: Sequence[float], minimize: bool) -> list[float]:
    best: list[float] = []
    for value in values:
        best.append(value if not best else (min if minimize else max)(best[-1], value))
    return best


def _draw_trials_without_value(ax: Axes, numbers: Mapping[TrialState, Sequence[int]]) -> None:
    """A strip with one row per state, marking the trial numbers in that state."""
    for row, (state, marked) in enumerate(numbers.items()):
        ax.plot(marked, [row] * len(marked), ls="", label=f"{STATE_WORDS[state]} ({len(marked)})", **MARK_STYLES[state])
    ax.set_yticks(range(len(numbers)), [STATE_WORDS[state] for state in numbers])
    ax.set_ylim(len(numbers) - 0.5, -0.5)
    ax.tick_params(axis="x", labelbottom=False)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", alpha=0.3)
