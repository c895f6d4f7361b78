"""The engine's HTTP API: a Starlette app over one :class:`Engine`.

Reads (searches, lookups) run directly on the event loop because the engine answers them from memory in
well under a millisecond, and a threadpool hop would cost more than the work. Writes (learn, add, delete)
may touch disk, so they go to a bounded threadpool and never stall other requests.
"""

from __future__ import annotations

import json
import math
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from brainai_engine.api.errors import REQUEST_ID_KEY, ApiError, error_response, from_validation_error
from brainai_engine.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from brainai_engine.api.metrics import Metrics
from brainai_engine.api.middleware import EdgeMiddleware
from brainai_engine.api.openapi import EndpointDoc, build_openapi
from brainai_engine.api.pages import memory_search_body
from brainai_engine.core.lru import LRUCache
from brainai_engine.engine.errors import CapacityExceeded
from brainai_engine.models import (
    MAX_QUERY_CHARS,
    BatchLearnRequest,
    BatchLearnResult,
    Concept,
    ConceptSearchQuery,
    ConceptSearchResult,
    LearnRequest,
    LearnResult,
    Memory,
    MemoryIn,
    MemorySearchQuery,
    MemorySearchResult,
    RelatedQuery,
    RelatedResult,
)
from brainai_engine.storage.base import StorageUnavailable

if TYPE_CHECKING:
    from brainai_common.engine_config import EngineConfig
    from brainai_engine.engine.facade import Engine

API = "/api/v1"
MAX_ID_CHARS = 200
PARSED_QUERIES = 4096
M = TypeVar("M", bound=BaseModel)

_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


def _version() -> str:
    try:
        return metadata.version("brain-ai-engine")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        model.model_dump_json(), status_code=status, media_type="application/json", headers=headers
    )


def _plain_json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


def _query(request: Request, model: type[M]) -> M:
    """Validate query parameters; unknown parameters are rejected like extra JSON fields."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise from_validation_error(exc, "query parameters") from None


def _path_text(request: Request, key: str, what: str, max_chars: int) -> str:
    value: str = request.path_params[key]
    if not value.strip() or len(value) > max_chars or "\x00" in value:
        raise ApiError(
            400,
            "validation_error",
            f"invalid {what}: must be 1..{max_chars} characters, not blank, without NUL",
            [{"loc": ["path", key], "msg": "invalid path parameter", "type": "value_error"}],
        )
    return value


async def _body(request: Request, model: type[M], limit: int) -> M:
    """Read and validate a JSON body, enforcing ``limit`` while streaming (Content-Length may lie)."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    charset = (
        params.strip().lower().removeprefix("charset=").strip('"')
        if "charset=" in params.lower()
        else "utf-8"
    )
    if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json (UTF-8)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"body exceeds {limit} bytes", {"limit_bytes": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"body exceeds {limit} bytes", {"limit_bytes": limit})
        chunks.append(chunk)
    if size == 0:
        raise ApiError(400, "invalid_json", "request body is empty; a JSON object is required")
    try:
        return model.model_validate_json(b"".join(chunks))
    except ValidationError as exc:
        raise from_validation_error(exc, "request body") from None


