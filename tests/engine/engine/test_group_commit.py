"""Group commit: concurrent writers share transactions, and each is acknowledged only by its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from brainai_engine.engine.facade import Engine
from brainai_engine.engine.group_commit import GroupCommit
from brainai_engine.models import LearnRequest, MemoryIn, MemorySearchQuery
from brainai_engine.storage.base import WriteBatch, WriteResult


def test_queued_requests_share_one_run_and_get_their_own_results() -> None:
    runs: list[list[int]] = []

    def process(requests: list[int]) -> list[int]:
        runs.append(requests)
        time.sleep(0.02)  # a transaction's commit
        return [r * 10 for r in requests]

    group: GroupCommit[int, int] = GroupCommit(threading.Lock(), process, max_group=8)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(group.submit, range(64)))
    assert results == [r * 10 for r in range(64)]
    assert sorted(r for run in runs for r in run) == list(range(64))  # each exactly once
    assert len(runs) < 64 and max(len(run) for run in runs) <= 8
    assert (group.groups, group.requests) == (len(runs), 64)


def test_a_failed_run_fails_every_request_in_it() -> None:
    def process(requests: list[int]) -> list[int]:
        if 3 in requests:
            raise RuntimeError("disk full")
        return requests

    group: GroupCommit[int, int] = GroupCommit(threading.Lock(), process)
    assert group.submit(1) == 1
    with pytest.raises(RuntimeError, match="disk full"):
        group.submit(3)
    assert group.submit(2) == 2  # the next transaction is unaffected


def test_concurrent_learns_and_adds_commit_together_and_read_their_writes(
    open_engine: Callable[..., Engine],
) -> None:
    engine = open_engine()
    writes: list[int] = []
    real_write = engine.storage.write

    def counting(batch: WriteBatch) -> WriteResult:
        writes.append(len(batch.new_memories))
        time.sleep(0.005)  # an fsync's worth: what group commit amortises
        return real_write(batch)

    engine.storage.write = counting  # type: ignore[method-assign]

    def learn(i: int) -> tuple[str, list[str]]:
        token = f"glacier{i}x"
        if i % 2:
            ids = [engine.add_memory(MemoryIn(content=f"{token} added alone")).id]
        else:
            ids = engine.learn(LearnRequest(text=f"The {token} carved a fjord.")).memory_ids
        found = engine.search_memories(MemorySearchQuery(query=token)).results
        assert {h.memory.id for h in found} >= set(ids), token  # read-your-writes, at once
        return token, ids

    with ThreadPoolExecutor(16) as pool:
        done = list(pool.map(learn, range(96)))
    ids = [i for _, got in done for i in got]
    assert len(ids) == len(set(ids)) == sum(writes)  # every memory stored once, none lost
    assert len(writes) < 96  # transactions were shared
    assert max(writes) > 1


def test_groups_are_capped_by_weight_but_a_heavy_request_still_runs() -> None:
    runs: list[list[int]] = []

    def process(requests: list[int]) -> list[int]:
        runs.append(requests)
        time.sleep(0.01)
        return requests

    group: GroupCommit[int, int] = GroupCommit(threading.Lock(), process, max_group=10, weight=lambda r: r)
    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(group.submit, [3] * 40 + [25])) == [3] * 40 + [25]
    assert all(sum(run) <= 10 for run in runs if run != [25]) and [25] in runs
    assert group.heaviest == 25


@pytest.mark.parametrize("batch_size", [2, 1000])
def test_learning_batch_size_caps_memories_per_transaction(
    open_engine: Callable[..., Engine], batch_size: int
) -> None:
    """`learning.batch_size` is how many memories concurrent writes may share in one transaction."""
    engine = open_engine(learning={"batch_size": batch_size})
    sizes: list[int] = []
    real_write = engine.storage.write

    def counting(batch: WriteBatch) -> WriteResult:
        if batch.new_memories:
            sizes.append(len(batch.new_memories))
        time.sleep(0.005)
        return real_write(batch)

    engine.storage.write = counting  # type: ignore[method-assign]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: engine.add_memory(MemoryIn(content=f"moraine {i}")), range(64)))
    assert sum(sizes) == 64
    if batch_size == 2:
        assert max(sizes) <= 2 and len(sizes) >= 32
    else:
        assert max(sizes) > 2
