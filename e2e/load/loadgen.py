#!/usr/bin/env python3
"""Open-loop HTTP load generator for the Brain AI engine, Python standard library only.

It runs in a pod from a plain Python 3.11 image (the file is mounted from a ConfigMap), so it cannot
use an HTTP client library. Arrivals follow Artillery-style phases: a flow starts at its scheduled
time whether or not earlier flows have finished, so a slow server shows up as latency and errors, not
as a quietly lower request rate. The per-flow start delay shows when the generator itself could not
keep up. The result is one ``LOADGEN-RESULT {json}`` line on stdout; progress goes to stderr.

    python3 loadgen.py --target http://brain-engine.ns.svc:8080 --scenario seed \\
        --phase 60:10 --phase 120:50 [--workers 64] [--keepalive] [--acked-file PATH] [--retry-503]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import queue
import re
import secrets
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit

RESULT_PREFIX = "LOADGEN-RESULT "
ENDPOINTS = ("learn", "memory_search", "concept_search", "health")
SCENARIOS = ("seed", "search", "learn", "mixed", "health")
MAX_ERROR_SAMPLES = 20
SEED_TEXT = "Machine learning is fascinating"
USER_AGENT = "brainai-loadgen/1"


# -- what to send ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One HTTP request of a flow; ``text`` is the learn body's text (None for GETs)."""

    endpoint: str
    method: str
    path: str
    text: str | None = None


@dataclass(frozen=True)
class Flow:
    """A weighted sequence of calls; ``build(run_id, n)`` makes the calls of arrival number n."""

    name: str
    weight: int
    build: Callable[[str, int], list[Call]]


MEMORY_SEARCH = Call("memory_search", "GET", "/api/v1/memory/search?query=machine%20learning&limit=10")
CONCEPT_SEARCH = Call(
    "concept_search", "GET", "/api/v1/concepts/search?query=artificial%20intelligence&limit=10"
)
HEALTH = Call("health", "GET", "/health")


def learn_call(text: str) -> Call:
    return Call("learn", "POST", "/api/v1/learn", text)


def unique_learn_text(run_id: str, n: int) -> str:
    """Run id and arrival number make every text distinct, so each acknowledged write can be found."""
    return f"loadgen {run_id} {n} synthetic memory about replicated storage under load"


def scenario_flows(name: str, unique_texts: bool) -> list[Flow]:
    """The flows of a scenario; ``seed`` is the source document's Artillery scenario."""

    def seed_learn(run_id: str, n: int) -> list[Call]:
        text = f"{SEED_TEXT} #{run_id}-{n}" if unique_texts else SEED_TEXT
        return [learn_call(text), MEMORY_SEARCH]

    def unique_learn(run_id: str, n: int) -> list[Call]:
        return [learn_call(unique_learn_text(run_id, n))]

    search = Flow("Memory Search", 1, lambda _r, _n: [MEMORY_SEARCH])
    learn = Flow("Learn", 1, unique_learn)
    flows = {
        "seed": [
            Flow("Learn and Query", 70, seed_learn),
            Flow("Concept Queries", 30, lambda _r, _n: [CONCEPT_SEARCH]),
        ],
        "search": [search],
        "learn": [learn],
        "mixed": [learn, search],
        "health": [Flow("Health", 1, lambda _r, _n: [HEALTH])],
    }
    return flows[name]


class FlowPicker:
    """Smooth weighted round-robin: the weights hold exactly in every short window, and runs repeat,
    so even a few seconds of load has the scenario's proportions (random picks would not)."""

    def __init__(self, flows: Sequence[Flow]) -> None:
        self.flows = list(flows)
        self.total = sum(flow.weight for flow in self.flows)
        self.current = [0] * len(self.flows)

    def next(self) -> Flow:
        for i, flow in enumerate(self.flows):
            self.current[i] += flow.weight
        best = max(range(len(self.flows)), key=self.current.__getitem__)
        self.current[best] -= self.total
        return self.flows[best]


# -- when to send ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    seconds: float
    rate: float


