"""The HPA scales the engines on real kubelet CPU usage under a real load, and back (kind tier).

The load generator runs as a pod against the engine Service. The HPA has the scaling guide's
behaviour policies (scale-up 100 % per 15 s after a 60 s window, scale-down 10 % per 60 s); only
the scale-down window is shortened from 300 s to 15 s here so the run takes minutes, not ten.
"""

from __future__ import annotations

import pytest

from e2e.kube import Cluster
from e2e.pods import LoadRun
from e2e.test_operator import SHARED_STORE, cluster_manifest, wait_ready

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("operator")]


def cpu_utilization(hpa: dict) -> int | None:
    for metric in hpa.get("status", {}).get("currentMetrics") or []:
        if metric.get("type") == "Resource" and metric["resource"]["name"] == "cpu":
            return metric["resource"]["current"].get("averageUtilization")
    return None


def test_the_hpa_scales_the_engines_up_under_load_and_back_down(cluster: Cluster, namespace: str) -> None:
    spec = {
        **SHARED_STORE,
        "autoscaling": {
            "minReplicas": 1,
            "maxReplicas": 3,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 15}},
        },
    }
    cluster.apply(cluster_manifest("busy", spec), namespace)
    wait_ready(cluster, namespace, "busy", timeout=180)
    behavior = cluster.get("hpa", "busy-engine", namespace)["spec"]["behavior"]
    assert behavior["scaleUp"]["policies"] == [{"type": "Percent", "value": 100, "periodSeconds": 15}]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 60
    assert behavior["scaleDown"]["policies"] == [{"type": "Percent", "value": 10, "periodSeconds": 60}]
    idle = cluster.wait_for(
        "hpa", "busy-engine", namespace, lambda h: cpu_utilization(h) is not None, timeout=180,
        what="the HPA to read the engine's CPU from metrics-server",
    )  # fmt: skip
    assert idle["status"]["desiredReplicas"] == 1

    load = ["--target", "http://busy-engine:8080", "--scenario", "search", "--phase", "240:120"]
    run = LoadRun(cluster, namespace, load).start()
    try:
        cluster.wait_for(
            "deployment", "busy-engine", namespace,
            lambda d: d["spec"]["replicas"] >= 2 and d.get("status", {}).get("readyReplicas", 0) >= 2,
            timeout=240, what="the HPA to add engine pods under load",
        )  # fmt: skip
        rescales = cluster.items("events", namespace, None)
        reasons = [e["message"] for e in rescales if e["reason"] == "SuccessfulRescale"]
        assert any("cpu resource utilization" in m and "above target" in m for m in reasons), reasons
    finally:
        run.stop()
    peak = cluster.get("deployment", "busy-engine", namespace)["spec"]["replicas"]
    cluster.wait_for(
        "deployment", "busy-engine", namespace, lambda d: d["spec"]["replicas"] < peak, timeout=300,
        what="the HPA to remove engine pods once the load is gone",
    )  # fmt: skip
