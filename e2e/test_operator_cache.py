"""The operator's informers on a real API server: a deleted child of every kind comes back within
seconds (not at the next resync), a converged cluster costs no API request while idle, and status
updates of an HPA that leave its replica counts alone trigger no pass. Figures come from the
operator's own metrics."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator

import pytest

from e2e.conftest import run_operator
from e2e.kube import Cluster, wait_until
from e2e.test_operator import cluster_manifest, wait_ready

# A shared store the operator does not run: an HPA is made and engine pods need no data tier.
EXTERNAL_DB = {"postgres": {"enabled": True, "external": {"secretRef": {"name": "db", "key": "url"}}}}
CHILDREN = [
    ("serviceaccount", "engine"),
    ("configmap", "engine-config"),
    ("service", "engine"),
    ("poddisruptionbudget", "engine"),
    ("networkpolicy", "engine"),
    ("horizontalpodautoscaler", "engine"),
    ("deployment", "engine"),
]
REPAIR_BOUND_S = 10  # the operator under test resyncs every 300 s: only a watch brings a child back in time


@pytest.fixture(scope="module")
def metrics_port(cluster: Cluster, crd: str) -> Iterator[int]:
    """A fresh operator for this module (its counters are this module's), resyncing rarely."""
    with run_operator(cluster.env, "--resync-seconds", "300") as proc:
        yield proc.metrics_port  # type: ignore[attr-defined]


def counters(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for name, labels, value in re.findall(
        r"^(brain_ai_operator_\w+_total)(\{[^}]*\})? ([0-9.e+-]+)$", text, re.M
    ):
        out[name + (labels or "")] = float(value)
    return out


def requests_beyond_watches(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {
        k: after[k] - before.get(k, 0)
        for k in after
        if k.startswith("brain_ai_operator_api_requests_total")
        and 'verb="watch"' not in k
        and after[k] != before.get(k, 0)
    }


def wait_children(cluster: Cluster, namespace: str, name: str) -> None:
    """Until every child exists (engine pods of the missing external store are never Ready on kind)."""

    def made() -> bool:
        return all(
            cluster.kubectl(
                "get", kind, f"{name}-{suffix}", "-n", namespace, "--ignore-not-found", "-o", "name"
            )
            for kind, suffix in CHILDREN
        )

    wait_until(made, timeout=90, interval=0.5, what=f"the children of {name}")


def quiet(port: int, seconds: float = 5.0) -> dict[str, float]:
    """Counters once no pass has run for `seconds`."""
    last = counters(port)
    still_since = time.monotonic()
    while time.monotonic() - still_since < seconds:
        time.sleep(0.5)
        now = counters(port)
        passes = {k: v for k, v in now.items() if k.startswith("brain_ai_operator_reconciles_total")}
        if passes != {k: v for k, v in last.items() if k.startswith("brain_ai_operator_reconciles_total")}:
            still_since = time.monotonic()
        last = now
    return last


@pytest.mark.kwok  # engine pods of an external store that does not exist are Ready only under kwok
def test_an_idle_converged_cluster_costs_no_request_and_hpa_status_triggers_no_pass(
    cluster: Cluster, namespace: str, metrics_port: int
) -> None:
    cluster.apply(cluster_manifest("idle", EXTERNAL_DB), namespace)
    wait_ready(cluster, namespace, "idle")
    before = quiet(metrics_port)  # first in this module: no other namespace is being deleted
    hpa_before = cluster.get("hpa", "idle-engine", namespace)["metadata"]["resourceVersion"]
    for value in (41, 57, 63, 48):  # metric readings change, replica counts do not, as in a busy fleet
        reading = {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": value}}}
        cluster.kubectl(
            "patch",
            "hpa",
            "idle-engine",
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"currentMetrics": [reading]}}),
        )
        time.sleep(1)
    time.sleep(16)  # and a few of the local cluster's 5 s HPA sync periods
    after = counters(metrics_port)
    assert cluster.get("hpa", "idle-engine", namespace)["metadata"]["resourceVersion"] != hpa_before
    assert requests_beyond_watches(before, after) == {}
    passes = {
        k: after[k] - before.get(k, 0) for k in after if k.startswith("brain_ai_operator_reconciles_total")
    }
    assert all(v == 0 for v in passes.values()), passes


def test_a_deleted_child_of_every_kind_is_back_within_seconds(
    cluster: Cluster, namespace: str, metrics_port: int
) -> None:
    cluster.apply(cluster_manifest("repair", EXTERNAL_DB), namespace)
    wait_children(cluster, namespace, "repair")
    for kind, suffix in CHILDREN:
        name = f"repair-{suffix}"
        uid = cluster.get(kind, name, namespace)["metadata"]["uid"]
        started = time.monotonic()
        cluster.kubectl("delete", kind, name, "-n", namespace, "--wait=false")

        def back(kind: str = kind, name: str = name, uid: str = uid) -> bool:
            found = cluster.kubectl(
                "get", kind, name, "-n", namespace, "-o", "jsonpath={.metadata.uid}", "--ignore-not-found"
            )
            return bool(found) and found != uid

        wait_until(back, timeout=REPAIR_BOUND_S, interval=0.2, what=f"{kind}/{name} to be re-created")
        print(f"{kind}: back after {time.monotonic() - started:.2f}s")


def test_an_edited_child_is_reverted_within_seconds(
    cluster: Cluster, namespace: str, metrics_port: int
) -> None:
    cluster.apply(cluster_manifest("edit", EXTERNAL_DB), namespace)
    wait_children(cluster, namespace, "edit")
    cluster.kubectl(
        "patch",
        "configmap",
        "edit-engine-config",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"data": {"engine.toml": "edited = true\\n"}}',
    )
    wait_until(
        lambda: (
            "edited" not in cluster.get("configmap", "edit-engine-config", namespace)["data"]["engine.toml"]
        ),
        timeout=REPAIR_BOUND_S,
        interval=0.2,
        what="the hand edit to be reverted",
    )
