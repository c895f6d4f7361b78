"""The informers' cache: which changes can matter to a pass, when an apply can be skipped, and how
lists and watch events keep it equal to the server. The list/watch threads themselves run against a
real API server in e2e/test_fleet.py."""

from __future__ import annotations

import copy
from typing import Any

from brainai_operator.informers import CLUSTER_KIND, ObjectCache, owner_of, project, relevant_view
from brainai_operator.resources.common import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL

DEPLOYMENT = ("apps/v1", "Deployment")
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")


def child(kind: str = "Deployment", version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": "brain-engine",
            "namespace": "prod",
            "resourceVersion": str(version),
            "generation": 1,
            "labels": {INSTANCE_LABEL: "brain", MANAGED_BY_LABEL: MANAGED_BY},
            "managedFields": [{"manager": "brain-ai-operator"}],
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "engine", "image": "e:1"}]}}},
        **extra,
    }


def synced_cache(*objects: dict[str, Any], kind: tuple[str, str] = DEPLOYMENT) -> ObjectCache:
    cache = ObjectCache()
    cache.expect(kind, None)
    cache.replace_all(kind, None, list(objects))
    return cache


def test_reads_of_a_kind_before_its_first_list_say_so() -> None:
    cache = ObjectCache()
    cache.expect(DEPLOYMENT, None)
    assert cache.lookup(DEPLOYMENT, "prod", "brain-engine") == (False, None)
    assert cache.select(DEPLOYMENT, "prod", {}) is None
    cache.replace_all(DEPLOYMENT, None, [])
    assert cache.lookup(DEPLOYMENT, "prod", "brain-engine") == (True, None)  # synced: known absent


def test_a_kind_listed_per_namespace_is_synced_once_every_namespace_is() -> None:
    cache = ObjectCache()
    for ns in ("a", "b"):
        cache.expect(DEPLOYMENT, ns)
    cache.replace_all(DEPLOYMENT, "a", [])
    assert not cache.synced(DEPLOYMENT)
    cache.replace_all(DEPLOYMENT, "b", [child()])
    assert cache.synced(DEPLOYMENT)
    cache.replace_all(DEPLOYMENT, "a", [])  # a relist of one namespace keeps the other's objects
    assert cache.lookup(DEPLOYMENT, "prod", "brain-engine")[1] is not None


def test_hpa_metric_readings_do_not_matter_but_its_replica_counts_do() -> None:
    hpa = child("HorizontalPodAutoscaler", status={"currentReplicas": 3, "desiredReplicas": 3})
    cache = synced_cache(hpa, kind=HPA)
    reading = copy.deepcopy(hpa)
    reading["metadata"]["resourceVersion"] = "2"
    reading["status"]["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu"}}]
    reading["status"]["conditions"] = [
        {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric"}
    ]
    assert not cache.upsert(HPA, reading)  # how its metrics went is not ours to act on
    later = copy.deepcopy(reading)
    later["metadata"]["resourceVersion"] = "3"
    later["status"]["currentMetrics"][0]["resource"]["current"] = {"averageUtilization": 55}
    later["status"]["conditions"][0].update(status="True", reason="ValidMetricFound")
    assert not cache.upsert(HPA, later)
    scaled = copy.deepcopy(later)
    scaled["metadata"]["resourceVersion"] = "4"
    scaled["status"]["desiredReplicas"] = 5
    assert cache.upsert(HPA, scaled)


def test_a_clusters_own_status_never_matters_but_its_spec_and_labels_do() -> None:
    cluster = {
        "apiVersion": CLUSTER_KIND[0],
        "kind": CLUSTER_KIND[1],
        "metadata": {"name": "brain", "namespace": "prod", "resourceVersion": "1", "generation": 1},
        "spec": {"strategy": "balanced"},
    }
    with_status = {
        **cluster,
        "status": {"phase": "Ready"},
        "metadata": {**cluster["metadata"], "resourceVersion": "2"},
    }
    assert relevant_view(CLUSTER_KIND[1], cluster) == relevant_view(CLUSTER_KIND[1], with_status)
    edited = copy.deepcopy(cluster)
    edited["spec"]["strategy"] = "query-focused"
    assert relevant_view(CLUSTER_KIND[1], cluster) != relevant_view(CLUSTER_KIND[1], edited)
    assert owner_of(CLUSTER_KIND, edited) == ("prod", "brain", 1)
    assert owner_of(DEPLOYMENT, child()) == ("prod", "brain", None)


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = synced_cache(child(version=5))
    stale = child(version=4)
    stale["spec"]["replicas"] = 1
    assert not cache.upsert(DEPLOYMENT, stale)
    assert cache.lookup(DEPLOYMENT, "prod", "brain-engine")[1]["spec"]["replicas"] == 3


def test_stored_objects_are_trimmed_to_what_a_pass_reads() -> None:
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}
    status = {
        "phase": "Running",
        "podIP": "10.0.0.9",
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "t", "message": "m"}],
        "containerStatuses": [{"name": "engine", "ready": False, "imageID": "sha", "state": waiting}],
    }
    pod = child("Pod", status=status)
    pod["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "a": "b"}
    cache = synced_cache(pod, kind=("v1", "Pod"))
    stored = cache.lookup(("v1", "Pod"), "prod", "brain-engine")[1]
    assert "spec" not in stored and "managedFields" not in stored["metadata"]
    assert "annotations" not in stored["metadata"]  # Patroni rewrites its pods' on every loop
    assert stored["status"] == {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "message": "m"}],
        "containerStatuses": [{"name": "engine", "ready": False, "state": waiting}],
    }
    hpa = child("HorizontalPodAutoscaler", status={"currentReplicas": 2, "currentMetrics": [{"type": "x"}]})
    stored_hpa = synced_cache(hpa, kind=HPA).lookup(HPA, "prod", "brain-engine")[1]
    assert stored_hpa["status"] == {"currentReplicas": 2}


