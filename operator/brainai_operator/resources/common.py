"""Names and labels shared by every child object of a BrainAICluster."""

from __future__ import annotations

from typing import Any

MANAGED_BY = "brain-ai-operator"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CONFIG_HASH_ANNOTATION = "brainai.io/config-hash"


def selector_labels(cluster: str, component: str) -> dict[str, str]:
    """The immutable subset used in selectors: never add to it after release."""
    return {NAME_LABEL: "brain-ai", INSTANCE_LABEL: cluster, COMPONENT_LABEL: component}


def labels(cluster: str, component: str) -> dict[str, str]:
    return {
        **selector_labels(cluster, component),
        MANAGED_BY_LABEL: MANAGED_BY,
        "app.kubernetes.io/part-of": "brain-ai",
    }


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


def engine_name(cluster: str) -> str:
    return f"{cluster}-engine"
