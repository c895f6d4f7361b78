"""Group commit: concurrent writers share one durable transaction.

Flat combining over the engine's writer lock: a caller queues its request, then takes the lock;
whoever holds it takes the queued requests (up to `max_group` in weight: the engine weighs a request
by the texts it stores, and caps a group at `learning.batch_size`) and processes them together, one
storage transaction for all, and each caller returns once the transaction that carried its request
has committed (or raises what it raised). A lone writer pays nothing extra; under concurrency the
transactions grow instead of queueing, so throughput rises with the number of writers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class _Ticket(Generic[T, R]):
    request: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        lock: threading.Lock,
        process: Callable[[list[T]], Sequence[R]],
        max_group: int = 256,
        weight: Callable[[T], int] = lambda _request: 1,
    ) -> None:
        self._lock = lock
        self._process = process
        self.max_group = max_group
        self._weight = weight
        self._queue: list[_Ticket[T, R]] = []
        self._queue_lock = threading.Lock()
        self.groups = 0  # transactions made (tests and benchmarks read these)
        self.requests = 0
        self.heaviest = 0  # the largest group's weight

    def _take(self) -> list[_Ticket[T, R]]:
        """The oldest queued requests up to `max_group` in weight (always at least one)."""
        taken = total = 0
        for ticket in self._queue:
            w = self._weight(ticket.request)
            if taken and total + w > self.max_group:
                break
            taken, total = taken + 1, total + w
        group, self._queue = self._queue[:taken], self._queue[taken:]
        self.heaviest = max(self.heaviest, total)
        return group

    def submit(self, request: T) -> R:
        ticket: _Ticket[T, R] = _Ticket(request)
        with self._queue_lock:
            self._queue.append(ticket)
        with self._lock:
            while not ticket.done:  # a long queue may take more than one group to reach it
                with self._queue_lock:
                    group = self._take()
                self._run(group)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _run(self, group: list[_Ticket[T, R]]) -> None:
        try:
            results = self._process([t.request for t in group])
            for t, r in zip(group, results, strict=True):
                t.result = r
        except BaseException as exc:  # every request of the transaction shares its fate
            for t in group:
                t.error = exc
        finally:
            self.groups += 1
            self.requests += len(group)
            for t in group:
                t.done = True
