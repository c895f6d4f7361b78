"""Engine configuration: one pydantic model per TOML section.

Every constant of the memory and concept core is a key here, so the operator can render the same
model into a ConfigMap and an operator never has to patch code to tune the engine. Unknown keys are
rejected: a typo in a ConfigMap must fail loudly at start, not be silently ignored. Keys the scaling
guide's files carry that this engine has no use for (`RETIRED_KEYS`) are dropped with a warning that
says what governs that behaviour instead, so the guide's files still load.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

CONSOLIDATION_PERIODS: dict[str, float] = {"continuous": 0.0, "hourly": 3600.0, "daily": 86400.0}

# The scaling guide's keys that no code here could honour, and what decides that behaviour instead.
RETIRED_KEYS: dict[str, str] = {
    "learning.parallel_processing": "learning.workers sets how many learn requests chunk and tokenise "
    "at once",
    "learning.segment_discovery_threads": "segment discovery runs in the single writer; learning.workers "
    "sets the parallel part of learning",
    "learning.concept_extraction_threads": "concept extraction runs in the single writer; learning.workers "
    "sets the parallel part of learning",
    "search.query_workers": "searches run on the server's event loop (one process per pod): scale queries "
    "with replicas, and repeated ones with performance.query_cache_size_mb",
    "storage.index_cache_size_mb": "the search index is memory-mapped, so the kernel's page cache holds it",
    "performance.memory_pool_size": "stored records are cached by the page cache "
    "(storage.buffer_pool_size_mb)",
    "metrics.collection_interval": "Prometheus decides how often it scrapes (a BrainAICluster's "
    "spec.monitoring.interval); gauges are read at scrape time",
    "metrics.retention_days": "retention is the metrics store's setting "
    "(Prometheus --storage.tsdb.retention.time)",
}

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the file and key path."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


class SystemConfig(_Section):
    """Process-wide settings: identity, concurrency, logging."""

    instance_id: str = Field(
        default="brain-ai-0", description="Name of this engine replica (env INSTANCE_ID)."
    )
    memory_capacity: int = Field(
        default=1_000_000, ge=1, description="Expected number of stored memories; pre-sizes the vector index."
    )
    worker_threads: int = Field(default=4, ge=1, description="Threads serving requests.")
    max_concurrent_requests: int = Field(
        default=100, ge=1, description="Requests admitted at once; the rest get 503."
    )
    async_task_queue_size: int = Field(
        default=10_000,
        ge=1,
        description="Writes (learn, add, delete) that may wait for a writer thread; more are refused with "
        "503 write_queue_full and Retry-After.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log verbosity."
    )


class MemoryConfig(_Section):
    """Working memory (priority, decay, eviction) and consolidation into long-term memory."""

    capacity: int = Field(
        default=10_000_000,
        ge=1,
        description="Upper bound of stored memories: a learn or add that would exceed it is refused "
        "whole (HTTP 507, brain_ai_memory_capacity_refusals_total) rather than silently dropping data.",
    )
    working_memory_size: int = Field(default=1000, ge=1, description="Items held in working memory.")
    cache_size_mb: int = Field(
        default=256,
        ge=0,
        description="Cache of stored memory records: the SQLite page cache is the largest of this, "
        "storage.buffer_pool_size_mb and performance.cache_size_mb.",
    )
    consolidation_batch_size: int = Field(
        default=100, ge=1, description="Working items examined per consolidation pass."
    )
    consolidation_frequency: str | int = Field(
        default="continuous", description="'continuous', 'hourly', 'daily' or a whole number of seconds."
    )
    decay_half_life_hours: float = Field(
        default=24.0,
        gt=0,
        description="Hours after which an unaccessed "
        "item keeps half its decay factor: 0.5^(hours/half_life).",
    )
    access_bonus: float = Field(default=0.1, ge=0, description="Decay multiplier gain per access.")
    decay_min: float = Field(default=0.01, ge=0, le=1, description="Lower clamp of the decay factor.")
    decay_max: float = Field(default=1.0, ge=0, le=1, description="Upper clamp of the decay factor.")
    priority_weights: dict[str, float] = Field(
        default_factory=lambda: {"low": 1.0, "medium": 2.0, "high": 3.0, "critical": 4.0},
        description="Weight of each priority in importance = weight * decay; all four are required.",
    )
    consolidation_min_accesses: int = Field(
        default=2, ge=0, description="Accesses that promote a working item to long-term episodic memory."
    )
    consolidation_min_importance: float = Field(
        default=3.5, ge=0, description="Importance that promotes a working item to long-term episodic memory."
    )
    forget_threshold: float = Field(
        default=0.05,
        ge=0,
        description="Working items below this importance leave working memory (their stored record is kept).",
    )
    max_chunk_chars: int = Field(
        default=512,
        ge=16,
        description="Learned text is split into memories of whole sentences up to this size.",
    )

    @field_validator("consolidation_frequency")
    @classmethod
    def _frequency(cls, value: str | int) -> str | int:
        if isinstance(value, str) and value not in CONSOLIDATION_PERIODS:
            raise ValueError(f"must be one of {sorted(CONSOLIDATION_PERIODS)} or a number of seconds")
        if not isinstance(value, str) and value < 0:
            raise ValueError("must be >= 0 seconds")
        return value

    @field_validator("priority_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        missing = {"low", "medium", "high", "critical"} - set(value)
        if missing:
            raise ValueError(f"missing priorities {sorted(missing)}")
        return value

    @property
    def consolidation_period_s(self) -> float:
        """Seconds between consolidation passes; 0 means after every write."""
        value = self.consolidation_frequency
        return CONSOLIDATION_PERIODS[value] if isinstance(value, str) else float(value)


class LearningConfig(_Section):
    """Ingest: batching, parallelism and BPE-style segment discovery."""

    workers: int = Field(
        default=1,
        ge=1,
        validation_alias=AliasChoices("workers", "learning_workers"),
        description="Learn requests that chunk and tokenise concurrently (x4); the "
        "vocabulary and graph update itself is serialised.",
    )
    batch_size: int = Field(
        default=1000,
        ge=1,
        description="Memories per storage transaction: concurrent learns and adds share one up to "
        "this many (group commit; one request larger than it still commits whole), and "
        "`brain-ai-engine learn` sends this many texts per batch (at most 1000), small files sharing one.",
    )
    bpe_min_frequency: int = Field(
        default=2, ge=1, description="Adjacent-unit pair count that creates a merged segment."
    )
    max_segment_units: int = Field(default=4, ge=1, description="Longest merged segment, in words.")
    max_pending_pairs: int = Field(
        default=500_000,
        ge=1000,
        description="Bound of the in-memory pair counter; the rarest pairs are dropped when it is exceeded.",
    )


class ConceptsConfig(_Section):
    """The concept graph: Hebbian edges, decay, pruning and spreading activation."""

    hebbian_learning_rate: float = Field(default=0.1, gt=0, le=1, description="eta in w += eta(1-w).")
    initial_edge_weight: float = Field(
        default=0.1, ge=0, le=1, description="w0 of a new edge, before its first Hebbian update."
    )
    edge_decay_lambda: float = Field(default=0.01, ge=0, description="Per-hour decay rate of edge weights.")
    decay_floor_ratio: float = Field(
        default=0.1, ge=0, le=1, description="Decay never takes w below ratio*w0."
    )
    prune_threshold: float = Field(
        default=0.1, ge=0, le=1, description="Edges below this weight are deleted."
    )
    spreading_factor: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Share of activation passed along "
        "an edge: a_next += a*w*spreading_factor*depth_decay^depth.",
    )
    depth_decay: float = Field(
        default=0.9, gt=0, le=1, description="Per-hop attenuation of spreading activation."
    )
    activation_cutoff: float = Field(default=0.01, ge=0, description="Activation below this stops spreading.")
    extraction_threshold: float = Field(
        default=0.6, ge=0, le=1, description="Segment confidence that makes a concept."
    )
    cooccurrence_window: int = Field(
        default=6, ge=1, description="Concepts this many positions apart in a memory form an edge."
    )
    max_concepts_per_memory: int = Field(default=64, ge=1, description="Concepts linked from one memory.")
    maintenance_interval_s: float = Field(
        default=3600.0, ge=0, description="Seconds between decay/prune passes over the graph."
    )


class SearchConfig(_Section):
    """Memory search index: lexical BM25 (default) or hashed vectors in faiss HNSW."""

    backend: Literal["lexical", "vector"] = Field(
        default="lexical", description="Memory search index: BM25 postings, or hashed vectors in faiss."
    )
    max_postings: int = Field(
        default=20_000,
        ge=100,
        description="Most candidates one common word "
        "contributes to a lexical query (its most recent memories).",
    )
    embedding_dim: int = Field(
        default=256, ge=16, le=4096, description="Hashed vector size (vector backend)."
    )
    index_type: Literal["hnsw", "flat"] = Field(
        default="hnsw", description="Vector index: approximate HNSW or exact flat scan (vector backend)."
    )
    hnsw_m: int = Field(default=32, ge=4, le=128, description="HNSW graph degree (vector backend).")
    hnsw_ef_construction: int = Field(default=48, ge=8, description="HNSW build-time beam (vector backend).")
    hnsw_ef_search: int = Field(
        default=160, ge=8, description="HNSW query-time beam: recall against latency (vector backend)."
    )
    exact_below: int = Field(
        default=20_000,
        ge=0,
        description="Below this many vectors search is an exact scan; above it the HNSW graph is used.",
    )
    fresh_buffer: int = Field(
        default=8192,
        ge=1,
        description="New vectors searched exactly until this "
        "many accumulate, then merged into the graph in one batch.",
    )
    candidate_pool: int = Field(
        default=200,
        ge=10,
        le=10_000,
        description="Candidates fetched from the index before filters and re-ranking.",
    )
    precomputed_indexes: bool = Field(
        default=True, description="Persist index snapshots so a restart loads instead of rebuilding."
    )
    query_cache_entries: int = Field(
        default=4096,
        ge=0,
        description="Concept-search results kept in "
        "the in-process cache (entries; 0 disables). Memory-search results "
        "are budgeted by performance.query_cache_size_mb instead.",
    )
    result_clock_s: float = Field(
        default=1.0,
        ge=0,
        description="Memory-search results report importance "
        "as of the start of the current period of this many seconds, so a cached "
        "page equals a fresh search for that period; 0 uses the exact instant.",
    )


class DatabaseConfig(_Section):
    """The store: embedded SQLite by default; PostgreSQL (primary and read replicas) when url says so."""

    url: str | None = Field(default=None, description="sqlite:///path, postgresql://… (env DATABASE_URL).")
    read_urls: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("read_urls", "read_url"),
        description="Read replicas; reads may be served from them.",
    )
    connection_pool_size: int = Field(default=20, ge=1, description="Connections to a server database.")
    query_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Statement timeout on a server database."
    )
    statement_cache_size: int = Field(
        default=256, ge=0, description="Prepared statements kept per connection."
    )
    wal_mode: bool = Field(
        default=True, description="SQLite write-ahead log: readers never block the writer."
    )
    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        default="NORMAL",
        description="SQLite fsync policy. NORMAL with WAL survives a process crash; "
        "FULL also survives power loss.",
    )
    busy_timeout_ms: int = Field(default=5000, ge=0, description="How long SQLite waits for a lock.")
    pool_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a call waits for a "
        "pooled server-database connection; a write that cannot get one "
        "answers 503.",
    )
    work_mem_mb: int = Field(
        default=0,
        ge=0,
        description="work_mem of the engine's PostgreSQL sessions "
        "(0 keeps the server's setting; the scaling guide tunes the server to 256).",
    )
    change_poll_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often an engine "
        "replica polls the shared change log for other replicas' "
        "writes; Redis notifications make it sooner.",
    )

    @field_validator("read_urls", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """A list, or one string of comma-separated URLs (the DATABASE_READ_URLS form)."""
        return [u.strip() for u in value.split(",") if u.strip()] if isinstance(value, str) else value

    @field_validator("synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class StorageConfig(_Section):
    """How records are stored: compression and caches."""

    compression_algorithm: Literal["none", "zlib", "lz4"] = Field(
        default="none", description="Compression of stored memory content."
    )
    compression_min_bytes: int = Field(default=256, ge=0, description="Shorter contents stay plain.")
    buffer_pool_size_mb: int = Field(
        default=256, ge=0, description="SQLite page cache (see memory.cache_size_mb for the largest wins)."
    )
    snapshot_index: bool = Field(
        default=True,
        description="Save the search index (lexical segments and columns, or the vector index) next "
        "to an embedded database so restarts load it and catch up instead of rebuilding.",
    )


class PerformanceConfig(_Section):
    """Caches and monitoring switches from the scaling guide's performance section."""

    enable_monitoring: bool = Field(
        default=True,
        description="`serve` logs a traffic summary (requests per route and status) every "
        "metrics_interval seconds; /metrics is governed by metrics.enabled.",
    )
    metrics_interval: float = Field(
        default=30.0, gt=0, description="Seconds between the traffic summaries `serve` logs."
    )
    cache_size_mb: int = Field(
        default=512, ge=0, description="SQLite page cache, when larger than storage.buffer_pool_size_mb."
    )
    query_cache_size_mb: int = Field(
        default=64,
        ge=0,
        description="Memory budget (estimated) of the "
        "memory-search result cache, keyed by the full query and invalidated by "
        "every write that can change a result; 0 disables it.",
    )
    gc_threshold: float = Field(
        default=0.8, gt=0, le=1, description="Working-memory fill ratio that triggers a forgetting pass."
    )
    compression_enabled: bool = Field(
        default=False,
        description="Compress stored content; uses "
        "storage.compression_algorithm, or lz4 when that is 'none'.",
    )


