"""The benchmark's peers run on the engine's workload and report the same figures."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from brainai_engine.tools.corpus import Corpus
from brainai_engine.tools.peers import Workload, _fts_query, run_peers


def test_peers_report_comparable_figures() -> None:
    corpus = Corpus(1)
    texts = corpus.texts(2000)
    workload = Workload(texts, corpus.queries(100, texts), corpus.texts(200), seconds=0.2, batch=10)
    seen: list[str] = []
    # As the bench runs them: in a directory removed right after, which fails if a peer still writes.
    with tempfile.TemporaryDirectory() as tmp:
        peers = run_peers(Path(tmp), workload, seen.append)
    assert seen == ["peer: SQLite FTS5", "peer: tantivy"]
    for name in ("sqlite_fts5", "tantivy"):
        figures = peers[name]
        assert figures["bulk_docs_per_s"] > 0 and figures["memory_ops_per_s"] > 0
        assert 0 < figures["search_p50_ms"] <= figures["search_p95_ms"]
    assert peers["tantivy"]["memory_ops_per_s_batched"] > 0


def test_fts_queries_are_any_word_and_quoted() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE docs USING fts5(content)")
    conn.executemany("INSERT INTO docs VALUES (?)", [("zebra stripes",), ("plain horse",), ('an "or" NEAR',)])
    query = _fts_query('Zebra OR horse "quoted" NEAR')
    rows = conn.execute("SELECT content FROM docs WHERE docs MATCH ? ORDER BY rowid", (query,)).fetchall()
    assert [r[0] for r in rows] == ["zebra stripes", "plain horse", 'an "or" NEAR']
