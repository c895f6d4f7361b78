"""The storage interface every backend (SQLite, PostgreSQL, Redis-fronted) implements.

Storage is the source of truth: the engine keeps derived in-process structures (vector index,
concept graph, segment vocabulary, working memory) and rebuilds them from here at open. All
mutations of one engine call go through a single `write(WriteBatch)`, which must be one
transaction and durable when it returns; that is what makes an acknowledged learn survive a crash.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainai_engine.storage.changes import ChangeLog
from brainai_engine.storage.records import (
    ConceptRecord,
    EdgeRecord,
    IndexRow,
    MemoryRecord,
    NewMemory,
    SegmentRecord,
)

__all__ = [
    "ChangeLog",
    "ConceptRecord",
    "EdgeRecord",
    "IndexRow",
    "MemoryRecord",
    "NewMemory",
    "Placement",
    "SegmentRecord",
    "Storage",
    "StorageUnavailable",
    "StoreCounts",
    "WriteBatch",
    "WriteResult",
]


CATALOG_PAGE = 100_000


def type_code_case(codes: Mapping[str, int], placeholder: str) -> tuple[str, list[object]]:
    """`CASE type WHEN … END` mapping type names to `codes` (0 for any other), with its parameters:
    the catalog's SQL in both backends."""
    cases = " ".join(f"WHEN {placeholder} THEN {placeholder}" for _ in codes)
    return f"CASE type {cases} ELSE 0 END", [v for item in codes.items() for v in item]


def catalog_page(rows: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        np.fromiter((r[1] for r in rows), dtype=np.uint8, count=len(rows)),
    )


class StorageUnavailable(RuntimeError):
    """The store cannot take writes (or serve reads) right now; retrying later may succeed.

    Raised for connection-level failures only, never for a bad batch, so the HTTP layer can answer
    503 with Retry-After instead of 500.
    """

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(slots=True)
class WriteBatch:
    """Everything one engine operation changes; applied atomically by `Storage.write`."""

    new_memories: list[NewMemory] = field(default_factory=list)
    memory_types: list[tuple[int, str]] = field(default_factory=list)
    memory_access: list[tuple[int, int, float]] = field(default_factory=list)
    deleted_memories: list[int] = field(default_factory=list)
    concepts: list[ConceptRecord] = field(default_factory=list)
    edges: list[EdgeRecord] = field(default_factory=list)
    removed_edges: list[tuple[str, str]] = field(default_factory=list)
    segments: list[SegmentRecord] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.new_memories
            or self.memory_types
            or self.memory_access
            or self.deleted_memories
            or self.concepts
            or self.edges
            or self.removed_edges
            or self.segments
        )


@dataclass(slots=True)
class WriteResult:
    memory_ids: list[int]  # one per new memory: its new id, or the stored one of the same digest
    deleted: list[int]
    known: set[int] = field(default_factory=set)  # positions of new memories that were already stored


@dataclass(slots=True)
class Placement:
    """Where each new memory of a batch goes: inserted (`fresh`, in order) or mapped onto a memory
    of the same digest, stored before (`known`: position -> id) or earlier in this batch
    (`same_as`: position -> that earlier position)."""

    fresh: list[NewMemory]
    known: dict[int, int]
    same_as: dict[int, int]

    @classmethod
    def of(cls, memories: list[NewMemory], stored: Mapping[bytes, int]) -> Placement:
        fresh: list[NewMemory] = []
        known: dict[int, int] = {}
        same_as: dict[int, int] = {}
        first: dict[bytes, int] = {}
        for pos, m in enumerate(memories):
            if m.digest is None:
                fresh.append(m)
            elif m.digest in stored:
                known[pos] = stored[m.digest]
            elif m.digest in first:
                same_as[pos] = first[m.digest]
            else:
                first[m.digest] = pos
                fresh.append(m)
        return cls(fresh, known, same_as)

    def ids(self, count: int, fresh_ids: list[int]) -> WriteResult:
        """The per-position ids once the fresh memories got `fresh_ids`."""
        ids: list[int] = []
        taken = iter(fresh_ids)
        for pos in range(count):
            if pos in self.known:
                ids.append(self.known[pos])
            elif pos in self.same_as:
                ids.append(ids[self.same_as[pos]])
            else:
                ids.append(next(taken))
        return WriteResult(ids, [], set(self.known) | set(self.same_as))


@dataclass(slots=True)
class StoreCounts:
    memories: int
    working_memories: int
    concepts: int
    edges: int
    segments: int


class Storage(ABC):
    """Durable store of memories, concepts, edges and segments."""

    kind: str = "abstract"

    @abstractmethod
    def write(self, batch: WriteBatch) -> WriteResult:
        """Apply the batch in one transaction; durable on return. Ids of new memories are in order.
        memory_access entries are (id, access_count_delta, last_accessed)."""

    @abstractmethod
    def get_memories(self, ids: list[int]) -> dict[int, MemoryRecord]:
        """Records for the ids that exist (missing ids are simply absent)."""

    def get_memory(self, memory_id: int) -> MemoryRecord | None:
        return self.get_memories([memory_id]).get(memory_id)

    @abstractmethod
    def iter_memory_rows(self, after_id: int = 0, batch: int = 10_000) -> Iterator[list[IndexRow]]:
        """(id, content, type, confidence, created_at) of memories with id > after_id, ascending,
        in batches (to rebuild search indexes at open)."""

    @abstractmethod
    def memory_ids(self) -> list[int]:
        """Every stored memory id, ascending."""

    @abstractmethod
    def memory_catalog(self, codes: Mapping[str, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pages of (ids, type codes) of every stored memory, ascending, as arrays: what a saved
        search index is checked against at open (memories added, deleted or retyped since). Arrays,
        not rows: a million (id, type) tuples would cost hundreds of MB of heap to read once."""

    def store_id(self) -> str | None:
        """A random identity minted with the store, so an index saved for one store is never
        loaded for another (a restored backup, a replaced file); None when there is none."""
        return None

    @abstractmethod
    def working_set(self) -> list[MemoryRecord]:
        """Records whose type is `working` (to restore working memory at open)."""

    @abstractmethod
    def iter_concepts(self) -> Iterator[ConceptRecord]: ...

    @abstractmethod
    def iter_edges(self) -> Iterator[EdgeRecord]: ...

    @abstractmethod
    def iter_segments(self) -> Iterator[SegmentRecord]: ...

    @abstractmethod
    def counts(self) -> StoreCounts: ...

    @abstractmethod
    def ping(self) -> bool:
        """True when the store answers a trivial query (readiness)."""

    def reachability(self) -> dict[str, bool] | None:
        """Each server this store talks to and whether it answers, for /ready; None for a local file."""
        return None

    def change_log(self) -> ChangeLog | None:
        """The log other engine replicas follow, for a store shared by several; None when this process
        is the only writer (embedded storage)."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    def snapshot_dir(self) -> Path | None:
        """Where index snapshots may be kept next to the data; None when there is no local disk."""
        return None

    def describe(self) -> str:
        return self.kind
