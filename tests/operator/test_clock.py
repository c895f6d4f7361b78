"""RFC 3339 as the Kubernetes API writes it: seconds for status and events, microseconds for Leases."""

from __future__ import annotations

import datetime as dt

import pytest

from brainai_operator.clock import (
    parse_rfc3339,
    parse_rfc3339_micro,
    rfc3339,
    rfc3339_micro,
    utcnow,
)

WHEN = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def test_now_is_aware_utc() -> None:
    now = utcnow()
    assert now.utcoffset() == dt.timedelta(0)
    assert abs(now - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_seconds_drop_the_fraction_and_round_trip() -> None:
    assert rfc3339(WHEN) == "2025-01-02T03:04:05Z"
    assert parse_rfc3339("2025-01-02T03:04:05Z") == WHEN.replace(microsecond=0)
    assert parse_rfc3339(rfc3339(WHEN)).tzinfo is not None


def test_other_offsets_are_written_in_utc() -> None:
    plus_two = WHEN.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert rfc3339(plus_two) == "2025-01-02T03:04:05Z"
    assert rfc3339_micro(plus_two) == "2025-01-02T03:04:05.678901Z"


def test_microseconds_round_trip() -> None:
    assert rfc3339_micro(WHEN) == "2025-01-02T03:04:05.678901Z"
    assert parse_rfc3339_micro(rfc3339_micro(WHEN)) == WHEN


def test_micro_parse_accepts_a_numeric_offset() -> None:
    assert parse_rfc3339_micro("2025-01-02T05:04:05.678901+02:00") == WHEN


@pytest.mark.parametrize(
    "text", ["2025-01-02T03:04:05.5Z", "2025-01-02 03:04:05Z", "2025-01-02T03:04:05+00:00"]
)
def test_seconds_parse_takes_only_its_own_shape(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_micro_parse_needs_the_fraction() -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_micro("2025-01-02T03:04:05Z")
