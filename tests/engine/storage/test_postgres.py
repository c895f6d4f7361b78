"""PostgreSQL storage against a real primary and streaming replica: the SQLite contract, migrations,
replica reads, the change log and behaviour while the primary is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from brainai_common.engine_config import DatabaseConfig
from brainai_engine.storage import changes as ch
from brainai_engine.storage.base import (
    ConceptRecord,
    EdgeRecord,
    SegmentRecord,
    StorageUnavailable,
    WriteBatch,
)
from brainai_engine.storage.pg_schema import LATEST
from brainai_engine.storage.postgres import PostgresStorage
from tests.engine.storage.contract import (
    check_identical_content_is_stored_once,
    check_write_and_read_back_everything,
    memory,
)
from tests.servers import PgCluster, wait_for

pytestmark = pytest.mark.postgres

Factory = Callable[..., PostgresStorage]


@pytest.fixture
def open_store(pg_database: tuple[str, str]) -> Iterator[Factory]:
    """Factory of storages on this test's database (with the replica unless replica=False)."""
    primary, replica = pg_database
    stores: list[PostgresStorage] = []

    def factory(replica_reads: bool = True, **db: object) -> PostgresStorage:
        cfg = DatabaseConfig(
            url=primary,
            read_urls=[replica] if replica_reads else [],
            connection_pool_size=4,
            pool_timeout_seconds=2,
            **db,
        )  # type: ignore[arg-type]
        store = PostgresStorage(cfg, "test")
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def store(open_store: Factory) -> PostgresStorage:
    return open_store()


def test_identical_content_is_stored_once(store: PostgresStorage) -> None:
    check_identical_content_is_stored_once(store, lambda check: wait_for(check, 5, "replica catch-up"))


def test_write_and_read_back_everything(store: PostgresStorage) -> None:
    check_write_and_read_back_everything(store, lambda check: wait_for(check, 5, "replica catch-up"))


def test_updates_access_upserts_and_delete(store: PostgresStorage) -> None:
    store.write(
        WriteBatch(new_memories=[memory("a"), memory("b")], concepts=[ConceptRecord("x", 1, 0.5, 1, 1)])
    )
    store.write(
        WriteBatch(
            memory_types=[(1, "episodic")],
            memory_access=[(1, 3, 2000.0)],
            concepts=[ConceptRecord("x", 7, 0.9, 1, 3)],
        )
    )
    rec = store.servers.primary.run(
        lambda c: c.execute("SELECT type, access_count, last_accessed FROM memories WHERE id = 1").fetchone()
    )
    assert rec == ("episodic", 3, 2000.0)
    result = store.write(WriteBatch(deleted_memories=[2, 42]))
    assert result.deleted == [2]
    assert store.get_memory(2) is None
    wait_for(lambda: [c.usage_count for c in store.iter_concepts()] == [7], 5, "concept upsert on replica")
    store.write(WriteBatch(removed_edges=[("x", "y")]))  # removing a missing edge is fine


def test_ids_never_reused_and_durable_across_reopen(open_store: Factory) -> None:
    s = open_store()
    s.write(WriteBatch(new_memories=[memory("one"), memory("two"), memory("three")]))
    s.write(WriteBatch(deleted_memories=[3]))
    s.close()
    s = open_store()
    wait_for(lambda: [r[1] for b in s.iter_memory_rows() for r in b] == ["one", "two"], 5, "rows")
    assert s.write(WriteBatch(new_memories=[memory("four")])).memory_ids == [4]
    assert s.servers.primary.run(
        lambda c: c.execute("SELECT array_agg(id ORDER BY id) FROM memories").fetchone()[0]
    ) == [1, 2, 4]


def test_failed_batch_is_rolled_back(store: PostgresStorage) -> None:
    bad = WriteBatch(
        new_memories=[memory("ok"), memory(None)],  # type: ignore[arg-type]
        concepts=[ConceptRecord("ghost", 1, 1.0, 0.0, 0.0)],
    )
    with pytest.raises(psycopg.errors.NotNullViolation):
        store.write(bad)
    primary = store.servers.primary
    assert primary.run(lambda c: c.execute("SELECT count(*) FROM memories").fetchone()[0]) == 0
    assert primary.run(lambda c: c.execute("SELECT count(*) FROM changes").fetchone()[0]) == 0
    assert store.write(WriteBatch(new_memories=[memory("after")])).memory_ids[0] > 0


def test_concurrent_writers_get_distinct_ascending_ids(open_store: Factory) -> None:
    stores = [open_store(), open_store()]
    got: list[list[int]] = [[], []]

    def writer(k: int) -> None:
        for i in range(20):
            got[k] += stores[k].write(WriteBatch(new_memories=[memory(f"{k}-{i}"), memory("x")])).memory_ids

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got[0]) | set(got[1])) == 80
    assert got[0] == sorted(got[0]) and got[1] == sorted(got[1])
    # change ids follow commit order, so the memory ranges in the log ascend too
    log = stores[0].changes_since(0, primary=True).changes
    firsts = [int(c.key) for c in log if c.kind == ch.MEMORIES]
    assert firsts == sorted(firsts) and len(firsts) == 40


