"""Right-sizing: per-pod usage over a window in, requests, limits, replica bounds and a strategy out.

Pure numpy, no network and no clock (`prometheus.py` does the I/O and the schedule), so each rule
can be tested with synthetic arrays. Every number comes with a reason a person can check.

Minimum evidence: no advice from less than 30 minutes of engine usage (`MIN_EVIDENCE_SECONDS`),
counted as the steps where a pod reported CPU times the step. A sample count cannot be the
measure: `Window.of` gives every window about 120 steps, so five minutes and a day look alike.
Thirty minutes because the first minutes of a pod are warm-up (index loading, caches filling),
which would set the p95 request and the peak-based limits; because the memory trend is quoted per
hour and a shorter fit extrapolates it more than twice; and because it is half the default 1h
window, so a healthy cluster is never refused over a missed scrape or a pod restart while a
cluster minutes old is. `brain-ai-operator recommend` refuses below it with its own exit status,
the advisor reports InsufficientData instead of a recommendation, and autopilot does not act on a
recommendation whose window is shorter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainai_operator import api
from brainai_operator.api import Strategy
from brainai_operator.durations import MIN_EVIDENCE_SECONDS, Window, human_duration, parse_duration
from brainai_operator.promql import Key, Usage
from brainai_operator.quantities import (
    GI,
    MI,
    cores,
    cpu_quantity,
    human_bytes,
    human_cores,
    memory_quantity,
    nbytes,
)
from brainai_operator.strategies import Resolved


def round_cpu(value: float) -> float:
    """Up to a step a person would write: 50m below one core, 250m up to four, 500m above."""
    step = 0.05 if value < 1 else 0.25 if value < 4 else 0.5
    return max(0.1, math.ceil(round(value / step, 6)) * step)


def round_memory(value: float) -> int:
    """Up to a quarter of the power of two below (6.2 GiB → 7 GiB, 7.3 GiB → 8 GiB), at least 128Mi."""
    value = max(float(value), 128 * MI)
    step = max(64 * MI, 2 ** (math.floor(math.log2(value)) - 2))
    return int(math.ceil(value / step) * step)


@dataclass(frozen=True)
class Rules:
    """The knobs of right-sizing; the defaults follow the scaling guide's example and HPA."""

    request_percentile: float = 95.0
    request_headroom: float = 0.2  # over the usage percentile
    cpu_limit_headroom: float = 0.5  # over the peak: CPU throttles rather than fails
    cpu_limit_ratio: float = 2.0  # limit at least this times the request: room for bursts and start-up
    min_cpu_limit: float = 0.25
    memory_limit_headroom: float = 0.25  # over the peak: the kernel kills above the limit
    min_memory_limit: int = 256 * MI
    target_cpu_utilization: float = 0.7  # the HPA's default target
    min_replicas: int = 2  # availability floor, as the scaling guide's cost-optimised HPA
    growth: float = 1.5  # maxReplicas covers the peak plus this much growth
    learn_heavy: float = 0.6  # learn share at or above: learning-focused
    query_heavy: float = 0.2  # learn share at or below: query-focused
    min_rps: float = 0.05  # below this the mix says nothing about the workload
    min_samples: int = 5


DEFAULT_RULES = Rules()


@dataclass(frozen=True)
class Current:
    """What runs now, in numbers: the baseline each recommendation is compared to."""

    strategy: Strategy
    cpu_request: float
    cpu_limit: float
    memory_request: int
    memory_limit: int
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: float = 0.7

    @classmethod
    def of(cls, r: Resolved) -> Current:
        req, lim = r.resources.get("requests", {}), r.resources.get("limits", {})
        hpa = r.autoscaling
        cpu_request = cores(req.get("cpu")) or 0.5
        memory_request = nbytes(req.get("memory")) or GI
        return cls(
            strategy=Strategy(r.strategy),
            cpu_request=cpu_request,
            cpu_limit=cores(lim.get("cpu")) or cpu_request,
            memory_request=memory_request,
            memory_limit=nbytes(lim.get("memory")) or memory_request,
            min_replicas=hpa.min_replicas if hpa else r.replicas,
            max_replicas=hpa.max_replicas if hpa else r.replicas,
            target_cpu_utilization=(hpa.target_cpu_utilization / 100) if hpa else 0.7,
        )


