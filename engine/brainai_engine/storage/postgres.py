"""PostgreSQL storage: the shared source of truth of a horizontally scaled engine.

Writes go to the primary (`database.url`) in one transaction and are committed before `write`
returns. Reads go to a read replica (`database.read_urls`) when there is one, and fall back to the
primary; a record a lagging replica does not have yet is read from the primary, so an engine always
finds what it just wrote. Large contents are compressed by PostgreSQL itself (TOAST).

Every write transaction first takes one advisory lock. That serialises writers across all engine
replicas, which is what makes both memory ids and change-log ids follow commit order: a reader that
has seen change N has seen every change below N, so one cursor is enough to follow the log.
The log (`changes`) is written in the same transaction as the data (see `storage.changes`).
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import psycopg

from brainai_common.engine_config import DatabaseConfig
from brainai_engine.storage import changes as ch
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
    StorageUnavailable,
    StoreCounts,
    WriteBatch,
    WriteResult,
    catalog_page,
    type_code_case,
)
from brainai_engine.storage.pg_schema import LATEST, WRITE_LOCK, current_version, migrate
from brainai_engine.storage.pg_servers import COOLDOWN_S, Server, ServerDown, Servers

log = logging.getLogger(__name__)

_MEMORY_COLS = "id, content, type, priority, confidence, access_count, created_at, last_accessed, context"
_PAGE = 10_000
RECENT_DELETE_S = 10.0
ChangeRow = tuple[str, str, str | None]


def _fetch_all(sql: str, params: tuple[Any, ...], conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _record(row: tuple[Any, ...]) -> MemoryRecord:
    return MemoryRecord(*row[:9])


class PostgresStorage(Storage):
    kind = "postgres"

    def __init__(self, db: DatabaseConfig, instance_id: str = "brain-ai") -> None:
        if not db.url:
            raise ValueError("database.url is required for PostgreSQL")
        self.db = db
        # Unique per process (two replicas may share an instance id), so a replica can tell its own
        # changes in the log from everyone else's.
        self.origin = f"{instance_id}/{uuid.uuid4().hex[:12]}"
        options = {"statement_timeout": f"{int(db.query_timeout_seconds * 1000)}"}
        if db.work_mem_mb:
            options["work_mem"] = f"{db.work_mem_mb}MB"

        def server(name: str, url: str, read_only: bool) -> Server:
            return Server(
                name,
                url,
                size=db.connection_pool_size,
                timeout=db.pool_timeout_seconds,
                options=options,
                read_only=read_only,
                statement_cache=db.statement_cache_size,
                application_name=f"brain-ai {instance_id}",
            )

        self.servers = Servers(
            server("primary", db.url, False),
            [server(f"replica-{i}", u, True) for i, u in enumerate(db.read_urls)],
        )
        self._listeners: list[Callable[[int], None]] = []
        # Ids this process deleted lately, hidden from replica reads until the replica has caught up.
        self._recent_deletes: dict[int, float] = {}
        try:
            self._migrate()
        except BaseException:
            self.servers.close()
            raise

    def _migrate(self) -> None:
        """Migrate on the primary; when it is down, start read-only if a replica has the schema."""
        try:
            self.servers.primary.run(migrate, timeout=max(self.db.pool_timeout_seconds, 10.0))
            return
        except ServerDown:
            pass
        version, _ = self._read(current_version)
        if version != LATEST:
            raise StorageUnavailable("PostgreSQL primary unreachable and no replica has the current schema")
        log.warning("starting with the primary unreachable: serving reads, refusing writes until it returns")

    # -- routing ----------------------------------------------------------------------------------
    def _read(self, fn: Callable[[psycopg.Connection], Any], primary: bool = False) -> tuple[Any, Server]:
        try:
            return self.servers.read(fn, primary=primary)
        except ServerDown as exc:
            raise StorageUnavailable(str(exc), exc.retry_after) from exc

    def on_commit(self, listener: Callable[[int], None]) -> None:
        """Call listener(last change id) after every committed write (change notifications)."""
        self._listeners.append(listener)

    # -- writes -----------------------------------------------------------------------------------
    def write(self, batch: WriteBatch) -> WriteResult:
        if batch.empty():
            return WriteResult([], [])
        try:
            result, last_change = self.servers.primary.run(lambda conn: self._write_tx(conn, batch))
        except ServerDown as exc:
            raise StorageUnavailable(
                "PostgreSQL primary unreachable; the write was not stored", exc.retry_after
            ) from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise StorageUnavailable(
                "database.url points at a read-only server (failover in progress?)", COOLDOWN_S
            ) from exc
        except psycopg.errors.QueryCanceled as exc:
            raise StorageUnavailable("write exceeded database.query_timeout_seconds", COOLDOWN_S) from exc
        if result.deleted:
            now = time.monotonic()
            recent = self._recent_deletes
            self._recent_deletes = {i: t for i, t in recent.items() if now - t < RECENT_DELETE_S}
            self._recent_deletes.update((i, now) for i in result.deleted)
        for listener in self._listeners:
            try:
                listener(last_change)
            except Exception:  # a notification must never fail a committed write
                log.exception("change listener failed")
        return result

    def _write_tx(self, conn: psycopg.Connection, batch: WriteBatch) -> tuple[WriteResult, int]:
        log_rows: list[ChangeRow] = []
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            placement = Placement.of(batch.new_memories, self._stored_digests(conn, batch.new_memories))
            ids = self._insert_memories(conn, placement.fresh, log_rows)
            if placement.known:  # the same content again: counted as a use of the stored memory
                known = list(placement.known.items())
                conn.execute(
                    "UPDATE memories m SET access_count = m.access_count + 1, "
                    "last_accessed = greatest(m.last_accessed, v.ts) "
                    "FROM unnest(%s::bigint[], %s::float8[]) AS v(id, ts) WHERE m.id = v.id",
                    ([mid for _, mid in known], [batch.new_memories[pos].created_at for pos, _ in known]),
                )
            if batch.memory_types:
                rows = conn.execute(
                    "UPDATE memories m SET type = v.t FROM unnest(%s::bigint[], %s::text[]) AS v(id, t) "
                    "WHERE m.id = v.id RETURNING m.id",
                    ([i for i, _ in batch.memory_types], [t for _, t in batch.memory_types]),
                ).fetchall()
                log_rows += [(ch.MEMORY_TYPE, str(r[0]), None) for r in rows]
            if batch.memory_access:
                conn.execute(
                    "UPDATE memories m SET access_count = m.access_count + v.d, "
                    "last_accessed = greatest(m.last_accessed, v.ts) "
                    "FROM unnest(%s::bigint[], %s::bigint[], %s::float8[]) AS v(id, d, ts) WHERE m.id = v.id",
                    (
                        [a[0] for a in batch.memory_access],
                        [a[1] for a in batch.memory_access],
                        [a[2] for a in batch.memory_access],
                    ),
                )
            deleted: list[int] = []
            if batch.deleted_memories:
                deleted = sorted(
                    r[0]
                    for r in conn.execute(
                        "DELETE FROM memories WHERE id = ANY(%s) RETURNING id", (batch.deleted_memories,)
                    )
                )
                log_rows += [(ch.MEMORY_DELETED, str(i), None) for i in deleted]
            self._upsert_graph(conn, batch, log_rows)
            last = 0
            if log_rows:
                row = conn.execute(
                    "WITH ins AS (INSERT INTO changes (kind, key, aux, origin) "
                    "SELECT k, key, aux, %s FROM unnest(%s::text[], %s::text[], %s::text[]) "
                    "AS v(k, key, aux) "
                    "RETURNING id) SELECT max(id) FROM ins",
                    (
                        self.origin,
                        [r[0] for r in log_rows],
                        [r[1] for r in log_rows],
                        [r[2] for r in log_rows],
                    ),
                ).fetchone()
                last = int(row[0]) if row and row[0] is not None else 0
        result = placement.ids(len(batch.new_memories), ids)
        result.deleted = deleted
        return result, last

    @staticmethod
    def _stored_digests(conn: psycopg.Connection, memories: list[NewMemory]) -> dict[bytes, int]:
        """Run under the write lock, so no other engine can store the same digest meanwhile."""
        digests = [m.digest for m in memories if m.digest is not None]
        if not digests:
            return {}
        rows = conn.execute("SELECT digest, id FROM memories WHERE digest = ANY(%s::bytea[])", (digests,))
        return {bytes(d): int(i) for d, i in rows}

    def _insert_memories(
        self, conn: psycopg.Connection, memories: list[NewMemory], log_rows: list[ChangeRow]
    ) -> list[int]:
        if not memories:
            return []
        n = len(memories)
        ids = sorted(
            r[0]
            for r in conn.execute(
                "SELECT nextval(pg_get_serial_sequence('memories', 'id')) FROM generate_series(1, %s)", (n,)
            )
        )
        with conn.cursor().copy(
            "COPY memories (id, content, type, priority, confidence, access_count, created_at, "
            "last_accessed, context, digest) FROM STDIN"
        ) as copy:
            for mid, m in zip(ids, memories, strict=True):
                ctx = json.dumps(m.context, ensure_ascii=False) if m.context else None
                copy.write_row(
                    (
                        mid,
                        m.content,
                        m.type,
                        m.priority,
                        m.confidence,
                        0,
                        m.created_at,
                        m.created_at,
                        ctx,
                        m.digest,
                    )
                )
        log_rows.append((ch.MEMORIES, str(ids[0]), str(ids[-1])))
        return ids

    @staticmethod
    def _upsert_graph(conn: psycopg.Connection, batch: WriteBatch, log_rows: list[ChangeRow]) -> None:
        if batch.concepts:
            cs = batch.concepts
            conn.execute(
                "INSERT INTO concepts SELECT * FROM unnest(%s::text[], %s::bigint[], %s::float8[], "
                "%s::float8[], %s::float8[]) ON CONFLICT (name) DO UPDATE SET "
                "usage_count = excluded.usage_count, confidence = excluded.confidence, "
                "created_at = excluded.created_at, last_used = excluded.last_used",
                (
                    [c.name for c in cs],
                    [c.usage_count for c in cs],
                    [c.confidence for c in cs],
                    [c.created_at for c in cs],
                    [c.last_used for c in cs],
                ),
            )
            log_rows += [(ch.CONCEPT, c.name, None) for c in cs]
        if batch.edges:
            es = batch.edges
            conn.execute(
                "INSERT INTO edges SELECT * FROM unnest(%s::text[], %s::text[], %s::float8[], %s::float8[], "
                "%s::float8[], %s::int8[]) ON CONFLICT (a, b) DO UPDATE SET weight = excluded.weight, "
                "initial_weight = excluded.initial_weight, updated_at = excluded.updated_at, "
                "cooccurrences = excluded.cooccurrences",
                (
                    [e.a for e in es],
                    [e.b for e in es],
                    [e.weight for e in es],
                    [e.initial_weight for e in es],
                    [e.updated_at for e in es],
                    [e.cooccurrences for e in es],
                ),
            )
            log_rows += [(ch.EDGE, e.a, e.b) for e in es]
        if batch.removed_edges:
            rm = batch.removed_edges
            conn.execute(
                "DELETE FROM edges e USING unnest(%s::text[], %s::text[]) AS v(a, b) "
                "WHERE e.a = v.a AND e.b = v.b",
                ([a for a, _ in rm], [b for _, b in rm]),
            )
            log_rows += [(ch.EDGE, a, b) for a, b in rm]
        if batch.segments:
            ss = batch.segments
            conn.execute(
                "INSERT INTO segments SELECT * FROM unnest(%s::text[], %s::bigint[], %s::float8[], "
                "%s::int[], "
                "%s::float8[], %s::text[], %s::text[]) ON CONFLICT (text) DO UPDATE SET "
                "frequency = excluded.frequency, confidence = excluded.confidence, units = excluded.units, "
                "created_at = excluded.created_at, left_part = excluded.left_part, "
                "right_part = excluded.right_part",
                (
                    [s.text for s in ss],
                    [s.frequency for s in ss],
                    [s.confidence for s in ss],
                    [s.units for s in ss],
                    [s.created_at for s in ss],
                    [s.left for s in ss],
                    [s.right for s in ss],
                ),
            )
            log_rows += [(ch.SEGMENT, s.text, None) for s in ss]

    # -- reads ------------------------------------------------------------------------------------
    def get_memories(self, ids: list[int]) -> dict[int, MemoryRecord]:
        if not ids:
            return {}
        sql = f"SELECT {_MEMORY_COLS} FROM memories WHERE id = ANY(%s)"

        def fetch(conn: psycopg.Connection, wanted: list[int]) -> dict[int, MemoryRecord]:
            return {r[0]: _record(r) for r in conn.execute(sql, (wanted,))}

        out, server = self._read(lambda c: fetch(c, ids))
        if self._recent_deletes and server is not self.servers.primary:
            for memory_id in [i for i in out if i in self._recent_deletes]:
                del out[memory_id]
        missing = [i for i in ids if i not in out]
        if missing and server is not self.servers.primary and self.servers.primary.up:
            # A replica behind the primary lacks the newest rows: ask the primary for those.
            try:
                more, _ = self._read(lambda c: fetch(c, missing), primary=True)
                out.update(more)
            except StorageUnavailable:
                pass
        return out

    def iter_memory_rows(self, after_id: int = 0, batch: int = 10_000) -> Iterator[list[IndexRow]]:
        sql = (
            "SELECT id, content, type, confidence, created_at FROM memories WHERE id > %s "
            "ORDER BY id LIMIT %s"
        )
        last = after_id
        while True:
            rows, _ = self._read(functools.partial(_fetch_all, sql, (last, batch)))
            if not rows:
                return
            yield [tuple(r) for r in rows]
            last = rows[-1][0]

    def memory_ids(self) -> list[int]:
        rows, _ = self._read(lambda c: c.execute("SELECT id FROM memories ORDER BY id").fetchall())
        return [r[0] for r in rows]

    def memory_catalog(self, codes: Mapping[str, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        case, params = type_code_case(codes, "%s")
        sql = f"SELECT id, {case} FROM memories WHERE id > %s ORDER BY id LIMIT %s"
        last = 0
        while True:
            rows, _ = self._read(functools.partial(_fetch_all, sql, (*params, last, CATALOG_PAGE)))
            if not rows:
                return
            yield catalog_page(rows)
            last = rows[-1][0]

    def working_set(self) -> list[MemoryRecord]:
        sql = f"SELECT {_MEMORY_COLS} FROM memories WHERE type = 'working'"
        rows, _ = self._read(lambda c: c.execute(sql).fetchall())
        return [_record(r) for r in rows]

    def _paged(self, sql: str) -> Iterator[tuple]:
        """Rows of `sql` (keyed by its first column, `WHERE key > %s ORDER BY key LIMIT %s`) in pages."""
        last = ""
        while True:
            rows, _ = self._read(functools.partial(_fetch_all, sql, (last, _PAGE)))
            yield from rows
            if len(rows) < _PAGE:
                return
            last = rows[-1][0]

    def iter_concepts(self) -> Iterator[ConceptRecord]:
        for row in self._paged(
            "SELECT name, usage_count, confidence, created_at, last_used FROM concepts "
            "WHERE name > %s ORDER BY name LIMIT %s"
        ):
            yield ConceptRecord(*row)

    def iter_edges(self) -> Iterator[EdgeRecord]:
        sql = (
            "SELECT a, b, weight, initial_weight, updated_at, cooccurrences FROM edges "
            "WHERE (a, b) > (%s, %s) ORDER BY a, b LIMIT %s"
        )
        last = ("", "")
        while True:
            rows, _ = self._read(functools.partial(_fetch_all, sql, (*last, _PAGE)))
            yield from (EdgeRecord(*r) for r in rows)
            if len(rows) < _PAGE:
                return
            last = (rows[-1][0], rows[-1][1])

    def iter_segments(self) -> Iterator[SegmentRecord]:
        for row in self._paged(
            "SELECT text, frequency, confidence, units, created_at, left_part, right_part "
            "FROM segments WHERE text > %s ORDER BY text LIMIT %s"
        ):
            yield SegmentRecord(*row)

    def counts(self) -> StoreCounts:
        sql = (
            "SELECT (SELECT count(*) FROM memories), "
            "(SELECT count(*) FROM memories WHERE type = 'working'), (SELECT count(*) FROM concepts), "
            "(SELECT count(*) FROM edges), (SELECT count(*) FROM segments)"
        )
        row, _ = self._read(lambda c: c.execute(sql).fetchone())
        return StoreCounts(*(int(v) for v in row))

    # -- change log -------------------------------------------------------------------------------
    def change_log(self) -> PostgresStorage:
        """Every write appends to the `changes` table, so this store is its own change log."""
        return self

    def last_change_id(self) -> int:
        """Newest change id visible on the read server (an engine's cursor before it loads)."""
        row, _ = self._read(lambda c: c.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone())
        return int(row[0])

    def changes_since(self, after_id: int, limit: int = 5000, primary: bool = False) -> ch.ChangeSet:
        """Log rows after `after_id` and, for other origins' changes, the rows they point at, all
        from one snapshot of one server (a replica unless `primary`)."""

        def fetch(conn: psycopg.Connection) -> ch.ChangeSet:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                out = ch.ChangeSet(after_id)
                rows = conn.execute(
                    "SELECT id, kind, key, aux, origin FROM changes WHERE id > %s ORDER BY id LIMIT %s",
                    (after_id, limit),
                ).fetchall()
                out.changes = [ch.Change(*r) for r in rows]
                self._fetch_payload(conn, out)
            finally:
                conn.execute("COMMIT")
            return out

        result, server = self._read(fetch, primary=primary)
        result.server = server.name
        return result

    def _fetch_payload(self, conn: psycopg.Connection, out: ch.ChangeSet) -> None:
        theirs = [c for c in out.changes if c.origin != self.origin]
        by_kind: dict[str, list[ch.Change]] = {}
        for c in theirs:
            by_kind.setdefault(c.kind, []).append(c)
        if ranges := by_kind.get(ch.MEMORIES):
            for r in conn.execute(
                "SELECT m.id, m.content, m.type, m.confidence, m.created_at FROM "
                "unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi) "
                "JOIN memories m ON m.id BETWEEN r.lo AND r.hi "
                "ORDER BY m.id",
                ([int(c.key) for c in ranges], [int(c.aux or c.key) for c in ranges]),
            ):
                out.memories[r[0]] = tuple(r)
        if typed := by_kind.get(ch.MEMORY_TYPE):
            out.memory_types = dict(
                conn.execute(
                    "SELECT id, type FROM memories WHERE id = ANY(%s)", ([int(c.key) for c in typed],)
                ).fetchall()
            )
        if concepts := by_kind.get(ch.CONCEPT):
            for r in conn.execute(
                "SELECT name, usage_count, confidence, created_at, last_used FROM concepts "
                "WHERE name = ANY(%s)",
                ([c.key for c in concepts],),
            ):
                out.concepts[r[0]] = ConceptRecord(*r)
        if edges := by_kind.get(ch.EDGE):
            for r in conn.execute(
                "SELECT e.a, e.b, e.weight, e.initial_weight, e.updated_at, e.cooccurrences "
                "FROM unnest(%s::text[], %s::text[]) "
                "AS k(a, b) JOIN edges e ON e.a = k.a AND e.b = k.b",
                ([c.key for c in edges], [c.aux or "" for c in edges]),
            ):
                out.edges[(r[0], r[1])] = EdgeRecord(*r)
        if segments := by_kind.get(ch.SEGMENT):
            for r in conn.execute(
                "SELECT text, frequency, confidence, units, created_at, left_part, "
                "right_part "
                "FROM segments WHERE text = ANY(%s)",
                ([c.key for c in segments],),
            ):
                out.segments[r[0]] = SegmentRecord(*r)

    # -- health and lifecycle ---------------------------------------------------------------------
    def ping(self) -> bool:
        """Readiness: reads can be served (by a replica or the primary)."""
        try:
            self._read(lambda c: c.execute("SELECT 1").fetchone())
            return True
        except StorageUnavailable:
            return False

    def reachability(self) -> dict[str, bool]:
        """Which servers answer right now, by role (for /ready details)."""
        out = {"primary": self.servers.primary.ping()}
        for server in self.servers.replicas:
            out[server.name] = server.ping()
        return out

    def close(self) -> None:
        self.servers.close()

    def describe(self) -> str:
        replicas = "".join(f" +{s.dsn}" for s in self.servers.replicas)
        return f"postgres:{self.servers.primary.dsn}{replicas}"
