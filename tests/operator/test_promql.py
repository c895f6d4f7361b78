"""The batched PromQL and the per-cluster split of its answers."""

from __future__ import annotations

import numpy as np
import pytest

from brainai_operator.durations import Window
from brainai_operator.promql import classify_route, split_usage, usage_queries


def test_routes_are_classified() -> None:
    assert classify_route("POST", "/api/v1/learn") == "learn"
    assert classify_route("POST", "/api/v1/learn/batch") == "learn"
    assert classify_route("POST", "/api/v1/memory") == "learn"
    assert classify_route("GET", "/api/v1/memory/search") == "query"
    assert classify_route("GET", "/api/v1/concepts/{name}/related") == "query"
    assert classify_route("GET", "/metrics") == "other"


def test_split_batched_answers_per_cluster() -> None:
    start, step = 1000.0, 10

    def series(labels: dict[str, str], values: list[float]) -> dict:
        return {"metric": labels, "values": [[start + step * i, str(v)] for i, v in enumerate(values)]}

    a = {"namespace": "prod", "service": "a-engine"}
    b = {"namespace": "dev", "service": "b-engine"}
    other = {"namespace": "dev", "service": "a-engine"}  # same name, another namespace: not ours
    results = {
        "cpu": [
            series({**a, "pod": "a-engine-1-x"}, [0.1, 0.2, 0.3]),
            series({**a, "pod": "a-engine-1-y"}, [0.3, 0.2]),
            series({**b, "pod": "b-engine-1-x"}, [0.5, 0.5, 0.5]),
            series({**other, "pod": "a-engine-9-z"}, [9, 9, 9]),
        ],
        "memory": [series({**a, "pod": "a-engine-1-x"}, [1e8, 1e8, 1e8])],
        "requests": [
            series({**a, "method": "POST", "route": "/api/v1/learn"}, [3, 3, 3]),
            series({**a, "method": "GET", "route": "/api/v1/memory/search"}, [1, 1, 1]),
        ],
        "latency": [series(b, [0.1, "NaN", 0.3])],
    }
    split = split_usage(results, [("prod", "a"), ("dev", "b")], start, start + 20, step)
    ua, ub = split[("prod", "a")], split[("dev", "b")]
    assert ua.pods == ["a-engine-1-x", "a-engine-1-y"]
    assert list(ua.replicas) == [2, 2, 1]
    assert ua.cpu_total == pytest.approx([0.4, 0.4, 0.3])
    assert list(ua.learn_rps) == [3, 3, 3] and list(ua.query_rps) == [1, 1, 1]
    assert list(ub.cpu_total) == [0.5, 0.5, 0.5] and np.isnan(ub.memory).all()
    assert np.isnan(ub.latency_p95[1])


def test_one_query_per_metric_for_all_clusters() -> None:
    queries = usage_queries([("prod", "a"), ("dev", "b.c")], Window.of("1h"))
    assert set(queries) == {"cpu", "memory", "requests", "latency"}
    for query in queries.values():
        assert 'namespace=~"dev|prod"' in query and 'service=~"a\\\\-engine|b\\\\.c\\\\-engine"' in query
    assert "container_cpu_usage_seconds_total" in queries["cpu"] and " or " in queries["cpu"]
    assert "process_resident_memory_bytes" in queries["memory"]
    assert queries["latency"].startswith("histogram_quantile(0.95, sum by (namespace, service, le)")
