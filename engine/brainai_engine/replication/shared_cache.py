"""Memory-search pages shared by every engine replica through Redis, keyed by the data version
they reflect.

The version is the change-log position the asking replica has applied (every write bumps it), so an
entry can only be read by a replica whose data is at that same version, and a write makes all older
entries unreachable at once; the TTL only reclaims memory. The access statistics in a cached page
may trail by up to the TTL, since reads do not bump the version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable
from dataclasses import astuple

from brainai_engine.replication.redis_link import RedisLink
from brainai_engine.storage.records import MemoryRecord, Page, Total


class SharedSearchCache:
    def __init__(self, link: RedisLink, ttl_seconds: int, namespace: str) -> None:
        self.link = link
        self.ttl = ttl_seconds
        self.namespace = namespace
        self.hits = 0
        self.misses = 0

    def _key(self, query_key: Hashable, version: int) -> str:
        digest = hashlib.sha1(repr((self.namespace, query_key)).encode(), usedforsecurity=False).hexdigest()
        return f"{self.link.prefix}search:{version}:{digest}"

    def get(self, query_key: Hashable, version: int) -> tuple[Total, Page] | None:
        raw = self.link.call(lambda c: c.get(self._key(query_key, version)))
        if raw is None:
            self.misses += 1
            return None
        count, rows, *exact = json.loads(raw)  # an entry of an older engine has no exactness: estimated
        self.hits += 1
        return Total(count, bool(exact and exact[0])), [(MemoryRecord(*row[:-1]), row[-1]) for row in rows]

    def put(self, query_key: Hashable, version: int, total: Total, page: Page) -> None:
        rows = [[*astuple(rec), score] for rec, score in page]
        payload = json.dumps([total.matches, rows, total.exact], ensure_ascii=False)
        self.link.call(lambda c: c.set(self._key(query_key, version), payload, ex=self.ttl))

    def stats(self) -> dict[str, int]:
        return {"shared_cache_hits": self.hits, "shared_cache_misses": self.misses}
