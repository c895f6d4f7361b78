"""Memory-search result cache: pages of `search_memories` kept by their full validated query.

Correctness rests on two stamps checked on every lookup, never on expiry:
- the engine's memory-search generation, advanced after every change that can alter a result
  (adds, learns, imports, deletes, working-memory type changes, access counts, metadata flushes);
  an entry from an older generation is unreachable;
- the importance clock tick (`search.result_clock_s`): importance decays with time, so a result
  reports it as of the tick; when the tick moves, the cached page is re-materialised from its
  cached records (no index or storage work) rather than served stale.

Entries are charged an estimate of their in-process size against `performance.query_cache_size_mb`
and evicted least recently used first. An entry keeps a slot for its serialised form, which the HTTP
layer fills once (`api.pages`) and reuses while the entry lives.
"""

from __future__ import annotations

from dataclasses import dataclass

from brainai_engine.core.lru import LRUCache
from brainai_engine.models import MemorySearchQuery, MemorySearchResult
from brainai_engine.storage.records import Page, Total

SearchKey = tuple[str, int, int, str | None, float, str]

ENTRY_OVERHEAD = 1024
HIT_OVERHEAD = 900


def search_key(q: MemorySearchQuery) -> SearchKey:
    """Every field that shapes the answer; the query text is kept verbatim as the result echoes it."""
    return (q.query, q.limit, q.offset, q.type, q.min_confidence, q.sort_by)


@dataclass(slots=True)
class CachedSearch:
    """One page: what the index and storage produced, and its materialised forms at `tick`."""

    generation: int
    tick: float
    total: Total
    page: Page
    result: MemorySearchResult
    size: int
    rendered: bytes | None = None  # the HTTP layer's serialisation of `result`, built once (api.pages)


def estimate_size(page: Page) -> int:
    """Rough bytes held by an entry: records, models and JSON are each about the content size."""
    return ENTRY_OVERHEAD + sum(3 * len(rec.content) + HIT_OVERHEAD for rec, _ in page)


class SearchCache:
    """Pages bounded by estimated bytes (`performance.query_cache_size_mb`); a budget of 0 disables it."""

    def __init__(self, budget_bytes: int) -> None:
        self._pages: LRUCache[SearchKey, CachedSearch] = LRUCache(budget_bytes, weigh=lambda e: e.size)
        self.hits = 0
        self.misses = 0

    @property
    def budget(self) -> int:
        return self._pages.capacity

    @property
    def used(self) -> int:
        return self._pages.weight

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def get(self, key: SearchKey, generation: int) -> CachedSearch | None:
        """The entry for `key` if it was computed at `generation`; stale entries are dropped."""
        if not self.budget:
            return None
        entry = self._pages.get(key)
        if entry is None or entry.generation != generation:
            if entry is not None:
                self._pages.pop(key)
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(self, key: SearchKey, entry: CachedSearch) -> None:
        self._pages.put(key, entry)

    def resize(self, budget_bytes: int) -> None:
        """Change the budget (0 disables and empties the cache)."""
        self._pages.resize(budget_bytes)

    def clear(self) -> None:
        self._pages.clear()

    def __len__(self) -> int:
        return len(self._pages)

    def stats(self) -> dict[str, int]:
        return {
            "search_cache_entries": len(self._pages),
            "search_cache_bytes": self.used,
            "search_cache_hits": self.hits,
            "search_cache_misses": self.misses,
        }
