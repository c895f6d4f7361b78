from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources.autoscaling import build_engine_hpa
from brainai_operator.strategies import resolve


def hpa(**spec):
    shared = BrainAIClusterSpec.model_validate({"postgres": {"enabled": True}, **spec})
    return build_engine_hpa("demo", "ns", resolve(shared).autoscaling)


def test_seed_hpa() -> None:
    manifest = hpa()
    assert manifest["apiVersion"] == "autoscaling/v2"
    assert manifest["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "demo-engine",
    }
    assert manifest["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        },
        {
            "type": "Resource",
            "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}},
        },
    ]
    assert manifest["spec"]["behavior"]["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 100, "periodSeconds": 15}
    ]


def test_cost_optimized_has_cpu_only_and_slow_scale_down() -> None:
    manifest = hpa(autoscaling={"preset": "cost-optimized"})
    assert [m["resource"]["name"] for m in manifest["spec"]["metrics"]] == ["cpu"]
    assert manifest["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert (manifest["spec"]["minReplicas"], manifest["spec"]["maxReplicas"]) == (2, 10)