@dataclass(frozen=True)
class Shortfall:
    """Too little evidence to advise on: what the minimum asks for and what the window held."""

    need: str
    have: str
    window_too_short: bool = False  # no wait helps: the window itself is shorter than the minimum

    def __str__(self) -> str:
        return f"need at least {self.need}, have {self.have}"

    def message(self, key: Key, window: Window) -> str:
        """One line naming the cluster and the window, ending in `(need at least X, have Y)`."""
        where = f"{key[0]}/{key[1]}"
        if self.window_too_short:
            return f"insufficient data: a {window.label} window is too short to advise {where} on ({self})"
        return f"insufficient data: too little engine usage for {where} in the last {window.label} ({self})"


def evidence_seconds(usage: Usage, window: Window) -> int:
    """Seconds of the window with data: the steps where an engine pod reported CPU, times the step."""
    return min(window.seconds, usage.samples * window.step)


def shortfall(
    usage: Usage, window: Window, minimum: int = MIN_EVIDENCE_SECONDS, rules: Rules = DEFAULT_RULES
) -> Shortfall | None:
    """Why `usage` is too thin to advise on, or None when it is enough.

    Two floors: `minimum` seconds of data, and `rules.min_samples` steps (what a percentile needs
    at all, which matters for windows so long that each step is many minutes).
    """
    if usage.samples < rules.min_samples:
        return Shortfall(f"{rules.min_samples} samples", str(usage.samples))
    have = evidence_seconds(usage, window)
    if have < minimum:
        return Shortfall(human_duration(minimum), human_duration(have), window.seconds < minimum)
    return None


def window_shortfall(rec: api.Recommendations, minimum: int = MIN_EVIDENCE_SECONDS) -> Shortfall | None:
    """What a finished recommendation lacks, judged from its window alone: the window bounds the data
    it saw, so one shorter than `minimum` is thin whatever it held. The advisor gates the data itself;
    this catches recommendations it did not gate, such as ones kept in status from before it did."""
    try:
        seconds = parse_duration(rec.window)
    except ValueError:
        return Shortfall(human_duration(minimum), f"a window of {rec.window!r}", True)
    if seconds < minimum:
        return Shortfall(human_duration(minimum), human_duration(seconds), True)
    return None


def _finite(values: np.ndarray) -> np.ndarray:
    flat = np.asarray(values, dtype=float).ravel()
    return flat[np.isfinite(flat)]


def _require(values: np.ndarray, what: str) -> np.ndarray:
    """The finite values; none is the caller's mistake (numpy would warn and then fail obscurely)."""
    used = _finite(values)
    if not used.size:
        raise ValueError(f"no {what} samples to recommend from")
    return used


def recommend_cpu(
    cpu: np.ndarray, current: Current, rules: Rules = DEFAULT_RULES
) -> tuple[float, float, str]:
    """Request from a high percentile of per-pod usage plus headroom; limit from the peak plus headroom.

    `cpu` holds per-pod cores (any shape; NaN ignored). Returns (request, limit, reason).
    """
    used = _require(cpu, "CPU")
    average, high, peak = (
        float(np.mean(used)),
        float(np.percentile(used, rules.request_percentile)),
        float(np.max(used)),
    )
    request = round_cpu(high * (1 + rules.request_headroom))
    limit = round_cpu(
        max(peak * (1 + rules.cpu_limit_headroom), request * rules.cpu_limit_ratio, rules.min_cpu_limit)
    )
    verb = "raise" if request > current.cpu_request else "reduce"
    if request == current.cpu_request:
        verb = "keep"
    share = f"{average / current.cpu_request:.0%} of the" if current.cpu_request > 0 else "a"
    reason = (
        f"CPU: currently using {share} "
        f"{human_cores(current.cpu_request)} request on average (p{rules.request_percentile:g} "
        f"{high:.2f}, peak {peak:.2f} cores per pod); {verb} the request "
        + (
            f"at {human_cores(request)}"
            if verb == "keep"
            else f"from {human_cores(current.cpu_request)} to {human_cores(request)}"
        )
        + f", limit {human_cores(limit)}"
    )
    return request, limit, reason


