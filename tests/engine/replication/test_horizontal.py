"""Horizontal scaling on real servers: engine replicas sharing PostgreSQL (primary + streaming replica)
and a Redis Cluster. In-process engines check what the change feed applies; engine server processes
check propagation over HTTP and behaviour when the primary or a Redis master dies."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from brainai_common.engine_config import EngineConfig
from brainai_engine.engine.facade import Engine
from brainai_engine.models import LearnRequest, MemoryIn, MemorySearchQuery
from brainai_engine.storage.base import StorageUnavailable
from brainai_engine.storage.pg_servers import MAX_COOLDOWN_S
from brainai_engine.tools.server_process import ServerProcess
from tests.servers import PgCluster, RedisCluster, wait_for

pytestmark = pytest.mark.postgres

TwoEngines = Callable[..., tuple[Engine, Engine]]


def engine_config(
    data_dir: Path, primary: str, replica: str, redis_url: str | None = None, **database: Any
) -> EngineConfig:
    return EngineConfig.model_validate(
        {
            "system": {"memory_capacity": 10_000},
            "server": {"data_dir": str(data_dir)},
            "database": {
                "url": primary,
                "read_urls": [replica],
                "connection_pool_size": 4,
                "pool_timeout_seconds": 1.0,
                **database,
            },
            "redis": {"url": redis_url, "cluster": True} if redis_url else {},
        }
    )


@pytest.fixture
def two_engines(pg_database: tuple[str, str], tmp_path: Path) -> Iterator[TwoEngines]:
    opened: list[Engine] = []

    def make(redis_url: str | None = None) -> tuple[Engine, Engine]:
        for name in ("a", "b"):
            cfg = engine_config(
                tmp_path / name, *pg_database, redis_url, change_poll_interval_seconds=60
            )  # applied explicitly below
            opened.append(Engine(cfg))
        return opened[-2], opened[-1]

    yield make
    for engine in opened:
        engine.close()


def search(engine: Engine, query: str) -> list[str]:
    return [hit.memory.content for hit in engine.search_memories(MemorySearchQuery(query=query)).results]


def test_change_feed_applies_memories_concepts_and_deletes(two_engines: TwoEngines) -> None:
    a, b = two_engines()
    learned = a.learn(LearnRequest(text="Quasars outshine galaxies. Quasars feed on black holes."))
    b.learn(LearnRequest(text="Tidepools hold anemones and tidepools hold crabs."))
    assert search(b, "quasars") == []
    wait_for(lambda: b.apply_remote_changes() >= 0 and search(b, "quasars") != [], 5, "feed on b")
    assert search(b, "anemones")  # its own write at once
    wait_for(lambda: a.apply_remote_changes() >= 0 and search(a, "anemones") != [], 5, "feed on a")
    assert b.get_concept("quasars") is not None
    assert b.stats().memories == a.stats().memories == 2
    assert {n: a.graph.nodes[n].usage_count for n in a.graph.nodes} == {
        n: b.graph.nodes[n].usage_count for n in b.graph.nodes
    }
    assert a.graph.edge_count == b.graph.edge_count
    # a lower id arriving after a higher one is indexed in order (postings stay sorted)
    added = b.add_memory(MemoryIn(content="quasars again, from b"))
    assert int(added.id) > int(learned.memory_ids[0])
    wait_for(lambda: a.apply_remote_changes() >= 0 and len(search(a, "quasars")) == 2, 5, "feed on a")
    assert a.delete_memory(learned.memory_ids[0])
    wait_for(
        lambda: b.apply_remote_changes() >= 0 and search(b, "quasars") == ["quasars again, from b"],
        5,
        "delete on b",
    )
    assert b.get_memory(learned.memory_ids[0]) is None


@pytest.mark.redis_cluster
def test_shared_result_cache_in_redis_cluster(two_engines: TwoEngines, redis_cluster: RedisCluster) -> None:
    a, b = two_engines(redis_cluster.url)
    a.learn(LearnRequest(text="Sundials measure solar time."))
    wait_for(
        lambda: (
            b.apply_remote_changes() >= 0
            and a.apply_remote_changes() >= 0
            and a.feed.cursor == b.feed.cursor
            and a.feed.consistent
        ),
        5,
        "same log position",
    )
    q = MemorySearchQuery(query="sundials")
    first = a.search_memories(q)
    cache_b = b.shared_pages
    assert cache_b is not None
    hits = cache_b.hits
    second = b.search_memories(q)
    assert cache_b.hits == hits + 1  # b got a's page from Redis
    assert [h.memory.id for h in second.results] == [h.memory.id for h in first.results]
    b.learn(LearnRequest(text="Sundials and astrolabes."))  # a write moves the version on
    wait_for(lambda: a.apply_remote_changes() >= 0 and len(search(a, "sundials")) == 2, 5, "new version")


@pytest.mark.redis_cluster
def test_redis_notification_wakes_the_feed_before_the_poll(
    two_engines: TwoEngines, redis_cluster: RedisCluster
) -> None:
    a, b = two_engines(redis_cluster.url)  # polling every 60 s: only a notification can be this quick
    time.sleep(0.2)  # let b's listener block on the stream
    a.learn(LearnRequest(text="Geysers erupt on schedule."))
    started = time.monotonic()
    wait_for(lambda: search(b, "geysers") != [], 3, "notified feed", 0.01)
    assert time.monotonic() - started < 1.0


def test_engine_serves_without_redis(two_engines: TwoEngines) -> None:
    a, _ = two_engines("redis://127.0.0.1:1")  # nothing listens there
    a.learn(LearnRequest(text="Lighthouses warn ships."))
    assert search(a, "lighthouses") == ["Lighthouses warn ships."]
    assert a.readiness()["redis"] is False


# -- engine server processes ------------------------------------------------------------------------
API = "/api/v1"


class Pair:
    """Two `brain-ai-engine serve` processes on one database and one Redis Cluster."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.servers = servers
        self.clients = [httpx.Client(base_url=s.base_url, timeout=15) for s in servers]

    def learn(self, i: int, text: str) -> httpx.Response:
        return self.clients[i].post(f"{API}/learn", json={"text": text})

    def search(self, i: int, query: str) -> httpx.Response:
        return self.clients[i].get(f"{API}/memory/search", params={"query": query, "limit": 100})

    def found(self, i: int, query: str) -> set[str]:
        response = self.search(i, query)
        assert response.status_code == 200, response.text
        return {hit["memory"]["id"] for hit in response.json()["results"]}

    def propagation_time(self, src: int, dst: int, marker: str, timeout: float = 5.0) -> float:
        """Learn `marker` on src; seconds until dst finds it."""
        response = self.learn(src, f"Propagation check {marker} for replicas.")
        assert response.status_code == 200, response.text
        started = time.monotonic()
        ids = set(response.json()["memory_ids"])
        while not ids <= self.found(dst, marker):
            assert time.monotonic() - started < timeout, f"{marker} never reached engine {dst}"
            time.sleep(0.02)
        return time.monotonic() - started


