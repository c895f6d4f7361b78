"""Prometheus-style durations and the query window derived from one."""

from __future__ import annotations

import pytest

from brainai_operator.durations import Window, format_duration, parse_duration


def test_durations_and_windows() -> None:
    assert parse_duration("90s") == 90 and parse_duration("1h") == 3600 and parse_duration("2d") == 172800
    with pytest.raises(ValueError):
        parse_duration("1 hour")
    w = Window.of("1h")
    assert (w.seconds, w.step, w.rate, w.label) == (3600, 30, 60, "1h")
    assert Window.of("40s").rate == 10  # short windows: a quarter of the window


def test_format_duration_picks_the_largest_exact_unit() -> None:
    assert [format_duration(s) for s in (86400, 7200, 90, 45)] == ["1d", "2h", "90s", "45s"]
    assert format_duration(300) == "5m"
