"""Connection pools for a PostgreSQL primary and its read replicas, with fast failure and recovery.

A server that fails at the connection level is marked down for a short cooldown, so callers fail (or
fall back to another server) at once instead of each waiting for the pool timeout. After the
cooldown the next caller probes the server with one direct connection; when that succeeds the pool
is replaced by a fresh one, so recovery after an outage takes one probe instead of the pool's
exponential reconnect back-off. The cooldown doubles (up to MAX_COOLDOWN_S, jittered) while probes keep
failing, which bounds what an unreachable host that never answers (each probe waits for the connect
timeout) can cost. TCP keepalives and a user timeout turn a silent network partition into an error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from brainai_common.cooldown import Cooldown

log = logging.getLogger(__name__)

T = TypeVar("T")
COOLDOWN_S = 1.0
MAX_COOLDOWN_S = 5.0
CONNECT_TIMEOUT_S = 2  # libpq's minimum
# A server whose node is lost answers nothing, not even a reset: a statement sent to it fails once
# its bytes go unacknowledged for tcp_user_timeout (the kernel acknowledges at once while the server
# lives, however long the statement runs), and an idle connection once keepalives go unanswered
# (about 9 s). Both well inside a client's usual 10 s timeout, so it gets a 503, not a hang.
TCP_SETTINGS = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 5_000,
}


class ServerDown(Exception):
    """This server cannot be used right now (connection-level failure or cooldown); `retry_after`
    is when it will next be tried, so a 503's Retry-After tells clients the truth."""

    def __init__(self, name: str, retry_after: float = COOLDOWN_S) -> None:
        super().__init__(name)
        self.retry_after = retry_after


def safe_dsn(conninfo: str) -> str:
    """host:port/dbname of a connection string, never its password (for logs and describe())."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<invalid dsn>"
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def normalise_url(url: str) -> str:
    """Accept the SQLAlchemy-style postgresql+psycopg:// and postgres:// spellings too."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def is_connection_error(exc: BaseException, conn: psycopg.Connection | None) -> bool:
    """Failures that say "this server is gone", as opposed to a bad statement or a timeout."""
    if conn is not None and (conn.broken or conn.closed):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return (
        sqlstate.startswith("08")
        or sqlstate in {"57P01", "57P02", "57P03"}
        or (isinstance(exc, psycopg.OperationalError) and not sqlstate)
    )


