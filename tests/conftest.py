"""Session fixtures for real database servers: a PostgreSQL primary with a streaming replica, and a
six-node Redis Cluster. Each starts on first use, keeps its data in a temporary directory and is
stopped when the session ends. Tests that use them carry the `postgres` / `redis_cluster` markers."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest

from tests.servers import PgCluster, RedisCluster, start_pg_cluster, start_redis_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        cluster = start_pg_cluster()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield cluster
    cluster.shutdown()


@pytest.fixture
def pg_database(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> tuple[str, str]:
    """A fresh database per test: (primary_url, replica_url)."""
    if not pg_cluster.running(pg_cluster.primary):
        pg_cluster.start_primary()
    base = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    return pg_cluster.new_database(f"t_{base}_{secrets.token_hex(3)}")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    try:
        cluster = start_redis_cluster()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield cluster
    cluster.shutdown()