def recommend_memory(
    memory: np.ndarray, current: Current, rules: Rules = DEFAULT_RULES
) -> tuple[int, int, str]:
    """Request from a high percentile of per-pod memory plus headroom; limit from the peak plus headroom
    (memory over the limit kills the pod, so the peak, not an average, decides it)."""
    used = _require(memory, "memory")
    high, peak = float(np.percentile(used, rules.request_percentile)), float(np.max(used))
    request = round_memory(high * (1 + rules.request_headroom))
    limit = max(request, round_memory(max(peak * (1 + rules.memory_limit_headroom), rules.min_memory_limit)))
    reason = (
        f"Memory: peak usage {human_bytes(peak)} per pod "
        f"(p{rules.request_percentile:g} {human_bytes(high)}), "
        f"recommend a {memory_quantity(request)} request and {memory_quantity(limit)} limit "
        f"(currently {memory_quantity(current.memory_request)}/{memory_quantity(current.memory_limit)})"
    )
    return request, limit, reason


def memory_growth(times: np.ndarray, memory_peak: np.ndarray) -> float | None:
    """Bytes per hour the largest pod grows by (least-squares slope), None with too few points.

    Memories accumulate, so a limit that fits today's peak may not fit next week's: the reason
    reports the trend next to the peak.
    """
    t, m = np.asarray(times, float), np.asarray(memory_peak, float)
    ok = np.isfinite(t) & np.isfinite(m)
    if np.sum(ok) < 3 or np.ptp(t[ok]) <= 0:
        return None
    slope = np.polyfit(t[ok] - t[ok][0], m[ok], 1)[0]
    return float(slope * 3600)


def pod_capacity(
    total_rps: np.ndarray, cpu_total: np.ndarray, cpu_request: float, target: float
) -> float | None:
    """Requests per second one pod serves at the HPA's CPU target, from the observed requests per core.

    The median over busy steps resists the odd scrape that caught a burst or a GC pause.
    """
    rps, cpu = np.asarray(total_rps, float), np.asarray(cpu_total, float)
    busy = np.isfinite(rps) & np.isfinite(cpu) & (rps > 0) & (cpu > 1e-3)
    if not np.any(busy):
        return None
    return float(np.median(rps[busy] / cpu[busy])) * cpu_request * target


def recommend_replicas(
    total_rps: np.ndarray,
    cpu_total: np.ndarray,
    cpu_request: float,
    current: Current,
    rules: Rules = DEFAULT_RULES,
) -> tuple[int, int, float | None, str]:
    """minReplicas from the typical (median) demand, maxReplicas from the peak plus growth.

    Demand in pods at each step is the request rate over one pod's capacity, and never less than the
    CPU in use over what pods may use at the HPA's target (covers work that is not requests).
    Returns (min, max, capacity in requests/s per pod, reason).
    """
    target = current.target_cpu_utilization or rules.target_cpu_utilization
    cpu = np.nan_to_num(np.asarray(cpu_total, float))
    if not cpu.size or cpu_request <= 0:
        raise ValueError("no CPU steps, or no CPU request, to size replicas from")
    capacity = pod_capacity(total_rps, cpu_total, cpu_request, target)
    cpu_need = cpu / (cpu_request * target)
    need = cpu_need
    if capacity:
        need = np.maximum(cpu_need, np.nan_to_num(np.asarray(total_rps, float)) / capacity)
    typical, peak = float(np.median(need)), float(np.max(need))
    low = max(rules.min_replicas, math.ceil(round(typical, 6)))
    high = min(1000, max(low, math.ceil(round(peak * rules.growth, 6))))
    rps = _finite(total_rps)
    load = (
        f"{float(np.median(rps)):.1f} req/s typical, {float(np.max(rps)):.1f} at peak; one pod serves "
        f"~{capacity:.1f} req/s at {target:.0%} CPU"
        if capacity and rps.size
        else f"{float(np.median(cpu)):.2f} cores typical, {float(np.max(cpu)):.2f} at peak"
    )
    reason = (
        f"Replicas: {load} → minReplicas {low}, maxReplicas {high} "
        f"(currently {current.min_replicas}-{current.max_replicas})"
    )
    return low, high, capacity, reason


