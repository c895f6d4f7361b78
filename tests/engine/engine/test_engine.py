"""The engine facade on real SQLite: learning, search contract, durability, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from brainai_engine.engine.facade import Engine
from brainai_engine.models import (
    BatchLearnRequest,
    ConceptSearchQuery,
    LearnRequest,
    MemoryIn,
    MemorySearchQuery,
    RelatedQuery,
)

TEXT = (
    "Machine learning is a field of artificial intelligence. Neural networks are machine learning "
    "models. Artificial intelligence systems learn from data, and machine learning needs data."
)


def search(engine: Engine, query: str, **kw: object) -> list[str]:
    return [h.memory.content for h in engine.search_memories(MemorySearchQuery(query=query, **kw)).results]


def test_learn_counts_and_concepts(engine: Engine) -> None:
    result = engine.learn(LearnRequest(text=TEXT, priority="high"))
    assert result.memories_stored == 1 and len(result.memory_ids) == 1
    assert result.segments_discovered > 0 and result.concepts_created > 0 and result.relationships_formed > 0
    # The pair reached the minimum frequency in this text; merges apply from the next text on (BPE).
    assert engine.get_concept("machine learning") is None
    assert engine.learn(LearnRequest(text="Machine learning needs data at scale.")).concepts_created >= 1
    assert engine.get_concept("machine learning") is not None
    assert engine.get_concept("Machine  Learning") is not None  # names are normalised like text
    related = engine.related_concepts("machine learning", RelatedQuery(depth=2))
    assert related is not None and related.related
    activations = [r.activation for r in related.related]
    assert activations == sorted(activations, reverse=True)
    assert engine.related_concepts("unknown-concept", RelatedQuery()) is None
    stats = engine.stats()
    assert stats.memories == 2 and stats.concepts > 0 and stats.relationships > 0 and stats.segments > 0


def test_identical_content_is_stored_once_and_strengthens(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine()
    first = engine.learn(LearnRequest(text=TEXT))
    usage = engine.graph.nodes["data"].usage_count
    again = engine.learn_batch(BatchLearnRequest(texts=[TEXT, TEXT, "Something else entirely."]))
    assert [r.memories_stored for r in again.results] == [0, 0, 1]
    assert [r.memories_known for r in again.results] == [1, 1, 0] and again.summary.memories_known == 2
    assert again.results[0].memory_ids == first.memory_ids == again.results[1].memory_ids
    assert engine.stats().memories == 2
    assert engine.graph.nodes["data"].usage_count == usage + 2  # learning it again strengthens
    hits = engine.search_memories(MemorySearchQuery(query="machine learning data", limit=10)).results
    assert [h.memory.content for h in hits] == [TEXT]
    assert engine.get_memory(first.memory_ids[0]).access_count >= 2  # type: ignore[union-attr]
    engine.close()
    reopened = open_engine()
    assert reopened.learn(LearnRequest(text=TEXT)).memories_known == 1  # the digest is stored
    assert reopened.stats().memories == 2


def test_normalized_scores_are_comparable(engine: Engine) -> None:
    """The normalised score is the share of the best score possible for the query, whatever the
    store's size: a memory holding every query word in few words scores near 1, half of them less."""
    engine.learn_batch(
        BatchLearnRequest(
            texts=[
                "Quantum entanglement.",
                "Quantum computing uses qubits in many ways today.",
                "Filler text.",
            ]
        )
    )
    hits = engine.search_memories(MemorySearchQuery(query="quantum entanglement")).results
    assert [h.memory.content for h in hits] == [
        "Quantum entanglement.",
        "Quantum computing uses qubits in many ways today.",
    ]
    assert hits[0].normalized_score > 0.8 and hits[1].normalized_score < 0.5
    assert all(0 <= h.normalized_score <= 1 and h.score > 0 for h in hits)
    engine.learn_batch(BatchLearnRequest(texts=[f"Unrelated memory number {w}." for w in "abcdefghij"]))
    again = engine.search_memories(MemorySearchQuery(query="quantum entanglement")).results
    assert again[0].normalized_score > 0.8