def test_migrations_are_idempotent_and_safe_in_parallel(open_store: Factory) -> None:
    errors: list[BaseException] = []
    opened: list[PostgresStorage] = []

    def start() -> None:
        try:
            opened.append(open_store(replica_reads=False))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(opened) == 4
    versions = opened[0].servers.primary.run(
        lambda c: c.execute("SELECT array_agg(version) FROM schema_version").fetchone()[0]
    )
    assert versions == list(range(1, LATEST + 1))


def test_session_settings(open_store: Factory) -> None:
    s = open_store(query_timeout_seconds=7, work_mem_mb=64)
    for server in [s.servers.primary, *s.servers.replicas]:
        got = server.run(
            lambda c: c.execute(
                "SELECT current_setting('statement_timeout'), current_setting('work_mem')"
            ).fetchone()
        )
        assert got == ("7s", "64MB")
    assert s.servers.replicas[0].run(
        lambda c: c.execute("SHOW default_transaction_read_only").fetchone()
    ) == ("on",)
    assert "@" not in s.describe()


def test_reads_use_the_replica_and_fall_back_to_primary_for_lagging_rows(
    store: PostgresStorage, pg_cluster: PgCluster
) -> None:
    store.write(WriteBatch(new_memories=[memory("early")]))

    def replica_has_it() -> bool:
        seen = store.changes_since(0)
        return seen.server == "replica-0" and bool(seen.changes)

    wait_for(replica_has_it, 5, "replica catch-up")
    pg_cluster.psql(pg_cluster.replica, "SELECT pg_wal_replay_pause()")
    try:
        new_id = store.write(WriteBatch(new_memories=[memory("fresh")])).memory_ids[0]
        assert store.changes_since(0).last_id < store.changes_since(0, primary=True).last_id
        rec = store.get_memory(new_id)  # not on the paused replica: read from the primary
        assert rec is not None and rec.content == "fresh"
    finally:
        pg_cluster.psql(pg_cluster.replica, "SELECT pg_wal_replay_resume()")


def test_change_log_records_every_kind_with_payload_for_other_origins(open_store: Factory) -> None:
    a, b = open_store(), open_store()
    a.write(
        WriteBatch(
            new_memories=[memory("m1"), memory("m2")],
            concepts=[ConceptRecord("ai", 1, 0.7, 1, 1)],
            edges=[EdgeRecord("ai", "ml", 0.2, 0.1, 1)],
            segments=[SegmentRecord("ai", 1, 0.5, 1, 1.0)],
        )
    )
    a.write(WriteBatch(memory_types=[(1, "episodic")], deleted_memories=[2], removed_edges=[("ai", "ml")]))
    seen = b.changes_since(0, primary=True)
    kinds = [c.kind for c in seen.changes]
    assert kinds[0] == ch.MEMORIES and {
        ch.CONCEPT,
        ch.EDGE,
        ch.SEGMENT,
        ch.MEMORY_TYPE,
        ch.MEMORY_DELETED,
    } <= set(kinds)
    assert [c.id for c in seen.changes] == sorted(c.id for c in seen.changes)
    assert set(seen.memories) == {1} and seen.memories[1][1] == "m1"  # 2 is deleted by now
    assert seen.memory_types == {1: "episodic"} and set(seen.concepts) == {"ai"}
    assert seen.edges == {} and set(seen.segments) == {"ai"}  # the edge is gone: absent means removed
    own = a.changes_since(0, primary=True)
    assert own.last_id == seen.last_id and not own.memories and not own.concepts
    assert a.changes_since(seen.last_id, primary=True).changes == []
    assert a.last_change_id() <= seen.last_id


def test_primary_down_reads_continue_writes_fail_fast_then_recover(
    store: PostgresStorage, pg_cluster: PgCluster
) -> None:
    ids = store.write(WriteBatch(new_memories=[memory("kept")])).memory_ids
    wait_for(lambda: store.changes_since(0).changes, 30, "replica catch-up")
    pg_cluster.stop_primary()
    try:
        assert store.get_memories(ids)[ids[0]].content == "kept"
        assert store.ping()
        with pytest.raises(StorageUnavailable) as err:
            store.write(WriteBatch(new_memories=[memory("lost")]))
        assert err.value.retry_after > 0
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as again:
            store.write(WriteBatch(new_memories=[memory("lost")]))
        # no wait for the pool (pool_timeout_seconds, 5 s) while the primary is known down
        assert time.monotonic() - started < 2.5
        assert again.value.retry_after <= err.value.retry_after  # what is left of the cooldown
        assert store.reachability() == {"primary": False, "replica-0": True}
    finally:
        pg_cluster.start_primary()
    deadline = time.monotonic() + 60  # a restart on a loaded machine; the loop ends at the first success
    while True:
        try:
            ids += store.write(WriteBatch(new_memories=[memory("after")])).memory_ids
            break
        except StorageUnavailable:
            assert time.monotonic() < deadline, "writes did not recover"
            time.sleep(0.2)
    assert [r.content for _, r in sorted(store.get_memories(ids).items())] == ["kept", "after"]
