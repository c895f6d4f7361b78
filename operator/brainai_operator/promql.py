"""The PromQL the advisor sends and the per-cluster split of its batched answers.

Both halves keep one contract: every query groups by `namespace` and `service` (and `pod` where
per-pod), and the split reads those labels back. So one range query per metric covers every cluster
that shares a Prometheus, however many there are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainai_operator.durations import Window
from brainai_operator.resources.common import engine_name

Key = tuple[str, str]  # (namespace, cluster name)

API_PREFIX = "/api/"
LEARN_PREFIX = "/api/v1/learn"
QUERY_PREFIXES = ("/api/v1/memory", "/api/v1/concepts")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Deployment pods are named <deployment>-<pod-template-hash>-<suffix>.
POD_SUFFIX = "-[a-z0-9]+-[a-z0-9]+"


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
        """Largest pod's memory at each step (NaN where none reported).

        fmax skips NaN and yields NaN only where every pod lacks a sample, which a young cluster's
        early steps do; nanmax would warn about each such step.
        """
        if not self.memory.size:
            return np.full(len(self.times), np.nan)
        peak: np.ndarray = np.fmax.reduce(self.memory, axis=0)
        return peak

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
