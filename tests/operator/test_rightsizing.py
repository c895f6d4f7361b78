"""Right-sizing arithmetic on synthetic usage: directions, bounds and reasons."""

from __future__ import annotations

import numpy as np
import pytest

from brainai_operator.api import Strategy
from brainai_operator.durations import Window
from brainai_operator.quantities import GI, MI, cpu_quantity, memory_quantity
from brainai_operator.rightsizing import (
    memory_growth,
    recommend,
    recommend_cpu,
    recommend_memory,
    recommend_replicas,
    recommend_strategy,
    round_cpu,
    round_memory,
)
from tests.operator.advisor_helpers import BALANCED, current, usage_factory

usage = usage_factory()


def test_rounding_to_values_people_write() -> None:
    assert round_cpu(0.12) == pytest.approx(0.15) and round_cpu(0.01) == pytest.approx(0.1)
    assert round_cpu(2.88) == pytest.approx(3.0)
    assert cpu_quantity(0.15) == "150m" and cpu_quantity(3.0) == "3"
    # The seed's example: a 6.2 GB peak becomes an 8 GB allocation.
    assert memory_quantity(round_memory(6.2e9 * 1.25)) == "8Gi"
    assert memory_quantity(round_memory(700 * MI)) == "768Mi"


def test_seed_example_cpu_reduced_when_underused() -> None:
    # A 4-core request at 45% average: p95 near 2.4 cores per pod → 3 cores.
    cpu = np.tile(np.linspace(1.2, 2.4, 240), (4, 1))
    request, limit, reason = recommend_cpu(cpu, current(cpu_request=4.0, cpu_limit=4.0))
    assert request == pytest.approx(3.0)
    assert limit >= 2 * request
    assert reason.startswith("CPU: currently using 45% of the 4 cores request on average")
    assert "reduce the request from 4 cores to 3 cores" in reason


def test_more_cpu_use_means_bigger_requests() -> None:
    low, _, _ = recommend_cpu(usage(cpu_per_pod=0.2).cpu, BALANCED)
    high, _, reason = recommend_cpu(usage(cpu_per_pod=0.9).cpu, BALANCED)
    assert high > low
    assert "raise the request" in reason


def test_memory_limit_from_the_peak() -> None:
    mem = usage(memory=1.5 * GI).memory
    mem[0, 50] = 3 * GI  # one spike
    request, limit, reason = recommend_memory(mem, BALANCED)
    assert request < 3 * GI <= limit / 1.25 + 1
    assert request >= np.percentile(mem, 95)
    assert "peak usage 3.0GiB" in reason


def test_replicas_follow_the_request_rate() -> None:
    quiet = usage(cpu_per_pod=0.1, learn=2, query=2)
    busy = usage(cpu_per_pod=0.1 * 8, learn=16, query=16)
    lo_min, lo_max, capacity, _ = recommend_replicas(quiet.total_rps, quiet.cpu_total, 0.5, BALANCED)
    hi_min, hi_max, _, reason = recommend_replicas(busy.total_rps, busy.cpu_total, 0.5, BALANCED)
    assert lo_min >= 2  # availability floor
    assert hi_min > lo_min and hi_max > lo_max
    assert capacity is not None and capacity > 0
    assert "req/s typical" in reason and "minReplicas" in reason


def test_a_peak_raises_max_not_min() -> None:
    steady = usage(cpu_per_pod=0.3)
    spiky = usage(cpu_per_pod=0.3)
    spiky.cpu[:, 100:105] *= 4
    spiky.learn_rps[100:105] *= 4
    spiky.query_rps[100:105] *= 4
    s_min, s_max, _, _ = recommend_replicas(steady.total_rps, steady.cpu_total, 0.5, BALANCED)
    p_min, p_max, _, _ = recommend_replicas(spiky.total_rps, spiky.cpu_total, 0.5, BALANCED)
    assert p_min == s_min and p_max > s_max


def test_replicas_without_requests_fall_back_to_cpu() -> None:
    cpu_total = np.full(60, 3.0)
    low, high, capacity, reason = recommend_replicas(np.zeros(60), cpu_total, 0.5, BALANCED)
    assert capacity is None
    assert low == 9  # 3 cores over 0.35 usable per pod
    assert high >= low and "cores typical" in reason


@pytest.mark.parametrize(
    ("learn", "query", "expected"),
    [
        (9.0, 1.0, Strategy.LEARNING_FOCUSED),
        (1.0, 9.0, Strategy.QUERY_FOCUSED),
        (4.0, 6.0, Strategy.BALANCED),
        (3.5, 6.5, Strategy.BALANCED),  # the seed's load test: 35% learns
    ],
)
def test_strategy_from_the_mix(learn: float, query: float, expected: Strategy) -> None:
    chosen, share, reason = recommend_strategy(np.full(60, learn), np.full(60, query), Strategy.BALANCED)
    assert chosen == expected
    assert share == pytest.approx(learn / (learn + query))
    assert reason.startswith(f"Strategy: {share:.0%} of API requests learn")


def test_idle_cluster_keeps_its_strategy() -> None:
    chosen, _, reason = recommend_strategy(np.zeros(60), np.zeros(60), Strategy.QUERY_FOCUSED)
    assert chosen == Strategy.QUERY_FOCUSED and "too little traffic" in reason


def test_memory_growth_is_a_slope_per_hour() -> None:
    times = 3600.0 * np.arange(10)
    assert memory_growth(times, 1e9 + 5e6 * np.arange(10)) == pytest.approx(5e6)
    assert memory_growth(times[:2], np.ones(2)) is None


def test_whole_recommendation_carries_reasons_and_evidence() -> None:
    rec = recommend(usage(learn=9, query=1), BALANCED, Window.of("1h"), "2025-01-01T00:00:00Z")
    assert rec is not None
    assert rec.strategy == Strategy.LEARNING_FOCUSED
    assert rec.window == "1h" and rec.generated_at == "2025-01-01T00:00:00Z"
    assert rec.evidence.replicas_peak == 3 and rec.evidence.samples == 120
    assert 0.25 < rec.evidence.cpu_average_cores < 0.35
    assert [r.split(":")[0] for r in rec.reasons] == ["CPU", "Memory", "Replicas", "Strategy", "Latency"]
    assert rec.min_replicas <= rec.max_replicas


def test_too_little_data_gives_none() -> None:
    assert recommend(usage(steps=3), BALANCED, Window.of("1h"), "t") is None
