"""Backups of the Patroni cluster with pgBackRest: a repository host, WAL archiving, backup Jobs,
and restore of a new cluster from another one's backups.

pgBackRest keeps one repository per cluster, on a volume claim or in an S3-compatible bucket. A
repository host pod (a one-pod StatefulSet) owns the claim and serves pgBackRest's TLS protocol:
every member pushes its WAL to it (`archive_command`), and a restoring member reads the source's
backups and WAL through it. A backup runs in a Job next to the repository host (same node, same
claim): pgBackRest runs a backup where its repository is, and reaches the leader through the
`pgbackrest server` sidecar of every member. The claim outlives the BrainAICluster, so a cluster
deleted by mistake can be restored (`spec.postgres.restore.fromCluster`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from brainai_operator.api import S3Repository, VolumeRepository
from brainai_operator.resources import pgbackrest, postgres
from brainai_operator.resources.common import (
    claim_template,
    container_security,
    content_hash,
    labels,
    metadata,
    pod_security,
    secret,
    selector_labels,
)
from brainai_operator.resources.pgbackrest import (
    CONF_DIR,
    MOUNTS,
    OWN_REPO,
    REPO_PATH,
    RESOURCES,
    SOURCE_PATH,
    STANZA,
    TLS_DIR,
    TLS_NAME,
    TLS_PORT,
)
from brainai_operator.strategies import DataTier

REPO_COMPONENT = "postgres-repo"
JOB_COMPONENT = "postgres-backup"
REQUEST_ANNOTATION = "brainai.io/backup-request"
S3_KEYS = ("access-key-id", "secret-access-key")


def repo_claim(cluster: str) -> str:
    """The repository's volume claim: kept when the cluster goes, so a new one can restore from it."""
    return f"repo-{pgbackrest.names(cluster)['repo']}-0"


def request_job_name(cluster: str, request: str) -> str:
    return f"{pgbackrest.names(cluster)['schedule']}-{hashlib.sha256(request.encode()).hexdigest()[:8]}"


def tls_dns_names(cluster: str, namespace: str) -> list[str]:
    """Who presents the certificate: every member and the repository host, by their pod DNS names."""
    return [
        f"*.{service}.{namespace}.svc{suffix}"
        for service in (postgres.names(cluster)["pods"], pgbackrest.names(cluster)["repo"])
        for suffix in ("", ".cluster.local")
    ]


def repo_host(cluster: str, namespace: str) -> str:
    repo = pgbackrest.names(cluster)["repo"]
    return f"{repo}-0.{repo}.{namespace}.svc"


def member_host(cluster: str, namespace: str, ordinal: int) -> str:
    return f"{postgres.pod_name(cluster, ordinal)}.{postgres.names(cluster)['pods']}.{namespace}.svc"


