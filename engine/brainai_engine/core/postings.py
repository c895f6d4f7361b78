"""Immutable postings segments: the on-disk, memory-mapped part of the lexical index.

A segment holds, for every term of the memories it covers, their ids in two orders: ascending
(`postings`, for unions and membership tests) and by memory-length bucket then id (`by_length`,
for the shortest-first scan of common words), with a directory of where each bucket starts.
Everything is flat numpy arrays, written as `.npy` files and opened with `mmap_mode="r"`, so a
restart maps a million memories' postings in milliseconds instead of rebuilding them, and the
pages are the kernel's to share and evict rather than Python objects on the heap.

Terms are identified by a stable 64-bit hash (blake2b), looked up by binary search: no
per-term Python object exists for a mapped segment. Two terms colliding would share postings (and
only widen a match); at a million distinct terms the chance of any collision is about 3e-8.

Segments are built whole (from a batch of memories, the in-memory tail, or other segments) with a
single sort of 64-bit composite keys, and never modified: deletions are filtered at query time by
the memory columns and dropped when segments are merged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_BUCKET = 255
_LOW32 = np.uint64(0xFFFFFFFF)
_FILES = ("keys", "starts", "postings", "by_length", "buckets", "dir_start", "dir_bucket", "dir_offset")
_EMPTY_U32 = np.empty(0, dtype=np.uint32)


def term_key(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little")


def term_keys(terms: Iterable[str]) -> np.ndarray:
    return np.fromiter((term_key(t) for t in terms), dtype=np.uint64)


@dataclass(eq=False)
class Segment:
    keys: np.ndarray  # uint64[T], ascending
    starts: np.ndarray  # int64[T+1]: term i's postings are [starts[i], starts[i+1])
    postings: np.ndarray  # uint32[P]: ids ascending within each term
    by_length: np.ndarray  # uint32[P]: ids by (length bucket, id) within each term
    buckets: np.ndarray  # uint8[P]: the bucket of each by_length entry
    dir_start: np.ndarray  # int64[T+1]: term i's bucket directory is [dir_start[i], dir_start[i+1])
    dir_bucket: np.ndarray  # uint8[D]: bucket values, ascending within a term
    dir_offset: np.ndarray  # int64[D+1]: where each (term, bucket) run starts in by_length
    path: Path | None = None  # where it is saved, once it is

    @property
    def terms(self) -> int:
        return len(self.keys)

    @property
    def size(self) -> int:
        return len(self.postings)

    def find(self, key: int) -> int:
        """The term's index, or -1."""
        i = int(np.searchsorted(self.keys, np.uint64(key)))
        return i if i < len(self.keys) and int(self.keys[i]) == key else -1

    def ids(self, term: int) -> np.ndarray:
        return self.postings[self.starts[term] : self.starts[term + 1]]

    def bucket_values(self, term: int) -> np.ndarray:
        return self.dir_bucket[self.dir_start[term] : self.dir_start[term + 1]]

    def bucket_ids(self, term: int, bucket: int) -> np.ndarray:
        lo, hi = int(self.dir_start[term]), int(self.dir_start[term + 1])
        j = lo + int(np.searchsorted(self.dir_bucket[lo:hi], bucket))
        if j == hi or int(self.dir_bucket[j]) != bucket:
            return _EMPTY_U32
        return self.by_length[self.dir_offset[j] : self.dir_offset[j + 1]]

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write every array and fsync; the caller makes the directory visible (manifest)."""
        save_arrays(directory, {name: getattr(self, name) for name in _FILES})
        self.path = directory

    @classmethod
    def load(cls, directory: Path) -> Segment:
        return cls(**load_arrays(directory, _FILES, mapped=True), path=directory)


def save_arrays(directory: Path, arrays: dict[str, np.ndarray]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        with open(directory / f"{name}.npy", "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fsync(fh.fileno())


def load_arrays(directory: Path, names: Iterable[str], mapped: bool = False) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        file = directory / f"{name}.npy"
        # A small array costs nothing to read (and an empty one cannot be mapped). A mapped one is
        # used as a plain ndarray view: np.memmap's Python-level slicing costs microseconds a call.
        array = np.load(file, mmap_mode="r" if mapped and file.stat().st_size > 4096 else None)
        out[name] = np.asarray(array)
    return out


def build(ids: Sequence[int], term_sets: Sequence[set[str]]) -> Segment:
    """A segment over memories given as (id, its content terms)."""
    local: dict[str, int] = {}
    flat = [local.setdefault(t, len(local)) for terms in term_sets for t in terms]
    lengths = np.fromiter((len(s) for s in term_sets), dtype=np.int64, count=len(term_sets))
    keys = term_keys(local)
    order = np.argsort(keys)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    doc_ids = np.repeat(np.asarray(ids, dtype=np.uint32), lengths)
    buckets = np.repeat(np.minimum(lengths, MAX_BUCKET).astype(np.uint8), lengths)
    return assemble(keys[order], rank[np.asarray(flat, dtype=np.int64)], doc_ids, buckets)


def merge(segments: Sequence[Segment], alive: np.ndarray | None = None, chunk: int = 1 << 20) -> Segment:
    """One segment holding every posting of `segments` whose id is alive (`alive[id] > 0`).

    Built a range of terms at a time (about `chunk` postings each) and concatenated: the sort keys
    of a whole million-memory index at once would take a gigabyte for a few seconds."""
    if not segments:
        return build([], [])
    keys = np.unique(np.concatenate([s.keys for s in segments]))
    counts = np.zeros(len(keys), dtype=np.int64)
    for s in segments:
        counts[np.searchsorted(keys, s.keys)] += np.diff(s.starts)
    cumulative = np.cumsum(counts)
    cuts = np.searchsorted(cumulative, np.arange(chunk, int(cumulative[-1]), chunk), side="right")
    bounds = np.unique(np.concatenate([[0], cuts, [len(keys)]]))
    pieces = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        ranks, ids, buckets = [], [], []
        for s in segments:
            i, j = np.searchsorted(s.keys, keys[[a, b - 1]])
            j += int(j < len(s.keys) and s.keys[j] == keys[b - 1])
            if i == j:
                continue
            lo, hi = int(s.starts[i]), int(s.starts[j])
            rank = np.repeat(np.searchsorted(keys[a:b], s.keys[i:j]), np.diff(s.starts[i : j + 1]))
            doc, bucket = s.by_length[lo:hi], s.buckets[lo:hi]
            if alive is not None:
                keep = np.zeros(len(doc), dtype=bool)
                inside = doc < len(alive)
                keep[inside] = alive[doc[inside]] > 0
                rank, doc, bucket = rank[keep], doc[keep], bucket[keep]
            ranks.append(rank)
            ids.append(doc)
            buckets.append(bucket)
        pieces.append(
            assemble(keys[a:b], np.concatenate(ranks), np.concatenate(ids), np.concatenate(buckets))
        )
    return _concatenate(pieces)


def _concatenate(pieces: list[Segment]) -> Segment:
    """Segments over disjoint, ascending key ranges laid end to end."""
    posting_base = np.cumsum([0] + [p.size for p in pieces])
    dir_base = np.cumsum([0] + [len(p.dir_bucket) for p in pieces])
    return Segment(
        keys=np.concatenate([p.keys for p in pieces]),
        starts=np.concatenate(
            [p.starts[:-1] + base for p, base in zip(pieces, posting_base, strict=False)]
            + [posting_base[-1:]]
        ),
        postings=np.concatenate([p.postings for p in pieces]),
        by_length=np.concatenate([p.by_length for p in pieces]),
        buckets=np.concatenate([p.buckets for p in pieces]),
        dir_start=np.concatenate(
            [p.dir_start[:-1] + base for p, base in zip(pieces, dir_base, strict=False)] + [dir_base[-1:]]
        ),
        dir_bucket=np.concatenate([p.dir_bucket for p in pieces]),
        dir_offset=np.concatenate(
            [p.dir_offset[:-1] + base for p, base in zip(pieces, posting_base, strict=False)]
            + [posting_base[-1:]]
        ),
    )


def assemble(keys: np.ndarray, rank: np.ndarray, ids: np.ndarray, buckets: np.ndarray) -> Segment:
    """Lay postings given as parallel (term rank into sorted `keys`, id, bucket) arrays out in both
    orders. Terms left without postings are dropped."""
    counts = np.bincount(rank, minlength=len(keys)) if len(rank) else np.zeros(len(keys), np.int64)
    used = counts > 0
    if not used.all():
        remap = np.cumsum(used) - 1
        keys, counts, rank = keys[used], counts[used], remap[rank]
    starts = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    high = rank.astype(np.uint64)
    low = ids.astype(np.uint64)
    by_id = (high << np.uint64(32)) | low
    by_id.sort()
    postings = (by_id & _LOW32).astype(np.uint32)
    del by_id
    if len(keys) < 1 << 24:
        by_len = (high << np.uint64(40)) | (buckets.astype(np.uint64) << np.uint64(32)) | low
        by_len.sort()
        pairs = by_len >> np.uint64(32)  # term rank << 8 | bucket
        by_length = (by_len & _LOW32).astype(np.uint32)
        del by_len
    else:  # more terms than a composite key holds: sort on three keys
        order = np.lexsort((ids, buckets, rank))
        by_length = ids[order].astype(np.uint32)
        pairs = (high[order] << np.uint64(8)) | buckets[order].astype(np.uint64)
    if len(pairs):
        runs = np.concatenate([[0], np.flatnonzero(pairs[1:] != pairs[:-1]) + 1])
    else:
        runs = np.empty(0, dtype=np.int64)
    run_pairs = pairs[runs]
    dir_bucket = (run_pairs & np.uint64(0xFF)).astype(np.uint8)
    dir_start = np.searchsorted(run_pairs >> np.uint64(8), np.arange(len(keys) + 1, dtype=np.uint64))
    dir_offset = np.append(runs, len(pairs)).astype(np.int64)
    return Segment(
        keys=keys.astype(np.uint64),
        starts=starts,
        postings=postings,
        by_length=by_length,
        buckets=(pairs & np.uint64(0xFF)).astype(np.uint8),
        dir_start=dir_start.astype(np.int64),
        dir_bucket=dir_bucket,
        dir_offset=dir_offset,
    )


def write_manifest(directory: Path, manifest: dict[str, object]) -> None:
    """Replace the manifest atomically: a crash leaves the old one or the new one, whole."""
    tmp = directory / "manifest.json.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, directory / "manifest.json")
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
