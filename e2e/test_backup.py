"""Backups and restore with pgBackRest, on real pods (kind tier).

A cluster with backups learns memories, takes an on-demand backup, learns more, notes a moment,
learns more again and is deleted. A new cluster restored from its backups to that moment holds
every memory learned before it and none learned after; its repository claim outlived the cluster.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from e2e.kube import Cluster, wait_until
from e2e.pods import Toolbox, psql
from e2e.test_operator import cluster_manifest, condition, wait_ready

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("operator")]

SOURCE, COPY = "origin", "copy"
BASE = {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}}
BACKED_UP = {
    **BASE,
    "postgres": {
        "enabled": True,
        "readReplicas": 1,
        "backup": {"retention": 2, "volume": {"size": "1Gi"}},
    },
}

# Runs in the toolbox: learn each text through the engine Service; print the acknowledged ones.
LEARN = """
import json, sys, urllib.request
url, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
acked = []
for i in range(count):
    text = f"{prefix} memory number {i}"
    req = urllib.request.Request(url + "/api/v1/learn", data=json.dumps({"text": text}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status == 200:
            acked.append(text)
print(json.dumps(acked))
"""


def learn(toolbox: Toolbox, cluster_name: str, prefix: str, count: int) -> list[str]:
    out = toolbox.python(LEARN, f"http://{cluster_name}-engine:8080", prefix, str(count), timeout=300)
    acked = json.loads(out)
    assert len(acked) == count, out
    return acked


def leader(cluster: Cluster, namespace: str, name: str) -> str:
    return cluster.get("endpoints", f"{name}-postgres-rw", namespace)["metadata"]["annotations"]["leader"]


def stored(cluster: Cluster, namespace: str, name: str) -> set[str]:
    rows = psql(cluster, namespace, leader(cluster, namespace, name), "select content from memories")
    return set(rows.splitlines())


def events(cluster: Cluster, namespace: str, name: str) -> str:
    return cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )


def archive_now(cluster: Cluster, namespace: str, name: str) -> None:
    """Close the current WAL segment and wait until the repository has it (archive_timeout would
    do it within a minute)."""
    pod = leader(cluster, namespace, name)
    segment = psql(cluster, namespace, pod, "select pg_walfile_name(pg_switch_wal())")
    wait_until(
        lambda: psql(cluster, namespace, pod, "select last_archived_wal from pg_stat_archiver") >= segment,
        timeout=90,
        what=f"WAL segment {segment} archived",
    )


def test_a_cluster_restored_from_backups_to_a_moment_has_what_was_learned_before_it(
    cluster: Cluster, namespace: str, benchmark_figures: list[dict[str, object]]
) -> None:
    cluster.apply(cluster_manifest(SOURCE, BACKED_UP), namespace)
    wait_ready(cluster, namespace, SOURCE, timeout=420)
    toolbox = Toolbox(cluster, namespace).start()
    before_backup = learn(toolbox, SOURCE, "aardvark", 150)

    # An on-demand backup, by annotation; its outcome lands in status, a condition and an event.
    cluster.kubectl("annotate", "bac", SOURCE, "-n", namespace, "brainai.io/backup-request=first")
    bac = cluster.wait_for(
        "bac",
        SOURCE,
        namespace,
        lambda b: (b["status"].get("postgres", {}).get("backup") or {}).get("lastBackup"),
        timeout=300,
        what="the requested backup in status",
    )
    backup = bac["status"]["postgres"]["backup"]
    assert backup["lastRequest"] == "first"
    last = backup["lastBackup"]
    assert last["label"].endswith("F") and last["size"] > 0 and last["backups"] == 1, last
    assert last["completedAt"] >= last["startedAt"]
    assert condition(bac, "LastBackupSucceeded")["status"] == "True"
    assert "BackupRequested" in events(cluster, namespace, SOURCE)
    assert "BackupSucceeded" in events(cluster, namespace, SOURCE)
    wide = cluster.kubectl("get", "bac", SOURCE, "-n", namespace, "-o", "wide").splitlines()
    column = wide[0].index("LAST BACKUP")  # kubectl aligns the columns: the age of the backup
    assert not wide[1][column:].startswith("<none>"), wide
    # The same request again starts nothing.
    jobs = cluster.items("jobs", namespace, f"app.kubernetes.io/instance={SOURCE}")
    cluster.kubectl("annotate", "bac", SOURCE, "-n", namespace, "poke=1")
    time.sleep(5)
    assert len(cluster.items("jobs", namespace, f"app.kubernetes.io/instance={SOURCE}")) == len(jobs)

    # After the backup: what WAL archiving alone keeps, then the moment, then what comes after it.
    after_backup = learn(toolbox, SOURCE, "badger", 50)
    time.sleep(2)
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
    time.sleep(2)
    after_moment = learn(toolbox, SOURCE, "cheetah", 50)
    archive_now(cluster, namespace, SOURCE)
    assert stored(cluster, namespace, SOURCE) >= {*before_backup, *after_backup, *after_moment}

    cluster.kubectl("delete", "bac", SOURCE, "-n", namespace, "--wait=true", "--timeout=180s")
    wait_until(
        lambda: not cluster.items("pods", namespace, f"app.kubernetes.io/instance={SOURCE}"),
        timeout=180,
        what=f"{SOURCE}'s pods gone",
    )
    claim = cluster.get("pvc", f"repo-{SOURCE}-postgres-repo-0", namespace)
    assert claim is not None, "the repository claim outlives its cluster"

    target = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = {
        **BASE,
        "postgres": {
            "enabled": True,
            "readReplicas": 1,
            "restore": {"fromCluster": SOURCE, "targetTime": target},
        },
    }
    started = time.monotonic()
    cluster.apply(cluster_manifest(COPY, spec), namespace)
    wait_ready(cluster, namespace, COPY, timeout=420)
    restored_after = time.monotonic() - started

    memories = stored(cluster, namespace, COPY)
    missing = [t for t in [*before_backup, *after_backup] if t not in memories]
    assert missing == [], f"{len(missing)} memories learned before {target} missing, e.g. {missing[:3]}"
    assert not memories & set(after_moment), "memories learned after the target time came back"
    bac = cluster.wait_for(
        "bac",
        COPY,
        namespace,
        lambda b: (b["status"].get("postgres", {}).get("restore") or {}).get("completedAt"),
        timeout=60,
    )
    assert bac["status"]["postgres"]["restore"] == {
        "fromCluster": SOURCE,
        "targetTime": target,
        "completedAt": bac["status"]["postgres"]["restore"]["completedAt"],
    }
    assert "RestoreCompleted" in events(cluster, namespace, COPY)
    # The restored leader streams to its replica, and the engine writes to it.
    primary = leader(cluster, namespace, COPY)
    wait_until(
        lambda: (
            psql(
                cluster,
                namespace,
                primary,
                "select count(*) from pg_stat_replication where state='streaming'",
            )
            == "1"
        ),
        timeout=180,
        what="the restored cluster's replica streaming",
    )
    assert set(learn(toolbox, COPY, "dingo", 5)) <= stored(cluster, namespace, COPY)
    # Restored, the new cluster no longer reads the source: its claim can go (no pod holds it),
    # and the cluster stays Ready.
    cluster.kubectl("delete", "pvc", f"repo-{SOURCE}-postgres-repo-0", "-n", namespace, "--wait=false")
    wait_until(
        lambda: cluster.get("pvc", f"repo-{SOURCE}-postgres-repo-0", namespace) is None,
        timeout=120,
        what="the source's repository claim deleted",
    )
    wait_ready(cluster, namespace, COPY, timeout=60)
    benchmark_figures.append(
        {
            "name": "PostgreSQL restore to a point in time into a new cluster (kind)",
            "memories_restored": len(before_backup) + len(after_backup),
            "from_wal_after_backup": len(after_backup),
            "backup_size_bytes": last["size"],
            "ready_after_s": round(restored_after, 1),
        }
    )


def test_a_restore_from_a_cluster_with_no_backups_says_so(cluster: Cluster, namespace: str) -> None:
    """No repository claim to read: the cluster says which claim it waits for, and creates nothing
    it would have to throw away."""
    spec = {**BASE, "postgres": {"enabled": True, "restore": {"fromCluster": "nowhere"}}}
    cluster.apply(cluster_manifest("orphan", spec), namespace)
    bac = cluster.wait_for(
        "bac",
        "orphan",
        namespace,
        lambda b: (b.get("status") or {}).get("phase") == "Degraded",
        timeout=90,
        what="the restore to be reported blocked",
    )
    ready = condition(bac, "Ready")
    assert ready["reason"] == "RestoreSourceMissing", ready
    assert "repo-nowhere-postgres-repo-0" in ready["message"], ready
    assert cluster.get("statefulset", "orphan-postgres", namespace) is None
