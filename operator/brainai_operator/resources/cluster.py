"""The whole desired set of children for one BrainAICluster."""

from __future__ import annotations

from typing import Any

from brainai_operator.resources.autoscaling import build_engine_hpa
from brainai_operator.resources.backup import build_backup
from brainai_operator.resources.engine import (
    build_engine_configmap,
    build_engine_deployment,
    build_engine_network_policy,
    build_engine_pdb,
    build_engine_service,
    build_engine_service_account,
    config_hash,
    render_engine_config,
)
from brainai_operator.resources.monitoring import build_prometheus_rule, build_service_monitor
from brainai_operator.resources.postgres import build_postgres
from brainai_operator.resources.redis import build_redis
from brainai_operator.strategies import Resolved

# Every kind a builder here can produce (apiVersion, kind): what pruning looks through.
OWNED_KINDS: list[tuple[str, str]] = [
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("v1", "ConfigMap"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Secret"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
]


def build_desired(
    cluster: str,
    namespace: str,
    r: Resolved,
    passwords: dict[str, dict[str, str]] | None = None,
    monitoring_crds: bool = False,
    redis_nodes: int | None = None,
    restored: bool = False,
) -> list[dict[str, Any]]:
    """Every object the cluster should own, in the order they are applied (data tiers first).

    `passwords` holds the generated credentials per data tier ("postgres", "redis", and
    "pgbackrest" for the backups' TLS certificate); generating
    them is the caller's job, so this stays a pure function of its inputs. `monitoring_crds` says
    whether the Prometheus Operator's CRDs exist, without which a ServiceMonitor cannot be created.
    `redis_nodes` is how many Redis nodes run (more than asked for while a shrink drains them).
    `restored`: a restore's database took writes, so nothing reads its source any more.
    """
    passwords = passwords or {}
    desired: list[dict[str, Any]] = []
    if r.postgres:
        desired += build_postgres(cluster, namespace, r.postgres, passwords.get("postgres", {}))
        desired += build_backup(cluster, namespace, r.postgres, passwords.get("pgbackrest", {}), restored)
    if r.redis:
        desired += build_redis(cluster, namespace, r.redis, passwords.get("redis", {}), redis_nodes)
    rendered = render_engine_config(r)
    desired += [
        build_engine_service_account(cluster, namespace),
        build_engine_configmap(cluster, namespace, rendered),
        build_engine_deployment(cluster, namespace, r, config_hash(rendered)),
        build_engine_service(cluster, namespace, r),
        build_engine_pdb(cluster, namespace),
        build_engine_network_policy(cluster, namespace, r),
    ]
    if r.autoscaling:
        desired.append(build_engine_hpa(cluster, namespace, r.autoscaling))
    if r.monitoring and monitoring_crds:
        desired += [
            build_service_monitor(cluster, namespace, r.monitoring),
            build_prometheus_rule(cluster, namespace, r.monitoring),
        ]
    return desired