def test_long_text_is_split_into_memories(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(memory={"max_chunk_chars": 100})
    result = engine.learn(LearnRequest(text=TEXT))
    assert result.memories_stored == 2
    assert all(len(engine.get_memory(i).content) <= 100 for i in result.memory_ids)  # type: ignore[union-attr]


def test_learn_batch_results_per_item(engine: Engine) -> None:
    out = engine.learn_batch(BatchLearnRequest(texts=["Alpha beta gamma.", "Gamma delta.", "Epsilon."]))
    assert [r.memories_stored for r in out.results] == [1, 1, 1]
    assert out.summary.items == 3 and out.summary.memories_stored == 3
    ids = [i for r in out.results for i in r.memory_ids]
    assert len(set(ids)) == 3


def test_search_relevance_filters_sorting_and_paging(engine: Engine) -> None:
    engine.add_memory(MemoryIn(content="zebra stripes are black and white", confidence=0.3))
    engine.add_memory(MemoryIn(content="a zebra", type="semantic", confidence=0.9))
    engine.add_memory(MemoryIn(content="horses gallop across plains", confidence=0.5))
    engine.add_memory(MemoryIn(content="zebra and horse are related animals", type="working", confidence=0.6))
    assert search(engine, "zebra")[0] == "a zebra"  # the short memory wins on BM25 length norm
    res = engine.search_memories(MemorySearchQuery(query="zebra horses"))
    assert res.total == 4 and res.results[0].score >= res.results[-1].score  # 3 zebra + 1 horses
    assert search(engine, "zebra", type="semantic") == ["a zebra"]
    assert search(engine, "zebra", min_confidence=0.5) == ["a zebra", "zebra and horse are related animals"]
    assert search(engine, "zebra", sort_by="confidence")[0] == "a zebra"
    assert search(engine, "zebra", sort_by="recency")[0] == "zebra and horse are related animals"
    page = engine.search_memories(MemorySearchQuery(query="zebra", limit=1, offset=1))
    assert page.total == 3 and len(page.results) == 1
    assert engine.search_memories(MemorySearchQuery(query="zebra", offset=50)).results == []


def test_total_counts_every_match(engine: Engine) -> None:
    engine.import_memories([f"alpha beta note {i}" for i in range(100)])
    engine.import_memories([f"gamma delta note {i}" for i in range(50)])
    for query, expected in (("alpha beta", 100), ("alpha gamma", 150), ("delta", 50), ("note", 150)):
        for limit, offset in ((10, 0), (3, 20)):
            result = engine.search_memories(MemorySearchQuery(query=query, limit=limit, offset=offset))
            assert (result.total, result.total_exact) == (expected, True), query
    filtered = engine.search_memories(MemorySearchQuery(query="alpha gamma", type="semantic"))
    assert (filtered.total, filtered.total_exact) == (0, True)


WEIRD_QUERIES = [
    "🦓🚀🔥",
    "e\u0301\u0301\u0301",
    "\u202emirror\u202c",
    "مرحبا بالعالم",
    "東京タワー",
    "x" * 1000,
    "a " * 400,
    "'; DROP TABLE memories; --",
    "...?!",
]


@pytest.mark.parametrize("query", WEIRD_QUERIES)
def test_any_unicode_query_never_raises(engine: Engine, query: str) -> None:
    engine.learn(LearnRequest(text="Some ordinary words about engines and mirrors."))
    result = engine.search_memories(MemorySearchQuery(query=query))
    assert result.total == len(result.results) or result.total >= len(result.results)
    engine.search_concepts(ConceptSearchQuery(query=query))
    assert engine.get_concept(query) is None or query == "mirror"
    assert engine.related_concepts(query, RelatedQuery()) is None or query == "mirror"
    assert search(engine, "🦓") == []


def test_concept_search_contract(engine: Engine) -> None:
    engine.learn_batch(BatchLearnRequest(texts=[TEXT, TEXT]))
    hits = engine.search_concepts(ConceptSearchQuery(query="machine learning")).results
    assert hits[0].concept.name == "machine learning" and hits[0].score == 1.0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    typo = engine.search_concepts(ConceptSearchQuery(query="inteligence")).results
    assert "intelligence" in {h.concept.name for h in typo}
    assert engine.search_concepts(ConceptSearchQuery(query="qqqxxxzzz")).results == []


def test_memory_crud_and_access_counting(engine: Engine) -> None:
    m = engine.add_memory(
        MemoryIn(
            content="Paris is the capital of France",
            type="semantic",
            priority="critical",
            context={"source": "atlas"},
        )
    )
    assert m.importance == pytest.approx(4.0)
    first = engine.get_memory(m.id)
    second = engine.get_memory(m.id)
    assert first is not None and second is not None
    assert (first.access_count, second.access_count) == (1, 2) and second.context == {"source": "atlas"}
    assert engine.get_memory("not-a-number") is None and engine.get_memory("999") is None
    assert engine.delete_memory(m.id) is True
    assert engine.delete_memory(m.id) is False and engine.get_memory(m.id) is None
    assert search(engine, "paris") == []
    assert engine.stats().memories == 0


def test_working_memory_overflow_becomes_episodic(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(memory={"working_memory_size": 2})
    ids = [
        engine.learn(LearnRequest(text=f"Note number {w}.", priority=p)).memory_ids[0]
        for w, p in [("one", "medium"), ("two", "low"), ("three", "high")]
    ]
    assert engine.stats().working_memories <= 2
    assert engine.get_memory(ids[1]).type == "episodic"  # type: ignore[union-attr]
    assert search(engine, "two", type="episodic") == ["Note number two."]


def test_everything_survives_reopen(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine()
    learned = engine.learn(LearnRequest(text=TEXT))
    engine.add_memory(MemoryIn(content="standalone fact about otters", type="semantic"))
    before = engine.stats()
    related = engine.related_concepts("machine learning", RelatedQuery())
    engine.close()
    again = open_engine()
    after = again.stats()
    assert (after.memories, after.concepts, after.relationships, after.segments) == (
        before.memories,
        before.concepts,
        before.relationships,
        before.segments,
    )
    assert again.get_memory(learned.memory_ids[0]) is not None
    assert search(again, "otters") == ["standalone fact about otters"]
    assert again.related_concepts("machine learning", RelatedQuery()) == related


def test_acknowledged_learn_survives_a_crash(tmp_path: Path) -> None:
    script = f"""
import os
from brainai_common.engine_config import EngineConfig
from brainai_engine.engine.facade import Engine
from brainai_engine.models import LearnRequest
engine = Engine(EngineConfig.model_validate({{"server": {{"data_dir": {str(tmp_path)!r}}}}}))
result = engine.learn(LearnRequest(text="Crash test dummies remember everything, dummies do."))
print(result.memory_ids[0], flush=True)
os._exit(9)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    memory_id = out.stdout.strip()
    assert out.returncode == 9 and memory_id, out.stderr
    from tests.engine.conftest import make_config

    engine = Engine(make_config(tmp_path))
    try:
        assert engine.get_memory(memory_id) is not None
        assert search(engine, "dummies") == ["Crash test dummies remember everything, dummies do."]
        assert engine.get_concept("dummies") is not None
    finally:
        engine.close()


def test_concurrent_learn_search_and_reads(engine: Engine) -> None:
    errors: list[BaseException] = []

    def run(fn: Callable[[int], object]) -> None:
        try:
            for i in range(40):
                fn(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [
        lambda i: engine.learn(LearnRequest(text=f"Thread learning sentence {i} about neural systems.")),
        lambda i: engine.add_memory(MemoryIn(content=f"memory {i} on neural systems")),
        lambda i: engine.search_memories(MemorySearchQuery(query="neural systems")),
        lambda i: engine.search_concepts(ConceptSearchQuery(query="neural")),
        lambda i: engine.related_concepts("neural", RelatedQuery()),
        lambda i: engine.stats(),
    ]
    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert engine.stats().memories == 80
    assert engine.search_memories(MemorySearchQuery(query="neural", limit=100)).total == 80


def test_maintenance_prunes_and_persists(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(concepts={"edge_decay_lambda": 1.0})
    engine.learn(LearnRequest(text="Solar panels convert sunlight. Solar panels store sunlight."))
    assert engine.stats().relationships > 0
    engine.maintain(now=engine.graph.nodes["solar"].last_used + 3600 * 5, force=True)
    assert engine.stats().relationships == 0
    engine.close()
    assert open_engine().stats().relationships == 0


def test_closed_engine_refuses_writes(engine: Engine) -> None:
    engine.close()
    with pytest.raises(RuntimeError):
        engine.learn(LearnRequest(text="too late"))
    assert not engine.is_ready()


def test_performance_keys_reach_storage(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(performance={"compression_enabled": True}, memory={"max_chunk_chars": 2000})
    assert engine.storage.codec.algorithm == "lz4"  # type: ignore[attr-defined]
    text = "Compressed memories read back intact. " * 20
    memory_id = engine.learn(LearnRequest(text=text)).memory_ids[0]
    assert engine.get_memory(memory_id).content == text.strip()  # type: ignore[union-attr]


def test_vector_backend_end_to_end(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(search={"backend": "vector", "exact_below": 50})
    engine.import_memories([f"filler memory number {i} about gardens" for i in range(200)])
    engine.add_memory(MemoryIn(content="the lighthouse keeper logs storms", type="semantic"))
    assert engine.indexes.vectors is not None and engine.indexes.vectors.kind == "hnsw"
    assert search(engine, "lighthouse storms") == ["the lighthouse keeper logs storms"]
    assert search(engine, "lighthouse", type="working") == []
    assert search(engine, "🚀") == []
    engine.close()
    again = open_engine(search={"backend": "vector", "exact_below": 50})
    assert search(again, "lighthouse") == ["the lighthouse keeper logs storms"]
