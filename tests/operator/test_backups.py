"""The backup and restore reconcile steps: on-demand backups by annotation, what the Jobs said, the
LastBackupSucceeded condition, and when a restored database took over."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from brainai_operator import backups
from brainai_operator.api import BackupStatus, BrainAIClusterSpec, RestoreStatus
from brainai_operator.client import Kube
from brainai_operator.postgres_ha import PostgresState
from brainai_operator.resources import backup, postgres
from brainai_operator.resources.common import COMPONENT_LABEL, labels
from brainai_operator.status import postgres_members
from brainai_operator.strategies import DataTier, resolve

NOW = "2026-12-05T10:00:00Z"
JOB = "c-postgres-backup-29001"
START = 1796349600  # 2026-12-04T02:00:00Z
SUMMARY = {
    "label": "20261204-020000F",
    "start": START,
    "stop": START + 754,
    "size": 123456789,
    "repositorySize": 23456789,
    "backups": 3,
}
ERROR = "2026-12-04 02:00:10.456 P00  ERROR: [056]: unable to find primary cluster - cannot proceed"
LOG = [
    "2026-12-04 02:00:00.123 P00   INFO: backup command begin 2.54.0: --exec-id=42-abcdef --repo=1",
    "2026-12-04 02:00:05.001 P00   WARN: unable to check pg1: [DbConnectError] unable to connect",
    ERROR,
]


class FakeKube:
    """The calls the backup steps make: the CronJob (`cronjob`, None until it exists), the backup
    Jobs listed; applies are recorded."""

    def __init__(
        self, cronjob: dict[str, Any] | None = None, jobs: list[dict[str, Any]] | None = None
    ) -> None:
        self.cronjob, self.jobs = cronjob, jobs or []
        self.applied: list[dict[str, Any]] = []
        self.lists: list[tuple[str, str, str | None]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        if (api_version, kind, name, namespace) == ("batch/v1", "CronJob", "c-postgres-backup", "ns"):
            return self.cronjob
        return None

    def apply(self, obj: dict[str, Any], manager: str = "") -> dict[str, Any]:
        self.applied.append(obj)
        return obj

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.lists.append((kind, namespace or "", selector))
        return self.jobs if kind == "Job" else []


def tier(**postgres_spec: Any) -> DataTier:
    spec = BrainAIClusterSpec.model_validate({"postgres": {"enabled": True, **postgres_spec}})
    resolved = resolve(spec).postgres
    assert resolved is not None
    return resolved


BACKED_UP = tier(backup={})


def cronjob(uid: str | None = "cron-uid-1") -> dict[str, Any]:
    cron = backup.build_backup_cronjob("c", "ns", BACKED_UP)
    if uid:
        cron["metadata"]["uid"] = uid
    return cron


def cluster(request: str | None = None) -> dict[str, Any]:
    annotations = {backup.REQUEST_ANNOTATION: request} if request else {}
    return {"metadata": {"name": "c", "namespace": "ns", "annotations": annotations}}


def job(name: str, outcome: str | None, created: str, **status: Any) -> dict[str, Any]:
    conditions = [{"type": outcome, "status": "True"}] if outcome else []
    return {
        "metadata": {"name": name, "creationTimestamp": created, "labels": labels("c", backup.JOB_COMPONENT)},
        "status": {"conditions": conditions, **status},
    }


def job_pod(job_name: str, created: str, **terminated: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{job_name}-{created[-3:-1]}x",
            "creationTimestamp": created,
            "labels": {"job-name": job_name},
        },
        "status": {"containerStatuses": [{"name": "backup", "state": {"terminated": terminated}}]},
    }


def reconcile(
    kube: FakeKube,
    obj: dict[str, Any],
    t: DataTier,
    jobs: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    previous: dict[str, Any],
    act: bool,
) -> backups.BackupState:
    return backups.reconcile_backups(cast(Kube, kube), obj, jobs, pods, previous, act)


def reconcile_all(
    kube: FakeKube,
    obj: dict[str, Any],
    t: DataTier,
    pods: dict[str, list[dict[str, Any]]],
    pg: PostgresState,
    previous: dict[str, Any],
    now: str,
    act: bool,
) -> tuple[bool, str, str] | None:
    return backups.reconcile_backups_and_restore(cast(Kube, kube), obj, t, pods, pg, previous, now, act)


def reasons(events: list[backups.Event]) -> list[str]:
    return [reason for reason, _, _ in events]


def test_a_new_request_starts_one_job_and_is_remembered() -> None:
    kube = FakeKube(cronjob())
    state = reconcile(kube, cluster("now-1"), BACKED_UP, [], [], {}, act=True)
    (created,) = kube.applied
    assert created["kind"] == "Job"
    assert created["metadata"]["annotations"] == {backup.REQUEST_ANNOTATION: "now-1"}
    assert created["metadata"]["ownerReferences"][0]["uid"] == "cron-uid-1"
    assert reasons(state.events) == ["BackupRequested"]
    (_, message, warning), *_ = state.events
    assert created["metadata"]["name"] in message and "now-1" in message and warning is False
    assert state.status == {"lastRequest": "now-1"}
    assert state.condition is None  # no backup has finished yet

    # The same value again (status fed back): handled already, nothing more.
    kube.applied.clear()
    again = reconcile(kube, cluster("now-1"), BACKED_UP, [], [], state.status, act=True)
    assert kube.applied == [] and again.events == [] and again.status["lastRequest"] == "now-1"

    # Another value: another Job, under another name.
    third = reconcile(kube, cluster("now-2"), BACKED_UP, [], [], again.status, act=True)
    (other,) = kube.applied
    assert other["metadata"]["name"] != created["metadata"]["name"]
    assert third.status["lastRequest"] == "now-2" and reasons(third.events) == ["BackupRequested"]


def test_no_request_while_not_acting_or_without_an_annotation() -> None:
    kube = FakeKube(cronjob())
    paused = reconcile(kube, cluster("now-1"), BACKED_UP, [], [], {}, act=False)
    assert kube.applied == [] and paused.events == [] and "lastRequest" not in paused.status
    for request in (None, "   "):
        quiet = reconcile(kube, cluster(request), BACKED_UP, [], [], {}, act=True)
        assert kube.applied == [] and quiet.events == [] and "lastRequest" not in quiet.status


@pytest.mark.parametrize("cron", [None, cronjob(uid=None)])
def test_a_request_waits_for_the_cronjob(cron: dict[str, Any] | None) -> None:
    kube = FakeKube(cron)
    before = {"lastRequest": "earlier"}
    state = reconcile(kube, cluster("now-1"), BACKED_UP, [], [], before, act=True)
    assert kube.applied == [] and state.events == []
    assert state.status["lastRequest"] == "earlier"  # still to do: the next pass starts it
    # Once the CronJob is there, the request is served.
    kube.cronjob = cronjob()
    state = reconcile(kube, cluster("now-1"), BACKED_UP, [], [], state.status, act=True)
    assert len(kube.applied) == 1 and state.status["lastRequest"] == "now-1"


def test_a_complete_job_becomes_the_last_backup_once() -> None:
    done = job(JOB, "Complete", "2026-12-04T02:00:00Z", completionTime="2026-12-04T02:13:00Z")
    pods = [
        # The retry's pod said the summary; the first attempt's failure is older.
        job_pod(JOB, "2026-12-04T02:00:00Z", exitCode=1, message=ERROR),
        job_pod(JOB, "2026-12-04T02:01:00Z", exitCode=0, message=json.dumps(SUMMARY) + "\n"),
    ]
    kube = FakeKube(cronjob())
    state = reconcile(kube, cluster(), BACKED_UP, [done], pods, {}, act=True)
    assert state.status["lastBackup"] == {
        "job": JOB,
        "label": "20261204-020000F",
        "startedAt": "2026-12-04T02:00:00Z",
        "completedAt": "2026-12-04T02:12:34Z",
        "size": 123456789,
        "repositorySize": 23456789,
        "backups": 3,
    }
    assert BackupStatus.model_validate(state.status).last_backup is not None  # fits the status schema
    assert reasons(state.events) == ["BackupSucceeded"]
    (_, message, warning), *_ = state.events
    assert "20261204-020000F" in message and "117 MiB" in message and warning is False
    assert state.condition is not None and state.condition[:2] == (True, "BackupSucceeded")
    assert "2026-12-04T02:12:34Z" in state.condition[2]

    # The next pass, with the status fed back: the same Job is not reported again.
    again = reconcile(kube, cluster(), BACKED_UP, [done], pods, state.status, act=True)
    assert again.events == [] and again.status == state.status


def test_a_complete_job_without_a_summary_keeps_the_jobs_completion_time() -> None:
    done = job(JOB, "Complete", "2026-12-04T02:00:00Z", completionTime="2026-12-04T02:13:00Z")
    state = reconcile(FakeKube(), cluster(), BACKED_UP, [done], [], {}, act=False)
    assert state.status["lastBackup"] == {"job": JOB, "completedAt": "2026-12-04T02:13:00Z"}
    assert reasons(state.events) == ["BackupSucceeded"] and "size unknown" in state.events[0][1]


@pytest.mark.parametrize(
    "log",
    [
        LOG,  # the log ends in the error
        [*LOG, "2026-12-04 02:00:10.460 P00   INFO: backup command end: aborted with exception [056]"],
    ],
)
def test_a_failed_job_is_reported_by_its_error_line(log: list[str]) -> None:
    failed = job(JOB, "Failed", "2026-12-04T02:00:00Z")
    pods = [
        job_pod(
            JOB, "2026-12-04T02:00:00Z", exitCode=1, message="\n".join(log), finishedAt="2026-12-04T02:00:11Z"
        )
    ]
    state = reconcile(FakeKube(cronjob()), cluster(), BACKED_UP, [failed], pods, {}, act=True)
    assert state.status["lastFailure"] == {
        "job": JOB,
        "completedAt": "2026-12-04T02:00:11Z",
        "message": ERROR,
    }
    assert "lastBackup" not in state.status
    assert state.events == [("BackupFailed", f"backup Job {JOB} failed: {ERROR}", True)]
    assert state.condition == (False, "BackupFailed", f"backup Job {JOB} failed: {ERROR}")
    again = reconcile(FakeKube(cronjob()), cluster(), BACKED_UP, [failed], pods, state.status, act=True)
    assert again.events == []


def test_a_failed_job_whose_pods_are_gone_still_says_which_job() -> None:
    failed = job(JOB, "Failed", "2026-12-04T02:00:00Z")
    record = backups.backup_record(
        failed, "Failed", [job_pod("another-job", "2026-12-04T02:00:00Z", message=ERROR)]
    )
    assert record == {"job": JOB, "message": f"Job {JOB} failed (no log left)"}


def test_running_jobs_are_not_reported() -> None:
    running = job(JOB, None, "2026-12-04T02:00:00Z")
    state = reconcile(FakeKube(cronjob()), cluster(), BACKED_UP, [running], [], {}, act=True)
    assert state.status == {} and state.events == [] and state.condition is None


def test_the_condition_follows_the_newest_finished_backup() -> None:
    good = {"job": "a", "label": "L", "size": 2048, "completedAt": "2026-12-04T02:12:34Z"}
    bad = {"job": "b", "message": "ERROR: [056]: no primary", "completedAt": "2026-12-05T02:00:11Z"}
    assert backups.backup_condition({}) is None
    assert backups.backup_condition({"lastBackup": good, "lastFailure": bad}) == (
        False,
        "BackupFailed",
        "backup Job b failed: ERROR: [056]: no primary",
    )
    older_failure = {**bad, "completedAt": "2026-12-03T02:00:11Z"}
    assert backups.backup_condition({"lastBackup": good, "lastFailure": older_failure}) == (
        True,
        "BackupSucceeded",
        "backup L (2 KiB) completed at 2026-12-04T02:12:34Z",
    )
    assert backups.backup_condition({"lastBackup": good}) is not None
    assert backups.backup_condition({"lastFailure": bad}) == (
        False,
        "BackupFailed",
        "backup Job b failed: ERROR: [056]: no primary",
    )


def test_a_newer_failure_after_a_success_turns_the_condition_false_in_one_pass() -> None:
    done = job("c-postgres-backup-1", "Complete", "2026-12-04T02:00:00Z")
    failed = job("c-postgres-backup-2", "Failed", "2026-12-05T02:00:00Z")
    pods = [
        job_pod("c-postgres-backup-1", "2026-12-04T02:00:00Z", message=json.dumps(SUMMARY)),
        job_pod(
            "c-postgres-backup-2", "2026-12-05T02:00:00Z", message=ERROR, finishedAt="2026-12-05T02:00:11Z"
        ),
    ]
    state = reconcile(FakeKube(cronjob()), cluster(), BACKED_UP, [failed, done], pods, {}, act=True)
    assert state.status["lastBackup"]["job"] == "c-postgres-backup-1"
    assert state.status["lastFailure"]["job"] == "c-postgres-backup-2"
    assert sorted(reasons(state.events)) == ["BackupFailed", "BackupSucceeded"]
    assert state.condition is not None and state.condition[:2] == (False, "BackupFailed")


def member(name: str, role: str | None, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {postgres.ROLE_LABEL: role} if role else {}},
        "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def members(*pods: dict[str, Any]) -> Any:
    return postgres_members(list(pods), postgres.ROLE_LABEL, postgres.LEADER_ROLE, postgres.REPLICA_ROLE)


RESTORED = tier(restore={"fromCluster": "old", "targetTime": "2026-12-04T10:00:00Z"})


def test_a_restore_completes_when_the_restored_leader_is_ready() -> None:
    recovering = [member("c-postgres-0", "master", ready=False), member("c-postgres-1", "replica")]
    status, events = backups.restore_state(RESTORED, members(*recovering), recovering, None, NOW)
    assert status == {"fromCluster": "old", "targetTime": "2026-12-04T10:00:00Z"} and events == []
    nobody = backups.restore_state(RESTORED, members(), [], None, NOW)
    assert nobody == ({"fromCluster": "old", "targetTime": "2026-12-04T10:00:00Z"}, [])

    serving = [member("c-postgres-0", "master"), member("c-postgres-1", "replica")]
    status, events = backups.restore_state(RESTORED, members(*serving), serving, status, NOW)
    assert status == {"fromCluster": "old", "targetTime": "2026-12-04T10:00:00Z", "completedAt": NOW}
    assert RestoreStatus.model_validate(status).completed_at == NOW
    assert reasons(events) == ["RestoreCompleted"]
    (_, message, warning), *_ = events
    assert "old" in message and "2026-12-04T10:00:00Z" in message and "c-postgres-0" in message
    assert warning is False

    # Once completed, it stays as it was: no new time, no second event.
    later, events = backups.restore_state(
        RESTORED, members(*serving), serving, status, "2026-12-06T00:00:00Z"
    )
    assert later == status and events == []


def test_no_restore_status_without_a_restore() -> None:
    serving = [member("c-postgres-0", "master")]
    assert backups.restore_state(BACKED_UP, members(*serving), serving, None, NOW) == (None, [])


def test_backups_and_restore_go_into_the_postgres_state() -> None:
    both = tier(backup={}, restore={"fromCluster": "old"})
    done = job(JOB, "Complete", "2026-12-04T02:00:00Z")
    # Another component's Job (Redis's cluster creation) that failed is none of the backups' business.
    other = job("c-redis-cluster-6", "Failed", "2026-12-05T00:00:00Z")
    other["metadata"]["labels"] = {**other["metadata"]["labels"], COMPONENT_LABEL: "redis"}
    kube = FakeKube(cronjob(), [done, other])
    serving = [member("c-postgres-0", "master")]
    pg = PostgresState(members=members(*serving), status={"primary": "c-postgres-0"}, events=[])
    pods = {
        postgres.COMPONENT: serving,
        backup.JOB_COMPONENT: [job_pod(JOB, "2026-12-04T02:00:00Z", message=json.dumps(SUMMARY))],
    }
    condition = reconcile_all(
        kube,
        cluster("now-1"),
        both,
        pods,
        pg,
        {},
        NOW,
        act=True,
    )
    assert kube.lists and kube.lists[0][:2] == ("Job", "ns")
    assert condition is not None and condition[:2] == (True, "BackupSucceeded")
    assert pg.status["backup"]["lastBackup"]["label"] == "20261204-020000F"
    assert "lastFailure" not in pg.status["backup"]
    assert pg.status["backup"]["lastRequest"] == "now-1"
    assert pg.status["restore"] == {"fromCluster": "old", "completedAt": NOW}
    assert sorted(reasons(pg.events)) == ["BackupRequested", "BackupSucceeded", "RestoreCompleted"]
    assert pg.status["primary"] == "c-postgres-0"  # Patroni's part of the status is left alone


def test_without_backups_no_job_is_looked_at() -> None:
    kube = FakeKube(cronjob(), [job(JOB, "Complete", "2026-12-04T02:00:00Z")])
    pg = PostgresState(members=members(), status={}, events=[])
    condition = reconcile_all(kube, cluster("now-1"), tier(), {}, pg, {}, NOW, act=True)
    assert condition is None and kube.lists == [] and kube.applied == []
    assert pg.status == {} and pg.events == []


def test_an_older_job_left_after_the_newest_is_deleted_does_not_come_back() -> None:
    """On-demand Jobs go after a week, the CronJob keeps its last three: the newest record stays."""
    previous = {"lastBackup": {"job": "c-postgres-backup-new", "completedAt": "2026-11-20T02:12:34Z"}}
    older = job(JOB, "Complete", "2026-10-01T02:00:00Z", completionTime="2026-10-01T02:13:00Z")
    pods = [job_pod(JOB, "2026-10-01T02:00:00Z", exitCode=0, message=json.dumps({**SUMMARY, "stop": 1}))]
    state = reconcile(FakeKube(cronjob()), cluster(), BACKED_UP, [older], pods, previous, act=True)
    assert state.status["lastBackup"] == previous["lastBackup"]
    assert state.events == []
