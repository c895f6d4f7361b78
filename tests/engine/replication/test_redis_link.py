"""The engine's link to Redis when a node stops answering without closing its connections (its
node lost, not its process killed): one caller waits out the socket timeout, the others go on
without Redis at once, and the link comes back when the node does."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from brainai_common.engine_config import RedisConfig
from brainai_engine.replication.redis_link import RedisLink
from tests.servers import RedisCluster, wait_for

pytestmark = pytest.mark.redis_cluster
TIMEOUT_S = 1.0


def owner_and_replica(cluster: RedisCluster, key: str) -> list[int]:
    """Ports of the master serving `key` and of its replica."""
    node = cluster.nodes[0]
    slot = int(cluster.cli(node, "CLUSTER", "KEYSLOT", key))
    rows = [line.split() for line in cluster.cli(node, "CLUSTER", "NODES").splitlines()]

    def serves(fields: list[str]) -> bool:
        ranges = [r.split("-") for r in fields[8:] if not r.startswith("[")]
        return "master" in fields[2] and any(int(r[0]) <= slot <= int(r[-1]) for r in ranges)

    def port(fields: list[str]) -> int:
        return int(re.split(r"[:@]", fields[1])[1])

    master = next(f for f in rows if serves(f))
    return [port(master), *(port(f) for f in rows if f[3] == master[0])]


def test_a_silent_node_costs_one_timeout_not_one_per_caller(redis_cluster: RedisCluster) -> None:
    link = RedisLink(RedisConfig(url=redis_cluster.url, cluster=True, connect_timeout_seconds=TIMEOUT_S))
    key = "brainai:link-test"
    assert link.call(lambda c: c.set(key, "v")) is True
    silent = [n for n in redis_cluster.nodes if n.port in owner_and_replica(redis_cluster, key)]
    assert len(silent) == 2
    for node in silent:
        redis_cluster.freeze(node)
    try:

        def timed_get(_: int) -> tuple[float, object]:
            started = time.monotonic()
            got = link.call(lambda c: c.get(key))
            return time.monotonic() - started, got

        with ThreadPoolExecutor(16) as pool:
            first = [pool.submit(timed_get, i) for i in range(16)]
            time.sleep(0.4)  # callers arriving while the first ones wait
            later = [pool.submit(timed_get, i) for i in range(16)]
            results = [f.result(timeout=60) for f in first + later]
        assert all(got is None for _, got in results)
        # One socket timeout at most (no retries, no topology refresh through the silent nodes),
        # and the callers that came once the first ones had stalled did not queue behind them.
        waited = sorted(d for d, _ in results[:16])
        assert waited[-1] < 2 * TIMEOUT_S + 0.5, waited
        assert max(d for d, _ in results[16:]) < 0.1, results[16:]
    finally:
        for node in silent:
            redis_cluster.thaw(node)
    redis_cluster.wait_ok()
    wait_for(lambda: link.call(lambda c: c.get(key)) == "v", 40, "the link back once the nodes answer")
    link.close()
