"""Two operator replicas: one leads through a Lease, the other stands by and takes over."""

from __future__ import annotations

import urllib.request

from e2e.conftest import run_operator
from e2e.kube import Cluster
from e2e.test_operator import cluster_manifest, engine_container, wait_ready


def holder(cluster: Cluster, namespace: str) -> str:
    lease = cluster.get("lease", "brain-ai-operator", namespace)
    return (lease or {}).get("spec", {}).get("holderIdentity") or ""


def test_one_replica_leads_and_a_standby_takes_over(cluster: Cluster, crd: str, namespace: str) -> None:
    args = ("--leader-elect", "--lease-namespace", namespace, "--lease-name", "brain-ai-operator")
    with run_operator({**cluster.env, "POD_NAME": "replica-a"}, *args) as first:
        assert holder(cluster, namespace) == "replica-a"
        with run_operator({**cluster.env, "POD_NAME": "replica-b"}, *args) as second:
            # The standby is alive (its liveness answers) but does not lead.
            with urllib.request.urlopen(f"http://127.0.0.1:{second.health_port}/healthz", timeout=5) as resp:
                assert resp.read().strip() == b"standby"
            cluster.apply(
                cluster_manifest("led", {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}}),
                namespace,
            )
            wait_ready(cluster, namespace, "led")
            assert holder(cluster, namespace) == "replica-a"

            first.terminate()  # a clean shutdown releases the lease
            first.wait(timeout=30)
            cluster.wait_for(
                "lease",
                "brain-ai-operator",
                namespace,
                lambda lease: lease["spec"].get("holderIdentity") == "replica-b",
                timeout=30,
                what="the standby to take the lease",
            )
            cluster.patch("bac", "led", namespace, {"spec": {"engine": {"image": "brain-ai/engine:0.1.1"}}})
            cluster.wait_for(
                "deployment",
                "led-engine",
                namespace,
                lambda d: engine_container(d)["image"] == "brain-ai/engine:0.1.1",
                timeout=60,
                what="the new leader to reconcile",
            )
            assert second.poll() is None
