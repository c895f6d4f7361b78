"""Embedded SQLite storage: WAL mode, one writer connection behind a lock, one reader per thread.

WAL lets searches read while a learn batch commits. With synchronous=NORMAL a committed transaction
survives a crash of the process (the WAL is written before commit returns) though not necessarily
a power loss; synchronous=FULL buys that too at the cost of an fsync per write call.
Memory ids are assigned here, ascending and never reused (AUTOINCREMENT), so the vector index can
tombstone deleted ids without ever confusing them with new memories.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from brainai_common.engine_config import DatabaseConfig, StorageConfig
from brainai_engine.storage.base import (
    CATALOG_PAGE,
    ConceptRecord,
    EdgeRecord,
    IndexRow,
    MemoryRecord,
    NewMemory,
    Placement,
    SegmentRecord,
    Storage,
    StoreCounts,
    WriteBatch,
    WriteResult,
    catalog_page,
    type_code_case,
)
from brainai_engine.storage.lock import StoreLock

SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content BLOB NOT NULL,
    enc INTEGER NOT NULL DEFAULT 0,
    type TEXT NOT NULL,
    priority INTEGER NOT NULL,
    confidence REAL NOT NULL,
    access_count INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    last_accessed REAL NOT NULL,
    context TEXT,
    digest BLOB
);
CREATE INDEX IF NOT EXISTS memories_working ON memories(id) WHERE type = 'working';
CREATE INDEX IF NOT EXISTS memories_type ON memories(type);
CREATE TABLE IF NOT EXISTS concepts (
    name TEXT PRIMARY KEY, usage_count INTEGER NOT NULL, confidence REAL NOT NULL,
    created_at REAL NOT NULL, last_used REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edges (
    a TEXT NOT NULL, b TEXT NOT NULL, weight REAL NOT NULL, initial_weight REAL NOT NULL,
    updated_at REAL NOT NULL, cooccurrences INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
    text TEXT PRIMARY KEY, frequency INTEGER NOT NULL, confidence REAL NOT NULL, units INTEGER NOT NULL,
    created_at REAL NOT NULL, left_part TEXT, right_part TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

ENC_PLAIN, ENC_ZLIB, ENC_LZ4 = 0, 1, 2
_MEMORY_COLS = (
    "id, content, enc, type, priority, confidence, access_count, created_at, last_accessed, context"
)
_IN_CHUNK = 500


# Columns added after a table's first release: (table, column, definition), added at open.
_ADDED_COLUMNS = [("edges", "cooccurrences", "INTEGER NOT NULL DEFAULT 1"), ("memories", "digest", "BLOB")]
# Indexes on added columns, created once the columns exist.
_ADDED_INDEXES = "CREATE INDEX IF NOT EXISTS memories_digest ON memories(digest) WHERE digest IS NOT NULL"


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a store written by an older engine up to SCHEMA (idempotent, one ALTER per column)."""
    for table, column, definition in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    conn.execute(_ADDED_INDEXES)


class _Codec:
    """Optional content compression; short contents stay plain (compression would only grow them)."""

    def __init__(self, cfg: StorageConfig) -> None:
        self.algorithm = cfg.compression_algorithm
        self.min_bytes = cfg.compression_min_bytes
        if self.algorithm == "lz4":
            import lz4.block

            self._lz4 = lz4.block

    def encode(self, text: str) -> tuple[Any, int]:
        if self.algorithm == "none" or len(text) < self.min_bytes:
            return text, ENC_PLAIN
        raw = text.encode("utf-8")
        if self.algorithm == "zlib":
            return zlib.compress(raw, 1), ENC_ZLIB
        return self._lz4.compress(raw), ENC_LZ4

    def decode(self, value: Any, enc: int) -> str:
        if enc == ENC_PLAIN:
            return value
        if enc == ENC_ZLIB:
            return zlib.decompress(value).decode("utf-8")
        if enc == ENC_LZ4:
            import lz4.block

            return lz4.block.decompress(value).decode("utf-8")
        raise ValueError(f"unknown content encoding {enc}")


