"""The Job script that forms, grows and shrinks the Redis Cluster, run for real against eight real
redis-server processes (one per loopback address, as pods have one IP each, all on port 6379).

`getent` is shimmed to resolve the StatefulSet's pod names to those addresses; everything else is
the script as the Job runs it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from brainai_operator.resources.redis import ENSURE_CLUSTER
from e2e.pods import master_slots
from tests.servers import wait_for

pytestmark = pytest.mark.redis_cluster
PASSWORD = "s3cret-test"
STATEFULSET, SERVICE = "c-redis", "c-redis.ns.svc"
KEYS = 300


@dataclass
class Nodes:
    base: Path
    ips: list[str]
    procs: list[subprocess.Popen[bytes]]

    def cli(self, i: int, *args: str, cluster: bool = False) -> str:
        argv = ["redis-cli", "-h", self.ips[i], *(["-c"] if cluster else []), *args]
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=30, env={"REDISCLI_AUTH": PASSWORD}
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def ensure(self, masters: int, now: int) -> str:
        env = {
            "PATH": f"{self.base / 'bin'}:/usr/bin:/bin",
            "REDIS_PASSWORD": PASSWORD,
            "STATEFULSET": STATEFULSET,
            "SERVICE": SERVICE,
            "MASTERS": str(masters),
            "REPLICAS_PER_MASTER": "1",
            "NODES_NOW": str(now),
        }
        done = subprocess.run(
            ["sh", str(self.base / "ensure-cluster.sh")], capture_output=True, text=True, timeout=300, env=env
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    def view(self, i: int) -> list[list[str]]:
        return [line.split() for line in self.cli(i, "cluster", "nodes").splitlines()]


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found (install the `redis-server` package)")
    ips = [f"127.0.0.{21 + i}" for i in range(8)]
    (tmp_path / "bin").mkdir()
    hosts = "\n".join(f'  {STATEFULSET}-{i}.{SERVICE}) echo "{ip} $1" ;;' for i, ip in enumerate(ips))
    shim = tmp_path / "bin" / "getent"
    shim.write_text(f'#!/bin/sh\nshift\ncase "$1" in\n{hosts}\n  *) exit 2 ;;\nesac\n')
    shim.chmod(0o755)
    (tmp_path / "ensure-cluster.sh").write_text(ENSURE_CLUSTER)
    procs = []
    for i, ip in enumerate(ips):
        data = tmp_path / f"node{i}"
        data.mkdir()
        settings = {
            "bind": ip,
            "port": "6379",
            "dir": str(data),
            "requirepass": PASSWORD,
            "masterauth": PASSWORD,
            "cluster-enabled": "yes",
            "cluster-announce-ip": ip,
            "cluster-node-timeout": "2000",
            "appendonly": "yes",
            "logfile": str(data / "redis.log"),
        }
        procs.append(
            subprocess.Popen(["redis-server", *(a for k, v in settings.items() for a in (f"--{k}", v))])
        )
    found = Nodes(tmp_path, ips, procs)
    try:
        for i in range(8):
            wait_for(lambda i=i: found.cli(i, "ping") == "PONG", 15, f"redis on {ips[i]}")  # type: ignore[misc]
        yield found
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def assert_healthy(nodes: Nodes, members: range, masters: int) -> None:
    for i in members:
        wait_for(lambda i=i: "cluster_state:ok" in nodes.cli(i, "cluster", "info"), 30, f"node {i} ok")  # type: ignore[misc]
        view = nodes.view(i)
        assert len(view) == len(members), view
    slots = master_slots(nodes.cli(members[0], "cluster", "nodes"))
    assert len(slots) == masters and sum(slots.values()) == 16384 and min(slots.values()) > 0
    followed = [f[3] for f in nodes.view(members[0]) if "slave" in f[2]]
    assert sorted(followed) == sorted(slots)  # one replica per master
    missing = [
        k for k in range(KEYS) if nodes.cli(members[0], "get", f"key:{k}", cluster=True) != f"value {k}"
    ]
    assert not missing


def test_forms_grows_and_shrinks_keeping_every_key(nodes: Nodes) -> None:
    nodes.ensure(masters=3, now=6)
    for k in range(KEYS):
        nodes.cli(0, "set", f"key:{k}", f"value {k}", cluster=True)
    assert_healthy(nodes, range(6), masters=3)
    nodes.ensure(masters=4, now=8)
    assert_healthy(nodes, range(8), masters=4)

    out = nodes.ensure(masters=3, now=8)
    assert "shrinking to 6 nodes" in out
    assert_healthy(nodes, range(6), masters=3)
    for i in (6, 7):  # reset: empty, and a cluster of one
        assert len(nodes.view(i)) == 1 and nodes.cli(i, "dbsize") == "0"
    assert "shrinking" not in nodes.ensure(masters=3, now=6)  # idempotent once done


def test_a_staying_replica_of_a_leaving_master_takes_its_slots(nodes: Nodes) -> None:
    """After failovers roles no longer follow ordinals: here a leaving node took over a staying
    master's slots, which go back by promoting that staying node again (no slot migrates)."""
    nodes.ensure(masters=3, now=6)
    for k in range(KEYS):
        nodes.cli(0, "set", f"key:{k}", f"value {k}", cluster=True)
    nodes.ensure(masters=4, now=8)
    ids = [nodes.cli(i, "cluster", "myid") for i in range(8)]
    leaving_replica = next(i for i in (6, 7) if any("myself,slave" in f[2] for f in nodes.view(i)))
    nodes.cli(leaving_replica, "cluster", "replicate", ids[0])
    wait_for(
        lambda: any("myself,slave" in f[2] and f[3] == ids[0] for f in nodes.view(leaving_replica)),
        30,
        "replicate",
    )
    wait_for(
        lambda: "master_link_status:up" in nodes.cli(leaving_replica, "info", "replication"), 30, "in sync"
    )
    nodes.cli(leaving_replica, "cluster", "failover")
    wait_for(lambda: any("myself,slave" in f[2] for f in nodes.view(0)), 30, "node 0 a replica")
    out = nodes.ensure(masters=3, now=8)
    assert f"promoting {nodes.ips[0]}" in out
    assert_healthy(nodes, range(6), masters=3)
