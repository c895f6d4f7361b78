"""Per-memory columns kept in process, indexed by memory id: type, confidence, creation time, length.

Search filters and sorts on these with numpy instead of fetching candidate rows from storage, so a
query touches storage only for the page it returns. Type code 0 marks a deleted or unknown id.
"""

from __future__ import annotations

import numpy as np

TYPE_CODES: dict[str, int] = {"working": 1, "episodic": 2, "semantic": 3}


class MemoryColumns:
    """Growable column arrays; the caller serialises writers (engine writer lock)."""

    def __init__(self, capacity: int = 1024) -> None:
        capacity = max(capacity, 16)
        self.type = np.zeros(capacity, dtype=np.uint8)
        self.confidence = np.zeros(capacity, dtype=np.float32)
        self.created = np.zeros(capacity, dtype=np.float64)
        self.length = np.zeros(capacity, dtype=np.float32)
        self.alive = 0
        self.total_length = 0.0

    def _ensure(self, max_id: int) -> None:
        size = len(self.type)
        if max_id < size:
            return
        new = max(size * 2, max_id + 1)
        for name in ("type", "confidence", "created", "length"):
            old = getattr(self, name)
            grown = np.zeros(new, dtype=old.dtype)
            grown[:size] = old
            setattr(self, name, grown)

    def set(
        self,
        ids: np.ndarray,
        types: np.ndarray,
        confidence: np.ndarray,
        created: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        if not len(ids):
            return
        self._ensure(int(ids.max()))
        fresh = self.type[ids] == 0
        self.alive += int(fresh.sum())
        self.total_length += float(lengths[fresh].sum() - self.length[ids[~fresh]].sum())
        self.type[ids] = types
        self.confidence[ids] = confidence
        self.created[ids] = created
        self.length[ids] = lengths

    def set_one(
        self, memory_id: int, type_code: int, confidence: float, created: float, length: float
    ) -> None:
        """`set` for a single new memory: scalar stores, without building four arrays."""
        self._ensure(memory_id)
        if self.type[memory_id] == 0:
            self.alive += 1
            self.total_length += length
        else:
            self.total_length += length - float(self.length[memory_id])
        self.type[memory_id] = type_code
        self.confidence[memory_id] = confidence
        self.created[memory_id] = created
        self.length[memory_id] = length

    def set_type(self, memory_id: int, mtype: str) -> None:
        if memory_id < len(self.type) and self.type[memory_id]:
            self.type[memory_id] = TYPE_CODES[mtype]

    def delete(self, memory_id: int) -> None:
        if memory_id < len(self.type) and self.type[memory_id]:
            self.type[memory_id] = 0
            self.alive -= 1
            self.total_length -= float(self.length[memory_id])

    @property
    def avg_length(self) -> float:
        return self.total_length / self.alive if self.alive else 1.0
