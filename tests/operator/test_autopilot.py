"""Autopilot: recommendations applied to the resolved settings within bounds, rate-limited, never to spec."""

from __future__ import annotations

import datetime as dt
from typing import Any

from brainai_operator import api
from brainai_operator.advisor import Advice
from brainai_operator.autopilot import plan
from brainai_operator.clock import rfc3339
from brainai_operator.status import advisor_state, compute_status
from brainai_operator.strategies import resolve

T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


SHARED = {"postgres": {"enabled": True}}  # a shared store: several engine pods and an HPA


def spec(**autopilot: Any) -> api.BrainAIClusterSpec:
    return api.BrainAIClusterSpec.model_validate({**SHARED, "autopilot": {"enabled": True, **autopilot}})


def rec(
    cpu: str = "750m",
    memory: str = "1536Mi",
    low: int = 4,
    high: int = 12,
    strategy: str = "learning-focused",
) -> api.Recommendations:
    return api.Recommendations.model_validate(
        {
            "generatedAt": rfc3339(T0),
            "window": "1h",
            "strategy": strategy,
            "resources": {
                "requests": {"cpu": cpu, "memory": memory},
                "limits": {"cpu": "2", "memory": "3Gi"},
            },
            "minReplicas": low,
            "maxReplicas": high,
            "reasons": ["CPU: ..."],
            "evidence": {
                "samples": 100,
                "cpuAverageCores": 0.5,
                "cpuP95Cores": 0.6,
                "cpuPeakCores": 0.9,
                "memoryP95Bytes": 10**9,
                "memoryPeakBytes": 10**9,
                "requestRateAverage": 10.0,
                "requestRatePeak": 20.0,
                "learnShare": 0.8,
                "replicasAverage": 3.0,
                "replicasPeak": 3,
            },
        }
    )


def test_disabled_changes_nothing() -> None:
    s = api.BrainAIClusterSpec()
    r = resolve(s)
    out = plan(s, r, rec(), None, T0)
    assert out.resolved == r and out.changes == []
    assert out.status == api.AutopilotStatus(enabled=False)


def test_enabled_applies_to_resolved_not_spec() -> None:
    s = spec()
    before = s.model_dump()
    out = plan(s, resolve(s), rec(), None, T0)
    assert s.model_dump() == before  # spec untouched: GitOps owns it
    assert out.resolved.resources["requests"] == {"cpu": "750m", "memory": "1536Mi"}
    assert out.resolved.autoscaling is not None
    assert (out.resolved.autoscaling.min_replicas, out.resolved.autoscaling.max_replicas) == (4, 12)
    assert out.resolved.strategy == api.Strategy.BALANCED  # allowStrategyChange is false by default
    assert out.status is not None and out.status.last_change_time == "2025-01-01T12:00:00Z"
    assert "cpu request 500m -> 750m" in out.changes and "minReplicas 3 -> 4" in out.changes


def test_bounds_clamp_every_setting() -> None:
    s = spec(
        bounds={
            "minReplicas": 5,
            "maxReplicas": 8,
            "cpuRequestMax": "600m",
            "memoryRequestMin": "2Gi",
        }
    )
    out = plan(s, resolve(s), rec(), None, T0)
    r = out.resolved
    assert r.resources["requests"] == {"cpu": "600m", "memory": "2Gi"}
    assert r.autoscaling is not None and (r.autoscaling.min_replicas, r.autoscaling.max_replicas) == (5, 8)
    # limits never fall under the requests
    assert r.resources["limits"]["memory"] == "3Gi"


def test_strategy_changes_only_when_allowed() -> None:
    s = spec(allowStrategyChange=True)
    out = plan(s, resolve(s), rec(), None, T0)
    assert out.resolved.strategy == api.Strategy.LEARNING_FOCUSED
    assert out.resolved.engine_config["learning"]["workers"] == 16  # the preset follows the strategy
    assert "strategy balanced -> learning-focused" in out.changes


