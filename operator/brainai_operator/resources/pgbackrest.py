"""What every PostgreSQL member carries for pgBackRest: its files and certificate, WAL archiving,
and Patroni's bootstrap from a backup when the cluster is a restore.

Kept apart from the repository host and the backup Jobs (`backup`), which need the members' names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from brainai_operator.api import BackupSpec, RestoreSpec, S3Repository
from brainai_operator.resources.common import child_name
from brainai_operator.strategies import DataTier

STANZA = "brain-ai"
TLS_NAME = "pgbackrest"  # the certificate's common name, the only client each TLS server lets in
TLS_PORT = 8432
CONF_DIR = "/etc/pgbackrest/conf"
TLS_DIR = "/etc/pgbackrest/tls"
MEMBER_CONFIG = f"{CONF_DIR}/member.conf"
REPO_PATH, SOURCE_PATH = "/repo", "/source"
OWN_REPO = 1  # this cluster's repository; the source of a restore is repo 2, unless it is this very one


def names(cluster: str) -> dict[str, str]:
    return {
        "repo": child_name(cluster, "postgres-repo"),  # StatefulSet and headless Service
        "tls": child_name(cluster, "postgres-backup-tls"),
        "config": child_name(cluster, "postgres-pgbackrest"),
        "schedule": child_name(cluster, "postgres-backup"),  # CronJob; on-demand Jobs add a suffix
    }


def _location(s3: S3Repository | None) -> tuple[str, str, str | None] | None:
    """Where a repository is (None: the cluster's claim); the default S3 paths of a cluster and of
    its own restore are the same."""
    return None if s3 is None else (s3.endpoint, s3.bucket, s3.path)


def source_repo(cluster: str, restore: RestoreSpec, backup: BackupSpec | None) -> int:
    """The repository index a restore reads: this cluster's own when it restores its own backups
    (re-created under the same name, with the very same repository)."""
    same = (
        restore.from_cluster == cluster
        and backup is not None
        and _location(restore.s3) == _location(backup.s3)
    )
    return OWN_REPO if same else 2


def recovery_time(rfc3339: str) -> str:
    """A target time as pgBackRest parses it to pick the backup (it ignores RFC 3339's `T` and `Z`)."""
    moment = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(dt.UTC)
    return (
        moment.strftime("%Y-%m-%d %H:%M:%S")
        + (f".{moment.microsecond:06d}" if moment.microsecond else "")
        + "+00"
    )


def tls_client(prefix: str) -> dict[str, str]:
    return {
        f"{prefix}-type": "tls",
        f"{prefix}-cert-file": f"{TLS_DIR}/tls.crt",
        f"{prefix}-key-file": f"{TLS_DIR}/tls.key",
        f"{prefix}-ca-file": f"{TLS_DIR}/ca.crt",
    }


def archive_parameters() -> dict[str, str]:
    """postgresql.conf for continuous WAL archiving: a segment at least every minute, so a restore
    to a point in time loses at most the last minute before it."""
    return {
        "archive_mode": "on",
        "archive_command": f"pgbackrest --stanza={STANZA} archive-push %p",
        "archive_timeout": "60s",
    }


def restore_command(cluster: str, tier: DataTier) -> str:
    assert tier.restore
    index = source_repo(cluster, tier.restore, tier.backup)
    return f'pgbackrest --config={CONF_DIR}/restore.conf --stanza={STANZA} --repo={index} archive-get %f "%p"'


def patroni_bootstrap(cluster: str, tier: DataTier) -> dict[str, Any]:
    """Patroni's custom bootstrap: the data directory from a backup, then recovery (Patroni writes
    its settings and drops them once the member is promoted)."""
    assert tier.restore
    recovery: dict[str, str] = {
        "restore_command": restore_command(cluster, tier),
        "recovery_target_action": "promote",
    }
    if tier.restore.target_time:
        recovery["recovery_target_time"] = recovery_time(tier.restore.target_time)
    return {
        "method": "pgbackrest",
        "pgbackrest": {
            "command": f"{CONF_DIR}/restore.sh",
            "no_params": True,
            "keep_existing_recovery_conf": False,
            "recovery_conf": recovery,
        },
    }


def pod_volumes(cluster: str) -> list[dict[str, Any]]:
    """pgBackRest's files and certificate, for every pod that runs it. The key may be read by the
    pods' group only (fsGroup): pgBackRest refuses a key others can read."""
    n = names(cluster)
    return [
        {"name": "pgbackrest-conf", "configMap": {"name": n["config"], "defaultMode": 0o555}},
        {"name": "pgbackrest-tls", "secret": {"secretName": n["tls"], "defaultMode": 0o640}},
    ]


MOUNTS = [
    {"name": "pgbackrest-conf", "mountPath": CONF_DIR, "readOnly": True},
    {"name": "pgbackrest-tls", "mountPath": TLS_DIR, "readOnly": True},
]
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
