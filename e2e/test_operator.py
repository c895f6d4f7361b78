"""The operator against a real API server, driven the way a user drives it: kubectl and YAML."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.kube import Cluster, KubectlError, wait_until

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = pytest.mark.usefixtures("operator")


# Each kind node offers only the host's CPUs: test clusters request little CPU per pod (limits
# stay the strategy's), so that several fit at once. Tests about the strategies' own engine
# requests pass fit_engine=False; the data tiers' requests are always made small.
TEST_CPU_REQUEST = "50m"
TEST_DATA_MEMORY_REQUEST = "256Mi"  # PostgreSQL's default request is 4Gi a pod
# The smallest shared store (a PostgreSQL primary): what more than one engine pod, or an HPA, needs.
SHARED_STORE: dict[str, Any] = {"postgres": {"enabled": True, "readReplicas": 0}}


def fit(spec: dict[str, Any], fit_engine: bool = True) -> dict[str, Any]:
    """The spec with small requests for every pod it runs (engine CPU, managed data tiers' CPU and memory)."""
    spec = copy.deepcopy(spec)
    for tier in ("engine", "postgres", "redis"):
        section = spec.get(tier) or {}
        data_tier = tier != "engine" and section.get("enabled") and not section.get("external")
        if (tier == "engine" and fit_engine) or data_tier:
            requests = spec.setdefault(tier, {}).setdefault("resources", {}).setdefault("requests", {})
            requests["cpu"] = TEST_CPU_REQUEST
            if data_tier:
                requests["memory"] = TEST_DATA_MEMORY_REQUEST
    return spec


def example(name: str, fit_engine: bool = True) -> dict[str, Any]:
    manifest = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    manifest["spec"] = fit(manifest["spec"], fit_engine)
    return manifest


def cluster_manifest(name: str, spec: dict[str, Any], fit_engine: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "brainai.io/v1alpha1",
        "kind": "BrainAICluster",
        "metadata": {"name": name},
        "spec": fit(spec, fit_engine),
    }


def wait_ready(cluster: Cluster, namespace: str, name: str, timeout: int = 90) -> None:
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", f"brainaicluster/{name}", f"--timeout={timeout}s"
    )


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def engine_container(deploy: dict[str, Any]) -> dict[str, Any]:
    return deploy["spec"]["template"]["spec"]["containers"][0]


def test_example_reaches_ready_with_expected_children(cluster: Cluster, namespace: str) -> None:
    cluster.apply(example("balanced", fit_engine=False), namespace)
    wait_ready(cluster, namespace, "brain-balanced", timeout=300)

    bac = cluster.get("bac", "brain-balanced", namespace)
    status = bac["status"]
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == bac["metadata"]["generation"]
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Progressing", "Degraded", "EngineReady"}
    assert all(c["observedGeneration"] == bac["metadata"]["generation"] for c in status["conditions"])
    assert status["readyReplicas"] == status["replicas"] == 3

    name = "brain-balanced-engine"
    deploy = cluster.get("deployment", name, namespace)
    container = engine_container(deploy)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["initialDelaySeconds"] == 30
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert deploy["metadata"]["ownerReferences"][0]["uid"] == bac["metadata"]["uid"]

    hpa = cluster.get("hpa", name, namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]
    }
    assert targets == {"cpu": 70, "memory": 80}
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 60
    assert behavior["scaleUp"]["policies"] == [{"type": "Percent", "value": 100, "periodSeconds": 15}]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Percent", "value": 10, "periodSeconds": 60}]

    config = cluster.get("configmap", f"{name}-config", namespace)["data"]["engine.toml"]
    assert "workers = 8" in config and 'host = "0.0.0.0"' in config
    assert cluster.get("service", name, namespace)["spec"]["ports"][0]["port"] == 8080
    assert cluster.get("pdb", name, namespace)["spec"]["maxUnavailable"] == 1
    assert cluster.get("networkpolicy", name, namespace) is not None

    # Printer columns, as `kubectl get` shows them.
    row = cluster.kubectl("get", "bac", "brain-balanced", "-n", namespace, "--no-headers").split()
    assert row[:4] == ["brain-balanced", "balanced", "3", "3"] and row[4] == "Ready"


def test_strategy_switch_reshapes_and_rolls_the_engine(cluster: Cluster, namespace: str) -> None:
    cluster.apply(cluster_manifest("shift", {"strategy": "balanced"}), namespace)
    wait_ready(cluster, namespace, "shift")
    before = cluster.get("deployment", "shift-engine", namespace)

    cluster.patch("bac", "shift", namespace, {"spec": {"strategy": "learning-focused"}})

    def rolled(d: dict[str, Any]) -> bool:
        return engine_container(d)["resources"]["limits"]["memory"] == "4Gi"

    after = cluster.wait_for("deployment", "shift-engine", namespace, rolled, timeout=60)
    hash_key = "brainai.io/config-hash"
    assert (
        after["spec"]["template"]["metadata"]["annotations"][hash_key]
        != before["spec"]["template"]["metadata"]["annotations"][hash_key]
    )
    config = cluster.get("configmap", "shift-engine-config", namespace)["data"]["engine.toml"]
    assert "workers = 16" in config and "batch_size = 5000" in config
    assert 'consolidation_frequency = "hourly"' in config
    cluster.wait_for(
        "bac",
        "shift",
        namespace,
        lambda b: (
            b["status"].get("strategy") == "learning-focused"
            and b["status"].get("observedGeneration") == b["metadata"]["generation"]
        ),
    )
    wait_ready(cluster, namespace, "shift")
    events = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=shift", "-o", "json"
    )
    assert "StrategyChanged" in {e["reason"] for e in json.loads(events)["items"]}


