"""Search indexes: lexical BM25 (exact against a full scan) and the faiss vector index."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from brainai_common.engine_config import SearchConfig
from brainai_engine.core.columns import MemoryColumns
from brainai_engine.core.embedding import HashingEmbedder
from brainai_engine.core.index import VectorIndex
from brainai_engine.core.lexical import K1, B, LexicalIndex
from brainai_engine.core.text import content_terms, tokenize
from brainai_engine.tools.corpus import Corpus


def build_lexical(texts: list[str], max_postings: int = 100_000) -> tuple[LexicalIndex, list[set[str]]]:
    cols = MemoryColumns()
    index = LexicalIndex(cols, max_postings=max_postings)
    terms = [content_terms(tokenize(t)) for t in texts]
    ids = np.arange(1, len(texts) + 1)
    cols.set(
        ids,
        np.full(len(ids), 2, dtype=np.uint8),
        np.ones(len(ids), dtype=np.float32),
        ids.astype(np.float64),
        np.array([len(t) for t in terms], dtype=np.float32),
    )
    index.add(ids.tolist(), terms)
    return index, terms


def scan_scores(query: set[str], docs: list[set[str]]) -> dict[int, float]:
    """The BM25 formula evaluated by brute force over every document."""
    n = len(docs)
    avg = sum(len(d) for d in docs) / n
    df = {t: sum(t in d for d in docs) for t in query}
    out = {}
    for i, d in enumerate(docs, start=1):
        shared = [t for t in query if t in d]
        if shared:
            idf = sum(math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in shared)
            out[i] = idf * (K1 + 1) / (1 + K1 * (1 - B + B * len(d) / avg))
    return out


@pytest.mark.parametrize("max_postings", [100_000, 300])
def test_lexical_top10_equals_full_scan(max_postings: int) -> None:
    corpus = Corpus(seed=3, vocabulary=800)
    texts = corpus.texts(3000)
    index, docs = build_lexical(texts, max_postings=max_postings)
    for q in corpus.queries(60, texts, words=(1, 4)):
        terms = content_terms(tokenize(q))
        expected = scan_scores(terms, docs)
        ids, scores, total, exact = index.search(terms, want=10)
        if exact:
            assert total == len(expected)
        else:  # more postings than the count budget: estimated (see lexical.py)
            assert max_postings == 300 and total == pytest.approx(len(expected), rel=0.1)
        assert index.search(terms, exact=True)[2] == len(expected)
        got = dict(zip(ids.tolist(), scores.tolist(), strict=True))
        best = sorted(expected.values(), reverse=True)[:10]
        top = sorted(got.values(), reverse=True)[:10]
        assert top == pytest.approx(best, rel=1e-5)
        for memory_id, score in got.items():
            assert score == pytest.approx(expected[memory_id], rel=1e-5)


def test_maxscore_skips_common_postings_but_stays_exact() -> None:
    texts = [f"common filler{i}" for i in range(2000)] + ["rare common", "rare thing"]
    index, _ = build_lexical(texts)
    ids, scores, total, exact = index.search({"rare", "common"}, want=2)
    assert len(ids) < 100  # the 2001 'common' postings were not unioned
    top = ids[np.argsort(-scores)][:2].tolist()
    assert top == [2001, 2002]  # both rare + common wins over rare alone
    assert exact and total == 2002  # skipped for the ranking, yet counted
    exact_ids, _, exact_total, _ = index.search({"rare", "common"}, exact=True)
    assert exact_total == 2002 and len(exact_ids) == 2002


def test_non_relevance_orders_are_bounded_by_max_postings() -> None:
    index, _ = build_lexical([f"word n{i}" for i in range(3000)], max_postings=1000)
    ids, _, total, exact = index.search({"word"}, by_relevance=False)
    assert len(ids) == 1000 and ids.min() == 2001  # the most recent postings
    assert exact and total == 3000


def test_lexical_deletes_and_filters() -> None:
    index, _ = build_lexical(["apple pie", "apple tart", "pear tart"])
    index.columns.delete(1)
    ids, _, total, _ = index.search({"apple"})
    assert ids.tolist() == [2] and total == 1
    ids, _, total, _ = index.search({"tart"}, keep=lambda i: i != 3)
    assert ids.tolist() == [2] and total == 1
    assert index.search({"unknown"})[2] == 0


def vectors(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_vector_index_switches_to_hnsw_and_keeps_recall() -> None:
    cfg = SearchConfig(exact_below=1000, fresh_buffer=256, hnsw_ef_search=128, embedding_dim=64)
    index = VectorIndex(64, cfg)
    x = vectors(3000)
    index.add(np.arange(1, 501), x[:500])
    assert index.kind == "flat"
    index.add(np.arange(501, 2001), x[500:2000])
    assert index.kind == "hnsw"
    for start in range(2000, 3000, 100):  # small adds go through the fresh buffer and merges
        index.add(np.arange(start + 1, start + 101), x[start : start + 100])
    assert len(index) == 3000
    q = vectors(50, seed=1)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10] + 1
    hits = sum(len(set(index.search(q[i], 10)[0].tolist()) & set(exact[i].tolist())) for i in range(50))
    assert hits / 500 >= 0.9


def test_vector_tombstones_compaction_and_snapshot(tmp_path: Path) -> None:
    cfg = SearchConfig(exact_below=100, fresh_buffer=64, embedding_dim=64)
    index = VectorIndex(64, cfg)
    x = vectors(400)
    index.build(np.arange(1, 401), x)
    ids, _ = index.search(x[9], 1)
    assert ids.tolist() == [10]
    index.remove([10])
    assert 10 not in index.search(x[9], 5)[0].tolist()
    index.compact()
    assert len(index) == 399 and index.dead_fraction == 0
    index.save(tmp_path / "snap")
    other = VectorIndex(64, cfg)
    assert other.load(tmp_path / "snap")
    assert other.search(x[20], 1)[0].tolist() == [21]
    assert not VectorIndex(32, SearchConfig(embedding_dim=32)).load(tmp_path / "snap")


def test_hashing_embedder_is_stable_and_normalised() -> None:
    emb = HashingEmbedder(128)
    a = emb.embed(["Neural networks learn", "🚀"])
    assert np.linalg.norm(a[0]) == pytest.approx(1.0) and not a[1].any()
    assert np.array_equal(a[0], HashingEmbedder(128).embed_one("neural NETWORKS learn"))


def test_a_total_past_the_count_budget_is_an_estimate_and_says_so() -> None:
    corpus = Corpus(seed=5, vocabulary=50)
    texts = corpus.texts(3000)
    index, docs = build_lexical(texts, max_postings=100)
    index.count_budget = 10  # every multi-word query now costs more to count than allowed
    estimated = 0
    for q in corpus.queries(40, texts, words=(2, 4)):
        terms = content_terms(tokenize(q))
        _, _, total, exact = index.search(terms, want=10)
        truth = len(scan_scores(terms, docs))
        if exact:
            assert total == truth
        else:
            estimated += 1
            assert total == pytest.approx(truth, rel=0.25)
    assert estimated
