"""The link to Redis (or Redis Cluster), a shared and optional helper: the search-page cache and change
notifications go through it.

Redis never holds the only copy of anything: results can be recomputed and change notifications are
backed by polling the database. So every call goes through `RedisLink.call`, which returns None
instead of raising, and after a failure skips Redis for a cooldown (doubling while failures go on,
up to MAX_COOLDOWN_S, with jitter). A Redis node going down therefore costs at most one failed call per
cooldown, and the engine keeps serving without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from brainai_common.cooldown import Cooldown
from brainai_common.engine_config import RedisConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
COOLDOWN_S = 1.0
MAX_COOLDOWN_S = 30.0
# A call running this long means a node that stopped answering (a lost node keeps its connections
# open; only the socket timeout ends the wait): callers meanwhile go on without Redis instead of
# queueing behind it. Calls take a millisecond or so.
STALL_S = 0.25


def parse_redis_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """redis[s]://[user:password@]host:port[,host:port...][/db] -> (nodes, client options).

    Several hosts let a cluster client bootstrap while any one node is down."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        raise ValueError("redis.url must start with redis:// or rediss://")
    auth, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        nodes.append((host or item.strip(), int(port) if host and port else 6379))
    opts: dict[str, Any] = {}
    if auth:
        user, sep, password = auth.partition(":")
        if sep:
            opts["password"] = unquote(password)
        if user:
            opts["username"] = unquote(user)
    if parts.scheme == "rediss":
        opts["ssl"] = True
    db = parts.path.strip("/")
    if db:
        opts["db"] = int(db)
    return nodes, opts


class RedisLink:
    """A lazily created client plus a circuit breaker; `call` never raises a Redis error."""

    def __init__(self, cfg: RedisConfig, socket_timeout: float | None = None) -> None:
        if not cfg.url:
            raise ValueError("redis.url is not set")
        self.cfg = cfg
        self.prefix = cfg.key_prefix
        self.nodes, self._opts = parse_redis_url(cfg.url)
        self._socket_timeout = socket_timeout or cfg.connect_timeout_seconds
        self._client: redis.Redis | RedisCluster | None = None
        self._cooldown = Cooldown(COOLDOWN_S, MAX_COOLDOWN_S)
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}  # calls in flight: id -> when it started
        self._calls = 0
        self.up = True

    def _connect(self) -> redis.Redis | RedisCluster:
        common = {
            "socket_connect_timeout": self.cfg.connect_timeout_seconds,
            "socket_timeout": self._socket_timeout,
            "decode_responses": True,
            # One attempt: the circuit breaker retries, after its cooldown.
            "retry": Retry(NoBackoff(), 0),
            **self._opts,
        }
        if self.cfg.cluster:
            common.pop("db", None)
            return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in self.nodes], **common)
        host, port = self.nodes[0]
        return redis.Redis(host=host, port=port, **common)

    def call(self, fn: Callable[[Any], T]) -> T | None:
        """fn(client), or None when Redis is down, cooling down or fails now."""
        if not self.up and self._cooldown.cooling:
            return None
        now = time.monotonic()
        with self._lock:
            if self._started and now - min(self._started.values()) > STALL_S:
                return None
            self._calls += 1
            call_id = self._calls
            self._started[call_id] = now
        try:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
                client = self._client
            result = fn(client)
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            with self._lock:
                if self.up:
                    log.warning("redis unreachable (%s); continuing without it", type(exc).__name__)
                    self._cooldown.reset()
                self.up = False
                self._cooldown.fail()
            return None
        finally:
            with self._lock:
                del self._started[call_id]
        if not self.up:
            log.warning("redis reachable again")
            self.up = True
            self._cooldown.reset()
        return result

    def ping(self) -> bool:
        return bool(self.call(lambda c: c.ping()))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
