"""The engine tier's HorizontalPodAutoscaler (autoscaling/v2)."""

from __future__ import annotations

from typing import Any

from brainai_operator.resources.common import engine_name, metadata
from brainai_operator.strategies import HPASettings, ScalingRule


def _rule(rule: ScalingRule) -> dict[str, Any]:
    return {
        "stabilizationWindowSeconds": rule.stabilization_window_seconds,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": rule.percent, "periodSeconds": rule.period_seconds}],
    }


def _utilization(resource: str, percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": percent}},
    }


def build_engine_hpa(cluster: str, namespace: str, hpa: HPASettings) -> dict[str, Any]:
    metrics = [_utilization("cpu", hpa.target_cpu_utilization)]
    if hpa.target_memory_utilization:
        metrics.append(_utilization("memory", hpa.target_memory_utilization))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(engine_name(cluster), namespace, cluster, "engine"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": engine_name(cluster)},
            "minReplicas": hpa.min_replicas,
            "maxReplicas": hpa.max_replicas,
            "metrics": metrics,
            "behavior": {"scaleUp": _rule(hpa.scale_up), "scaleDown": _rule(hpa.scale_down)},
        },
    }