class _Api:
    """Route handlers bound to one engine; one instance per app."""

    def __init__(self, engine: Engine, config: EngineConfig, metrics: Metrics) -> None:
        self.engine = engine
        self.metrics = metrics
        self.max_body = int(config.server.max_body_bytes)
        self.writers = anyio.CapacityLimiter(max(1, int(config.system.worker_threads)))
        self.write_queue_limit = int(config.system.async_task_queue_size)
        metrics.track_writers(self.writers)
        # Validation is a pure function of the raw query string, so repeated searches skip it.
        self._parsed: LRUCache[bytes, MemorySearchQuery] = LRUCache(PARSED_QUERIES)

    async def _write(self, fn: Any, *args: Any) -> Any:
        waiting = self.writers.statistics().tasks_waiting
        if waiting >= self.write_queue_limit:
            raise ApiError(
                503,
                "write_queue_full",
                f"{waiting} writes are already waiting for a writer thread "
                "(system.async_task_queue_size); retry shortly",
                {"waiting": waiting, "limit": self.write_queue_limit},
                {"Retry-After": "1"},
            )
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.writers)

    async def learn(self, request: Request) -> Response:
        req = await _body(request, LearnRequest, self.max_body)
        result: LearnResult = await self._write(self.engine.learn, req)
        self.metrics.observe_learned([req.text])
        return _json(result)

    async def learn_batch(self, request: Request) -> Response:
        req = await _body(request, BatchLearnRequest, self.max_body)
        result: BatchLearnResult = await self._write(self.engine.learn_batch, req)
        self.metrics.observe_learned(req.texts)
        return _json(result)

    async def search_memories(self, request: Request) -> Response:
        raw = request.scope["query_string"]
        query = self._parsed.get(raw)
        if query is None:
            query = _query(request, MemorySearchQuery)
            self._parsed.put(raw, query)
        started = time.perf_counter()
        body = memory_search_body(self.engine, query)
        self.metrics.memory_search_duration.observe(time.perf_counter() - started)
        return Response(body, media_type="application/json")

    async def add_memory(self, request: Request) -> Response:
        memory_in = await _body(request, MemoryIn, self.max_body)
        memory: Memory = await self._write(self.engine.add_memory, memory_in)
        return _json(memory, 201, {"Location": f"{API}/memory/{memory.id}"})

    async def get_memory(self, request: Request) -> Response:
        memory_id = _path_text(request, "memory_id", "memory id", MAX_ID_CHARS)
        memory = self.engine.get_memory(memory_id)
        if memory is None:
            raise ApiError(404, "not_found", "no memory with this id", {"id": memory_id})
        return _json(memory)

    async def delete_memory(self, request: Request) -> Response:
        memory_id = _path_text(request, "memory_id", "memory id", MAX_ID_CHARS)
        if not await self._write(self.engine.delete_memory, memory_id):
            raise ApiError(404, "not_found", "no memory with this id", {"id": memory_id})
        return Response(status_code=204)

    async def search_concepts(self, request: Request) -> Response:
        query = _query(request, ConceptSearchQuery)
        started = time.perf_counter()
        result = self.engine.search_concepts(query)
        self.metrics.concept_search_duration.observe(time.perf_counter() - started)
        return _json(result)

    async def get_concept(self, request: Request) -> Response:
        name = _path_text(request, "name", "concept name", MAX_QUERY_CHARS)
        concept = self.engine.get_concept(name)
        if concept is None:
            raise ApiError(404, "not_found", "no concept with this name", {"name": name})
        return _json(concept)

    async def related_concepts(self, request: Request) -> Response:
        name = _path_text(request, "name", "concept name", MAX_QUERY_CHARS)
        query = _query(request, RelatedQuery)
        result = self.engine.related_concepts(name, query)
        if result is None:
            raise ApiError(404, "not_found", "no concept with this name", {"name": name})
        return _json(result)

    async def health(self, request: Request) -> Response:
        return _plain_json({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        """Ready when reads can be served; `details` says what is reachable. Probes block, so they
        run off the event loop."""

        def probe() -> tuple[bool, Any]:
            try:
                ready = bool(self.engine.is_ready())
            except Exception:
                ready = False
            try:
                return ready, self.engine.readiness()
            except Exception:
                return ready, None

        ready, details = await anyio.to_thread.run_sync(probe)
        if not ready:
            raise ApiError(503, "not_ready", "engine is starting or its storage is unreachable", details)
        return _plain_json({"status": "ready", "details": details})

    async def metrics_endpoint(self, request: Request) -> Response:
        if not self.metrics.enabled:
            raise ApiError(404, "not_found", "metrics are switched off (metrics.enabled = false)")
        body = await anyio.to_thread.run_sync(self.metrics.render)
        return Response(body, media_type=METRICS_CONTENT_TYPE)


def endpoint_table() -> list[EndpointDoc]:
    """Every route; the app and the OpenAPI document are both built from this one list."""
    mid = {"memory_id": "Memory id as returned by learn or POST /memory."}
    cname = {"name": "Concept name (URL-encoded)."}
    ep = EndpointDoc
    return [
        ep(
            "POST",
            f"{API}/learn",
            "Learn from one text",
            "learn",
            body=LearnRequest,
            response=LearnResult,
            stores=True,
        ),
        ep(
            "POST",
            f"{API}/learn/batch",
            "Learn from many texts",
            "learn_batch",
            body=BatchLearnRequest,
            response=BatchLearnResult,
            stores=True,
        ),
        ep(
            "GET",
            f"{API}/memory/search",
            "Search memories",
            "search_memories",
            query=MemorySearchQuery,
            response=MemorySearchResult,
        ),
        ep(
            "POST",
            f"{API}/memory",
            "Store one memory verbatim",
            "add_memory",
            body=MemoryIn,
            response=Memory,
            status=201,
            stores=True,
        ),
        ep(
            "GET",
            f"{API}/memory/{{memory_id}}",
            "Fetch a memory",
            "get_memory",
            response=Memory,
            path_params=mid,
        ),
        ep(
            "DELETE",
            f"{API}/memory/{{memory_id}}",
            "Delete a memory",
            "delete_memory",
            status=204,
            path_params=mid,
        ),
        ep(
            "GET",
            f"{API}/concepts/search",
            "Search concepts by name",
            "search_concepts",
            query=ConceptSearchQuery,
            response=ConceptSearchResult,
        ),
        ep(
            "GET",
            f"{API}/concepts/{{name}}/related",
            "Related concepts by spreading activation",
            "related_concepts",
            query=RelatedQuery,
            response=RelatedResult,
            path_params=cname,
        ),
        ep(
            "GET",
            f"{API}/concepts/{{name}}",
            "Fetch a concept",
            "get_concept",
            response=Concept,
            path_params=cname,
        ),
        ep("GET", "/health", "Liveness: the process is serving", "health", protected=False),
        ep("GET", "/ready", "Readiness: storage reachable and index loaded", "ready", protected=False),
        ep(
            "GET",
            "/metrics",
            "Prometheus metrics",
            "metrics_endpoint",
            protected=False,
            content_type="text/plain; version=0.0.4",
        ),
        ep("GET", "/openapi.json", "This document", "openapi", protected=False),
    ]


def create_app(engine: Engine, config: EngineConfig) -> Starlette:
    """Build the ASGI app; the caller owns the engine's lifecycle (open before, close after)."""
    metrics = Metrics(str(config.system.instance_id), engine.stats, config.metrics)
    api = _Api(engine, config, metrics)
    table = endpoint_table()
    auth = bool(config.server.auth_token)
    openapi_body = json.dumps(
        build_openapi(table, title="Brain AI engine", version=_version(), auth=auth)
    ).encode()

    async def openapi(request: Request) -> Response:
        return Response(openapi_body, media_type="application/json")

    # Routes with the same path share one Route so a wrong method yields 405 rather than 404.
    by_path: dict[str, dict[str, Any]] = {}
    for doc in table:
        handler = openapi if doc.handler == "openapi" else getattr(api, doc.handler)
        by_path.setdefault(doc.path, {})[doc.method] = handler
    routes = [Route(path, _dispatch(handlers), methods=list(handlers)) for path, handlers in by_path.items()]

    async def storage_unavailable(request: Request, exc: Exception) -> Response:
        """The store refused a call for now (e.g. primary down): 503 and when to retry, not 500."""
        assert isinstance(exc, StorageUnavailable)
        retry = str(max(1, math.ceil(exc.retry_after)))
        err = ApiError(
            503, "storage_unavailable", str(exc), {"retry_after_seconds": int(retry)}, {"Retry-After": retry}
        )
        return error_response(err, request.scope.get(REQUEST_ID_KEY, ""))

    async def capacity_exceeded(request: Request, exc: Exception) -> Response:
        """507 Insufficient Storage: the store is full by configuration; nothing was stored."""
        assert isinstance(exc, CapacityExceeded)
        metrics.capacity_refusals.inc()
        details = {"capacity": exc.capacity, "stored": exc.stored, "adding": exc.adding}
        err = ApiError(507, "capacity_exceeded", str(exc), details)
        return error_response(err, request.scope.get(REQUEST_ID_KEY, ""))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        details = {"allow": exc.headers["Allow"]} if exc.headers and "Allow" in exc.headers else None
        err = ApiError(exc.status_code, code, str(exc.detail), details, exc.headers)
        return error_response(err, request.scope.get(REQUEST_ID_KEY, ""))

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                EdgeMiddleware,
                metrics=metrics,
                auth_token=config.server.auth_token or None,
                max_in_flight=int(config.system.max_concurrent_requests),
            )
        ],
        exception_handlers={
            HTTPException: http_error,
            StorageUnavailable: storage_unavailable,
            CapacityExceeded: capacity_exceeded,
        },
    )
    app.state.metrics = metrics
    app.state.engine = engine
    return app


def _dispatch(handlers: dict[str, Any]) -> Any:
    if len(handlers) == 1:
        return next(iter(handlers.values()))

    async def by_method(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers[method]
        response: Response = await handler(request)
        return response

    return by_method
