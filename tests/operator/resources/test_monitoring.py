"""Monitoring objects, and the alert rules checked and unit-tested by the real promtool."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources.cluster import build_desired
from brainai_operator.resources.monitoring import rule_groups
from brainai_operator.strategies import resolve

PROMTOOL = shutil.which("promtool")
POD = "Engine pod brain-engine-abc of brain"


@pytest.fixture
def promtool() -> str:
    assert PROMTOOL, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    return PROMTOOL


def spec(**monitoring: Any) -> BrainAIClusterSpec:
    return BrainAIClusterSpec.model_validate({"monitoring": {"enabled": True, **monitoring}})


def test_objects_only_where_the_crds_exist() -> None:
    r = resolve(spec(labels={"release": "prom"}))
    kinds = {o["kind"] for o in build_desired("c", "ns", r, monitoring_crds=True)}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    assert not {"ServiceMonitor", "PrometheusRule"} & {o["kind"] for o in build_desired("c", "ns", r)}
    monitor = next(
        o for o in build_desired("c", "ns", r, monitoring_crds=True) if o["kind"] == "ServiceMonitor"
    )
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0] == {
        "port": "http",
        "path": "/metrics",
        "interval": "30s",
        "scrapeTimeout": "10s",
    }


def test_seed_alerts_are_present() -> None:
    (group,) = rule_groups("c", "ns", spec().monitoring)
    assert group["name"] == "brain-ai.rules"
    assert {r["alert"]: r["for"] for r in group["rules"]} == {
        "HighCPUUsage": "5m",
        "HighMemoryUsage": "5m",
        "SlowResponseTime": "2m",
    }
    assert all(r["annotations"]["runbook"] for r in group["rules"])


def write_rules(tmp_path: Path, **monitoring: Any) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups("brain", "prod", spec(**monitoring).monitoring)}))
    return path


def test_promtool_checks_the_rules(tmp_path: Path, promtool: str) -> None:
    out = subprocess.run(
        [promtool, "check", "rules", str(write_rules(tmp_path))], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 3 rules found" in out.stdout


def test_alerts_fire_on_matching_series_and_not_otherwise(tmp_path: Path, promtool: str) -> None:
    """promtool's rule unit tests: synthetic series in, which alerts fire out."""
    rules = write_rules(tmp_path, alerts={"cpuPercent": 80, "memoryPercent": 85, "p95LatencySeconds": 1.0})
    static = {
        r["alert"]: {"summary": r["annotations"]["summary"], "runbook": r["annotations"]["runbook"]}
        for r in yaml.safe_load(rules.read_text())["groups"][0]["rules"]
    }

    def fired(alert: str, labels: dict[str, str], description: str) -> dict[str, Any]:
        """At 12m, `alert` fires once with these labels and this rendered description."""
        expected = {"severity": "warning", "brainai_cluster": "brain", "namespace": "prod", **labels}
        return {
            "eval_time": "12m",
            "alertname": alert,
            "exp_alerts": [
                {"exp_labels": expected, "exp_annotations": {**static[alert], "description": description}}
            ],
        }

    pod = 'namespace="prod", pod="brain-engine-abc", container="engine"'
    quiet = 'namespace="prod", pod="brain-engine-xyz", container="engine"'
    service = 'namespace="prod", service="brain-engine"'
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # 0.9 cores of a 1-core limit on one pod; 0.3 on the other.
                    {"series": f"container_cpu_usage_seconds_total{{{pod}}}", "values": "0+54x20"},
                    {"series": f"container_cpu_usage_seconds_total{{{quiet}}}", "values": "0+18x20"},
                    {
                        "series": f'kube_pod_container_resource_limits{{{pod}, resource="cpu"}}',
                        "values": "1x20",
                    },
                    {
                        "series": f'kube_pod_container_resource_limits{{{quiet}, resource="cpu"}}',
                        "values": "1x20",
                    },
                    # 1.8 GiB of a 2 GiB limit (90%).
                    {"series": f"container_memory_working_set_bytes{{{pod}}}", "values": "1932735283x20"},
                    {
                        "series": f'kube_pod_container_resource_limits{{{pod}, resource="memory"}}',
                        "values": "2147483648x20",
                    },
                    # Every request takes 1-2.5 s.
                    {
                        "series": f'brain_ai_http_request_duration_seconds_bucket{{{service}, le="1"}}',
                        "values": "0x20",
                    },
                    {
                        "series": f'brain_ai_http_request_duration_seconds_bucket{{{service}, le="2.5"}}',
                        "values": "0+60x20",
                    },
                    {
                        "series": f'brain_ai_http_request_duration_seconds_bucket{{{service}, le="+Inf"}}',
                        "values": "0+60x20",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "HighCPUUsage", "exp_alerts": []},  # not for 5m yet
                    fired(
                        "HighCPUUsage",
                        {"pod": "brain-engine-abc"},
                        f"{POD} uses 90% of its CPU limit (threshold 80%).",
                    ),
                    fired(
                        "HighMemoryUsage",
                        {"pod": "brain-engine-abc"},
                        f"{POD} uses 90% of its memory limit (threshold 85%).",
                    ),
                    fired(
                        "SlowResponseTime",
                        {"service": "brain-engine"},
                        "95th percentile latency of brain is 2.425s (threshold 1.0s).",
                    ),
                ],
            }
        ],
    }
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests))
    out = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