class SystemMetricsConfig(_Section):
    """monitoring.toml switches for the engine process's own resource metrics on /metrics."""

    cpu_usage: bool = Field(default=True, description="Export process_cpu_seconds_total.")
    memory_usage: bool = Field(
        default=True,
        description="Export process_resident_memory_bytes, process_virtual_memory_bytes and python_gc_*.",
    )
    disk_io: bool = Field(
        default=True,
        description="Export brain_ai_process_disk_read_bytes_total and _written_bytes_total (/proc/self/io).",
    )
    network_io: bool = Field(
        default=True,
        description="Export brain_ai_network_receive_bytes_total and _transmit_bytes_total of the "
        "process's network namespace (a pod's interfaces; loopback excluded).",
    )


class ApplicationMetricsConfig(_Section):
    """monitoring.toml switches for the engine's application metrics on /metrics."""

    request_rate: bool = Field(default=True, description="Export brain_ai_http_requests_total.")
    response_time: bool = Field(default=True, description="Export brain_ai_http_request_duration_seconds.")
    error_rate: bool = Field(
        default=True,
        description="With request_rate off, brain_ai_http_requests_total still counts responses >= 400.",
    )
    queue_depth: bool = Field(
        default=True, description="Export in-flight requests and the write queue (brain_ai_write_*)."
    )
    memory_operations: bool = Field(
        default=True,
        description="Export memory gauges, brain_ai_memory_search_duration_seconds and capacity refusals.",
    )
    concept_operations: bool = Field(
        default=True,
        description="Export concept, edge and segment gauges and brain_ai_concept_search_duration_seconds.",
    )
    learning_throughput: bool = Field(
        default=True, description="Export brain_ai_learn_texts_total and brain_ai_learn_bytes_total."
    )


