"""Derived search structures over stored memories, kept in step with storage by the engine.

Owns the per-memory columns, the lexical (BM25) index and, with `search.backend = "vector"`, the
hashed embedder and faiss index. Storage stays the source of truth: losing any of this never loses
data.

The lexical index and the columns are saved next to an embedded store (`<db>.index/lexical/`: the
index's immutable segments, the columns, and a manifest naming both and the store they belong to),
every `PERSIST_INTERVAL_S` while it changes and at close. At open they are mapped back and caught
up against storage's catalog of (id, type): memories added since (a crash skips the last save) are
indexed, deleted ones hidden, retyped ones retyped. So a restart costs a catalog scan and the
writes since the last save, not a rebuild; a missing, foreign or damaged index is rebuilt.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from brainai_common.engine_config import EngineConfig
from brainai_engine.core.columns import TYPE_CODES, MemoryColumns
from brainai_engine.core.embedding import HashingEmbedder
from brainai_engine.core.index import VectorIndex
from brainai_engine.core.lexical import LexicalIndex
from brainai_engine.core.postings import Segment, load_arrays, save_arrays, write_manifest
from brainai_engine.core.text import content_terms, tokenize
from brainai_engine.storage.base import IndexRow, Storage

log = logging.getLogger(__name__)

SNAPSHOT_MIN_VECTORS = 50_000
REBUILD_BATCH = 20_000
PERSIST_INTERVAL_S = 30.0
IDLE_MERGE_S = 60.0
INDEX_FORMAT = 1
_COLUMNS = ("type", "confidence", "created", "length")


def _return_free_memory() -> None:
    """Hand the heap freed by a rebuild or a merge back to the system. glibc keeps freed heap (and
    raises its mmap threshold after large frees, so later large arrays land on the heap too):
    without a trim, a rebuilt million-memory index keeps ~140 MB of freed temporaries resident."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class MemoryIndexes:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.columns = MemoryColumns(min(config.system.memory_capacity, 1 << 20))
        self.lexical = LexicalIndex(self.columns, config.search.max_postings)
        self.vector_enabled = config.search.backend == "vector"
        self.embedder = HashingEmbedder(config.search.embedding_dim)
        dim = config.search.embedding_dim
        self.vectors = VectorIndex(dim, config.search) if self.vector_enabled else None
        self.dirty = False
        self.changes = 0  # bumps with every change to the lexical index or the columns
        self._saved_changes = 0
        self._saved_at = time.monotonic()
        self._persisting = threading.Lock()
        self._store: str | None = None
        self._seen_changes = 0
        self._changed_at = time.monotonic()

    def add(
        self,
        ids: list[int],
        contents: list[str],
        types: list[str],
        confidences: list[float],
        created: list[float],
        token_lists: list[list[str]] | None = None,
    ) -> None:
        """Index new memories (ids ascending, larger than any indexed before)."""
        if not ids:
            return
        if token_lists is None:
            token_lists = [tokenize(c) for c in contents]
        term_sets = [content_terms(t) for t in token_lists]
        id_arr = np.asarray(ids, dtype=np.int64)
        if len(ids) == 1:  # the durable single add: scalar stores cost a fraction of four arrays
            self.columns.set_one(ids[0], TYPE_CODES[types[0]], confidences[0], created[0], len(term_sets[0]))
        else:
            self.columns.set(
                id_arr,
                np.fromiter((TYPE_CODES[t] for t in types), dtype=np.uint8, count=len(ids)),
                np.asarray(confidences, dtype=np.float32),
                np.asarray(created, dtype=np.float64),
                np.fromiter((len(s) for s in term_sets), dtype=np.float32, count=len(ids)),
            )
        self.lexical.add(ids, term_sets)
        self.changes += 1
        if self.vectors is not None:
            vecs = self.embedder.embed_tokens(token_lists)
            if len(self.vectors) == 0 and self.vectors.max_id == 0 and len(ids) > 1:
                self.vectors.build(id_arr, vecs)
            else:
                self.vectors.add(id_arr, vecs)
        self.dirty = True

    def add_rows(self, rows: list[IndexRow], token_lists: list[list[str]] | None = None) -> None:
        self.add(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
            token_lists,
        )

    def remove(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        for memory_id in ids:
            self.columns.delete(memory_id)
        if self.vectors is not None and ids:
            self.vectors.remove(ids)
        self.dirty = True
        self.changes += 1

    def set_type(self, memory_id: int, mtype: str) -> None:
        self.columns.set_type(memory_id, mtype)
        self.changes += 1

    def load(self, storage: Storage) -> None:
        """Open the saved lexical index and catch it up, or rebuild from storage (the vector index
        loads its own snapshot when one matches)."""
        if self.vectors is None and self._persistent(storage):
            directory = self._directory(storage)
            try:
                if self._open_saved(directory, storage):
                    return
            except Exception:  # the index is only a cache of storage: rebuild it
                log.exception("saved search index at %s unusable; rebuilding", directory)
                self.columns = MemoryColumns(len(self.columns.type))
                self.lexical = LexicalIndex(self.columns, self.config.search.max_postings)
        self._rebuild(storage)
        self.changes += 1
        _return_free_memory()

    def _rebuild(self, storage: Storage) -> None:
        snap = storage.snapshot_dir()
        loaded_upto = 0
        v = self.vectors
        if v is not None and snap is not None and self.config.search.precomputed_indexes and v.load(snap):
            loaded_upto = v.max_id
            alive = np.asarray(storage.memory_ids(), dtype=np.int64)
            known = v.ids()
            dead = known[~np.isin(known, alive)]
            if len(dead):
                v.remove(dead.tolist())
        vectors, self.vectors = self.vectors, None
        pending_ids: list[np.ndarray] = []
        pending_tokens: list[list[str]] = []
        for rows in storage.iter_memory_rows(batch=REBUILD_BATCH):
            tokens = [tokenize(r[1]) for r in rows]
            self.add_rows(rows, tokens)
            self.lexical.compact(self.columns.type, self.lexical.segments())
            if vectors is not None:
                new = [i for i, r in enumerate(rows) if r[0] > loaded_upto]
                pending_ids.append(np.asarray([rows[i][0] for i in new], dtype=np.int64))
                pending_tokens.extend(tokens[i] for i in new)
        self.vectors = vectors
        if vectors is not None and pending_tokens:
            ids = np.concatenate(pending_ids)
            vecs = self.embedder.embed_tokens(pending_tokens)
            if loaded_upto:
                vectors.add(ids, vecs)
            else:
                vectors.build(ids, vecs)
            self.dirty = True
        else:
            self.dirty = False

    # -- the saved lexical index ------------------------------------------------------------------
    def _persistent(self, storage: Storage) -> bool:
        cfg = self.config
        return bool(cfg.search.precomputed_indexes and cfg.storage.snapshot_index and storage.snapshot_dir())

    def _store_id(self, storage: Storage) -> str | None:
        """The store's identity, read once (SQLite mints it with a write on first use)."""
        if self._store is None:
            self._store = storage.store_id() or ""
        return self._store or None

    @staticmethod
    def _directory(storage: Storage) -> Path:
        snap = storage.snapshot_dir()
        assert snap is not None
        return snap / "lexical"

    def _open_saved(self, directory: Path, storage: Storage) -> bool:
        manifest_file = directory / "manifest.json"
        if not manifest_file.exists():
            return False
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        if manifest.get("format") != INDEX_FORMAT or manifest.get("store") != self._store_id(storage):
            log.warning("saved search index at %s is not this store's; rebuilding", directory)
            return False
        started = time.perf_counter()
        segments = [Segment.load(directory / name) for name in manifest["segments"]]
        saved = load_arrays(directory / manifest["columns"], _COLUMNS)
        pages = list(storage.memory_catalog(TYPE_CODES))
        ids = np.concatenate([p[0] for p in pages]) if pages else np.empty(0, dtype=np.int64)
        codes = np.concatenate([p[1] for p in pages]) if pages else np.empty(0, dtype=np.uint8)
        size = len(saved["type"])
        known = np.zeros(len(ids), dtype=bool)
        inside = ids < size
        known[inside] = saved["type"][ids[inside]] > 0
        held = ids[known]
        # The index's columns for the memories it holds, with storage's types; every other id hidden.
        cols = self.columns = MemoryColumns(max(size, int(ids[-1]) + 1 if len(ids) else 0))
        for name in ("confidence", "created", "length"):
            getattr(cols, name)[:size] = saved[name]
        cols.type[held] = codes[known]
        cols.alive = len(held)
        cols.total_length = float(cols.length[held].sum())
        self.lexical = LexicalIndex(cols, self.config.search.max_postings)
        for segment in segments:
            self.lexical.replace([], segment)
        stale = cols.alive != manifest["memories"] or not np.array_equal(saved["type"][held], codes[known])
        missing = ids[~known]
        if len(missing):
            wanted = set(missing.tolist())
            for rows in storage.iter_memory_rows(after_id=int(missing[0]) - 1, batch=REBUILD_BATCH):
                self.add_rows([r for r in rows if r[0] in wanted])
        self._saved_changes, self.changes = 0, int(stale or len(missing) > 0)
        self._saved_at = time.monotonic()
        log.info(
            "search index opened from %s in %.2f s: %d memories, %d indexed since it was saved",
            directory,
            time.perf_counter() - started,
            cols.alive,
            len(missing),
        )
        return True

    def tidy(self, storage: Storage, writer: threading.Lock) -> None:
        """Merge segments when due and save the index when due (the maintenance thread, outside
        `writer`). Once writes have paused for `IDLE_MERGE_S`, everything is merged into one
        segment (each layer costs every query a lookup), and saved."""
        now = time.monotonic()
        if self.changes != self._seen_changes:
            self._seen_changes, self._changed_at = self.changes, now
        segments = self.lexical.segments()
        idle = now - self._changed_at >= IDLE_MERGE_S
        if idle and len(segments) > 1:
            self.settle(storage, writer)
            self._seen_changes = self.changes
            return
        if self.lexical.compact(self.columns.type, segments) != segments:
            _return_free_memory()
        self.persist(storage, writer, force=idle)

    def settle(self, storage: Storage, writer: threading.Lock) -> None:
        """Merge into one segment and save now: what `tidy` does once writes pause."""
        with writer:
            self.lexical.freeze()
        self.lexical.compact(self.columns.type, self.lexical.segments(), max_segments=1)
        self.changes += 1
        self.persist(storage, writer, force=True)
        _return_free_memory()

    def persist(self, storage: Storage, writer: threading.Lock, force: bool = False) -> bool:
        """Save the lexical index and columns when they changed (at most every `PERSIST_INTERVAL_S`
        unless `force`). Only freezing the tail and copying the columns hold `writer`; merging and
        writing run beside new writes and searches, and cover exactly what was frozen."""
        if self.vectors is not None or not self._persistent(storage):
            return False
        # No merge may swap the segments being saved: the manifest must name every one of them.
        with self._persisting, self.lexical.merging:
            due = force or time.monotonic() - self._saved_at >= PERSIST_INTERVAL_S
            if self.changes == self._saved_changes or not due:
                return False
            with writer:
                changes = self.changes
                self.lexical.freeze()
                frozen = self.lexical.segments()
                used = np.flatnonzero(self.columns.type)
                end = int(used[-1]) + 1 if len(used) else 0
                columns = {name: getattr(self.columns, name)[:end].copy() for name in _COLUMNS}
            frozen = self.lexical.compact(columns["type"], frozen)
            directory = self._directory(storage)
            directory.mkdir(parents=True, exist_ok=True)
            names: list[str] = []
            for segment in frozen:
                path = segment.path
                if path is None:
                    path = directory / f"segment-{uuid.uuid4().hex[:12]}"
                    segment.save(path)
                    self.lexical.replace([segment], Segment.load(path))  # mapped, off the heap
                names.append(path.name)
            column_dir = directory / f"columns-{uuid.uuid4().hex[:12]}"
            save_arrays(column_dir, columns)
            manifest: dict[str, object] = {
                "format": INDEX_FORMAT,
                "store": self._store_id(storage),
                "segments": names,
                "columns": column_dir.name,
                "memories": int(np.count_nonzero(columns["type"])),
            }
            write_manifest(directory, manifest)
            for entry in directory.iterdir():
                if entry.is_dir() and entry.name not in {*names, column_dir.name}:
                    shutil.rmtree(entry, ignore_errors=True)
            self._saved_changes = changes
            self._saved_at = time.monotonic()
            return True

    def maintain(self) -> None:
        if self.vectors is not None:
            self.vectors.flush()
            if self.vectors.dead_fraction > 0.2:
                self.vectors.compact()

    def save_snapshot(self, directory: Path | None) -> None:
        v = self.vectors
        if (
            directory
            and v is not None
            and self.dirty
            and self.config.search.precomputed_indexes
            and self.config.storage.snapshot_index
            and len(v) >= SNAPSHOT_MIN_VECTORS
        ):
            v.save(directory)
            self.dirty = False

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {
            "index": self.config.search.backend,
            "indexed_memories": self.columns.alive,
            "lexical_terms": self.lexical.terms,
            "lexical_postings": self.lexical.postings,
        }
        if self.vectors is not None:
            out.update(vector_index=self.vectors.kind, vector_count=len(self.vectors))
        return out