def recommend_strategy(
    learn_rps: np.ndarray, query_rps: np.ndarray, current: Strategy, rules: Rules = DEFAULT_RULES
) -> tuple[Strategy, float, str]:
    """learning-focused when most requests learn, query-focused when nearly all query, else balanced.

    Returns (strategy, learn share, reason). Too little traffic keeps the current strategy.
    """
    learn, query = float(np.nansum(learn_rps)), float(np.nansum(query_rps))
    steps = max(1, len(np.asarray(learn_rps)))
    share = learn / (learn + query) if learn + query > 0 else 0.0
    if (learn + query) / steps < rules.min_rps:
        return current, share, f"Strategy: too little traffic to judge the mix; keep {current}"
    if share >= rules.learn_heavy:
        chosen = Strategy.LEARNING_FOCUSED
    elif share <= rules.query_heavy:
        chosen = Strategy.QUERY_FOCUSED
    else:
        chosen = Strategy.BALANCED
    verb = "keep" if chosen == current else f"switch from {current} to"
    reason = f"Strategy: {share:.0%} of API requests learn, {1 - share:.0%} query; {verb} {chosen}"
    return chosen, share, reason


def recommend(
    usage: Usage, current: Current, window: Window, generated_at: str, rules: Rules = DEFAULT_RULES
) -> api.Recommendations | None:
    """The whole recommendation for one cluster, or None when the window holds too little data.

    It does not apply the evidence minimum: callers check `shortfall` first and say why they refuse.
    """
    if usage.samples < rules.min_samples or not _finite(usage.cpu).size or not _finite(usage.memory).size:
        return None
    cpu_request, cpu_limit, cpu_reason = recommend_cpu(usage.cpu, current, rules)
    mem_request, mem_limit, mem_reason = recommend_memory(usage.memory, current, rules)
    growth = memory_growth(usage.times, usage.memory_peak)
    if growth is not None and abs(growth) >= MI:
        trend = "grows" if growth > 0 else "shrinks"
        mem_reason += f"; the largest pod {trend} by {human_bytes(abs(growth))} an hour"
    low, high, capacity, replica_reason = recommend_replicas(
        usage.total_rps, usage.cpu_total, cpu_request, current, rules
    )
    strategy, share, strategy_reason = recommend_strategy(
        usage.learn_rps, usage.query_rps, current.strategy, rules
    )
    latency = _finite(usage.latency_p95)
    reasons = [cpu_reason, mem_reason, replica_reason, strategy_reason]
    if latency.size:
        reasons.append(f"Latency: p95 {float(np.percentile(latency, 95)):.3f}s over the window")
    replicas = usage.replicas
    rps = np.nan_to_num(usage.total_rps)
    cpu = _finite(usage.cpu)
    memory = _finite(usage.memory)
    return api.Recommendations(
        generated_at=generated_at,
        window=window.label,
        strategy=strategy,
        resources=api.RecommendedResources(
            requests=api.ResourceList(cpu=cpu_quantity(cpu_request), memory=memory_quantity(mem_request)),
            limits=api.ResourceList(cpu=cpu_quantity(cpu_limit), memory=memory_quantity(mem_limit)),
        ),
        min_replicas=low,
        max_replicas=high,
        reasons=reasons,
        evidence=api.Evidence(
            samples=usage.samples,
            cpu_average_cores=_round(np.mean(cpu)),
            cpu_p95_cores=_round(np.percentile(cpu, rules.request_percentile)),
            cpu_peak_cores=_round(np.max(cpu)),
            memory_p95_bytes=int(np.percentile(memory, rules.request_percentile)),
            memory_peak_bytes=int(np.max(memory)),
            memory_growth_bytes_per_hour=int(growth) if growth is not None else None,
            request_rate_average=_round(np.mean(rps)),
            request_rate_peak=_round(np.max(rps)),
            learn_share=_round(share),
            latency_p95_seconds=_round(np.percentile(latency, 95)) if latency.size else None,
            replicas_average=_round(np.mean(replicas[replicas > 0])),  # samples > 0: never empty
            replicas_peak=int(np.max(replicas)),
            pod_capacity_rps=_round(capacity) if capacity else None,
        ),
    )


def _round(value: Any) -> float:
    return round(float(value), 4)
