"""The change feed: keeps this engine replica's in-process structures in step with the others.

Source of truth is the database's change log (`storage.changes`): a background thread applies
every change after its cursor, polling every `database.change_poll_interval_seconds`. Redis only
makes it faster: after each commit a replica appends the new log position to a Redis stream, and
the others, blocked on that stream, poll at once. Losing Redis therefore only slows propagation to
the poll interval and loses nothing.

Replica lag: the log is read from a read replica, log rows and the rows they point at in one
snapshot, so a change is never seen without its data. When a notification announces a position the
replica has not reached yet, the feed reads the rest from the primary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

from brainai_engine.replication.redis_link import Page, RedisLink, SharedSearchCache
from brainai_common.engine_config import EngineConfig
from brainai_engine.core.concepts import Edge, Node
from brainai_engine.models import MemorySearchQuery
from brainai_engine.engine.results import search_key
from brainai_engine.storage import changes as ch
from brainai_engine.storage.base import StorageUnavailable

if TYPE_CHECKING:
    from brainai_engine.engine.facade import Engine
    from brainai_engine.storage.postgres import PostgresStorage

log = logging.getLogger(__name__)

PAGE = 5000
STREAM_LEN = 1000
LISTEN_BLOCK_S = 0.5  # the listener re-checks for shutdown this often


class ChangeFeed:
    def __init__(self, engine: Engine, storage: PostgresStorage, config: EngineConfig) -> None:
        self.engine = engine
        self.storage = storage
        self.interval = config.database.change_poll_interval_seconds
        # Read before the engine loads: whatever the load misses is after the cursor, and applying
        # something the load already saw is harmless.
        self.cursor = storage.last_change_id()
        self.own_last = 0
        self.applied = 0
        self._hint = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.link: RedisLink | None = None
        self._listen_link: RedisLink | None = None
        if config.redis.url:
            self.link = RedisLink(config.redis)
            self._listen_link = RedisLink(config.redis, socket_timeout=LISTEN_BLOCK_S + 5.0)
        self.stream = f"{config.redis.key_prefix}changes"
        storage.on_commit(self._committed)

    # -- state ------------------------------------------------------------------------------------
    @property
    def consistent(self) -> bool:
        """True when local state is exactly the log up to `cursor` (no own write beyond it), which is
        when results computed here may be shared with replicas at the same position."""
        return self.own_last <= self.cursor

    def _committed(self, change_id: int) -> None:
        """After each own commit: remember it, and tell the other replicas where the log ends."""
        self.own_last = max(self.own_last, change_id)
        if self.link is not None and change_id:
            self.link.call(
                lambda c: c.xadd(self.stream, {"c": change_id}, maxlen=STREAM_LEN, approximate=True)
            )

    # -- threads ----------------------------------------------------------------------------------
    def start(self) -> None:
        targets = [("brain-ai-change-poll", self._poll_loop)]
        if self._listen_link is not None:
            targets.append(("brain-ai-change-listen", self._listen_loop))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=LISTEN_BLOCK_S + 6.0)
        for link in (self.link, self._listen_link):
            if link is not None:
                link.close()

    def _poll_loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.catch_up()
                failing = False
            except Exception as exc:  # keep following the log whatever one pass hit
                if not failing:
                    log.warning("change feed: %s; retrying every %.1fs", exc, self.interval)
                failing = True

    def _listen_loop(self) -> None:
        assert self._listen_link is not None
        last = "$"
        block_ms = int(LISTEN_BLOCK_S * 1000)
        while not self._stop.is_set():
            got = self._listen_link.call(
                lambda c, after=last: c.xread({self.stream: after}, count=100, block=block_ms)
            )
            if got is None and not self._listen_link.up:
                self._stop.wait(self.interval)
                continue
            for _stream, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id
                    self._hint = max(self._hint, int(fields.get("c", 0)))
            if self._hint > self.cursor:
                self._wake.set()

    # -- applying ---------------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Apply every change after the cursor; returns how many log rows were consumed."""
        with self._lock:
            target = self._hint
            done = self._drain(primary=False)
            if target > self.cursor:
                # The replica has not replayed what was announced yet: take the rest from the primary.
                with contextlib.suppress(StorageUnavailable):
                    done += self._drain(primary=True)
            return done

    def _drain(self, primary: bool) -> int:
        done = 0
        while True:
            batch = self.storage.changes_since(self.cursor, PAGE, primary=primary)
            if batch.changes:
                apply_changes(self.engine, batch, self.storage.origin)
                self.cursor = batch.last_id
                done += len(batch.changes)
                self.applied += len(batch.changes)
            if len(batch.changes) < PAGE:
                return done


