"""The engine's one least-recently-used map: parsed queries, concept results, memory-search pages."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """Thread-safe, bounded by total weight: one per entry, or `weigh(value)` (e.g. bytes held).
    A capacity of 0 disables it; a value heavier than the capacity is not kept."""

    def __init__(self, capacity: int, weigh: Callable[[V], int] | None = None) -> None:
        self.capacity = max(capacity, 0)
        self.weight = 0
        self._weigh = weigh
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        if not self.capacity:
            return None
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            self._data.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V) -> None:
        w = self._weigh(value) if self._weigh is not None else 1
        if not self.capacity or w > self.capacity:
            return
        with self._lock:
            self._discard(key)
            self._data[key] = (value, w)
            self.weight += w
            self._shrink()

    def pop(self, key: K) -> None:
        with self._lock:
            self._discard(key)

    def resize(self, capacity: int) -> None:
        """Change the bound (0 disables and empties the map)."""
        with self._lock:
            self.capacity = max(capacity, 0)
            self._shrink()

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.weight = 0

    def _discard(self, key: K) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self.weight -= item[1]

    def _shrink(self) -> None:
        while self._data and self.weight > self.capacity:
            _, (_, w) = self._data.popitem(last=False)
            self.weight -= w

    def __len__(self) -> int:
        return len(self._data)
