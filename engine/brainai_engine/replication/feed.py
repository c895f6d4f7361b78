"""The change feed: keeps this engine replica's in-process structures in step with the others.

Source of truth is the database's change log (`storage.changes`): a background thread applies
every change after its cursor, polling every `database.change_poll_interval_seconds`. Redis only
makes it faster: after each commit a replica appends the new log position to a Redis stream, and
the others, blocked on that stream, poll at once. Losing Redis therefore only slows propagation to
the poll interval and loses nothing.

Replica lag: the log is read from a read replica, log rows and the rows they point at in one
snapshot, so a change is never seen without its data. When a notification announces a position the
replica has not reached yet, the feed reads the rest from the primary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from brainai_common.engine_config import EngineConfig
from brainai_engine.replication.redis_link import RedisLink
from brainai_engine.storage import changes as ch
from brainai_engine.storage.base import Storage, StorageUnavailable
from brainai_engine.storage.changes import ChangeLog

log = logging.getLogger(__name__)

PAGE = 5000
STREAM_LEN = 1000
LISTEN_BLOCK_S = 0.5  # the listener re-checks for shutdown this often


class ChangeFeed:
    """Follows `change_log`, handing every batch of other replicas' changes to `apply` in log order (one
    call at a time). `apply` makes the in-process copy equal the batch's rows."""

    def __init__(
        self, change_log: ChangeLog, apply: Callable[[ch.ChangeSet], None], config: EngineConfig
    ) -> None:
        self.change_log = change_log
        self.apply = apply
        self.interval = config.database.change_poll_interval_seconds
        # Read before the engine loads: whatever the load misses is after the cursor, and applying
        # something the load already saw is harmless.
        self.cursor = change_log.last_change_id()
        self.own_last = 0
        self.applied = 0
        self._hint = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.link: RedisLink | None = None
        self._listen_link: RedisLink | None = None
        if config.redis.url:
            self.link = RedisLink(config.redis)
            self._listen_link = RedisLink(config.redis, socket_timeout=LISTEN_BLOCK_S + 5.0)
        self.stream = f"{config.redis.key_prefix}changes"
        change_log.on_commit(self._committed)

    # -- state ------------------------------------------------------------------------------------
    @property
    def consistent(self) -> bool:
        """True when local state is exactly the log up to `cursor` (no own write beyond it), which is
        when results computed here may be shared with replicas at the same position."""
        return self.own_last <= self.cursor

    def _committed(self, change_id: int) -> None:
        """After each own commit: remember it, and tell the other replicas where the log ends."""
        self.own_last = max(self.own_last, change_id)
        if self.link is not None and change_id:
            self.link.call(
                lambda c: c.xadd(self.stream, {"c": change_id}, maxlen=STREAM_LEN, approximate=True)
            )

    def status(self) -> dict[str, Any]:
        """For /ready: how far the feed got and, with Redis configured, whether Redis answers."""
        out: dict[str, Any] = {"change_feed": {"cursor": self.cursor, "applied": self.applied}}
        if self.link is not None:
            out["redis"] = self.link.ping()
        return out

    # -- threads ----------------------------------------------------------------------------------
    def start(self) -> None:
        targets = [("brain-ai-change-poll", self._poll_loop)]
        if self._listen_link is not None:
            targets.append(("brain-ai-change-listen", self._listen_loop))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=LISTEN_BLOCK_S + 6.0)
        for link in (self.link, self._listen_link):
            if link is not None:
                link.close()

    def _poll_loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.catch_up()
                failing = False
            except Exception as exc:  # keep following the log whatever one pass hit
                if not failing:
                    log.warning("change feed: %s; retrying every %.1fs", exc, self.interval)
                failing = True

    def _listen_loop(self) -> None:
        assert self._listen_link is not None
        last = "$"
        block_ms = int(LISTEN_BLOCK_S * 1000)
        while not self._stop.is_set():
            got = self._listen_link.call(functools.partial(_read_stream, {self.stream: last}, block_ms))
            if got is None and not self._listen_link.up:
                self._stop.wait(self.interval)
                continue
            for _stream, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id
                    self._hint = max(self._hint, int(fields.get("c", 0)))
            if self._hint > self.cursor:
                self._wake.set()

    # -- applying ---------------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Apply every change after the cursor; returns how many log rows were consumed."""
        with self._lock:
            target = self._hint
            done = self._drain(primary=False)
            if target > self.cursor:
                # The replica has not replayed what was announced yet: take the rest from the primary.
                with contextlib.suppress(StorageUnavailable):
                    done += self._drain(primary=True)
            return done

    def _drain(self, primary: bool) -> int:
        done = 0
        while True:
            batch = self.change_log.changes_since(self.cursor, PAGE, primary=primary)
            if batch.changes:
                theirs = [c for c in batch.changes if c.origin != self.change_log.origin]
                if theirs:
                    self.apply(dataclasses.replace(batch, changes=theirs))
                self.cursor = batch.last_id
                done += len(batch.changes)
                self.applied += len(batch.changes)
            if len(batch.changes) < PAGE:
                return done


def _read_stream(streams: dict[str, str], block_ms: int, client: Any) -> Any:
    return client.xread(streams, count=100, block=block_ms)


def open_change_feed(
    storage: Storage, config: EngineConfig, apply: Callable[[ch.ChangeSet], None]
) -> ChangeFeed | None:
    """A feed over the store's change log, or None when the store has none (embedded storage, where
    this process is the only writer). Create it before the engine loads: see `ChangeFeed.cursor`."""
    change_log = storage.change_log()
    if change_log is None:
        return None
    return ChangeFeed(change_log, apply, config)
