"""What every Storage backend must do, shared by the SQLite and PostgreSQL tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from brainai_engine.storage.base import (
    ConceptRecord,
    EdgeRecord,
    NewMemory,
    SegmentRecord,
    Storage,
    WriteBatch,
)


def memory(content: str, **kw: object) -> NewMemory:
    base = {"type": "working", "priority": 2, "confidence": 0.9, "created_at": 1000.0, "context": None}
    base.update(kw)
    return NewMemory(content, **base)  # type: ignore[arg-type]


def settled(check: Callable[[], bool]) -> None:
    assert check()


def check_write_and_read_back_everything(
    store: Storage, eventually: Callable[[Callable[[], bool]], None] = settled
) -> None:
    """One batch of every kind written, then read back; `eventually` waits for replica catch-up."""
    result = store.write(
        WriteBatch(
            new_memories=[
                memory("first ünïcode 🚀", context={"src": "t"}),
                memory("second", type="semantic"),
            ],
            concepts=[ConceptRecord("ai", 3, 0.8, 1.0, 2.0)],
            edges=[EdgeRecord("ai", "ml", 0.19, 0.1, 5.0, 7)],
            segments=[SegmentRecord("machine learning", 2, 0.75, 2, 1.0, "machine", "learning")],
        )
    )
    assert result.memory_ids == [1, 2]
    rec = store.get_memory(1)
    assert rec is not None and rec.content == "first ünïcode 🚀" and rec.context == {"src": "t"}
    assert (rec.type, rec.priority, rec.confidence) == ("working", 2, pytest.approx(0.9))
    assert set(store.get_memories([1, 2, 99])) == {1, 2}
    # Concepts, edges and segments are read from a replica where there is one: wait for it.
    eventually(lambda: [c.name for c in store.iter_concepts()] == ["ai"])
    eventually(
        lambda: [(e.a, e.b, e.weight, e.cooccurrences) for e in store.iter_edges()] == [("ai", "ml", 0.19, 7)]
    )
    eventually(lambda: [s.left for s in store.iter_segments()] == ["machine"])
    eventually(lambda: [r.id for r in store.working_set()] == [1])
    counts = store.counts()
    got = (counts.memories, counts.working_memories, counts.concepts, counts.edges, counts.segments)
    assert got == (2, 1, 1, 1, 1)
    store.write(WriteBatch(memory_types=[(1, "episodic")]))
    codes = {"working": 1, "episodic": 2, "semantic": 3}
    eventually(
        lambda: [(i.tolist(), c.tolist()) for i, c in store.memory_catalog(codes)] == [([1, 2], [2, 3])]
    )


def check_identical_content_is_stored_once(
    store: Storage, eventually: Callable[[Callable[[], bool]], None] = settled
) -> None:
    """A memory whose digest is already stored (before, or earlier in the same batch) maps onto the
    stored one and counts an access; memories without a digest are always stored."""
    a, b = b"a" * 16, b"b" * 16
    first = store.write(WriteBatch(new_memories=[memory("alpha", digest=a), memory("beta", digest=b)]))
    again = store.write(
        WriteBatch(
            new_memories=[
                memory("alpha", digest=a, created_at=2000.0),
                memory("gamma", digest=b"c" * 16),
                memory("gamma", digest=b"c" * 16),
                memory("alpha"),
            ]
        )
    )
    x, y = first.memory_ids
    assert again.memory_ids[0] == x and again.memory_ids[1] == again.memory_ids[2] != y
    assert again.known == {0, 2} and first.known == set()
    assert len(set(again.memory_ids)) == 3  # the digest-less "alpha" is a memory of its own
    eventually(lambda: store.counts().memories == 4)
    rec = store.get_memory(x)
    assert rec is not None and rec.access_count == 1 and rec.last_accessed == 2000.0
