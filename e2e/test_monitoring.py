"""spec.monitoring on the harness: objects appear once the Prometheus Operator's CRDs do."""

from __future__ import annotations

import pytest
import yaml

from e2e.kube import CACHE, VERSIONS, Cluster
from e2e.test_operator import cluster_manifest, wait_ready

pytestmark = pytest.mark.usefixtures("operator")

CRDS = CACHE / "manifests" / f"prometheus-operator-crds-{VERSIONS['PROMETHEUS_OPERATOR_VERSION']}.yaml"
NAMES = ["servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"]


def test_monitoring_objects_follow_the_crds(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("delete", "crd", *NAMES, "--ignore-not-found", "--wait=true")
    spec = {
        "autoscaling": {"enabled": False},
        "engine": {"replicas": 1},
        "monitoring": {
            "enabled": True,
            "labels": {"release": "prometheus"},
            "alerts": {"p95LatencySeconds": 0.5},
        },
    }
    cluster.apply(cluster_manifest("watched", spec), namespace)
    wait_ready(cluster, namespace, "watched")  # no Prometheus Operator: nothing to create, still Ready

    cluster.kubectl("apply", "--server-side", "-f", str(CRDS))
    for name in NAMES:
        cluster.wait_established(name)
    monitor = cluster.wait_for(
        "servicemonitor",
        "watched-engine",
        namespace,
        lambda m: True,
        timeout=90,
        what="the ServiceMonitor once its CRD exists",
    )
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    rule = cluster.wait_for("prometheusrule", "watched-engine", namespace, lambda r: True, timeout=30)
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert set(alerts) == {"HighCPUUsage", "HighMemoryUsage", "SlowResponseTime"}
    assert alerts["SlowResponseTime"]["expr"].endswith("> 0.5")

    cluster.patch("bac", "watched", namespace, {"spec": {"monitoring": {"enabled": False}}})
    cluster.wait_gone("servicemonitor", "watched-engine", namespace)
    cluster.wait_gone("prometheusrule", "watched-engine", namespace)
    assert yaml.safe_load(cluster.kubectl("get", "bac", "watched", "-n", namespace, "-o", "yaml"))["status"]
