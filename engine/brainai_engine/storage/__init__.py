"""Storage backends behind one interface; `open_storage` picks one from `database.url`."""

from __future__ import annotations

from brainai_common.engine_config import ConfigError, EngineConfig
from brainai_engine.storage.base import Storage, StorageUnavailable, WriteBatch, WriteResult
from brainai_engine.storage.sqlite import SQLiteStorage

__all__ = ["SQLiteStorage", "Storage", "StorageUnavailable", "WriteBatch", "WriteResult", "open_storage"]


def open_storage(config: EngineConfig) -> Storage:
    """SQLite for sqlite:///path or no URL (file under server.data_dir), PostgreSQL for postgresql://."""
    url = config.database.url
    if url is None or url.startswith("sqlite:///"):
        storage = config.storage
        updates: dict[str, object] = {}
        if config.performance.compression_enabled and storage.compression_algorithm == "none":
            updates["compression_algorithm"] = "lz4"
        page_cache = max(config.performance.cache_size_mb, config.memory.cache_size_mb)
        if page_cache > storage.buffer_pool_size_mb:
            updates["buffer_pool_size_mb"] = page_cache
        if updates:
            storage = storage.model_copy(update=updates)
        return SQLiteStorage(config.sqlite_path(), config.database, storage)
    scheme = url.split(":", 1)[0]
    if scheme in {"postgres", "postgresql", "postgresql+psycopg"}:
        from brainai_engine.storage.postgres import (
            PostgresStorage,  # imported here: the embedded default needs no driver
        )

        return PostgresStorage(config.database, config.system.instance_id)
    raise ConfigError(f"database.url: unsupported scheme {scheme!r}; use sqlite:///path or postgresql://")
