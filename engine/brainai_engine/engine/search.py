"""Memory search: the contract behind `GET /memory/search`.

A memory matches when it contains at least one of the query's content words (stopwords count only
when the query has nothing else) as a whole word, case-insensitively, and passes the filters
(`type`, `min_confidence`). Scores:
- backend `lexical` (default): BM25 over content words (see `core.lexical`), so rarer shared words
  weigh more and shorter memories win ties; `total` is the number of matches, exact unless the
  query's words are so common that counting them would cost more than the search (then estimated,
  see there, and `total_exact` is false).
- backend `vector`: cosine of hashed word/bigram vectors from the faiss index (`core.index`); the
  index returns a candidate pool of max(4 x (offset + limit), 40), capped by `candidate_pool`, whose
  stored records are re-checked for a shared word; `total` counts matches within that pool, exact
  only when the index had fewer candidates than the pool.
`normalized_score` is the score over the best any memory could reach for the query (see
`best_score`): comparable across stores and queries, unlike BM25's raw value.
`sort_by`: `relevance` orders by score; `confidence` and `recency` order by that field, score
breaking ties. Storage is read only for the returned page.
"""

from __future__ import annotations

import re

import numpy as np

from brainai_common.engine_config import SearchConfig
from brainai_engine.core.columns import TYPE_CODES
from brainai_engine.core.text import content_terms, tokenize
from brainai_engine.engine.indexing import MemoryIndexes
from brainai_engine.models import MemorySearchQuery
from brainai_engine.storage.base import Storage
from brainai_engine.storage.records import MemoryRecord, Page, Total

MIN_POOL = 40
Hits = tuple[Total, Page]


class MemorySearcher:
    """Reads the indexes and, for the returned page only, storage; holds no engine state."""

    def __init__(self, config: SearchConfig, indexes: MemoryIndexes, storage: Storage) -> None:
        self.config = config
        self.indexes = indexes
        self.storage = storage

    def search(self, q: MemorySearchQuery) -> Hits:
        """(total matches, [(record, score)] for the requested page)."""
        terms = content_terms(tokenize(q.query))
        if not terms:
            return Total(0, True), []
        if self.config.backend == "vector":
            return self._vector(q, terms)
        return self._lexical(q, terms)

    def best_score(self, q: MemorySearchQuery) -> float:
        """What a score is normalised by: the BM25 score of a memory made of exactly the query's
        words (`lexical.best_score`), so 1.0 is a perfect match and a longer or partial one less
        (clipped at 1); cosine is already in [0, 1]."""
        if self.config.backend == "vector":
            return 1.0
        return self.indexes.lexical.best_score(content_terms(tokenize(q.query)))

    # -- lexical ----------------------------------------------------------------------------------
    def _lexical(self, q: MemorySearchQuery, terms: set[str]) -> Hits:
        cols = self.indexes.columns
        code = TYPE_CODES[q.type] if q.type is not None else 0

        def keep(ids: np.ndarray) -> np.ndarray:
            mask = np.ones(len(ids), dtype=bool) if not code else cols.type[ids] == code
            if q.min_confidence > 0:
                mask &= cols.confidence[ids] >= q.min_confidence
            return mask

        filtered = bool(code) or q.min_confidence > 0
        want = q.offset + q.limit
        ids, scores, count, exact = self.indexes.lexical.search(
            terms, want, q.sort_by == "relevance", keep if filtered else None
        )
        total = Total(count, exact)
        if not len(ids) or q.offset >= len(ids):
            return total, []
        primary = {"relevance": scores, "confidence": cols.confidence[ids], "recency": cols.created[ids]}[
            q.sort_by
        ].astype(np.float64)
        if len(ids) > want:
            top = np.argpartition(-primary, want - 1)[:want]
            ids, scores, primary = ids[top], scores[top], primary[top]
        order = np.lexsort((-ids, -scores, -primary))[q.offset : want]
        page_ids = ids[order].tolist()
        records = self.storage.get_memories(page_ids)
        page = [
            (records[i], float(s))
            for i, s in zip(page_ids, scores[order].tolist(), strict=True)
            if i in records
        ]
        return total, page

    # -- vector -----------------------------------------------------------------------------------
    def pool_size(self, q: MemorySearchQuery) -> int:
        want = q.offset + q.limit
        pool = min(max(4 * want, MIN_POOL), self.config.candidate_pool)
        if q.type is not None or q.min_confidence > 0:
            pool *= 4
        return max(pool, want)

    def _vector(self, q: MemorySearchQuery, terms: set[str]) -> Hits:
        index = self.indexes.vectors
        vec = self.indexes.embedder.embed_tokens([tokenize(q.query)])[0]
        if index is None or not vec.any():
            return Total(0, True), []
        pool = self.pool_size(q)
        ids, scores = index.search(vec, pool)
        whole = len(ids) < pool  # the index had no more candidates: the count is complete
        positive = scores > 0
        ids, scores = ids[positive], scores[positive]
        if not len(ids):
            return Total(0, whole), []
        records = self.storage.get_memories(ids.tolist())
        words = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
        pattern = re.compile(rf"(?<!\w)(?:{words})(?!\w)")
        matches: list[tuple[MemoryRecord, float]] = []
        for memory_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
            rec = records.get(memory_id)
            if rec is None or (q.type is not None and rec.type != q.type):
                continue
            if rec.confidence < q.min_confidence:
                continue
            if pattern.search(rec.content.lower()) is None:
                continue
            matches.append((rec, score))
        if q.sort_by == "confidence":
            matches.sort(key=lambda m: (-m[0].confidence, -m[1]))
        elif q.sort_by == "recency":
            matches.sort(key=lambda m: (-m[0].created_at, -m[0].id, -m[1]))
        return Total(len(matches), whole), matches[q.offset : q.offset + q.limit]
