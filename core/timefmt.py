"""Durations as a person reads them on a progress line: the CLI's and the window's alike."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """``mm:ss``, or ``h:mm:ss`` from an hour on; ``--:--`` when unknown (None, NaN, infinite:
    an ETA before the first step was timed)."""
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    h, rest = divmod(max(0, int(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