def parse_phase(value: str) -> Phase:
    """``SECONDS:RATE``: a duration > 0 and arrivals per second >= 0 (fractional allowed, 0 = pause)."""
    seconds_text, sep, rate_text = value.partition(":")
    try:
        seconds, rate = float(seconds_text), float(rate_text)
    except ValueError:
        seconds = rate = math.nan
    if not sep or not (math.isfinite(seconds) and math.isfinite(rate)) or seconds <= 0 or rate < 0:
        raise argparse.ArgumentTypeError(f"expected SECONDS:RATE (e.g. 60:10), got {value!r}")
    return Phase(seconds, rate)


def arrivals(phases: Sequence[Phase]) -> Iterator[float]:
    """Offsets in seconds from the run start of every arrival: 1/rate apart within each phase.
    A generator, so a long run at a high rate never builds its whole schedule in memory."""
    offset = 0.0
    for phase in phases:
        if phase.rate > 0:
            for i in range(math.floor(phase.seconds * phase.rate + 1e-9)):
                yield offset + i / phase.rate
        offset += phase.seconds


@dataclass(frozen=True)
class Arrival:
    due: float  # time.monotonic() at which the flow was scheduled to start
    n: int
    flow: Flow


# -- statistics --------------------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], pct: int) -> float:
    """Nearest rank: the smallest value with at least pct% of the values at or below it."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[rank - 1]


@dataclass
class EndpointStats:
    requests: int = 0
    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        values = sorted(self.latencies_ms)
        return {
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "p50_ms": round(percentile(values, 50), 3),
            "p95_ms": round(percentile(values, 95), 3),
            "p99_ms": round(percentile(values, 99), 3),
            "max_ms": round(values[-1], 3) if values else 0.0,
        }


class Stats:
    """Everything the workers record; one lock, since a request costs far more than the bookkeeping."""

    def __init__(self, start: float) -> None:
        self.lock = threading.Lock()
        self.start = start
        self.sent = 0
        self.ok = 0
        self.errors = 0
        self.status_503 = 0
        self.in_flight = 0
        self.flows_scheduled = 0
        self.flows_started = 0
        self.flow_counts: dict[str, int] = {}
        self.start_delays_ms: list[float] = []
        self.status_counts: dict[str, int] = {}
        self.endpoints = {name: EndpointStats() for name in ENDPOINTS}
        self.error_samples: list[dict[str, Any]] = []
        self.timeline: dict[int, dict[str, int]] = {}

    def scheduled(self) -> None:
        with self.lock:
            self.flows_scheduled += 1

    def flow_started(self, name: str, delay_s: float) -> None:
        with self.lock:
            self.flows_started += 1
            self.flow_counts[name] = self.flow_counts.get(name, 0) + 1
            self.start_delays_ms.append(max(0.0, delay_s) * 1000)

    def request_sent(self) -> None:
        with self.lock:
            self.sent += 1
            self.in_flight += 1

    def request_done(
        self, endpoint: str, key: str, outcome: str, latency_ms: float | None, message: str | None
    ) -> None:
        """outcome: ``ok`` (2xx), ``unavailable`` (503 + Retry-After under --retry-503) or ``error``."""
        now = time.monotonic() - self.start
        with self.lock:
            self.in_flight -= 1
            self.status_counts[key] = self.status_counts.get(key, 0) + 1
            stats = self.endpoints[endpoint]
            stats.requests += 1
            if latency_ms is not None:
                stats.latencies_ms.append(latency_ms)
            bucket = self.timeline.setdefault(int(now), {"ok": 0, "errors": 0, "status_503": 0})
            if outcome == "ok":
                self.ok += 1
                stats.ok += 1
                bucket["ok"] += 1
            elif outcome == "unavailable":
                bucket["status_503"] += 1
            else:
                self.errors += 1
                stats.errors += 1
                bucket["errors"] += 1
                if message is not None and len(self.error_samples) < MAX_ERROR_SAMPLES:
                    self.error_samples.append({"t": round(now, 3), "endpoint": endpoint, "error": message})

    def count_503(self) -> None:
        with self.lock:
            self.status_503 += 1

    def progress(self, label: str = "loadgen") -> str:
        with self.lock:
            elapsed = time.monotonic() - self.start
            line = (
                f"[{label}] t={elapsed:6.1f}s sent={self.sent} ok={self.ok} errors={self.errors} "
                f"in_flight={self.in_flight}"
            )
            return line + (f" status_503={self.status_503}" if self.status_503 else "")

    def result(self) -> dict[str, Any]:
        with self.lock:
            duration = time.monotonic() - self.start
            everything = EndpointStats()
            for stats in self.endpoints.values():
                everything.requests += stats.requests
                everything.ok += stats.ok
                everything.errors += stats.errors
                everything.latencies_ms.extend(stats.latencies_ms)
            endpoints = {name: stats.summary() for name, stats in self.endpoints.items()}
            endpoints["all"] = everything.summary()
            delays = sorted(self.start_delays_ms)
            seconds = max([math.ceil(duration), *(t + 1 for t in self.timeline)])
            empty = {"ok": 0, "errors": 0, "status_503": 0}
            return {
                "duration_s": round(duration, 3),
                "flows": self.flows_started,
                "flows_scheduled": self.flows_scheduled,
                "flows_not_started": self.flows_scheduled - self.flows_started,
                "flow_counts": dict(self.flow_counts),
                "requests": everything.requests,
                "ok": self.ok,
                "errors": self.errors,
                "in_flight_at_end": self.in_flight,
                "rps": round(everything.requests / duration, 2) if duration > 0 else 0.0,
                "status_counts": dict(sorted(self.status_counts.items())),
                "status_503": self.status_503,
                "error_samples": list(self.error_samples),
                "start_delay_ms": {
                    "p50": round(percentile(delays, 50), 3),
                    "p95": round(percentile(delays, 95), 3),
                    "max": round(delays[-1], 3) if delays else 0.0,
                },
                "endpoints": endpoints,
                "timeline": [{"t": t, **self.timeline.get(t, empty)} for t in range(seconds)],
            }


# -- HTTP ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    prefix: str  # base path of the target URL, without a trailing slash


def parse_target(value: str) -> Target:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"expected a base URL like http://host:8080, got {value!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {value!r}") from None
    return Target(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


class Client:
    """One worker's connection policy. Default: a new connection per request, so a Kubernetes Service
    balances every request and a rolling update cannot strand a reused connection. With keep-alive:
    one HTTP/1.1 connection, dropped after any failure so the next request reconnects."""

    def __init__(self, target: Target, timeout: float, keepalive: bool, token: str | None) -> None:
        self.target = target
        self.timeout = timeout
        self.keepalive = keepalive
        self.conn: http.client.HTTPConnection | None = None
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if not keepalive:
            self.headers["Connection"] = "close"
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def _connect(self) -> http.client.HTTPConnection:
        if self.target.scheme == "https":
            return http.client.HTTPSConnection(
                self.target.host, self.target.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.target.host, self.target.port, timeout=self.timeout)

    def send(self, call: Call) -> tuple[int, str | None, bytes]:
        """(status, Retry-After header, body); raises OSError / HTTPException on transport failure."""
        conn = self.conn or self._connect()
        self.conn = None
        headers = dict(self.headers)
        body = None
        if call.text is not None:
            body = json.dumps({"text": call.text}).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            conn.request(call.method, self.target.prefix + call.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            raise
        if self.keepalive and not response.will_close:
            self.conn = conn
        else:
            conn.close()
        return response.status, response.getheader("Retry-After"), data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# -- the run ------------------------------------------------------------------------------------------
class LoadRun:
    """Scheduler thread (arrivals on time) + worker pool (flows) + main thread (progress, stop, cap)."""

    def __init__(self, args: argparse.Namespace, acked: TextIO | None, err: TextIO) -> None:
        self.args = args
        self.acked = acked
        self.acked_lock = threading.Lock()
        self.err = err
        self.flows = scenario_flows(args.scenario, args.unique_texts)
        self.queue: queue.SimpleQueue[Arrival | None] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.stop_reason = "completed"
        self.all_done = threading.Event()
        self.live_workers = args.workers
        self.live_lock = threading.Lock()
        self.start = time.monotonic()
        self.deadline = self.start + args.duration_cap
        self.stats = Stats(self.start)

    def request_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    def schedule(self) -> None:
        picker = FlowPicker(self.flows)
        try:
            for n, offset in enumerate(arrivals(self.args.phase)):
                due = self.start + offset
                if due >= self.deadline:
                    if not self.stop.wait(max(0.0, self.deadline - time.monotonic())):
                        self.request_stop("duration_cap")
                    break
                wait = due - time.monotonic()
                if (wait > 0 and self.stop.wait(wait)) or self.stop.is_set():
                    break
                self.stats.scheduled()
                self.queue.put(Arrival(due, n, picker.next()))
            else:
                # The run lasts the phases' full length, so a trailing pause (RATE 0) is honoured.
                end = self.start + sum(p.seconds for p in self.args.phase)
                if (
                    not self.stop.wait(max(0.0, min(end, self.deadline) - time.monotonic()))
                    and end > self.deadline
                ):
                    self.request_stop("duration_cap")
        finally:
            for _ in range(self.args.workers):
                self.queue.put(None)

    def work(self) -> None:
        # One client per target; flows go to them in turn, as a Service spreads connections.
        clients = [
            Client(t, self.args.timeout, self.args.keepalive, self.args.token) for t in self.args.target
        ]
        try:
            while (arrival := self.queue.get()) is not None:
                if self.stop.is_set():
                    continue  # drain: counted as flows_not_started
                self.stats.flow_started(arrival.flow.name, time.monotonic() - arrival.due)
                client = clients[arrival.n % len(clients)]
                for call in arrival.flow.build(self.args.run_id, arrival.n):
                    if self.stop.is_set() or not self.execute(client, call):
                        break
        finally:
            for client in clients:
                client.close()
            with self.live_lock:
                self.live_workers -= 1
                if self.live_workers == 0:
                    self.all_done.set()

    def execute(self, client: Client, call: Call) -> bool:
        """Send one call and record it; False after a transport failure, which ends the flow."""
        self.stats.request_sent()
        started = time.perf_counter()
        try:
            status, retry_after, body = client.send(call)
        except TimeoutError as exc:
            self.stats.request_done(call.endpoint, "timeout", "error", None, self._describe(call, exc))
            return False
        except Exception as exc:  # refused, reset, DNS, protocol: all "the request did not get through"
            self.stats.request_done(call.endpoint, "conn", "error", None, self._describe(call, exc))
            return False
        latency_ms = (time.perf_counter() - started) * 1000
        if 200 <= status < 300:
            outcome, message = "ok", None
            if call.endpoint == "learn" and call.text is not None:
                self._acknowledge(call.text)
        elif status == 503 and retry_after is not None and self.args.retry_503:
            outcome, message = "unavailable", None
        else:
            snippet = body[:200].decode("utf-8", errors="replace")
            outcome, message = "error", f"HTTP {status} {call.method} {call.path}: {snippet}"
        if status == 503 and retry_after is not None:
            self.stats.count_503()
        self.stats.request_done(call.endpoint, str(status), outcome, latency_ms, message)
        return True

    @staticmethod
    def _describe(call: Call, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc} ({call.method} {call.path})"

    def _acknowledge(self, text: str) -> None:
        """One line per acknowledged write, flushed at once, so a killed run still lists every ack."""
        with self.acked_lock:
            if self.acked is not None and not self.acked.closed:
                self.acked.write(text + "\n")
                self.acked.flush()

    def close_acked(self) -> None:
        """After the result: a request abandoned at the cap may still finish, and must not write."""
        with self.acked_lock:
            if self.acked is not None:
                self.acked.close()

    def run(self) -> dict[str, Any]:
        threads = [threading.Thread(target=self.schedule, name="scheduler", daemon=True)]
        threads += [
            threading.Thread(target=self.work, name=f"worker-{i}", daemon=True)
            for i in range(self.args.workers)
        ]
        for thread in threads:
            thread.start()
        next_progress = self.start + 1.0
        grace_until: float | None = None
        while not self.all_done.is_set():
            now = time.monotonic()
            if now >= self.deadline:
                self.request_stop("duration_cap")
                break  # hard cap: requests still in flight are abandoned (in_flight_at_end)
            if self.stop.is_set():
                # Stopped by a signal: let requests in flight finish, but no longer than one timeout.
                grace_until = grace_until or min(now + self.args.timeout, self.deadline)
                if now >= grace_until:
                    break
            if now >= next_progress:
                print(self.stats.progress(), file=self.err, flush=True)
                next_progress += 1.0
            self.all_done.wait(max(0.0, min(0.1, next_progress - now, self.deadline - now)))
        print(self.stats.progress("loadgen done"), file=self.err, flush=True)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        args = self.args
        return {
            "scenario": args.scenario,
            "target": " ".join(f"{t.scheme}://{t.host}:{t.port}{t.prefix}" for t in args.target),
            "run_id": args.run_id,
            "phases": [{"seconds": p.seconds, "rate": p.rate} for p in args.phase],
            "workers": args.workers,
            "keepalive": args.keepalive,
            "retry_503": args.retry_503,
            "stopped_by": self.stop_reason,
            **self.stats.result(),
        }


# -- command line -------------------------------------------------------------------------------------
def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            number = 0
        if not (number > 0 and math.isfinite(number)):
            raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
        return number

    return convert


def _run_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise argparse.ArgumentTypeError("run id: 1-64 of A-Z a-z 0-9 _ . -")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadgen.py",
        description="Open-loop load generator for the Brain AI engine (standard library only). "
        f"Prints one '{RESULT_PREFIX.strip()} {{json}}' line on stdout at the end.",
    )
    parser.add_argument(
        "--target",
        required=True,
        action="append",
        type=parse_target,
        help="base URL, e.g. http://host:8080; repeat it to spread flows over several servers in turn",
    )
    parser.add_argument("--scenario", default="seed", choices=SCENARIOS, help="flows to run (default: seed)")
    parser.add_argument(
        "--phase",
        action="append",
        type=parse_phase,
        required=True,
        metavar="SECONDS:RATE",
        help="arrival phase, repeatable: RATE new flows per second (fractional ok) for SECONDS",
    )
    parser.add_argument("--workers", type=_positive(int), default=64, help="threads executing flows (64)")
    parser.add_argument(
        "--timeout", type=_positive(float), default=10.0, help="socket timeout per request (10)"
    )
    parser.add_argument("--token", default=None, help="bearer token for the Authorization header")
    parser.add_argument("--keepalive", action="store_true", help="reuse one HTTP/1.1 connection per worker")
    parser.add_argument("--unique-texts", action="store_true", help="seed: suffix each learn text #RUN-N")
    parser.add_argument("--acked-file", default=None, help="append each acknowledged (2xx) learn text here")
    parser.add_argument(
        "--retry-503",
        action="store_true",
        help="a 503 with Retry-After is the documented 'retry later' answer: count it in status_503, "
        "not as an error (it is not re-sent)",
    )
    parser.add_argument(
        "--duration-cap",
        type=_positive(float),
        default=1800.0,
        help="hard limit on the run in seconds (1800)",
    )
    parser.add_argument("--run-id", type=_run_id, default=None, help="tag in unique texts (default: random)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.run_id = args.run_id or secrets.token_hex(4)
    acked: TextIO | None = None
    if args.acked_file:
        try:
            acked = open(args.acked_file, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            parser.error(f"--acked-file: {exc}")
    load = LoadRun(args, acked, sys.stderr)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        load.request_stop(signal.Signals(signum).name.lower())

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        result = load.run()
    finally:
        load.close_acked()
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
