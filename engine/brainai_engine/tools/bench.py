"""In-process benchmark of the engine core on real SQLite files in a temporary directory.

Phases (all on deterministic English-like text from `corpus.Corpus`):
- learn: `learn_batch` of multi-sentence texts into a fresh engine (durable commits included);
- concepts: `search_concepts` on the graph that learning built (words, word pairs, 20% typos),
  with the result cache off, then the cached rate on a repeating set of 500 queries;
- load: `import_memories` of `memories` texts, timing storage insert + embedding + index build
  (`index_build_s`), then the merge into one segment and save that follow an import
  (`index_settle_s`, not part of `bulk_docs_per_s`);
- search: `search_memories` latency through the facade (index, SQLite fetch, result models) with
  the result cache off (`search_p*_ms`), then the same queries again once cached (`search_cached_p*_ms`,
  steady-state hits; the first hit after a `search.result_clock_s` tick re-materialises its page);
- recall@10: the bounded index query's top 10 against the exact (unbounded) evaluation, tie-aware
  (a result counts when its score reaches the exact 10th score), since memories tie on short queries;
- mixed (`memory_ops_per_s`): alternating durable `add_memory` and `search_memories` on the loaded
  engine, one thread, cache on as configured (every add invalidates it, so searches run cold);
- mixed batched (`memory_ops_per_s_batched`): the same 50/50 mix, but the adds arrive as one durable
  `import_memories` call of `memory_ops_batch_size` items followed by as many searches;
- peers: SQLite FTS5 and tantivy on the same memories, queries and mix (`tools.peers`), and
  `vs_peers`, the engine's figure over each peer's.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from brainai_common.engine_config import EngineConfig
from brainai_engine.core.text import content_terms, tokenize
from brainai_engine.engine.facade import Engine
from brainai_engine.models import BatchLearnRequest, ConceptSearchQuery, MemoryIn, MemorySearchQuery
from brainai_engine.tools.corpus import Corpus
from brainai_engine.tools.peers import Workload, alternate, run_peers

MIXED_BATCH = 100

Progress = Callable[[str], None]


def _engine(directory: Path, **search: Any) -> Engine:
    cfg = EngineConfig.model_validate({"server": {"data_dir": str(directory)}, "search": search})
    return Engine(cfg)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 5:
        return word
    i = int(rng.integers(1, len(word) - 1))
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def bench_learn(corpus: Corpus, directory: Path, megabytes: float, report: dict[str, Any]) -> Engine:
    texts = corpus.texts(max(int(megabytes * 1e6 / 700), 10), sentences_per_text=(3, 7))
    size = sum(len(t.encode("utf-8")) for t in texts)
    engine = _engine(directory)
    started = time.perf_counter()
    for i in range(0, len(texts), 500):
        engine.learn_batch(BatchLearnRequest(texts=texts[i : i + 500]))
    elapsed = time.perf_counter() - started
    stats = engine.stats()
    report.update(
        learn_mb=round(size / 1e6, 2),
        learn_seconds=round(elapsed, 3),
        learn_mb_per_hour=round(size / 1e6 / elapsed * 3600, 1),
        learned_concepts=stats.concepts,
        learned_relationships=stats.relationships,
        learned_segments=stats.segments,
    )
    return engine


def bench_concepts(engine: Engine, corpus: Corpus, seconds: float, report: dict[str, Any]) -> None:
    rng = np.random.default_rng(7)
    words = corpus.content_words(20_000)
    queries = []
    for i in range(0, len(words) - 1, 2):
        roll = rng.random()
        if roll < 0.5:
            queries.append(words[i])
        elif roll < 0.8:
            queries.append(f"{words[i]} {words[i + 1]}")
        else:
            queries.append(_typo(words[i], rng))
    models = [ConceptSearchQuery(query=q) for q in queries]
    capacity = engine.concept_cache.capacity
    engine.concept_cache.resize(0)
    try:
        rate, hits = _concept_rate(engine, models, seconds)
    finally:
        engine.concept_cache.resize(capacity)
    cached, _ = _concept_rate(engine, models[:500], min(seconds, 1.0))
    report.update(
        concept_queries_per_s=round(rate, 1),
        concept_hit_rate=round(hits, 3),
        concept_queries_cached_per_s=round(cached, 1),
    )


def _concept_rate(engine: Engine, models: list[ConceptSearchQuery], seconds: float) -> tuple[float, float]:
    """Queries per second (uncached unless the cache is on) and the share with results."""
    done = hits = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = done % len(models)
        chunk = models[start : start + 200]
        for q in chunk:
            hits += bool(engine.search_concepts(q).results)
        done += len(chunk)
    return done / (time.perf_counter() - started), hits / max(done, 1)


def bench_search(
    corpus: Corpus, directory: Path, memories: int, seconds: float, report: dict[str, Any], progress: Progress
) -> None:
    engine = _engine(directory)
    try:
        progress(f"generating {memories:,} memories")
        texts = corpus.texts(memories)
        progress("bulk loading")
        started = time.perf_counter()
        engine.import_memories(texts)
        report["index_build_s"] = round(time.perf_counter() - started, 2)
        # What the maintenance thread would do within a minute of the import: merge the index into
        # one segment and save it, so the searches below measure the steady state, not a merge
        # running beside them.
        started = time.perf_counter()
        engine.settle_index()
        report["index_settle_s"] = round(time.perf_counter() - started, 2)
        report["index_kind"] = engine.config.search.backend
        queries = corpus.queries(1000, texts)

        progress("search latency")
        search_models = [MemorySearchQuery(query=q) for q in queries]
        budget = engine.search_cache.budget
        engine.search_cache.resize(0)
        _latencies(engine, search_models[:50])
        lat, empty = _latencies(engine, search_models)
        report.update(_percentiles("search", lat), search_empty_rate=round(empty / len(queries), 3))
        engine.search_cache.resize(budget)
        # Fill, then one pass that re-materialises pages from an earlier clock tick, then measure hits.
        for _ in range(2):
            _latencies(engine, search_models)
        report.update(_percentiles("search_cached", _latencies(engine, search_models)[0]))

        progress("recall against exact evaluation")
        recall, bounded = _recall(engine, queries[:300])
        report.update(recall_at_10=round(recall, 4), pruned_query_rate=round(bounded, 3))

        progress("mixed add + search")
        adds = corpus.texts(20_000)
        hits = engine.search_cache.hits
        report["memory_ops_per_s"] = round(_mixed(engine, adds, search_models, seconds), 1)
        report["memory_ops_mix"] = "50% add_memory (durable) / 50% search_memories, one thread"
        report["memory_ops_search_cache_hits"] = engine.search_cache.hits - hits
        report["memory_ops_per_s_batched"] = round(
            _mixed_batched(engine, adds, search_models, min(seconds, 2.0), MIXED_BATCH), 1
        )
        report["memory_ops_batch_size"] = MIXED_BATCH
    finally:
        engine.close()
    report["bulk_docs_per_s"] = round(memories / report["index_build_s"], 1)
    peers = run_peers(directory, Workload(texts, queries, adds, seconds, MIXED_BATCH), progress)
    report["peers"] = peers
    report["vs_peers"] = _versus(report, peers)


def _versus(engine: dict[str, Any], peers: dict[str, Any]) -> dict[str, float]:
    """engine / peer for each figure both have: below 1 is faster for latencies, above 1 better
    for rates."""
    out: dict[str, float] = {}
    for peer, figures in peers.items():
        for key in ("bulk_docs_per_s", "search_p50_ms", "search_p95_ms", "memory_ops_per_s"):
            if figures.get(key) and engine.get(key) is not None:
                out[f"{key}_vs_{peer}"] = round(engine[key] / figures[key], 3)
    return out


def _latencies(engine: Engine, models: list[MemorySearchQuery]) -> tuple[list[float], int]:
    """Per-call seconds of `search_memories` over `models`, and how many came back empty."""
    lat = []
    empty = 0
    for q in models:
        t0 = time.perf_counter()
        r = engine.search_memories(q)
        lat.append(time.perf_counter() - t0)
        empty += not r.results
    return lat, empty


def _percentiles(prefix: str, lat: list[float]) -> dict[str, float]:
    return {f"{prefix}_p{p}_ms": round(float(np.percentile(lat, p)) * 1000, 3) for p in (50, 95, 99)}


def _mixed(engine: Engine, adds: list[str], searches: list[MemorySearchQuery], seconds: float) -> float:
    """Ops per second alternating one durable `add_memory` and one search."""
    add_models = [MemoryIn(content=t) for t in adds]
    return alternate(
        lambda k: engine.add_memory(add_models[k % len(add_models)]),
        lambda j: engine.search_memories(searches[j % len(searches)]),
        seconds,
    )


def _mixed_batched(
    engine: Engine, adds: list[str], searches: list[MemorySearchQuery], seconds: float, batch: int
) -> float:
    """Ops per second where each durable call stores `batch` memories, then `batch` searches run;
    every stored memory and every search counts as one op."""
    ops = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = (ops // 2) % len(adds)
        engine.import_memories(adds[start : start + batch], batch=batch)
        stored = len(adds[start : start + batch])
        for i in range(stored):
            engine.search_memories(searches[(ops + i) % len(searches)])
        ops += 2 * stored
    return ops / (time.perf_counter() - started)


def _recall(engine: Engine, queries: list[str]) -> tuple[float, float]:
    """Top 10 of the bounded index query against the unbounded evaluation of every posting, which
    scores exactly the memories a full scan would (the unit tests check that equivalence)."""
    lexical = engine.indexes.lexical
    found = total = bounded = 0
    for q in queries:
        terms = content_terms(tokenize(q))
        ids_x, s_x, *_ = lexical.search(terms, exact=True)
        ids_a, s_a, *_ = lexical.search(terms)
        bounded += len(ids_a) < len(ids_x)
        need = min(10, len(s_x))
        if not need:
            continue
        threshold = np.sort(s_x)[::-1][need - 1] - 1e-5
        top = np.sort(s_a)[::-1][:need]
        found += int((top >= threshold).sum())
        total += need
    return (found / total if total else 1.0), bounded / max(len(queries), 1)


def run_core_bench(
    memories: int,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    learn_mb: float = 4.0,
    seconds: float = 3.0,
) -> dict[str, Any]:
    """Run every phase and return the figures (see the module docstring)."""
    say = progress or (lambda _msg: None)
    corpus = Corpus(seed)
    report: dict[str, Any] = {"memories": memories, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="brain-ai-bench-") as tmp:
        say(f"learning {learn_mb} MB")
        engine = bench_learn(corpus, Path(tmp) / "learn", learn_mb, report)
        try:
            say("concept queries")
            bench_concepts(engine, corpus, seconds, report)
        finally:
            engine.close()
        bench_search(corpus, Path(tmp) / "search", memories, seconds, report, say)
    report["rss_mb"] = round(_rss_mb(), 1)
    report["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report
