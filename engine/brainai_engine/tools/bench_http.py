"""HTTP benchmark: the real app (engine preloaded with N memories) against bare Starlette endpoints.

Four targets, all under identical uvicorn settings in child processes, driven by the same load
generator from this process in alternating rounds so background noise hits all alike:

- ``bare``: a Starlette endpoint doing no work (the framework's ceiling);
- ``direct``: a bare Starlette endpoint calling ``api.pages.memory_search_body`` (no validation model,
  middleware, auth or metrics) in the same process as the app, sharing its engine;
- ``search``: the real ``GET /api/v1/memory/search`` with the result cache on, as configured;
- ``search_uncached``: the same endpoint with the engine's result cache switched off for the round
  (through a benchmark-only control route in the child), so every request runs the full search.

The load generator cycles ``SEARCH_QUERIES`` distinct queries (reported as ``search_distinct_queries``)
and the engine takes no writes during the run, so after the warm-up the cached rounds are nearly all
cache hits: ``search_rps`` is the repeated-query figure, ``search_uncached_rps`` the cold one.
Ratios matter more than absolutes: ``*_vs_bare`` is the share of the framework ceiling an endpoint keeps,
``search_vs_direct`` is what the API layer costs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from brainai_engine.api.pages import memory_search_body
from brainai_engine.api.serving import free_port
from brainai_engine.tools.corpus import Corpus
from brainai_engine.tools.loadgen import LoadResult, drive, get_request

LOCAL = "127.0.0.1"
DIRECT_PREFIX = "/bench-direct"
CONTROL_PATH = "/bench-control/search-cache"
SEARCH_QUERIES = 512
BARE_MIN_REQUESTS = 10_000
BARE_BODY = b'{"query":"bench","total":0,"results":[],"took_ms":0.0}'


def corpus_texts(memories: int, seed: int = 0) -> tuple[Corpus, list[str]]:
    """The same deterministic texts the core bench loads (same seed, same text)."""
    corpus = Corpus(seed)
    return corpus, corpus.texts(memories)


def search_queries(count: int, memories: int, seed: int = 0) -> list[str]:
    """Queries of one to three words taken from the loaded texts, so each has true matches."""
    corpus, texts = corpus_texts(memories, seed)
    return corpus.queries(count, texts)


def bench_config(data_dir: Path, memories: int, config_path: str | None = None) -> Any:
    from brainai_common.engine_config import load_config

    config = load_config(config_path)
    server = config.server.model_copy(update={"data_dir": str(data_dir)})
    system = config.system.model_copy(
        update={"memory_capacity": max(memories, 1000), "max_concurrent_requests": 10_000}
    )
    return config.model_copy(update={"server": server, "system": system})


def preload(engine: Any, memories: int, seed: int = 0) -> int:
    """Bulk-load the corpus through ``engine.import_memories`` unless the data dir already holds it.

    Bulk import (no concept learning) keeps set-up short: this benchmark measures search over N
    memories, not learning, which the core bench covers.
    """
    have = int(engine.stats().memories)
    if have >= memories:
        return 0
    _corpus, texts = corpus_texts(memories, seed)
    return int(engine.import_memories(texts[have:]))


def bare_app() -> Any:
    """The ceiling: a Starlette endpoint that does no work and returns a search-sized JSON body."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def search(request: Request) -> Response:
        return Response(BARE_BODY, media_type="application/json")

    return Starlette(routes=[Route("/api/v1/memory/search", search), Route("/ready", search)])


def direct_app(engine: Any) -> Any:
    """The engine behind a bare endpoint: no validation model, middleware, auth or metrics.

    Comparing the real app against this isolates what the API layer itself costs per search.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from brainai_engine.models import MemorySearchQuery

    budget = engine.search_cache.budget

    async def cache_switch(request: Request) -> Response:
        """Benchmark-only: turn the engine's search cache off (``?on=0``) or back on."""
        engine.search_cache.resize(budget if request.query_params.get("on") == "1" else 0)
        return Response(b"{}", media_type="application/json")

    async def search(request: Request) -> Response:
        query = MemorySearchQuery.model_construct(
            query=request.query_params["query"],
            limit=10,
            offset=0,
            type=None,
            min_confidence=0.0,
            sort_by="relevance",
        )
        return Response(memory_search_body(engine, query), media_type="application/json")

    return Starlette(
        routes=[
            Route(f"{DIRECT_PREFIX}/api/v1/memory/search", search),
            Route(f"{DIRECT_PREFIX}{CONTROL_PATH}", cache_switch, methods=["POST"]),
        ]
    )


def _with_direct(app: Any, direct: Any) -> Any:
    async def dispatch(scope: Any, receive: Any, send: Any) -> None:
        target = direct if scope["type"] == "http" and scope["path"].startswith(DIRECT_PREFIX) else app
        await target(scope, receive, send)

    return dispatch


def _serve(kind: str, port: int, data_dir: str, memories: int, config_path: str | None) -> None:
    """Child-process entry point."""
    import uvicorn

    from brainai_engine.api.serving import uvicorn_config

    if kind == "bare":
        app = bare_app()
        engine = None
    else:
        from brainai_engine.api.app import create_app
        from brainai_engine.engine.facade import Engine

        config = bench_config(Path(data_dir), memories, config_path)
        engine = Engine.open(config)
        preload(engine, memories)
        app = _with_direct(create_app(engine, config), direct_app(engine))
    try:
        uvicorn.Server(uvicorn_config(app, LOCAL, port, log_level="warning")).run()
    finally:
        if engine is not None:
            engine.close()