def _ini(sections: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, options in sections.items():
        out.append(f"[{section}]")
        out += [f"{k}={v}" for k, v in options.items()]
        out.append("")
    return "\n".join(out)


TLS_SERVER = {
    "tls-server-address": "*",
    "tls-server-port": str(TLS_PORT),
    "tls-server-cert-file": f"{TLS_DIR}/tls.crt",
    "tls-server-key-file": f"{TLS_DIR}/tls.key",
    "tls-server-ca-file": f"{TLS_DIR}/ca.crt",
    "tls-server-auth": f"{TLS_NAME}={STANZA}",
}
# Logs go to the container's output only; locks and the spool to the pod's scratch volume.
LOGGING = {"log-level-console": "info", "log-level-file": "off", "log-path": "/tmp"}
SCRATCH = {"lock-path": "/tmp", "spool-path": "/tmp"}


def _s3_repo(index: int, s3: S3Repository, default_path: str) -> dict[str, str]:
    return {
        f"repo{index}-type": "s3",
        f"repo{index}-s3-bucket": s3.bucket,
        f"repo{index}-s3-endpoint": s3.endpoint,
        f"repo{index}-s3-region": s3.region,
        f"repo{index}-s3-uri-style": s3.uri_style,
        f"repo{index}-storage-verify-tls": "y" if s3.verify_tls else "n",
        f"repo{index}-path": s3.path or default_path,
    }


def repository_config(cluster: str, namespace: str, tier: DataTier, serving: bool = False) -> str:
    """The backup Jobs' file: this cluster's repository, and every member as a PostgreSQL host
    (pgBackRest finds the leader among them). `serving`: the repository host's server's, which also
    reads the source of a restore (stanza-create writes to every repository it is given, and that
    one is read-only)."""
    backup, restore = tier.backup, tier.restore
    options: dict[str, str] = {**LOGGING, **TLS_SERVER, "start-fast": "y", "spool-path": "/tmp"}
    if backup:
        if backup.s3:
            options |= _s3_repo(OWN_REPO, backup.s3, f"/{namespace}/{cluster}")
            options["lock-path"] = "/tmp"
        else:
            # Backup Jobs and the repository host share the claim, and with it their locks.
            options |= {
                f"repo{OWN_REPO}-path": REPO_PATH,
                "lock-path": f"{REPO_PATH}/lock",
            }
        options[f"repo{OWN_REPO}-retention-full"] = str(backup.retention)
    else:
        options["lock-path"] = "/tmp"
    if serving and restore and pgbackrest.source_repo(cluster, restore, backup) != OWN_REPO:
        index = pgbackrest.source_repo(cluster, restore, backup)
        if restore.s3:
            options |= _s3_repo(index, restore.s3, f"/{namespace}/{restore.from_cluster}")
        else:
            options[f"repo{index}-path"] = SOURCE_PATH
    hosts: dict[str, str] = {}
    for ordinal in range(1 + tier.replicas):
        k = f"pg{ordinal + 1}"
        hosts |= {f"{k}-host": member_host(cluster, namespace, ordinal), f"{k}-path": postgres.PGDATA}
        hosts |= pgbackrest.tls_client(f"{k}-host")
    return _ini({"global": options, STANZA: hosts})


def member_config(cluster: str, namespace: str) -> str:
    """A member's file: its data directory, and the repository host it archives WAL to."""
    options = {**LOGGING, **SCRATCH, **TLS_SERVER, "repo1-host": repo_host(cluster, namespace)}
    options |= pgbackrest.tls_client("repo1-host")
    return _ini(
        {
            "global": options,
            STANZA: {"pg1-path": postgres.PGDATA, "pg1-socket-path": "/var/run/postgresql"},
        }
    )


def restore_config(cluster: str, namespace: str, tier: DataTier) -> str:
    """What a restoring member reads the source's backups and WAL with (and nothing else does:
    this cluster's own WAL never goes into the source's repository)."""
    assert tier.restore
    index = pgbackrest.source_repo(cluster, tier.restore, tier.backup)
    options = {**LOGGING, **SCRATCH, f"repo{index}-host": repo_host(cluster, namespace)}
    options |= pgbackrest.tls_client(f"repo{index}-host")
    return _ini({"global": options, STANZA: {"pg1-path": postgres.PGDATA}})


def restore_script(cluster: str, tier: DataTier) -> str:
    assert tier.restore
    index = pgbackrest.source_repo(cluster, tier.restore, tier.backup)
    target = ""
    if tier.restore.target_time:
        target = f" --type=time '--target={pgbackrest.recovery_time(tier.restore.target_time)}'"
    return f"""\
#!/bin/sh
# Patroni's bootstrap: the newest backup of {tier.restore.from_cluster} (before the target time, if one).
set -eu
export PGBACKREST_CONFIG={CONF_DIR}/restore.conf
pgbackrest --stanza={STANZA} --repo={index}{target} restore
# Patroni writes the recovery settings and removes them after promotion; pgBackRest's own would
# stay in postgresql.auto.conf and outlive it.
: > "$PGDATA/postgresql.auto.conf"
rm -f "$PGDATA/recovery.signal" "$PGDATA/standby.signal"
"""


REPOSITORY_SCRIPT = f"""\
#!/bin/sh
# The stanza is created once a leader answers (until then the members' WAL waits in pg_wal), then
# this serves pgBackRest's TLS protocol to the members and the backup Jobs.
(until pgbackrest --config={CONF_DIR}/repository.conf --stanza={STANZA} stanza-create; do sleep 10; done) &
exec pgbackrest server
"""
SERVE_SCRIPT = "#!/bin/sh\nexec pgbackrest server\n"

# The backup's summary, as the Job's termination message (the operator puts it in status).
SUMMARY = """\
import json, sys
info = json.load(sys.stdin)[0]
backups = info.get("backup") or []
last = backups[-1]
print(json.dumps({
    "label": last["label"],
    "start": last["timestamp"]["start"],
    "stop": last["timestamp"]["stop"],
    "size": last["info"]["size"],
    "repositorySize": last["info"]["repository"]["size"],
    "backups": sum(1 for b in backups if b["type"] == "full"),
}))
"""
BACKUP_SCRIPT = f"""\
#!/bin/sh
set -eu
pgbackrest --stanza={STANZA} stanza-create
pgbackrest --stanza={STANZA} --repo={OWN_REPO} --type=full backup
pgbackrest --stanza={STANZA} --repo={OWN_REPO} --output=json info |
  python3 {CONF_DIR}/summary.py > /dev/termination-log
"""


def build_pgbackrest_configmap(
    cluster: str, namespace: str, tier: DataTier, served: DataTier | None = None
) -> dict[str, Any]:
    """`served`: what the repository host serves (without the source once a restore is done)."""
    data = {
        "repository.conf": repository_config(cluster, namespace, tier),
        "server.conf": repository_config(cluster, namespace, served or tier, serving=True),
        "repository.sh": REPOSITORY_SCRIPT if tier.backup else SERVE_SCRIPT,
    }
    if tier.backup:
        data |= {
            "member.conf": member_config(cluster, namespace),
            "backup.sh": BACKUP_SCRIPT,
            "summary.py": SUMMARY,
        }
    if tier.restore:
        data |= {
            "restore.conf": restore_config(cluster, namespace, tier),
            "restore.sh": restore_script(cluster, tier),
        }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(pgbackrest.names(cluster)["config"], namespace, cluster, REPO_COMPONENT),
        "data": data,
    }


