"""Operator metrics, served on their own port for Prometheus."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("brain_ai_operator_reconciles_total", "Reconcile passes, by result.", ["result"])
RECONCILE_DURATION = Histogram(
    "brain_ai_operator_reconcile_duration_seconds",
    "Duration of one pass.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge("brain_ai_operator_queue_depth", "BrainAIClusters waiting for a reconcile.")
CLUSTERS_BY_PHASE = Gauge("brain_ai_operator_clusters", "BrainAIClusters last seen in each phase.", ["phase"])
LEADER = Gauge("brain_ai_operator_leader", "1 while this replica holds the leader lease.")
ADVISOR_RUNS = Counter(
    "brain_ai_operator_advisor_runs_total",
    "Advisor passes (one batch of Prometheus queries per Prometheus), by result.",
    ["result"],
)
ADVISOR_DURATION = Histogram(
    "brain_ai_operator_advisor_duration_seconds",
    "Duration of one advisor pass over every BrainAICluster.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
API_REQUESTS = Counter(
    "brain_ai_operator_api_requests_total",
    "Requests the operator sent to the Kubernetes API server, by verb (watch: one per watch opened).",
    ["verb"],
)
SKIPPED_APPLIES = Counter(
    "brain_ai_operator_skipped_applies_total",
    "Children not applied because the cached object already held every value the apply would send.",
)
TRIGGERS = Counter(
    "brain_ai_operator_triggers_total",
    "Reasons a BrainAICluster was queued for a pass: a relevant change of it or a child, a retry, a resync.",
    ["reason"],
)
