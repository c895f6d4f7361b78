"""Exponential cooldown with jitter: how long to leave a failing dependency alone before retrying.

Used by the engine's circuit breakers (a PostgreSQL server, Redis) and the operator's reconcile
backoff. Jitter spreads the retries of many replicas (or many clusters) that failed together, so
they do not come back in lockstep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Cooldown:
    """Doubling delay from `base` up to `cap`, each delay scaled by a random factor in
    [1 - jitter, 1]; `reset` after a success. Not thread-safe: callers hold their own lock."""

    def __init__(
        self,
        base: float,
        cap: float,
        jitter: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if base <= 0 or cap < base or not 0 <= jitter < 1:
            raise ValueError("Cooldown needs 0 < base <= cap and 0 <= jitter < 1")
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.failures = 0
        self.until = 0.0
        self._clock = clock
        self._rng = rng

    def delay(self, failures: int) -> float:
        """The cooldown after `failures` consecutive failures (>= 1)."""
        full = min(self.base * 2 ** max(failures - 1, 0), self.cap)
        return full * (1 - self.jitter * self._rng())

    def fail(self) -> float:
        """Record a failure; returns the cooldown that starts now."""
        self.failures += 1
        wait = self.delay(self.failures)
        self.until = self._clock() + wait
        return wait

    def reset(self) -> None:
        self.failures = 0
        self.until = 0.0

    @property
    def remaining(self) -> float:
        """Seconds until the last failure's cooldown has elapsed (0 when it has)."""
        return max(self.until - self._clock(), 0.0) if self.failures else 0.0

    @property
    def cooling(self) -> bool:
        """True while the last failure's cooldown has not elapsed."""
        return self.failures > 0 and self._clock() < self.until
