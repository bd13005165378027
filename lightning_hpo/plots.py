"""Plots of a study, as matplotlib figures.

Each function takes a :class:`~lightning_hpo.Study` (or a
:class:`~lightning_hpo.snapshot.StudySnapshot`) and returns a ``matplotlib.figure.Figure``. The
figures are built without pyplot, so they need no display, hold no global state and are never
shown twice in a notebook: save one with ``fig.savefig("history.png")``, or let a notebook display
it. :func:`save_plots` writes every plot that applies as PNG files (``lightning-hpo plot`` calls it).

A plot that has nothing to show (no COMPLETE trial yet, one objective for a Pareto front) raises
:class:`~lightning_hpo.exceptions.InvalidArgumentError` saying so.

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

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.snapshot import StudyLike, StudySnapshot
from lightning_hpo.space import Categorical, Domain, Float, Int
from lightning_hpo.trial import Trial, TrialState

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

# Colours of the Okabe-Ito palette, told apart with any colour vision.
_BLUE, _ORANGE, _GREEN, _VERMILLION, _PURPLE, _GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#999999"


def plot_optimization_history(study: StudyLike, *, objective: int = 0, log_y: bool = False) -> Figure:
    """Each COMPLETE trial's value by trial number, with the best value so far as a staircase.

    PRUNED trials are left out (their values were measured after less training; the learning curves
    show them); the legend counts them.

    Args:
        study: the study.
        objective: which objective of a multi-objective study.
        log_y: a logarithmic value axis (for positive values spanning decades).
    """
    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    completed = _require_completed(snapshot)
    minimize = snapshot.directions[objective] == "min"
    numbers = [t.number for t in completed]
    values = [t.values[objective] for t in completed]
    best_so_far = _running_best(values, minimize)

    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    ax.scatter(numbers, values, s=22, color=_BLUE, label=f"complete ({len(completed)})", zorder=3)
    others = [t for t in snapshot.trials if t.state is not TrialState.COMPLETE]
    if others:  # an empty entry: what the plot leaves out, and why
        counts = {
            s: sum(t.state is s for t in others) for s in (TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
        }
        text = ", ".join(f"{n} {s.value.lower()}" for s, n in counts.items() if n)
        ax.plot([], [], " ", label=f"not shown: {text}")
    last = max(t.number for t in snapshot.trials)
    ax.step(
        numbers + [last],
        best_so_far + best_so_far[-1:],
        where="post",
        color=_VERMILLION,
        lw=1.8,
        label="best so far",
        zorder=4,
    )
    ax.set_xlabel("trial number")
    ax.set_ylabel(snapshot.objective_label(objective))
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title(f"Optimization history of {snapshot.name!r}")
    fig.legend(loc="outside lower center", ncols=3, frameon=False)
    return fig


def plot_learning_curves(study: StudyLike, *, log_y: bool = False) -> Figure:
    """The values every trial reported while it ran, by step; pruned trials marked where they stopped.

    Complete trials are blue lines, the best one green; pruned trials are dashed orange lines
    ending in a cross at the step they were pruned; running trials are dotted purple lines.

    Args:
        study: the study.
        log_y: a logarithmic value axis (losses often need one).
    """
    snapshot = StudySnapshot.of(study)
    curves = [t for t in snapshot.trials if t.intermediate_values and t.state is not TrialState.FAIL]
    if not curves:
        raise InvalidArgumentError(
            f"Study {snapshot.name!r} has no trial that reported intermediate values (study.report or the "
            "Tuner's TrialReporter), so there are no learning curves to plot."
        )
    best = _best_number(snapshot)
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    for trial in curves:
        steps = sorted(trial.intermediate_values)
        values = [trial.intermediate_values[s] for s in steps]
        if trial.number == best:
            ax.plot(steps, values, color=_GREEN, lw=2.2, zorder=5, label=f"best trial ({trial.number})")
        elif trial.state is TrialState.COMPLETE:
            ax.plot(steps, values, color=_BLUE, lw=1.0, alpha=0.55, zorder=3)
        elif trial.state is TrialState.PRUNED:
            ax.plot(steps, values, color=_ORANGE, lw=1.0, ls="--", alpha=0.8, zorder=2)
            stop = trial.attrs.get("pruned_step", steps[-1])
            stop = stop if stop in trial.intermediate_values else steps[-1]
            ax.plot([stop], [trial.intermediate_values[stop]], "x", color=_VERMILLION, ms=7, mew=1.6, zorder=4)
        else:
            ax.plot(steps, values, color=_PURPLE, lw=1.2, ls=":", zorder=4)
    # One legend entry per kind of line, not per trial.
    from matplotlib.lines import Line2D

    states = {t.state for t in curves}
    handles = [h for h in ax.get_legend_handles_labels()[0]]
    if TrialState.COMPLETE in states:
        handles.append(Line2D([], [], color=_BLUE, lw=1.0, label="complete"))
    if TrialState.PRUNED in states:
        handles.append(
            Line2D(
                [],
                [],
                color=_ORANGE,
                lw=1.0,
                ls="--",
                marker="x",
                mec=_VERMILLION,
                mew=1.6,
                markevery=[1],
                label="pruned (x: where it stopped)",
            )
        )
    if TrialState.RUNNING in states:
        handles.append(Line2D([], [], color=_PURPLE, lw=1.2, ls=":", label="running"))
    ax.set_xlabel("step")
    ax.set_ylabel("reported value" + (f" ({snapshot.directions[0]})" if len(snapshot.directions) == 1 else ""))
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title(f"Learning curves of {snapshot.name!r} ({len(curves)} trials)")
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig


def plot_parallel_coordinates(study: StudyLike, *, objective: int = 0) -> Figure:
    """One line per COMPLETE trial through one vertical axis per parameter, then the objective.

    Each parameter axis is laid out as the samplers see it: log parameters on a log scale,
    categoricals as evenly spaced labelled choices. Lines are coloured by the objective; the best
    trials are the brightest and drawn on top.

    Args:
        study: the study.
        objective: which objective of a multi-objective study.
    """
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    completed = _require_completed(snapshot)
    minimize = snapshot.directions[objective] == "min"
    names = list(snapshot.space.names)
    values = np.array([t.values[objective] for t in completed])
    low, high = float(values.min()), float(values.max())
    objective_axis = (values - low) / (high - low) if high > low else np.full(len(values), 0.5)
    rows = np.array([[snapshot.space[n].encode(t.params[n]) for n in names] for t in completed])
    rows = np.column_stack([rows, objective_axis])

    fig = _figure(max(6.0, 1.25 * (len(names) + 1) + 2.0), 4.6)
    ax = fig.add_subplot()
    cmap = colormaps["viridis_r" if minimize else "viridis"]
    norm = Normalize(low, high) if high > low else Normalize(low - 0.5, high + 0.5)
    order = np.argsort(-values if minimize else values, kind="stable")  # best drawn last, on top
    xs = np.arange(len(names) + 1)
    for i in order:
        ax.plot(xs, rows[i], color=cmap(norm(values[i])), lw=1.0, alpha=0.75)
    for x, name in enumerate(names):
        _draw_axis(ax, x, _axis_ticks(snapshot.space[name]))
    objective_ticks = np.linspace(low, high, 5) if high > low else np.array([low])
    _draw_axis(ax, len(names), [(_encode_objective(v, low, high), _number_text(v)) for v in objective_ticks])
    ax.set_xticks(xs, [*names, snapshot.objective_label(objective)], rotation=20 if len(names) > 5 else 0)
    ax.set_xlim(-0.6, len(names) + 0.25)
    ax.set_ylim(-0.04, 1.04)
    ax.set_yticks([])
    ax.tick_params(axis="x", length=0)
    for side in ("left", "right", "top", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"Parallel coordinates of {snapshot.name!r} ({len(completed)} complete trials)")
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=snapshot.objective_label(objective), pad=0.01)
    return fig


def plot_importance(
    study: StudyLike,
    *,
    objective: int = 0,
    seed: int = 0,
    importances: Mapping[str, float] | None = None,
) -> Figure:
    """Horizontal bars of :func:`lightning_hpo.importance`, the most important parameter on top.

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

    fig = _figure(6.5, 1.2 + 0.42 * len(names))
    ax = fig.add_subplot()
    bars = ax.barh(names, shares, color=_BLUE, height=0.6)
    ax.bar_label(bars, labels=[f"{s:.3f}" for s in shares], padding=3)
    ax.set_xlim(0, max(max(shares, default=0.0) * 1.18, 0.05))
    ax.set_xlabel("importance (share of the objective's variance, total-effect Sobol index)")
    ax.grid(axis="x", alpha=0.3)
    label = "" if len(snapshot.directions) == 1 else f", {snapshot.objective_label(objective)}"
    ax.set_title(f"Hyperparameter importance in {snapshot.name!r}{label}")
    return fig


