"""PostgreSQL and Redis Cluster tiers made by the operator, on the harness cluster."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from e2e.conftest import OPERATOR_LOG
from e2e.kube import IMAGES, TIER, Cluster, KubectlError, wait_until
from e2e.pods import master_slots, redis_cli
from e2e.test_operator import cluster_manifest, condition, engine_container, wait_ready

pytestmark = pytest.mark.usefixtures("operator")

DATA = {
    "autoscaling": {"enabled": False},
    "engine": {"replicas": 2},
    "postgres": {
        "enabled": True,
        "readReplicas": 2,
        "storage": {"size": "5Gi"},
        "parameters": {"work_mem": "64MB"},
    },
    "redis": {"enabled": True, "masters": 3, "replicasPerMaster": 1},
}


def secret_values(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    data = cluster.get("secret", name, namespace)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def env_sources(deploy: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in engine_container(deploy)["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }


@pytest.fixture(scope="module")
def data(cluster: Cluster, crd: str, operator: object, module_namespace: str) -> str:
    """One cluster with both data tiers, Ready, for the tests that only look at it."""
    cluster.apply(cluster_manifest("data", DATA), module_namespace)
    wait_ready(cluster, module_namespace, "data", timeout=300)
    return module_namespace


def test_postgres_and_redis_tiers_reach_ready_with_the_right_shape(cluster: Cluster, data: str) -> None:
    namespace = data
    bac = cluster.get("bac", "data", namespace)
    assert condition(bac, "PostgresReady")["status"] == "True"
    assert condition(bac, "RedisReady")["status"] == "True"

    members = cluster.get("statefulset", "data-postgres", namespace)
    assert members["spec"]["replicas"] == 3  # Patroni: any member may lead
    patroni = yaml.safe_load(
        cluster.get("configmap", "data-postgres-patroni", namespace)["data"]["patroni.yml"]
    )
    local = patroni["postgresql"]["parameters"]
    assert local["shared_buffers"] == "4GB" and local["work_mem"] == "64MB"
    assert local["max_slot_wal_keep_size"] == "1280MB"  # a quarter of the 5Gi volume
    assert patroni["bootstrap"]["dcs"]["postgresql"]["parameters"]["wal_level"] == "replica"
    claim = members["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "5Gi"
    assert members["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    assert "selector" not in cluster.get("service", "data-postgres-rw", namespace)["spec"]  # Patroni's lock
    role = "brainai.io/postgres-role"
    assert cluster.get("service", "data-postgres-ro", namespace)["spec"]["selector"][role] == "replica"
    claims = {c["metadata"]["name"] for c in cluster.items("pvc", namespace)}
    assert {"data-data-postgres-0", "data-data-postgres-2", "data-data-redis-5"} <= claims
    if TIER == "kind":  # Patroni runs: one leader, whose address is -rw's only endpoint
        pods = {
            p["metadata"]["name"]: p
            for p in cluster.items("pods", namespace, "app.kubernetes.io/component=postgres")
        }
        leaders = [n for n, p in pods.items() if p["metadata"]["labels"].get(role) == "master"]
        assert len(leaders) == 1 and bac["status"]["postgres"]["primary"] == leaders[0]
        lock = cluster.get("endpoints", "data-postgres-rw", namespace)
        assert [a["ip"] for s in lock["subsets"] for a in s["addresses"]] == [
            pods[leaders[0]]["status"]["podIP"]
        ]
        assert lock["metadata"]["annotations"]["leader"] == leaders[0]
        assert sorted(bac["status"]["postgres"]["replicas"]) == sorted(set(pods) - set(leaders))

    nodes = cluster.get("statefulset", "data-redis", namespace)
    assert nodes["spec"]["replicas"] == 6
    command = " ".join(nodes["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "start-node.sh" in command
    start = cluster.get("configmap", "data-redis-scripts", namespace)["data"]["start-node.sh"]
    assert "--cluster-enabled yes" in start and "--appendonly yes" in start
    headless = cluster.get("service", "data-redis", namespace)["spec"]
    assert headless["clusterIP"] == "None"
    job = cluster.get("job", "data-redis-cluster-n6", namespace)
    assert job["status"]["succeeded"] == 1
    job_env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (job_env["MASTERS"], job_env["REPLICAS_PER_MASTER"]) == ("3", "1")

    # Drains take data pods one at a time (a drained leader hands Patroni's lock over).
    budgets = {p["metadata"]["name"]: p for p in cluster.items("pdb", namespace)}
    assert {"data-redis", "data-postgres"} <= set(budgets)
    assert budgets["data-redis"]["status"]["expectedPods"] == 6
    assert budgets["data-postgres"]["status"]["expectedPods"] == 3

    deploy = cluster.get("deployment", "data-engine", namespace)
    assert env_sources(deploy) == {
        "DATABASE_URL": ("data-postgres-credentials", "database-url"),
        "DATABASE_READ_URLS": ("data-postgres-credentials", "database-read-url"),
        "REDIS_URL": ("data-redis-credentials", "redis-url"),
    }
    config = cluster.get("configmap", "data-engine-config", namespace)["data"]["engine.toml"]
    assert "cluster = true" in config


def test_credentials_stay_in_secrets_and_are_stable(cluster: Cluster, data: str) -> None:
    namespace = data
    pg = secret_values(cluster, namespace, "data-postgres-credentials")
    rd = secret_values(cluster, namespace, "data-redis-credentials")
    url = pg["database-url"]
    assert url.startswith("postgresql://postgres:") and "data-postgres-rw" in url
    assert "data-postgres-ro" in pg["database-read-url"]
    passwords = [pg["superuser-password"], pg["replication-password"], rd["password"]]
    assert all(len(p) >= 24 for p in passwords) and len(set(passwords)) == 3

    everything = cluster.kubectl(
        "get", "configmaps,brainaicluster,statefulsets,jobs,deployments", "-n", namespace, "-o", "json"
    )
    for password in passwords:
        assert password not in everything
    operator_log = OPERATOR_LOG.read_text(encoding="utf-8", errors="replace")
    for password in passwords:
        assert password not in operator_log

    # A later pass keeps the same credentials (the Secret's resourceVersion does not move).
    version = cluster.get("secret", "data-postgres-credentials", namespace)["metadata"]["resourceVersion"]
    cluster.kubectl("label", "bac", "data", "-n", namespace, "poke=1")
    wait_until(lambda: cluster.get("bac", "data", namespace)["metadata"]["labels"].get("poke"), timeout=10)
    cluster.wait_for("bac", "data", namespace, lambda b: b["status"]["phase"] == "Ready")
    assert (
        cluster.get("secret", "data-postgres-credentials", namespace)["metadata"]["resourceVersion"]
        == version
    )


def test_scaling_the_data_tiers(cluster: Cluster, namespace: str) -> None:
    """Redis 3 -> 4 -> 3 masters with slots rebalanced both ways and every key kept; PostgreSQL read
    replicas 2 -> 1 -> 0."""
    cluster.apply(cluster_manifest("grow", DATA), namespace)
    wait_ready(cluster, namespace, "grow", timeout=300)
    real = TIER == "kind"  # pods that run: the cluster's own view and its data can be checked
    keys = {f"e2e:{k}": f"kept {k}" for k in range(40)} if real else {}
    for key, value in keys.items():
        assert "OK" in redis_cli(cluster, namespace, "grow-redis-0", "-c", "set", key, value)
    cluster.patch(
        "bac", "grow", namespace, {"spec": {"postgres": {"readReplicas": 1}, "redis": {"masters": 4}}}
    )
    cluster.wait_for("statefulset", "grow-redis", namespace, lambda s: s["spec"]["replicas"] == 8)
    cluster.wait_for("statefulset", "grow-postgres", namespace, lambda s: s["spec"]["replicas"] == 2)
    cluster.wait_for(
        "job",
        "grow-redis-cluster-n8",
        namespace,
        lambda j: j.get("status", {}).get("succeeded"),
        timeout=300,
        what="the Job that adds nodes and rebalances",
    )
    cluster.wait_gone("job", "grow-redis-cluster-n6", namespace)
    wait_ready(cluster, namespace, "grow", timeout=300)
    if real:
        grown = master_slots(redis_cli(cluster, namespace, "grow-redis-0", "cluster", "nodes"))
        assert len(grown) == 4 and sum(grown.values()) == 16384 and min(grown.values()) > 0

    cluster.patch("bac", "grow", namespace, {"spec": {"redis": {"masters": 3}}})
    cluster.wait_for(
        "bac",
        "grow",
        namespace,
        lambda b: condition(b, "RedisReady")["reason"] in ("ShrinkingCluster", "RemovingNodes"),
        what="RedisReady to say the cluster is shrinking",
    )
    assert cluster.get("statefulset", "grow-redis", namespace)["spec"]["replicas"] == 8  # until drained
    cluster.wait_for(
        "statefulset", "grow-redis", namespace, lambda s: s["spec"]["replicas"] == 6, timeout=300
    )
    wait_ready(cluster, namespace, "grow", timeout=300)
    if real:
        shrunk = master_slots(redis_cli(cluster, namespace, "grow-redis-0", "cluster", "nodes"))
        assert len(shrunk) == 3 and sum(shrunk.values()) == 16384 and min(shrunk.values()) > 0
        nodes = redis_cli(cluster, namespace, "grow-redis-0", "cluster", "nodes").splitlines()
        assert len(nodes) == 6, nodes
    for key, value in keys.items():
        assert value in redis_cli(cluster, namespace, "grow-redis-0", "-c", "get", key)

    cluster.patch("bac", "grow", namespace, {"spec": {"postgres": {"readReplicas": 0}}})
    cluster.wait_for("statefulset", "grow-postgres", namespace, lambda s: s["spec"]["replicas"] == 1)
    cluster.wait_gone("service", "grow-postgres-ro", namespace)


def test_external_services_come_from_secrets(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "ext-db",
        "-n",
        namespace,
        "--from-literal=url=postgresql://app:pw@db.example.internal/brain",
        "--from-literal=read=postgresql://app:pw@db-ro.example.internal/brain",
    )
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "ext-cache",
        "-n",
        namespace,
        "--from-literal=url=redis://:pw@cache.example.internal:6379",
    )
    cluster.apply(
        cluster_manifest(
            "ext",
            {
                "autoscaling": {"enabled": False},
                "engine": {"replicas": 1},
                "postgres": {
                    "enabled": True,
                    "external": {
                        "secretRef": {"name": "ext-db", "key": "url"},
                        "readSecretRef": {"name": "ext-db", "key": "read"},
                    },
                },
                "redis": {"enabled": True, "external": {"secretRef": {"name": "ext-cache", "key": "url"}}},
            },
        ),
        namespace,
    )

    def reconciled(bac: dict[str, Any]) -> bool:
        types = {c["type"] for c in bac.get("status", {}).get("conditions", [])}
        return {"PostgresReady", "RedisReady"} <= types

    bac = cluster.wait_for("bac", "ext", namespace, reconciled, what="the external tiers in status")
    assert condition(bac, "PostgresReady")["reason"] == "External"
    assert condition(bac, "RedisReady")["reason"] == "External"
    assert cluster.items("statefulset", namespace) == []
    assert env_sources(cluster.get("deployment", "ext-engine", namespace)) == {
        "DATABASE_URL": ("ext-db", "url"),
        "DATABASE_READ_URLS": ("ext-db", "read"),
        "REDIS_URL": ("ext-cache", "url"),
    }
    if TIER == "kind":  # the engines really try those addresses, and say why they are not ready
        logs = ("logs", "deployment/ext-engine", "-n", namespace)
        wait_until(
            lambda: "storage not reachable yet" in cluster.run("kubectl", *logs, check=False).stdout,
            timeout=90,
            what="the engine to report the unreachable database",
        )


PG_ONLY = {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}, "postgres": {"enabled": True}}


def test_retained_credentials_outlive_the_cluster_and_the_tier(cluster: Cluster, namespace: str) -> None:
    """With the default `Retain`, the volumes stay and so does the Secret with their passwords: a
    re-created cluster and a re-enabled tier find the same password."""
    cluster.apply(cluster_manifest("keep", PG_ONLY), namespace)
    wait_ready(cluster, namespace, "keep", timeout=300)
    secret = "keep-postgres-credentials"
    password = secret_values(cluster, namespace, secret)["superuser-password"]
    assert not cluster.get("secret", secret, namespace)["metadata"].get("ownerReferences")

    cluster.patch("bac", "keep", namespace, {"spec": {"postgres": {"enabled": False}}})
    wait_until(lambda: cluster.get("statefulset", "keep-postgres", namespace) is None, timeout=60)
    assert secret_values(cluster, namespace, secret)["superuser-password"] == password
    cluster.patch("bac", "keep", namespace, {"spec": {"postgres": {"enabled": True}}})
    wait_ready(cluster, namespace, "keep", timeout=300)
    assert secret_values(cluster, namespace, secret)["superuser-password"] == password

    cluster.kubectl("delete", "bac", "keep", "-n", namespace, "--wait=true")
    assert cluster.get("pvc", "data-keep-postgres-0", namespace) is not None
    cluster.apply(cluster_manifest("keep", PG_ONLY), namespace)
    wait_ready(cluster, namespace, "keep", timeout=300)
    assert secret_values(cluster, namespace, secret)["superuser-password"] == password


def test_a_lost_secret_next_to_kept_data_is_reported_not_replaced(cluster: Cluster, namespace: str) -> None:
    cluster.apply(cluster_manifest("lost", PG_ONLY), namespace)
    wait_ready(cluster, namespace, "lost", timeout=300)
    cluster.kubectl("delete", "secret", "lost-postgres-credentials", "-n", namespace)
    cluster.kubectl("annotate", "bac", "lost", "-n", namespace, "poke=1")  # reconcile now
    bac = cluster.wait_for("bac", "lost", namespace, lambda b: b["status"]["phase"] == "Degraded", timeout=60)
    ready = condition(bac, "Ready")
    assert ready["reason"] == "CredentialsMissing"
    assert "lost-postgres-credentials" in ready["message"] and "restore" in ready["message"]
    assert cluster.get("secret", "lost-postgres-credentials", namespace) is None  # no new password


def test_a_postgres_major_version_change_is_refused(cluster: Cluster, namespace: str) -> None:
    spec = {**PG_ONLY, "postgres": {"enabled": True, "image": IMAGES["postgres"]}}
    cluster.apply(cluster_manifest("major", spec), namespace)
    wait_ready(cluster, namespace, "major", timeout=300)
    newer = IMAGES["postgres"].rsplit(":", 1)[0] + ":16"
    with pytest.raises(KubectlError) as refused:
        cluster.patch("bac", "major", namespace, {"spec": {"postgres": {"image": newer}}})
    assert "spec.postgres.image" in refused.value.stderr and "major version" in refused.value.stderr
