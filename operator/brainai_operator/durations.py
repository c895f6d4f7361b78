"""Prometheus-style durations (90s, 5m, 1h, 2d) and the query window built from one.

The CRD's `spec.monitoring.window` and the `--advisor-window` flag take this grammar, so a value
that validates there reads the same here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# The least engine usage the advisor recommends from; `rightsizing`'s docstring says why 30 minutes.
# Here rather than there so the CLI can state it in --help without importing numpy.
MIN_EVIDENCE_SECONDS = 30 * 60


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus-style duration such as 90s, 5m, 1h or 2d."""
    found = re.fullmatch(r"([0-9]+)([smhd])", text.strip())
    if not found:
        raise ValueError(f"not a duration (use e.g. 30m, 1h, 1d): {text!r}")
    return int(found.group(1)) * _UNITS[found.group(2)]


def format_duration(seconds: float) -> str:
    """The largest unit that divides `seconds` exactly (3600 → 1h, 90 → 90s): a value that parses back."""
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{int(seconds)}s"


def human_duration(seconds: float) -> str:
    """The largest unit and the one below it, rounded down (1h30m, 18m30s, 45s; 3630 → 1h): for
    messages, where 1110s reads badly."""
    left = max(0, int(seconds))
    counts = []
    for unit in ("d", "h", "m", "s"):
        count, left = divmod(left, _UNITS[unit])
        counts.append((count, unit))
    first = next((i for i, (count, _) in enumerate(counts) if count), len(counts) - 1)
    return "".join(f"{count}{unit}" for count, unit in counts[first : first + 2] if count) or "0s"


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