def plot_slice(study: StudyLike, *, objective: int = 0) -> Figure:
    """The objective against each parameter, one panel per parameter, coloured by trial number.

    Log parameters get a log axis; categoricals are spread over their labelled choices (with a
    little horizontal jitter so equal points stay visible). The best trial is a red star.

    Args:
        study: the study.
        objective: which objective of a multi-objective study.
    """
    import numpy as np
    from matplotlib.colors import Normalize

    snapshot = StudySnapshot.of(study)
    snapshot.check_objective(objective)
    completed = _require_completed(snapshot)
    names = list(snapshot.space.names)
    values = np.array([t.values[objective] for t in completed])
    numbers = np.array([t.number for t in completed])
    best = int(np.argmin(values) if snapshot.directions[objective] == "min" else np.argmax(values))
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = _figure(3.3 * columns + 1.0, 2.9 * rows + 0.6)
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False)
    norm = Normalize(numbers.min(), max(numbers.max(), numbers.min() + 1))
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(completed))
    scatter = None
    for k, name in enumerate(names):
        ax = axes[k // columns][k % columns]
        domain = snapshot.space[name]
        if isinstance(domain, Categorical):
            xs = np.array([domain.index(t.params[name]) for t in completed]) + jitter
            ax.set_xticks(range(len(domain.choices)), [_choice_text(c) for c in domain.choices])
            ax.set_xlim(-0.5, len(domain.choices) - 0.5)
        else:
            xs = np.array([t.params[name] for t in completed], dtype=float)
            _set_numeric_axis(ax, domain)
        scatter = ax.scatter(xs, values, c=numbers, cmap="viridis", norm=norm, s=18, alpha=0.85, edgecolors="none")
        ax.scatter(
            [xs[best]],
            [values[best]],
            marker="*",
            s=130,
            color=_VERMILLION,
            edgecolors="black",
            linewidths=0.5,
            zorder=5,
            label=f"best trial ({numbers[best]})",
        )
        ax.set_xlabel(name + (" (log)" if getattr(domain, "log", False) else ""))
        ax.grid(alpha=0.3)
        if k % columns == 0:
            ax.set_ylabel(snapshot.objective_label(objective))
    for k in range(len(names), rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    fig.colorbar(scatter, ax=axes, label="trial number", shrink=0.9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", frameon=False)
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
    completed = _require_completed(snapshot)
    points = np.array([[t.values[x_index], t.values[y_index]] for t in completed])
    directions = [snapshot.directions[x_index], snapshot.directions[y_index]]
    on_front = non_dominated_mask(minimization_form(points, directions))

    fig = _figure(6.5, 5.0)
    ax = fig.add_subplot()
    ax.scatter(points[~on_front, 0], points[~on_front, 1], s=20, color=_GREY, alpha=0.6, label="dominated")
    front = points[on_front]
    order = np.argsort(front[:, 0] if directions[0] == "min" else -front[:, 0], kind="stable")
    ax.step(front[order, 0], front[order, 1], where="post", color=_BLUE, lw=1.2, alpha=0.7)
    ax.scatter(front[:, 0], front[:, 1], s=36, color=_BLUE, zorder=3, label=f"Pareto front ({int(on_front.sum())})")
    for trial, point in zip((t for t, keep in zip(completed, on_front) if keep), front):
        ax.annotate(str(trial.number), point, textcoords="offset points", xytext=(4, 4), fontsize=8, color=_BLUE)
    ax.set_xlabel(snapshot.objective_label(x_index))
    ax.set_ylabel(snapshot.objective_label(y_index))
    ax.grid(alpha=0.3)
    ax.set_title(f"Pareto front of {snapshot.name!r} ({len(completed)} complete trials)")
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


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _require_completed(snapshot: StudySnapshot) -> list[Trial]:
    completed = snapshot.completed()
    if not completed:
        raise InvalidArgumentError(f"Study {snapshot.name!r} has no COMPLETE trial yet, so there is nothing to plot.")
    return completed


def _running_best(values: Sequence[float], minimize: bool) -> list[float]:
    best: list[float] = []
    for value in values:
        best.append(value if not best else (min if minimize else max)(best[-1], value))
    return best


def _best_number(snapshot: StudySnapshot) -> int | None:
    """The best COMPLETE trial's number for a single objective, else ``None``."""
    completed = snapshot.completed()
    if not completed or len(snapshot.directions) != 1:
        return None
    sign = 1.0 if snapshot.directions[0] == "min" else -1.0
    return min(completed, key=lambda t: (sign * t.values[0], t.number)).number


def _encode_objective(value: float, low: float, high: float) -> float:
    return (value - low) / (high - low) if high > low else 0.5


def _number_text(value: float) -> str:
    return f"{value:.3g}"


def _choice_text(choice: Any) -> str:
    text = str(choice)
    return text if len(text) <= 14 else text[:13] + "…"


def _axis_ticks(domain: Domain) -> list[tuple[float, str]]:
    """(position on the unit axis, label) of a parameter axis, in the domain's own encoding."""
    if isinstance(domain, Categorical):
        shown = domain.choices
        if len(shown) > 12:  # keep labels readable: every k-th choice
            shown = shown[:: math.ceil(len(shown) / 12)]
        return [(domain.encode(c), _choice_text(c)) for c in shown]
    values = _tick_values(domain)
    return [(domain.encode(v), label) for v, label in zip(values, _tick_labels(values, domain))]


def _set_numeric_axis(ax: Axes, domain: Float | Int) -> None:
    """The x axis of a numeric parameter: log scale for log domains, the same ticks as everywhere."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    if domain.log:
        ax.set_xscale("log")
    values = _tick_values(domain)
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.set_xticks(values, _tick_labels(values, domain))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _tick_values(domain: Float | Int) -> list[float]:
    """A few round values inside the domain: decades (powers of 2 for ints) on log domains."""
    from matplotlib.ticker import LogLocator, MaxNLocator

    low, high = domain.low, domain.high
    if domain.log:
        base = 2 if isinstance(domain, Int) else 10
        # Exact powers (the locator's 1e-5 comes out as 9.999999999999999e-06).
        exponents = sorted({round(math.log(v, base)) for v in LogLocator(base=base).tick_values(low, high)})
        powers = [float(f"1e{k}") if base == 10 else float(base**k) for k in exponents]
        candidates = [v for v in powers if low <= v <= high]
        candidates = candidates[:: math.ceil(len(candidates) / 7)] if candidates else candidates
        if len(candidates) < 2:
            candidates = [low, math.sqrt(low * high), high]
    else:
        candidates = [
            v for v in MaxNLocator(nbins=5, integer=isinstance(domain, Int)).tick_values(low, high) if low <= v <= high
        ]
    if isinstance(domain, Int):
        candidates = [v for v in sorted({int(round(v)) for v in candidates}) if domain.contains(v)] or [low, high]
    return candidates


def _tick_labels(values: Sequence[float], domain: Float | Int) -> list[str]:
    """Integers as they are; decades as ``1e-5`` when every tick is one and some are far from 1; else
    3 significant digits."""
    if isinstance(domain, Int):
        return [str(int(v)) for v in values]
    exponents = [math.log10(v) if v > 0 else math.nan for v in values]
    decades = domain.log and all(math.isclose(e, round(e), abs_tol=1e-9) for e in exponents)
    if decades and any(abs(e) > 3 for e in exponents):
        return [f"1e{round(e):d}" for e in exponents]
    return [_number_text(v) for v in values]


def _draw_axis(ax: Axes, x: float, ticks: Sequence[tuple[float, str]]) -> None:
    """A vertical axis at ``x`` with tick marks and labels to its left."""
    ax.axvline(x, color="black", lw=1.0, zorder=6)
    for position, label in ticks:
        ax.plot([x - 0.03, x], [position, position], color="black", lw=1.0, zorder=6)
        ax.text(
            x - 0.05,
            position,
            label,
            ha="right",
            va="center",
            fontsize=8,
            zorder=7,
            bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.7},
        )
