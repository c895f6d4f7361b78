"""The change log shared by engine replicas: what changed, in commit order, with the current rows.

Every write transaction on a shared store appends (kind, key, aux, origin) rows to a log whose ids
follow commit order. A replica applies the log after its cursor to its in-process structures. The
payload (memory rows, concepts, edges, segments) is read in the same snapshot as the log rows, so a
change is never seen without its data, and applying it means "make the in-process copy equal the
stored row": absent rows mean deleted, which makes re-applying a change harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from brainai_engine.storage.records import ConceptRecord, EdgeRecord, IndexRow, SegmentRecord

# kinds: key (and aux) identify the changed record
MEMORIES = "memories"  # new memories with ids key..aux
MEMORY_TYPE = "memory_type"  # memory key changed type
MEMORY_DELETED = "memory_deleted"  # memory key deleted
CONCEPT = "concept"  # concept key upserted
EDGE = "edge"  # edge (key, aux) upserted or removed
SEGMENT = "segment"  # segment key upserted


@dataclass(slots=True)
class Change:
    id: int
    kind: str
    key: str
    aux: str | None
    origin: str


@dataclass(slots=True)
class ChangeSet:
    """Log rows after a cursor plus, for changes from other origins, the rows they point at."""

    after_id: int
    changes: list[Change] = field(default_factory=list)
    memories: dict[int, IndexRow] = field(default_factory=dict)
    memory_types: dict[int, str] = field(default_factory=dict)
    concepts: dict[str, ConceptRecord] = field(default_factory=dict)
    edges: dict[tuple[str, str], EdgeRecord] = field(default_factory=dict)
    segments: dict[str, SegmentRecord] = field(default_factory=dict)
    server: str = "primary"

    @property
    def last_id(self) -> int:
        """The cursor once this set is applied."""
        return self.changes[-1].id if self.changes else self.after_id


class ChangeLog(Protocol):
    """What a shared store offers the replicas that follow it (`Storage.change_log`)."""

    origin: str  # this replica's name in the log: its own changes are already applied

    def last_change_id(self) -> int:
        """The log's end now (a new follower starts here, then loads)."""
        ...

    def changes_since(self, after_id: int, limit: int = 5000, primary: bool = False) -> ChangeSet:
        """Up to `limit` log rows after `after_id` with the rows they point at, from a read replica
        unless `primary`."""
        ...

    def on_commit(self, listener: Callable[[int], None]) -> None:
        """Call `listener(change_id)` after each of this replica's own commits."""
        ...
