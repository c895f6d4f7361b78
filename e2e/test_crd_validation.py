"""The API server refuses bad BrainAIClusters at admission, naming the offending field.

No operator is needed: the CRD's schema and CEL rules, generated from api.py, do all of this.
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e.kube import Cluster, KubectlError

OFF = {"autoscaling": {"enabled": False}}
# A shared store the operator does not run: the HPA applies, no data tier is built.
EXTERNAL_DB = {"postgres": {"enabled": True, "external": {"secretRef": {"name": "db", "key": "url"}}}}
EMBEDDED_ONE_POD = "needs spec.postgres.enabled: true"

S3 = {"bucket": "backups", "endpoint": "s3.example.com", "credentials": "s3-keys"}


def backup_spec(**backup: Any) -> dict[str, Any]:
    return {"postgres": {"enabled": True, "backup": backup}}


def restore_spec(target_time: str) -> dict[str, Any]:
    return {"postgres": {"enabled": True, "restore": {"fromCluster": "origin", "targetTime": target_time}}}


# (id, spec, text the error must contain)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("strategy-unknown", {"strategy": "fast"}, "spec.strategy"),
    ("strategy-type", {"strategy": 3}, "spec.strategy"),
    ("paused-type", {"paused": "yes"}, "spec.paused"),
    ("engine-type", {"engine": "big"}, "spec.engine"),
    ("replicas-negative", {**OFF, "engine": {"replicas": -1}}, "spec.engine.replicas"),
    ("replicas-absurd", {**OFF, "engine": {"replicas": 100000}}, "spec.engine.replicas"),
    ("replicas-type", {**OFF, "engine": {"replicas": "three"}}, "spec.engine.replicas"),
    ("replicas-with-hpa", {**EXTERNAL_DB, "engine": {"replicas": 3}}, "spec.engine.replicas must be unset"),
    (
        "replicas-on-embedded",
        {**OFF, "engine": {"replicas": 2}},
        f"spec.engine.replicas above 1 {EMBEDDED_ONE_POD}",
    ),
    (
        "metrics-off-but-scraped",
        {"monitoring": {"enabled": True}, "engine": {"config": {"metrics": {"enabled": False}}}},
        "spec.engine.config.metrics.enabled: false turns the engine's /metrics off",
    ),
    (
        "hpa-on-embedded",
        {"autoscaling": {"enabled": True}},
        f"spec.autoscaling.enabled: true {EMBEDDED_ONE_POD}",
    ),
    (
        "hpa-postgres-off",
        {"autoscaling": {"enabled": True, "minReplicas": 1}, "postgres": {"enabled": False}},
        f"spec.autoscaling.enabled: true {EMBEDDED_ONE_POD}",
    ),
    ("image-empty", {"engine": {"image": ""}}, "spec.engine.image"),
    ("pull-policy", {"engine": {"imagePullPolicy": "Sometimes"}}, "spec.engine.imagePullPolicy"),
    ("port-privileged", {"engine": {"port": 80}}, "spec.engine.port"),
    ("port-range", {"engine": {"port": 70000}}, "spec.engine.port"),
    ("log-level", {"engine": {"logLevel": "verbose"}}, "spec.engine.logLevel"),
    (
        "cpu-quantity",
        {"engine": {"resources": {"requests": {"cpu": "lots"}}}},
        "spec.engine.resources.requests.cpu",
    ),
    (
        "memory-quantity",
        {"engine": {"resources": {"limits": {"memory": "2GB"}}}},
        "spec.engine.resources.limits.memory",
    ),
    (
        "resource-unknown",
        {"engine": {"resources": {"requests": {"gpu": 1}}}},
        "spec.engine.resources.requests.gpu",
    ),
    (
        "cpu-request-over-limit",
        {"engine": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}},
        "spec.engine.resources.requests.cpu",
    ),
    (
        "memory-request-over-limit",
        {"engine": {"resources": {"requests": {"memory": "4Gi"}, "limits": {"memory": "1Gi"}}}},
        "spec.engine.resources.requests.memory",
    ),
    (
        "config-type",
        {"engine": {"config": {"memory": {"working_memory_size": "big"}}}},
        "spec.engine.config.memory.working_memory_size",
    ),
    (
        "config-bound",
        {"engine": {"config": {"memory": {"working_memory_size": 0}}}},
        "spec.engine.config.memory.working_memory_size",
    ),
    (
        "config-unknown-section",
        {"engine": {"config": {"nosuchsection": {"a": 1}}}},
        "spec.engine.config.nosuchsection",
    ),
    (
        "config-unknown-key",
        {"engine": {"config": {"learning": {"wrokers": 4}}}},
        "spec.engine.config.learning.wrokers",
    ),
    ("config-operator-owned", {"engine": {"config": {"server": {"port": 1}}}}, "spec.engine.config.server"),
    (
        "config-enum",
        {"engine": {"config": {"database": {"synchronous": "SOMETIMES"}}}},
        "spec.engine.config.database.synchronous",
    ),
    (
        "config-rate",
        {"engine": {"config": {"concepts": {"hebbian_learning_rate": 1.5}}}},
        "spec.engine.config.concepts.hebbian_learning_rate",
    ),
    (
        "config-backend",
        {"engine": {"config": {"search": {"backend": "magic"}}}},
        "spec.engine.config.search.backend",
    ),
    (
        "auth-secret-name",
        {"engine": {"authTokenSecretRef": {"name": "Bad_Name", "key": "token"}}},
        "spec.engine.authTokenSecretRef.name",
    ),
    (
        "auth-secret-key-missing",
        {"engine": {"authTokenSecretRef": {"name": "token"}}},
        "spec.engine.authTokenSecretRef.key",
    ),
    ("min-over-max", {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}, "spec.autoscaling.minReplicas"),
    ("min-zero", {"autoscaling": {"minReplicas": 0}}, "spec.autoscaling.minReplicas"),
    ("max-absurd", {"autoscaling": {"maxReplicas": 5000}}, "spec.autoscaling.maxReplicas"),
    ("cpu-target", {"autoscaling": {"targetCpuUtilization": 150}}, "spec.autoscaling.targetCpuUtilization"),
    (
        "memory-target",
        {"autoscaling": {"targetMemoryUtilization": -1}},
        "spec.autoscaling.targetMemoryUtilization",
    ),
    ("preset", {"autoscaling": {"preset": "cheap"}}, "spec.autoscaling.preset"),
    ("enabled-type", {"autoscaling": {"enabled": "true"}}, "spec.autoscaling.enabled"),
    (
        "scale-up-percent",
        {"autoscaling": {"behavior": {"scaleUp": {"percent": 0}}}},
        "spec.autoscaling.behavior.scaleUp.percent",
    ),
    (
        "scale-down-window",
        {"autoscaling": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": -5}}}},
        "spec.autoscaling.behavior.scaleDown.stabilizationWindowSeconds",
    ),
    (
        "priority-class",
        {"scheduling": {"priorityClassName": "Not Valid!"}},
        "spec.scheduling.priorityClassName",
    ),
    (
        "node-selector-type",
        {"scheduling": {"nodeSelector": {"disk": 1}}},
        "spec.scheduling.nodeSelector.disk",
    ),
    ("read-replicas", {"postgres": {"enabled": True, "readReplicas": 99}}, "spec.postgres.readReplicas"),
    (
        "storage-size",
        {"postgres": {"enabled": True, "storage": {"size": "ten gigs"}}},
        "spec.postgres.storage.size",
    ),
    ("redis-masters", {"redis": {"enabled": True, "masters": 2}}, "spec.redis.masters"),
    ("unknown-field", {"replicaCount": 3}, "spec.replicaCount"),
    (
        "cpu-negative-string",
        {"engine": {"resources": {"limits": {"cpu": "-1"}}}},
        "spec.engine.resources.limits.cpu",
    ),
    (
        "cpu-negative-int",
        {"engine": {"resources": {"limits": {"cpu": -2}}}},
        "spec.engine.resources.limits.cpu",
    ),
    (
        "cpu-absurd",
        {"engine": {"resources": {"limits": {"cpu": "5000"}}}},
        "spec.engine.resources.limits.cpu",
    ),
    (
        "memory-absurd",
        {"engine": {"resources": {"requests": {"memory": "999999Ei"}}}},
        "spec.engine.resources.requests.memory",
    ),
    ("storage-zero", {"postgres": {"enabled": True, "storage": {"size": "0"}}}, "spec.postgres.storage.size"),
    ("image-whitespace", {"engine": {"image": "bad image"}}, "spec.engine.image"),
    ("pull-secret-empty", {"engine": {"imagePullSecrets": [""]}}, "spec.engine.imagePullSecrets[0]"),
    (
        "pg-parameter-name",
        {"postgres": {"enabled": True, "parameters": {"Bad Key": "1"}}},
        "spec.postgres.parameters",
    ),
    (
        "pg-replication-parameter",
        {"postgres": {"enabled": True, "parameters": {"wal_level": "minimal"}}},
        "spec.postgres.parameters",
    ),
    (
        "pg-slots-parameter",
        {"postgres": {"enabled": True, "parameters": {"max_replication_slots": "1"}}},
        "spec.postgres.parameters",
    ),
    ("monitoring-interval", {"monitoring": {"enabled": True, "interval": "5"}}, "spec.monitoring.interval"),
    ("image-no-break-space", {"engine": {"image": "brain-ai/engine:0.1.0\u00a0"}}, "spec.engine.image"),
    (
        "node-selector-empty-key",
        {"scheduling": {"nodeSelector": {"": "ssd"}}},
        "spec.scheduling.nodeSelector",
    ),
    (
        "node-selector-bad-key",
        {"scheduling": {"nodeSelector": {"disk type!": "ssd"}}},
        "spec.scheduling.nodeSelector",
    ),
    (
        "node-selector-long-value",
        {"scheduling": {"nodeSelector": {"disk": "v" * 64}}},
        "spec.scheduling.nodeSelector.disk",
    ),
    (
        "monitoring-label-key",
        {"monitoring": {"enabled": True, "labels": {"-release": "x"}}},
        "spec.monitoring.labels",
    ),
    (
        "secret-key-slash",
        {"engine": {"authTokenSecretRef": {"name": "token", "key": "api/token"}}},
        "spec.engine.authTokenSecretRef.key",
    ),
    ("window-zero", {"monitoring": {"enabled": True, "window": "0h"}}, "spec.monitoring.window"),
    ("interval-zero", {"monitoring": {"enabled": True, "interval": "0s"}}, "spec.monitoring.interval"),
    # A CRD field is either number or string, never both, and CEL cannot see an untyped one: a
    # fractional JSON number is refused by type, naming the field ("0.5" or 500m are the forms).
    (
        "cpu-fractional-number",
        {"engine": {"resources": {"requests": {"cpu": 0.5}}}},
        "spec.engine.resources.requests.cpu in body",
    ),
    (
        "cpu-fractional-exponent",
        {"engine": {"resources": {"requests": {"cpu": "1e1.5"}}}},
        "spec.engine.resources.requests.cpu",
    ),
    (
        "consolidation-frequency",
        {"engine": {"config": {"memory": {"consolidation_frequency": "weekly"}}}},
        "spec.engine.config.memory.consolidation_frequency",
    ),
    ("backup-two-repositories", backup_spec(volume={}, s3=S3), "set volume or s3, not both"),
    ("backup-schedule-minute", backup_spec(schedule="99 * * * *"), "spec.postgres.backup.schedule"),
    ("backup-schedule-sunday-7", backup_spec(schedule="0 2 * * 7"), "spec.postgres.backup.schedule"),
    ("backup-schedule-fields", backup_spec(schedule="0 2 * *"), "spec.postgres.backup.schedule"),
    ("backup-retention-zero", backup_spec(retention=0), "spec.postgres.backup.retention"),
    ("backup-s3-no-credentials", backup_spec(s3={"bucket": "b-1", "endpoint": "s3"}), "credentials"),
    (
        "backup-on-external",
        {"postgres": {**EXTERNAL_DB["postgres"], "backup": {}}},
        "spec.postgres.backup and spec.postgres.restore do not apply to an external database",
    ),
    ("restore-month-13", restore_spec("2026-13-04T10:00:00Z"), "spec.postgres.restore.targetTime"),
    ("restore-hour-99", restore_spec("2026-12-04T99:00:00Z"), "spec.postgres.restore.targetTime"),
    ("restore-february-31", restore_spec("2026-02-31T10:00:00Z"), "spec.postgres.restore.targetTime"),
    ("restore-no-zone", restore_spec("2026-12-04T10:00:00"), "spec.postgres.restore.targetTime"),
    (
        "restore-bad-source",
        {"postgres": {"enabled": True, "restore": {"fromCluster": "Not.A.Name"}}},
        "spec.postgres.restore.fromCluster",
    ),
]


@pytest.mark.parametrize(("spec", "field"), [(s, f) for _, s, f in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_cluster_is_rejected_naming_the_field(
    cluster: Cluster, crd: str, namespace: str, spec: dict[str, Any], field: str
) -> None:
    manifest = {
        "apiVersion": "brainai.io/v1alpha1",
        "kind": "BrainAICluster",
        "metadata": {"name": "bad"},
        "spec": spec,
    }
    with pytest.raises(KubectlError) as rejected:
        cluster.apply(manifest, namespace)
    assert field in rejected.value.stderr
    assert cluster.get("bac", "bad", namespace) is None


def test_overlong_name_is_rejected(cluster: Cluster, crd: str, namespace: str) -> None:
    manifest = {
        "apiVersion": "brainai.io/v1alpha1",
        "kind": "BrainAICluster",
        "metadata": {"name": "n" * 64},
        "spec": {},
    }
    with pytest.raises(KubectlError) as rejected:
        cluster.apply(manifest, namespace)
    assert "metadata.name" in rejected.value.stderr


@pytest.mark.parametrize("name", ["1brain", "brain.ai"])
def test_a_name_no_service_can_carry_is_rejected(
    cluster: Cluster, crd: str, namespace: str, name: str
) -> None:
    manifest = {"apiVersion": "brainai.io/v1alpha1", "kind": "BrainAICluster", "metadata": {"name": name}}
    with pytest.raises(KubectlError) as rejected:
        cluster.apply({**manifest, "spec": {}}, namespace)
    assert "DNS-1035" in rejected.value.stderr


def test_storage_class_is_immutable(cluster: Cluster, crd: str, namespace: str) -> None:
    def manifest(storage_class: str) -> dict[str, Any]:
        return {
            "apiVersion": "brainai.io/v1alpha1",
            "kind": "BrainAICluster",
            "metadata": {"name": "db"},
            "spec": {"postgres": {"enabled": True, "storage": {"storageClassName": storage_class}}},
        }

    cluster.apply(manifest("fast"), namespace)
    with pytest.raises(KubectlError) as rejected:
        cluster.apply(manifest("slow"), namespace)
    assert "spec.postgres.storage.storageClassName" in rejected.value.stderr
    assert "immutable" in rejected.value.stderr


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        ({}, {"storageClassName": "fast"}, "spec.postgres.storage.storageClassName is immutable"),
        ({"storageClassName": "fast"}, {}, "spec.postgres.storage.storageClassName is immutable"),
        ({"size": "20Gi"}, {"size": "10Gi"}, "cannot shrink"),
    ],
    ids=["class-added", "class-removed", "size-shrunk"],
)
def test_storage_transitions_are_checked(
    cluster: Cluster, crd: str, namespace: str, before: dict[str, Any], after: dict[str, Any], message: str
) -> None:
    def manifest(storage: dict[str, Any]) -> dict[str, Any]:
        postgres = {"enabled": True, "storage": storage}
        return {"apiVersion": "brainai.io/v1alpha1", "kind": "BrainAICluster", "metadata": {"name": "vol"},
                "spec": {"postgres": postgres}}  # fmt: skip

    cluster.apply(manifest(before), namespace)
    try:
        with pytest.raises(KubectlError) as rejected:
            cluster.apply(manifest(after), namespace)
        assert message in rejected.value.stderr
    finally:
        cluster.kubectl("delete", "bac", "vol", "-n", namespace, "--wait=false")


def test_valid_examples_are_accepted_with_defaults(cluster: Cluster, crd: str, namespace: str) -> None:
    manifest = {
        "apiVersion": "brainai.io/v1alpha1",
        "kind": "BrainAICluster",
        "metadata": {"name": "ok"},
        "spec": {"engine": {"resources": {"requests": {"cpu": 1}, "limits": {"cpu": "1500m"}}}},
    }
    cluster.apply(manifest, namespace)
    stored = cluster.get("bac", "ok", namespace)
    assert stored["spec"]["strategy"] == "balanced"  # schema default
    assert stored["spec"]["engine"]["imagePullPolicy"] == "IfNotPresent"
    explained = cluster.kubectl("explain", "brainaicluster.spec.autoscaling.preset")
    assert "cost-optimized" in explained


VALID = [
    ("memory-target-zero", {**EXTERNAL_DB, "autoscaling": {"targetMemoryUtilization": 0}}),
    ("one-engine-on-embedded", {**OFF, "engine": {"replicas": 1}}),
    ("hpa-by-default-on-a-shared-store", EXTERNAL_DB),
    ("replicas-on-a-shared-store", {**EXTERNAL_DB, **OFF, "engine": {"replicas": 5}}),
    ("consolidation-seconds", {"engine": {"config": {"memory": {"consolidation_frequency": 30}}}}),
    ("consolidation-named", {"engine": {"config": {"memory": {"consolidation_frequency": "hourly"}}}}),
    ("prefixed-label-key", {"scheduling": {"nodeSelector": {"kubernetes.io/arch": "amd64"}}}),
    ("request-above-default-limit", {"engine": {"resources": {"requests": {"cpu": "4"}}}}),
    ("backup-defaults", backup_spec()),
    ("backup-s3", backup_spec(schedule="*/30 1-5 * jan-mar MON-FRI", retention=2, s3=S3)),
    ("restore-to-a-moment", restore_spec("2026-12-04T10:00:00.25+02:00")),
]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, {"fromCluster": "origin"}),
        ({"fromCluster": "origin"}, None),
        ({"fromCluster": "origin"}, {"fromCluster": "other"}),
    ],
    ids=["added", "removed", "changed"],
)
def test_restore_is_set_at_creation_only(
    cluster: Cluster, crd: str, namespace: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    def manifest(restore: dict[str, Any] | None) -> dict[str, Any]:
        postgres = {"enabled": True, **({"restore": restore} if restore else {})}
        return {"apiVersion": "brainai.io/v1alpha1", "kind": "BrainAICluster", "metadata": {"name": "rst"},
                "spec": {"postgres": postgres}}  # fmt: skip

    cluster.apply(manifest(before), namespace)
    try:
        with pytest.raises(KubectlError) as rejected:
            cluster.apply(manifest(after), namespace)
        assert "spec.postgres.restore is set when the database is created" in rejected.value.stderr
    finally:
        cluster.kubectl("delete", "bac", "rst", "-n", namespace, "--wait=false")


@pytest.mark.parametrize("spec", [s for _, s in VALID], ids=[i for i, _ in VALID])
def test_valid_specs_are_admitted_and_the_operator_can_build_them(
    cluster: Cluster, crd: str, namespace: str, spec: dict[str, Any]
) -> None:
    from brainai_operator.api import BrainAIClusterSpec
    from brainai_operator.resources.cluster import build_desired
    from brainai_operator.strategies import resolve

    manifest = {"apiVersion": "brainai.io/v1alpha1", "kind": "BrainAICluster", "metadata": {"name": "fine"}}
    cluster.apply({**manifest, "spec": spec}, namespace)
    stored = cluster.get("bac", "fine", namespace)
    passwords = {"postgres": {"superuser-password": "a", "replication-password": "b"}}
    assert build_desired(
        "fine", namespace, resolve(BrainAIClusterSpec.model_validate(stored["spec"])), passwords
    )
    cluster.kubectl("delete", "bac", "fine", "-n", namespace, "--wait=false")


def test_scaling_past_one_engine_pod_on_the_embedded_store_is_refused(
    cluster: Cluster, crd: str, namespace: str
) -> None:
    """`kubectl scale` goes through the same rules as an apply."""
    manifest = {"apiVersion": "brainai.io/v1alpha1", "kind": "BrainAICluster", "metadata": {"name": "solo"}}
    cluster.apply({**manifest, "spec": {**OFF, "engine": {"replicas": 1}}}, namespace)
    try:
        with pytest.raises(KubectlError) as refused:
            cluster.kubectl("scale", "brainaicluster/solo", "-n", namespace, "--replicas=2")
        assert f"spec.engine.replicas above 1 {EMBEDDED_ONE_POD}" in refused.value.stderr
        cluster.kubectl("scale", "brainaicluster/solo", "-n", namespace, "--replicas=0")
        assert cluster.get("bac", "solo", namespace)["spec"]["engine"]["replicas"] == 0
    finally:
        cluster.kubectl("delete", "bac", "solo", "-n", namespace, "--wait=false")
