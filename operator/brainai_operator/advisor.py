"""Right-sizing advice from the engines' Prometheus metrics: the PromQL, the split of batched answers,
and the numpy arithmetic that turns usage into recommendations.

Everything here is pure (no network, no clock): `prometheus.py` runs the queries and the schedule, so
each rule below can be tested with synthetic arrays. One range query per metric covers every cluster
that shares a Prometheus: results carry `namespace` and `service` labels and are split here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kubernetes.utils.quantity import parse_quantity

from brainai_operator import api
from brainai_operator.api import Strategy
from brainai_operator.resources.common import engine_name
from brainai_operator.strategies import Resolved

Key = tuple[str, str]  # (namespace, cluster name)

API_PREFIX = "/api/"
LEARN_PREFIX = "/api/v1/learn"
QUERY_PREFIXES = ("/api/v1/memory", "/api/v1/concepts")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Deployment pods are named <deployment>-<pod-template-hash>-<suffix>.
POD_SUFFIX = "-[a-z0-9]+-[a-z0-9]+"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
GI = 1024**3
MI = 1024**2


# -- durations ---------------------------------------------------------------------------------------
def parse_duration(text: str) -> int:
    """Seconds in a Prometheus-style duration such as 90s, 5m, 1h or 2d."""
    found = re.fullmatch(r"([0-9]+)([smhd])", text.strip())
    if not found:
        raise ValueError(f"not a duration (use e.g. 30m, 1h, 1d): {text!r}")
    return int(found.group(1)) * _UNITS[found.group(2)]


def format_duration(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{int(seconds)}s"


@dataclass(frozen=True)
class Window:
    """What history to read: `seconds` back from now, one point per `step`, rates over `rate`."""

    seconds: int
    step: int
    rate: int

    @classmethod
    def of(cls, window: str | int, step: int | None = None, rate: int | None = None) -> Window:
        """~120 points per window; a rate range of two steps and at least a minute, so a 30 s scrape
        interval still leaves several samples per rate (windows under 4 minutes use a quarter of it)."""
        seconds = parse_duration(window) if isinstance(window, str) else int(window)
        step = step or max(1, seconds // 120)
        return cls(seconds, step, rate or max(2 * step, min(60, seconds // 4)))

    @property
    def label(self) -> str:
        return format_duration(self.seconds)


# -- queries -----------------------------------------------------------------------------------------
def _alternatives(values: Iterable[str]) -> str:
    # PromQL strings take Go escapes, so each regex backslash is written twice.
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in sorted(set(values)))


def usage_queries(clusters: Sequence[Key], window: Window) -> dict[str, str]:
    """One range query per metric for all `clusters`, each answered by (namespace, service[, ...]).

    CPU and memory prefer cAdvisor's container series (what the kubelet enforces limits on) and fall
    back per pod to the engine's own process metrics: `or` keeps a right-hand series only where no
    left-hand one has the same labels, and label_replace gives cAdvisor series the Service's name.
    """
    namespaces = _alternatives(ns for ns, _ in clusters)
    services = _alternatives(engine_name(name) for _, name in clusters)
    engine = f'namespace=~"{namespaces}", service=~"{services}"'
    pods = f'namespace=~"{namespaces}", pod=~"({services}){POD_SUFFIX}", container="engine"'
    api_only = f'{engine}, route=~"{API_PREFIX}.*"'
    r = f"{window.rate}s"

    def from_pod(expr: str) -> str:
        return f'label_replace({expr}, "service", "$1", "pod", "(.+){POD_SUFFIX}")'

    return {
        "cpu": (
            from_pod(f"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[{r}]))")
            + f" or sum by (namespace, service, pod) (rate(process_cpu_seconds_total{{{engine}}}[{r}]))"
        ),
        "memory": (
            from_pod(f"max by (namespace, pod) (container_memory_working_set_bytes{{{pods}}})")
            + f" or max by (namespace, service, pod) (process_resident_memory_bytes{{{engine}}})"
        ),
        "requests": (
            "sum by (namespace, service, method, route) "
            f"(rate(brain_ai_http_requests_total{{{api_only}}}[{r}]))"
        ),
        "latency": (
            "histogram_quantile(0.95, sum by (namespace, service, le) "
            f"(rate(brain_ai_http_request_duration_seconds_bucket{{{api_only}}}[{r}])))"
        ),
    }


def classify_route(method: str, route: str) -> str:
    """learn (writes new knowledge), query (reads it) or other."""
    if route.startswith(LEARN_PREFIX):
        return "learn"
    if route.startswith(QUERY_PREFIXES):
        return "learn" if method in WRITE_METHODS else "query"
    return "other"


# -- splitting batched answers -------------------------------------------------------------------------
@dataclass
class Usage:
    """One cluster over the window. Per-pod arrays are (pods, steps) with NaN where a pod had no sample."""

    times: np.ndarray
    cpu: np.ndarray
    memory: np.ndarray
    learn_rps: np.ndarray
    query_rps: np.ndarray
    other_rps: np.ndarray
    latency_p95: np.ndarray
    pods: list[str] = field(default_factory=list)

    @property
    def replicas(self) -> np.ndarray:
        """Pods reporting CPU at each step."""
        return np.sum(~np.isnan(self.cpu), axis=0) if self.cpu.size else np.zeros(len(self.times))

    @property
    def total_rps(self) -> np.ndarray:
        return self.learn_rps + self.query_rps + self.other_rps

    @property
    def cpu_total(self) -> np.ndarray:
        if not self.cpu.size:
            return np.zeros(len(self.times))
        return np.nansum(self.cpu, axis=0)

    @property
    def memory_peak(self) -> np.ndarray:
        """Largest pod's memory at each step (NaN where none reported)."""
        if not self.memory.size or np.all(np.isnan(self.memory)):
            return np.full(len(self.times), np.nan)
        with np.errstate(all="ignore"):
            return np.where(np.all(np.isnan(self.memory), axis=0), np.nan, np.nanmax(self.memory, axis=0))

    @property
    def samples(self) -> int:
        return int(np.sum(self.replicas > 0))


