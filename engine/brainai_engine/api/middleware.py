"""The single ASGI layer in front of the router: request ids, auth, load shedding, metrics, last errors.

It is written as plain ASGI (not ``BaseHTTPMiddleware``) because it wraps every request, including the hot
search path, and one function call per request is all it may cost.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brainai_engine.api.errors import REQUEST_ID_KEY, ApiError, error_body, new_request_id
from brainai_engine.api.metrics import Metrics

log = logging.getLogger(__name__)

PROTECTED_PREFIX = "/api/"
UNMATCHED_ROUTE = "unmatched"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class EdgeMiddleware:
    """Wraps the router; everything here must be cheap on the success path."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        auth_token: str | None,
        max_in_flight: int,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self._expected = f"Bearer {auth_token}".encode() if auth_token else None
        self.max_in_flight = max(1, max_in_flight)
        self.in_flight = 0
        metrics.track_in_flight(lambda: self.in_flight, self.max_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = new_request_id(_header(scope, b"x-request-id"))
        scope[REQUEST_ID_KEY] = request_id
        rid_header = (b"x-request-id", request_id.encode("ascii"))
        state: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        counted = False
        try:
            if scope["path"].startswith(PROTECTED_PREFIX):
                self._authorize(scope)
                if self.in_flight >= self.max_in_flight:
                    raise ApiError(
                        503,
                        "overloaded",
                        "too many concurrent requests; retry shortly",
                        headers={"Retry-After": "1"},
                    )
                self.in_flight += 1
                counted = True
            await self.app(scope, receive, send_with_id)
        except ApiError as exc:
            if not state["started"]:
                await self._send_error(send_with_id, exc, request_id)
        except Exception:
            log.exception(
                "unhandled error serving %s %s (request %s)", scope["method"], scope["path"], request_id
            )
            if not state["started"]:
                await self._send_error(
                    send_with_id, ApiError(500, "internal_error", "internal server error"), request_id
                )
        finally:
            if counted:
                self.in_flight -= 1
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            self.metrics.observe_request(
                scope["method"], template, state["status"], time.perf_counter() - started
            )

    def _authorize(self, scope: Scope) -> None:
        if self._expected is None:
            return
        given = (_header(scope, b"authorization") or "").encode("latin-1")
        # compare_digest keeps the comparison time independent of where the first mismatch is.
        if not hmac.compare_digest(given, self._expected):
            raise ApiError(
                401,
                "unauthorized",
                "missing or invalid bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="brain-ai"'},
            )

    @staticmethod
    async def _send_error(send: Send, exc: ApiError, request_id: str) -> None:
        body = error_body(exc.error, exc.message, exc.details, request_id)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
