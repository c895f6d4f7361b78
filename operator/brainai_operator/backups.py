"""Reconcile steps for backups and restore: on-demand backups by annotation, the last backups'
outcome from their Jobs, and when a restored database took over.

The backup Jobs (the CronJob's and on-demand ones) report through their pods' termination
messages: a JSON summary on success, the end of pgBackRest's log on failure. Status keeps what
they said, since Jobs and pods are deleted after a while.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from brainai_operator.client import Kube
from brainai_operator.postgres_ha import PostgresState
from brainai_operator.resources import backup, pgbackrest, postgres
from brainai_operator.resources.common import COMPONENT_LABEL, owned_selector
from brainai_operator.status import PostgresMembers, pod_ready
from brainai_operator.strategies import DataTier

Event = tuple[str, str, bool]  # reason, message, warning
MESSAGE_LIMIT = 600


@dataclass
class BackupState:
    status: dict[str, Any]  # status.postgres.backup
    condition: tuple[bool, str, str] | None  # LastBackupSucceeded, once a backup has finished
    events: list[Event] = field(default_factory=list)


def _finished(job: dict[str, Any]) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def _termination(job: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last terminated state of the Job's backup container (its newest pod's)."""
    name = job["metadata"]["name"]
    mine = [p for p in pods if (p["metadata"].get("labels") or {}).get("job-name") == name]
    for pod in sorted(mine, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True):
        for c in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (c.get("state") or {}).get("terminated")
            if terminated:
                return dict(terminated)
    return None


