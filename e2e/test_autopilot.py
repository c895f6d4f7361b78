"""Recommendations and autopilot through a real reconcile on the real API server.

The advisor's result is handed to `reconcile_cluster` directly (the controller does the same), so
this checks what reaches the API: typed status the CRD schema accepts, the MetricsAvailable
condition, the Deployment and HPA autopilot changes, its events, and a spec left untouched.
"""

from __future__ import annotations

import datetime as dt

from kubernetes import config as k8s_config

from brainai_operator import api
from brainai_operator.advisor import Advice
from brainai_operator.client import Kube
from brainai_operator.reconcile import reconcile_cluster
from e2e.kube import Cluster
from e2e.test_operator import SHARED_STORE, cluster_manifest, condition, engine_container

T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def recommendation() -> api.Recommendations:
    return api.Recommendations.model_validate(
        {
            "generatedAt": "2025-01-01T12:00:00Z",
            "window": "1h",
            "strategy": "query-focused",
            "resources": {
                "requests": {"cpu": "750m", "memory": "1536Mi"},
                "limits": {"cpu": "2", "memory": "3Gi"},
            },
            "minReplicas": 4,
            "maxReplicas": 12,
            "reasons": ["CPU: currently using 90% of the 0.5 cores request on average"],
            "evidence": {
                "samples": 120,
                "cpuAverageCores": 0.45,
                "cpuP95Cores": 0.6,
                "cpuPeakCores": 0.9,
                "memoryP95Bytes": 1200000000,
                "memoryPeakBytes": 1300000000,
                "requestRateAverage": 40.0,
                "requestRatePeak": 90.0,
                "learnShare": 0.1,
                "latencyP95Seconds": 0.02,
                "replicasAverage": 3.0,
                "replicasPeak": 3,
            },
        }
    )


def test_autopilot_applies_recommendations_within_bounds(cluster: Cluster, crd: str, namespace: str) -> None:
    kube = Kube(k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    spec = {**SHARED_STORE, "autopilot": {"enabled": True, "bounds": {"maxReplicas": 10}}}
    cluster.apply(cluster_manifest("pilot", spec, fit_engine=False), namespace)
    advice = Advice(True, True, "Available", "usage over the last 1h", recommendation())
    reconcile_cluster(kube, namespace, "pilot", advice, clock=lambda: T0)

    obj = cluster.get("brainaicluster", "pilot", namespace)
    defaults = {"allowStrategyChange": False, "maxChangesPerHour": 2}
    assert obj["spec"]["autopilot"] == {**spec["autopilot"], **defaults}
    assert "engine" not in obj["spec"] or "resources" not in obj["spec"]["engine"]  # spec untouched
    assert condition(obj, "MetricsAvailable")["status"] == "True"
    recs = obj["status"]["recommendations"]
    assert recs["strategy"] == "query-focused" and recs["evidence"]["learnShare"] == 0.1
    pilot = recs["autopilot"]
    assert pilot["enabled"] and pilot["lastChangeTime"] == "2025-01-01T12:00:00Z"
    assert pilot["applied"]["maxReplicas"] == 10  # the ceiling wins over the recommendation's 12
    assert obj["status"]["strategy"] == "balanced"  # strategy changes are not allowed

    deploy = cluster.get("deployment", "pilot-engine", namespace)
    assert engine_container(deploy)["resources"]["requests"] == {"cpu": "750m", "memory": "1536Mi"}
    hpa = cluster.get("hpa", "pilot-engine", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 10)
    reasons = {e["reason"] for e in cluster.items("events", namespace)}
    assert "AutopilotChanged" in reasons

    # Prometheus goes away: the condition says so, the applied settings stay, nothing else breaks.
    down = Advice(True, False, "PrometheusUnreachable", "cannot reach Prometheus at http://127.0.0.1:1")
    later = T0 + dt.timedelta(minutes=5)
    reconcile_cluster(kube, namespace, "pilot", down, clock=lambda: later)
    obj = cluster.get("brainaicluster", "pilot", namespace)
    assert condition(obj, "MetricsAvailable")["reason"] == "PrometheusUnreachable"
    assert obj["status"]["recommendations"]["autopilot"]["applied"]["maxReplicas"] == 10
    hpa = cluster.get("hpa", "pilot-engine", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 10)

    # Autopilot off: back to exactly what the spec says.
    off = {**SHARED_STORE, "autopilot": {"enabled": False}}
    cluster.apply(cluster_manifest("pilot", off, fit_engine=False), namespace)
    reconcile_cluster(kube, namespace, "pilot", down, clock=lambda: later)
    deploy = cluster.get("deployment", "pilot-engine", namespace)
    assert engine_container(deploy)["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    hpa = cluster.get("hpa", "pilot-engine", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