def test_scale_subresource_when_autoscaling_is_off(cluster: Cluster, namespace: str) -> None:
    cluster.apply(example("query-focused"), namespace)
    wait_ready(cluster, namespace, "brain-query", timeout=300)
    assert cluster.get("deployment", "brain-query-engine", namespace)["spec"]["replicas"] == 4
    assert cluster.get("hpa", "brain-query-engine", namespace) is None

    cluster.kubectl("scale", "brainaicluster/brain-query", "-n", namespace, "--replicas=6")
    cluster.wait_for("deployment", "brain-query-engine", namespace, lambda d: d["spec"]["replicas"] == 6)
    cluster.wait_for(
        "bac",
        "brain-query",
        namespace,
        lambda b: b["status"].get("replicas") == 6 and b["status"].get("readyReplicas") == 6,
    )

    # While an HPA owns the count, /scale is refused with a reason naming the field.
    cluster.apply(example("balanced"), namespace)
    with pytest.raises(KubectlError) as refused:
        cluster.kubectl("scale", "brainaicluster/brain-balanced", "-n", namespace, "--replicas=5")
    assert "spec.engine.replicas" in refused.value.stderr


def test_turning_autoscaling_on_keeps_replicas_and_leaves_them_to_the_hpa(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        cluster_manifest(
            "handoff", {**SHARED_STORE, "engine": {"replicas": 5}, "autoscaling": {"enabled": False}}
        ),
        namespace,
    )
    wait_ready(cluster, namespace, "handoff", timeout=180)
    scaling = {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 8}}
    cluster.apply(cluster_manifest("handoff", {**SHARED_STORE, **scaling}), namespace)
    cluster.wait_for("hpa", "handoff-engine", namespace, lambda h: h is not None)
    seen = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:  # the count never dips to the API default of 1
        seen.append(cluster.get("deployment", "handoff-engine", namespace)["spec"]["replicas"])
        time.sleep(0.5)
    assert min(seen) >= 2, seen
    deploy = json.loads(
        cluster.kubectl(
            "get", "deployment", "handoff-engine", "-n", namespace, "-o", "json", "--show-managed-fields"
        )
    )
    apply_managers = {
        m["manager"]
        for m in deploy["metadata"]["managedFields"]
        if "f:replicas" in m.get("fieldsV1", {}).get("f:spec", {})
    }
    assert "brain-ai-operator" not in apply_managers


def test_drift_in_owned_fields_is_reverted(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        cluster_manifest("drift", {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}}), namespace
    )
    wait_ready(cluster, namespace, "drift")
    cluster.kubectl(
        "patch",
        "deployment",
        "drift-engine",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(
            [
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil:latest"},
                {"op": "replace", "path": "/spec/replicas", "value": 7},
            ]
        ),
    )
    reverted = cluster.wait_for(
        "deployment",
        "drift-engine",
        namespace,
        lambda d: engine_container(d)["image"] == "brain-ai/engine:0.1.0" and d["spec"]["replicas"] == 1,
        timeout=60,
        what="the operator to revert the hand edit",
    )
    # A field we do not own stays as its owner set it.
    cluster.kubectl("annotate", "deployment", "drift-engine", "-n", namespace, "team.example.com/owner=alice")
    time.sleep(3)
    annotations = cluster.get("deployment", "drift-engine", namespace)["metadata"]["annotations"]
    assert annotations["team.example.com/owner"] == "alice"
    assert reverted["metadata"]["ownerReferences"][0]["kind"] == "BrainAICluster"


def test_converged_reconcile_writes_nothing(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        cluster_manifest("still", {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}}), namespace
    )
    wait_ready(cluster, namespace, "still")
    time.sleep(3)  # let the last status write land

    def versions() -> dict[str, str]:
        kinds = "deployment,service,configmap,pdb,networkpolicy,serviceaccount,brainaicluster"
        items = json.loads(cluster.kubectl("get", kinds, "-n", namespace, "-o", "json"))["items"]
        return {f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}

    before = versions()
    # An unrelated metadata change wakes the reconciler; it must find nothing to do.
    cluster.kubectl("label", "bac", "still", "-n", namespace, "touched=yes")
    touched = versions()
    time.sleep(5)
    after = versions()
    assert after == touched
    changed = {k for k in before if before[k] != touched.get(k)}
    assert changed == {"BrainAICluster/still"}


