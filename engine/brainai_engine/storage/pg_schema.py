"""PostgreSQL schema and its migrations, applied at engine start.

Migrations are numbered and recorded in `schema_version`; each runs at most once. Every engine
replica runs `migrate` when it starts, and several may start at once, so the whole check-and-apply
happens in one transaction under an advisory lock: the first replica migrates, the others wait for
it and then find nothing to do.
"""

from __future__ import annotations

import psycopg

MIGRATION_LOCK = 0x62726169_6E000001
WRITE_LOCK = 0x62726169_6E000002

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
CREATE TABLE memories (
    id bigserial PRIMARY KEY,
    content text NOT NULL,
    type text NOT NULL,
    priority smallint NOT NULL,
    confidence double precision NOT NULL,
    access_count bigint NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    last_accessed double precision NOT NULL,
    context jsonb
);
CREATE INDEX memories_working ON memories (id) WHERE type = 'working';
CREATE TABLE concepts (
    name text PRIMARY KEY, usage_count bigint NOT NULL, confidence double precision NOT NULL,
    created_at double precision NOT NULL, last_used double precision NOT NULL
);
CREATE TABLE edges (
    a text NOT NULL, b text NOT NULL, weight double precision NOT NULL,
    initial_weight double precision NOT NULL, updated_at double precision NOT NULL, PRIMARY KEY (a, b)
);
CREATE TABLE segments (
    text text PRIMARY KEY, frequency bigint NOT NULL, confidence double precision NOT NULL,
    units integer NOT NULL, created_at double precision NOT NULL, left_part text, right_part text
);
CREATE TABLE changes (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    key text NOT NULL,
    aux text,
    origin text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
""",
    ),
    (
        2,
        """
ALTER TABLE edges ADD COLUMN cooccurrences bigint NOT NULL DEFAULT 1;
ALTER TABLE memories ADD COLUMN digest bytea;
CREATE INDEX memories_digest ON memories (digest) WHERE digest IS NOT NULL;
""",
    ),
]
LATEST = MIGRATIONS[-1][0]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer engine; running an older one against it is unsafe."""


def migrate(conn: psycopg.Connection) -> int:
    """Bring the schema to LATEST; returns the version found before migrating."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        found = int(row[0]) if row else 0
        if found > LATEST:
            raise SchemaTooNew(f"database schema is version {found}; this engine knows up to {LATEST}")
        for version, sql in MIGRATIONS:
            if version > found:
                conn.execute(sql)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    return found


def current_version(conn: psycopg.Connection) -> int:
    """Schema version visible on this server (0 when never migrated); works on a read replica."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(got[0]) if got else 0
