"""PostgreSQL for the engines: one Patroni cluster (a leader and streaming replicas) in a StatefulSet.

Patroni runs in every pod and keeps its state in the Kubernetes API (its Kubernetes DCS, endpoints
mode): the selectorless `-rw` Service's Endpoints object is the leader lock, so whichever pod holds
it has also written its own address there, and `-rw` reaches the leader the moment it is elected.
Patroni labels each pod with its role; `-ro` selects the replicas. Failover (the leader's lock
expiring), rewinding a former leader, switchover and synchronous replication are Patroni's; the
operator renders its configuration, grants it the API access it needs, and reports what it sees.
Passwords live only in the Secret; containers read them from env, never from args or ConfigMaps.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from kubernetes.utils.quantity import parse_quantity

from brainai_operator.quantities import MI
from brainai_operator.resources import pgbackrest
from brainai_operator.resources.common import (
    child_name,
    claim_template,
    container_security,
    content_hash,
    disruption_budget,
    labels,
    metadata,
    pod_security,
    secret,
    selector_labels,
    spread_over_nodes,
)
from brainai_operator.strategies import DataTier

COMPONENT = "postgres"
ROLE_LABEL = "brainai.io/postgres-role"  # set by Patroni: "master" on the leader, "replica" on the others
SCOPE_LABEL = "brainai.io/postgres-cluster"  # Patroni's cluster (its scope) on its pods and DCS objects
LEADER_ROLE, REPLICA_ROLE = "master", "replica"
# The pod Patroni should make leader: the operator asks for a switchover while another one is.
PRIMARY_ANNOTATION = "brainai.io/postgres-primary"
CONFIG_ANNOTATION = "brainai.io/patroni-config"
DATABASE = "brain_ai"
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
PGDATA = "/var/lib/postgresql/data/pgdata"
RUN_AS = 999  # the postgres user of the image
SECRET_KEYS = ("superuser-password", "replication-password")
PATRONI_PORT = 8008
# Patroni starts the server with these on its command line, taken from the DCS only (they must match
# on every member), never from a member's own file: they go into the dynamic configuration, which
# the operator keeps in step (see dcs_config). Patroni forces hot_standby and wal_log_hints on.
CLUSTER_WIDE = (
    "max_connections",
    "max_locks_per_transaction",
    "max_worker_processes",
    "max_prepared_transactions",
    "wal_level",
    "track_commit_timestamp",
    "max_wal_senders",
    "max_replication_slots",
    "wal_keep_size",
)
# Leader lock lifetime and loop period: a lost leader is replaced within TTL + LOOP_WAIT seconds.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 20, 5, 5


def major_version(image: str) -> str | None:
    """PostgreSQL's major version from an image tag (`postgres:15.4-bookworm` -> "15"), if it says."""
    tag = image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
    digits = re.match(r"[0-9]+", tag)
    return digits.group(0) if digits else None


def names(cluster: str) -> dict[str, str]:
    rw = child_name(cluster, "postgres-rw")
    return {
        "pods": child_name(cluster, "postgres"),  # StatefulSet, headless Service, ServiceAccount, Role
        "rw": rw,  # Patroni's scope: this Service's Endpoints are its leader lock
        "ro": child_name(cluster, "postgres-ro"),
        "secret": child_name(cluster, "postgres-credentials"),
        "patroni": child_name(cluster, "postgres-patroni"),
        # Patroni's other DCS keys, Endpoints objects each anchored by a selectorless Service: the
        # endpoints controller deletes Endpoints whose Service is gone, and with it, so they go
        # with the cluster (and are not mistaken for leftovers while it lives).
        "config": f"{rw}-config",
        "failover": f"{rw}-failover",
        "sync": f"{rw}-sync",
    }


def patroni_labels(cluster: str) -> dict[str, str]:
    """The labels Patroni selects its pods and DCS keys by: an object without them it does not see."""
    return {**selector_labels(cluster, COMPONENT), SCOPE_LABEL: names(cluster)["rw"]}


