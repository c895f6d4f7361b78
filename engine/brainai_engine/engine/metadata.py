"""Memory metadata that reads and working memory change, kept in memory until a write stores it.

Access counts (each `get_memory`) and type changes (items leaving working memory) are not worth a
commit of their own: they ride on the next write or the maintenance thread's flush. Readers see
them overlaid on the stored record. While a flush's commit is in flight its entries stay visible in
a second layer, so a search during that commit finds them neither missing (drained, not stored yet)
nor counted twice (stored, not cleared yet): an in-flight access counts only while the stored last
access is older than it, which the commit's `max(last_accessed, ?)` ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from brainai_engine.storage.base import MemoryRecord, WriteBatch


class PendingMetadata:
    """Unstored access counts and types of memories, overlaid on what storage returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[int, str] = {}
        self._access: dict[int, tuple[int, float]] = {}  # id -> (accesses, last access)
        self._flushing_types: dict[int, str] = {}
        self._flushing_access: dict[int, tuple[int, float]] = {}

    def set_type(self, memory_id: int, mtype: str) -> None:
        with self._lock:
            self._types[memory_id] = mtype

    def types(self) -> Iterator[tuple[int, str]]:
        with self._lock:
            return iter(list(self._types.items()))

    def record_access(self, memory_id: int, now: float) -> None:
        with self._lock:
            count, last = self._access.get(memory_id, (0, now))
            self._access[memory_id] = (count + 1, max(last, now))

    def forget(self, memory_id: int) -> None:
        """The memory is deleted: nothing of it is left to store."""
        with self._lock:
            self._types.pop(memory_id, None)
            self._access.pop(memory_id, None)

    def overlay(self, rec: MemoryRecord) -> MemoryRecord:
        """`rec` (fresh from storage) as it is once every change recorded here is stored."""
        with self._lock:
            rec.type = self._types.get(rec.id) or self._flushing_types.get(rec.id) or rec.type
            flushing = self._flushing_access.get(rec.id)
            if flushing is not None and flushing[1] > rec.last_accessed:
                rec.access_count += flushing[0]
                rec.last_accessed = flushing[1]
            pending = self._access.get(rec.id)
            if pending is not None:
                rec.access_count += pending[0]
                rec.last_accessed = max(rec.last_accessed, pending[1])
        return rec

    def drain_into(self, batch: WriteBatch) -> None:
        """Move everything recorded into `batch`; call `settle` once its commit returned or failed
        (one flush at a time: the engine's writer lock is held from here to there)."""
        with self._lock:
            self._flushing_types, self._types = self._types, {}
            self._flushing_access, self._access = self._access, {}
            batch.memory_types.extend(self._flushing_types.items())
            batch.memory_access.extend((i, c, last) for i, (c, last) in self._flushing_access.items())

    def settle(self, committed: bool) -> None:
        """The flush is over; a failed one is recorded again, to ride on the next write."""
        with self._lock:
            if not committed:
                for memory_id, mtype in self._flushing_types.items():
                    self._types.setdefault(memory_id, mtype)
                for memory_id, (count, last) in self._flushing_access.items():
                    more, later = self._access.get(memory_id, (0, last))
                    self._access[memory_id] = (count + more, max(last, later))
            self._flushing_types, self._flushing_access = {}, {}
