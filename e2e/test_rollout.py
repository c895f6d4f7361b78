"""A strategy switch rolls the engine pods under a steady load with no failed request (kind tier).

What makes it possible, each checked here by a real rollout: readiness (a new pod gets traffic
only once /ready answers), surge with no unavailability (maxSurge 25 %, maxUnavailable 0), and a
preStop pause so a terminating pod keeps serving until every kube-proxy has dropped it.
"""

from __future__ import annotations

import time

import pytest

from e2e.kube import Cluster, wait_until
from e2e.pods import LoadRun, pod_names
from e2e.test_operator import SHARED_STORE, cluster_manifest, wait_ready

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("operator")]

ENGINES = "app.kubernetes.io/instance=roll,app.kubernetes.io/component=engine"


def rolled_out(cluster: Cluster, namespace: str, old: set[str]) -> bool:
    deploy = cluster.get("deployment", "roll-engine", namespace)
    status = deploy.get("status", {})
    done = (
        status.get("observedGeneration") == deploy["metadata"]["generation"]
        and status.get("updatedReplicas") == status.get("replicas") == status.get("availableReplicas") == 2
    )
    return done and not old & set(pod_names(cluster, namespace, ENGINES))


def test_strategy_switch_rolls_the_engines_with_no_failed_request(cluster: Cluster, namespace: str) -> None:
    spec = {
        **SHARED_STORE,
        "strategy": "balanced",
        "autoscaling": {"enabled": False},
        "engine": {"replicas": 2},
    }
    cluster.apply(cluster_manifest("roll", spec), namespace)
    wait_ready(cluster, namespace, "roll", timeout=180)
    old = set(pod_names(cluster, namespace, ENGINES))
    load = ["--target", "http://roll-engine:8080", "--scenario", "mixed", "--phase", "75:20"]
    run = LoadRun(cluster, namespace, load).start()
    try:
        time.sleep(10)
        cluster.patch("bac", "roll", namespace, {"spec": {"strategy": "query-focused"}})
        started = time.monotonic()
        wait_until(lambda: rolled_out(cluster, namespace, old), timeout=150, what="the rollout")
        rollout_s = time.monotonic() - started
        result = run.result(timeout=300)
        assert rollout_s < result["duration_s"] - 15, "the load covered the whole rollout"
        assert result["requests"] > 1000
        assert result["errors"] == 0, result["error_samples"]
    finally:
        run.stop()
    config = cluster.get("configmap", "roll-engine-config", namespace)["data"]["engine.toml"]
    assert "query_cache_size_mb = 1024" in config