def test_stable_once_applied() -> None:
    s = spec()
    first = plan(s, resolve(s), rec(), None, T0)
    again = plan(s, resolve(s), rec(), first.status, T0 + dt.timedelta(minutes=5))
    assert again.changes == [] and again.status == first.status
    assert again.resolved == first.resolved


def test_small_moves_are_ignored() -> None:
    s = spec()
    first = plan(s, resolve(s), rec(cpu="750m"), None, T0)
    nudged = plan(s, resolve(s), rec(cpu="800m"), first.status, T0 + dt.timedelta(minutes=30))
    assert nudged.changes == []
    assert nudged.resolved.resources["requests"]["cpu"] == "750m"


def test_rate_limited_to_max_changes_per_hour() -> None:
    s = spec(maxChangesPerHour=2)
    status = None
    applied = []
    for minute, cpu in ((0, "750m"), (10, "1"), (20, "1500m"), (70, "1500m")):
        out = plan(s, resolve(s), rec(cpu=cpu), status, T0 + dt.timedelta(minutes=minute))
        status = out.status
        applied.append(out.resolved.resources["requests"]["cpu"])
        if minute == 20:
            assert out.changes == [] and status is not None and "rate limited" in (status.message or "")
            assert "next change allowed at 2025-01-01T13:00:00Z" in (status.message or "")
    assert applied == ["750m", "1", "1", "1500m"]  # the third change waited for the hour to pass


def test_bounds_edits_take_effect_at_once() -> None:
    s = spec()
    first = plan(s, resolve(s), rec(cpu="2"), None, T0)
    tighter = spec(bounds={"cpuRequestMax": "1"}, maxChangesPerHour=0)
    out = plan(tighter, resolve(tighter), rec(cpu="2"), first.status, T0 + dt.timedelta(minutes=1))
    assert out.resolved.resources["requests"]["cpu"] == "1"


def test_turning_off_returns_to_the_spec() -> None:
    s = spec()
    first = plan(s, resolve(s), rec(), None, T0)
    off = api.BrainAIClusterSpec.model_validate({**SHARED, "autopilot": {"enabled": False}})
    out = plan(off, resolve(off), rec(), first.status, T0)
    assert out.resolved == resolve(off)


def test_no_hpa_leaves_replicas_to_scale() -> None:
    s = api.BrainAIClusterSpec.model_validate(
        {
            **SHARED,
            "autopilot": {"enabled": True},
            "autoscaling": {"enabled": False},
            "engine": {"replicas": 3},
        }
    )
    out = plan(s, resolve(s), rec(), None, T0)
    assert out.resolved.replicas == 3 and out.resolved.autoscaling is None
    assert not any("Replicas" in c for c in out.changes)


def test_metrics_condition_never_affects_ready() -> None:
    deploy = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
    }
    down = Advice(True, False, "PrometheusUnreachable", "cannot reach")
    metrics, recs = advisor_state(down, {})
    status = compute_status(1, "balanced", deploy, {}, "t", metrics=metrics, recommendations=recs)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Ready" and conditions["Ready"]["status"] == "True"
    assert conditions["MetricsAvailable"]["status"] == "False"


def test_advisor_state_keeps_and_drops() -> None:
    r = rec()
    fresh = Advice(True, True, "Available", "usage over 1h", r)
    metrics, got = advisor_state(fresh, {})
    assert metrics == (True, "MetricsFound", "usage over 1h") and got == r
    previous = compute_status(1, "balanced", None, {}, "t", metrics=metrics, recommendations=got)
    # no word from the advisor yet (operator restarted): keep what status says
    assert advisor_state(None, previous) == (metrics, r)
    # Prometheus down: condition False, last recommendation kept
    metrics, got = advisor_state(Advice(True, False, "PrometheusUnreachable", "x"), previous)
    assert metrics == (False, "PrometheusUnreachable", "x") and got == r
    # no Prometheus configured any more: nothing
    assert advisor_state(Advice(False), previous) == (None, None)
