"""The lexical index's layers: the same memories indexed through the tail, as bulk segments, frozen,
merged, saved and mapped back must answer every query exactly alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brainai_engine.core import postings
from brainai_engine.core.columns import MemoryColumns
from brainai_engine.core.lexical import BULK_SEGMENT, LexicalIndex

N = 3_000
VOCAB = [f"w{i}" for i in range(400)]


def corpus(seed: int = 7) -> list[set[str]]:
    """Zipf-like words, so a few are in most memories (the by-length path) and most are rare."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(VOCAB) + 1)
    weights /= weights.sum()
    docs = []
    for _ in range(N):
        size = int(rng.integers(1, 30))
        docs.append({VOCAB[i] for i in rng.choice(len(VOCAB), size=size, p=weights)})
    return docs


def fresh(docs: list[set[str]], max_postings: int) -> tuple[LexicalIndex, MemoryColumns]:
    cols = MemoryColumns()
    ids = np.arange(1, len(docs) + 1)
    cols.set(
        ids,
        (ids % 3 + 1).astype(np.uint8),
        np.ones(len(ids), dtype=np.float32),
        ids.astype(np.float64),
        np.array([len(d) for d in docs], dtype=np.float32),
    )
    return LexicalIndex(cols, max_postings=max_postings), cols


def tail_only(docs: list[set[str]], max_postings: int) -> LexicalIndex:
    index, _ = fresh(docs, max_postings)
    for start in range(0, len(docs), 100):
        chunk = docs[start : start + 100]
        index.add(list(range(start + 1, start + 1 + len(chunk))), chunk)
    assert not index.segments()
    return index


def layered(docs: list[set[str]], max_postings: int, tmp: Path) -> LexicalIndex:
    """Bulk segments, a frozen tail, a live tail, one merge and a save + mapped reload."""
    index, cols = fresh(docs, max_postings)
    cuts = [0, BULK_SEGMENT, 2 * BULK_SEGMENT + 200, 2 * BULK_SEGMENT + 500, len(docs)]
    index.add(list(range(1, cuts[1] + 1)), docs[: cuts[1]])  # a segment
    index.add(list(range(cuts[1] + 1, cuts[2] + 1)), docs[cuts[1] : cuts[2]])  # another
    for i in range(cuts[2], cuts[3]):
        index.add([i + 1], [docs[i]])
    index.freeze()
    for i in range(cuts[3], cuts[4]):
        index.add([i + 1], [docs[i]])
    _, second, frozen = index.segments()
    merged = index.compact(cols.type, [second, frozen], max_segments=1)
    assert len(merged) == 1 and len(index.segments()) == 2
    merged[0].save(tmp / "seg")
    index.replace(merged, postings.Segment.load(tmp / "seg"))
    assert not index.segments()[-1].postings.flags.writeable  # mapped read-only from the file
    return index


def answers(index: LexicalIndex, queries: list[set[str]]) -> list[object]:
    out = []
    for query in queries:
        for by_relevance, exact in ((True, False), (False, False), (True, True)):
            ids, scores, total, exact_total = index.search(query, 10, by_relevance, exact=exact)
            order = np.lexsort((ids, -np.round(scores, 5)))
            top = list(zip(ids[order].tolist(), np.round(scores[order], 5).tolist(), strict=True))
            out.append(
                (sorted(query), by_relevance, exact, top[:10] if by_relevance else top, total, exact_total)
            )
    return out


@pytest.mark.parametrize("max_postings", [100_000, 200])
@pytest.mark.parametrize("bitmaps", [False, True])
def test_layers_answer_like_one_tail(
    tmp_path: Path, max_postings: int, bitmaps: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = corpus()
    rng = np.random.default_rng(1)
    queries = [
        {VOCAB[i] for i in rng.integers(0, len(VOCAB), size=int(rng.integers(1, 5)))} for _ in range(150)
    ]
    queries += [{"w0"}, {"w0", "w1"}, {"w0", "w399"}, {"absent"}, {"w2", "absent"}]
    expected = answers(tail_only(docs, max_postings), queries)
    if bitmaps:  # every word tested often enough is looked up in a scratch bitmap
        monkeypatch.setattr("brainai_engine.core.lexical.BITMAP_MIN_DF", 1)
    assert answers(layered(docs, max_postings, tmp_path), queries) == expected


def test_deleted_memories_are_hidden_and_merged_away(tmp_path: Path) -> None:
    docs = corpus()
    index = layered(docs, 100_000, tmp_path)
    cols = index.columns
    for memory_id in range(1, N + 1, 3):
        cols.delete(memory_id)
    before = answers(index, [{"w0"}, {"w5", "w9"}])
    assert all(memory_id % 3 != 1 for memory_id in index.search({"w0"}, 10, False)[0].tolist())
    postings_before = index.postings
    index.freeze()
    index.compact(cols.type, index.segments(), max_segments=1)
    assert len(index.segments()) == 1 and index.postings < postings_before
    # Dropping dead postings changes document frequencies; the live set matched stays the same.
    after = index.search({"w0"}, 10, False)
    assert sorted(after[0].tolist()) == sorted(x[0] for x in before[1][3])


def test_segment_arrays_round_trip(tmp_path: Path) -> None:
    built = postings.build([5, 9, 12], [{"a", "b"}, {"b"}, {"a", "c"}])
    built.save(tmp_path / "s")
    loaded = postings.Segment.load(tmp_path / "s")
    key = postings.term_key("a")
    assert loaded.ids(loaded.find(key)).tolist() == [5, 12]
    assert loaded.bucket_ids(loaded.find(key), 2).tolist() == [5, 12]
    assert loaded.bucket_ids(loaded.find(postings.term_key("b")), 1).tolist() == [9]
    assert loaded.find(postings.term_key("zzz")) == -1
    assert postings.term_key("a") == postings.term_key("a") != postings.term_key("b")


def test_a_merge_built_in_term_ranges_equals_one_built_whole() -> None:
    docs = corpus(3)
    half = len(docs) // 2
    parts = [
        postings.build(list(range(1, half + 1)), docs[:half]),
        postings.build(list(range(half + 1, len(docs) + 1)), docs[half:]),
    ]
    alive = np.ones(len(docs) + 1, dtype=np.uint8)
    alive[::5] = 0
    whole = postings.merge(parts, alive)
    ranged = postings.merge(parts, alive, chunk=500)
    for name in (
        "keys",
        "starts",
        "postings",
        "by_length",
        "buckets",
        "dir_start",
        "dir_bucket",
        "dir_offset",
    ):
        assert np.array_equal(getattr(whole, name), getattr(ranged, name)), name
    assert not np.isin(whole.postings, np.flatnonzero(alive == 0)).any()


def test_merges_racing_over_the_same_segments_keep_each_posting_once(tmp_path: Path) -> None:
    import threading

    docs = corpus(5)
    index, cols = fresh(docs, 100_000)
    for start in range(0, len(docs), BULK_SEGMENT):
        index.add(list(range(start + 1, start + 1 + BULK_SEGMENT)), docs[start : start + BULK_SEGMENT])
    queries = [{"w0"}, {"w1", "w7"}, {"w30", "w200"}]
    before, total = answers(index, queries), index.postings
    segments = index.segments()
    racers = [
        threading.Thread(target=index.compact, args=(cols.type, segments), kwargs={"max_segments": 1})
        for _ in range(4)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(index.segments()) == 1 and index.postings == total
    assert answers(index, queries) == before