def pod_name(cluster: str, ordinal: int) -> str:
    return f"{names(cluster)['pods']}-{ordinal}"


def first_claim(cluster: str) -> str:
    """The volume claim of the first pod: it exists once the database does."""
    return f"data-{pod_name(cluster, 0)}"


def build_postgres_secret(
    cluster: str, namespace: str, tier: DataTier, passwords: dict[str, str]
) -> dict[str, Any]:
    """Credentials plus the URLs the engines use (DATABASE_URL, DATABASE_READ_URLS)."""
    n = names(cluster)
    password = passwords["superuser-password"]
    rw = f"postgresql://{SUPERUSER}:{password}@{n['rw']}.{namespace}.svc:5432/{DATABASE}"
    ro = (
        f"postgresql://{SUPERUSER}:{password}@{n['ro']}.{namespace}.svc:5432/{DATABASE}"
        if tier.replicas
        else ""
    )
    values = {**passwords, "database-url": rw, "database-read-url": ro}
    return secret(n["secret"], namespace, cluster, COMPONENT, values, retain=tier.retention == "Retain")


POST_BOOTSTRAP = f"""\
#!/bin/bash
# Patroni runs this once, on the member that initialised the cluster, with a superuser connection
# string: the engines' database (a restored one has it already).
set -euo pipefail
psql -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT 'CREATE DATABASE {DATABASE}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}')
\\gexec
SQL
"""


def slot_retention_mb(storage_size: str) -> int:
    """WAL a replication slot may hold back: a quarter of the volume, at least 64 MB."""
    return max(64, int(parse_quantity(storage_size)) // 4 // MI)


def server_parameters(tier: DataTier) -> dict[str, str]:
    """postgresql.conf as the tier asks for it, with what streaming replication needs."""
    return {
        "max_slot_wal_keep_size": f"{slot_retention_mb(tier.storage_size)}MB",
        **(pgbackrest.archive_parameters() if tier.backup else {}),
        **tier.parameters,
        "wal_level": "replica",
        "max_wal_senders": "20",
        "max_replication_slots": "20",
    }


def dcs_config(tier: DataTier) -> dict[str, Any]:
    """Patroni's dynamic configuration: what every member must agree on.

    Written at bootstrap from the config file, and kept in step afterwards by the operator (the
    `-config` Endpoints' `config` annotation), since Patroni reads it from the DCS only."""
    params = server_parameters(tier)
    return {
        "ttl": TTL,
        "loop_wait": LOOP_WAIT,
        "retry_timeout": RETRY_TIMEOUT,
        "maximum_lag_on_failover": 1024 * MI,
        "synchronous_mode": tier.synchronous,
        # Every replica synchronous: any of them may be promoted (Patroni promotes only synchronous
        # ones) or be switched over to, and none lacks an acknowledged write.
        "synchronous_node_count": max(1, tier.replicas),
        "postgresql": {
            "use_pg_rewind": True,  # a former leader rejoins without a new copy (wal_log_hints is on)
            "use_slots": True,
            "parameters": {k: params[k] for k in CLUSTER_WIDE if k in params},
        },
    }


def patroni_config(cluster: str, tier: DataTier) -> dict[str, Any]:
    """Patroni's file: what each member needs to start (env adds its name, address and passwords)."""
    n = names(cluster)
    params = server_parameters(tier)
    return {
        "scope": n["rw"],
        "kubernetes": {
            "use_endpoints": True,
            "labels": selector_labels(cluster, COMPONENT),
            "scope_label": SCOPE_LABEL,
            "role_label": ROLE_LABEL,
            "ports": [{"name": "postgres", "port": 5432}],
        },
        "bootstrap": {
            "dcs": dcs_config(tier),
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            "post_bootstrap": "/etc/patroni/post-bootstrap.sh",
            **(pgbackrest.patroni_bootstrap(cluster, tier) if tier.restore else {}),
        },
        "restapi": {"listen": f"0.0.0.0:{PATRONI_PORT}"},
        "postgresql": {
            "listen": "0.0.0.0:5432",
            "data_dir": PGDATA,
            "pgpass": "/tmp/pgpass",
            "basebackup": [
                {"checkpoint": "fast"}
            ],  # a new replica copies at once, not after a spread checkpoint
            "parameters": {
                **{k: v for k, v in params.items() if k not in CLUSTER_WIDE},
                "unix_socket_directories": "/var/run/postgresql",
            },
            "pg_hba": [
                "local all all trust",
                f"host replication {REPLICATION_USER} all scram-sha-256",
                "host all all all scram-sha-256",
            ],
        },
    }


def build_patroni_configmap(cluster: str, namespace: str, tier: DataTier) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names(cluster)["patroni"], namespace, cluster, COMPONENT),
        "data": {
            "patroni.yml": yaml.safe_dump(patroni_config(cluster, tier), sort_keys=False),
            "post-bootstrap.sh": POST_BOOTSTRAP,
        },
    }


