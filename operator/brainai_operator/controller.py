"""A deduplicating work queue in front of `reconcile_cluster`.

The informers report relevant changes; this turns them into at most one pending and one running
reconcile per BrainAICluster, retries failures with jittered exponential backoff (one scheduled
retry per cluster, which any other reason to reconcile it merges with), and resyncs every cluster
periodically: with the informers' cache a converged pass reads and writes nothing.

Resyncs wait in a lane of their own behind every other reason: a fleet's periodic resync queues
thousands of passes at once, and a change to one cluster must not wait for all of them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from brainai_common.cooldown import Cooldown
from brainai_operator import api
from brainai_operator.advisor import Advice
from brainai_operator.client import Kube
from brainai_operator.clock import utcnow
from brainai_operator.metrics import (
    ADVISOR_DURATION,
    ADVISOR_RUNS,
    CLUSTERS_BY_PHASE,
    QUEUE_DEPTH,
    RECONCILE_DURATION,
    RECONCILES,
    TRIGGERS,
)
from brainai_operator.prometheus import AdvisorSettings, advise
from brainai_operator.reconcile import (
    ApplyFailed,
    failure_summary,
    in_flight,
    reconcile_cluster,
    record_failure,
)
from brainai_operator.status import advice_changes_status
from brainai_operator.strategies import OperatorDefaults

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name)

FIRST_RETRY = 2.0  # seconds after the first failure; doubles per failure up to max_backoff
# Clusters that fail together (an API server hiccup) would otherwise all retry in the same instant.
BACKOFF_JITTER = 0.2
URGENT, BACKGROUND = 0, 1  # queue lanes: a change, retry or advice before any resync
RECHECK_SECONDS = 10.0


class Controller:
    def __init__(
        self,
        kube: Kube,
        namespaces: list[str] | None = None,
        workers: int = 2,
        resync_seconds: float = 300.0,
        max_backoff: float = 60.0,
        advisor: AdvisorSettings | None = None,
        defaults: OperatorDefaults | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.kube = kube
        self.defaults = defaults or OperatorDefaults()
        self.namespaces = namespaces
        self.workers = workers
        self.resync_seconds = resync_seconds
        self.max_backoff = max_backoff
        self.backoff = Cooldown(min(FIRST_RETRY, max_backoff), max_backoff, BACKOFF_JITTER, rng=rng)
        # Entries are (lane, order, key); a key moved to the urgent lane leaves a stale entry behind,
        # which a worker skips: `pending` holds the lane each waiting key is really in.
        self.queue: asyncio.PriorityQueue[tuple[int, int, Key]] = asyncio.PriorityQueue()
        self.order = itertools.count()
        self.pending: dict[Key, int] = {}
        self.running: set[Key] = set()
        self.dirty: set[Key] = set()
        self.failures: Counter[Key] = Counter()
        # While a cluster backs off after a failure, events wait for the scheduled retry, so the
        # logged delay is the real one; a new spec generation (someone fixed it) does not wait.
        self.retry_at: dict[Key, float] = {}
        self.retry_timers: dict[Key, asyncio.TimerHandle] = {}
        self.recheck_timers: dict[Key, asyncio.TimerHandle] = {}
        self.failed_generation: dict[Key, int | None] = {}
        self.phases: dict[Key, str] = {}
        self.advisor = advisor
        # The advisor's latest result per cluster. Only reconcile writes status: the advisor leaves
        # its result here and enqueues the cluster.
        self.advice: dict[Key, Advice] = {}

    def enqueue(
        self, namespace: str, name: str, generation: int | None = None, reason: str = "change"
    ) -> None:
        """Queue a pass for the cluster (merged with one already pending); `reason` is counted."""
        key = (namespace, name)
        TRIGGERS.labels(reason).inc()
        if self._backing_off(key, generation):
            return
        lane = BACKGROUND if reason == "resync" else URGENT
        if key in self.running:
            if lane == URGENT:  # a resync has nothing to add to a pass that is running
                self.dirty.add(key)  # reconcile once more when the running pass ends
        elif key not in self.pending or lane < self.pending[key]:
            self.pending[key] = lane
            self.queue.put_nowait((lane, next(self.order), key))
        QUEUE_DEPTH.set(len(self.pending))

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]
        tasks.append(asyncio.create_task(self._resync()))
        if self.advisor is not None:
            tasks.append(asyncio.create_task(self._advise_forever()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _worker(self, index: int) -> None:
        while True:
            lane, _, key = await self.queue.get()
            if self.pending.get(key) != lane:
                continue  # moved to the urgent lane, or already run from there
            del self.pending[key]
            timer = self.retry_timers.pop(key, None)
            if timer is not None:  # this pass is the retry
                timer.cancel()
            QUEUE_DEPTH.set(len(self.pending))
            self.running.add(key)
            try:
                await self._reconcile(key)
            finally:
                self.running.discard(key)
                if key in self.dirty:
                    self.dirty.discard(key)
                    self.enqueue(*key, reason="changed_during_pass")

    async def _reconcile(self, key: Key) -> None:
        start = time.perf_counter()
        try:
            phase = await asyncio.to_thread(
                reconcile_cluster, self.kube, *key, self.advice.get(key), defaults=self.defaults
            )
        except Exception as exc:
            await self._failed(key, exc)
            return
        finally:
            RECONCILE_DURATION.observe(time.perf_counter() - start)
        self.failures.pop(key, None)
        self.retry_at.pop(key, None)
        self.failed_generation.pop(key, None)
        RECONCILES.labels("success").inc()
        if phase is None:
            self.phases.pop(key, None)
        else:
            self.phases[key] = phase
            self._recheck_if_in_flight(key)
        for name in ("Pending", "Progressing", "Ready", "Degraded", "Paused"):
            CLUSTERS_BY_PHASE.labels(name).set(sum(1 for p in self.phases.values() if p == name))

    async def _failed(self, key: Key, exc: Exception) -> None:
        """One log line per failed pass (the traceback at debug level), status and an event saying
        why, and a retry after the jittered backoff."""
        self.failures[key] += 1
        delay = self.backoff.delay(self.failures[key])
        RECONCILES.labels("error").inc()
        log.error("reconcile %s/%s failed, retrying in %.1fs: %s", *key, delay, failure_summary(exc))
        log.debug("reconcile %s/%s failure", *key, exc_info=exc)
        try:
            obj = await asyncio.to_thread(self.kube.get, api.API_VERSION, api.KIND, key[1], key[0])
        except Exception as report:
            obj = None
            log.debug("could not read %s/%s after its failure: %s", *key, report)
        self.failed_generation[key] = (obj or {}).get("metadata", {}).get("generation")
        if obj is not None and not isinstance(exc, ApplyFailed):  # ApplyFailed wrote status already
            try:
                await asyncio.to_thread(record_failure, self.kube, obj, exc)
            except Exception as report:
                log.debug("could not record the failure of %s/%s: %s", *key, report)
        self.retry_at[key] = time.monotonic() + delay
        previous = self.retry_timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        self.retry_timers[key] = asyncio.get_running_loop().call_later(delay, self._retry, key)

    def _backing_off(self, key: Key, generation: int | None) -> bool:
        deadline = self.retry_at.get(key)
        waiting = deadline is not None and time.monotonic() < deadline
        return waiting and (generation is None or generation == self.failed_generation.get(key))

    def _recheck_if_in_flight(self, key: Key) -> None:
        """A step whose end no watched object reports (Patroni refusing a switchover only clears its
        DCS key): look again in RECHECK_SECONDS rather than at the next resync."""
        if key in self.recheck_timers:
            return
        try:
            obj = self.kube.get(api.API_VERSION, api.KIND, key[1], key[0])  # the cache: no request
        except Exception as exc:  # best effort: the resync looks again anyway
            log.debug("could not read %s/%s after its pass: %s", *key, exc)
            return
        if not in_flight((obj or {}).get("status") or {}):
            return

        def recheck() -> None:
            self.recheck_timers.pop(key, None)
            self.enqueue(*key, reason="recheck")

        self.recheck_timers[key] = asyncio.get_running_loop().call_later(RECHECK_SECONDS, recheck)

    def _retry(self, key: Key) -> None:
        self.retry_timers.pop(key, None)
        self.retry_at.pop(key, None)
        self.enqueue(*key, reason="retry")

    def _scopes(self) -> list[str | None]:
        """Namespaces to list clusters in; None lists every namespace."""
        return list(self.namespaces) if self.namespaces else [None]

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            try:
                for item in await self._list_clusters():
                    self.enqueue(item["metadata"]["namespace"], item["metadata"]["name"], reason="resync")
            except Exception:
                log.warning("periodic resync failed; will try again", exc_info=True)

    async def _list_clusters(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for ns in self._scopes():
            items += await asyncio.to_thread(self.kube.list, api.API_VERSION, api.KIND, ns)
        return items

    async def advise_once(self) -> None:
        """One advisor pass for every BrainAICluster: batched queries, then a reconcile of each."""
        assert self.advisor is not None
        start = time.perf_counter()
        try:
            clusters = await self._list_clusters()
            found = await asyncio.to_thread(advise, clusters, self.advisor, utcnow())
        except Exception:
            ADVISOR_RUNS.labels("error").inc()
            raise
        finally:
            ADVISOR_DURATION.observe(time.perf_counter() - start)
        ADVISOR_RUNS.labels("success").inc()
        previous, self.advice = self.advice, found  # clusters that are gone drop out here
        shown = {(c["metadata"]["namespace"], c["metadata"]["name"]): c.get("status") for c in clusters}
        for key, advice in found.items():
            # A pass running now started with the previous word and may still write it.
            overtaken = key in self.running and previous.get(key) != advice
            if overtaken or advice_changes_status(advice, shown.get(key)):
                self.enqueue(*key, reason="advice")

    async def _advise_forever(self) -> None:
        assert self.advisor is not None
        while True:
            try:
                await self.advise_once()
            except Exception:
                log.warning("advisor pass failed; will try again", exc_info=True)
            await asyncio.sleep(self.advisor.interval)
