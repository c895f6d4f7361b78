"""PostgreSQL for the engines: a primary, streaming read replicas, `-rw`/`-ro` Services, credentials.

Replicas are seeded from the primary with `pg_basebackup -R` by an init container, then stream
through a physical replication slot named after their pod: without one, the checkpoint a second
replica's base backup forces can recycle WAL the first has not streamed yet, and that replica never
catches up. The slot's retention is bounded (`max_slot_wal_keep_size`), so a slot left behind by a
removed replica cannot fill the primary's volume.
Passwords live only in the Secret; containers read them from env, never from args or ConfigMaps.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from brainai_operator.quantities import MI
from brainai_operator.resources.common import (
    child_name,
    claim_template,
    container_security,
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
ROLE_LABEL = "brainai.io/postgres-role"
DATABASE = "brain_ai"
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
PGDATA = "/var/lib/postgresql/data/pgdata"
RUN_AS = 999  # the postgres user of the official image
SECRET_KEYS = ("superuser-password", "replication-password")


def major_version(image: str) -> str | None:
    """PostgreSQL's major version from an image tag (`postgres:15.4-bookworm` -> "15"), if it says."""
    tag = image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
    digits = re.match(r"[0-9]+", tag)
    return digits.group(0) if digits else None


def names(cluster: str) -> dict[str, str]:
    return {
        "headless": child_name(cluster, "postgres"),
        "rw": child_name(cluster, "postgres-rw"),
        "ro": child_name(cluster, "postgres-ro"),
        "primary": child_name(cluster, "postgres-primary"),
        "replica": child_name(cluster, "postgres-replica"),
        "secret": child_name(cluster, "postgres-credentials"),
        "scripts": child_name(cluster, "postgres-scripts"),
    }


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


INIT_REPLICATION = """\
#!/bin/bash
# Runs once, on the primary's first start: the role replicas stream as.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\
  --set=pw="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
"""

CLONE_PRIMARY = """\
#!/bin/bash
# Seeds an empty replica volume from the primary; a seeded one is left alone. The stream carries
# the pod's name, so the primary's pg_stat_replication says which replica each row is, and so does
# its slot (created with the backup, so WAL is kept from the backup's start; a slot of the same
# name left by an earlier copy of this volume is dropped first: what it kept is of no use now).
set -euo pipefail
if [ -s "$PGDATA/PG_VERSION" ]; then exit 0; fi
until pg_isready -q -h "$PRIMARY_HOST"; do echo "waiting for $PRIMARY_HOST"; sleep 2; done
export PGPASSWORD="$REPLICATION_PASSWORD"
PRIMARY="host=$PRIMARY_HOST user=replicator application_name=$POD_NAME"
SLOT="${POD_NAME//-/_}"
pg_receivewal -d "$PRIMARY" --drop-slot -S "$SLOT" 2>/dev/null || true
pg_basebackup -d "$PRIMARY" -D "$PGDATA" -R -X stream --checkpoint=fast -C -S "$SLOT"
chmod 0700 "$PGDATA"
"""


def build_postgres_scripts(cluster: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names(cluster)["scripts"], namespace, cluster, COMPONENT),
        "data": {"10-replication.sh": INIT_REPLICATION, "clone-primary.sh": CLONE_PRIMARY},
    }


