"""Derived search structures over stored memories, kept in step with storage by the engine.

Owns the per-memory columns, the lexical (BM25) index and, with `search.backend = "vector"`, the
hashed embedder and faiss index. Everything here is rebuilt from storage at open (the vector index
may load a snapshot instead), so losing it never loses data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from brainai_common.engine_config import EngineConfig
from brainai_engine.core.columns import TYPE_CODES, MemoryColumns
from brainai_engine.core.embedding import HashingEmbedder
from brainai_engine.core.index import VectorIndex
from brainai_engine.core.lexical import LexicalIndex
from brainai_engine.core.text import content_terms, tokenize
from brainai_engine.storage.base import IndexRow, Storage

log = logging.getLogger(__name__)

SNAPSHOT_MIN_VECTORS = 50_000
REBUILD_BATCH = 20_000


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

    def set_type(self, memory_id: int, mtype: str) -> None:
        self.columns.set_type(memory_id, mtype)

    def load(self, storage: Storage) -> None:
        """Rebuild from storage; the vector index loads its snapshot when one matches."""
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
