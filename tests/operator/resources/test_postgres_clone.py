"""The replica seeding script, run for real against a real PostgreSQL primary.

Two replicas seeded one after the other, with WAL recycled by checkpoints before the first one
starts (what the second one's base backup does to it in a cluster): each still catches up and
streams, because its slot kept the WAL it needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from brainai_operator.resources.postgres import CLONE_PRIMARY, slot_retention_mb
from tests.servers import HOST, PgCluster, PgNode, _as_postgres, free_port, wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def primary(pg_cluster: PgCluster) -> Iterator[PgCluster]:
    if not pg_cluster.running(pg_cluster.primary):
        pg_cluster.start_primary()
    pg_cluster.psql(pg_cluster.primary, "CREATE ROLE replicator WITH REPLICATION LOGIN")
    yield pg_cluster
    pg_cluster.psql(
        pg_cluster.primary,
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active",
    )
    pg_cluster.psql(pg_cluster.primary, "DROP ROLE replicator")


def clone(pg: PgCluster, pod: str) -> PgNode:
    node = PgNode(pod, pg.base / pod, free_port(HOST))
    script = pg.base / "clone-primary.sh"
    script.write_text(CLONE_PRIMARY)
    env = {
        "PATH": f"{pg.bin_dir}:{os.environ['PATH']}",
        "PGDATA": str(node.data),
        "PRIMARY_HOST": HOST,
        "PGPORT": str(pg.primary.port),
        "POD_NAME": pod,
        "REPLICATION_PASSWORD": "unused-with-trust-auth",
    }
    cmd = [*_as_postgres(), "env", *(f"{k}={v}" for k, v in env.items()), "bash", str(script)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=pg.base)
    assert done.returncode == 0, done.stderr
    with open(node.data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(f"\nport = {node.port}\n")
    return node


def recycle_wal(pg: PgCluster, rounds: int = 4) -> None:
    pg.psql(pg.primary, "CREATE TABLE IF NOT EXISTS churn (x text)")
    for _ in range(rounds):
        pg.psql(pg.primary, "INSERT INTO churn SELECT repeat('x', 1000) FROM generate_series(1, 2000)")
        pg.psql(pg.primary, "SELECT pg_switch_wal()")
        pg.psql(pg.primary, "CHECKPOINT")


def streaming(pg: PgCluster, pod: str) -> bool:
    sql = f"SELECT state FROM pg_stat_replication WHERE application_name = '{pod}'"
    return pg.psql(pg.primary, sql) == "streaming"


def test_replicas_seeded_in_turn_stream_after_the_primary_recycled_their_wal(primary: PgCluster) -> None:
    pods = ["c-postgres-replica-0", "c-postgres-replica-1"]
    nodes = []
    try:
        for pod in pods:
            nodes.append(clone(primary, pod))
            recycle_wal(primary)
        slots = primary.psql(primary.primary, "SELECT slot_name FROM pg_replication_slots ORDER BY 1")
        assert slots.split() == [p.replace("-", "_") for p in pods]
        for node in nodes:
            primary.start(node)
        for pod in pods:
            wait_for(lambda pod=pod: streaming(primary, pod), 60, f"{pod} streaming", 0.2)
        # A volume seeded again (claim lost) gets a fresh slot under the same name, not an error.
        primary.stop(nodes[0])
        shutil.rmtree(nodes[0].data)
        nodes[0] = clone(primary, pods[0])
        primary.start(nodes[0])
        wait_for(lambda: streaming(primary, pods[0]), 60, "re-seeded replica streaming", 0.2)
    finally:
        for node in nodes:
            if primary.running(node):
                primary.stop(node, "immediate")
            shutil.rmtree(node.data, ignore_errors=True)


def test_slot_retention_is_a_quarter_of_the_volume_with_a_floor() -> None:
    assert slot_retention_mb("5Gi") == 1280
    assert slot_retention_mb("100Mi") == 64
    assert slot_retention_mb("1Ti") == 262144
