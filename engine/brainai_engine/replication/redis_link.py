"""Redis (or Redis Cluster) as a shared, optional helper: query-result cache and change notifications.

Redis never holds the only copy of anything: results can be recomputed and change notifications are
backed by polling the database. So every call goes through `RedisLink.call`, which returns None
instead of raising, and after a failure skips Redis for a cooldown (doubling while failures go on,
up to MAX_COOLDOWN_S). A Redis node going down therefore costs at most one failed call per
cooldown, and the engine keeps serving without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import astuple
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from brainai_common.engine_config import RedisConfig
from brainai_engine.storage.base import MemoryRecord

log = logging.getLogger(__name__)

T = TypeVar("T")
COOLDOWN_S = 1.0
MAX_COOLDOWN_S = 30.0
Page = list[tuple[MemoryRecord, float]]


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
        self._down_until = 0.0
        self._cooldown = COOLDOWN_S
        self._lock = threading.Lock()
        self.up = True

    def _connect(self) -> redis.Redis | RedisCluster:
        common = {
            "socket_connect_timeout": self.cfg.connect_timeout_seconds,
            "socket_timeout": self._socket_timeout,
            "decode_responses": True,
            **self._opts,
        }
        if self.cfg.cluster:
            common.pop("db", None)
            return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in self.nodes], **common)
        host, port = self.nodes[0]
        return redis.Redis(host=host, port=port, **common)

    def call(self, fn: Callable[[Any], T]) -> T | None:
        """fn(client), or None when Redis is down, cooling down or fails now."""
        if not self.up and time.monotonic() < self._down_until:
            return None
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
                    self._cooldown = COOLDOWN_S
                else:
                    self._cooldown = min(self._cooldown * 2, MAX_COOLDOWN_S)
                self.up = False
                self._down_until = time.monotonic() + self._cooldown
            return None
        if not self.up:
            log.warning("redis reachable again")
            self.up = True
        return result

    def ping(self) -> bool:
        return bool(self.call(lambda c: c.ping()))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class SharedSearchCache:
    """Memory-search pages shared by every engine replica, keyed by the data version they reflect.

    The version is the change-log position the asking replica has applied (every write bumps it),
    so an entry can only be read by a replica whose data is at that same version, and a write makes
    all older entries unreachable at once; the TTL only reclaims memory. The access statistics in a
    cached page may trail by up to the TTL, since reads do not bump the version."""

    def __init__(self, link: RedisLink, ttl_seconds: int, namespace: str) -> None:
        self.link = link
        self.ttl = ttl_seconds
        self.namespace = namespace
        self.hits = 0
        self.misses = 0

    def _key(self, query_key: tuple, version: int) -> str:
        digest = hashlib.sha1(repr((self.namespace, query_key)).encode(), usedforsecurity=False).hexdigest()
        return f"{self.link.prefix}search:{version}:{digest}"

    def get(self, query_key: tuple, version: int) -> tuple[int, Page] | None:
        raw = self.link.call(lambda c: c.get(self._key(query_key, version)))
        if raw is None:
            self.misses += 1
            return None
        total, rows = json.loads(raw)
        self.hits += 1
        return total, [(MemoryRecord(*row[:-1]), row[-1]) for row in rows]

    def put(self, query_key: tuple, version: int, total: int, page: Page) -> None:
        payload = json.dumps([total, [[*astuple(rec), score] for rec, score in page]], ensure_ascii=False)
        self.link.call(lambda c: c.set(self._key(query_key, version), payload, ex=self.ttl))

    def stats(self) -> dict[str, int]:
        return {"shared_cache_hits": self.hits, "shared_cache_misses": self.misses}
