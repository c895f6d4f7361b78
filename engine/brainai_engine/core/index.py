"""Vector index over memory embeddings: exact scan while small, faiss HNSW when large.

Layout: a main faiss index (IndexFlatIP below `exact_below` vectors, IndexHNSWFlat above) plus a
small "fresh" buffer of recent vectors searched exactly with one matrix product. Adding one memory
therefore costs an array copy, not an HNSW insertion; the buffer is merged into the graph in chunks
when it fills, releasing the lock between chunks so searches interleave with the merge.
HNSW cannot delete, so deletes are tombstones filtered from results; `compact` rebuilds without them.
Scores are inner products of unit vectors (cosine), exact for every returned candidate because the
HNSW variant stores full vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np

from brainai_common.engine_config import SearchConfig
from brainai_engine.core.rwlock import RWLock

MERGE_CHUNK = 2048
SNAPSHOT_VERSION = 1


class VectorIndex:
    def __init__(self, dim: int, cfg: SearchConfig) -> None:
        self.dim = dim
        self.cfg = cfg
        self.lock = RWLock()
        self._main: faiss.Index = faiss.IndexFlatIP(dim)
        self._hnsw = False
        self._main_ids = np.empty(0, dtype=np.int64)
        self._fresh = np.empty((max(cfg.fresh_buffer, 1), dim), dtype=np.float32)
        self._fresh_ids = np.empty(max(cfg.fresh_buffer, 1), dtype=np.int64)
        self._n_fresh = 0
        self._dead: set[int] = set()
        self._dead_arr = np.empty(0, dtype=np.int64)
        self._max_id = 0

    # -- size -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._main.ntotal) + self._n_fresh - len(self._dead)

    @property
    def kind(self) -> str:
        return "hnsw" if self._hnsw else "flat"

    @property
    def max_id(self) -> int:
        return self._max_id

    @property
    def dead_fraction(self) -> float:
        total = int(self._main.ntotal) + self._n_fresh
        return len(self._dead) / total if total else 0.0

    # -- writes -----------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Add vectors (ids must be new). Large batches go straight into the main index."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        self._max_id = max(self._max_id, int(ids.max()))
        if not self._hnsw:
            with self.lock.write():
                self._main.add(vecs)
                self._main_ids = np.concatenate([self._main_ids, ids])
            if self.cfg.index_type == "hnsw" and self._main.ntotal >= max(self.cfg.exact_below, 1):
                self._convert_to_hnsw()
            return
        if len(ids) >= len(self._fresh):
            self._merge(ids, vecs)
            return
        if self._n_fresh + len(ids) > len(self._fresh):
            self.flush()
        with self.lock.write():
            n = self._n_fresh
            self._fresh[n : n + len(ids)] = vecs
            self._fresh_ids[n : n + len(ids)] = ids
            self._n_fresh = n + len(ids)

    def flush(self) -> None:
        """Merge the fresh buffer into the HNSW graph."""
        if not self._hnsw or not self._n_fresh:
            return
        with self.lock.read():
            ids = self._fresh_ids[: self._n_fresh].copy()
            vecs = self._fresh[: self._n_fresh].copy()
        self._merge(ids, vecs, from_fresh=True)

    def _merge(self, ids: np.ndarray, vecs: np.ndarray, from_fresh: bool = False) -> None:
        """Insert into the graph chunk by chunk; with `from_fresh` the chunk leaves the buffer in the
        same critical section, so every vector is always visible exactly once."""
        for start in range(0, len(ids), MERGE_CHUNK):
            stop = min(start + MERGE_CHUNK, len(ids))
            with self.lock.write():
                self._main.add(vecs[start:stop])
                self._main_ids = np.concatenate([self._main_ids, ids[start:stop]])
                if from_fresh:
                    done, n = stop - start, self._n_fresh
                    self._fresh[: n - done] = self._fresh[done:n]
                    self._fresh_ids[: n - done] = self._fresh_ids[done:n]
                    self._n_fresh = n - done

    def _new_hnsw(self) -> faiss.Index:
        index = faiss.IndexHNSWFlat(self.dim, self.cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.cfg.hnsw_ef_construction
        index.hnsw.efSearch = self.cfg.hnsw_ef_search
        return index

    def _convert_to_hnsw(self) -> None:
        with self.lock.read():
            vecs = self._main.reconstruct_n(0, self._main.ntotal)
        index = self._new_hnsw()
        index.add(vecs)
        with self.lock.write():
            extra = self._main.ntotal - len(vecs)
            if extra:
                index.add(self._main.reconstruct_n(len(vecs), extra))
            self._main = index
            self._hnsw = True

    def build(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Replace the whole index with these vectors (bulk load at open or after compaction)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        use_hnsw = self.cfg.index_type == "hnsw" and len(ids) >= max(self.cfg.exact_below, 1)
        index = self._new_hnsw() if use_hnsw else faiss.IndexFlatIP(self.dim)
        if len(ids):
            index.add(vecs)
        with self.lock.write():
            self._main, self._hnsw, self._main_ids = index, use_hnsw, ids
            self._n_fresh = 0
            self._dead, self._dead_arr = set(), np.empty(0, dtype=np.int64)
            self._max_id = int(ids.max()) if len(ids) else 0

    def remove(self, ids: list[int]) -> None:
        """Tombstone ids; they never appear in results again."""
        with self.lock.write():
            self._dead.update(int(i) for i in ids)
            self._dead_arr = np.fromiter(self._dead, dtype=np.int64, count=len(self._dead))

    def compact(self) -> None:
        """Rebuild without tombstoned vectors."""
        with self.lock.read():
            ids, vecs = self._all_vectors()
        keep = ~np.isin(ids, self._dead_arr)
        self.build(ids[keep], vecs[keep])

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        main = (
            self._main.reconstruct_n(0, self._main.ntotal)
            if self._main.ntotal
            else np.empty((0, self.dim), dtype=np.float32)
        )
        ids = np.concatenate([self._main_ids, self._fresh_ids[: self._n_fresh]])
        return ids, np.concatenate([main, self._fresh[: self._n_fresh]])

    # -- reads ------------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, scores) by inner product, best first, tombstones excluded."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        with self.lock.read():
            want = k + min(len(self._dead), k * 2)
            ids_parts, score_parts = [], []
            if self._main.ntotal:
                d, pos = self._main.search(q, min(want, int(self._main.ntotal)))
                valid = pos[0] >= 0
                ids_parts.append(self._main_ids[pos[0][valid]])
                score_parts.append(d[0][valid])
            n = self._n_fresh
            if n:
                scores = self._fresh[:n] @ q[0]
                top = np.argpartition(-scores, min(want, n) - 1)[:want] if n > want else np.arange(n)
                ids_parts.append(self._fresh_ids[top])
                score_parts.append(scores[top])
            dead = self._dead_arr
        if not ids_parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        ids = np.concatenate(ids_parts)
        scores = np.concatenate(score_parts)
        if len(dead):
            keep = ~np.isin(ids, dead)
            ids, scores = ids[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[:k]
        return ids[order], scores[order]

    def set_ef_search(self, ef: int) -> None:
        if self._hnsw:
            faiss.ParameterSpace().set_index_parameter(self._main, "efSearch", ef)

    # -- snapshots --------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write a snapshot (faiss file + id map); storage stays the source of truth."""
        directory.mkdir(parents=True, exist_ok=True)
        self.flush()
        with self.lock.read():
            tmp = directory / "index.faiss.tmp"
            faiss.write_index(self._main, str(tmp))
            np.save(directory / "ids.tmp.npy", self._main_ids)
            meta = {
                "version": SNAPSHOT_VERSION,
                "dim": self.dim,
                "hnsw": self._hnsw,
                "m": self.cfg.hnsw_m,
                "count": int(self._main.ntotal),
                "max_id": self._max_id,
            }
        tmp.replace(directory / "index.faiss")
        (directory / "ids.tmp.npy").replace(directory / "ids.npy")
        (directory / "meta.json").write_text(json.dumps(meta))

    def load(self, directory: Path) -> bool:
        """Load a snapshot written by `save`; False when absent or made with other settings."""
        try:
            meta = json.loads((directory / "meta.json").read_text())
            expected = (SNAPSHOT_VERSION, self.dim, self.cfg.hnsw_m)
            same = (meta.get("version"), meta["dim"], meta["m"]) == expected
            if not same:
                return False
            if meta["hnsw"] != (self.cfg.index_type == "hnsw" and meta["count"] >= self.cfg.exact_below):
                return False
            index = faiss.read_index(str(directory / "index.faiss"))
            ids = np.load(directory / "ids.npy")
        except (OSError, ValueError, KeyError, RuntimeError):
            return False
        if index.ntotal != len(ids) or index.d != self.dim:
            return False
        if meta["hnsw"]:
            faiss.ParameterSpace().set_index_parameter(index, "efSearch", self.cfg.hnsw_ef_search)
        with self.lock.write():
            self._main, self._hnsw, self._main_ids = index, bool(meta["hnsw"]), ids.astype(np.int64)
            self._n_fresh = 0
            self._dead, self._dead_arr = set(), np.empty(0, dtype=np.int64)
            self._max_id = int(meta["max_id"])
        return True

    def ids(self) -> np.ndarray:
        with self.lock.read():
            return np.concatenate([self._main_ids, self._fresh_ids[: self._n_fresh]])