@pytest.fixture(scope="module")
def pair(
    pg_cluster: PgCluster, redis_cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    primary, replica = pg_cluster.new_database("horizontal_pair")
    base = tmp_path_factory.mktemp("pair")
    servers = []
    for i in range(2):
        config = base / f"engine{i}.toml"
        config.write_text(
            f'[system]\nmemory_capacity = 10000\n\n[server]\ndata_dir = "{base / str(i)}"\n\n'
            f'[database]\nread_urls = ["{replica}"]\nconnection_pool_size = 4\npool_timeout_seconds = 1.0\n\n'
            "[redis]\ncluster = true\n",
            encoding="utf-8",
        )
        env = {"DATABASE_URL": primary, "REDIS_URL": redis_cluster.url, "INSTANCE_ID": f"engine-{i}"}
        servers.append(ServerProcess(base / str(i), config_path=str(config), env=env))
    try:
        for server in servers:
            server.start()
        yield Pair(servers)
    finally:
        for server in servers:
            server.stop()


@pytest.mark.redis_cluster
def test_learn_on_one_replica_is_found_on_the_other_within_a_second(pair: Pair) -> None:
    for k in range(3):
        assert pair.propagation_time(0, 1, f"ab{k}zq") < 1.0
        assert pair.propagation_time(1, 0, f"ba{k}zq") < 1.0
    ready = pair.clients[0].get("/ready").json()
    assert ready["details"]["database"] == {"primary": True, "replica-0": True}
    assert ready["details"]["redis"] is True


@pytest.mark.redis_cluster
def test_primary_down_reads_serve_writes_503_then_recover(pair: Pair, pg_cluster: PgCluster) -> None:
    before = pair.learn(0, "Before the outage: glaciers carve fjords.").json()["memory_ids"]
    wait_for(lambda: set(before) <= pair.found(1, "glaciers"), 5, "propagation before outage")
    pg_cluster.stop_primary()
    try:
        for i in range(2):
            assert set(before) <= pair.found(i, "glaciers")  # in-process index + replica reads
            got = pair.clients[i].get(f"{API}/memory/{before[0]}")
            assert got.status_code == 200 and "glaciers" in got.json()["content"]
            refused = pair.learn(i, "During the outage: nothing is stored.")
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "storage_unavailable"
            assert int(refused.headers["Retry-After"]) >= 1
            ready = pair.clients[i].get("/ready")
            assert ready.status_code == 200 and ready.json()["details"]["database"]["primary"] is False
    finally:
        pg_cluster.start_primary()
    # Each engine probes the primary again when its own cooldown ends, which Retry-After tells.
    deadline = time.monotonic() + 15
    for i in range(2):
        while (response := pair.learn(i, "After the outage: volcanoes build islands.")).status_code == 503:
            wait = int(response.headers["Retry-After"])
            assert 1 <= wait <= math.ceil(MAX_COOLDOWN_S), response.headers
            assert time.monotonic() + wait < deadline, f"writes on engine {i} did not recover"
            time.sleep(wait)
        assert response.status_code == 200, response.text
    assert pair.propagation_time(0, 1, "recovered1zq") < 1.0
    assert pair.propagation_time(1, 0, "recovered2zq") < 1.0


@pytest.mark.redis_cluster
def test_redis_master_killed_engines_keep_serving_and_lose_nothing(
    pair: Pair, redis_cluster: RedisCluster
) -> None:
    victim = redis_cluster.masters()[0]
    acked: dict[str, int] = {}  # memory id -> engine that acknowledged it
    redis_cluster.kill(victim)
    try:
        started = time.monotonic()
        k = 0
        while time.monotonic() - started < 4.0 or k < 10:  # through the failover (~2-3 s)
            src = k % 2
            response = pair.learn(src, f"Failover entry rk{k}zq about comets.")
            assert response.status_code == 200, response.text
            acked.update((i, src) for i in response.json()["memory_ids"])
            assert pair.search(1 - src, "comets").status_code == 200
            k += 1
            time.sleep(0.1)  # keeps the count under one search page (limit 100)
        redis_cluster.wait_ok()
        for i in range(2):
            wait_for(lambda i=i: set(acked) <= pair.found(i, "comets"), 5, f"every acked memory on {i}")
            for memory_id in acked:
                assert pair.clients[i].get(f"{API}/memory/{memory_id}").status_code == 200
        assert pair.propagation_time(0, 1, "afterfailoverzq") < 1.0
    finally:
        redis_cluster.start(victim)  # rejoins as a replica of the promoted node
        redis_cluster.wait_ok()


def test_write_refused_while_primary_down_is_a_storage_error(
    two_engines: TwoEngines, pg_cluster: PgCluster
) -> None:
    a, _ = two_engines()
    pg_cluster.stop_primary()
    try:
        with pytest.raises(StorageUnavailable):
            a.learn(LearnRequest(text="Refused while the primary is down."))
        assert a.is_ready()
    finally:
        pg_cluster.start_primary()
    wait_for(
        lambda: a.learn(LearnRequest(text="Stored once the primary is back.")) is not None,
        10,
        "writes after the primary restarted",
        0.2,
    )
    assert search(a, "primary") == ["Stored once the primary is back."]


@pytest.mark.postgres
def test_serve_waits_for_its_database_instead_of_crashing(pg_cluster: PgCluster, tmp_path: Path) -> None:
    """Engines and their database start together in a fresh cluster: the engine waits, saying why."""
    primary, _ = pg_cluster.new_database("serve_waits")
    config = tmp_path / "engine.toml"
    config.write_text("[system]\nmemory_capacity = 10000\n\n[database]\npool_timeout_seconds = 1.0\n")
    pg_cluster.stop_primary()
    server = ServerProcess(tmp_path / "data", config_path=str(config), env={"DATABASE_URL": primary})
    try:
        server.ready_timeout = 90
        starting = threading.Thread(target=server.start)
        starting.start()
        wait_for(lambda: "storage not reachable yet" in server.log_tail(), 30, "the engine to say it waits")
        assert server.proc is not None and server.proc.poll() is None  # waiting, not crashed
    finally:
        pg_cluster.start_primary()
    starting.join(timeout=100)
    assert not starting.is_alive()
    try:
        assert httpx.get(f"{server.base_url}/ready").status_code == 200
        assert "Traceback" not in server.log_tail()
    finally:
        server.stop()
