"""Inverted index over memory content words with BM25 scoring: the default memory-search index.

Why not only dense vectors: hashed dense vectors cannot find a rare word among a million memories
(every slot is shared by hundreds of words, so short memories with a colliding word outrank the one
that holds it). Postings find it exactly, and a rare word's postings are short, so such queries cost
microseconds.

Postings are `array('I')` of ascending memory ids (ids are assigned ascending), 4 bytes a posting.
Score of memory d for query terms Q (binary term frequency, BM25 with k1, b):

    score(d) = sum over t in Q and d of idf(t) * (k1 + 1) / (1 + k1 * (1 - b + b * len(d) / avglen))
    idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))

Query evaluation (MaxScore): terms are taken rarest first and their postings unioned into the
candidate set; before adding the next (more common) term, if the `want`-th best candidate already
scores at least the most any memory holding only the remaining terms could score, the remaining
terms only score existing candidates (a binary search per candidate) and never add their long
postings. That pruning is exact.

Words in more than `max_postings` memories are not unioned whole: each word also keeps its postings
bucketed by memory length, and since shorter memories score higher, those buckets are added
shortest first until the `want`-th best candidate beats the best score an unseen memory (holding
only such common words and at least that long) could reach. Also exact; a hard bound of
10 x `max_postings` added postings keeps adversarial queries cheap (then approximate). The
confidence/recency orders need every match, so there candidates are bounded by `max_postings` in
total, taking the most recent postings. `exact=True` evaluates every posting with neither bound nor
pruning, as a full scan would (the benchmark's reference).
`total` is exact when every posting list was unioned whole, or when the query's postings number at
most `count_budget` (they are then marked in a bitmap and counted: a few microseconds per thousand);
otherwise it is estimated assuming the words occur independently, N * (1 - prod(1 - df/N)), never
below the candidates found, and `search` says so.
"""

from __future__ import annotations

import math
from array import array
from bisect import insort
from collections.abc import Callable

import numpy as np

from brainai_engine.core.columns import MemoryColumns
from brainai_engine.core.rwlock import RWLock

K1 = 1.2
B = 0.75
MAX_BUCKET = 255


