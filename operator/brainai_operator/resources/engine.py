"""The engine tier: Deployment, Service, ConfigMap, ServiceAccount, PodDisruptionBudget, NetworkPolicy."""

from __future__ import annotations

import hashlib
from typing import Any

import tomli_w

from brainai_operator.resources.common import (
    CONFIG_HASH_ANNOTATION,
    container_security,
    disruption_budget,
    engine_name,
    labels,
    metadata,
    pod_security,
    selector_labels,
    spread_over_nodes,
)
from brainai_operator.resources.postgres import names as postgres_names
from brainai_operator.resources.redis import names as redis_names
from brainai_operator.strategies import Resolved, deep_merge

COMPONENT = "engine"
CONFIG_DIR = "/etc/brain-ai"
CONFIG_FILE = "engine.toml"
DATA_DIR = "/var/lib/brain-ai"
AUTH_DIR = "/etc/brain-ai-auth"
RUN_AS = 10001
PRESTOP_SECONDS = 5
STARTUP_PERIOD_SECONDS = 2
STARTUP_BUDGET_SECONDS = 600  # loading a store of millions of memories, with room to spare


def render_engine_config(r: Resolved) -> str:
    """The engine's TOML: strategy and overrides, plus the settings the pod layout dictates."""
    owned: dict[str, Any] = {
        "system": {"log_level": r.log_level},
        "server": {"host": "0.0.0.0", "port": r.port, "data_dir": DATA_DIR},
    }
    if r.auth_secret:
        owned["server"]["auth_token_file"] = f"{AUTH_DIR}/token"
    sections = deep_merge(r.engine_config, owned)
    header = "# Rendered by brain-ai-operator from the BrainAICluster's strategy and spec.engine.config.\n"
    return header + tomli_w.dumps(sections)


def config_hash(rendered: str) -> str:
    return hashlib.sha256(rendered.encode()).hexdigest()[:16]


def build_engine_configmap(cluster: str, namespace: str, rendered: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(f"{engine_name(cluster)}-config", namespace, cluster, COMPONENT),
        "data": {CONFIG_FILE: rendered},
    }


def build_engine_service_account(cluster: str, namespace: str) -> dict[str, Any]:
    # The engine never calls the Kubernetes API: no token in its pods.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(engine_name(cluster), namespace, cluster, COMPONENT),
        "automountServiceAccountToken": False,
    }


def _from_secret(var: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": var, "valueFrom": {"secretKeyRef": ref}}


def data_tier_env(cluster: str, r: Resolved) -> list[dict[str, Any]]:
    """DATABASE_URL, DATABASE_READ_URLS and REDIS_URL, always from Secrets."""
    env: list[dict[str, Any]] = []
    if r.postgres and r.postgres.external_url:
        env.append(_from_secret("DATABASE_URL", *r.postgres.external_url))
        if r.postgres.external_read_url:
            env.append(_from_secret("DATABASE_READ_URLS", *r.postgres.external_read_url))
    elif r.postgres:
        secret = postgres_names(cluster)["secret"]
        env += [
            _from_secret("DATABASE_URL", secret, "database-url"),
            _from_secret("DATABASE_READ_URLS", secret, "database-read-url", optional=True),
        ]
    if r.redis and r.redis.external_url:
        env.append(_from_secret("REDIS_URL", *r.redis.external_url))
    elif r.redis:
        env.append(_from_secret("REDIS_URL", redis_names(cluster)["secret"], "redis-url"))
    return env


def _pod_spec(cluster: str, r: Resolved) -> dict[str, Any]:
    name = engine_name(cluster)
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": f"{name}-config"}},
        {"name": "data", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if r.auth_secret:
        secret, key = r.auth_secret
        volumes.append(
            {
                "name": "auth",
                "secret": {
                    "secretName": secret,
                    "defaultMode": 0o440,
                    "items": [{"key": key, "path": "token"}],
                },
            }
        )
        mounts.append({"name": "auth", "mountPath": AUTH_DIR, "readOnly": True})
    probe = {"port": "http", "scheme": "HTTP"}
    container = {
        "name": "engine",
        "image": r.image,
        "imagePullPolicy": r.image_pull_policy,
        "args": ["serve", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "ports": [{"name": "http", "containerPort": r.port, "protocol": "TCP"}],
        "env": [
            {"name": "INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            *data_tier_env(cluster, r),
        ],
        "resources": r.resources,
        # The server listens only once its store is open and its index caught up, which on a large
        # store takes longer than liveness allows: until /health answers, this probe alone runs
        # (liveness and readiness wait), for up to STARTUP_BUDGET_SECONDS.
        "startupProbe": {
            "httpGet": {"path": "/health", **probe},
            "periodSeconds": STARTUP_PERIOD_SECONDS,
            "timeoutSeconds": 2,
            "failureThreshold": STARTUP_BUDGET_SECONDS // STARTUP_PERIOD_SECONDS,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", **probe},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/ready", **probe},
            "initialDelaySeconds": 5,
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        # A terminating pod keeps serving for a few seconds: until every node's kube-proxy has
        # dropped it from the Service, new connections may still arrive (rolling updates, scale-in).
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
        "securityContext": {
            **container_security(RUN_AS),
            "runAsGroup": RUN_AS,
            "privileged": False,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "securityContext": pod_security(RUN_AS),
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": volumes,
    }
    if r.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in r.image_pull_secrets]
    scheduling = dict(r.scheduling)
    spec["topologySpreadConstraints"] = scheduling.pop(
        "topologySpreadConstraints", None
    ) or spread_over_nodes(cluster, COMPONENT)
    spec.update(scheduling)  # nodeSelector, affinity, tolerations, priorityClassName
    return spec


def build_engine_deployment(cluster: str, namespace: str, r: Resolved, rendered_hash: str) -> dict[str, Any]:
    """replicas is left out when an HPA owns the count, so applying never fights the autoscaler."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(cluster, COMPONENT)},
        "revisionHistoryLimit": 5,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": labels(cluster, COMPONENT),
                # A config change changes the template, which rolls the pods.
                "annotations": {CONFIG_HASH_ANNOTATION: rendered_hash},
            },
            "spec": _pod_spec(cluster, r),
        },
    }
    if r.autoscaling is None:
        spec["replicas"] = r.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(
            engine_name(cluster), namespace, cluster, COMPONENT, {CONFIG_HASH_ANNOTATION: rendered_hash}
        ),
        "spec": spec,
    }


def build_engine_service(cluster: str, namespace: str, r: Resolved) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(engine_name(cluster), namespace, cluster, COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(cluster, COMPONENT),
            "ports": [{"name": "http", "port": r.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_engine_pdb(cluster: str, namespace: str) -> dict[str, Any]:
    return disruption_budget(
        engine_name(cluster), namespace, cluster, COMPONENT, selector_labels(cluster, COMPONENT)
    )


def build_engine_network_policy(cluster: str, namespace: str, r: Resolved) -> dict[str, Any]:
    # Clients may live anywhere; only the API port is open.
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(engine_name(cluster), namespace, cluster, COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(cluster, COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": r.port, "protocol": "TCP"}]}],
        },
    }
