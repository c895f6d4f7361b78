"""Memory-search result cache: pages of `search_memories` kept by their full validated query.

Correctness rests on two stamps checked on every lookup, never on expiry:
- the engine's memory-search generation, advanced after every change that can alter a result
  (adds, learns, imports, deletes, working-memory type changes, access counts, metadata flushes);
  an entry from an older generation is unreachable;
- the importance clock tick (`search.result_clock_s`): importance decays with time, so a result
  reports it as of the tick; when the tick moves, the cached page is re-materialised from its
  cached records (no index or storage work) rather than served stale.

Entries are charged an estimate of their in-process size against `performance.query_cache_size_mb`
and evicted least recently used first. The JSON of a page is built once, on the first request that
needs it, without the per-request `cached`/`took_ms` tail, so the HTTP API can serve it as bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from brainai_engine.models import MemorySearchQuery, MemorySearchResult
from brainai_engine.storage.base import MemoryRecord

SearchKey = tuple[str, int, int, str | None, float, str]
Page = list[tuple[MemoryRecord, float]]

ENTRY_OVERHEAD = 1024
HIT_OVERHEAD = 900
JSON_TAIL = b',"cached":'


def search_key(q: MemorySearchQuery) -> SearchKey:
    """Every field that shapes the answer; the query text is kept verbatim as the result echoes it."""
    return (q.query, q.limit, q.offset, q.type, q.min_confidence, q.sort_by)


@dataclass(slots=True)
class CachedSearch:
    """One page: what the index and storage produced, and its materialised forms at `tick`."""

    generation: int
    tick: float
    total: int
    page: Page
    result: MemorySearchResult
    size: int
    body: bytes | None = None

    def json_head(self) -> bytes:
        """The result's JSON up to (not including) the per-request `cached` and `took_ms` fields."""
        if self.body is None:
            full = self.result.model_dump_json().encode()
            self.body = full[: full.rindex(JSON_TAIL)]
        return self.body


def estimate_size(page: Page) -> int:
    """Rough bytes held by an entry: records, models and JSON are each about the content size."""
    return ENTRY_OVERHEAD + sum(3 * len(rec.content) + HIT_OVERHEAD for rec, _ in page)


class SearchCache:
    """Thread-safe LRU bounded by estimated bytes; a budget of 0 disables it."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = max(budget_bytes, 0)
        self.used = 0
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[SearchKey, CachedSearch] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def get(self, key: SearchKey, generation: int) -> CachedSearch | None:
        """The entry for `key` if it was computed at `generation`; stale entries are dropped."""
        if not self.budget:
            return None
        with self._lock:
            entry = self._data.get(key)
            if entry is None or entry.generation != generation:
                if entry is not None:
                    self._drop(key)
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: SearchKey, entry: CachedSearch) -> None:
        if not self.budget or entry.size > self.budget:
            return
        with self._lock:
            if key in self._data:
                self._drop(key)
            self._data[key] = entry
            self.used += entry.size
            while self.used > self.budget:
                self._drop(next(iter(self._data)))

    def resize(self, budget_bytes: int) -> None:
        """Change the budget (0 disables and empties the cache)."""
        with self._lock:
            self.budget = max(budget_bytes, 0)
            while self._data and self.used > self.budget:
                self._drop(next(iter(self._data)))

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.used = 0

    def _drop(self, key: SearchKey) -> None:
        self.used -= self._data.pop(key).size

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict[str, int]:
        return {
            "search_cache_entries": len(self._data),
            "search_cache_bytes": self.used,
            "search_cache_hits": self.hits,
            "search_cache_misses": self.misses,
        }
