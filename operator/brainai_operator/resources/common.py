"""Names and labels shared by every child object of a BrainAICluster."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

MANAGED_BY = "brain-ai-operator"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CONFIG_HASH_ANNOTATION = "brainai.io/config-hash"
# On every child: a hash of the object as last applied (see reconcile.stamp_applied_hash).
APPLIED_HASH_ANNOTATION = "brainai.io/applied-hash"
# On a Secret whose passwords live inside retained volumes: applied without an ownerReference, so
# neither deleting the cluster nor disabling the tier deletes it, and a later cluster reuses it.
KEEP_WITH_DATA_ANNOTATION = "brainai.io/kept-with-data"
# Longest child name: a StatefulSet's pods carry `controller-revision-hash: <name>-<10 chars>`, and
# a label value has at most 63 characters; Services and Job names (a label too) fit under it.
CHILD_NAME_LIMIT = 52
# A BrainAICluster's name is a label value on every child and the prefix of Service names.
CLUSTER_NAME_LIMIT = 63
CLUSTER_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"  # DNS-1035: what a Service name allows


def selector_labels(cluster: str, component: str) -> dict[str, str]:
    """The immutable subset used in selectors: never add to it after release."""
    return {NAME_LABEL: "brain-ai", INSTANCE_LABEL: cluster, COMPONENT_LABEL: component}


def labels(cluster: str, component: str) -> dict[str, str]:
    return {
        **selector_labels(cluster, component),
        MANAGED_BY_LABEL: MANAGED_BY,
        "app.kubernetes.io/part-of": "brain-ai",
    }


def spread_over_nodes(cluster: str, component: str) -> list[dict[str, Any]]:
    """Soft topology spread of a component's pods over zones and nodes: preferred, never blocking."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(cluster, component)},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def disruption_budget(
    name: str, namespace: str, cluster: str, component: str, selector: dict[str, str]
) -> dict[str, Any]:
    """At most one of the selected pods voluntarily disrupted (drained, evicted) at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, namespace, cluster, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def content_hash(value: Any) -> str:
    """A short, stable digest of a JSON-able value (keys sorted): equal values, equal hashes."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def owned_selector(cluster: str) -> str:
    """Label selector matching every object this operator made for `cluster`."""
    return f"{INSTANCE_LABEL}={cluster},{MANAGED_BY_LABEL}={MANAGED_BY}"


def metadata(
    name: str, namespace: str, cluster: str, component: str, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels(cluster, component)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def child_name(cluster: str, suffix: str) -> str:
    """`<cluster>-<suffix>`, or, when that is too long, the cluster name cut short plus a hash of
    the whole of it: deterministic, unique per cluster, and within CHILD_NAME_LIMIT."""
    name = f"{cluster}-{suffix}"
    if len(name) <= CHILD_NAME_LIMIT:
        return name
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
    keep = CHILD_NAME_LIMIT - len(suffix) - len(digest) - 2
    return f"{cluster[:keep].rstrip('-')}-{digest}-{suffix}"


def engine_name(cluster: str) -> str:
    return child_name(cluster, "engine")


def container_security(run_as: int) -> dict[str, Any]:
    """Non-root, no privilege escalation, read-only root filesystem, no capabilities."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security(run_as: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as,
        "fsGroup": run_as,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def claim_template(size: str, storage_class: str | None) -> dict[str, Any]:
    """The `data` volumeClaimTemplate of a StatefulSet."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": "data"}, "spec": spec}


def secret(
    name: str, namespace: str, cluster: str, component: str, values: dict[str, str], retain: bool = False
) -> dict[str, Any]:
    """An Opaque Secret; `data` (not stringData) so re-applying the same values is a no-op.
    `retain`: the passwords guard retained volumes, so the Secret outlives the cluster with them."""
    annotations = {KEEP_WITH_DATA_ANNOTATION: "true"} if retain else None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, namespace, cluster, component, annotations),
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())},
    }
