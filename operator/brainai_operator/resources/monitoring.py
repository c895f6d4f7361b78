"""ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1) for one BrainAICluster.

The scaling guide's three alerts, in metric names that exist: the engine's own histogram for latency, and
cAdvisor plus kube-state-metrics (both part of any kube-prometheus install) for CPU and memory
against the pods' limits.
"""

from __future__ import annotations

from typing import Any

from brainai_operator.api import AlertThresholds, MonitoringSpec
from brainai_operator.resources.common import engine_name, metadata, selector_labels

API_VERSION = "monitoring.coreos.com/v1"


def _meta(cluster: str, namespace: str, monitoring: MonitoringSpec) -> dict[str, Any]:
    meta = metadata(engine_name(cluster), namespace, cluster, "engine")
    meta["labels"] = {**(monitoring.labels or {}), **meta["labels"]}
    return meta


def build_service_monitor(cluster: str, namespace: str, monitoring: MonitoringSpec) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _meta(cluster, namespace, monitoring),
        "spec": {
            "selector": {"matchLabels": selector_labels(cluster, "engine")},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [
                {"port": "http", "path": "/metrics", "interval": monitoring.interval, "scrapeTimeout": "10s"}
            ],
        },
    }


def _alert(
    name: str, expr: str, for_: str, cluster: str, summary: str, description: str, runbook: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": "warning", "brainai_cluster": cluster},
        "annotations": {"summary": summary, "description": description, "runbook": runbook},
    }


def alert_rules(cluster: str, namespace: str, limits: AlertThresholds) -> list[dict[str, Any]]:
    """The scaling guide's alerts for one cluster's engine pods."""
    pods = f'namespace="{namespace}", pod=~"{engine_name(cluster)}-.*", container="engine"'
    service = f'namespace="{namespace}", service="{engine_name(cluster)}"'
    by_pod = "sum by (namespace, pod)"
    cpu = (
        f"100 * {by_pod} (rate(container_cpu_usage_seconds_total{{{pods}}}[5m]))"
        f' / {by_pod} (kube_pod_container_resource_limits{{{pods}, resource="cpu"}}) > {limits.cpu_percent}'
    )
    memory = (
        f"100 * {by_pod} (container_memory_working_set_bytes{{{pods}}})"
        f' / {by_pod} (kube_pod_container_resource_limits{{{pods}, resource="memory"}})'
        f" > {limits.memory_percent}"
    )
    latency = (
        "histogram_quantile(0.95, sum by (le, namespace, service) "
        f"(rate(brain_ai_http_request_duration_seconds_bucket{{{service}}}[5m])))"
        f" > {limits.p95_latency_seconds}"
    )
    pod = "Engine pod {{ $labels.pod }} of " + cluster
    return [
        _alert(
            "HighCPUUsage",
            cpu,
            "5m",
            cluster,
            "High CPU usage detected",
            f"{pod} uses {{{{ $value | humanize }}}}% of its CPU limit (threshold {limits.cpu_percent}%).",
            "If the HPA is at maxReplicas, raise spec.autoscaling.maxReplicas or "
            "spec.engine.resources.limits.cpu; if it does not scale, `kubectl describe hpa` shows missing "
            "metrics. Learning-heavy load: consider strategy learning-focused.",
        ),
        _alert(
            "HighMemoryUsage",
            memory,
            "5m",
            cluster,
            "High memory usage detected",
            f"{pod} uses {{{{ $value | humanize }}}}% of its memory limit "
            f"(threshold {limits.memory_percent}%).",
            "Memory grows with stored memories and the working set. Raise "
            "spec.engine.resources.limits.memory, lower engine config memory.working_memory_size or "
            "memory.cache_size_mb, or let more replicas share the load.",
        ),
        _alert(
            "SlowResponseTime",
            latency,
            "2m",
            cluster,
            "Slow API response times",
            f"95th percentile latency of {cluster} is {{{{ $value | humanizeDuration }}}} "
            f"(threshold {limits.p95_latency_seconds}s).",
            "Check brain_ai_http_request_duration_seconds by route: slow /learn means ingest pressure "
            "(strategy learning-focused, more learning workers); slow searches mean query pressure "
            "(strategy query-focused, more replicas or read replicas).",
        ),
    ]


def rule_groups(cluster: str, namespace: str, monitoring: MonitoringSpec) -> list[dict[str, Any]]:
    return [
        {
            "name": "brain-ai.rules",
            "rules": alert_rules(cluster, namespace, monitoring.alerts or AlertThresholds()),
        }
    ]


def build_prometheus_rule(cluster: str, namespace: str, monitoring: MonitoringSpec) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": _meta(cluster, namespace, monitoring),
        "spec": {"groups": rule_groups(cluster, namespace, monitoring)},
    }