class MetricsConfig(_Section):
    """The scaling guide's monitoring.toml [metrics] section: what /metrics exports."""

    enabled: bool = Field(
        default=True, description="Serve Prometheus metrics on /metrics; when false it answers 404."
    )
    system: SystemMetricsConfig = Field(default_factory=SystemMetricsConfig)
    application: ApplicationMetricsConfig = Field(default_factory=ApplicationMetricsConfig)


class RedisConfig(_Section):
    """Redis (Cluster) as shared cache and change feed between engine replicas."""

    url: str | None = Field(default=None, description="redis://host:port (env REDIS_URL).")
    cluster: bool = Field(default=False, description="Talk to a Redis Cluster (cluster-mode client).")
    key_prefix: str = Field(default="brainai:", description="Prefix of every key the engine writes.")
    cache_ttl_seconds: int = Field(default=300, ge=0, description="Lifetime of cached query results.")
    connect_timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout connecting to Redis.")


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    auth_token: str | None = None
    auth_token_file: str | None = None
    data_dir: str = "./.brain-ai"

    @model_validator(mode="after")
    def _read_token_file(self) -> ServerConfig:
        if self.auth_token is None and self.auth_token_file:
            try:
                token = Path(self.auth_token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"auth_token_file {self.auth_token_file!r}: {exc.strerror}") from None
            if not token:
                raise ValueError(f"auth_token_file {self.auth_token_file!r} is empty")
            object.__setattr__(self, "auth_token", token)
        return self


