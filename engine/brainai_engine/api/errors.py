"""The one error shape every HTTP failure uses: ``{error, message, details, request_id}``.

Clients (and the operator's probes) can then branch on a stable ``error`` code instead of parsing text,
and quote ``request_id`` when reporting a problem.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

REQUEST_ID_KEY = "brainai.request_id"
_MAX_REQUEST_ID = 128


class ApiError(Exception):
    """Raised by handlers for any client-visible failure; rendered by :func:`error_response`."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def new_request_id(incoming: str | None) -> str:
    """Honour a caller's X-Request-ID when it is short printable ASCII; otherwise mint one."""
    if incoming and len(incoming) <= _MAX_REQUEST_ID and incoming.isascii() and incoming.isprintable():
        return incoming
    return uuid.uuid4().hex


def error_body(error: str, message: str, details: Any, request_id: str) -> bytes:
    payload = {"error": error, "message": message, "details": details, "request_id": request_id}
    return json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")


def error_response(exc: ApiError, request_id: str) -> Response:
    """The X-Request-ID header itself is added by the edge middleware, for errors and successes alike."""
    return Response(
        error_body(exc.error, exc.message, exc.details, request_id),
        status_code=exc.status,
        media_type="application/json",
        headers=exc.headers,
    )


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors without the offending input, which may be huge or sensitive."""
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def from_validation_error(exc: ValidationError, where: str) -> ApiError:
    details = validation_details(exc)
    if any(d["type"] == "json_invalid" for d in details):
        return ApiError(400, "invalid_json", "request body is not valid UTF-8 JSON", details)
    fields = ", ".join(sorted({".".join(d["loc"]) or where for d in details}))
    return ApiError(400, "validation_error", f"invalid {where}: {fields}", details)
