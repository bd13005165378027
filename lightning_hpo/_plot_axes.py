"""How the plots place parameters, objective values and trial numbers on their axes.

The helpers here choose the ticks and their labels (round values, decades on log domains, shortened
categorical choices, whole trial numbers and steps), encode trials' parameters and values onto the
unit axes of the parallel coordinates, lay out a parameter's x axis over its whole domain, and
scale the colour bars, including the single tick of a colour bar that shows only one value. They
serve :mod:`lightning_hpo.plots`; like it, they import matplotlib inside the functions, so that
importing lightning_hpo does not import matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lightning_hpo.space import Categorical, Domain, Float, Int

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.colorbar import Colorbar
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    from lightning_hpo.snapshot import StudySnapshot
    from lightning_hpo.trial import Trial

__all__ = [
    "axis_ticks",
    "colour_norm",
    "draw_axis",
    "encode_objective",
    "encoded_params",
    "number_text",
    "parameter_positions",
    "set_parameter_axis",
    "set_whole_number_x_axis",
    "tick_the_only_value",
    "whole_numbers",
]

# Multiples of the powers of 10 (or 2) tried in turn until a log domain holds 3 ticks.
_LOG_TICK_MULTIPLES = {10: ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)), 2: ((1,), (1, 1.5))}


def number_text(value: float) -> str:
    """3 significant digits, with a short exponent: ``0.00123``, ``2e-5`` (not ``2e-05``)."""
    mantissa, e, exponent = f"{value:.3g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if e else mantissa


def encode_objective(value: float, low: float, high: float) -> float:
    """``value`` on the unit objective axis of the parallel coordinates; the middle when ``low == high``."""
    return (value - low) / (high - low) if high > low else 0.5


def encoded_params(snapshot: StudySnapshot, trials: Sequence[Trial]) -> np.ndarray:
    """``n x d``: each trial's parameters on the unit axes of the parallel coordinates; ``nan`` (no
    point on that axis) for a conditional parameter the trial did not have."""
    import numpy as np

    space = snapshot.space
    return np.array(
        [[space[n].encode(t.params[n]) if n in t.params else np.nan for n in space.names] for t in trials], dtype=float
    )


def colour_norm(low: float, high: float, *, pad: float) -> Normalize:
    """A colour scale from ``low`` to ``high``; from ``low - pad`` to ``low + pad`` when they are
    equal (one value), so that value takes the middle colour."""
    from matplotlib.colors import Normalize

    return Normalize(low, high) if high > low else Normalize(low - pad, high + pad)


def whole_numbers() -> MaxNLocator:
    """Ticks on whole numbers only (trial numbers, steps), never at 2.5."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True, steps=[1, 2, 5, 10])


def set_whole_number_x_axis(ax: Axes, low: int, high: int) -> None:
    """An x axis of whole numbers from ``low`` to ``high``; one or two numbers get a tick each
    (the locator would fall back to ticks at -0.04 ... 0.04)."""
    if high - low < 2:
        ax.set_xticks(range(low, high + 1))
        ax.set_xlim(low - 0.5, high + 0.5)
    else:
        ax.xaxis.set_major_locator(whole_numbers())


def tick_the_only_value(colorbar: Colorbar, low: float, high: float, text: str) -> None:
    """A colour bar of one value (``low == high``) gets a single tick, at its middle colour."""
    if high == low:
        colorbar.set_ticks([low], labels=[text])


def _choice_text(choice: Any) -> str:
    text = str(choice)
    return text if len(text) <= 14 else text[:13] + "…"


def axis_ticks(domain: Domain) -> list[tuple[float, str]]:
    """(position on the unit axis, label) of a parameter axis, in the domain's own encoding."""
    if isinstance(domain, Categorical):
        shown = domain.choices
        if len(shown) > 12:  # keep labels readable: every k-th choice
            shown = shown[:: math.ceil(len(shown) / 12)]
        return [(domain.encode(c), _choice_text(c)) for c in shown]
    values = _tick_values(domain)
    return [(domain.encode(v), label) for v, label in zip(values, _tick_labels(values, domain))]


