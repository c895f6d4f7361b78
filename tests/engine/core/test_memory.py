"""Working memory: decay formula, importance, eviction order, consolidation and forgetting."""

from __future__ import annotations

import pytest

from brainai_common.engine_config import MemoryConfig
from brainai_engine.core.memory import WorkingMemory, decay

H = 3600.0
LOW, MEDIUM, HIGH, CRITICAL = 1.0, 2.0, 3.0, 4.0


def test_decay_formula_and_clamp() -> None:
    assert decay(24, 0) == pytest.approx(0.5)
    assert decay(48, 2) == pytest.approx(0.25 * 1.2)
    assert decay(0, 5) == 1.0  # 1.5 clamped to 1
    assert decay(24 * 30, 0) == 0.01  # 2^-30 clamped to 0.01
    assert decay(12, 1, half_life_h=12, bonus=0.5) == pytest.approx(0.75)


def test_importance_is_priority_times_decay() -> None:
    wm = WorkingMemory(MemoryConfig(working_memory_size=10))
    wm.add([(1, HIGH, 0, 0.0)], now=0.0)
    assert wm.importance(1, now=24 * H) == pytest.approx(3 * 0.5)


def test_evicts_least_important_when_full() -> None:
    wm = WorkingMemory(MemoryConfig(working_memory_size=3))
    now = 100 * H
    wm.add(
        [
            (1, MEDIUM, 0, now - 48 * H),  # 2 * 0.25 = 0.5
            (2, LOW, 0, now),  # 1.0
            (3, CRITICAL, 0, now - 24 * H),
        ],
        now,
    )  # 2.0
    evicted = wm.add([(4, HIGH, 0, now)], now)
    assert evicted == [1]
    assert sorted(wm.ids()) == [2, 3, 4]
    evicted = wm.add([(5, MEDIUM, 0, now)], now)
    assert evicted == [2]


def test_accesses_protect_an_item() -> None:
    wm = WorkingMemory(MemoryConfig(working_memory_size=2))
    now = 50 * H
    wm.add([(1, LOW, 0, now - 24 * H), (2, LOW, 0, now - 24 * H)], now)
    wm.touch(1, access_count=8, now=now - 24 * H)  # decay 0.5 * 1.8 = 0.9 vs 0.5
    assert wm.add([(3, LOW, 0, now)], now) == [2]


def test_batch_larger_than_capacity_keeps_the_most_important() -> None:
    wm = WorkingMemory(MemoryConfig(working_memory_size=3))
    items = [(i, CRITICAL if i % 3 == 0 else LOW, 0, 0.0) for i in range(1, 10)]
    evicted = wm.add(items, now=0.0)
    assert sorted(wm.ids()) == [3, 6, 9]
    assert len(evicted) == 6 and len(wm) == 3


def test_consolidation_promotes_rehearsed_and_important_in_batches() -> None:
    cfg = MemoryConfig(
        working_memory_size=10,
        consolidation_batch_size=2,
        consolidation_min_accesses=2,
        consolidation_min_importance=3.5,
        forget_threshold=0.05,
    )
    wm = WorkingMemory(cfg)
    now = 10 * H
    wm.add(
        [
            (1, MEDIUM, 0, now),
            (2, CRITICAL, 0, now),
            (3, LOW, 0, now - 24 * 10 * H),
            (4, MEDIUM, 0, now),
            (5, MEDIUM, 0, now),
        ],
        now,
    )
    wm.touch(4, 2, now)
    wm.touch(5, 3, now)
    first = wm.consolidate(now)
    assert len(first.consolidated) == 2  # batch size bound
    assert first.forgotten == [3]  # 1 * 0.01 (clamped) < 0.05
    second = wm.consolidate(now)
    assert sorted(first.consolidated + second.consolidated) == [2, 4, 5]
    assert wm.ids() == [1]
