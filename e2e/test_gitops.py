"""Status as GitOps tools read it: `kubectl wait` and the kstatus library (Flux, kpt)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from e2e.kube import Cluster
from e2e.test_operator import cluster_manifest, wait_ready

pytestmark = pytest.mark.usefixtures("operator")


def kstatus(cluster: Cluster, obj: dict[str, Any]) -> str:
    binary = (cluster.bin_dir / "kstatus") if cluster.bin_dir else "kstatus"
    out = subprocess.run([str(binary)], input=json.dumps(obj), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["status"]


def test_kstatus_reads_current_in_progress_and_failed(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        cluster_manifest("kst", {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}}), namespace
    )
    wait_ready(cluster, namespace, "kst")  # kubectl wait is the first consumer
    live = cluster.get("bac", "kst", namespace)
    assert kstatus(cluster, live) == "Current"

    # A spec the operator has not observed yet (generation ahead of observedGeneration).
    unseen = {**live, "metadata": {**live["metadata"], "generation": live["metadata"]["generation"] + 1}}
    assert kstatus(cluster, unseen) == "InProgress"

    cluster.patch(
        "bac",
        "kst",
        namespace,
        {"spec": {"engine": {"config": {"memory": {"priority_weights": {"low": 1}}}}}},
    )
    degraded = cluster.wait_for("bac", "kst", namespace, lambda b: b["status"].get("phase") == "Degraded")
    assert kstatus(cluster, degraded) == "Failed"

    cluster.kubectl(
        "patch",
        "bac",
        "kst",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/engine/config"}]',
    )
    wait_ready(cluster, namespace, "kst")
    assert kstatus(cluster, cluster.get("bac", "kst", namespace)) == "Current"
