import pytest

from brainai_common.engine_config import ConfigError
from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.strategies import resolve


def spec(**fields) -> BrainAIClusterSpec:
    """A cluster on a shared store (the production shape), unless `postgres` says otherwise."""
    return BrainAIClusterSpec.model_validate({"postgres": {"enabled": True}, **fields})


def test_balanced_is_the_seed_production_shape() -> None:
    r = resolve(spec())
    assert r.strategy == "balanced"
    assert r.resources == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    hpa = r.autoscaling
    assert (
        hpa.min_replicas,
        hpa.max_replicas,
        hpa.target_cpu_utilization,
        hpa.target_memory_utilization,
    ) == (3, 20, 70, 80)
    assert (hpa.scale_up.percent, hpa.scale_up.period_seconds, hpa.scale_up.stabilization_window_seconds) == (
        100,
        15,
        60,
    )
    assert (
        hpa.scale_down.percent,
        hpa.scale_down.period_seconds,
        hpa.scale_down.stabilization_window_seconds,
    ) == (10, 60, 300)
    assert r.engine_config == {"learning": {"workers": 8}}


def test_learning_focused_uses_the_seed_numbers() -> None:
    r = resolve(spec(strategy="learning-focused"))
    assert r.engine_config["learning"] == {"workers": 16, "batch_size": 5000}
    assert r.engine_config["memory"]["consolidation_frequency"] == "hourly"
    assert r.engine_config["concepts"]["extraction_threshold"] == 0.9
    assert r.read_replicas == 1


def test_query_focused_uses_the_seed_numbers() -> None:
    r = resolve(spec(strategy="query-focused"))
    assert r.engine_config["performance"]["query_cache_size_mb"] == 1024
    assert r.engine_config["search"] == {"precomputed_indexes": True, "query_cache_entries": 65536}
    assert r.engine_config["database"]["connection_pool_size"] == 100
    assert r.read_replicas == 3


def test_explicit_fields_override_the_preset() -> None:
    r = resolve(
        spec(
            strategy="learning-focused",
            engine={"config": {"learning": {"workers": 4}}, "resources": {"limits": {"memory": "8Gi"}}},
            autoscaling={"maxReplicas": 6, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}},
            postgres={"enabled": True, "readReplicas": 0},
        )
    )
    assert r.engine_config["learning"]["workers"] == 4
    assert r.engine_config["learning"]["batch_size"] == 5000
    assert r.resources["limits"] == {"cpu": "2", "memory": "8Gi"}
    assert r.autoscaling.max_replicas == 6 and r.autoscaling.min_replicas == 3
    assert r.autoscaling.scale_down.stabilization_window_seconds == 30
    assert r.autoscaling.scale_down.percent == 10
    assert r.read_replicas == 0


def test_cost_optimized_preset() -> None:
    hpa = resolve(spec(autoscaling={"preset": "cost-optimized"})).autoscaling
    assert (hpa.min_replicas, hpa.max_replicas, hpa.target_cpu_utilization) == (2, 10, 75)
    assert hpa.target_memory_utilization is None
    assert hpa.scale_down.stabilization_window_seconds == 600


def test_one_bound_crossing_the_preset_follows_the_user() -> None:
    assert resolve(spec(autoscaling={"maxReplicas": 2})).autoscaling.min_replicas == 2
    assert resolve(spec(autoscaling={"minReplicas": 30})).autoscaling.max_replicas == 30


def test_manual_replicas_without_autoscaling() -> None:
    r = resolve(spec(engine={"replicas": 7}, autoscaling={"enabled": False}))
    assert r.autoscaling is None and r.replicas == 7
    assert resolve(spec(autoscaling={"enabled": False})).replicas == 3


def test_the_embedded_store_is_one_engine_pod_without_an_hpa() -> None:
    alone = resolve(BrainAIClusterSpec.model_validate({}))
    assert alone.autoscaling is None and alone.replicas == 1 and alone.postgres is None
    external = {"enabled": True, "external": {"secretRef": {"name": "db", "key": "url"}}}
    assert resolve(spec(postgres=external)).autoscaling is not None  # an external database is shared too


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"engine": {"replicas": 2}, "autoscaling": {"enabled": False}}, "spec.engine.replicas"),
        ({"engine": {"replicas": 2}}, "spec.engine.replicas"),
        ({"autoscaling": {"enabled": True}}, "spec.autoscaling.enabled"),
        ({"autoscaling": {"enabled": True}, "postgres": {"enabled": False}}, "spec.autoscaling.enabled"),
    ],
)
def test_more_than_one_engine_pod_on_the_embedded_store_is_refused(fields: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"{field}.*needs spec.postgres.enabled: true"):
        BrainAIClusterSpec.model_validate(fields)


def test_invalid_override_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"memory\.priority_weights"):
        resolve(spec(engine={"config": {"memory": {"priority_weights": {"low": 1}}}}))


def test_a_request_above_the_strategys_limit_raises_that_limit() -> None:
    from brainai_operator.api import BrainAIClusterSpec
    from brainai_operator.strategies import resolve

    spec = BrainAIClusterSpec.model_validate(
        {
            "engine": {"resources": {"requests": {"cpu": "4"}}},
            "postgres": {"enabled": True, "resources": {"requests": {"memory": "16Gi"}}},
        }
    )
    r = resolve(spec)
    assert r.resources["limits"]["cpu"] == "4"  # balanced's default limit is 1
    assert r.resources["limits"]["memory"] == "2Gi"  # untouched
    assert r.postgres is not None and r.postgres.resources["limits"]["memory"] == "16Gi"


def test_an_explicit_limit_is_kept() -> None:
    from brainai_operator.api import BrainAIClusterSpec
    from brainai_operator.strategies import resolve

    spec = BrainAIClusterSpec.model_validate(
        {"engine": {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "3"}}}}
    )
    assert resolve(spec).resources["limits"]["cpu"] == "3"


def test_a_limit_below_the_strategys_request_lowers_that_request() -> None:
    from brainai_operator.api import BrainAIClusterSpec
    from brainai_operator.strategies import resolve

    spec = BrainAIClusterSpec.model_validate({"engine": {"resources": {"limits": {"cpu": "100m"}}}})
    assert resolve(spec).resources["requests"]["cpu"] == "100m"  # balanced asks for 500m by default