def build_patroni_rbac(cluster: str, namespace: str) -> list[dict[str, Any]]:
    """What Patroni does with the API, and no more: its DCS keys (Endpoints) and its pods' labels."""
    name = names(cluster)["pods"]
    meta = metadata(name, namespace, cluster, COMPONENT)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["pods"],
                    "verbs": ["get", "list", "watch", "patch", "update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def _secret_env(cluster: str, var: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": names(cluster)["secret"], "key": key}}}


def _field_env(var: str, path: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _pgbackrest_sidecar(tier: DataTier) -> dict[str, Any]:
    """pgBackRest's TLS server in every member: how a backup Job reads the leader's data directory."""
    return {
        "name": "pgbackrest",
        "image": tier.image,
        "command": ["pgbackrest", "server"],
        "env": [{"name": "PGBACKREST_CONFIG", "value": pgbackrest.MEMBER_CONFIG}],
        "ports": [{"name": "pgbackrest", "containerPort": pgbackrest.TLS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "pgbackrest"}, "periodSeconds": 10},
        "resources": pgbackrest.RESOURCES,
        "securityContext": container_security(RUN_AS),
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},
            *pgbackrest.MOUNTS,
        ],
    }


def _container(cluster: str, tier: DataTier) -> dict[str, Any]:
    def probe(path: str, **timing: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "patroni"}, "timeoutSeconds": 3, **timing}

    return {
        "name": "postgres",
        "image": tier.image,
        "command": ["patroni", "/etc/patroni/patroni.yml"],
        "env": [
            _field_env("PATRONI_NAME", "metadata.name"),
            _field_env("PATRONI_KUBERNETES_NAMESPACE", "metadata.namespace"),
            _field_env("PATRONI_KUBERNETES_POD_IP", "status.podIP"),
            {"name": "PATRONI_POSTGRESQL_CONNECT_ADDRESS", "value": "$(PATRONI_KUBERNETES_POD_IP):5432"},
            {
                "name": "PATRONI_RESTAPI_CONNECT_ADDRESS",
                "value": f"$(PATRONI_KUBERNETES_POD_IP):{PATRONI_PORT}",
            },
            {"name": "PATRONI_SUPERUSER_USERNAME", "value": SUPERUSER},
            _secret_env(cluster, "PATRONI_SUPERUSER_PASSWORD", "superuser-password"),
            {"name": "PATRONI_REPLICATION_USERNAME", "value": REPLICATION_USER},
            _secret_env(cluster, "PATRONI_REPLICATION_PASSWORD", "replication-password"),
            {"name": "PGDATA", "value": PGDATA},
            {"name": "HOME", "value": "/tmp"},
            # archive_command's pgBackRest (started by the server, started by Patroni) reads this.
            *([{"name": "PGBACKREST_CONFIG", "value": pgbackrest.MEMBER_CONFIG}] if tier.backup else []),
        ],
        "ports": [
            {"name": "postgres", "containerPort": 5432, "protocol": "TCP"},
            {"name": "patroni", "containerPort": PATRONI_PORT, "protocol": "TCP"},
        ],
        "resources": tier.resources,
        # Ready: the leader, or a replica whose server runs; live: Patroni's loop is turning.
        "readinessProbe": probe("/readiness", periodSeconds=5, failureThreshold=3),
        "livenessProbe": probe("/liveness", initialDelaySeconds=30, periodSeconds=10, failureThreshold=6),
        "securityContext": container_security(RUN_AS),
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "patroni", "mountPath": "/etc/patroni", "readOnly": True},
            *(pgbackrest.MOUNTS if tier.backup or tier.restore else []),
        ],
    }


