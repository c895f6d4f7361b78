"""A small keep-alive HTTP/1.1 load generator on raw asyncio sockets.

Pure Python so the benchmark needs nothing installed, and far lighter per request than an HTTP client
library, so on a small machine the server (not the client) is what saturates. It is only meant for the
simple GET requests the benchmark sends: no chunked responses, no pipelining.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    def as_dict(self, prefix: str) -> dict[str, float | int]:
        return {
            f"{prefix}_rps": round(self.rps, 1),
            f"{prefix}_p50_ms": round(self.p50_ms, 3),
            f"{prefix}_p95_ms": round(self.p95_ms, 3),
            f"{prefix}_p99_ms": round(self.p99_ms, 3),
            f"{prefix}_requests": self.requests,
            f"{prefix}_errors": self.errors,
        }


def get_request(
    path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> bytes:
    """Encode one GET request (query values are percent-encoded)."""
    target = path
    if params:
        target += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
    lines = [f"GET {target} HTTP/1.1", "Host: bench", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length:
        await reader.readexactly(length)
    return status


async def run_load(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    total: int,
    concurrency: int,
    max_seconds: float = 60.0,
) -> LoadResult:
    """Send ``total`` requests (cycling through ``requests``) over ``concurrency`` keep-alive connections."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal issued, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while issued < total and time.perf_counter() < deadline:
                payload = requests[issued % len(requests)]
                issued += 1
                started = time.perf_counter()
                writer.write(payload)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status >= 400:
                    errors += 1
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    done = len(latencies)
    return LoadResult(
        requests=done,
        errors=errors,
        seconds=elapsed,
        rps=done / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p95_ms=percentile(latencies, 0.95) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
    )


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed: the client must stay cheaper than the server it measures."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def drive(host: str, port: int, requests: list[bytes], *, total: int, concurrency: int) -> LoadResult:
    loop = new_event_loop()
    try:
        return loop.run_until_complete(run_load(host, port, requests, total=total, concurrency=concurrency))
    finally:
        loop.close()