def test_a_deployment_keeps_only_who_owns_its_replicas() -> None:
    deployment = child()
    spec_fields = {"f:replicas": {}, "f:template": {"f:spec": {}}}
    deployment["metadata"]["managedFields"] = [
        {"manager": "brain-ai-operator", "operation": "Apply", "fieldsV1": {"f:spec": spec_fields}},
        {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}},
    ]
    stored = synced_cache(deployment).lookup(DEPLOYMENT, "prod", "brain-engine")[1]
    assert stored["metadata"]["managedFields"] == [
        {"manager": "brain-ai-operator", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {"manager": "kube-controller-manager", "operation": "Update"},
    ]


def desired() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "brain-engine", "namespace": "prod", "labels": {INSTANCE_LABEL: "brain"}},
        "spec": {"template": {"spec": {"containers": [{"name": "engine", "image": "e:1"}]}}},
    }


def test_an_apply_the_live_object_already_holds_is_skipped_and_any_drift_is_not() -> None:
    cache = synced_cache(child())
    assert cache.converged(desired())  # server defaults and fields others own do not count
    changed = desired()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "e:2"
    assert not cache.converged(changed)
    drifted = child(version=2)
    drifted["metadata"]["labels"] = {MANAGED_BY_LABEL: MANAGED_BY}  # someone removed our label
    cache.upsert(DEPLOYMENT, drifted)
    assert not cache.converged(desired())


def test_values_the_server_normalises_count_as_converged_after_one_apply() -> None:
    sent = desired()
    sent["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1000m"}}
    answer = child(version=2)
    answer["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    cache = synced_cache(child())
    assert not cache.converged(sent)
    cache.record_apply(sent, answer)
    assert cache.converged(copy.deepcopy(sent))
    edited = copy.deepcopy(answer)
    edited["metadata"]["resourceVersion"] = "3"
    edited["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "2"
    cache.upsert(DEPLOYMENT, edited)  # a hand edit of a value we set
    assert not cache.converged(copy.deepcopy(sent))


def test_project_cuts_live_down_to_the_shape_of_what_was_sent() -> None:
    live = {"a": 1, "b": {"c": 2, "d": 3}, "l": [{"x": 1, "y": 2}]}
    assert project(live, {"b": {"c": 0}, "l": [{"x": 0}]}) == {"b": {"c": 2}, "l": [{"x": 1}]}
    assert project(live, {"missing": 1}) == {"missing": "<absent>"}
    assert project(live, {"l": [{}, {}]}) == {"l": [{"x": 1, "y": 2}]}  # lengths differ: all of it


def test_lists_report_what_appeared_changed_and_went() -> None:
    one, two = child(), child()
    two["metadata"]["name"] = "other"
    cache = synced_cache(one, two)
    changed_one = child(version=2)
    changed_one["spec"]["replicas"] = 4
    reported = cache.replace_all(DEPLOYMENT, None, [changed_one])
    assert sorted(o["metadata"]["name"] for o in reported) == ["brain-engine", "other"]
    assert cache.replace_all(DEPLOYMENT, None, [changed_one]) == []
    assert cache.select(DEPLOYMENT, "prod", {INSTANCE_LABEL: "brain"}) == [
        cache.lookup(DEPLOYMENT, "prod", "brain-engine")[1]
    ]
    assert cache.remove(DEPLOYMENT, changed_one) and not cache.remove(DEPLOYMENT, changed_one)


def test_a_deployments_condition_states_matter_but_not_their_timestamps() -> None:
    deployment = child(
        status={"conditions": [{"type": "Progressing", "status": "True", "lastUpdateTime": "t1"}]}
    )
    cache = synced_cache(deployment)
    touched = child(
        version=2, status={"conditions": [{"type": "Progressing", "status": "True", "lastUpdateTime": "t2"}]}
    )
    assert not cache.upsert(DEPLOYMENT, touched)
    stalled = child(
        version=3,
        status={
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
        },
    )
    assert cache.upsert(DEPLOYMENT, stalled)
