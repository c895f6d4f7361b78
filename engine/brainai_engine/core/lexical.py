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

Layout: immutable `core.postings.Segment`s (built whole from a bulk batch, or frozen from the tail;
memory-mapped once saved) plus a small mutable tail of per-word arrays that single writes append to,
so every acknowledged write is searchable at once. A word's postings are the sorted parts it has in
each layer; queries union and test membership part by part, so layers cost a binary search each and
nothing is copied. `compact` merges segments off the write path.
"""

from __future__ import annotations

import math
import threading
from array import array
from bisect import insort
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from brainai_engine.core import postings as seg
from brainai_engine.core.columns import MemoryColumns
from brainai_engine.core.postings import MAX_BUCKET, Segment
from brainai_engine.core.rwlock import RWLock

K1 = 1.2
B = 0.75
BULK_SEGMENT = 1_000  # a batch at least this large becomes a segment of its own
FREEZE_POSTINGS = 500_000  # the tail becomes a segment once it holds this many postings
MAX_SEGMENTS = 8
BITMAP_MIN_DF = 20_000

Parts = list[np.ndarray]  # one word's postings: a sorted uint32 array per layer that has the word


class _Marks:
    """Scratch bitmaps over the ids in which common words of one query are marked: such a word
    tested against large candidate sets several times costs a gather per test instead of binary
    searches into hundreds of thousands of postings. Bitmaps come from a pool shared by all
    threads (fresh zero pages would fault on first touch; a pool per thread would hold memory for
    every idle thread) and go back cleared, word by word, when the query ends."""

    KEEP = 8  # bitmaps the pool keeps between queries
    _free: ClassVar[list[np.ndarray]] = []
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, size: int) -> None:
        self.size = max(size, 1024)
        self.taken: list[tuple[np.ndarray, _Term]] = []

    def mark(self, term: _Term) -> np.ndarray | None:
        if len(self.taken) == self.KEEP:
            return None
        with self._lock:
            bitmap = self._free.pop() if self._free else None
        if bitmap is None or len(bitmap) < self.size:
            bitmap = np.zeros(self.size, dtype=bool)
        for part in term.parts:
            bitmap[part] = True
        self.taken.append((bitmap, term))
        return bitmap

    def release(self) -> None:
        for bitmap, term in self.taken:
            for part in term.parts:
                bitmap[part] = False
        with self._lock:
            room = self.KEEP - len(self._free)
            self._free.extend(bitmap for bitmap, _ in self.taken[: max(room, 0)])
        self.taken.clear()


class _Term:
    """One query word resolved against every layer."""

    __slots__ = ("_bitmap", "_tests", "df", "parts", "where", "word")

    def __init__(self, word: str, parts: Parts, where: list[tuple[Segment, int]]) -> None:
        self.word = word
        self.parts = parts
        self.df = sum(len(p) for p in parts)
        self.where = where
        self._bitmap: np.ndarray | None = None
        self._tests = 0

    def members(self, cands: np.ndarray, marks: _Marks) -> np.ndarray:
        """Which candidates hold the word: binary searches, until the candidates tested in this
        query make marking the word in `marks` the cheaper way."""
        self._tests += len(cands)
        # Marking costs about df writes; binary searches cost about log2(df) per candidate tested.
        if self._bitmap is None and self.df >= BITMAP_MIN_DF and self._tests * 16 > 2 * self.df:
            self._bitmap = marks.mark(self)
        if self._bitmap is not None:
            return self._bitmap[cands]
        hit = np.zeros(len(cands), dtype=bool)
        for part in self.parts:
            _mark_members(cands, part, hit)
        return hit


class LexicalIndex:
    def __init__(self, columns: MemoryColumns, max_postings: int = 20_000) -> None:
        self.columns = columns
        self.max_postings = max_postings
        self.count_budget = 10 * max_postings
        self.lock = RWLock()
        self._segments: list[Segment] = []
        self._post: dict[str, array] = {}
        self._by_len: dict[str, dict[int, array]] = {}
        self._tail_postings = 0
        self._terms: int | None = None
        self.merging = threading.RLock()  # held by a merge, and by a save for its whole length

    def __len__(self) -> int:
        return self.columns.alive

    @property
    def postings(self) -> int:
        return self._tail_postings + sum(s.size for s in self._segments)

    @property
    def terms(self) -> int:
        """Distinct words over every layer (counted once per change of the layers)."""
        if self._terms is None:
            keys = [s.keys for s in self._segments]
            if self._post:
                keys.append(seg.term_keys(self._post))
            self._terms = len(np.unique(np.concatenate(keys))) if keys else 0
        return self._terms

    def segments(self) -> list[Segment]:
        with self.lock.read():
            return list(self._segments)

    def add(self, ids: list[int], term_sets: list[set[str]]) -> None:
        """Index memories (the caller holds the writer lock). A large batch becomes a segment of its
        own; smaller ones append to the tail. Storage assigns ascending ids, so that is an append; an
        id below one already indexed (a change applied from another engine replica) is inserted in
        order instead, so postings stay sorted."""
        if len(ids) >= BULK_SEGMENT:
            built = seg.build(ids, term_sets)
            with self.lock.write():
                self._segments.append(built)
                self._terms = None
            return
        with self.lock.write():
            self._terms = None
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
            self._tail_postings += n
            if self._tail_postings >= FREEZE_POSTINGS:
                self._freeze()

    def freeze(self) -> None:
        """Turn the tail into a segment (to save it; the caller holds the writer lock)."""
        with self.lock.write():
            self._freeze()

    def _freeze(self) -> None:
        if not self._post:
            return
        words = list(self._by_len)
        keys = seg.term_keys(words)
        order = np.argsort(keys)
        rank_of = np.empty(len(words), dtype=np.int64)
        rank_of[order] = np.arange(len(words))
        ranks, ids, buckets = [], [], []
        for i, word in enumerate(words):
            for bucket, arr in self._by_len[word].items():
                ids.append(np.frombuffer(arr, dtype=np.uint32))
                ranks.append(np.full(len(arr), rank_of[i], dtype=np.int64))
                buckets.append(np.full(len(arr), bucket, dtype=np.uint8))
        self._segments.append(
            seg.assemble(keys[order], np.concatenate(ranks), np.concatenate(ids), np.concatenate(buckets))
        )
        self._post, self._by_len, self._tail_postings = {}, {}, 0

    def compact(
        self, alive: np.ndarray, among: list[Segment], max_segments: int = MAX_SEGMENTS
    ) -> list[Segment]:
        """Merge some of `among` (segments of this index whose memories `alive` covers) and return
        what stands in their place: all of them once the others together reach the largest (sizes
        grow geometrically, so each posting is rewritten O(log n) times), else all but the largest
        when there are more than `max_segments`. Deleted memories are dropped. The merge reads
        immutable segments beside writes and searches; only the swap takes the lock. One merge at
        a time (two over the same segments would each put their result back: every posting twice)."""
        with self.merging:
            present = {id(s) for s in self.segments()}
            among = [s for s in among if id(s) in present]
            if len(among) <= 1:
                return among
            ordered = sorted(among, key=lambda s: s.size, reverse=True)
            if sum(s.size for s in ordered[1:]) >= ordered[0].size:
                chosen = ordered
            elif len(ordered) > max_segments:
                chosen = ordered[1:] if max_segments > 1 else ordered
            else:
                return among
            merged = seg.merge(chosen, alive)
            self.replace(chosen, merged)
            return [s for s in among if s not in chosen] + [merged]

    def replace(self, old: list[Segment], new: Segment) -> bool:
        """Put `new` (the same postings, merged or reloaded from disk) in place of `old`, if every
        one of them is still here (a merge may have taken them meanwhile: then nothing changes)."""
        gone = {id(s) for s in old}
        with self.lock.write():
            if len(gone & {id(s) for s in self._segments}) < len(gone):
                return False
            self._segments = [s for s in self._segments if id(s) not in gone] + [new]
            self._terms = None
            return True

    def _resolve(self, word: str) -> _Term | None:
        parts: Parts = []
        where: list[tuple[Segment, int]] = []
        if self._segments:
            key = seg.term_key(word)
            for s in self._segments:
                i = s.find(key)
                if i >= 0:
                    part = s.ids(i)
                    if len(part):
                        parts.append(part)
                        where.append((s, i))
        tail = self._post.get(word)
        if tail is not None and len(tail):
            parts.append(np.frombuffer(tail, dtype=np.uint32))
        return _Term(word, parts, where) if parts else None

    def _buckets(self, term: _Term) -> set[int]:
        out = {int(b) for s, i in term.where for b in s.bucket_values(i)}
        out.update(self._by_len.get(term.word, ()))
        return out

    def _bucket_parts(self, term: _Term, length: int) -> Parts:
        parts = [s.bucket_ids(i, length) for s, i in term.where]
        tail = self._by_len.get(term.word, {}).get(length)
        if tail is not None:
            parts.append(np.frombuffer(tail, dtype=np.uint32))
        return [p for p in parts if len(p)]

    def best_score(self, terms: set[str]) -> float:
        """The score of a memory made of exactly `terms` (every term shared, nothing else): the
        reference a score is normalised by; a term no memory holds counts with the idf of df = 0."""
        with self.lock.read():
            n_docs = max(self.columns.alive, 1)
            avg = max(self.columns.avg_length, 1e-6)
            dfs = [t.df if (t := self._resolve(word)) is not None else 0 for word in terms]
        idf_sum = sum(math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)) for df in dfs)
        return idf_sum * (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * len(terms) / avg))

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
        with self.lock.read():
            marks = _Marks(len(self.columns.type))
            try:
                return self._search(terms, want, by_relevance, keep, exact, marks)
            finally:
                marks.release()

    def _search(
        self,
        terms: set[str],
        want: int,
        by_relevance: bool,
        keep: Callable[[np.ndarray], np.ndarray] | None,
        exact: bool,
        marks: _Marks,
    ) -> tuple[np.ndarray, np.ndarray, int, bool]:
        cols = self.columns
        found = [t for t in map(self._resolve, terms) if t is not None]
        if not found:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32), 0, True
        found.sort(key=lambda t: t.df)
        n_docs = max(cols.alive, 1)
        avg = max(cols.avg_length, 1e-6)
        idfs = [math.log(1.0 + (n_docs - t.df + 0.5) / (t.df + 0.5)) for t in found]
        max_norm = (K1 + 1.0) / (1.0 + K1 * (1.0 - B))
        cap = math.inf if exact else self.max_postings
        cands = np.empty(0, dtype=np.uint32)
        used = merged = 0
        capped = mixed = False
        for i, term in enumerate(found):
            if by_relevance and not exact and i and len(cands) >= want:
                _, score = self._score(cands, found, idfs, avg, keep, merged == 1, marks)
                kth = len(score) - want
                if kth >= 0 and np.partition(score, kth)[kth] >= max_norm * sum(idfs[i:]):
                    break
            if by_relevance and term.df > cap:
                # This and every later term are common: take their postings shortest memories
                # first (the highest possible scores) until nothing unseen can enter the top.
                cands, added, capped = self._by_length(
                    found[i:], idfs[i:], cands, found, idfs, avg, keep, want, marks
                )
                used += added
                mixed = True
                break
            room = cap if by_relevance else cap - used
            if room <= 0:
                capped = True
                break
            parts = term.parts
            if term.df > room:  # the most recent postings
                whole = parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))
                parts = [whole[len(whole) - int(room) :]]
                capped = True
            cands = _union(cands, parts)
            used += sum(len(part) for part in parts)
            merged = i + 1
        ids, score = self._score(cands, found, idfs, avg, keep, merged == 1 and not mixed, marks)
        exact_total = merged == len(found) and not capped
        if exact_total:
            total = len(ids)
        elif sum(t.df for t in found) <= self.count_budget:
            total, exact_total = self._count(found, keep), True
        else:
            miss = 1.0
            for t in found:
                miss *= 1.0 - t.df / n_docs
            total = max(len(ids), round(n_docs * (1.0 - miss)))
        return ids, score, total, exact_total

    def _count(self, found: list[_Term], keep: Callable[[np.ndarray], np.ndarray] | None) -> int:
        """Live memories holding any of the terms (and passing `keep`), counted exactly: marked in a
        bitmap over the ids' range only (fresh zero pages cost nothing until touched)."""
        cols = self.columns
        parts = [part for term in found for part in term.parts]
        lo = min(int(part[0]) for part in parts)
        hi = max(int(part[-1]) for part in parts) + 1
        marked = np.zeros(hi, dtype=bool)
        for part in parts:
            marked[part] = True
        live = marked[lo:hi] & (cols.type[lo:hi] > 0)
        if keep is None:
            return int(np.count_nonzero(live))
        ids = np.flatnonzero(live) + lo
        return int(np.count_nonzero(keep(ids)))

    def _by_length(
        self,
        common: list[_Term],
        common_idfs: list[float],
        cands: np.ndarray,
        found: list[_Term],
        idfs: list[float],
        avg: float,
        keep: Callable[[np.ndarray], np.ndarray] | None,
        want: int,
        marks: _Marks,
    ) -> tuple[np.ndarray, int, bool]:
        """Add the common terms' memories length bucket by length bucket, shortest first; stop when
        the `want`-th best candidate beats the best score any memory not yet seen could reach
        (it holds only common terms and is at least this long). Exact unless the hard bound of
        `max_postings` x 10 added postings is reached first."""
        buckets = sorted(set().union(*(self._buckets(t) for t in common)))
        idf_sum = sum(common_idfs)
        added = 0
        checked = 0
        pending: Parts = []  # postings taken but not yet unioned: one sort per check, not per bucket
        pending_size = 0
        for length in buckets:
            # Re-score only after the candidate set grew by half: the checks then cost O(final size).
            if len(cands) + pending_size >= max(want, checked * 3 // 2):
                cands, pending, pending_size = _union(cands, pending), [], 0
                checked = len(cands)
                _, score = self._score(cands, found, idfs, avg, keep, False, marks)
                kth = len(score) - want
                bound = idf_sum * (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * length / avg))
                if kth >= 0 and np.partition(score, kth)[kth] >= bound:
                    return cands, added, False
            if added > self.max_postings * 10:
                return _union(cands, pending), added, True
            parts = [part for t in common for part in self._bucket_parts(t, length)]
            pending += parts
            size = sum(len(part) for part in parts)
            pending_size += size
            added += size
        return _union(cands, pending), added, False

    def _score(
        self,
        cands: np.ndarray,
        found: list[_Term],
        idfs: list[float],
        avg: float,
        keep: Callable[[np.ndarray], np.ndarray] | None,
        from_first: bool,
        marks: _Marks,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of live candidates; `from_first` says every candidate came from the first term, so
        its membership needs no lookup (the common single-word query costs one gather)."""
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
        for j, (term, idf) in enumerate(zip(found, idfs, strict=True)):
            if from_first and j == 0:
                continue
            score += np.float32(idf) * term.members(cands, marks)
        score *= (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * cols.length[cands] / avg))
        return cands.astype(np.int64), score


def _mark_members(cands: np.ndarray, part: np.ndarray, hit: np.ndarray) -> None:
    """Set `hit[i]` where `cands[i]` is in `part` (both sorted). Only candidates within the part's
    id range are looked at (segments mostly hold disjoint id ranges), and the shorter side is
    searched in the longer, so a rare word costs its few postings and a common one the candidates."""
    lo = int(np.searchsorted(cands, part[0]))
    hi = int(np.searchsorted(cands, part[-1], side="right"))
    if lo >= hi:
        return
    cands, hit = cands[lo:hi], hit[lo:hi]
    if len(part) < len(cands):
        pos = np.searchsorted(cands, part)
        np.minimum(pos, len(cands) - 1, out=pos)
        hit[pos[cands[pos] == part]] = True
    else:
        pos = np.searchsorted(part, cands)
        np.minimum(pos, len(part) - 1, out=pos)
        hit |= part[pos] == cands


def _union(cands: np.ndarray, parts: Parts) -> np.ndarray:
    """Sorted distinct ids of `cands` and every part. All are sorted runs, which a stable sort
    (timsort) merges in linear time; a hash-based unique would not know they are sorted."""
    arrays = [a for a in (cands, *parts) if len(a)]
    if len(arrays) <= 1:
        return arrays[0].copy() if arrays else cands
    merged = np.concatenate(arrays)
    merged.sort(kind="stable")
    distinct = np.empty(len(merged), dtype=bool)
    distinct[0] = True
    np.not_equal(merged[1:], merged[:-1], out=distinct[1:])
    return merged[distinct]