def apply_changes(engine: Engine, batch: ch.ChangeSet, own_origin: str) -> None:
    """Make the engine's in-process copy equal the rows in `batch` for other replicas' changes."""
    theirs = [c for c in batch.changes if c.origin != own_origin]
    if not theirs:
        return
    cols = engine.indexes.columns

    def indexed(memory_id: int) -> bool:
        return memory_id < len(cols.type) and bool(cols.type[memory_id])

    with engine._writer:
        rows = [row for memory_id, row in sorted(batch.memories.items()) if not indexed(memory_id)]
        if rows:
            engine.indexes.add_rows(rows)
        deleted = [int(c.key) for c in theirs if c.kind == ch.MEMORY_DELETED and indexed(int(c.key))]
        if deleted:
            engine.indexes.remove(deleted)
        for memory_id, mtype in batch.memory_types.items():
            if indexed(memory_id) and memory_id not in engine.working:
                engine.indexes.set_type(memory_id, mtype)
        with engine._state.write():
            for memory_id in deleted:
                engine.working.remove(memory_id)
                engine._pending_types.pop(memory_id, None)
            engine._memories += len(rows) - len(deleted)
            _apply_graph(engine, batch, theirs)
            engine._generation += 1
        engine._memories_changed()


def _apply_graph(engine: Engine, batch: ch.ChangeSet, theirs: list[ch.Change]) -> None:
    graph = engine.graph
    for name, c in batch.concepts.items():
        if name not in graph.nodes:
            engine.names.add(name)
        graph.restore_node(name, Node(c.usage_count, c.confidence, c.created_at, c.last_used))
    for change in theirs:
        if change.kind != ch.EDGE:
            continue
        a, b = change.key, change.aux or ""
        rec = batch.edges.get((a, b))
        exists = b in graph.adj.get(a, {})
        if rec is None:
            if exists:
                del graph.adj[a][b]
                del graph.adj[b][a]
                graph.edge_count -= 1
        elif a in graph.nodes and b in graph.nodes:
            edge = Edge(rec.weight, rec.initial_weight, rec.updated_at)
            if exists:
                graph.adj[a][b] = graph.adj[b][a] = edge
            else:
                graph.restore_edge(a, b, edge)
    for text, s in batch.segments.items():
        parts = (s.left, s.right) if s.left is not None and s.right is not None else None
        engine.segments.restore(text, s.frequency, s.units, s.created_at, parts)


class SharedCachingSearcher:
    """Wraps the engine's searcher with the Redis result cache, used only while this replica's data
    is exactly the log up to its cursor (so the cursor names what a result reflects)."""

    def __init__(self, inner: Any, cache: SharedSearchCache, feed: ChangeFeed) -> None:
        self.inner = inner
        self.cache = cache
        self.feed = feed

    def search(self, q: MemorySearchQuery) -> tuple[int, Page]:
        feed = self.feed
        if not feed.consistent:
            return self.inner.search(q)
        version = feed.cursor
        key = search_key(q)
        hit = self.cache.get(key, version)
        if hit is not None:
            return hit
        total, page = self.inner.search(q)
        self.cache.put(key, version, total, page)
        return total, page

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def attach(engine: Engine) -> ChangeFeed | None:
    """Set up the feed (and the shared result cache) when the engine's storage keeps a change log;
    call before the engine loads. None for embedded storage, where this process is the only writer."""
    if not hasattr(engine.storage, "changes_since"):
        return None
    config = engine.config
    feed = ChangeFeed(engine, engine.storage, config)  # type: ignore[arg-type]
    if feed.link is not None and config.redis.cache_ttl_seconds > 0:
        shared = SharedSearchCache(feed.link, config.redis.cache_ttl_seconds, config.search.backend)
        engine.searcher = SharedCachingSearcher(engine.searcher, shared, feed)  # type: ignore[assignment]
    return feed


def readiness(engine: Engine, feed: ChangeFeed | None) -> dict[str, Any]:
    """What this replica can reach, for /ready: each database server by role, Redis, the feed."""
    storage = engine.storage
    out: dict[str, Any] = {"storage": storage.kind}
    probe = getattr(storage, "reachability", None)
    if probe is not None:
        out["database"] = probe()
    if feed is not None:
        out["change_feed"] = {"cursor": feed.cursor, "applied": feed.applied}
        if feed.link is not None:
            out["redis"] = feed.link.ping()
    return out
