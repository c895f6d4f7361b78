"""Config model: presets, operator-rendered keys, env overrides and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainai_common.engine_config import (
    RETIRED_KEYS,
    ConfigError,
    EngineConfig,
    load_config,
    preset_names,
    preset_path,
)
from brainai_engine.storage import open_storage


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["production", "high-memory", "high-cpu", "high-storage", "monitoring"])
def test_presets_load(name: str) -> None:
    assert name in preset_names()
    load_config(preset_path(name), env={})


def test_preset_values_come_through() -> None:
    assert load_config(preset_path("production"), env={}).system.worker_threads == 8
    memory = load_config(preset_path("high-memory"), env={}).memory
    assert memory.capacity == 10_000_000 and memory.working_memory_size == 10_000
    assert memory.consolidation_batch_size == 1000
    storage = load_config(preset_path("high-storage"), env={})
    assert storage.storage.compression_algorithm == "lz4"
    assert storage.database.synchronous == "NORMAL"
    metrics = load_config(preset_path("monitoring"), env={}).metrics
    assert metrics.application.learning_throughput and metrics.system.disk_io
    assert load_config(preset_path("high-cpu"), env={}).learning.workers == 8


def test_the_guides_retired_keys_load_with_a_warning_naming_what_governs_instead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The scaling guide's high-cpu.toml and monitoring.toml as printed still load."""
    path = write(
        tmp_path,
        "[learning]\nparallel_processing = true\nsegment_discovery_threads = 8\nbatch_size = 1000\n"
        "[metrics]\nenabled = true\ncollection_interval = 10\nretention_days = 30\n",
    )
    with caplog.at_level("WARNING"):
        config = load_config(path, env={})
    assert config.learning.batch_size == 1000
    warned = " ".join(r.getMessage() for r in caplog.records)
    for key in (
        "learning.parallel_processing",
        "learning.segment_discovery_threads",
        "metrics.retention_days",
    ):
        assert f"{key} is ignored: " + RETIRED_KEYS[key] in warned
    assert str(path) in warned
    assert "learning.workers" in RETIRED_KEYS["learning.parallel_processing"]


def test_retired_keys_are_not_in_the_model() -> None:
    for dotted in RETIRED_KEYS:
        section, key = dotted.split(".")
        assert key not in type(getattr(EngineConfig(), section)).model_fields, dotted


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_path("nope")


def test_defaults_hold_the_core_constants() -> None:
    cfg = EngineConfig()
    assert cfg.memory.decay_half_life_hours == 24 and cfg.memory.access_bonus == 0.1
    assert (cfg.memory.decay_min, cfg.memory.decay_max) == (0.01, 1.0)
    assert cfg.memory.priority_weights == {"low": 1, "medium": 2, "high": 3, "critical": 4}
    c = cfg.concepts
    assert (c.hebbian_learning_rate, c.prune_threshold, c.decay_floor_ratio) == (0.1, 0.1, 0.1)
    assert (c.spreading_factor, c.depth_decay, c.activation_cutoff) == (0.8, 0.9, 0.01)
    assert (cfg.server.host, cfg.server.port, cfg.server.max_body_bytes) == ("127.0.0.1", 8080, 1_048_576)


def test_wrong_type_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[memory]\nworking_memory_size = "lots"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    message = str(err.value)
    assert str(path) in message
    assert "memory.working_memory_size: Input should be a valid integer" in message


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"memory\.bogus: unknown key"):
        load_config(write(tmp_path, "[memory]\nbogus = 1\n"), env={})
    with pytest.raises(ConfigError, match=r"metrics\.application\.typo: unknown key"):
        load_config(write(tmp_path, "[metrics.application]\ntypo = true\n"), env={})


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[memory\n")
    with pytest.raises(ConfigError, match="invalid TOML") as err:
        load_config(path, env={})
    assert str(path) in str(err.value)


def test_operator_rendered_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[learning]
learning_workers = 16
batch_size = 5000
[performance]
query_cache_size_mb = 1024
[memory]
consolidation_frequency = "hourly"
[concepts]
extraction_threshold = 0.9
[search]
precomputed_indexes = true
[database]
read_url = "postgresql://replica:5432/brain_ai"
connection_pool_size = 100
""",
    )
    cfg = load_config(path, env={})
    assert cfg.learning.workers == 16 and cfg.learning.batch_size == 5000
    assert cfg.performance.query_cache_size_mb == 1024
    assert cfg.memory.consolidation_period_s == 3600
    assert cfg.concepts.extraction_threshold == 0.9
    assert cfg.search.precomputed_indexes is True
    assert cfg.database.read_urls == ["postgresql://replica:5432/brain_ai"]
    assert cfg.database.connection_pool_size == 100
    # The rendered model round-trips: what the operator dumps, the engine loads.
    assert EngineConfig.model_validate(cfg.model_dump()) == cfg


@pytest.mark.parametrize(("value", "seconds"), [('"continuous"', 0), ('"daily"', 86400), ("90", 90)])
def test_consolidation_frequency(tmp_path: Path, value: str, seconds: float) -> None:
    cfg = load_config(write(tmp_path, f"[memory]\nconsolidation_frequency = {value}\n"), env={})
    assert cfg.memory.consolidation_period_s == seconds


def test_bad_consolidation_frequency(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"memory\.consolidation_frequency"):
        load_config(write(tmp_path, '[memory]\nconsolidation_frequency = "weekly"\n'), env={})


def test_env_overrides(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "sqlite:///x/y.db", "REDIS_URL": "redis://r:6379", "INSTANCE_ID": "brain-ai-2"}
    cfg = load_config(write(tmp_path, '[database]\nurl = "sqlite:///other.db"\n'), env=env)
    assert cfg.database.url == "sqlite:///x/y.db" and cfg.redis.url == "redis://r:6379"
    assert cfg.system.instance_id == "brain-ai-2"
    assert cfg.sqlite_path() == Path("x/y.db")
    assert load_config(None, env={}).sqlite_path() == Path("./.brain-ai") / "brain-ai.db"


def test_auth_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    cfg = load_config(write(tmp_path, f'[server]\nauth_token_file = "{token}"\n'), env={})
    assert cfg.server.auth_token == "s3cret"
    with pytest.raises(ConfigError, match=r"server: .*auth_token_file"):
        load_config(write(tmp_path, f'[server]\nauth_token_file = "{tmp_path / "missing"}"\n'), env={})


def test_unsupported_database_urls(tmp_path: Path) -> None:
    cfg = EngineConfig.model_validate(
        {"database": {"url": "mysql://h/db"}, "server": {"data_dir": str(tmp_path)}}
    )
    with pytest.raises(ConfigError, match="unsupported scheme"):
        open_storage(cfg)


def test_read_urls_from_env_are_comma_separated() -> None:
    env = {
        "DATABASE_URL": "postgresql://p/db",
        "DATABASE_READ_URLS": "postgresql://r1/db, postgresql://r2/db",
    }
    cfg = load_config(None, env=env)
    assert cfg.database.read_urls == ["postgresql://r1/db", "postgresql://r2/db"]
