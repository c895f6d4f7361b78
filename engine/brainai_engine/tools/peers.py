"""The engine's peers in `brain-ai-engine bench`: SQLite FTS5 and tantivy on the same texts and queries.

Each peer gets what the engine gets in `tools.bench`: the same memories bulk-loaded (docs/s), the
same queries answered top 10 with BM25 over the query's content words, any of them matching, each
hit's text fetched (as the engine's `search_memories` does), and the same 50/50 mix of durable adds
and searches on one thread. FTS5 commits each add (autocommit, WAL, synchronous=NORMAL as the
engine's store); tantivy commits each add too, and, since a commit per document is not how tantivy
is used, also in batches of `batch` adds (its searcher reloaded after each commit, so a search sees
every add before it). Figures are only comparable within one run: same machine, same corpus.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainai_engine.core.text import content_terms, tokenize

Progress = Callable[[str], None]


def _terms(query: str) -> list[str]:
    return sorted(content_terms(tokenize(query)))


@dataclass
class Workload:
    """What the engine was measured on: bulk `texts`, `queries`, `adds` for the mix, its length."""

    texts: list[str]
    queries: list[str]
    adds: list[str]
    seconds: float
    batch: int

    @property
    def searchable(self) -> list[str]:
        return [q for q in self.queries if _terms(q)]


def _percentiles(lat: list[float]) -> dict[str, float]:
    return {f"search_p{p}_ms": round(float(np.percentile(lat, p)) * 1000, 3) for p in (50, 95)}


def _timed(search: Callable[[str], object], queries: list[str]) -> list[float]:
    for q in queries[:50]:  # warm-up, as the engine's run
        search(q)
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        search(q)
        lat.append(time.perf_counter() - t0)
    return lat


def alternate(add: Callable[[int], object], search: Callable[[int], object], seconds: float) -> float:
    """Ops per second of add(k) and search(j) taking turns, one thread (the benchmark's 50/50 mix)."""
    ops = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for i in range(100):
            j = ops + i
            if j % 2:
                search(j)
            else:
                add(j // 2)
        ops += 100
    return ops / (time.perf_counter() - started)


def _mixed(add: Callable[[str], None], search: Callable[[str], object], w: Workload, seconds: float) -> float:
    adds, queries = w.adds, w.searchable
    return alternate(lambda k: add(adds[k % len(adds)]), lambda j: search(queries[j % len(queries)]), seconds)


# -- SQLite FTS5 ------------------------------------------------------------------------------------
def _fts_query(query: str) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in _terms(query))


def bench_fts5(directory: Path, w: Workload) -> dict[str, Any]:
    conn = sqlite3.connect(directory / "fts5.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE VIRTUAL TABLE docs USING fts5(content)")
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO docs(content) VALUES (?)", ((t,) for t in w.texts))
    conn.execute("COMMIT")
    loaded = time.perf_counter() - started
    sql = "SELECT rowid, content FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT 10"

    def search(q: str) -> object:
        return conn.execute(sql, (_fts_query(q),)).fetchall()

    def add(text: str) -> None:
        conn.execute("INSERT INTO docs(content) VALUES (?)", (text,))

    report: dict[str, Any] = {"bulk_docs_per_s": round(len(w.texts) / loaded, 1)}
    report.update(_percentiles(_timed(search, w.searchable)))
    report["memory_ops_per_s"] = round(_mixed(add, search, w, w.seconds), 1)
    conn.close()
    return report


# -- tantivy ----------------------------------------------------------------------------------------
def bench_tantivy(directory: Path, w: Workload) -> dict[str, Any]:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("content", stored=True)
    path = directory / "tantivy"
    path.mkdir()
    index = tantivy.Index(builder.build(), path=str(path))
    writer = index.writer(heap_size=256_000_000, num_threads=1)
    started = time.perf_counter()
    for text in w.texts:
        writer.add_document(tantivy.Document(content=[text]))
    writer.commit()
    writer.wait_merging_threads()
    loaded = time.perf_counter() - started
    writer = index.writer(heap_size=64_000_000, num_threads=1)
    index.reload()

    def search(q: str) -> object:
        query = index.parse_query(" OR ".join(_terms(q)), ["content"])
        searcher = index.searcher()
        return [searcher.doc(address)["content"] for _, address in searcher.search(query, 10).hits]

    def add_every(n: int) -> Callable[[str], None]:
        pending = 0

        def add(text: str) -> None:
            nonlocal pending
            writer.add_document(tantivy.Document(content=[text]))
            pending += 1
            if pending >= n:
                writer.commit()
                index.reload()
                pending = 0

        return add

    report: dict[str, Any] = {"bulk_docs_per_s": round(len(w.texts) / loaded, 1)}
    report.update(_percentiles(_timed(search, w.searchable)))
    report["memory_ops_per_s"] = round(_mixed(add_every(1), search, w, min(w.seconds, 2.0)), 1)
    report["memory_ops_per_s_batched"] = round(_mixed(add_every(w.batch), search, w, w.seconds), 1)
    report["memory_ops_batch_size"] = w.batch
    writer.commit()
    writer.wait_merging_threads()  # no merge may still be writing when the directory is removed
    return report


def run_peers(directory: Path, w: Workload, progress: Progress) -> dict[str, Any]:
    """{"sqlite_fts5": figures, "tantivy": figures or why it did not run}."""
    progress("peer: SQLite FTS5")
    peers: dict[str, Any] = {"sqlite_fts5": bench_fts5(directory, w)}
    progress("peer: tantivy")
    try:
        peers["tantivy"] = bench_tantivy(directory, w)
    except ImportError:
        peers["tantivy"] = {"skipped": "tantivy is not installed: pip install 'brain-ai-engine[bench]'"}
    return peers
