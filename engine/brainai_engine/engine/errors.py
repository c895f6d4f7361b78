"""Refusals the engine raises for callers to map onto their own answers (HTTP 507, CLI exit 4)."""

from __future__ import annotations


class CapacityExceeded(RuntimeError):
    """A write would take the store past `memory.capacity`: refused whole, nothing stored."""

    def __init__(self, capacity: int, stored: int, adding: int) -> None:
        super().__init__(
            f"memory.capacity is {capacity:,} memories and {stored:,} are stored: "
            f"{adding:,} more would exceed it (delete memories or raise memory.capacity)"
        )
        self.capacity, self.stored, self.adding = capacity, stored, adding
