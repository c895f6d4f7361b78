"""Prometheus-style durations (90s, 5m, 1h, 2d) and the query window built from one.

The CRD's `spec.monitoring.window` and the `--advisor-window` flag take this grammar, so a value
that validates there reads the same here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus-style duration such as 90s, 5m, 1h or 2d."""
    found = re.fullmatch(r"([0-9]+)([smhd])", text.strip())
    if not found:
        raise ValueError(f"not a duration (use e.g. 30m, 1h, 1d): {text!r}")
    return int(found.group(1)) * _UNITS[found.group(2)]


def format_duration(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{int(seconds)}s"


@dataclass(frozen=True)
class Window:
    """What history to read: `seconds` back from now, one point per `step`, rates over `rate`."""

    seconds: int
    step: int
    rate: int

    @classmethod
    def of(cls, window: str | int, step: int | None = None, rate: int | None = None) -> Window:
        """~120 points per window; a rate range of two steps and at least a minute, so a 30 s scrape
        interval still leaves several samples per rate (windows under 4 minutes use a quarter of it)."""
        seconds = parse_duration(window) if isinstance(window, str) else int(window)
        step = step or max(1, seconds // 120)
        return cls(seconds, step, rate or max(2 * step, min(60, seconds // 4)))

    @property
    def label(self) -> str:
        return format_duration(self.seconds)
