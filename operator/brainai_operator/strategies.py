"""Workload strategies: a BrainAICluster spec in, every concrete setting the builders need out.

The numbers are the scaling guide document's ("Scaling Strategies by Use Case", the Kubernetes Deployment
and HPA, the cost-optimised HPA). Precedence, lowest first: engine defaults, strategy preset,
autoscaling preset, explicit spec fields.
"""

from __future__ import annotations

from typing import Any

from kubernetes.utils.quantity import parse_quantity
from pydantic import BaseModel, Field

from brainai_common.engine_config import ConfigError, EngineConfig, config_from_mapping
from brainai_operator.api import (
    POSTGRES_PARAMETERS,
    AutoscalingPreset,
    BackupSpec,
    BrainAIClusterSpec,
    MonitoringSpec,
    RestoreSpec,
    StorageSpec,
    Strategy,
)


class ScalingRule(BaseModel):
    stabilization_window_seconds: int
    percent: int
    period_seconds: int


class HPASettings(BaseModel):
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int
    target_memory_utilization: int | None
    scale_up: ScalingRule
    scale_down: ScalingRule


class DataTier(BaseModel):
    """A managed or external PostgreSQL or Redis, with everything its builders need."""

    external_url: tuple[str, str] | None = Field(default=None, description="(secret, key) of the URL.")
    external_read_url: tuple[str, str] | None = None
    image: str
    replicas: int = Field(description="PostgreSQL: read replicas. Redis: every node (masters and replicas).")
    masters: int = 0
    replicas_per_master: int = 0
    storage_size: str
    storage_class: str | None
    retention: str
    resources: dict[str, dict[str, Any]]
    parameters: dict[str, str] = Field(default_factory=dict)
    synchronous: bool = False
    backup: BackupSpec | None = None
    restore: RestoreSpec | None = None

    @property
    def external(self) -> bool:
        return self.external_url is not None


class OperatorDefaults(BaseModel):
    """What the operator fills in where a spec leaves a choice to it (its command-line flags)."""

    postgres_image: str = "brain-ai/postgres:15"
    redis_image: str = "redis:7.0"


class Resolved(BaseModel):
    """Everything the builders need, with no optional left to interpret."""

    strategy: Strategy
    image: str
    image_pull_policy: str
    image_pull_secrets: list[str] = Field(default_factory=list)
    port: int
    log_level: str
    replicas: int
    autoscaling: HPASettings | None
    resources: dict[str, dict[str, Any]]
    engine_config: dict[str, Any] = Field(description="TOML sections: strategy preset merged with overrides.")
    read_replicas: int
    auth_secret: tuple[str, str] | None = None
    scheduling: dict[str, Any] = Field(default_factory=dict)
    postgres: DataTier | None = None
    redis: DataTier | None = None
    monitoring: MonitoringSpec | None = None


# Engine settings per strategy, in the engine's TOML sections (the scaling guide's "Scaling Strategies by
# Use Case"; its query_workers has no engine counterpart). `e2e/bench/strategies.py` measures them.
STRATEGY_CONFIG: dict[Strategy, dict[str, dict[str, Any]]] = {
    Strategy.LEARNING_FOCUSED: {
        "learning": {"workers": 16, "batch_size": 5000},
        "memory": {"consolidation_frequency": "hourly"},
        "concepts": {"extraction_threshold": 0.9},
    },
    Strategy.QUERY_FOCUSED: {
        "performance": {"query_cache_size_mb": 1024},
        "search": {"precomputed_indexes": True, "query_cache_entries": 65536},
        "database": {"connection_pool_size": 100},
    },
    Strategy.BALANCED: {
        "learning": {"workers": 8},
    },
}

# Pod resources per strategy: the scaling guide's Deployment for query/balanced; ingest is CPU-heavy.
STRATEGY_RESOURCES: dict[Strategy, dict[str, dict[str, str]]] = {
    Strategy.LEARNING_FOCUSED: {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    },
    Strategy.QUERY_FOCUSED: {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    },
    Strategy.BALANCED: {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    },
}

