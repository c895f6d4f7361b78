"""Prometheus metrics for one engine process.

A private registry (not the process-global one) keeps several apps in one process, as in tests and the
benchmark, from colliding. Engine gauges are read from ``engine.stats()`` at scrape time so they can never
go stale and cost nothing on the request path. The `[metrics]` switches decide which families are
exported: a family switched off is still updated (a no-op's cost) but registered nowhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from brainai_common.engine_config import MetricsConfig
from brainai_engine.models import EngineStats

log = logging.getLogger(__name__)

# Buckets sized for an in-memory index: most requests land well under 10 ms.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _ScrapeTimeCollector(Collector):
    """Declares no names up front: registering one never calls what it reads at scrape time."""

    def describe(self) -> Iterable[Metric]:
        return []


class _EngineCollector(_ScrapeTimeCollector):
    """Turns one ``engine.stats()`` call per scrape into gauges."""

    def __init__(self, stats: Callable[[], EngineStats], memories: bool, concepts: bool) -> None:
        self._stats = stats
        self._memories = memories
        self._concepts = concepts

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("brain_ai_engine_up", "1 when engine statistics could be read.")
        try:
            stats = self._stats()
        except Exception:
            log.exception("engine.stats() failed during a metrics scrape")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        if self._memories:
            yield _gauge("brain_ai_memories_total", "Memories stored (all types).", stats.memories)
            yield _gauge(
                "brain_ai_working_memories",
                "Memories currently held in working memory.",
                stats.working_memories,
            )
        if self._concepts:
            yield _gauge("brain_ai_concept_nodes_total", "Concept graph nodes.", stats.concepts)
            yield _gauge("brain_ai_concept_edges_total", "Concept graph edges.", stats.relationships)
            yield _gauge("brain_ai_segments_total", "Segments known to the segmenter.", stats.segments)


class _Filtered(_ScrapeTimeCollector):
    """The families of `inner` whose names start with one of `prefixes`."""

    def __init__(self, inner: Collector, prefixes: tuple[str, ...]) -> None:
        self._inner = inner
        self._prefixes = prefixes

    def collect(self) -> Iterable[Metric]:
        return (m for m in self._inner.collect() if m.name.startswith(self._prefixes))


class _IOCollector(_ScrapeTimeCollector):
    """Disk bytes of this process (/proc/self/io) and network bytes of its network namespace
    (/proc/self/net/dev, loopback excluded): a pod's own I/O where cAdvisor is not scraped."""

    def __init__(self, disk: bool, network: bool, proc: Path = Path("/proc/self")) -> None:
        self._disk = disk
        self._network = network
        self._proc = proc

    def collect(self) -> Iterable[Metric]:
        if self._disk and (io := _read(self._proc / "io")) is not None:
            fields = dict(line.split(": ", 1) for line in io.splitlines() if ": " in line)
            for name, key, doc in (
                ("brain_ai_process_disk_read_bytes", "read_bytes", "Bytes this process read from storage."),
                (
                    "brain_ai_process_disk_written_bytes",
                    "write_bytes",
                    "Bytes this process wrote to storage.",
                ),
            ):
                yield CounterMetricFamily(name, doc, value=float(fields.get(key, 0)))
        if self._network and (dev := _read(self._proc / "net" / "dev")) is not None:
            received = sent = 0
            for line in dev.splitlines()[2:]:
                interface, _, counts = line.partition(":")
                values = counts.split()
                if interface.strip() != "lo" and len(values) >= 9:
                    received += int(values[0])
                    sent += int(values[8])
            yield CounterMetricFamily(
                "brain_ai_network_receive_bytes",
                "Bytes received on this network namespace's interfaces.",
                value=float(received),
            )
            yield CounterMetricFamily(
                "brain_ai_network_transmit_bytes",
                "Bytes sent on this network namespace's interfaces.",
                value=float(sent),
            )


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


class _LoadCollector(_ScrapeTimeCollector):
    """In-flight requests and the write queue, read from their owners at scrape time.

    The middleware and the route handlers own these counts; reading them on scrape keeps the request
    path free of gauge updates.
    """

    def __init__(self) -> None:
        self.in_flight: Callable[[], int] | None = None
        self.in_flight_limit = 0
        self.writers: Any = None  # an anyio.CapacityLimiter

    def collect(self) -> Iterable[Metric]:
        if self.in_flight is not None:
            yield _gauge(
                "brain_ai_http_requests_in_flight",
                "API requests being served now (health, readiness and metrics excluded).",
                self.in_flight(),
            )
            yield _gauge(
                "brain_ai_http_requests_in_flight_limit",
                "In-flight API requests above which new ones get 503 (system.max_concurrent_requests).",
                self.in_flight_limit,
            )
        if self.writers is not None:
            stats = self.writers.statistics()
            yield _gauge(
                "brain_ai_write_queue_depth",
                "Writes (learn, add, delete) waiting for a writer thread.",
                stats.tasks_waiting,
            )
            yield _gauge("brain_ai_write_workers_busy", "Writer threads busy now.", stats.borrowed_tokens)
            yield _gauge(
                "brain_ai_write_workers", "Writer threads (system.worker_threads).", stats.total_tokens
            )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], float(value))
    return family