def _series(values: list[list[Any]], start: float, step: int, steps: int) -> np.ndarray:
    out = np.full(steps, np.nan)
    for ts, raw in values:
        i = round((float(ts) - start) / step)
        if 0 <= i < steps:
            value = float(raw)
            out[i] = value if math.isfinite(value) else np.nan
    return out


def split_usage(
    results: dict[str, list[dict[str, Any]]], clusters: Sequence[Key], start: float, end: float, step: int
) -> dict[Key, Usage]:
    """Turn the batched range-query answers into one `Usage` per cluster (clusters with no series get
    empty arrays: the caller reports NoData)."""
    steps = round((end - start) / step) + 1
    times = start + step * np.arange(steps)
    by_service = {(ns, engine_name(name)): (ns, name) for ns, name in clusters}
    pods: dict[Key, dict[str, dict[str, np.ndarray]]] = {k: {"cpu": {}, "memory": {}} for k in clusters}
    rps = {k: {c: np.zeros(steps) for c in ("learn", "query", "other")} for k in clusters}
    latency = {k: np.full(steps, np.nan) for k in clusters}

    for metric, series_list in results.items():
        for series in series_list:
            labels = series.get("metric", {})
            key = by_service.get((labels.get("namespace", ""), labels.get("service", "")))
            if key is None:
                continue  # same names in a namespace outside this batch
            values = _series(series.get("values", []), start, step, steps)
            if metric in ("cpu", "memory"):
                pods[key][metric][labels.get("pod", "")] = values
            elif metric == "requests":
                kind = classify_route(labels.get("method", ""), labels.get("route", ""))
                rps[key][kind] += np.nan_to_num(values)
            elif metric == "latency":
                latency[key] = values

    usage = {}
    for key in clusters:
        names = sorted(set(pods[key]["cpu"]) | set(pods[key]["memory"]))

        def matrix(metric: str, names: list[str] = names, key: Key = key) -> np.ndarray:
            rows = [pods[key][metric].get(p, np.full(steps, np.nan)) for p in names]
            return np.vstack(rows) if rows else np.empty((0, steps))

        usage[key] = Usage(
            times=times,
            cpu=matrix("cpu"),
            memory=matrix("memory"),
            learn_rps=rps[key]["learn"],
            query_rps=rps[key]["query"],
            other_rps=rps[key]["other"],
            latency_p95=latency[key],
            pods=names,
        )
    return usage


# -- advice --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Advice:
    """The advisor's latest word on one cluster, handed to the reconcile that writes status.

    configured=False: no Prometheus applies to the cluster, so it shows no recommendation at all.
    """

    configured: bool
    available: bool = False
    reason: str = ""
    message: str = ""
    recommendation: api.Recommendations | None = None


NOT_CONFIGURED = Advice(configured=False)


# -- quantities ----------------------------------------------------------------------------------------
def cores(quantity: Any) -> float | None:
    return None if quantity is None else float(parse_quantity(quantity))


def nbytes(quantity: Any) -> int | None:
    return None if quantity is None else int(parse_quantity(quantity))


def round_cpu(value: float) -> float:
    """Up to a step a person would write: 50m below one core, 250m up to four, 500m above."""
    step = 0.05 if value < 1 else 0.25 if value < 4 else 0.5
    return max(0.1, math.ceil(round(value / step, 6)) * step)


def round_memory(value: float) -> int:
    """Up to a quarter of the power of two below (6.2 GiB → 7 GiB, 7.3 GiB → 8 GiB), at least 128Mi."""
    value = max(float(value), 128 * MI)
    step = max(64 * MI, 2 ** (math.floor(math.log2(value)) - 2))
    return int(math.ceil(value / step) * step)


