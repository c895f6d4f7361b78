"""Real PostgreSQL (primary + streaming replica) and Redis Cluster processes for integration tests.

Everything listens on 127.0.0.1 only, keeps its data in a temporary directory and is stopped by the
session fixture that started it. PostgreSQL refuses to run as root, so when the tests run as root its
commands are run as the `postgres` system user, in a directory that user owns. Authentication is
`trust` on loopback: no password exists, so none can end up in a log.
"""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from brainai_engine.api.serving import free_port

HOST = "127.0.0.1"


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


# -- PostgreSQL -------------------------------------------------------------------------------------
def pg_bin_dir() -> Path | None:
    """Debian keeps server binaries out of PATH: /usr/lib/postgresql/<major>/bin (newest wins)."""
    override = os.environ.get("BRAINAI_PG_BIN")
    if override:
        return Path(override)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class PgNode:
    name: str
    data: Path
    port: int

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.name}.log"


@dataclass
class PgCluster:
    """A primary and one streaming replica; `stop_primary`/`start_primary` simulate an outage."""

    bin_dir: Path
    base: Path
    primary: PgNode
    replica: PgNode
    _dbs: list[str] = field(default_factory=list)

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        cmd = [*_as_postgres(), str(self.bin_dir / tool), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if out.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}"
            )
        return out.stdout

    def psql(self, node: PgNode, sql: str, db: str = "postgres") -> str:
        return self._run(
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-h",
            HOST,
            "-p",
            str(node.port),
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ).strip()

    def url(self, node: PgNode, db: str) -> str:
        return f"postgresql://postgres@{HOST}:{node.port}/{db}"

    def new_database(self, name: str) -> tuple[str, str]:
        """A fresh database (replicated to the standby); returns (primary_url, replica_url)."""
        self.psql(self.primary, f'CREATE DATABASE "{name}"')
        self._dbs.append(name)
        wait_for(
            lambda: self.psql(self.replica, "SELECT 1", db=name) == "1", 30, f"database {name} on replica"
        )
        return self.url(self.primary, name), self.url(self.replica, name)

    def start(self, node: PgNode) -> None:
        self._run("pg_ctl", "-D", str(node.data), "-l", str(node.log), "-w", "-t", "60", "start")

    def stop(self, node: PgNode, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(node.data), "-m", mode, "-w", "stop")

    def stop_primary(self) -> None:
        """`-m immediate`: the postmaster and its children exit without a checkpoint, like a crash."""
        self.stop(self.primary, "immediate")

    def start_primary(self) -> None:
        self.start(self.primary)
        self.wait_streaming()

    def running(self, node: PgNode) -> bool:
        cmd = [*_as_postgres(), str(self.bin_dir / "pg_ctl"), "-D", str(node.data), "status"]
        return subprocess.run(cmd, capture_output=True, cwd=self.base).returncode == 0

    def wait_streaming(self, timeout: float = 60) -> None:
        sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        wait_for(lambda: self.psql(self.primary, sql) == "1", timeout, "streaming replication", 0.1)

    def shutdown(self) -> None:
        for node in (self.replica, self.primary):
            if self.running(node):
                with contextlib.suppress(RuntimeError):
                    self.stop(node, "immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def _pg_conf(port: int, socket_dir: Path) -> str:
    # fsync=off: the tests crash PostgreSQL processes, never the machine, and the page cache survives
    # a process crash; it spares the shared disk an fsync per commit.
    return "\n".join(
        [
            "",
            f"port = {port}",
            f"listen_addresses = '{HOST}'",
            f"unix_socket_directories = '{socket_dir}'",
            "wal_level = replica",
            "max_wal_senders = 5",
            "hot_standby = on",
            "fsync = off",
            "full_page_writes = off",
            "shared_buffers = 32MB",
            "max_connections = 100",
            "wal_receiver_status_interval = 1s",
            "wal_retrieve_retry_interval = 200ms",
            "log_min_messages = warning",
            "",
        ]
    )


def start_pg_cluster() -> PgCluster:
    bin_dir = pg_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        raise FileNotFoundError("PostgreSQL server binaries not found (install the `postgresql` package)")
    base = Path(tempfile.mkdtemp(prefix="brainai-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    cluster = PgCluster(
        bin_dir,
        base,
        PgNode("primary", base / "primary", free_port(HOST)),
        PgNode("replica", base / "replica", free_port(HOST)),
    )
    try:
        cluster._run(
            "initdb",
            "-D",
            str(cluster.primary.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        with open(cluster.primary.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(_pg_conf(cluster.primary.port, base))
        cluster.start(cluster.primary)
        cluster._run(
            "pg_basebackup",
            "-h",
            HOST,
            "-p",
            str(cluster.primary.port),
            "-U",
            "postgres",
            "-D",
            str(cluster.replica.data),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        )
        with open(cluster.replica.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"\nport = {cluster.replica.port}\n")
        cluster.start(cluster.replica)
        cluster.wait_streaming()
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


# -- Redis Cluster ----------------------------------------------------------------------------------
def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is free too, below the ephemeral range."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


@dataclass
class RedisNode:
    port: int
    data: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass
class RedisCluster:
    """Six `redis-server --cluster-enabled yes` processes: three masters, one replica each."""

    base: Path
    nodes: list[RedisNode]

    @property
    def url(self) -> str:
        """Every node, so a client can bootstrap while any one of them is down."""
        return "redis://" + ",".join(n.addr for n in self.nodes)

    def cli(self, node: RedisNode, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(node.port), *args], capture_output=True, text=True, timeout=30
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return out.stdout

    def start(self, node: RedisNode) -> None:
        node.data.mkdir(parents=True, exist_ok=True)
        log = open(node.data / "redis.log", "ab")  # noqa: SIM115 - handed to the child process
        node.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(node.port),
                "--bind",
                HOST,
                "--dir",
                str(node.data),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
                "--cluster-replica-validity-factor",
                "0",
                "--repl-ping-replica-period",
                "1",
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "yes",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: self.cli(node, "PING").strip() == "PONG", 15, f"redis on {node.port}")

    def kill(self, node: RedisNode) -> None:
        """SIGKILL, like a crashed pod: no shutdown, no final AOF rewrite."""
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(timeout=10)

    def freeze(self, node: RedisNode) -> None:
        """SIGSTOP, like a lost node: connections stay open and nothing answers (a killed process
        would refuse them at once)."""
        assert node.proc is not None
        node.proc.send_signal(signal.SIGSTOP)

    def thaw(self, node: RedisNode) -> None:
        assert node.proc is not None
        node.proc.send_signal(signal.SIGCONT)

    def role(self, node: RedisNode) -> str:
        return self.cli(node, "ROLE").split("\n", 1)[0].strip()

    def masters(self) -> list[RedisNode]:
        return [
            n for n in self.nodes if n.proc is not None and n.proc.poll() is None and self.role(n) == "master"
        ]

    def state_ok(self, node: RedisNode) -> bool:
        return "cluster_state:ok" in self.cli(node, "CLUSTER", "INFO")

    def wait_ok(self, timeout: float = 30) -> None:
        alive = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        wait_for(
            lambda: all(self.state_ok(n) for n in alive) and len(self.masters()) == 3,
            timeout,
            "redis cluster_state:ok",
            0.1,
        )

    def shutdown(self) -> None:
        for node in self.nodes:
            self.kill(node)
        shutil.rmtree(self.base, ignore_errors=True)


def start_redis_cluster() -> RedisCluster:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise FileNotFoundError("redis-server/redis-cli not found (install the `redis-server` package)")
    base = Path(tempfile.mkdtemp(prefix="brainai-redis-"))
    cluster = RedisCluster(base, [])
    try:
        for i in range(6):
            port = cluster_port()
            node = RedisNode(port, base / f"node{i}")
            cluster.nodes.append(node)
            cluster.start(node)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(n.addr for n in cluster.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster.wait_ok()
    except BaseException:
        cluster.shutdown()
        raise
    return cluster