class Metrics:
    """Every metric the HTTP layer records, bound to one registry."""

    def __init__(
        self,
        instance_id: str,
        stats: Callable[[], EngineStats] | None = None,
        options: MetricsConfig | None = None,
    ) -> None:
        options = options or MetricsConfig()
        app, system = options.application, options.system
        self.enabled = options.enabled
        self.registry = CollectorRegistry(auto_describe=False)

        def to(on: bool) -> CollectorRegistry | None:
            return self.registry if on else None

        # With only error_rate on, the request counter counts responses >= 400 (see observe_request).
        self._count_all = app.request_rate
        self.http_requests = Counter(
            "brain_ai_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=to(app.error_rate or self._count_all),
        )
        self.http_duration = Histogram(
            "brain_ai_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=to(app.response_time),
        )
        self.memory_search_duration = Histogram(
            "brain_ai_memory_search_duration_seconds",
            "Time spent inside the engine answering one memory search.",
            buckets=_LATENCY_BUCKETS,
            registry=to(app.memory_operations),
        )
        self.concept_search_duration = Histogram(
            "brain_ai_concept_search_duration_seconds",
            "Time spent inside the engine answering one concept search.",
            buckets=_LATENCY_BUCKETS,
            registry=to(app.concept_operations),
        )
        self.learn_bytes = Counter(
            "brain_ai_learn_bytes",
            "UTF-8 bytes of text accepted by learn requests.",
            registry=to(app.learning_throughput),
        )
        self.learn_texts = Counter(
            "brain_ai_learn_texts",
            "Texts learned (one per /learn, one per item of /learn/batch).",
            registry=to(app.learning_throughput),
        )
        self.capacity_refusals = Counter(
            "brain_ai_memory_capacity_refusals",
            "Writes refused with 507 because they would exceed memory.capacity.",
            registry=to(app.memory_operations),
        )
        # CPU, resident memory, open fds and start time of this process: what right-sizing reads when
        # cAdvisor's container metrics are not scraped. The platform and GC collectors follow the
        # default registry so dashboards built for any Python service work here too.
        process = ["process_start_time", "process_open_fds", "process_max_fds"]
        process += ["process_cpu"] if system.cpu_usage else []
        process += ["process_resident_memory", "process_virtual_memory"] if system.memory_usage else []
        self.registry.register(_Filtered(ProcessCollector(registry=None), tuple(process)))
        PlatformCollector(registry=self.registry)
        if system.memory_usage:
            GCCollector(registry=self.registry)
        if system.disk_io or system.network_io:
            self.registry.register(_IOCollector(system.disk_io, system.network_io))
        self._load = _LoadCollector()
        if app.queue_depth:
            self.registry.register(self._load)
        self.instance = Info("brain_ai_instance", "Identity of this engine process.", registry=self.registry)
        self.instance.info({"instance_id": instance_id})
        if stats is not None and (app.memory_operations or app.concept_operations):
            self.registry.register(_EngineCollector(stats, app.memory_operations, app.concept_operations))
        # Labelled children are cached so the hot path skips prometheus-client's label lookup and lock.
        self._children: dict[tuple[str, str, int], tuple[Counter | None, Histogram]] = {}
        self._lock = threading.Lock()
        # Requests by (route, status) since the last traffic summary (see `traffic_summary`).
        self._traffic: dict[tuple[str, int], int] = {}

    def track_in_flight(self, read: Callable[[], int], limit: int) -> None:
        """Export the middleware's in-flight count; ``read`` is called on each scrape."""
        self._load.in_flight = read
        self._load.in_flight_limit = limit

    def track_writers(self, limiter: Any) -> None:
        """Export the queue in front of the writer threads (an anyio.CapacityLimiter)."""
        self._load.writers = limiter

    def observe_learned(self, texts: list[str]) -> None:
        """Learning throughput: texts and their UTF-8 bytes, counted once the engine accepted them."""
        self.learn_texts.inc(len(texts))
        self.learn_bytes.inc(sum(len(t.encode("utf-8")) for t in texts))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished HTTP request; ``route`` must be a template, never a raw path."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            label_method = method if method in _KNOWN_METHODS else "OTHER"
            with self._lock:
                counted = self._count_all or status >= 400
                children = (
                    self.http_requests.labels(label_method, route, str(status)) if counted else None,
                    self.http_duration.labels(label_method, route),
                )
                if len(self._children) < 4096:
                    self._children[key] = children
        if children[0] is not None:
            children[0].inc()
        children[1].observe(seconds)
        self._traffic[(route, status)] = self._traffic.get((route, status), 0) + 1

    def traffic_summary(self) -> str | None:
        """Requests per route and status since the last call, as one log line; None when idle.

        Per-request access logs would cost more than the requests; a periodic line still shows in
        the pod's log what it served.
        """
        counts, self._traffic = self._traffic, {}
        if not counts:
            return None
        parts = [f"{route} {status}: {n}" for (route, status), n in sorted(counts.items())]
        return f"served {sum(counts.values())} requests ({', '.join(parts)})"

    def render(self) -> bytes:
        """The text exposition format for a scrape."""
        return generate_latest(self.registry)