def build_postgres_statefulset(cluster: str, namespace: str, tier: DataTier) -> dict[str, Any]:
    """Every member alike: Patroni decides which is the leader, so any pod may be."""
    n = names(cluster)
    pod_labels = {**labels(cluster, COMPONENT), **patroni_labels(cluster)}
    # Patroni reads its file at start: a changed one rolls the members (the operator does, leader
    # last). Its bootstrap section is left out: the DCS holds those settings (see dcs_config).
    config = content_hash({k: v for k, v in patroni_config(cluster, tier).items() if k != "bootstrap"})
    pod: dict[str, Any] = {
        "serviceAccountName": n["pods"],
        "securityContext": pod_security(RUN_AS),
        # Patroni's shutdown stops the server cleanly and hands the lock over before the pod goes.
        "terminationGracePeriodSeconds": 60,
        "topologySpreadConstraints": spread_over_nodes(cluster, COMPONENT),
        "containers": [_container(cluster, tier), *([_pgbackrest_sidecar(tier)] if tier.backup else [])],
        "volumes": [
            {"name": "run", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "patroni", "configMap": {"name": n["patroni"], "defaultMode": 0o555}},
            *(pgbackrest.pod_volumes(cluster) if tier.backup or tier.restore else []),
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(n["pods"], namespace, cluster, COMPONENT),
        "spec": {
            "serviceName": n["pods"],
            "replicas": 1 + tier.replicas,
            "selector": {"matchLabels": selector_labels(cluster, COMPONENT)},
            "podManagementPolicy": "Parallel",  # Patroni lets one member initialise, the others wait
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": tier.retention,
                "whenScaled": tier.retention,
            },
            # The operator deletes outdated pods itself, replicas first (postgres_ha.next_roll_step).
            "updateStrategy": {"type": "OnDelete"},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {CONFIG_ANNOTATION: config}},
                "spec": pod,
            },
            "volumeClaimTemplates": [claim_template(tier.storage_size, tier.storage_class)],
        },
    }


def _service(
    cluster: str,
    namespace: str,
    name: str,
    selector: dict[str, str] | None,
    headless: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432, "protocol": "TCP"}],
    }
    if selector is not None:
        spec["selector"] = selector
    if headless:
        spec.update(clusterIP="None", publishNotReadyAddresses=True)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, namespace, cluster, COMPONENT),
        "spec": spec,
    }


def build_postgres(
    cluster: str, namespace: str, tier: DataTier, passwords: dict[str, str]
) -> list[dict[str, Any]]:
    """Everything a managed PostgreSQL needs; nothing for an external one."""
    if tier.external:
        return []
    n = names(cluster)
    members = selector_labels(cluster, COMPONENT)
    objs = [
        build_postgres_secret(cluster, namespace, tier, passwords),
        build_patroni_configmap(cluster, namespace, tier),
        *build_patroni_rbac(cluster, namespace),
        _service(cluster, namespace, n["pods"], members, headless=True),
        _service(cluster, namespace, n["rw"], None),  # Patroni writes its Endpoints
        *(
            _service(cluster, namespace, n[key], None, headless=True)
            for key in ("config", "failover", "sync")
        ),
        build_postgres_statefulset(cluster, namespace, tier),
        # One member at a time drained or evicted; Patroni hands the lock over if it is the leader.
        disruption_budget(n["pods"], namespace, cluster, COMPONENT, members),
    ]
    if tier.replicas:
        objs.insert(-2, _service(cluster, namespace, n["ro"], {**members, ROLE_LABEL: REPLICA_ROLE}))
    return objs
