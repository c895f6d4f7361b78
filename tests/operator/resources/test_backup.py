"""The pgBackRest objects: repository host, its files, the backup CronJob and on-demand Jobs, and
what backups and a restore change in the PostgreSQL members."""

from __future__ import annotations

import base64
import configparser
import re
from typing import Any

import pytest
import yaml

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources import backup, pgbackrest
from brainai_operator.resources.cluster import build_desired
from brainai_operator.resources.common import COMPONENT_LABEL
from brainai_operator.strategies import DataTier, resolve

TLS = {"ca.crt": "the-ca", "tls.crt": "the-cert", "tls.key": "the-key"}
PASSWORDS = {
    "postgres": {"superuser-password": "s3cret-super", "replication-password": "s3cret-repl"},
    "pgbackrest": TLS,
}
S3 = {"bucket": "backups", "endpoint": "minio.storage:9000", "credentials": "s3-creds", "uriStyle": "path"}
Objects = dict[tuple[str, str], dict[str, Any]]


def tier(**postgres: Any) -> DataTier:
    spec = BrainAIClusterSpec.model_validate({"postgres": {"enabled": True, **postgres}})
    resolved = resolve(spec).postgres
    assert resolved is not None
    return resolved


def objs(**postgres: Any) -> Objects:
    spec = BrainAIClusterSpec.model_validate({"postgres": {"enabled": True, **postgres}})
    return {(o["kind"], o["metadata"]["name"]): o for o in build_desired("c", "ns", resolve(spec), PASSWORDS)}


