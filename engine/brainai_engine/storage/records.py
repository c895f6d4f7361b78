"""The rows storage hands out and takes in; shared by the storage interface and its change log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(slots=True)
class MemoryRecord:
    id: int
    content: str
    type: str
    priority: int
    confidence: float
    access_count: int
    created_at: float
    last_accessed: float
    context: dict[str, str] | None = None


IndexRow = tuple[int, str, str, float, float]


@dataclass(slots=True)
class NewMemory:
    content: str
    type: str
    priority: int
    confidence: float
    created_at: float
    context: dict[str, str] | None = None
    digest: bytes | None = None  # content hash: a memory with the same digest is stored once


@dataclass(slots=True)
class ConceptRecord:
    name: str
    usage_count: int
    confidence: float
    created_at: float
    last_used: float


@dataclass(slots=True)
class EdgeRecord:
    a: str
    b: str
    weight: float
    initial_weight: float
    updated_at: float
    cooccurrences: int = 1


@dataclass(slots=True)
class SegmentRecord:
    text: str
    frequency: int
    confidence: float
    units: int
    created_at: float
    left: str | None = None
    right: str | None = None


Page = list[tuple[MemoryRecord, float]]  # one page of search results: (record, score), best first


class Total(NamedTuple):
    """How many memories match a search: counted (`exact`) or estimated."""

    matches: int
    exact: bool