class Server:
    """One database server: a pool, its health and the session settings of its connections."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        size: int,
        timeout: float,
        options: dict[str, str],
        read_only: bool,
        statement_cache: int,
        application_name: str,
    ) -> None:
        self.name = name
        self.dsn = safe_dsn(url)
        extra: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": application_name[:63],
            **TCP_SETTINGS,
        }
        if options:
            extra["options"] = " ".join(f"-c {k}={v}" for k, v in options.items())
        if read_only:
            extra["options"] = (extra.get("options", "") + " -c default_transaction_read_only=on").strip()
        self.conninfo = make_conninfo(normalise_url(url), **extra)
        self.size = size
        self.timeout = timeout
        self.statement_cache = statement_cache
        self.up = True
        self._cooldown = Cooldown(COOLDOWN_S, MAX_COOLDOWN_S)
        self._lock = threading.Lock()
        self._probing = False
        self.pool = self._new_pool()

    def _configure(self, conn: psycopg.Connection) -> None:
        if self.statement_cache:
            conn.prepared_max = self.statement_cache
        else:
            conn.prepare_threshold = None

    def _new_pool(self) -> ConnectionPool:
        pool: ConnectionPool = ConnectionPool(
            self.conninfo,
            min_size=min(2, self.size),
            max_size=self.size,
            timeout=self.timeout,
            kwargs={"autocommit": True},
            configure=self._configure,
            open=False,
            name=f"brainai-{self.name}",
            reconnect_timeout=60.0,
        )
        pool.open(wait=False)
        return pool

    # -- health -----------------------------------------------------------------------------------
    def mark_down(self, exc: BaseException) -> float:
        """Returns the cooldown that starts now: when the server will next be tried."""
        with self._lock:
            if self.up:
                log.warning("database %s (%s) unreachable: %s", self.name, self.dsn, type(exc).__name__)
            self.up = False
            self._cooldown.reset()
            return self._cooldown.fail()

    def _ensure_up(self) -> None:
        """Raise ServerDown during the cooldown; after it, let one caller probe and revive the pool."""
        if self.up:
            return
        with self._lock:
            if self.up:
                return
            if self._cooldown.cooling or self._probing:
                raise ServerDown(self.name, self._cooldown.remaining)
            self._probing = True
        try:
            probe = psycopg.connect(self.conninfo, autocommit=True)
            probe.close()
        except psycopg.Error as exc:
            with self._lock:
                self._probing = False
                wait = self._cooldown.fail()
            raise ServerDown(self.name, wait) from exc
        old = self.pool
        self.pool = self._new_pool()
        threading.Thread(target=old.close, kwargs={"timeout": 1.0}, daemon=True).start()
        with self._lock:
            self._probing = False
            self.up = True
            self._cooldown.reset()
        log.warning("database %s (%s) reachable again", self.name, self.dsn)

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        self._ensure_up()
        with self.pool.connection(timeout=self.timeout if timeout is None else timeout) as conn:
            yield conn

    def run(self, fn: Callable[[psycopg.Connection], T], timeout: float | None = None) -> T:
        """fn(conn) on a pooled connection; a connection-level failure marks the server down and
        is re-raised as ServerDown."""
        conn: psycopg.Connection | None = None
        try:
            with self.connection(timeout) as conn:
                return fn(conn)
        except ServerDown:
            raise
        except PoolTimeout as exc:
            # No connection within the timeout: the server is gone if the pool holds none at all;
            # otherwise it is only busy, which is worth a retry but not a probe.
            if self.pool.get_stats().get("pool_size", 0) == 0:
                raise ServerDown(self.name, self.mark_down(exc)) from exc
            raise ServerDown(self.name) from exc
        except psycopg.Error as exc:
            if is_connection_error(exc, conn):
                raise ServerDown(self.name, self.mark_down(exc)) from exc
            raise

    def ping(self) -> bool:
        try:
            return self.run(lambda c: c.execute("SELECT 1").fetchone() == (1,), timeout=1.0)
        except (ServerDown, psycopg.Error):
            return False

    def close(self) -> None:
        self.pool.close(timeout=2.0)


class Servers:
    """The primary and the read replicas; reads prefer replicas, then the primary."""

    def __init__(self, primary: Server, replicas: list[Server]) -> None:
        self.primary = primary
        self.replicas = replicas
        self._next = 0

    def read_order(self) -> list[Server]:
        """Replicas round-robin (healthy first), the primary last."""
        n = len(self.replicas)
        if not n:
            return [self.primary]
        self._next = (self._next + 1) % n
        rotated = self.replicas[self._next :] + self.replicas[: self._next]
        return [*sorted(rotated, key=lambda s: not s.up), self.primary]

    def read(self, fn: Callable[[psycopg.Connection], T], *, primary: bool = False) -> tuple[T, Server]:
        """fn on the first server that answers; recovery conflicts on a replica also fall through."""
        last: BaseException | None = None
        waits: list[float] = []
        for server in [self.primary] if primary else self.read_order():
            try:
                return server.run(fn, timeout=min(server.timeout, 2.0)), server
            except ServerDown as exc:
                last = exc
                waits.append(exc.retry_after)
            except (pg_errors.SerializationFailure, pg_errors.QueryCanceled, pg_errors.UndefinedTable) as exc:
                if server is self.primary:
                    raise
                # A replica cancelled the query for WAL replay, or has not replayed the schema yet.
                last = exc
        raise ServerDown("no database server reachable for reads", min(waits, default=COOLDOWN_S)) from last

    def close(self) -> None:
        for server in [*self.replicas, self.primary]:
            server.close()