def build_tls_secret(cluster: str, namespace: str, material: dict[str, str]) -> dict[str, Any]:
    return secret(
        pgbackrest.names(cluster)["tls"], namespace, cluster, REPO_COMPONENT, material, retain=False
    )


def _s3_env(index: int, s3: S3Repository | None) -> list[dict[str, Any]]:
    if s3 is None:
        return []
    return [
        {
            "name": f"PGBACKREST_REPO{index}_S3_{var}",
            "valueFrom": {"secretKeyRef": {"name": s3.credentials, "key": key}},
        }
        for var, key in zip(("KEY", "KEY_SECRET"), S3_KEYS, strict=True)
    ]


def _repository_env(cluster: str, tier: DataTier, config: str) -> list[dict[str, Any]]:
    env = [{"name": "PGBACKREST_CONFIG", "value": f"{CONF_DIR}/{config}"}]
    if tier.backup:
        env += _s3_env(OWN_REPO, tier.backup.s3)
    if tier.restore and pgbackrest.source_repo(cluster, tier.restore, tier.backup) != OWN_REPO:
        env += _s3_env(pgbackrest.source_repo(cluster, tier.restore, tier.backup), tier.restore.s3)
    return env


def _on_volume(tier: DataTier) -> bool:
    return tier.backup is not None and tier.backup.s3 is None