STRATEGY_READ_REPLICAS = {Strategy.LEARNING_FOCUSED: 1, Strategy.QUERY_FOCUSED: 3, Strategy.BALANCED: 2}
DEFAULT_REPLICAS = 3  # the scaling guide's Deployment

AUTOSCALING_PRESETS: dict[AutoscalingPreset, HPASettings] = {
    AutoscalingPreset.STANDARD: HPASettings(
        min_replicas=3,
        max_replicas=20,
        target_cpu_utilization=70,
        target_memory_utilization=80,
        scale_up=ScalingRule(stabilization_window_seconds=60, percent=100, period_seconds=15),
        scale_down=ScalingRule(stabilization_window_seconds=300, percent=10, period_seconds=60),
    ),
    AutoscalingPreset.COST_OPTIMIZED: HPASettings(
        min_replicas=2,
        max_replicas=10,
        target_cpu_utilization=75,
        target_memory_utilization=None,
        scale_up=ScalingRule(stabilization_window_seconds=60, percent=100, period_seconds=15),
        scale_down=ScalingRule(stabilization_window_seconds=600, percent=10, period_seconds=60),
    ),
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _overlay(base: BaseModel, override: BaseModel | None) -> dict[str, Any]:
    explicit = override.model_dump(exclude_none=True) if override else {}
    return {**base.model_dump(), **explicit}


def resolve_autoscaling(spec: BrainAIClusterSpec) -> HPASettings | None:
    scaling = spec.autoscaling
    if not spec.autoscaling_enabled:
        return None
    preset = AUTOSCALING_PRESETS[AutoscalingPreset(scaling.preset)]
    fields = {k: v for k, v in scaling.model_dump(exclude_none=True).items() if k in HPASettings.model_fields}
    behavior = scaling.behavior
    merged = {**preset.model_dump(), **fields}
    merged["scale_up"] = _overlay(preset.scale_up, behavior.scale_up if behavior else None)
    merged["scale_down"] = _overlay(preset.scale_down, behavior.scale_down if behavior else None)
    if merged["min_replicas"] > merged["max_replicas"]:
        # Only one bound was given and it crosses the preset's other bound: follow the user's.
        if "min_replicas" in fields:
            merged["max_replicas"] = merged["min_replicas"]
        else:
            merged["min_replicas"] = merged["max_replicas"]
    return HPASettings.model_validate(merged)


def resolve_engine_config(spec: BrainAIClusterSpec) -> dict[str, Any]:
    """Strategy preset merged with spec.engine.config; raises ConfigError naming the bad key."""
    merged = deep_merge(STRATEGY_CONFIG[Strategy(spec.strategy)], spec.engine.config or {})
    validate_engine_config(merged)
    return merged


def validate_engine_config(sections: dict[str, Any]) -> EngineConfig:
    return config_from_mapping(sections, source="spec.engine.config")


POSTGRES_RESOURCES = {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}
REDIS_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def _resources(default: dict[str, dict[str, Any]], override: Any) -> dict[str, dict[str, Any]]:
    """Default requests/limits with whatever the spec sets on top. The API server refuses a request
    above its limit, so a default gives way to an explicit value: an explicit request above the
    default limit raises the limit, an explicit limit below the default request lowers the request.
    Both explicit and crossed is refused at admission."""
    if not override:
        return default
    merged = deep_merge(default, override.model_dump(exclude_none=True))
    set_requests = override.requests.model_dump(exclude_none=True) if override.requests else {}
    set_limits = override.limits.model_dump(exclude_none=True) if override.limits else {}
    requests, limits = dict(merged.get("requests", {})), dict(merged.get("limits", {}))
    for resource in set(requests) & set(limits):
        if parse_quantity(requests[resource]) <= parse_quantity(limits[resource]):
            continue
        if resource in set_requests and resource not in set_limits:
            limits[resource] = requests[resource]
        elif resource in set_limits and resource not in set_requests:
            requests[resource] = limits[resource]
    return {**merged, "requests": requests, "limits": limits}


def _ref(ref: Any) -> tuple[str, str] | None:
    return (ref.name, ref.key) if ref else None


def _storage_fields(storage: Any) -> dict[str, Any]:
    storage = storage or StorageSpec()
    return {
        "storage_size": str(storage.size),
        "storage_class": storage.storage_class_name,
        "retention": storage.retention,
    }


def resolve_postgres(
    spec: BrainAIClusterSpec, read_replicas: int, defaults: OperatorDefaults
) -> DataTier | None:
    pg = spec.postgres
    if not pg or not pg.enabled:
        return None
    resources = _resources(POSTGRES_RESOURCES, pg.resources)
    external = pg.external
    return DataTier(
        external_url=_ref(external.secret_ref) if external else None,
        external_read_url=_ref(external.read_secret_ref) if external else None,
        image=pg.image or defaults.postgres_image,
        replicas=read_replicas,
        resources=resources,
        parameters={**POSTGRES_PARAMETERS, **(pg.parameters or {})},
        synchronous=bool(pg.synchronous),
        backup=pg.backup,
        restore=pg.restore,
        **_storage_fields(pg.storage),
    )


def resolve_redis(spec: BrainAIClusterSpec, defaults: OperatorDefaults) -> DataTier | None:
    rd = spec.redis
    if not rd or not rd.enabled:
        return None
    resources = _resources(REDIS_RESOURCES, rd.resources)
    return DataTier(
        external_url=_ref(rd.external.secret_ref) if rd.external else None,
        image=rd.image or defaults.redis_image,
        replicas=rd.masters * (1 + rd.replicas_per_master),
        masters=rd.masters,
        replicas_per_master=rd.replicas_per_master,
        resources=resources,
        **_storage_fields(rd.storage),
    )


def resolve(spec: BrainAIClusterSpec, defaults: OperatorDefaults | None = None) -> Resolved:
    defaults = defaults or OperatorDefaults()
    strategy = Strategy(spec.strategy)
    engine = spec.engine
    resources = _resources(STRATEGY_RESOURCES[strategy], engine.resources)
    autoscaling = resolve_autoscaling(spec)
    if autoscaling:
        replicas = autoscaling.min_replicas
    else:
        default = DEFAULT_REPLICAS if spec.shared_store else 1
        replicas = engine.replicas if engine.replicas is not None else default
    postgres = spec.postgres
    read_replicas = (
        postgres.read_replicas
        if postgres and postgres.read_replicas is not None
        else STRATEGY_READ_REPLICAS[strategy]
    )
    scheduling = spec.scheduling.model_dump(by_alias=True, exclude_none=True) if spec.scheduling else {}
    auth = engine.auth_token_secret_ref
    redis = resolve_redis(spec, defaults)
    engine_config = resolve_engine_config(spec)
    if redis:
        engine_config = deep_merge(engine_config, {"redis": {"cluster": True}})
    return Resolved(
        strategy=strategy,
        image=engine.image,
        image_pull_policy=engine.image_pull_policy,
        image_pull_secrets=engine.image_pull_secrets or [],
        port=engine.port,
        log_level=engine.log_level,
        replicas=replicas,
        autoscaling=autoscaling,
        resources=resources,
        engine_config=engine_config,
        read_replicas=read_replicas,
        auth_secret=(auth.name, auth.key) if auth else None,
        scheduling=scheduling,
        postgres=resolve_postgres(spec, read_replicas, defaults),
        redis=redis,
        monitoring=spec.monitoring if spec.monitoring and spec.monitoring.enabled else None,
    )


__all__ = ["ConfigError", "HPASettings", "OperatorDefaults", "Resolved", "resolve"]
