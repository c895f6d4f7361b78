"""Faults in the data tiers under a steady load, with real pods (kind tier).

The engines' contract when a store fails: reads go on, writes that cannot be made durable answer
503 with Retry-After (never a silent loss), and nothing acknowledged is lost. Redis is a cache and
change bus the engines can do without for a while, so losing a Redis node costs clients nothing.
"""

from __future__ import annotations

import re
import time

import pytest

from e2e.kube import Cluster, wait_until
from e2e.pods import LoadRun, pod_names, psql, redis_cli
from e2e.test_operator import cluster_manifest, wait_ready

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("operator")]

NAME = "faulty"
SPEC = {
    "autoscaling": {"enabled": False},
    "engine": {"replicas": 2},
    "postgres": {"enabled": True, "readReplicas": 2},
    "redis": {"enabled": True, "masters": 3, "replicasPerMaster": 1},
}
SERVICE = f"http://{NAME}-engine:8080"
# The nodes (StatefulSet pods), not the pods of the Job that forms the cluster.
NODE_POD = "statefulset.kubernetes.io/pod-name"
REDIS = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=redis,{NODE_POD}"
PRIMARY = f"{NAME}-postgres-primary-0"


@pytest.fixture(scope="module")
def faulty(cluster: Cluster, crd: str, operator: object, module_namespace: str) -> str:
    cluster.apply(cluster_manifest(NAME, SPEC), module_namespace)
    wait_ready(cluster, module_namespace, NAME, timeout=420)
    return module_namespace


def ready(pod: dict | None) -> bool:
    conditions = (pod or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def redis_healthy(cluster: Cluster, namespace: str) -> bool:
    nodes = pod_names(cluster, namespace, REDIS)
    return len(nodes) == 6 and all(
        "cluster_state:ok" in redis_cli(cluster, namespace, n, "cluster", "info") for n in nodes
    )


def node_table(cluster: Cluster, namespace: str, pod: str) -> dict[str, tuple[str, str]]:
    """`cluster nodes` as seen from `pod`: node id -> (ip, flags)."""
    rows = {}
    for line in redis_cli(cluster, namespace, pod, "cluster", "nodes").splitlines():
        node_id, addr, flags = line.split()[:3]
        rows[node_id] = (addr.split(":")[0], flags)
    return rows


def test_postgres_primary_lost_reads_go_on_writes_wait_and_no_acknowledged_write_is_lost(
    cluster: Cluster, faulty: str
) -> None:
    args = ["--target", SERVICE, "--scenario", "mixed", "--phase", "60:10", "--workers", "16"]
    run = LoadRun(cluster, faulty, [*args, "--retry-503", "--acked-file", "/tmp/acked"]).start()
    time.sleep(15)
    uid = cluster.get("pod", PRIMARY, faulty)["metadata"]["uid"]
    cluster.kubectl("delete", "pod", PRIMARY, "-n", faulty, "--wait=false")
    cluster.wait_for(
        "pod",
        PRIMARY,
        faulty,
        lambda p: p["metadata"]["uid"] != uid and ready(p),
        timeout=180,
        what="the primary's new pod to be Ready",
    )
    result = run.result(timeout=300)
    try:
        # Writes were refused for a while with 503 + Retry-After; reads never failed.
        assert result["status_503"] > 0, result["status_counts"]
        assert result["errors"] == 0, result["error_samples"]
        assert result["endpoints"]["memory_search"]["errors"] == 0
        last_503 = max(b["t"] for b in result["timeline"] if b["status_503"])
        after = [b for b in result["timeline"] if b["t"] > last_503 + 2]
        assert after and sum(b["ok"] for b in after) > 0, "writes resumed once the primary was back"

        acked = run.file("/tmp/acked").splitlines()
        assert len(acked) > 100
        stored = set(psql(cluster, faulty, PRIMARY, "select content from memories").splitlines())
        lost = [text for text in acked if text not in stored]
        assert lost == [], f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}"
    finally:
        run.stop()


def test_redis_master_lost_the_cluster_fails_over_and_the_node_rejoins_under_its_new_ip(
    cluster: Cluster, faulty: str
) -> None:
    nodes = pod_names(cluster, faulty, REDIS)
    master = next(
        n for n in nodes if re.search(r"myself,master", redis_cli(cluster, faulty, n, "cluster", "nodes"))
    )
    old = cluster.get("pod", master, faulty)
    my_id = redis_cli(cluster, faulty, master, "cluster", "myid").strip()
    run = LoadRun(cluster, faulty, ["--target", SERVICE, "--scenario", "mixed", "--phase", "50:10"]).start()
    try:
        time.sleep(10)
        cluster.kubectl("delete", "pod", master, "-n", faulty, "--wait=false")
        back = cluster.wait_for(
            "pod",
            master,
            faulty,
            lambda p: p["metadata"]["uid"] != old["metadata"]["uid"] and ready(p),
            timeout=180,
            what=f"{master} to come back",
        )
        new_ip = back["status"]["podIP"]
        assert new_ip != old["status"]["podIP"]
        wait_until(lambda: redis_healthy(cluster, faulty), timeout=120, what="cluster_state:ok everywhere")
        # Every node knows the returning node by its new IP; it came back as a replica, since its
        # replica took over its slots while it was gone.
        for node in nodes:
            wait_until(
                lambda n=node: node_table(cluster, faulty, n)[my_id][0] == new_ip,
                timeout=60,
                what=f"{node} to see {master} at {new_ip}",
            )
        assert "slave" in node_table(cluster, faulty, master)[my_id][1]
        result = run.result(timeout=300)
        # The engines treat Redis as a cache and change bus they can do without: no client errors.
        assert result["errors"] == 0, result["error_samples"]
    finally:
        run.stop()


def test_every_redis_pod_lost_at_once_the_cluster_reforms_with_its_data(cluster: Cluster, faulty: str):
    nodes = pod_names(cluster, faulty, REDIS)
    # The nodes keep their data (append-only file) and nodes.conf on their volumes; their peers'
    # addresses there are all stale once every pod has a new IP.
    assert "OK" in redis_cli(cluster, faulty, nodes[0], "-c", "set", "e2e:survivor", "still-here")
    ips = {n: cluster.get("pod", n, faulty)["status"]["podIP"] for n in nodes}
    cluster.kubectl("delete", "pods", "-n", faulty, "-l", REDIS, "--wait=false")

    def moved(pod: str) -> bool:
        now = cluster.get("pod", pod, faulty)
        return ready(now) and now["status"]["podIP"] != ips[pod]

    wait_until(
        lambda: all(moved(n) for n in nodes),
        timeout=240,
        what="every Redis pod to come back under a new IP",
    )
    wait_until(lambda: redis_healthy(cluster, faulty), timeout=180, what="cluster_state:ok everywhere")
    assert "still-here" in redis_cli(cluster, faulty, nodes[0], "-c", "get", "e2e:survivor")
