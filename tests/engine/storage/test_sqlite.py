"""SQLite storage: WAL, transactional batches, durability across reopen, compression."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from brainai_common.engine_config import DatabaseConfig, EngineConfig, StorageConfig
from brainai_engine.storage import open_storage
from brainai_engine.storage.base import ConceptRecord, WriteBatch
from brainai_engine.storage.lock import StoreLocked
from brainai_engine.storage.sqlite import SQLiteStorage
from tests.engine.storage.contract import (
    check_identical_content_is_stored_once,
    check_write_and_read_back_everything,
    memory,
)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStorage:
    s = SQLiteStorage(tmp_path / "db" / "brain.db")
    yield s
    s.close()


def test_wal_and_synchronous(store: SQLiteStorage) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    full = SQLiteStorage(store.path.with_name("full.db"), DatabaseConfig(synchronous="full"))
    assert full._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    full.close()


def test_identical_content_is_stored_once(store: SQLiteStorage) -> None:
    check_identical_content_is_stored_once(store)


def test_write_and_read_back_everything(store: SQLiteStorage) -> None:
    check_write_and_read_back_everything(store)


def test_updates_access_and_delete(store: SQLiteStorage) -> None:
    store.write(WriteBatch(new_memories=[memory("a"), memory("b")]))
    store.write(WriteBatch(memory_types=[(1, "episodic")], memory_access=[(1, 3, 2000.0)]))
    rec = store.get_memory(1)
    assert rec is not None and rec.type == "episodic"
    assert (rec.access_count, rec.last_accessed) == (3, 2000.0)
    result = store.write(WriteBatch(deleted_memories=[2, 42]))
    assert result.deleted == [2]
    assert store.get_memory(2) is None
    store.write(WriteBatch(removed_edges=[("x", "y")]))  # removing a missing edge is fine


def test_durable_across_reopen_and_ids_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "brain.db"
    s = SQLiteStorage(path)
    s.write(WriteBatch(new_memories=[memory("one"), memory("two"), memory("three")]))
    s.write(WriteBatch(deleted_memories=[3]))
    s.close()
    s = SQLiteStorage(path)
    assert [r[1] for batch in s.iter_memory_rows() for r in batch] == ["one", "two"]
    assert s.write(WriteBatch(new_memories=[memory("four")])).memory_ids == [4]
    assert s.memory_ids() == [1, 2, 4]
    s.close()


def test_a_store_from_before_edge_counts_opens_and_keeps_its_edges(tmp_path: Path) -> None:
    path = tmp_path / "brain.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE edges (a TEXT NOT NULL, b TEXT NOT NULL, weight REAL NOT NULL, "
            "initial_weight REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID"
        )
        conn.execute("INSERT INTO edges VALUES ('ai', 'ml', 0.3, 0.1, 1.0)")
    for _ in range(2):  # the column is added once; the second open finds it
        s = SQLiteStorage(path)
        assert [(e.a, e.weight, e.cooccurrences) for e in s.iter_edges()] == [("ai", 0.3, 1)]
        s.close()


def test_failed_batch_is_rolled_back(store: SQLiteStorage) -> None:
    bad = WriteBatch(
        new_memories=[memory("ok"), memory(None)],  # type: ignore[arg-type]
        concepts=[ConceptRecord("ghost", 1, 1.0, 0.0, 0.0)],
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.write(bad)
    assert store.counts().memories == 0 and list(store.iter_concepts()) == []
    assert store.write(WriteBatch(new_memories=[memory("after")])).memory_ids == [1]


@pytest.mark.parametrize("algorithm", ["zlib", "lz4"])
def test_compression_round_trip(tmp_path: Path, algorithm: str) -> None:
    s = SQLiteStorage(
        tmp_path / "c.db", storage=StorageConfig(compression_algorithm=algorithm, compression_min_bytes=10)
    )
    text = "compressible text " * 50
    s.write(WriteBatch(new_memories=[memory(text), memory("short")]))
    raw = sqlite3.connect(s.path).execute("SELECT enc, length(content) FROM memories ORDER BY id").fetchall()
    assert raw[0][0] != 0 and raw[0][1] < len(text) and raw[1][0] == 0
    assert s.get_memory(1).content == text  # type: ignore[union-attr]
    s.close()


def test_concurrent_readers_during_writes(store: SQLiteStorage) -> None:
    store.write(WriteBatch(new_memories=[memory(f"m{i}") for i in range(100)]))
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                assert len(store.get_memories(list(range(1, 101)))) >= 100
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(50):
        store.write(WriteBatch(new_memories=[memory(f"w{i}")]))
    for t in threads:
        t.join()
    assert not errors and store.ping()


def test_one_process_at_a_time_opens_a_store(tmp_path: Path) -> None:
    first = SQLiteStorage(tmp_path / "one.db")
    with pytest.raises(StoreLocked, match=rf"one.db is open in process {os.getpid()} on "):
        SQLiteStorage(tmp_path / "one.db")
    SQLiteStorage(tmp_path / "other.db").close()  # another store is another lock
    first.close()
    SQLiteStorage(tmp_path / "one.db").close()  # released on close


@pytest.mark.parametrize(
    ("sections", "page_cache_mb"),
    [
        ({}, 512),  # performance.cache_size_mb's default is the largest
        ({"memory": {"cache_size_mb": 2048}}, 2048),  # the scaling guide's high-memory.toml
        ({"storage": {"buffer_pool_size_mb": 1024}, "performance": {"cache_size_mb": 0}}, 1024),
    ],
)
def test_page_cache_is_the_largest_of_the_three_cache_settings(
    tmp_path: Path, sections: dict[str, Any], page_cache_mb: int
) -> None:
    config = EngineConfig.model_validate({"server": {"data_dir": str(tmp_path)}, **sections})
    store = open_storage(config)
    try:
        assert isinstance(store, SQLiteStorage) and store.page_cache_mb == page_cache_mb
    finally:
        store.close()