class SQLiteStorage(Storage):
    kind = "sqlite"

    def __init__(
        self, path: str | Path, db: DatabaseConfig | None = None, storage: StorageConfig | None = None
    ) -> None:
        self.path = Path(path)
        self.db = db or DatabaseConfig()
        self.codec = _Codec(storage or StorageConfig())
        self.page_cache_mb = (storage or StorageConfig()).buffer_pool_size_mb
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = StoreLock(self.path).acquire()
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        try:
            self._writer = self._connect()
            self._writer.executescript(SCHEMA)
            _add_missing_columns(self._writer)
            row = self._writer.execute(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'memories'), 0), "
                "coalesce((SELECT max(id) FROM memories), 0))"
            ).fetchone()
        except BaseException:
            self._lock.release()
            raise
        self._next_id = int(row[0]) + 1

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.db.busy_timeout_ms / 1000,
            cached_statements=max(self.db.statement_cache_size, 16),
        )
        if self.db.wal_mode:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.db.synchronous}")
        conn.execute(f"PRAGMA busy_timeout={self.db.busy_timeout_ms}")
        conn.execute(f"PRAGMA cache_size=-{max(self.page_cache_mb * 1024, 2048)}")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise sqlite3.ProgrammingError("storage is closed")
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # -- writes -----------------------------------------------------------------------------------
    def write(self, batch: WriteBatch) -> WriteResult:
        if batch.empty():
            return WriteResult([], [])
        with self._write_lock:
            conn = self._writer
            first = self._next_id
            conn.execute("BEGIN IMMEDIATE")
            try:
                placement = Placement.of(batch.new_memories, self._stored_digests(conn, batch.new_memories))
                ids = list(range(first, first + len(placement.fresh)))
                if placement.fresh:
                    rows = []
                    for mid, m in zip(ids, placement.fresh, strict=True):
                        content, enc = self.codec.encode(m.content)
                        ctx = json.dumps(m.context, ensure_ascii=False) if m.context else None
                        rows.append(
                            (
                                mid,
                                content,
                                enc,
                                m.type,
                                m.priority,
                                m.confidence,
                                m.created_at,
                                m.created_at,
                                ctx,
                                m.digest,
                            )
                        )
                    conn.executemany(
                        "INSERT INTO memories (id, content, enc, type, priority, confidence, access_count, "
                        "created_at, last_accessed, context, digest) "
                        "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                        rows,
                    )
                if placement.known:  # the same content again: counted as a use of the stored memory
                    conn.executemany(
                        "UPDATE memories SET access_count = access_count + 1, "
                        "last_accessed = max(last_accessed, ?) WHERE id = ?",
                        [(batch.new_memories[pos].created_at, mid) for pos, mid in placement.known.items()],
                    )
                if batch.memory_types:
                    conn.executemany(
                        "UPDATE memories SET type = ? WHERE id = ?", [(t, i) for i, t in batch.memory_types]
                    )
                if batch.memory_access:
                    conn.executemany(
                        "UPDATE memories SET access_count = access_count + ?, "
                        "last_accessed = max(last_accessed, ?) WHERE id = ?",
                        [(d, ts, i) for i, d, ts in batch.memory_access],
                    )
                deleted: list[int] = []
                for start in range(0, len(batch.deleted_memories), _IN_CHUNK):
                    chunk = batch.deleted_memories[start : start + _IN_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    deleted += [
                        r[0]
                        for r in conn.execute(
                            f"DELETE FROM memories WHERE id IN ({marks}) RETURNING id", chunk
                        )
                    ]
                if batch.concepts:
                    conn.executemany(
                        "INSERT OR REPLACE INTO concepts VALUES (?, ?, ?, ?, ?)",
                        [
                            (c.name, c.usage_count, c.confidence, c.created_at, c.last_used)
                            for c in batch.concepts
                        ],
                    )
                if batch.edges:
                    conn.executemany(
                        "INSERT OR REPLACE INTO edges VALUES (?, ?, ?, ?, ?, ?)",
                        [
                            (e.a, e.b, e.weight, e.initial_weight, e.updated_at, e.cooccurrences)
                            for e in batch.edges
                        ],
                    )
                if batch.removed_edges:
                    conn.executemany("DELETE FROM edges WHERE a = ? AND b = ?", batch.removed_edges)
                if batch.segments:
                    conn.executemany(
                        "INSERT OR REPLACE INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (s.text, s.frequency, s.confidence, s.units, s.created_at, s.left, s.right)
                            for s in batch.segments
                        ],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._next_id = first + len(ids)
            result = placement.ids(len(batch.new_memories), ids)
            result.deleted = deleted
            return result

    @staticmethod
    def _stored_digests(conn: sqlite3.Connection, memories: list[NewMemory]) -> dict[bytes, int]:
        digests = [m.digest for m in memories if m.digest is not None]
        found: dict[bytes, int] = {}
        for start in range(0, len(digests), _IN_CHUNK):
            chunk = digests[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(conn.execute(f"SELECT digest, id FROM memories WHERE digest IN ({marks})", chunk))
        return found

    # -- reads ------------------------------------------------------------------------------------
    def _record(self, row: tuple) -> MemoryRecord:
        mid, content, enc, mtype, prio, conf, acc, created, last, ctx = row
        return MemoryRecord(
            mid,
            self.codec.decode(content, enc),
            mtype,
            prio,
            conf,
            acc,
            created,
            last,
            json.loads(ctx) if ctx else None,
        )

    def get_memories(self, ids: list[int]) -> dict[int, MemoryRecord]:
        conn = self._reader()
        out: dict[int, MemoryRecord] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT {_MEMORY_COLS} FROM memories WHERE id IN ({marks})", chunk):
                out[row[0]] = self._record(row)
        return out

    def get_memory(self, memory_id: int) -> MemoryRecord | None:
        sql = f"SELECT {_MEMORY_COLS} FROM memories WHERE id = ?"
        row = self._reader().execute(sql, (memory_id,)).fetchone()
        return None if row is None else self._record(row)

    def iter_memory_rows(self, after_id: int = 0, batch: int = 10_000) -> Iterator[list[IndexRow]]:
        last = after_id
        decode = self.codec.decode
        sql = (
            "SELECT id, content, enc, type, confidence, created_at FROM memories WHERE id > ? "
            "ORDER BY id LIMIT ?"
        )
        with self._scan_connection() as conn:
            while rows := conn.execute(sql, (last, batch)).fetchall():
                yield [(r[0], decode(r[1], r[2]), r[3], r[4], r[5]) for r in rows]
                last = rows[-1][0]

    @contextlib.contextmanager
    def _scan_connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for one pass over a whole table, with a small page cache: through a reader's
        cache (heap, hundreds of MB) such a scan would leave it full of pages read once."""
        conn = self._connect()
        try:
            conn.execute("PRAGMA cache_size=-2048")
            conn.execute("PRAGMA query_only=1")
            yield conn
        finally:
            conn.close()

    def memory_ids(self) -> list[int]:
        return [r[0] for r in self._reader().execute("SELECT id FROM memories ORDER BY id")]

    def memory_catalog(self, codes: Mapping[str, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # One scan of the (type) index, which covers (id, type) in a few bytes a row, instead of
        # the table's pages with every content; sorted by id here.
        case, params = type_code_case(codes, "?")
        sql = f"SELECT id, {case} FROM memories INDEXED BY memories_type"
        with self._scan_connection() as conn:
            cursor = conn.execute(sql, params)
            pages = [catalog_page(rows) for rows in iter(lambda: cursor.fetchmany(CATALOG_PAGE), [])]
        if pages:
            ids = np.concatenate([p[0] for p in pages])
            types = np.concatenate([p[1] for p in pages])
            order = np.argsort(ids, kind="stable")
            yield ids[order], types[order]

    def store_id(self) -> str | None:
        with self._write_lock:
            self._writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))))"
            )
            row = self._writer.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        return str(row[0])

    def working_set(self) -> list[MemoryRecord]:
        sql = f"SELECT {_MEMORY_COLS} FROM memories WHERE type = 'working'"
        rows = self._reader().execute(sql).fetchall()
        return [self._record(r) for r in rows]

    def iter_concepts(self) -> Iterator[ConceptRecord]:
        sql = "SELECT name, usage_count, confidence, created_at, last_used FROM concepts"
        for row in self._reader().execute(sql):
            yield ConceptRecord(*row)

    def iter_edges(self) -> Iterator[EdgeRecord]:
        for row in self._reader().execute(
            "SELECT a, b, weight, initial_weight, updated_at, cooccurrences FROM edges"
        ):
            yield EdgeRecord(*row)

    def iter_segments(self) -> Iterator[SegmentRecord]:
        for row in self._reader().execute(
            "SELECT text, frequency, confidence, units, created_at, left_part, right_part FROM segments"
        ):
            yield SegmentRecord(*row)

    def counts(self) -> StoreCounts:
        conn = self._reader()

        def one(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        return StoreCounts(
            memories=one("SELECT count(*) FROM memories"),
            working_memories=one("SELECT count(*) FROM memories WHERE type = 'working'"),
            concepts=one("SELECT count(*) FROM concepts"),
            edges=one("SELECT count(*) FROM edges"),
            segments=one("SELECT count(*) FROM segments"),
        )

    def ping(self) -> bool:
        try:
            return self._reader().execute("SELECT 1").fetchone() == (1,)
        except sqlite3.Error:
            return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._lock.release()

    def snapshot_dir(self) -> Path | None:
        return self.path.with_name(self.path.name + ".index")

    def describe(self) -> str:
        return f"sqlite:{self.path}"