def _epoch(seconds: Any) -> str | None:
    if not isinstance(seconds, int):
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backup_record(job: dict[str, Any], outcome: str, pods: list[dict[str, Any]]) -> dict[str, Any]:
    """status' account of one finished backup Job, from what its container said on the way out."""
    record: dict[str, Any] = {"job": job["metadata"]["name"]}
    terminated = _termination(job, pods) or {}
    said = (terminated.get("message") or "").strip()
    if outcome == "Complete":
        try:
            summary = json.loads(said.splitlines()[-1]) if said else {}
        except (json.JSONDecodeError, IndexError):
            summary = {}
        record |= {
            "label": summary.get("label"),
            "startedAt": _epoch(summary.get("start")),
            "completedAt": _epoch(summary.get("stop")) or (job.get("status") or {}).get("completionTime"),
            "size": summary.get("size"),
            "repositorySize": summary.get("repositorySize"),
            "backups": summary.get("backups"),
        }
    else:
        # pgBackRest's ERROR line says what went wrong; the lines before it are progress.
        lines = [line for line in said.splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR" in line]
        reason = (errors[-1] if errors else (lines[-1] if lines else "")).strip()
        record |= {
            "completedAt": terminated.get("finishedAt"),
            "message": (reason or f"Job {record['job']} failed (no log left)")[:MESSAGE_LIMIT],
        }
    return {k: v for k, v in record.items() if v is not None}


def _size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n //= 1024
    return f"{n} TiB"


def request_backup(
    kube: Kube, obj: dict[str, Any], cronjob: dict[str, Any] | None, previous: dict[str, Any]
) -> tuple[str | None, list[Event]]:
    """An on-demand backup for a new brainai.io/backup-request value; the value now handled."""
    meta = obj["metadata"]
    request = ((meta.get("annotations") or {}).get(backup.REQUEST_ANNOTATION) or "").strip()
    handled = previous.get("lastRequest")
    if not request or request == handled:
        return handled, []
    if cronjob is None or not cronjob["metadata"].get("uid"):
        return handled, []  # the next pass, once the CronJob exists
    job = backup.build_requested_job(cronjob, request, meta["name"])
    kube.apply(job)
    message = f"backup requested ({backup.REQUEST_ANNOTATION}={request}): Job {job['metadata']['name']}"
    return request, [("BackupRequested", message, False)]


def reconcile_backups(
    kube: Kube,
    obj: dict[str, Any],
    jobs: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    previous: dict[str, Any],
    act: bool,
) -> BackupState:
    """`jobs` and `pods`: the backup Jobs and their pods; `previous`: status.postgres.backup."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    status = dict(previous)
    events: list[Event] = []
    if act:
        cronjob = kube.get("batch/v1", "CronJob", pgbackrest.names(name)["schedule"], namespace)
        handled, events = request_backup(kube, obj, cronjob, previous)
        if handled:
            status["lastRequest"] = handled
    finished = sorted(
        ((j, outcome) for j in jobs if (outcome := _finished(j))),
        key=lambda pair: pair[0]["metadata"].get("creationTimestamp") or "",
    )
    for outcome, key in (("Complete", "lastBackup"), ("Failed", "lastFailure")):
        newest = next((j for j, o in reversed(finished) if o == outcome), None)
        if newest is None:
            continue
        known = (previous.get(key) or {}).get("job")
        if known == newest["metadata"]["name"] and previous.get(key):
            continue
        record = backup_record(newest, outcome, pods)
        # A Job deleted (by hand, or by its TTL before the CronJob's) must not bring back an older one.
        known_at = (previous.get(key) or {}).get("completedAt") or ""
        if known_at and (record.get("completedAt") or "") <= known_at:
            continue
        status[key] = record
        if outcome == "Complete":
            text = f"backup {record.get('label', record['job'])} ({_size(record.get('size'))}) completed"
            events.append(("BackupSucceeded", text, False))
        else:
            events.append(("BackupFailed", f"backup Job {record['job']} failed: {record['message']}", True))
    return BackupState(status=status, condition=backup_condition(status), events=events)


def backup_condition(status: dict[str, Any]) -> tuple[bool, str, str] | None:
    """LastBackupSucceeded: whether the newest finished backup succeeded (advisory, like metrics:
    the database serves either way)."""
    good, bad = status.get("lastBackup"), status.get("lastFailure")
    if not good and not bad:
        return None
    if bad and (not good or (bad.get("completedAt") or "") > (good.get("completedAt") or "")):
        return False, "BackupFailed", f"backup Job {bad['job']} failed: {bad.get('message', '')}"
    assert good
    return (
        True,
        "BackupSucceeded",
        f"backup {good.get('label', good['job'])} ({_size(good.get('size'))}) completed at "
        f"{good.get('completedAt', 'an unknown time')}",
    )


def restore_state(
    tier: DataTier,
    members: PostgresMembers,
    pods: list[dict[str, Any]],
    previous: dict[str, Any] | None,
    now: str,
) -> tuple[dict[str, Any] | None, list[Event]]:
    """status.postgres.restore: set once, when the restored leader first serves."""
    if not tier.restore:
        return None, []
    if previous and previous.get("completedAt"):
        return previous, []
    status: dict[str, Any] = {"fromCluster": tier.restore.from_cluster}
    if tier.restore.target_time:
        status["targetTime"] = tier.restore.target_time
    leader = next((p for p in pods if p["metadata"]["name"] == members.primary), None)
    if leader is None or not pod_ready(leader):
        return status, []
    status["completedAt"] = now
    to = f" to {tier.restore.target_time}" if tier.restore.target_time else ""
    message = f"database restored from {tier.restore.from_cluster}'s backups{to}; {members.primary} leads"
    return status, [("RestoreCompleted", message, False)]


def reconcile_backups_and_restore(
    kube: Kube,
    obj: dict[str, Any],
    tier: DataTier,
    pods: dict[str, list[dict[str, Any]]],
    pg: PostgresState,
    previous: dict[str, Any],
    now: str,
    act: bool,
) -> tuple[bool, str, str] | None:
    """Backups and restore of the Patroni cluster `pg` describes: their status and events go into
    `pg`'s (`previous`: status.postgres); returns the LastBackupSucceeded state."""
    condition = None
    if tier.backup:
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        jobs = [
            j
            for j in kube.list("batch/v1", "Job", namespace, owned_selector(name))
            if (j["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == backup.JOB_COMPONENT
        ]
        state = reconcile_backups(
            kube, obj, jobs, pods.get(backup.JOB_COMPONENT, []), previous.get("backup") or {}, act
        )
        if state.status:
            pg.status["backup"] = state.status
        pg.events.extend(state.events)
        condition = state.condition
    restored, events = restore_state(
        tier, pg.members, pods.get(postgres.COMPONENT, []), previous.get("restore"), now
    )
    if restored:
        pg.status["restore"] = restored
    pg.events.extend(events)
    return condition
