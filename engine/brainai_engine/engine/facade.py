"""The engine facade: the one object the HTTP API, the CLI and the benchmark talk to.

Concurrency model: mutations (learn, add, delete, maintenance) are serialised by one writer lock;
tokenising and embedding happen before it is taken, so concurrent learns overlap their CPU work,
and learns and adds waiting for it are committed together, one transaction for all of them
(`engine.group_commit`), each acknowledged by that commit.
In-process structures (segments, concept graph, working memory) sit behind a readers-writer lock,
held exclusively only for the short in-memory update; the vector index has its own. Searches never
wait for a storage commit.

Durability: every mutating call returns only after `Storage.write` committed. Access statistics
from reads (`get_memory`) and working-memory type changes are metadata and are flushed with the next
write or by the maintenance thread within a second.

Caching: memory-search pages are cached by query (see `engine.results`). Every change that can alter a
result calls `_memories_changed` after the change is visible, which makes older pages unreachable.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import cast

from brainai_common.engine_config import EngineConfig
from brainai_engine.core.concept_search import ConceptNameIndex
from brainai_engine.core.concepts import ConceptGraph, Edge, Node
from brainai_engine.core.lru import LRUCache
from brainai_engine.core.memory import WorkingMemory, decay
from brainai_engine.core.rwlock import RWLock
from brainai_engine.core.segments import SegmentDiscovery
from brainai_engine.core.text import tokenize
from brainai_engine.engine.errors import CapacityExceeded
from brainai_engine.engine.group_commit import GroupCommit
from brainai_engine.engine.indexing import MemoryIndexes
from brainai_engine.engine.learning import Prepared, analyse, prepare
from brainai_engine.engine.metadata import PendingMetadata
from brainai_engine.engine.results import CachedSearch, SearchCache, SearchKey, estimate_size, search_key
from brainai_engine.engine.search import MemorySearcher
from brainai_engine.models import (
    PRIORITY_WEIGHT,
    BatchLearnRequest,
    BatchLearnResult,
    BatchSummary,
    Concept,
    ConceptHit,
    ConceptSearchQuery,
    ConceptSearchResult,
    EngineStats,
    LearnRequest,
    LearnResult,
    Memory,
    MemoryHit,
    MemoryIn,
    MemorySearchQuery,
    MemorySearchResult,
    MemoryType,
    Priority,
    RelatedConcept,
    RelatedQuery,
    RelatedResult,
)
from brainai_engine.replication.feed import open_change_feed
from brainai_engine.replication.shared_cache import SharedSearchCache
from brainai_engine.storage import Storage, StorageUnavailable, open_storage
from brainai_engine.storage import changes as ch
from brainai_engine.storage.base import (
    ConceptRecord,
    EdgeRecord,
    MemoryRecord,
    NewMemory,
    SegmentRecord,
    WriteBatch,
)
from brainai_engine.storage.records import Page, Total

log = logging.getLogger(__name__)

PRIORITY_NAME: dict[int, Priority] = {v: k for k, v in PRIORITY_WEIGHT.items()}


WriteOutcome = list[LearnResult] | tuple[int, float]  # a learn's results, or an add's id and time


@dataclass(slots=True)
class _Write:
    """One learn (its prepared texts) or one add (its memory), queued for a group commit."""

    priority: Priority
    context: dict[str, str] | None
    prepared: list[Prepared] | None = None
    memory: MemoryIn | None = None
    tokens: list[str] | None = None

    def texts(self) -> int:
        """What the write weighs in a group commit: the memories it may store."""
        return sum(len(p.chunks) for p in self.prepared) if self.prepared is not None else 1

    def rows(self) -> Iterator[tuple[str, str, float, list[str]]]:
        """(content, type, confidence, tokens) of each memory this write stores."""
        if self.prepared is not None:
            for p in self.prepared:
                for chunk, words in zip(p.chunks, p.tokens, strict=True):
                    yield chunk, "working", 1.0, words
        elif self.memory is not None:
            yield self.memory.content, self.memory.type, self.memory.confidence, self.tokens or []


def content_digest(content: str) -> bytes:
    """What identical learned content is recognised by (see `storage.base.Placement`)."""
    return hashlib.blake2b(content.encode("utf-8"), digest_size=16).digest()


def _edge(rec: EdgeRecord) -> Edge:
    return Edge(rec.weight, rec.initial_weight, rec.updated_at, rec.cooccurrences)


class Engine:
    """Thread-safe memory and concept engine over one `Storage`."""

    def __init__(self, config: EngineConfig, storage: Storage | None = None) -> None:
        self.config = config
        self.storage = storage if storage is not None else open_storage(config)
        self.indexes = MemoryIndexes(config)
        self.segments = SegmentDiscovery(config.learning, config.concepts.extraction_threshold)
        self.graph = ConceptGraph(config.concepts)
        self.names = ConceptNameIndex()
        self.working = WorkingMemory(config.memory)
        self._state = RWLock()
        self._writer = threading.Lock()
        self._writes: GroupCommit[_Write, WriteOutcome] = GroupCommit(
            self._writer, self._write_group, config.learning.batch_size, _Write.texts
        )
        self._learn_slots = threading.BoundedSemaphore(max(config.learning.workers, 1) * 4)
        self._metadata = PendingMetadata()
        self.concept_cache: LRUCache[tuple[str, int], tuple[int, list[ConceptHit]]] = LRUCache(
            config.search.query_cache_entries
        )
        self._generation = 0
        self.search_cache = SearchCache(config.performance.query_cache_size_mb * 2**20)
        self._search_counter = itertools.count(1)
        self._search_generation = 0
        self._memories = 0
        self._closed = False
        self._ready = False
        self._last_consolidation = time.time()
        self._last_graph_maintenance = time.time()
        self.searcher = MemorySearcher(config.search, self.indexes, self.storage)
        # Shared storage (PostgreSQL): follow other replicas' writes; set up before loading.
        self.feed = open_change_feed(self.storage, config, self._apply_remote)
        self.shared_pages: SharedSearchCache | None = None
        if self.feed is not None and self.feed.link is not None and config.redis.cache_ttl_seconds > 0:
            self.shared_pages = SharedSearchCache(
                self.feed.link, config.redis.cache_ttl_seconds, config.search.backend
            )
        self._load()
        self._ready = True
        self._stop = threading.Event()
        self._maintainer = threading.Thread(
            target=self._maintenance_loop, name="brain-ai-maintenance", daemon=True
        )
        self._maintainer.start()
        if self.feed is not None:
            self.feed.start()

    @classmethod
    def open(cls, config: EngineConfig) -> Engine:
        return cls(config)

    # -- open -------------------------------------------------------------------------------------
    def _load(self) -> None:
        for seg in self.storage.iter_segments():
            parts = (seg.left, seg.right) if seg.left is not None and seg.right is not None else None
            self.segments.restore(seg.text, seg.frequency, seg.units, seg.created_at, parts)
        for c in self.storage.iter_concepts():
            self.graph.restore_node(c.name, Node(c.usage_count, c.confidence, c.created_at, c.last_used))
            self.names.add(c.name)
        for e in self.storage.iter_edges():
            if e.a in self.graph.nodes and e.b in self.graph.nodes:
                self.graph.restore_edge(e.a, e.b, _edge(e))
        now = time.time()
        weights = self.config.memory.priority_weights
        items = [
            (r.id, weights[PRIORITY_NAME[r.priority]], r.access_count, r.last_accessed)
            for r in self.storage.working_set()
        ]
        for memory_id in self.working.add(items, now):
            self._metadata.set_type(memory_id, "episodic")
        self._memories = self.storage.counts().memories
        self.indexes.load(self.storage)
        for memory_id, mtype in self._metadata.types():
            self.indexes.set_type(memory_id, mtype)

    # -- learning ---------------------------------------------------------------------------------
    def learn(self, req: LearnRequest) -> LearnResult:
        return self._learn([req.text], req.priority, req.context)[0]

    def learn_batch(self, req: BatchLearnRequest) -> BatchLearnResult:
        started = time.perf_counter()
        results = self._learn(req.texts, req.priority, req.context)
        summary = BatchSummary(
            items=len(results),
            memories_stored=sum(r.memories_stored for r in results),
            memories_known=sum(r.memories_known for r in results),
            concepts_created=sum(r.concepts_created for r in results),
            concepts_updated=sum(r.concepts_updated for r in results),
            relationships_formed=sum(r.relationships_formed for r in results),
            segments_discovered=sum(r.segments_discovered for r in results),
            processing_time_ms=(time.perf_counter() - started) * 1000,
        )
        return BatchLearnResult(results=results, summary=summary)

    def _learn(
        self, texts: list[str], priority: Priority, context: dict[str, str] | None
    ) -> list[LearnResult]:
        self._check_open()
        with self._learn_slots:
            prepared: list[Prepared] = [prepare(t, self.config.memory.max_chunk_chars) for t in texts]
        self._check_capacity(sum(len(p.chunks) for p in prepared))
        learned = self._writes.submit(_Write(priority, context, prepared=prepared))
        return cast(list[LearnResult], learned)

    def _write_group(self, writes: list[_Write]) -> list[WriteOutcome]:
        """Every queued learn and add in one transaction (see `engine.group_commit`): the learns'
        texts go through concept analysis together, then all memories are stored and indexed, and
        each caller gets its own results (a learn's per text, an add's id and time)."""
        now = time.time()
        batch = WriteBatch()
        learns = [w for w in writes if w.prepared is not None]
        with self._state.write():
            prepared = [p for w in learns for p in w.prepared or ()]
            counts = analyse(prepared, self.segments, self.graph, self.names, self.config.concepts, now)
            if learns:
                self._drain_state_into(batch)
            else:
                self._metadata.drain_into(batch)
        contents: list[str] = []
        types: list[str] = []
        confidences: list[float] = []
        tokens: list[list[str]] = []
        for w in writes:
            prio = PRIORITY_WEIGHT[w.priority]
            learned = w.prepared is not None
            for content, mtype, confidence, words in w.rows():
                digest = content_digest(content) if learned else None
                batch.new_memories.append(NewMemory(content, mtype, prio, confidence, now, w.context, digest))
                contents.append(content)
                types.append(mtype)
                confidences.append(confidence)
                tokens.append(words)
        committed = self._commit(batch)
        ids, known = committed.memory_ids, committed.known
        fresh = [i for i in range(len(ids)) if i not in known]
        self.indexes.add(
            [ids[i] for i in fresh],
            [contents[i] for i in fresh],
            [types[i] for i in fresh],
            [confidences[i] for i in fresh],
            [now] * len(fresh),
            [tokens[i] for i in fresh],
        )
        out: list[WriteOutcome] = []
        per_text = iter(counts)
        finished = time.perf_counter()
        weights = self.config.memory.priority_weights
        pos = 0
        entering: list[tuple[int, float, int, float]] = []  # into working memory, all at once
        with self._state.write():
            for w in writes:
                weight = weights[w.priority]
                if w.prepared is None:
                    if types[pos] == "working":
                        entering.append((ids[pos], weight, 0, now))
                    out.append((ids[pos], now))
                    pos += 1
                    continue
                results: list[LearnResult] = []
                for p in w.prepared:
                    mine = ids[pos : pos + len(p.chunks)]
                    new = [ids[i] for i in range(pos, pos + len(p.chunks)) if i not in known]
                    pos += len(p.chunks)
                    entering.extend((i, weight, 0, now) for i in new)
                    discovered, created, updated, formed = next(per_text)
                    results.append(
                        LearnResult(
                            segments_discovered=discovered,
                            concepts_created=created,
                            concepts_updated=updated,
                            relationships_formed=formed,
                            memories_stored=len(new),
                            memories_known=len(mine) - len(new),
                            memory_ids=[str(i) for i in mine],
                            processing_time_ms=(finished - p.started) * 1000,
                        )
                    )
                out.append(results)
            self._leave_working(self.working.add(entering, now))
            self._memories += len(fresh)
            if learns:
                self._generation += 1
        self._maybe_consolidate(now)
        self._memories_changed()
        return out

    def _leave_working(self, ids: list[int]) -> None:
        """Record that items left working memory: their stored type becomes episodic."""
        for memory_id in ids:
            self._metadata.set_type(memory_id, "episodic")
            self.indexes.set_type(memory_id, "episodic")

    def _drain_state_into(self, batch: WriteBatch) -> None:
        """Move dirty segments/concepts/edges and pending metadata into `batch` (state lock held)."""
        for text, freq, confidence, units, created, parts in self.segments.drain_dirty():
            left, right = parts if parts else (None, None)
            batch.segments.append(SegmentRecord(text, freq, confidence, units, created, left, right))
        nodes, edges, removed = self.graph.drain_dirty()
        for name, n in nodes:
            batch.concepts.append(ConceptRecord(name, n.usage_count, n.confidence, n.created_at, n.last_used))
        batch.edges.extend(EdgeRecord(a, b, e.weight, e.w0, e.updated_at, e.count) for a, b, e in edges)
        batch.removed_edges.extend(removed)
        self._metadata.drain_into(batch)

    def _commit(self, batch: WriteBatch):
        """Every drained batch goes through here (writer lock held), which settles its metadata."""
        try:
            result = self.storage.write(batch)
        except Exception:
            # Keep the in-memory changes queued so the next successful write persists them.
            with self._state.write():
                self.segments.dirty.update(s.text for s in batch.segments)
                self.graph.dirty_nodes.update(c.name for c in batch.concepts)
                self.graph.dirty_edges.update((e.a, e.b) for e in batch.edges)
                self.graph.removed_edges.update(batch.removed_edges)
            self._metadata.settle(committed=False)
            self._memories_changed()
            raise
        self._metadata.settle(committed=True)
        return result

    # -- memories ---------------------------------------------------------------------------------
    def import_memories(
        self,
        contents: Iterable[str],
        type: MemoryType = "episodic",
        priority: Priority = "medium",
        batch: int = 10_000,
    ) -> int:
        """Bulk load stored memories without concept learning (restores, benchmarks): one
        transaction and one index insertion per `batch`. Returns the number stored."""
        self._check_open()
        prio = PRIORITY_WEIGHT[priority]
        stored = 0
        pending: list[str] = []
        with self._writer:

            def flush() -> None:
                self._check_capacity(len(pending))
                now = time.time()
                result = self._commit(
                    WriteBatch(new_memories=[NewMemory(c, type, prio, 1.0, now, None) for c in pending])
                )
                n = len(pending)
                self.indexes.add(result.memory_ids, pending, [type] * n, [1.0] * n, [now] * n)
                self._memories += n
                self._memories_changed()
                pending.clear()

            for content in contents:
                if content.strip():
                    pending.append(content)
                    stored += 1
                    if len(pending) >= batch:
                        flush()
            if pending:
                flush()
        return stored

    def _check_capacity(self, adding: int) -> None:
        """Checked as a write is submitted (writes already queued may take the store a group past
        it); chunks of identical content already stored count too, to refuse before analysis."""
        capacity = self.config.memory.capacity
        if adding and self._memories + adding > capacity:
            raise CapacityExceeded(capacity, self._memories, adding)

    def add_memory(self, m: MemoryIn) -> Memory:
        self._check_open()
        self._check_capacity(1)
        write = _Write(m.priority, m.context, memory=m, tokens=tokenize(m.content))
        memory_id, now = cast(tuple[int, float], self._writes.submit(write))
        prio = PRIORITY_WEIGHT[m.priority]
        rec = MemoryRecord(memory_id, m.content, m.type, prio, m.confidence, 0, now, now, m.context)
        return self._to_memory(self._metadata.overlay(rec), now)

    def get_memory(self, memory_id: str) -> Memory | None:
        """Fetch one memory and count the access (which feeds its importance)."""
        mid = _parse_id(memory_id)
        if mid is None:
            return None
        rec = self.storage.get_memory(mid)
        if rec is None:
            return None
        now = time.time()
        self._metadata.record_access(mid, now)
        self._metadata.overlay(rec)
        if rec.type == "working":
            with self._state.write():
                self.working.touch(mid, rec.access_count, now)
        self._memories_changed()
        return self._to_memory(rec, now)

    def delete_memory(self, memory_id: str) -> bool:
        mid = _parse_id(memory_id)
        if mid is None:
            return False
        self._check_open()
        with self._writer:
            with self._state.write():
                batch = WriteBatch(deleted_memories=[mid])
                self._metadata.forget(mid)
                self._metadata.drain_into(batch)
            batch.memory_access = [a for a in batch.memory_access if a[0] != mid]
            result = self._commit(batch)
            if not result.deleted:
                return False
            self.indexes.remove(result.deleted)
            with self._state.write():
                self.working.remove(mid)
                self._memories -= 1
            self._memories_changed()
        return True

    def _to_memory(self, rec: MemoryRecord, now: float) -> Memory:
        """Public model of a record (overlaid with metadata not yet in storage, see `engine.metadata`)."""
        name = PRIORITY_NAME.get(rec.priority, "medium")
        importance = self.working.importance(rec.id, now) if rec.type == "working" else None
        if importance is None:
            c = self.config.memory
            hours = (now - rec.last_accessed) / 3600.0
            importance = c.priority_weights[name] * decay(
                hours, rec.access_count, c.decay_half_life_hours, c.access_bonus, c.decay_min, c.decay_max
            )
        return Memory(
            id=str(rec.id),
            content=rec.content,
            type=cast(MemoryType, rec.type),  # storage holds only validated types
            priority=name,
            confidence=rec.confidence,
            importance=importance,
            access_count=rec.access_count,
            created_at=rec.created_at,
            last_accessed=rec.last_accessed,
            context=rec.context,
        )

    def _memories_changed(self) -> None:
        """Make every cached search page unreachable; call after the change is visible to searches."""
        self._search_generation = next(self._search_counter)

    def _result_tick(self) -> float:
        """The instant search results report importance at (`search.result_clock_s`)."""
        period = self.config.search.result_clock_s
        now = time.time()
        return now - now % period if period > 0 else now

    def search_memories(self, q: MemorySearchQuery) -> MemorySearchResult:
        started = time.perf_counter()
        entry, hit = self.search_page(q)
        took = (time.perf_counter() - started) * 1000
        return entry.result.model_copy(update={"took_ms": took, "cached": hit})

    def search_page(self, q: MemorySearchQuery) -> tuple[CachedSearch, bool]:
        """The cached page for `q` (computed if missing) and whether it came from the cache. The
        generation is read before the search, so a write that lands during it leaves this page
        already stale."""
        key = search_key(q)
        generation = self._search_generation
        tick = self._result_tick()
        entry = self.search_cache.get(key, generation)
        if entry is not None:
            if entry.tick == tick:
                return entry, True
            entry = self._materialise(q, entry.total, entry.page, generation, tick)
            self.search_cache.put(key, entry)
            return entry, True
        total, page = self._compute_page(q, key)
        for rec, _ in page:
            self._metadata.overlay(rec)
        entry = self._materialise(q, total, page, generation, tick)
        self.search_cache.put(key, entry)
        return entry, False

    def _compute_page(self, q: MemorySearchQuery, key: SearchKey) -> tuple[Total, Page]:
        """Search the indexes, through the replicas' shared page cache while this replica's data is
        exactly the change log up to its cursor (the cursor then names what a result reflects)."""
        feed, shared = self.feed, self.shared_pages
        if shared is None or feed is None or not feed.consistent:
            return self.searcher.search(q)
        version = feed.cursor
        hit = shared.get(key, version)
        if hit is not None:
            return hit
        total, page = self.searcher.search(q)
        shared.put(key, version, total, page)
        return total, page

    def _materialise(
        self, q: MemorySearchQuery, total: Total, page: Page, generation: int, tick: float
    ) -> CachedSearch:
        best = self.searcher.best_score(q) if page else 1.0
        results = [
            MemoryHit(
                memory=self._to_memory(rec, tick),
                score=score,
                normalized_score=min(max(score / best, 0.0), 1.0) if best > 0 else 0.0,
            )
            for rec, score in page
        ]
        result = MemorySearchResult(
            query=q.query, total=total.matches, total_exact=total.exact, results=results, took_ms=0.0
        )
        return CachedSearch(generation, tick, total, page, result, estimate_size(page))

    # -- concepts ---------------------------------------------------------------------------------
    def _concept(self, name: str, node: Node) -> Concept:
        return Concept(
            name=name,
            usage_count=node.usage_count,
            confidence=node.confidence,
            created_at=node.created_at,
            last_used=node.last_used,
        )

    def _resolve(self, name: str) -> str | None:
        if name in self.graph.nodes:
            return name
        normal = " ".join(tokenize(name))
        return normal if normal in self.graph.nodes else None

    def search_concepts(self, q: ConceptSearchQuery) -> ConceptSearchResult:
        """Concepts by name similarity; the scoring contract is in `core.concept_search`."""
        started = time.perf_counter()
        key = (q.query, q.limit)
        with self._state.read():
            generation = self._generation
            cached = self.concept_cache.get(key)
            if cached is not None and cached[0] == generation:
                results = cached[1]
            else:
                nodes = self.graph.nodes
                ranked = self.names.search(
                    q.query, q.limit, lambda n: nodes[n].usage_count if n in nodes else 0
                )
                results = [
                    ConceptHit(concept=self._concept(n, nodes[n]), score=s) for n, s in ranked if n in nodes
                ]
                self.concept_cache.put(key, (generation, results))
        took = (time.perf_counter() - started) * 1000
        return ConceptSearchResult(query=q.query, results=results, took_ms=took)

    def get_concept(self, name: str) -> Concept | None:
        with self._state.read():
            resolved = self._resolve(name)
            return None if resolved is None else self._concept(resolved, self.graph.nodes[resolved])

    def related_concepts(self, name: str, q: RelatedQuery) -> RelatedResult | None:
        with self._state.read():
            resolved = self._resolve(name)
            if resolved is None:
                return None
            now = time.time()
            found = self.graph.related(resolved, q.depth, q.limit, q.min_strength, self._memories, now)
            related = [
                RelatedConcept(
                    name=a.name,
                    activation=a.activation,
                    depth=a.depth,
                    strength=a.strength,
                    weight=None if a.edge is None else self.graph.current_weight(a.edge, now),
                    cooccurrences=None if a.edge is None else a.edge.count,
                )
                for a in found
            ]
        return RelatedResult(concept=resolved, related=related)

    # -- maintenance ------------------------------------------------------------------------------
    def _maybe_consolidate(self, now: float) -> None:
        """Run a consolidation pass when due (writer lock held)."""
        cfg = self.config.memory
        fill = len(self.working) / max(self.working.capacity, 1)
        due = now - self._last_consolidation >= cfg.consolidation_period_s
        if due or fill >= self.config.performance.gc_threshold:
            with self._state.write():
                left = self.working.consolidate(now).all
                self._leave_working(left)
            if left:
                self._memories_changed()
            self._last_consolidation = now

    def maintain(self, now: float | None = None, force: bool = False) -> None:
        """Flush metadata, consolidate, decay/prune the graph and compact the index when due."""
        if self._closed:
            return
        now = time.time() if now is None else now
        with self._writer:
            if force:
                self._last_consolidation = 0.0
            self._maybe_consolidate(now)
            batch = WriteBatch()
            with self._state.write():
                if force or now - self._last_graph_maintenance >= self.config.concepts.maintenance_interval_s:
                    if self.graph.prune(now):
                        self._generation += 1
                    self._last_graph_maintenance = now
                self._drain_state_into(batch)
            if not batch.empty():
                self._commit(batch)
                if batch.memory_types or batch.memory_access:
                    # Pending metadata left memory before the commit made it visible in storage.
                    self._memories_changed()
            self.indexes.maintain()

    def _maintenance_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.maintain()
                self.indexes.tidy(self.storage, self._writer)
            except StorageUnavailable as exc:  # e.g. the primary is down: retried next second
                log.warning("maintenance pass postponed: %s", exc)
            except Exception:  # the loop must survive a transient storage error
                log.exception("maintenance pass failed")

    # -- other replicas' writes ------------------------------------------------------------------
    def _apply_remote(self, batch: ch.ChangeSet) -> None:
        """Make the in-process copy equal the rows of other replicas' changes (the feed's callback)."""
        cols = self.indexes.columns

        def indexed(memory_id: int) -> bool:
            return memory_id < len(cols.type) and bool(cols.type[memory_id])

        with self._writer:
            rows = [row for memory_id, row in sorted(batch.memories.items()) if not indexed(memory_id)]
            if rows:
                self.indexes.add_rows(rows)
            deleted = [
                int(c.key) for c in batch.changes if c.kind == ch.MEMORY_DELETED and indexed(int(c.key))
            ]
            if deleted:
                self.indexes.remove(deleted)
            for memory_id, mtype in batch.memory_types.items():
                if indexed(memory_id) and memory_id not in self.working:
                    self.indexes.set_type(memory_id, mtype)
            with self._state.write():
                for memory_id in deleted:
                    self.working.remove(memory_id)
                    self._metadata.forget(memory_id)
                self._memories += len(rows) - len(deleted)
                self._apply_remote_graph(batch)
                self._generation += 1
            self._memories_changed()

    def _apply_remote_graph(self, batch: ch.ChangeSet) -> None:
        for name, c in batch.concepts.items():
            if name not in self.graph.nodes:
                self.names.add(name)
            self.graph.restore_node(name, Node(c.usage_count, c.confidence, c.created_at, c.last_used))
        for change in batch.changes:
            if change.kind == ch.EDGE:
                a, b = change.key, change.aux or ""
                rec = batch.edges.get((a, b))
                self.graph.replace_edge(a, b, None if rec is None else _edge(rec))
        for text, seg in batch.segments.items():
            parts = (seg.left, seg.right) if seg.left is not None and seg.right is not None else None
            self.segments.restore(text, seg.frequency, seg.units, seg.created_at, parts)

    # -- lifecycle --------------------------------------------------------------------------------
    def stats(self) -> EngineStats:
        return EngineStats(
            memories=self._memories,
            working_memories=len(self.working),
            concepts=len(self.graph.nodes),
            relationships=self.graph.edge_count,
            segments=len(self.segments),
            storage=self.storage.kind,
            extra={
                **self.indexes.stats(),
                **self.search_cache.stats(),
                "instance_id": self.config.system.instance_id,
            },
        )

    def is_ready(self) -> bool:
        return self._ready and not self._closed and self.storage.ping()

    def readiness(self) -> dict[str, object]:
        """What this replica can reach (database servers, Redis, change feed), for /ready."""
        out: dict[str, object] = {"storage": self.storage.kind}
        servers = self.storage.reachability()
        if servers is not None:
            out["database"] = servers
        if self.feed is not None:
            out.update(self.feed.status())
        return out

    def settle_index(self) -> None:
        """Merge the search index into one segment and save it now (as the maintenance thread does
        once writes pause): after a bulk import, before measuring or shipping the store."""
        self.indexes.settle(self.storage, self._writer)

    def apply_remote_changes(self) -> int:
        """Apply other replicas' writes the read replica holds now (the feed also does this in the
        background); what the replica has not replayed yet comes with a later call."""
        return self.feed.catch_up() if self.feed is not None else 0

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("engine is closed")

    def close(self) -> None:
        if self._closed:
            return
        if self.feed is not None:
            self.feed.stop()
        self._stop.set()
        self._maintainer.join(timeout=10)
        try:
            self.maintain(force=False)
        finally:
            self._closed = True
            try:
                self._snapshot()
            finally:
                self.storage.close()

    def _snapshot(self) -> None:
        self.indexes.persist(self.storage, self._writer, force=True)
        self.indexes.save_snapshot(self.storage.snapshot_dir())

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


MAX_MEMORY_ID = 2**63 - 1  # ids are 64-bit signed integers in SQLite and PostgreSQL (bigint)


def _parse_id(memory_id: str) -> int | None:
    """The id, or None for text no memory can have: anything but ASCII digits (int() would also
    take " 7", "+7", "7_0" and other scripts' digits), 0, or past 64 bits."""
    if not (isinstance(memory_id, str) and memory_id.isascii() and memory_id.isdigit()):
        return None
    value = int(memory_id)
    return value if 0 < value <= MAX_MEMORY_ID else None
