"""Working memory: a bounded attention set over stored memories.

Importance = priority weight x decay, with decay = 0.5^(hours_since_access / half_life) x
(1 + access_bonus x access_count), clamped to [decay_min, decay_max]. The set holds at most
`working_memory_size` items; the least important leaves when a new one arrives.

Leaving working memory (eviction, consolidation or forgetting) only changes the stored record's type
to `episodic`: an acknowledged learn is durable at once and this module never deletes data. Items are
kept in fixed numpy slots so that finding the least important of 10k items is one vectorised pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainai_common.engine_config import MemoryConfig

SECONDS_PER_HOUR = 3600.0


def decay(
    hours_since_access: float,
    access_count: int,
    half_life_h: float = 24.0,
    bonus: float = 0.1,
    lo: float = 0.01,
    hi: float = 1.0,
) -> float:
    """Scalar decay factor, for reporting a single memory's importance."""
    raw = 0.5 ** (max(hours_since_access, 0.0) / half_life_h) * (1.0 + bonus * access_count)
    return min(max(raw, lo), hi)


@dataclass(slots=True)
class Departure:
    """Ids that left working memory in one operation, by reason."""

    evicted: list[int]
    consolidated: list[int]
    forgotten: list[int]

    @property
    def all(self) -> list[int]:
        return self.evicted + self.consolidated + self.forgotten


class WorkingMemory:
    """Bounded set of (memory id, priority weight, access count, last access time)."""

    def __init__(self, cfg: MemoryConfig) -> None:
        self.cfg = cfg
        n = cfg.working_memory_size
        self._ids = np.full(n, -1, dtype=np.int64)
        self._weight = np.zeros(n, dtype=np.float64)
        self._access = np.zeros(n, dtype=np.float64)
        self._last = np.zeros(n, dtype=np.float64)
        self._slot: dict[int, int] = {}
        self._free: list[int] = list(range(n - 1, -1, -1))

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, memory_id: int) -> bool:
        return memory_id in self._slot

    @property
    def capacity(self) -> int:
        return self.cfg.working_memory_size

    def ids(self) -> list[int]:
        return list(self._slot)

    def importances(self, now: float) -> np.ndarray:
        """Importance of every slot (free slots get +inf so they are never chosen)."""
        c = self.cfg
        hours = np.maximum(now - self._last, 0.0) / SECONDS_PER_HOUR
        raw = np.power(0.5, hours / c.decay_half_life_hours) * (1.0 + c.access_bonus * self._access)
        imp = self._weight * np.clip(raw, c.decay_min, c.decay_max)
        imp[self._ids < 0] = np.inf
        return imp

    def importance(self, memory_id: int, now: float) -> float | None:
        slot = self._slot.get(memory_id)
        if slot is None:
            return None
        c = self.cfg
        hours = (now - self._last[slot]) / SECONDS_PER_HOUR
        d = decay(
            hours, int(self._access[slot]), c.decay_half_life_hours, c.access_bonus, c.decay_min, c.decay_max
        )
        return float(self._weight[slot] * d)

    def add(self, items: list[tuple[int, float, int, float]], now: float) -> list[int]:
        """Insert (id, priority weight, access count, last access); return ids evicted to make room.

        New items compete with old ones: when the set overflows, the least important of all
        (old and new) leave, so a flood of low-priority text cannot push out critical items.
        """
        for memory_id, weight, accesses, last in items:
            slot = self._slot.get(memory_id)
            if slot is None:
                if not self._free:
                    self._grow(len(items))
                slot = self._free.pop()
                self._slot[memory_id] = slot
                self._ids[slot] = memory_id
            self._weight[slot] = weight
            self._access[slot] = accesses
            self._last[slot] = last
        overflow = len(self._slot) - self.capacity
        if overflow <= 0:
            return []
        imp = self.importances(now)
        victims = np.argpartition(imp, overflow - 1)[:overflow]
        evicted = [int(self._ids[s]) for s in victims]
        for memory_id in evicted:
            self._release(memory_id)
        self._shrink()
        return evicted

    def touch(self, memory_id: int, access_count: int, now: float) -> None:
        slot = self._slot.get(memory_id)
        if slot is not None:
            self._access[slot] = access_count
            self._last[slot] = now

    def remove(self, memory_id: int) -> bool:
        if memory_id not in self._slot:
            return False
        self._release(memory_id)
        return True

    def consolidate(self, now: float) -> Departure:
        """One pass: promote up to `consolidation_batch_size` rehearsed or important items to
        long-term memory, and forget items whose importance decayed below `forget_threshold`."""
        c = self.cfg
        if not self._slot:
            return Departure([], [], [])
        imp = self.importances(now)
        live = self._ids >= 0
        rehearsed = self._access >= c.consolidation_min_accesses
        promote = live & (rehearsed | (imp >= c.consolidation_min_importance))
        forget = live & ~promote & (imp < c.forget_threshold)
        promoted_slots = np.flatnonzero(promote)
        if len(promoted_slots) > c.consolidation_batch_size:
            order = np.argsort(-imp[promoted_slots], kind="stable")
            promoted_slots = promoted_slots[order[: c.consolidation_batch_size]]
        consolidated = [int(self._ids[s]) for s in promoted_slots]
        forgotten = [int(self._ids[s]) for s in np.flatnonzero(forget)]
        for memory_id in consolidated + forgotten:
            self._release(memory_id)
        return Departure([], consolidated, forgotten)

    def _release(self, memory_id: int) -> None:
        slot = self._slot.pop(memory_id)
        self._ids[slot] = -1
        self._weight[slot] = 0.0
        self._free.append(slot)

    def _grow(self, extra: int) -> None:
        """Temporarily make room for a batch larger than the free slots; `_shrink` undoes it."""
        old = len(self._ids)
        extra = max(extra, 1)
        self._ids = np.concatenate([self._ids, np.full(extra, -1, dtype=np.int64)])
        for name in ("_weight", "_access", "_last"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra)]))
        self._free.extend(range(old + extra - 1, old - 1, -1))

    def _shrink(self) -> None:
        n = self.cfg.working_memory_size
        if len(self._ids) == n:
            return
        keep = np.flatnonzero(self._ids >= 0)
        ids, weight = self._ids[keep], self._weight[keep]
        access, last = self._access[keep], self._last[keep]
        self._ids = np.full(n, -1, dtype=np.int64)
        self._weight = np.zeros(n)
        self._access = np.zeros(n)
        self._last = np.zeros(n)
        k = len(keep)
        self._ids[:k], self._weight[:k], self._access[:k], self._last[:k] = ids, weight, access, last
        self._slot = {int(m): i for i, m in enumerate(ids)}
        self._free = list(range(n - 1, k - 1, -1))
