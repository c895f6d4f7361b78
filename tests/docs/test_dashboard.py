"""The Grafana dashboard and docs/metrics.md: valid JSON and PromQL, naming only metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import anyio
import prometheus_client
import pytest
import yaml
from prometheus_client.registry import CollectorRegistry

from brainai_engine.api.metrics import Metrics
from brainai_engine.models import EngineStats
from brainai_operator import metrics as operator_metrics  # noqa: F401 - registers the operator's metrics
from brainai_operator.durations import Window
from brainai_operator.promql import usage_queries

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "brain-ai-dashboard.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"

# cAdvisor (kubelet) and kube-state-metrics: present in every kube-prometheus install.
STANDARD = {
    "up",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_container_resource_requests",
    "kube_pod_container_resource_limits",
    "kube_deployment_status_replicas_available",
    "kube_deployment_spec_replicas",
}
PROMQL_WORDS = {
    # functions
    "abs", "absent", "avg_over_time", "ceil", "changes", "clamp_max", "clamp_min", "count_over_time",
    "delta", "deriv", "floor", "histogram_quantile", "idelta", "increase", "irate", "label_replace",
    "label_values", "max_over_time", "min_over_time", "predict_linear", "quantile_over_time", "rate",
    "resets", "round", "scalar", "sort", "sort_desc", "sum_over_time", "time", "timestamp", "vector",
    # aggregations and keywords
    "sum", "avg", "min", "max", "count", "count_values", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
}  # fmt: skip
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "info": ("_info",),
    "unknown": ("",),
}


def exported(registry: CollectorRegistry, prefix: str = "") -> set[str]:
    names = set()
    for family in registry.collect():
        if family.name.startswith(prefix):
            names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def engine_names() -> set[str]:
    stats = EngineStats(memories=1, working_memories=1, concepts=1, relationships=1, segments=1, storage="x")
    m = Metrics("test", lambda: stats)
    m.track_in_flight(lambda: 0, 10)
    m.track_writers(anyio.CapacityLimiter(2))
    return exported(m.registry)


def known_names() -> set[str]:
    return engine_names() | exported(prometheus_client.REGISTRY, "brain_ai_operator_") | STANDARD


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: what is left after strings, matchers, ranges, grouping
    clauses, numbers and the language's own words are removed."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"label_values\((.*),\s*\w+\s*\)", r"\1", expr)  # Grafana: label_values(series, label)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", "", expr)
    return {t for t in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if t not in PROMQL_WORDS}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> list[str]:
    board = dashboard()
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_dashboard_is_grafana_json() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 30
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in board["panels"]}
    assert {
        "Request rate by route",
        "p95 latency by route",
        "Error rate",
        "Memories and concepts",
        "Learning throughput",
        "CPU per pod",
        "Memory per pod",
        "Reconciles",
    } <= titles
    for p in board["panels"]:
        if p["type"] != "row":
            assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]


def test_dashboard_uses_only_metrics_that_exist() -> None:
    known = known_names()
    used = set().union(*(metric_names(e) for e in dashboard_queries()))
    assert used, "no metric found: the extraction is broken"
    assert used <= known, f"unknown metrics: {sorted(used - known)}"
    assert "brain_ai_http_requests_total" in used and "brain_ai_operator_reconciles_total" in used


def test_advisor_queries_use_only_metrics_that_exist() -> None:
    queries = usage_queries([("ns", "c")], Window.of("1h"))
    used = set().union(*(metric_names(q) for q in queries.values()))
    assert used <= known_names(), sorted(used - known_names())


def test_metrics_doc_lists_every_exported_metric() -> None:
    doc = METRICS_DOC.read_text()
    families = {
        f.name
        for f in [*Metrics("x", None).registry.collect(), *prometheus_client.REGISTRY.collect()]
        if f.name.startswith("brain_ai_")
    }
    engine = engine_names()
    for name in sorted(families | {n for n in engine if n.startswith("brain_ai_")}):
        base = re.sub(r"_(total|bucket|count|sum|created|info)$", "", name)
        assert base in doc, f"{name} is not documented in docs/metrics.md"


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is missing (Debian package prometheus)")
def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule (Grafana's variables filled in)."""
    rules = []
    for i, expr in enumerate(e for e in dashboard_queries() if not e.startswith("label_values")):
        concrete = expr.replace("$__rate_interval", "5m").replace("$namespace", "prod")
        rules.append({"record": f"dashboard:query{i}", "expr": concrete.replace("$service", "brain-engine")})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