def slot_retention_mb(storage_size: str) -> int:
    """WAL a replication slot may hold back: a quarter of the volume, at least 64 MB."""
    return max(64, int(parse_quantity(storage_size)) // 4 // MI)


def _server_args(tier: DataTier) -> list[str]:
    settings = {
        "max_slot_wal_keep_size": f"{slot_retention_mb(tier.storage_size)}MB",
        **tier.parameters,
        "listen_addresses": "*",
        "wal_level": "replica",
        "max_wal_senders": "20",
        "max_replication_slots": "20",
        "hot_standby": "on",
    }
    return [arg for key, value in sorted(settings.items()) for arg in ("-c", f"{key}={value}")]


def _secret_env(cluster: str, var: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": names(cluster)["secret"], "key": key}}}


def _container(cluster: str, tier: DataTier) -> dict[str, Any]:
    ready = ["pg_isready", "-q", "-h", "127.0.0.1", "-U", SUPERUSER]
    return {
        "name": "postgres",
        "image": tier.image,
        "args": _server_args(tier),
        "env": [
            {"name": "POSTGRES_USER", "value": SUPERUSER},
            {"name": "POSTGRES_DB", "value": DATABASE},
            {"name": "PGDATA", "value": PGDATA},
            _secret_env(cluster, "POSTGRES_PASSWORD", "superuser-password"),
            _secret_env(cluster, "REPLICATION_PASSWORD", "replication-password"),
        ],
        "ports": [{"name": "postgres", "containerPort": 5432, "protocol": "TCP"}],
        "resources": tier.resources,
        "readinessProbe": {"exec": {"command": ready}, "initialDelaySeconds": 5, "periodSeconds": 5},
        "livenessProbe": {
            "exec": {"command": ready},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "securityContext": container_security(RUN_AS),
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},
            {
                "name": "scripts",
                "mountPath": "/docker-entrypoint-initdb.d/10-replication.sh",
                "subPath": "10-replication.sh",
                "readOnly": True,
            },
        ],
    }


def _statefulset(
    cluster: str, namespace: str, tier: DataTier, role: str, replicas: int, init: list[dict[str, Any]]
) -> dict[str, Any]:
    n = names(cluster)
    select = {**selector_labels(cluster, COMPONENT), ROLE_LABEL: role}
    pod_labels = {**labels(cluster, COMPONENT), ROLE_LABEL: role}
    pod: dict[str, Any] = {
        "securityContext": pod_security(RUN_AS),
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 60,
        "topologySpreadConstraints": spread_over_nodes(cluster, COMPONENT),  # primary apart from replicas
        "containers": [_container(cluster, tier)],
        "volumes": [
            {"name": "run", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "scripts", "configMap": {"name": n["scripts"], "defaultMode": 0o555}},
        ],
    }
    if init:
        pod["initContainers"] = init
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {**metadata(n[role], namespace, cluster, COMPONENT), "labels": pod_labels},
        "spec": {
            "serviceName": n["headless"],
            "replicas": replicas,
            "selector": {"matchLabels": select},
            "podManagementPolicy": "Parallel" if role == "replica" else "OrderedReady",
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": tier.retention,
                "whenScaled": tier.retention,
            },
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
            "volumeClaimTemplates": [claim_template(tier.storage_size, tier.storage_class)],
        },
    }


def build_postgres_primary(cluster: str, namespace: str, tier: DataTier) -> dict[str, Any]:
    return _statefulset(cluster, namespace, tier, "primary", 1, [])


def build_postgres_replicas(cluster: str, namespace: str, tier: DataTier) -> dict[str, Any]:
    clone = {
        "name": "clone-primary",
        "image": tier.image,
        "command": ["/bin/bash", "/scripts/clone-primary.sh"],
        "env": [
            {"name": "PGDATA", "value": PGDATA},
            {"name": "PRIMARY_HOST", "value": names(cluster)["rw"]},
            {"name": "PGPORT", "value": "5432"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            _secret_env(cluster, "REPLICATION_PASSWORD", "replication-password"),
        ],
        "securityContext": container_security(RUN_AS),
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return _statefulset(cluster, namespace, tier, "replica", tier.replicas, [clone])


def _service(
    cluster: str, namespace: str, name: str, role: str | None, headless: bool = False
) -> dict[str, Any]:
    select = selector_labels(cluster, COMPONENT)
    if role:
        select = {**select, ROLE_LABEL: role}
    spec: dict[str, Any] = {
        "selector": select,
        "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres", "protocol": "TCP"}],
    }
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
    objs = [
        build_postgres_secret(cluster, namespace, tier, passwords),
        build_postgres_scripts(cluster, namespace),
        _service(cluster, namespace, n["headless"], None, headless=True),
        _service(cluster, namespace, n["rw"], "primary"),
        build_postgres_primary(cluster, namespace, tier),
    ]
    if tier.replicas:
        # Replicas are drained one at a time; the primary has no budget: one pod whose budget would
        # forbid every drain of its node (a switchover first is what would make one safe).
        replicas = {**selector_labels(cluster, COMPONENT), ROLE_LABEL: "replica"}
        objs += [
            _service(cluster, namespace, n["ro"], "replica"),
            build_postgres_replicas(cluster, namespace, tier),
            disruption_budget(n["replica"], namespace, cluster, COMPONENT, replicas),
        ]
    return objs