def build_repository_host(cluster: str, namespace: str, tier: DataTier) -> list[dict[str, Any]]:
    """The repository host: a StatefulSet of one pod (its claim, when on a volume, is the repository)
    and the headless Service that gives it a stable name."""
    n = pgbackrest.names(cluster)
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, *MOUNTS]
    pod_volumes_ = [{"name": "tmp", "emptyDir": {}}, *pgbackrest.pod_volumes(cluster)]
    if _on_volume(tier):
        mounts.append({"name": "repo", "mountPath": REPO_PATH})
    restore = tier.restore
    if restore and restore.s3 is None and pgbackrest.source_repo(cluster, restore, tier.backup) != OWN_REPO:
        mounts.append({"name": "source", "mountPath": SOURCE_PATH, "readOnly": True})
        pod_volumes_.append(
            {
                "name": "source",
                "persistentVolumeClaim": {"claimName": repo_claim(restore.from_cluster), "readOnly": True},
            }
        )
    spec: dict[str, Any] = {
        "serviceName": n["repo"],
        "replicas": 1,
        "selector": {"matchLabels": selector_labels(cluster, REPO_COMPONENT)},
        # Backups outlive the cluster: a cluster deleted by mistake is restored from them.
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "template": {
            "metadata": {
                "labels": labels(cluster, REPO_COMPONENT),
                # pgBackRest reads its file at start: a changed one restarts the server.
                "annotations": {
                    "brainai.io/pgbackrest-config": content_hash(
                        repository_config(cluster, namespace, tier, serving=True)
                    )
                },
            },
            "spec": {
                "securityContext": pod_security(postgres.RUN_AS),
                "containers": [
                    {
                        "name": "pgbackrest",
                        "image": tier.image,
                        "command": ["/bin/sh", f"{CONF_DIR}/repository.sh"],
                        "env": _repository_env(cluster, tier, "server.conf"),
                        "ports": [{"name": "pgbackrest", "containerPort": TLS_PORT, "protocol": "TCP"}],
                        "readinessProbe": {"tcpSocket": {"port": "pgbackrest"}, "periodSeconds": 5},
                        "resources": RESOURCES,
                        "securityContext": container_security(postgres.RUN_AS),
                        "volumeMounts": mounts,
                    }
                ],
                "volumes": pod_volumes_,
            },
        },
    }
    if _on_volume(tier):
        assert tier.backup
        volume = tier.backup.volume or VolumeRepository()
        claim = claim_template(str(volume.size), volume.storage_class_name)
        spec["volumeClaimTemplates"] = [{**claim, "metadata": {"name": "repo"}}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(n["repo"], namespace, cluster, REPO_COMPONENT),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector_labels(cluster, REPO_COMPONENT),
            "ports": [
                {
                    "name": "pgbackrest",
                    "port": TLS_PORT,
                    "targetPort": TLS_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(n["repo"], namespace, cluster, REPO_COMPONENT),
        "spec": spec,
    }
    return [service, statefulset]


def backup_job_template(cluster: str, tier: DataTier) -> dict[str, Any]:
    """One full backup, then expiry of what retention no longer keeps; its summary (or, failing,
    the end of its log) is the termination message the operator reports."""
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, *MOUNTS]
    pod_volumes_ = [{"name": "tmp", "emptyDir": {}}, *pgbackrest.pod_volumes(cluster)]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_security(postgres.RUN_AS),
        "containers": [
            {
                "name": "backup",
                "image": tier.image,
                "command": ["/bin/sh", f"{CONF_DIR}/backup.sh"],
                "env": _repository_env(cluster, tier, "repository.conf"),
                "resources": RESOURCES,
                "securityContext": container_security(postgres.RUN_AS),
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": mounts,
            }
        ],
        "volumes": pod_volumes_,
    }
    if _on_volume(tier):
        mounts.append({"name": "repo", "mountPath": REPO_PATH})
        pod_volumes_.append({"name": "repo", "persistentVolumeClaim": {"claimName": repo_claim(cluster)}})
        # A ReadWriteOnce claim is shared on one node only: the Job goes where the repository host is.
        pod["affinity"] = {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": selector_labels(cluster, REPO_COMPONENT)},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    return {
        "metadata": {"labels": labels(cluster, JOB_COMPONENT)},
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": 6 * 3600,
            "template": {"metadata": {"labels": labels(cluster, JOB_COMPONENT)}, "spec": pod},
        },
    }


def build_backup_cronjob(cluster: str, namespace: str, tier: DataTier) -> dict[str, Any]:
    assert tier.backup
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(pgbackrest.names(cluster)["schedule"], namespace, cluster, JOB_COMPONENT),
        "spec": {
            "schedule": tier.backup.schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": backup_job_template(cluster, tier),
        },
    }


def build_requested_job(cronjob: dict[str, Any], request: str, cluster: str) -> dict[str, Any]:
    """An on-demand backup: a Job from the CronJob's template, owned by it (as `kubectl create job
    --from=cronjob/...` makes one), so it goes with the schedule and is never pruned as stray."""
    meta = cronjob["metadata"]
    template = cronjob["spec"]["jobTemplate"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": request_job_name(cluster, request),
            "namespace": meta["namespace"],
            "labels": {**(template.get("metadata") or {}).get("labels", {})},
            "annotations": {REQUEST_ANNOTATION: request},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {**template["spec"], "ttlSecondsAfterFinished": 7 * 86400},
    }


def build_backup(
    cluster: str, namespace: str, tier: DataTier, tls: dict[str, str], restored: bool = False
) -> list[dict[str, Any]]:
    """Everything backups and a restore need; nothing when neither is asked for. Once `restored`,
    nothing reads the source again: the repository host lets go of its claim (so it may be
    deleted), and goes altogether when there are no backups to keep. The members' files stay, so
    they are not restarted for it."""
    if tier.external or not (tier.backup or tier.restore):
        return []
    served = tier.model_copy(update={"restore": None}) if restored else tier
    objs = [
        build_tls_secret(cluster, namespace, tls),
        build_pgbackrest_configmap(cluster, namespace, tier, served),
    ]
    if served.backup or served.restore:
        objs += build_repository_host(cluster, namespace, served)
    if tier.backup:
        objs.append(build_backup_cronjob(cluster, namespace, served))
    return objs
