"""How the plots of :mod:`lightning_hpo.plots` look: one palette, one style per trial state, and their figures.

The Okabe-Ito colours (told apart with any colour vision), the word, learning-curve style and marker
of each :class:`~lightning_hpo.TrialState`, a blank figure laid out for a legend below the axes,
and the check that a study has a COMPLETE trial to plot. Apart from the plots themselves so that
every plot draws the same kind of trial the same way. matplotlib is imported inside the functions,
so that importing lightning_hpo does not import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_hpo.exceptions import InvalidArgumentError
from lightning_hpo.trial import TrialState

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lightning_hpo.snapshot import StudySnapshot
    from lightning_hpo.trial import Trial

__all__ = [
    "BLUE",
    "ORANGE",
    "GREEN",
    "VERMILLION",
    "PURPLE",
    "GREY",
    "STATE_WORDS",
    "CURVE_STYLES",
    "MARK_STYLES",
    "new_figure",
    "require_completed",
]

# Colours of the Okabe-Ito palette, told apart with any colour vision.
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#999999"
STATE_WORDS = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
}
# How each kind of trial is drawn: a learning curve, and a mark where a trial has no value to show.
CURVE_STYLES: dict[TrialState, dict[str, Any]] = {
    TrialState.COMPLETE: {"color": BLUE, "lw": 1.0, "alpha": 0.55, "zorder": 3},
    TrialState.PRUNED: {"color": ORANGE, "lw": 1.0, "ls": "--", "alpha": 0.8, "zorder": 2},
    TrialState.FAIL: {"color": VERMILLION, "lw": 1.0, "ls": "-.", "alpha": 0.8, "zorder": 2},
    TrialState.RUNNING: {"color": PURPLE, "lw": 1.2, "ls": ":", "zorder": 4},
}
MARK_STYLES: dict[TrialState, dict[str, Any]] = {
    TrialState.PRUNED: {"marker": "|", "color": ORANGE, "ms": 9, "mew": 1.8},
    TrialState.FAIL: {"marker": "x", "color": VERMILLION, "ms": 7, "mew": 1.6},
    TrialState.RUNNING: {"marker": "o", "color": PURPLE, "ms": 6, "mfc": "none", "mew": 1.4},
}


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def require_completed(snapshot: StudySnapshot) -> list[Trial]:
    completed = snapshot.completed()
    if not completed:
        raise InvalidArgumentError(f"Study {snapshot.name!r} has no COMPLETE trial yet, so there is nothing to plot.")
    return completed