class LexicalIndex:
    def __init__(self, columns: MemoryColumns, max_postings: int = 20_000) -> None:
        self.columns = columns
        self.max_postings = max_postings
        self.count_budget = 10 * max_postings
        self.lock = RWLock()
        self._post: dict[str, array] = {}
        self._by_len: dict[str, dict[int, array]] = {}
        self.postings = 0

    def __len__(self) -> int:
        return self.columns.alive

    @property
    def terms(self) -> int:
        return len(self._post)

    def add(self, ids: list[int], term_sets: list[set[str]]) -> None:
        """Index memories (the caller holds the writer lock). Storage assigns ascending ids, so this
        is an append; an id below one already indexed (a change applied from another engine
        replica) is inserted in order instead, so postings stay sorted."""
        with self.lock.write():
            post, by_len = self._post, self._by_len
            n = 0
            for memory_id, terms in zip(ids, term_sets, strict=True):
                bucket = min(len(terms), MAX_BUCKET)
                for t in terms:
                    arr = post.get(t)
                    if arr is None:
                        arr = post[t] = array("I")
                        by_len[t] = {}
                    lengths = by_len[t]
                    short = lengths.get(bucket)
                    if short is None:
                        short = lengths[bucket] = array("I")
                    if arr and arr[-1] > memory_id:
                        # Another engine replica's memory that committed before ours arrived late.
                        insort(arr, memory_id)
                        insort(short, memory_id)
                    else:
                        arr.append(memory_id)
                        short.append(memory_id)
                n += len(terms)
            self.postings += n

    def search(
        self,
        terms: set[str],
        want: int = 10,
        by_relevance: bool = True,
        keep: Callable[[np.ndarray], np.ndarray] | None = None,
        exact: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """(ids, scores, total, whether total is exact) of matching live memories that pass `keep`;
        with `by_relevance` the arrays hold at least the best `want` (unordered), otherwise every
        match within the bound. `exact` unions every posting list (the benchmark's reference)."""
        cols = self.columns
        with self.lock.read():
            terms_sorted = sorted((t for t in terms if t in self._post), key=lambda t: len(self._post[t]))
            lists = [self._post[t] for t in terms_sorted]
            if not lists:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32), 0, True
            n_docs = max(cols.alive, 1)
            avg = max(cols.avg_length, 1e-6)
            views = [np.frombuffer(arr, dtype=np.uint32) for arr in lists]
            idfs = [math.log(1.0 + (n_docs - len(v) + 0.5) / (len(v) + 0.5)) for v in views]
            max_norm = (K1 + 1.0) / (1.0 + K1 * (1.0 - B))
            cap = math.inf if exact else self.max_postings
            cands = np.empty(0, dtype=np.uint32)
            used = merged = 0
            capped = mixed = False
            for i, view in enumerate(views):
                if by_relevance and not exact and i and len(cands) >= want:
                    _, score = self._score(cands, views, idfs, avg, keep, merged == 1)
                    kth = len(score) - want
                    if kth >= 0 and np.partition(score, kth)[kth] >= max_norm * sum(idfs[i:]):
                        break
                if by_relevance and len(view) > cap:
                    # This and every later term are common: take their postings shortest memories
                    # first (the highest possible scores) until nothing unseen can enter the top.
                    cands, added, capped = self._by_length(
                        terms_sorted[i:], idfs[i:], cands, views, idfs, avg, keep, want
                    )
                    used += added
                    mixed = True
                    break
                room = cap if by_relevance else cap - used
                if room <= 0:
                    capped = True
                    break
                if len(view) > room:
                    view = view[len(view) - int(room) :]
                    capped = True
                cands = view.copy() if not len(cands) else np.union1d(cands, view)
                used += len(view)
                merged = i + 1
            ids, score = self._score(cands, views, idfs, avg, keep, merged == 1 and not mixed)
            exact_total = merged == len(views) and not capped
            if exact_total:
                total = len(ids)
            elif sum(len(v) for v in views) <= self.count_budget:
                total, exact_total = self._count(views, keep), True
            else:
                miss = 1.0
                for v in views:
                    miss *= 1.0 - len(v) / n_docs
                total = max(len(ids), round(n_docs * (1.0 - miss)))
            del views
        return ids, score, total, exact_total

    def _count(self, views: list[np.ndarray], keep: Callable[[np.ndarray], np.ndarray] | None) -> int:
        """Live memories holding any of the terms (and passing `keep`), counted exactly."""
        cols = self.columns
        marked = np.zeros(len(cols.type), dtype=bool)
        for view in views:
            marked[view] = True
        ids = np.flatnonzero(marked)
        mask = cols.type[ids] > 0
        if keep is not None:
            mask &= keep(ids)
        return int(np.count_nonzero(mask))

    def _by_length(
        self,
        common: list[str],
        common_idfs: list[float],
        cands: np.ndarray,
        views: list[np.ndarray],
        idfs: list[float],
        avg: float,
        keep: Callable[[np.ndarray], np.ndarray] | None,
        want: int,
    ) -> tuple[np.ndarray, int, bool]:
        """Add the common terms' memories length bucket by length bucket, shortest first; stop when
        the `want`-th best candidate beats the best score any memory not yet seen could reach
        (it holds only common terms and is at least this long). Exact unless the hard bound of
        `max_postings` x 10 added postings is reached first."""
        buckets = sorted({length for t in common for length in self._by_len[t]})
        idf_sum = sum(common_idfs)
        added = 0
        checked = 0
        for length in buckets:
            # Re-score only after the candidate set grew by half: the checks then cost O(final size).
            if len(cands) >= max(want, checked * 3 // 2):
                checked = len(cands)
                _, score = self._score(cands, views, idfs, avg, keep, False)
                kth = len(score) - want
                bound = idf_sum * (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * length / avg))
                if kth >= 0 and np.partition(score, kth)[kth] >= bound:
                    return cands, added, False
            if added > self.max_postings * 10:
                return cands, added, True
            parts = [
                np.frombuffer(self._by_len[t][length], dtype=np.uint32)
                for t in common
                if length in self._by_len[t]
            ]
            if len(cands):
                parts.append(cands)
            added += sum(len(p) for p in parts) - len(cands)
            cands = np.unique(np.concatenate(parts)) if len(parts) > 1 else parts[0].copy()
        return cands, added, False

    def _score(
        self,
        cands: np.ndarray,
        views: list[np.ndarray],
        idfs: list[float],
        avg: float,
        keep: Callable[[np.ndarray], np.ndarray] | None,
        from_first: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of live candidates; `from_first` says every candidate came from views[0], so its
        membership needs no lookup (the common single-word query costs one gather)."""
        cols = self.columns
        mask = cols.type[cands] > 0
        if keep is not None:
            mask &= keep(cands)
        cands = cands[mask]
        score = (
            np.full(len(cands), idfs[0], dtype=np.float32)
            if from_first
            else np.zeros(len(cands), dtype=np.float32)
        )
        for j, (view, idf) in enumerate(zip(views, idfs, strict=True)):
            if from_first and j == 0:
                continue
            pos = np.searchsorted(view, cands)
            np.minimum(pos, len(view) - 1, out=pos)
            score += np.float32(idf) * (view[pos] == cands)
        score *= (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * cols.length[cands] / avg))
        return cands.astype(np.int64), score