def set_parameter_axis(ax: Axes, domain: Domain) -> None:
    """The x axis of a parameter over its whole domain: labelled choices for a categorical; for a
    number, a log scale for log domains and the same ticks as everywhere."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    if isinstance(domain, Categorical):
        ax.set_xticks(range(len(domain.choices)), [_choice_text(c) for c in domain.choices])
        ax.set_xlim(-0.5, len(domain.choices) - 0.5)
        return
    if domain.log:
        ax.set_xscale("log")
        margin = (domain.high / domain.low) ** 0.04
        ax.set_xlim(domain.low / margin, domain.high * margin)
    else:
        margin = 0.04 * (domain.high - domain.low)
        ax.set_xlim(domain.low - margin, domain.high + margin)
    values = _tick_values(domain)
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.set_xticks(values, _tick_labels(values, domain))
    ax.xaxis.set_minor_formatter(NullFormatter())


def parameter_positions(name: str, domain: Domain, trials: Sequence[Trial], jitter: np.ndarray) -> np.ndarray:
    """Where the trials' values of parameter ``name`` lie on its axis: for a categorical, the index
    of the choice plus ``jitter``; ``nan`` (no point) for a trial where the parameter was inactive."""
    import numpy as np

    if isinstance(domain, Categorical):
        indices = [domain.index(t.params[name]) if name in t.params else np.nan for t in trials]
        return np.array(indices, dtype=float) + jitter
    return np.array([t.params.get(name, np.nan) for t in trials], dtype=float)


def _tick_values(domain: Float | Int) -> list[float]:
    """A few round values inside the domain: on log domains powers of the base (10, or 2 for ints),
    else 1-2-5 or 1-9 multiples of them, so that a domain narrower than a few decades still gets
    several ticks."""
    from matplotlib.ticker import MaxNLocator

    low, high = domain.low, domain.high
    integer = isinstance(domain, Int)
    candidates = _log_tick_values(low, high, base=2 if integer else 10) if domain.log else []
    if len(candidates) < 3:
        linear = MaxNLocator(nbins=5, integer=integer, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
        candidates = [v for v in map(_rounded, linear) if low <= v <= high]
    if integer:
        candidates = [v for v in sorted({int(round(v)) for v in candidates}) if domain.contains(v)] or [low, high]
    return candidates


def _log_tick_values(low: float, high: float, base: int) -> list[float]:
    """The first of powers of ``base``, then finer multiples of them, to put at least 3 ticks in
    ``[low, high]``; at most 7 (every k-th one); none when even the finest multiples don't."""
    exponents = range(math.floor(math.log(low, base)), math.ceil(math.log(high, base)) + 1)
    for multiples in _LOG_TICK_MULTIPLES[base]:
        ticks = [_rounded(m * float(base) ** k) for k in exponents for m in multiples]
        ticks = [v for v in ticks if low <= v <= high]
        if len(ticks) >= 3:
            return ticks[:: math.ceil(len(ticks) / 7)]
    return []


def _rounded(value: float) -> float:
    """``value`` without the float noise of its computation: 2 * 10.0**-5 is 2.0000000000000002e-05."""
    return float(f"{value:.12g}")


def _tick_labels(values: Sequence[float], domain: Float | Int) -> list[str]:
    """Integers as they are; decades as ``1e-5`` when every tick is one and some are far from 1; else
    3 significant digits."""
    if isinstance(domain, Int):
        return [str(int(v)) for v in values]
    exponents = [math.log10(v) if v > 0 else math.nan for v in values]
    decades = domain.log and all(math.isclose(e, round(e), abs_tol=1e-9) for e in exponents)
    if decades and any(abs(e) > 3 for e in exponents):
        return [f"1e{round(e):d}" for e in exponents]
    return [number_text(v) for v in values]


def draw_axis(ax: Axes, x: float, ticks: Sequence[tuple[float, str]]) -> None:
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
