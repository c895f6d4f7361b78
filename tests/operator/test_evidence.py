"""The evidence floor, warning-free arithmetic on gappy usage, the report's table and error wording."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import warnings

import numpy as np
import pytest
from prometheus_api_client.exceptions import PrometheusApiClientException

from brainai_operator import api
from brainai_operator.advisor import format_report, table
from brainai_operator.autopilot import plan
from brainai_operator.durations import MIN_EVIDENCE_SECONDS, Window, human_duration
from brainai_operator.prometheus import display_url, http_failure
from brainai_operator.promql import Usage
from brainai_operator.rightsizing import Shortfall, recommend, shortfall, window_shortfall
from brainai_operator.strategies import resolve
from tests.operator.advisor_helpers import BALANCED, current, usage_factory
from tests.operator.test_autopilot import T0, rec, spec

usage = usage_factory(seed=11)


def test_human_duration_keeps_two_units() -> None:
    assert [human_duration(s) for s in (0, 45, 90, 1110, 1800, 3630, 5400, 90061)] == [
        "0s",
        "45s",
        "1m30s",
        "18m30s",
        "30m",
        "1h",
        "1h30m",
        "1d1h",
    ]


def test_the_floor_is_half_an_hour_of_steps_with_data() -> None:
    assert MIN_EVIDENCE_SECONDS == 1800
    hour = Window.of("1h")  # 30 s steps
    assert shortfall(usage(steps=121), hour) is None
    assert shortfall(usage(steps=60), hour) is None  # exactly 30 minutes
    young = shortfall(usage(steps=20), hour)
    assert young == Shortfall("30m", "10m", window_too_short=False)
    assert young.message(("prod", "a"), hour) == (
        "insufficient data: too little engine usage for prod/a in the last 1h (need at least 30m, have 10m)"
    )
    short = Window.of("5m")
    thin = shortfall(usage(steps=151), short)
    assert thin == Shortfall("30m", "5m", window_too_short=True)
    assert str(thin) == "need at least 30m, have 5m"
    assert shortfall(usage(steps=151), short, minimum=0) is None
    assert str(shortfall(usage(steps=3), hour, minimum=0)) == "need at least 5 samples, have 3"


def test_steps_without_pods_count_for_nothing() -> None:
    u = usage(steps=121)
    u.cpu[:, :80] = np.nan  # pods reported CPU in the last 41 steps only: 20m30s
    assert u.samples == 41
    assert str(shortfall(u, Window.of("1h"))) == "need at least 30m, have 20m30s"


def gappy(rng: np.random.Generator, steps: int = 121) -> Usage:
    """Usage with holes of every kind: steps no pod reported in, pods that come and go, no traffic."""
    u = usage(steps=steps)
    pods = u.cpu.shape[0]
    lost = rng.random((pods, steps)) < rng.uniform(0, 0.6)
    lost[:, : rng.integers(0, steps // 2)] = True  # the cluster is younger than the window
    u.cpu[lost] = np.nan
    u.memory[lost | (rng.random((pods, steps)) < 0.1)] = np.nan
    if rng.random() < 0.5:
        u.learn_rps[:] = u.query_rps[:] = 0.0
    if rng.random() < 0.3:
        u.latency_p95[:] = np.nan
    if rng.random() < 0.2:
        u.cpu[np.isfinite(u.cpu)] = 0.0  # idle to the last millicore
    return u


def test_gappy_usage_gives_advice_and_no_warnings() -> None:
    rng = np.random.default_rng(5)
    advised = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (all-NaN slice, empty mean) fails the test
        for _ in range(200):
            u = gappy(rng)
            peak = u.memory_peak
            assert np.isnan(peak[np.all(np.isnan(u.memory), axis=0)]).all()
            r = recommend(u, BALANCED, Window.of("1h"), "t")
            if r is not None:
                advised += 1
                assert r.min_replicas <= r.max_replicas
                format_report(("prod", "a"), BALANCED, r, u, width=30)
    assert advised > 100


def test_no_pods_at_all_is_no_recommendation_without_warnings() -> None:
    u = usage(steps=10)
    empty = Usage(
        times=u.times,
        cpu=np.empty((0, 10)),
        memory=np.empty((0, 10)),
        learn_rps=np.zeros(10),
        query_rps=np.zeros(10),
        other_rps=np.zeros(10),
        latency_p95=np.full(10, np.nan),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(empty.memory_peak).all() and empty.samples == 0
        assert recommend(empty, BALANCED, Window.of("1h"), "t") is None


# Autopilot does not act on a recommendation over a window shorter than the floor.


def test_window_shortfall_reads_the_recommendation() -> None:
    assert window_shortfall(rec()) is None  # 1h
    short = rec().model_copy(update={"window": "5m"})
    assert str(window_shortfall(short)) == "need at least 30m, have 5m"


def test_autopilot_skips_thin_evidence_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    s = spec()
    first = plan(s, resolve(s), rec(cpu="750m"), None, T0)
    assert first.changes  # a 1h recommendation is applied
    thin = rec(cpu="2").model_copy(update={"window": "5m"})
    with caplog.at_level(logging.INFO, logger="brainai_operator.autopilot"):
        later = plan(s, resolve(s), thin, first.status, T0 + dt.timedelta(hours=2))
    assert later.changes == []
    assert later.resolved.resources["requests"]["cpu"] == "750m"  # what was applied stays
    assert later.status is not None and first.status is not None
    assert later.status.applied == first.status.applied
    assert later.status.message == (
        "not applied: too little usage behind the recommendation (need at least 30m, have 5m)"
    )
    assert any("not applied" in r.getMessage() and "5m" in r.getMessage() for r in caplog.records)


# The report's table.


def test_table_columns_fit_their_longest_cell() -> None:
    lines = table([("name", "value", ""), ("memoryGrowthBytesPerHour", "12096225", "*"), ("x", "y" * 30, "")])
    # Each column as wide as its longest cell, two spaces between: 2 + 24 + 2, then + 30 + 2.
    assert [line.index(cell) for line, cell in zip(lines, ("value", "12096225", "y"), strict=True)] == [
        28
    ] * 3
    assert lines[1].index("*") == 60 and lines[0] == "  name                      value"


def test_report_separates_long_values() -> None:
    u = usage(learn=1, query=9)
    pilot = current(strategy=api.Strategy.LEARNING_FOCUSED, memory_request=123456789 * 1024)
    r = recommend(u, pilot, Window.of("1h"), "t")
    assert r is not None and r.strategy == api.Strategy.QUERY_FOCUSED
    text = format_report(("prod", "a"), pilot, r, u)
    row = next(line for line in text.splitlines() if line.lstrip().startswith("strategy"))
    assert re.fullmatch(r"  strategy {2,}learning-focused {2,}query-focused {2,}\*", row), row
    memory = next(line for line in text.splitlines() if line.lstrip().startswith("memory request"))
    assert re.fullmatch(r"  memory request {2,}120564Mi {2,}\S+ {2,}\*", memory), memory


# Errors name the host and a reason, never the query.


def test_http_failures_read_as_status_and_prometheus_error() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'invalid parameter "query": parse error'}
    refused = PrometheusApiClientException(f"HTTP Status Code 400 ({json.dumps(body).encode()!r})")
    assert http_failure(refused) == 'HTTP 400 Bad Request: invalid parameter "query": parse error'
    page = PrometheusApiClientException("HTTP Status Code 503 (b'<html><body>busy</body></html>')")
    assert http_failure(page) == "HTTP 503 Service Unavailable"


def test_display_url_drops_credentials_and_queries() -> None:
    assert display_url("https://user:secret@prom.example:9443/prometheus/?x=1") == (
        "https://prom.example:9443/prometheus"
    )
    assert display_url("localhost:9090") == "localhost:9090"


def test_settings_default_to_the_floor() -> None:
    from brainai_operator.prometheus import AdvisorSettings

    assert AdvisorSettings().min_evidence == MIN_EVIDENCE_SECONDS
    assert dataclasses.replace(AdvisorSettings(), min_evidence=0).min_evidence == 0
