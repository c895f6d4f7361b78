"""`make bench-strategies`: the operator's three workload strategies, measured on the same machine and data.

Each strategy's engine settings (`STRATEGY_CONFIG`, what the operator renders into the engine's
ConfigMap) open a fresh embedded store, which then:
- learns the same corpus (the standard library's docstrings, as `brain-ai-engine report` uses) from
  four concurrent clients sending batches of 500 texts, timed: texts/s and MB/h;
- answers the same repeated queries: a set of distinct two-word queries drawn from the corpus's
  frequent words, large enough that its result pages exceed the default result cache, asked once to
  warm up and then again in another order, timed: queries/s, p50/p95 and the cache's hit rate.

Printed: one row per strategy and each figure's ratio to balanced. Expected: learning-focused learns
faster than balanced (hourly consolidation, a stricter concept threshold, larger write groups) and
query-focused answers repeated queries faster (its result cache holds the whole set).

    python -m e2e.bench.strategies [--megabytes 4] [--queries 12000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from brainai_common.engine_config import EngineConfig
from brainai_engine.engine.facade import Engine
from brainai_engine.models import BatchLearnRequest, MemorySearchQuery
from brainai_engine.tools.quality import stdlib_docstrings
from brainai_operator.api import Strategy
from brainai_operator.strategies import STRATEGY_CONFIG

CLIENTS = 4
BATCH_TEXTS = 500
WORD = re.compile(r"[a-z]{4,}")


def say(message: str) -> None:
    print(f"[strategies] {message}", file=sys.stderr, flush=True)


def corpus(megabytes: float) -> list[str]:
    return list(stdlib_docstrings(int(megabytes * 1e6)))


def repeated_queries(texts: list[str], count: int, seed: int = 7) -> list[str]:
    """`count` distinct pairs of the corpus's 2,000 most frequent words of four letters or more."""
    words = [w for w, _ in Counter(w for t in texts for w in WORD.findall(t.lower())).most_common(2000)]
    rng = random.Random(seed)
    chosen: set[str] = set()
    while len(chosen) < count:
        a, b = rng.sample(words, 2)
        chosen.add(f"{a} {b}")
    return sorted(chosen)


def learn(engine: Engine, texts: list[str]) -> float:
    batches = [texts[i : i + BATCH_TEXTS] for i in range(0, len(texts), BATCH_TEXTS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for result in pool.map(lambda b: engine.learn_batch(BatchLearnRequest(texts=b)), batches):
            assert result.results, "a batch learned nothing"
    return time.perf_counter() - started


def ask(engine: Engine, queries: list[str]) -> tuple[float, list[float], int]:
    """Seconds for all, each query's latency, and how many came from the result cache."""
    latencies, cached = [], 0
    started = time.perf_counter()
    for q in queries:
        t = time.perf_counter()
        result = engine.search_memories(MemorySearchQuery(query=q))
        latencies.append(time.perf_counter() - t)
        cached += bool(result.cached)
    return time.perf_counter() - started, latencies, cached


def measure(strategy: Strategy, texts: list[str], queries: list[str]) -> dict[str, Any]:
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    with tempfile.TemporaryDirectory(prefix=f"brainai-{strategy.value}-") as data:
        config = EngineConfig.model_validate({**STRATEGY_CONFIG[strategy], "server": {"data_dir": data}})
        engine = Engine(config)
        try:
            learn_s = learn(engine, texts)
            say(f"{strategy.value}: learned {len(texts):,} texts in {learn_s:.1f}s; asking {len(queries):,}")
            ask(engine, queries)  # warm-up: every page computed once
            order = list(queries)
            random.Random(11).shuffle(order)
            ask_s, latencies, cached = ask(engine, order)
            stats = engine.stats()
        finally:
            engine.close()
    latencies.sort()
    return {
        "strategy": strategy.value,
        "settings": STRATEGY_CONFIG[strategy],
        "learn_s": round(learn_s, 2),
        "learn_texts_per_s": round(len(texts) / learn_s),
        "learn_mb_per_hour": round(megabytes / learn_s * 3600),
        "concepts": stats.concepts,
        "repeated_queries_per_s": round(len(order) / ask_s),
        "repeated_p50_ms": round(statistics.median(latencies) * 1000, 3),
        "repeated_p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 3),
        "cache_hit_rate": round(cached / len(order), 3),
    }


def run(megabytes: float, query_count: int) -> dict[str, Any]:
    texts = corpus(megabytes)
    queries = repeated_queries(texts, query_count)
    say(f"corpus: {len(texts):,} docstrings, {sum(map(len, texts)) / 1e6:.1f} MB; {len(queries):,} queries")
    rows = {s.value: measure(s, texts, queries) for s in Strategy}
    base = rows[Strategy.BALANCED.value]
    for row in rows.values():
        row["learn_vs_balanced"] = round(row["learn_texts_per_s"] / base["learn_texts_per_s"], 2)
        row["queries_vs_balanced"] = round(row["repeated_queries_per_s"] / base["repeated_queries_per_s"], 2)
    return {"texts": len(texts), "queries": len(queries), "strategies": rows}


def render(report: dict[str, Any]) -> str:
    head = (
        f"{'strategy':18} {'learn s':>8} {'texts/s':>8} {'MB/h':>6} {'x bal':>6}   "
        f"{'queries/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'cached':>6} {'x bal':>6}"
    )
    lines = [f"{report['texts']:,} texts learned, {report['queries']:,} distinct queries asked twice", head]
    for r in report["strategies"].values():
        lines.append(
            f"{r['strategy']:18} {r['learn_s']:8.1f} {r['learn_texts_per_s']:8,} {r['learn_mb_per_hour']:6,} "
            f"{r['learn_vs_balanced']:6.2f}   {r['repeated_queries_per_s']:9,} {r['repeated_p50_ms']:7.3f} "
            f"{r['repeated_p95_ms']:7.3f} {r['cache_hit_rate']:6.0%} {r['queries_vs_balanced']:6.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--megabytes", type=float, default=4.0, help="docstring corpus size (default 4, or all there are)"
    )
    parser.add_argument("--queries", type=int, default=12_000, help="distinct queries (default 12000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.megabytes, args.queries)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
