"""The memory-search result cache never changes an answer: cached pages equal a fresh search of the
same state, whatever writes come between, and the HTTP bytes equal the model's JSON."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from brainai_engine.api.pages import memory_search_body
from brainai_engine.engine.facade import Engine
from brainai_engine.engine.results import SearchCache
from brainai_engine.models import LearnRequest, MemoryIn, MemorySearchQuery, MemorySearchResult
from brainai_engine.storage.base import WriteBatch

WORDS = [
    "river",
    "stone",
    "maple",
    "falcon",
    "copper",
    "lantern",
    "harbor",
    "meadow",
    "violet",
    "ember",
    "quartz",
    "willow",
]
VOLATILE = {"took_ms", "cached"}


def fresh(engine: Engine, q: MemorySearchQuery) -> MemorySearchResult:
    """The same search with no cache at all."""
    cache, engine.search_cache = engine.search_cache, SearchCache(0)
    try:
        return engine.search_memories(q)
    finally:
        engine.search_cache = cache


def answer(result: MemorySearchResult) -> dict[str, Any]:
    return result.model_dump(mode="json", exclude=VOLATILE)


def queries() -> list[MemorySearchQuery]:
    out = [MemorySearchQuery(query=w) for w in WORDS[:6]]
    out += [
        MemorySearchQuery(query="river stone", limit=3, offset=1),
        MemorySearchQuery(query="maple falcon copper", sort_by="recency"),
        MemorySearchQuery(query="lantern", type="working"),
        MemorySearchQuery(query="harbor ember", type="episodic", sort_by="confidence"),
        MemorySearchQuery(query="violet quartz", min_confidence=0.5),
    ]
    return out


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))


def write(engine: Engine, rng: random.Random, ids: list[str]) -> None:
    """One random change of any kind that can alter a search result."""
    roll = rng.random()
    if roll < 0.25:
        mtype = rng.choice(["working", "episodic", "semantic"])
        m = engine.add_memory(MemoryIn(content=text(rng), type=mtype, confidence=rng.random()))
        ids.append(m.id)
    elif roll < 0.4:
        ids.extend(engine.learn(LearnRequest(text=text(rng) + ". " + text(rng))).memory_ids)
    elif roll < 0.5:
        engine.import_memories([text(rng) for _ in range(3)])
    elif roll < 0.65 and ids:
        engine.delete_memory(ids.pop(rng.randrange(len(ids))))
    elif roll < 0.9 and ids:
        engine.get_memory(rng.choice(ids))  # access count, last access and importance change
    else:
        engine.maintain(force=True)  # consolidation (type changes) and the metadata flush


def test_interleaved_writes_never_serve_a_stale_page(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(memory={"working_memory_size": 8}, search={"result_clock_s": 3600})
    rng = random.Random(5)
    ids: list[str] = []
    for _ in range(30):
        ids.append(engine.add_memory(MemoryIn(content=text(rng), type="working")).id)
    hits = 0
    for step in range(300):
        if step % 3 == 0:
            write(engine, rng, ids)
        for q in rng.sample(queries(), 4):
            got = engine.search_memories(q)
            hits += got.cached
            assert answer(got) == answer(fresh(engine, q)), (step, q)
    assert hits > 100  # the comparison above exercised real cache hits


def test_repeat_is_a_hit_and_json_matches_the_model(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(search={"result_clock_s": 3600})
    for i in range(20):
        engine.add_memory(MemoryIn(content=f"{WORDS[i % 5]} {WORDS[(i * 7) % 12]} note {i}"))
    q = MemorySearchQuery(query="river note", limit=5)
    first = engine.search_memories(q)
    second = engine.search_memories(q)
    assert not first.cached and second.cached and answer(first) == answer(second)
    assert second.took_ms >= 0
    body = json.loads(memory_search_body(engine, q))
    assert body["cached"] is True and body["took_ms"] >= 0
    assert {k: v for k, v in body.items() if k not in VOLATILE} == answer(second)
    one = MemorySearchQuery(query="river")
    before = engine.search_memories(one).total
    engine.add_memory(MemoryIn(content="river again"))
    cold = json.loads(memory_search_body(engine, one))
    assert cold["cached"] is False and cold["total"] == before + 1


def test_clock_tick_rematerialises_importance(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine()
    engine.add_memory(MemoryIn(content="copper lantern"))
    clock = [engine._result_tick()]
    engine._result_tick = lambda: clock[0]  # type: ignore[method-assign]
    q = MemorySearchQuery(query="copper")
    engine.search_memories(q)
    clock[0] += 48 * 3600  # two half-lives later
    later = engine.search_memories(q)
    assert later.cached
    assert answer(later) == answer(fresh(engine, q))
    assert later.results[0].memory.importance < 1.0


def test_disabled_cache_and_budget(open_engine: Callable[..., Engine]) -> None:
    engine = open_engine(performance={"query_cache_size_mb": 0})
    engine.add_memory(MemoryIn(content="willow meadow"))
    q = MemorySearchQuery(query="willow")
    assert not engine.search_memories(q).cached and not engine.search_memories(q).cached
    assert len(engine.search_cache) == 0
    engine.close()  # one process at a time per store
    small = open_engine(performance={"query_cache_size_mb": 1})
    small.import_memories([f"ember {i} " + "x" * 5000 for i in range(50)])
    for i in range(50):
        small.search_memories(MemorySearchQuery(query=str(i)))
    assert small.search_cache.used <= small.search_cache.budget


def test_http_search_serves_cached_bytes(client: Any) -> None:
    client.post("/api/v1/memory", json={"content": "quartz harbor at dawn"})
    first = client.get("/api/v1/memory/search", params={"query": "quartz"}).json()
    second = client.get("/api/v1/memory/search", params={"query": "quartz"}).json()
    assert not first["cached"] and second["cached"]
    assert {k: v for k, v in first.items() if k not in VOLATILE} == {
        k: v for k, v in second.items() if k not in VOLATILE
    }
    bad = client.get("/api/v1/memory/search", params={"query": "quartz", "limit": "0"})
    assert bad.status_code == 400


def test_a_search_during_a_metadata_flush_answers_as_before_and_after_it(
    open_engine: Callable[..., Engine],
) -> None:
    """Access counts and type changes drained into a commit stay visible until storage holds them:
    a search while that commit is in flight (the maintenance thread's, say) sees neither a gap nor
    a double count."""
    engine = open_engine(memory={"working_memory_size": 4})
    ids = [engine.add_memory(MemoryIn(content=f"harbor lantern {i}", type="working")).id for i in range(6)]
    for memory_id in ids[:3]:
        engine.get_memory(memory_id)
    q = MemorySearchQuery(query="harbor", limit=10)
    before = answer(fresh(engine, q))
    flushed: list[tuple[int, int]] = []
    during: list[dict[str, Any]] = []
    write = engine.storage.write

    def write_and_search(batch: WriteBatch) -> Any:
        flushed.append((len(batch.memory_types), len(batch.memory_access)))
        during.append(answer(fresh(engine, q)))
        result = write(batch)
        during.append(answer(fresh(engine, q)))
        return result

    engine.storage.write = write_and_search  # type: ignore[method-assign]
    engine.maintain()
    engine.storage.write = write  # type: ignore[method-assign]
    assert flushed and all(types and access for types, access in flushed)
    assert during == [before] * len(during) and answer(fresh(engine, q)) == before
