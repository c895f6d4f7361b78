"""The HTTP benchmark at a tiny size: it runs end to end and reports sane numbers for every target."""

from __future__ import annotations

from brainai_engine.tools.bench_http import run_http_bench


def test_http_bench_small() -> None:
    report = run_http_bench(500, requests=300, concurrency=4, rounds=1)
    for target in ("search", "search_uncached", "bare", "direct"):
        assert report[f"{target}_rps"] > 0
        assert report[f"{target}_p95_ms"] > 0
        assert report[f"{target}_requests"] == report["requests_per_round"][target] >= 300
        assert report[f"{target}_errors"] == 0
    assert report["search_p50_ms"] <= report["search_p95_ms"] <= report["search_p99_ms"]
    assert report["search_vs_bare"] > 0 and report["search_vs_direct"] > 0
    assert report["search_uncached_vs_bare"] > 0 and report["search_distinct_queries"] > 1
    assert report["memories"] == 500 and report["total_s"] >= report["setup_s"] > 0
