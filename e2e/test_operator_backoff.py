"""A cluster the API server refuses every time: its failed passes per window stay flat at the backoff's
cap instead of growing, and a healthy cluster applied meanwhile is not held up behind it.

The refusal is a real one: a ResourceQuota that allows no NetworkPolicy in the namespace, so every
apply of the cluster's NetworkPolicy is forbidden by the API server's quota admission."""

from __future__ import annotations

import time

import pytest

from e2e.conftest import run_operator
from e2e.kube import Cluster, wait_until
from e2e.test_operator import cluster_manifest, condition, wait_ready
from e2e.test_operator_cache import counters

CAP_S = 4.0  # the operator's --max-backoff here; a retry waits 0.8-1x of it once capped
WINDOW_S = 12.0
FAILED = 'brain_ai_operator_reconciles_total{result="error"}'


def failed_passes(port: int) -> float:
    return counters(port).get(FAILED, 0.0)


@pytest.mark.kwok  # the healthy cluster's timing is the operator's, not a real image pull's
def test_a_permanently_failing_cluster_retries_at_a_flat_rate_and_delays_no_other(
    cluster: Cluster, namespace: str, crd: str
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-network-policies"},
        "spec": {"hard": {"count/networkpolicies.networking.k8s.io": "0"}},
    }
    cluster.apply(quota, namespace)
    wait_until(
        lambda: (cluster.get("resourcequota", "no-network-policies", namespace).get("status") or {}).get(
            "hard"
        ),
        timeout=60,
        what="the quota's status",
    )
    healthy = f"{namespace}-ok"
    cluster.kubectl("create", "namespace", healthy)
    args = ["--max-backoff", str(CAP_S), "--namespace", namespace, "--namespace", healthy]
    try:
        with run_operator(cluster.env, *args) as proc:
            port: int = proc.metrics_port  # type: ignore[attr-defined]
            cluster.apply(cluster_manifest("broken", {}), namespace)
            # 2 s, then 4 s (the cap): past the third failure every retry waits the capped delay.
            wait_until(lambda: failed_passes(port) >= 3, timeout=60, what="three failed passes")
            windows: list[float] = []
            ready_after = None
            for i in range(4):
                start, at = failed_passes(port), time.monotonic()
                if i == 1:
                    cluster.apply(cluster_manifest("fine", {}), healthy)
                    wait_ready(cluster, healthy, "fine", timeout=60)
                    ready_after = time.monotonic() - at
                time.sleep(max(0.0, WINDOW_S - (time.monotonic() - at)))
                windows.append(failed_passes(port) - start)
            broken = cluster.get("bac", "broken", namespace)
            print(
                f"failed passes per {WINDOW_S:.0f} s: {windows}; "
                f"the healthy cluster Ready after {ready_after:.1f} s"
            )
            # One retry per capped delay (12 s / 3.2-4 s: 3 or 4), a pass's own time aside; never growing.
            assert all(2 <= n <= WINDOW_S / (0.8 * CAP_S) + 1 for n in windows), windows
            assert max(windows) - min(windows) <= 2, windows
            assert ready_after is not None and ready_after < 30
            ready = condition(broken, "Ready")
            assert broken["status"]["phase"] == "Degraded" and ready["status"] == "False"
            assert "quota" in ready["message"].lower(), ready
            # Gone while this operator runs: clusters and children still terminating when the next
            # module's operator starts would be passes of its idle window.
            cluster.kubectl("delete", "namespace", namespace, healthy, "--timeout=180s")
    finally:
        cluster.kubectl("delete", "namespace", healthy, "--wait=false", "--ignore-not-found")