def cpu_quantity(value: float) -> str:
    millis = round(value * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(value: float) -> str:
    value = int(value)
    if value % GI == 0:
        return f"{value // GI}Gi"
    return f"{math.ceil(value / MI)}Mi"


def human_cores(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") + (" core" if value == 1 else " cores")


def human_bytes(value: float) -> str:
    return f"{value / GI:.1f}GiB" if value >= GI else f"{value / MI:.0f}MiB"


# -- right-sizing (pure numpy) -------------------------------------------------------------------------
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


def _finite(values: np.ndarray) -> np.ndarray:
    flat = np.asarray(values, dtype=float).ravel()
    return flat[np.isfinite(flat)]


def recommend_cpu(
    cpu: np.ndarray, current: Current, rules: Rules = DEFAULT_RULES
) -> tuple[float, float, str]:
    """Request from a high percentile of per-pod usage plus headroom; limit from the peak plus headroom.

    `cpu` holds per-pod cores (any shape; NaN ignored). Returns (request, limit, reason).
    """
    used = _finite(cpu)
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
    reason = (
        f"CPU: currently using {average / current.cpu_request:.0%} of the "
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
    used = _finite(memory)
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
    capacity = pod_capacity(total_rps, cpu_total, cpu_request, target)
    cpu_need = np.nan_to_num(np.asarray(cpu_total, float)) / (cpu_request * target)
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
        else f"{float(np.median(cpu_total)):.2f} cores typical, {float(np.max(cpu_total)):.2f} at peak"
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
    """The whole recommendation for one cluster, or None when the window holds too little data."""
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
            replicas_average=_round(np.mean(replicas[replicas > 0])),
            replicas_peak=int(np.max(replicas)),
            pod_capacity_rps=_round(capacity) if capacity else None,
        ),
    )


def _round(value: Any) -> float:
    return round(float(value), 4)


# -- terminal report -----------------------------------------------------------------------------------
BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: np.ndarray, width: int = 60) -> str:
    """Unicode bars scaled between 0 and the maximum, averaged into at most `width` columns."""
    data = np.asarray(values, float)
    if data.size == 0:
        return ""
    columns = np.array_split(data, min(width, data.size))
    means = [float(np.nanmean(c)) if np.any(np.isfinite(c)) else math.nan for c in columns]
    top = max((m for m in means if math.isfinite(m)), default=0.0)
    out = []
    for m in means:
        if not math.isfinite(m):
            out.append(" ")
        else:
            out.append(BARS[min(len(BARS) - 1, int(m / top * (len(BARS) - 1) + 0.5))] if top > 0 else BARS[0])
    return "".join(out)


def format_report(
    key: Key, current: Current, rec: api.Recommendations, usage: Usage | None = None, width: int = 60
) -> str:
    """What `brain-ai-operator recommend` prints: current vs recommended, reasons, evidence, charts."""
    res = rec.resources
    rows = [
        ("strategy", str(current.strategy), str(rec.strategy)),
        ("cpu request", cpu_quantity(current.cpu_request), str(res.requests.cpu)),
        ("cpu limit", cpu_quantity(current.cpu_limit), str(res.limits.cpu)),
        ("memory request", memory_quantity(current.memory_request), str(res.requests.memory)),
        ("memory limit", memory_quantity(current.memory_limit), str(res.limits.memory)),
        ("minReplicas", str(current.min_replicas), str(rec.min_replicas)),
        ("maxReplicas", str(current.max_replicas), str(rec.max_replicas)),
    ]
    lines = [f"BrainAICluster {key[0]}/{key[1]}: recommendations over the last {rec.window}", ""]
    lines.append(f"  {'setting':<16}{'current':>12}{'recommended':>14}")
    for name, now, new in rows:
        mark = "" if now == new else "  *"
        lines.append(f"  {name:<16}{now:>12}{new:>14}{mark}")
    lines += ["", "Reasons:", *(f"  - {r}" for r in rec.reasons), "", "Evidence:"]
    for name, value in rec.evidence.wire().items():
        lines.append(f"  {name:<22}{value}")
    if usage is not None and usage.times.size:
        cpu = usage.cpu_total
        memory = usage.memory_peak
        rps = usage.total_rps
        lines += ["", f"Over the window ({rec.window}, {len(usage.times)} points):"]
        charts = (
            ("cpu (cores)", cpu, f"max {np.nanmax(cpu):.2f}" if np.any(np.isfinite(cpu)) else ""),
            (
                "memory (max pod)",
                memory,
                f"max {human_bytes(np.nanmax(memory))}" if np.any(np.isfinite(memory)) else "",
            ),
            ("requests/s", rps, f"max {np.nanmax(rps):.1f}" if np.any(np.isfinite(rps)) else ""),
        )
        for name, values, top in charts:
            lines.append(f"  {name:<17}{sparkline(values, width)}  {top}")
    return "\n".join(lines) + "\n"