def conf(found: Objects, key: str) -> dict[str, dict[str, str]]:
    """One of pgBackRest's ini files from the ConfigMap, by section."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep the keys as written
    parser.read_string(found[("ConfigMap", "c-postgres-pgbackrest")]["data"][key])
    return {s: dict(parser[s]) for s in parser.sections()}


def repo_pod(found: Objects) -> dict[str, Any]:
    pod: dict[str, Any] = found[("StatefulSet", "c-postgres-repo")]["spec"]["template"]["spec"]
    return pod


def job_pod(found: Objects) -> dict[str, Any]:
    cron = found[("CronJob", "c-postgres-backup")]
    pod: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def mounts(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}


def volumes(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod["volumes"]}


def env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}


def patroni(**postgres: Any) -> dict[str, Any]:
    data = objs(**postgres)[("ConfigMap", "c-postgres-patroni")]["data"]["patroni.yml"]
    loaded: dict[str, Any] = yaml.safe_load(data)
    return loaded


def test_the_repository_host_keeps_its_claim_and_mounts_it_at_repo() -> None:
    found = objs(backup={"volume": {"size": "50Gi", "storageClassName": "fast"}})
    sts = found[("StatefulSet", "c-postgres-repo")]["spec"]
    assert sts["replicas"] == 1 and sts["serviceName"] == "c-postgres-repo"
    # The claim outlives the cluster (and a scale-down): a deleted cluster is restored from it.
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "repo"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    pod = repo_pod(found)
    assert mounts(pod)["/repo"] == {"name": "repo", "mountPath": "/repo"}
    assert "/source" not in mounts(pod) and "source" not in volumes(pod)
    assert backup.repo_claim("c") == "repo-c-postgres-repo-0"  # what the template makes for pod 0
    service = found[("Service", "c-postgres-repo")]["spec"]
    assert service["clusterIP"] == "None" and service["ports"][0]["port"] == pgbackrest.TLS_PORT
    server = conf(found, "server.conf")["global"]
    assert server["repo1-path"] == "/repo" and server["lock-path"] == "/repo/lock"


def test_a_backup_job_goes_to_the_repository_hosts_node_and_shares_its_claim() -> None:
    pod = job_pod(objs(backup={}))
    assert mounts(pod)["/repo"]["name"] == "repo"
    assert volumes(pod)["repo"]["persistentVolumeClaim"] == {"claimName": "repo-c-postgres-repo-0"}
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"][COMPONENT_LABEL] == "postgres-repo"
    assert env(pod)["PGBACKREST_CONFIG"] == "/etc/pgbackrest/conf/repository.conf"


def test_a_restore_from_another_cluster_mounts_its_repository_read_only() -> None:
    found = objs(backup={}, restore={"fromCluster": "old"})
    pod = repo_pod(found)
    assert mounts(pod)["/source"] == {"name": "source", "mountPath": "/source", "readOnly": True}
    assert volumes(pod)["source"]["persistentVolumeClaim"] == {
        "claimName": "repo-old-postgres-repo-0",
        "readOnly": True,
    }
    assert mounts(pod)["/repo"]["name"] == "repo"  # its own repository besides
    restoring = conf(found, "restore.conf")["global"]
    assert restoring["repo2-host"] == "c-postgres-repo-0.c-postgres-repo.ns.svc"
    assert not [k for k in restoring if k.startswith("repo1-")]  # its own WAL never goes to the source
    script = found[("ConfigMap", "c-postgres-pgbackrest")]["data"]["restore.sh"]
    assert "--repo=2 restore" in script
    restore_command = patroni(backup={}, restore={"fromCluster": "old"})["bootstrap"]["pgbackrest"][
        "recovery_conf"
    ]["restore_command"]
    assert "--repo=2 archive-get" in restore_command


def test_only_the_server_reads_the_source_stanza_create_never_writes_it() -> None:
    found = objs(backup={}, restore={"fromCluster": "old"})
    server = conf(found, "server.conf")["global"]
    assert server["repo2-path"] == "/source" and server["repo1-path"] == "/repo"
    repository = conf(found, "repository.conf")["global"]
    assert repository["repo1-path"] == "/repo"
    assert not [k for k in repository if k.startswith("repo2-")]
    # The repository host's server reads server.conf; stanza-create and backups repository.conf.
    script = found[("ConfigMap", "c-postgres-pgbackrest")]["data"]["repository.sh"]
    assert "--config=/etc/pgbackrest/conf/repository.conf --stanza=brain-ai stanza-create" in script
    assert env(repo_pod(found))["PGBACKREST_CONFIG"] == "/etc/pgbackrest/conf/server.conf"


def test_a_restore_of_its_own_name_reads_its_own_repository() -> None:
    t = tier(backup={}, restore={"fromCluster": "c"})
    assert t.restore is not None
    assert pgbackrest.source_repo("c", t.restore, t.backup) == 1
    # Without a repository of its own, or with another kind of one, the source is repo 2.
    assert pgbackrest.source_repo("c", t.restore, None) == 2
    assert pgbackrest.source_repo("d", t.restore, t.backup) == 2
    s3 = tier(backup={"s3": S3}, restore={"fromCluster": "c"})
    assert s3.restore is not None and pgbackrest.source_repo("c", s3.restore, s3.backup) == 2

    found = objs(backup={}, restore={"fromCluster": "c"})
    pod = repo_pod(found)
    assert "/source" not in mounts(pod) and "source" not in volumes(pod)
    assert conf(found, "restore.conf")["global"]["repo1-host"] == "c-postgres-repo-0.c-postgres-repo.ns.svc"
    assert "repo2" not in repr(found[("ConfigMap", "c-postgres-pgbackrest")]["data"])
    assert "--repo=1 restore" in found[("ConfigMap", "c-postgres-pgbackrest")]["data"]["restore.sh"]


def test_an_s3_repository_needs_no_claim_no_affinity_and_reads_its_credentials() -> None:
    found = objs(backup={"s3": S3})
    assert "volumeClaimTemplates" not in found[("StatefulSet", "c-postgres-repo")]["spec"]
    pod = job_pod(found)
    assert "affinity" not in pod
    assert "/repo" not in mounts(pod) and "repo" not in volumes(pod)
    assert "/repo" not in mounts(repo_pod(found))
    for p in (pod, repo_pod(found)):
        credentials = env(p)
        assert credentials["PGBACKREST_REPO1_S3_KEY"] == {
            "secretKeyRef": {"name": "s3-creds", "key": "access-key-id"}
        }
        assert credentials["PGBACKREST_REPO1_S3_KEY_SECRET"] == {
            "secretKeyRef": {"name": "s3-creds", "key": "secret-access-key"}
        }
    repository = conf(found, "repository.conf")["global"]
    assert repository["repo1-type"] == "s3" and repository["repo1-s3-bucket"] == "backups"
    assert repository["repo1-s3-endpoint"] == "minio.storage:9000"
    assert repository["repo1-s3-uri-style"] == "path" and repository["repo1-storage-verify-tls"] == "y"
    assert repository["repo1-path"] == "/ns/c"  # the default: /<namespace>/<cluster>
    assert repository["lock-path"] == "/tmp"
    assert "s3-creds" not in repr(found[("ConfigMap", "c-postgres-pgbackrest")])  # keys stay in env
    mine = conf(objs(backup={"s3": {**S3, "path": "/team/pg", "verifyTls": False}}), "repository.conf")
    assert mine["global"]["repo1-path"] == "/team/pg"
    assert mine["global"]["repo1-storage-verify-tls"] == "n"


def test_a_restore_from_s3_reads_the_source_bucket_as_repo_2() -> None:
    found = objs(restore={"fromCluster": "old", "s3": S3})
    server = conf(found, "server.conf")["global"]
    assert server["repo2-type"] == "s3" and server["repo2-path"] == "/ns/old"
    assert not [k for k in server if k.startswith("repo1-")]  # no backups of its own
    pod = repo_pod(found)
    assert "/source" not in mounts(pod)
    assert env(pod)["PGBACKREST_REPO2_S3_KEY"] == {
        "secretKeyRef": {"name": "s3-creds", "key": "access-key-id"}
    }
    assert "PGBACKREST_REPO1_S3_KEY" not in env(pod)
    data = found[("ConfigMap", "c-postgres-pgbackrest")]["data"]
    # No backups: the repository host only serves (no stanza to create), and there is no schedule.
    assert "stanza-create" not in data["repository.sh"] and "member.conf" not in data
    assert not [k for k in found if k[0] == "CronJob"]


def test_retention_is_written_as_repo1_retention_full() -> None:
    assert conf(objs(backup={"retention": 3}), "repository.conf")["global"]["repo1-retention-full"] == "3"
    assert conf(objs(backup={}), "repository.conf")["global"]["repo1-retention-full"] == "7"
    # pgBackRest reads its file at start: a changed one restarts the repository host.

    def stamp(**b: Any) -> str:
        template = objs(backup=b)[("StatefulSet", "c-postgres-repo")]["spec"]["template"]
        return str(template["metadata"]["annotations"]["brainai.io/pgbackrest-config"])

    assert stamp(retention=3) == stamp(retention=3) != stamp(retention=4)


def test_the_cronjob_runs_on_schedule_one_at_a_time() -> None:
    cron = objs(backup={"schedule": "30 1 * * 0"})[("CronJob", "c-postgres-backup")]["spec"]
    assert cron["schedule"] == "30 1 * * 0"
    assert cron["concurrencyPolicy"] == "Forbid"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["/bin/sh", "/etc/pgbackrest/conf/backup.sh"]
    assert pod["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert objs(backup={})[("CronJob", "c-postgres-backup")]["spec"]["schedule"] == "0 2 * * *"


def cronjob_with_uid(uid: str = "cron-uid-1") -> dict[str, Any]:
    cron = objs(backup={})[("CronJob", "c-postgres-backup")]
    return {**cron, "metadata": {**cron["metadata"], "uid": uid}}


def test_a_requested_job_is_named_by_its_request_and_owned_by_the_cronjob() -> None:
    cron = cronjob_with_uid()
    job = backup.build_requested_job(cron, "2026-12-04", "c")
    name = job["metadata"]["name"]
    assert re.fullmatch(r"c-postgres-backup-[0-9a-f]{8}", name), name
    assert backup.build_requested_job(cron, "2026-12-04", "c")["metadata"]["name"] == name
    assert backup.build_requested_job(cron, "2026-12-05", "c")["metadata"]["name"] != name
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == "ns"
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "c-postgres-backup",
            "uid": "cron-uid-1",
            "controller": True,
        }
    ]
    assert job["metadata"]["annotations"] == {"brainai.io/backup-request": "2026-12-04"}
    assert job["metadata"]["labels"][COMPONENT_LABEL] == "postgres-backup"
    template = cron["spec"]["jobTemplate"]["spec"]
    assert job["spec"]["template"] == template["template"]
    assert job["spec"]["backoffLimit"] == template["backoffLimit"]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_recovery_time_is_utc_in_pgbackrests_format() -> None:
    assert pgbackrest.recovery_time("2026-12-04T10:00:00.5+01:00") == "2026-12-04 09:00:00.500000+00"
    assert pgbackrest.recovery_time("2026-12-04T10:00:00Z") == "2026-12-04 10:00:00+00"
    assert pgbackrest.recovery_time("2026-12-04T00:30:00-02:00") == "2026-12-04 02:30:00+00"


def test_a_restore_bootstraps_patroni_from_pgbackrest_to_the_target_time() -> None:
    timed = patroni(restore={"fromCluster": "old", "targetTime": "2026-12-04T10:00:00.5+01:00"})["bootstrap"]
    assert timed["method"] == "pgbackrest"
    assert timed["pgbackrest"]["command"] == "/etc/pgbackrest/conf/restore.sh"
    recovery = timed["pgbackrest"]["recovery_conf"]
    assert recovery["recovery_target_time"] == "2026-12-04 09:00:00.500000+00"
    assert recovery["recovery_target_action"] == "promote"
    assert "archive-get" in recovery["restore_command"]
    latest = patroni(restore={"fromCluster": "old"})["bootstrap"]
    assert latest["method"] == "pgbackrest"
    assert "recovery_target_time" not in latest["pgbackrest"]["recovery_conf"]
    assert "method" not in patroni()["bootstrap"] and "pgbackrest" not in patroni()["bootstrap"]
    assert "method" not in patroni(backup={})["bootstrap"]
    script = objs(restore={"fromCluster": "old", "targetTime": "2026-12-04T10:00:00Z"})[
        ("ConfigMap", "c-postgres-pgbackrest")
    ]["data"]["restore.sh"]
    assert "--type=time '--target=2026-12-04 10:00:00+00'" in script
    plain = objs(restore={"fromCluster": "old"})[("ConfigMap", "c-postgres-pgbackrest")]["data"]["restore.sh"]
    assert "--type=time" not in plain


def test_wal_is_archived_only_with_backups() -> None:
    local = patroni(backup={})["postgresql"]["parameters"]
    assert local["archive_mode"] == "on"
    assert local["archive_command"] == "pgbackrest --stanza=brain-ai archive-push %p"
    assert "archive_mode" not in patroni()["postgresql"]["parameters"]
    assert "archive_mode" not in patroni(restore={"fromCluster": "old"})["postgresql"]["parameters"]


def test_no_backup_objects_without_backup_or_restore_nor_for_an_external_database() -> None:
    backup_names = set(pgbackrest.names("c").values())
    assert not [k for k in objs() if k[1] in backup_names or k[0] == "CronJob"]
    with_backup = backup.build_backup("c", "ns", tier(backup={}), TLS)
    assert {(o["kind"], o["metadata"]["name"]) for o in with_backup} == {
        ("Secret", "c-postgres-backup-tls"),
        ("ConfigMap", "c-postgres-pgbackrest"),
        ("Service", "c-postgres-repo"),
        ("StatefulSet", "c-postgres-repo"),
        ("CronJob", "c-postgres-backup"),
    }
    # The spec refuses backups for an external database; the builder does not rely on it.
    external = tier(backup={}, restore={"fromCluster": "old"}).model_copy(
        update={"external_url": ("db", "url")}
    )
    assert external.external and backup.build_backup("c", "ns", external, TLS) == []


def test_the_tls_secret_holds_the_material_for_every_members_and_the_repository_hosts_names() -> None:
    data = objs(backup={})[("Secret", "c-postgres-backup-tls")]["data"]
    assert {k: base64.b64decode(v).decode() for k, v in data.items()} == TLS
    names = backup.tls_dns_names("c", "ns")
    assert "*.c-postgres.ns.svc" in names and "*.c-postgres-repo.ns.svc.cluster.local" in names


@pytest.mark.parametrize("spec", [{"backup": {}}, {"restore": {"fromCluster": "old"}}, {}])
def test_members_carry_the_pgbackrest_sidecar_only_with_backups(spec: dict[str, Any]) -> None:
    pod = objs(**spec)[("StatefulSet", "c-postgres")]["spec"]["template"]["spec"]
    containers = [c["name"] for c in pod["containers"]]
    member_env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    if "backup" in spec:
        assert containers == ["postgres", "pgbackrest"]
        assert member_env["PGBACKREST_CONFIG"] == "/etc/pgbackrest/conf/member.conf"
        assert pod["containers"][1]["command"] == ["pgbackrest", "server"]
    else:
        assert containers == ["postgres"] and "PGBACKREST_CONFIG" not in member_env
    # A restoring member needs pgBackRest's files too (its bootstrap runs the restore).
    has_files = {"pgbackrest-conf", "pgbackrest-tls"} <= set(volumes(pod))
    assert has_files == bool(spec)


def test_a_restore_of_its_own_name_from_another_bucket_reads_that_bucket() -> None:
    other = {**S3, "bucket": "elsewhere"}
    t = tier(backup={"s3": S3}, restore={"fromCluster": "c", "s3": other})
    assert t.restore is not None and pgbackrest.source_repo("c", t.restore, t.backup) == 2
    server = conf(objs(backup={"s3": S3}, restore={"fromCluster": "c", "s3": other}), "server.conf")
    assert server["global"]["repo2-s3-bucket"] == "elsewhere"
    same = tier(backup={"s3": S3}, restore={"fromCluster": "c", "s3": S3})
    assert same.restore is not None and pgbackrest.source_repo("c", same.restore, same.backup) == 1


def restored_objs(**postgres: Any) -> Objects:
    spec = BrainAIClusterSpec.model_validate({"postgres": {"enabled": True, **postgres}})
    built = build_desired("c", "ns", resolve(spec), PASSWORDS, restored=True)
    return {(o["kind"], o["metadata"]["name"]): o for o in built}


def test_once_restored_nothing_reads_the_source_and_the_members_stay_as_they_were() -> None:
    restoring = objs(backup={}, restore={"fromCluster": "old"})
    done = restored_objs(backup={}, restore={"fromCluster": "old"})
    pod = repo_pod(done)
    assert "/source" not in mounts(pod) and "source" not in volumes(pod)  # the source claim may go
    assert "/repo" in mounts(pod)  # its own repository stays
    assert "repo2-path" not in conf(done, "server.conf")["global"]
    members = ("StatefulSet", "c-postgres")
    assert done[members] == restoring[members]  # no restart of the database for it
    # A restore without backups of its own needs no repository host at all once done.
    only = restored_objs(restore={"fromCluster": "old"})
    assert ("StatefulSet", "c-postgres-repo") not in only and ("Service", "c-postgres-repo") not in only
    assert ("StatefulSet", "c-postgres-repo") in objs(restore={"fromCluster": "old"})
    assert only[members] == objs(restore={"fromCluster": "old"})[members]