def test_paused_cluster_is_left_alone_and_says_so(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        cluster_manifest("rest", {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}}), namespace
    )
    wait_ready(cluster, namespace, "rest")
    cluster.patch("bac", "rest", namespace, {"spec": {"paused": True}})
    paused = cluster.wait_for("bac", "rest", namespace, lambda b: b["status"].get("phase") == "Paused")
    assert condition(paused, "Progressing")["reason"] == "Paused"
    cluster.kubectl("scale", "deployment/rest-engine", "-n", namespace, "--replicas=3")
    time.sleep(4)
    assert cluster.get("deployment", "rest-engine", namespace)["spec"]["replicas"] == 3
    cluster.patch("bac", "rest", namespace, {"spec": {"paused": False}})
    cluster.wait_for("deployment", "rest-engine", namespace, lambda d: d["spec"]["replicas"] == 1)
    wait_ready(cluster, namespace, "rest")


def test_deleting_the_cluster_removes_every_child(cluster: Cluster, namespace: str) -> None:
    cluster.apply(example("learning-focused"), namespace)
    wait_ready(cluster, namespace, "brain-learning", timeout=300)
    hpa = cluster.get("hpa", "brain-learning-engine", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)  # cost-optimized
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600

    cluster.kubectl("delete", "bac", "brain-learning", "-n", namespace, "--wait=true", "--timeout=60s")
    selector = "app.kubernetes.io/instance=brain-learning"

    def leftovers() -> list[str]:
        kinds = (
            "deployment,replicaset,statefulset,job,pod,service,configmap,pdb,networkpolicy,serviceaccount,hpa"
        )
        items = json.loads(cluster.kubectl("get", kinds, "-n", namespace, "-l", selector, "-o", "json"))[
            "items"
        ]
        return [f"{i['kind']}/{i['metadata']['name']}" for i in items]

    wait_until(lambda: not leftovers(), timeout=180, what="garbage collection of every child")


def test_invalid_config_override_is_reported_not_applied(cluster: Cluster, namespace: str) -> None:
    """What the schema cannot see (a cross-key rule of the engine) lands in status, not in pods."""
    cluster.apply(
        cluster_manifest("odd", {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}}), namespace
    )
    wait_ready(cluster, namespace, "odd")
    good_hash = cluster.get("bac", "odd", namespace)["status"]["configHash"]
    cluster.patch(
        "bac",
        "odd",
        namespace,
        {"spec": {"engine": {"config": {"memory": {"priority_weights": {"low": 1}}}}}},
    )
    degraded = cluster.wait_for("bac", "odd", namespace, lambda b: b["status"].get("phase") == "Degraded")
    assert condition(degraded, "Degraded")["reason"] == "InvalidConfig"
    assert "memory.priority_weights" in condition(degraded, "Degraded")["message"]
    assert degraded["status"]["configHash"] == good_hash


def test_child_refused_by_the_api_server_is_reported(cluster: Cluster, namespace: str) -> None:
    """Pass-through fields the schema cannot check end up in status when the API server refuses them."""
    spec = {
        "autoscaling": {"enabled": False},
        "engine": {"replicas": 1},
        "scheduling": {"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": ""}]},
    }
    cluster.apply(cluster_manifest("refused", spec), namespace)
    degraded = cluster.wait_for(
        "bac", "refused", namespace, lambda b: b.get("status", {}).get("phase") == "Degraded"
    )
    reason = condition(degraded, "Degraded")
    assert reason["reason"] == "ApplyFailed"
    assert (
        "Deployment/refused-engine" in reason["message"] and "topologySpreadConstraints" in reason["message"]
    )
    cluster.kubectl(
        "patch",
        "bac",
        "refused",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/scheduling"}]',
    )
    wait_ready(cluster, namespace, "refused", timeout=120)


def test_a_pod_the_scheduler_cannot_place_is_named_in_kubectl_get(cluster: Cluster, namespace: str) -> None:
    """Status says why, not just `RollingOut 0/1`: the scheduler's own message reaches the table."""
    spec = {
        "autoscaling": {"enabled": False},
        "engine": {"replicas": 1, "resources": {"requests": {"cpu": "1000"}, "limits": {"cpu": "1000"}}},
    }
    cluster.apply(cluster_manifest("huge", spec, fit_engine=False), namespace)
    bac = cluster.wait_for(
        "bac", "huge", namespace, lambda b: (b.get("status") or {}).get("phase") == "Degraded", timeout=120
    )
    ready = condition(bac, "Ready")
    assert ready["reason"] == "Unschedulable"
    assert "Insufficient cpu" in ready["message"]
    assert condition(bac, "Stalled")["status"] == "True"
    table = cluster.kubectl("get", "bac", "huge", "-n", namespace)
    assert "Unschedulable" in table and "Insufficient cpu" in table
    wide = cluster.kubectl("get", "bac", "huge", "-n", namespace, "-o", "wide")
    assert "ENGINE" in wide.splitlines()[0] and "POSTGRES" in wide.splitlines()[0]
