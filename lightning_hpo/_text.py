"""Small helpers for the text that plots and the console show people."""

from __future__ import annotations

__all__ = ["count_of"]


def count_of(count: int, noun: str) -> str:
    """``count`` with ``noun`` in agreement: ``"1 trial"``, ``"0 trials"``, ``"2 trials"`` (regular
    plurals only).

    Example:
        >>> count_of(1, "complete trial"), count_of(3, "objective")
        ('1 complete trial', '3 objectives')
    """
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