class EngineConfig(_Section):
    system: SystemConfig = Field(default_factory=SystemConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    concepts: ConceptsConfig = Field(default_factory=ConceptsConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)

    def sqlite_path(self) -> Path:
        """Where the embedded database lives: sqlite:///path, or data_dir/brain-ai.db."""
        url = self.database.url
        if url and url.startswith("sqlite:///"):
            return Path(url[len("sqlite:///") :])
        return Path(self.server.data_dir) / "brain-ai.db"


ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("database", "url"),
    "DATABASE_READ_URLS": ("database", "read_urls"),
    "REDIS_URL": ("redis", "url"),
    "INSTANCE_ID": ("system", "instance_id"),
}


def _format_errors(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}")
    return f"{source}: " + "; ".join(parts)


def drop_retired_keys(data: Mapping[str, Any], source: str = "<config>") -> dict[str, Any]:
    """A copy of `data` without `RETIRED_KEYS`, each one found logged as a warning with its reason."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for dotted, reason in RETIRED_KEYS.items():
        section, key = dotted.split(".")
        table = out.get(section)
        if isinstance(table, dict) and key in table:
            del table[key]
            log.warning("%s: %s is ignored: %s", source, dotted, reason)
    return out


def config_from_mapping(data: Mapping[str, Any], source: str = "<config>") -> EngineConfig:
    """Validate a parsed TOML document (retired keys dropped with a warning); errors name `source` and
    the dotted key path."""
    try:
        return EngineConfig.model_validate(drop_retired_keys(data, source))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_config(path: str | Path | None = None, env: Mapping[str, str] = os.environ) -> EngineConfig:
    """Read TOML from `path` (defaults when None), then apply env overrides."""
    source = str(path) if path is not None else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    for var, (section, key) in ENV_OVERRIDES.items():
        value = env.get(var)
        if value:
            sec = data.setdefault(section, {})
            if not isinstance(sec, dict):
                raise ConfigError(f"{source}: {section}: must be a table")
            sec[key] = value
    return config_from_mapping(data, source)


def preset_path(name: str) -> Path:
    """Path of a bundled preset (production, high-memory, high-cpu, high-storage, monitoring)."""
    path = Path(__file__).parent / "presets" / f"{name.removesuffix('.toml')}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(preset_names())}")
    return path


def preset_names() -> list[str]:
    return sorted(p.stem for p in (Path(__file__).parent / "presets").glob("*.toml"))