class _Child:
    def __init__(self, kind: str, data_dir: Path, memories: int, config_path: str | None) -> None:
        self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "brainai_engine.tools.bench_http",
            kind,
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--memories",
            str(memories),
        ]
        if config_path:
            cmd += ["--config", config_path]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"bench server exited: {self.log.read().decode(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"bench server not ready after {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def run_http_bench(
    memories: int,
    *,
    requests: int = 4000,
    concurrency: int = 4,
    rounds: int = 2,
    seed: int = 0,
    data_dir: str | Path | None = None,
    config_path: str | None = None,
    ready_timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure search and bare rps in the same run; best round of each, so noise cannot favour either."""
    say = progress or (lambda _msg: None)
    owned = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="brain-ai-bench-")) if owned else Path(data_dir)  # type: ignore[arg-type]
    queries = search_queries(SEARCH_QUERIES, memories, seed)
    search_requests = [get_request("/api/v1/memory/search", {"query": q, "limit": "10"}) for q in queries]
    direct_requests = [
        get_request(f"{DIRECT_PREFIX}/api/v1/memory/search", {"query": q, "limit": "10"}) for q in queries
    ]
    bare_requests = [get_request("/api/v1/memory/search", {"query": "bench"})]
    started = time.perf_counter()
    app_server = _Child("app", root, memories, config_path)
    bare_server = _Child("bare", root, 0, None)
    try:
        say(f"preloading {memories} memories")
        app_server.wait_ready(ready_timeout)
        bare_server.wait_ready(60)
        setup_s = time.perf_counter() - started
        # Warm-up sends every distinct query once, so the cached rounds measure the steady state.
        warm = max(min(300, requests), len(search_requests))
        drive(LOCAL, app_server.port, search_requests, total=warm, concurrency=concurrency)
        drive(LOCAL, bare_server.port, bare_requests, total=warm, concurrency=concurrency)
        runs: dict[str, list[LoadResult]] = {"bare": [], "direct": [], "search": [], "search_uncached": []}
        # Cheaper endpoints get more requests so that every target is measured over a similar time.
        targets = {
            "bare": (bare_server.port, bare_requests, max(requests, BARE_MIN_REQUESTS)),
            "direct": (app_server.port, direct_requests, max(requests, BARE_MIN_REQUESTS // 2)),
            "search": (app_server.port, search_requests, max(requests, BARE_MIN_REQUESTS // 2)),
            "search_uncached": (app_server.port, search_requests, requests),
        }
        for n in range(rounds):
            say(f"round {n + 1}/{rounds}")
            for name, (port, payloads, total) in targets.items():
                cold = name == "search_uncached"
                if cold:
                    _switch_cache(app_server.port, on=False)
                try:
                    runs[name].append(drive(LOCAL, port, payloads, total=total, concurrency=concurrency))
                finally:
                    if cold:
                        _switch_cache(app_server.port, on=True)
    finally:
        app_server.stop()
        bare_server.stop()
        if owned:
            shutil.rmtree(root, ignore_errors=True)
    best = {name: max(results, key=lambda r: r.rps) for name, results in runs.items()}
    return {
        "memories": memories,
        "concurrency": concurrency,
        "requests_per_round": {name: total for name, (_port, _payloads, total) in targets.items()},
        "rounds": rounds,
        "search_distinct_queries": len(queries),
        **best["search"].as_dict("search"),
        **best["search_uncached"].as_dict("search_uncached"),
        **best["bare"].as_dict("bare"),
        **best["direct"].as_dict("direct"),
        "search_vs_bare": _ratio(best["search"], best["bare"]),
        "search_uncached_vs_bare": _ratio(best["search_uncached"], best["bare"]),
        "search_vs_direct": _ratio(best["search"], best["direct"]),
        "all_rounds_rps": {name: [round(r.rps, 1) for r in results] for name, results in runs.items()},
        "setup_s": round(setup_s, 2),
        "total_s": round(time.perf_counter() - started, 2),
    }


def _switch_cache(port: int, *, on: bool) -> None:
    url = f"http://{LOCAL}:{port}{DIRECT_PREFIX}{CONTROL_PATH}?on={int(on)}"
    httpx.post(url, timeout=10).raise_for_status()


def _ratio(a: LoadResult, b: LoadResult) -> float:
    return round(a.rps / b.rps, 3) if b.rps else 0.0


def run_full_bench(
    memories: int, *, quick: bool = False, config_path: str | None = None, verbose: bool = False
) -> dict[str, Any]:
    """``brain-ai-engine bench``: the in-process core bench, then the HTTP bench at the same size."""
    from brainai_engine.tools.bench import run_core_bench

    def say(message: str) -> None:
        if verbose:
            print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    say(f"core bench: {memories} memories")
    report: dict[str, Any] = dict(run_core_bench(memories, seed=0, progress=say))
    say("http bench")
    report["http"] = run_http_bench(
        memories,
        requests=3000 if quick else 10_000,
        rounds=3,
        config_path=config_path,
        progress=say,
    )
    report["bench_total_s"] = round(time.perf_counter() - started, 2)
    return report


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="internal: one benchmark server")
    parser.add_argument("kind", choices=["app", "bare"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--memories", type=int, default=0)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    _serve(args.kind, args.port, args.data_dir, args.memories, args.config)


if __name__ == "__main__":
    _main()
