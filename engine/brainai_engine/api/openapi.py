"""OpenAPI 3.1 document generated from the same endpoint table and pydantic models the app serves.

Generating it (instead of hand-writing it) is what keeps the document, the validation and the responses
from drifting apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from brainai_engine.api.serving import MAX_HEADER_BYTES, MAX_HEADERS, MAX_URL_BYTES

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{([a-zA-Z_]+)(?::[a-z]+)?}")


@dataclass(frozen=True)
class EndpointDoc:
    """What the document needs to know about one route."""

    method: str
    path: str
    summary: str
    handler: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    protected: bool = True
    content_type: str = "application/json"
    path_params: dict[str, str] = field(default_factory=dict)
    stores: bool = False  # adds memories, so memory.capacity can refuse it


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message", "details", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "Stable machine-readable code, e.g. validation_error."},
        "message": {"type": "string"},
        "details": {"description": "Structured context, e.g. per-field validation errors, or null."},
        "request_id": {"type": "string", "description": "Also returned in the X-Request-ID header."},
    },
}


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        params.append(
            {"name": name, "in": "query", "required": name in required, "schema": prop}
            | ({"description": prop["description"]} if "description" in prop else {})
        )
    return params


def _error_ref(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }


def build_openapi(endpoints: list[EndpointDoc], *, title: str, version: str, auth: bool) -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for ep in endpoints:
        models.update(m for m in (ep.query, ep.body, ep.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed, defs = models_json_schema(
        [(m, "validation" if m in {e.body for e in endpoints} else "serialization") for m in ordered],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = _ERROR_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {"summary": ep.summary, "operationId": _operation_id(ep)}
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": doc}
            for name, doc in ep.path_params.items()
        ]
        if ep.query is not None:
            params += _query_parameters(ep.query.model_json_schema())
        if params:
            op["parameters"] = params
        if ep.body is not None:
            ref = keyed[(ep.body, "validation")]
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
        responses: dict[str, Any] = {}
        if ep.response is not None:
            ref = keyed[(ep.response, "serialization")]
            responses[str(ep.status)] = {
                "description": "Success",
                "content": {ep.content_type: {"schema": ref}},
            }
        elif ep.status == 204:
            responses["204"] = {"description": "Done; no body."}
        else:
            responses[str(ep.status)] = {"description": "Success", "content": {ep.content_type: {}}}
        if ep.query is not None or ep.body is not None or ep.path_params:
            responses["400"] = _error_ref("Invalid input")
        if ep.path_params:
            responses["404"] = _error_ref("Not found")
        if ep.body is not None:
            responses["413"] = _error_ref("Body larger than the configured limit")
            responses["415"] = _error_ref("Content-Type is not application/json")
        if ep.stores:
            responses["507"] = _error_ref("The write would exceed memory.capacity; nothing was stored")
        if ep.protected and auth:
            responses["401"] = _error_ref("Missing or invalid bearer token")
        # Refused by the server before any route runs (brainai_engine.api.serving's bounds).
        responses["414"] = _error_ref(f"Request URL over {MAX_URL_BYTES // 1024} KiB")
        responses["431"] = _error_ref(
            f"Request headers over {MAX_HEADER_BYTES // 1024} KiB or {MAX_HEADERS} fields"
        )
        if ep.protected:
            responses["503"] = _error_ref("Too many concurrent requests")
        op["responses"] = responses
        if ep.protected and auth:
            op["security"] = [{"bearerAuth": []}]
        elif not ep.protected:
            op["security"] = []
        paths.setdefault(_PATH_PARAM.sub(r"{\1}", ep.path), {})[ep.method.lower()] = op

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if auth:
        doc["components"]["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    return doc


def _operation_id(ep: EndpointDoc) -> str:
    words = [
        w for w in re.split(r"[^a-zA-Z]+", _PATH_PARAM.sub(r"by_\1", ep.path)) if w and w not in {"api", "v"}
    ]
    return "_".join([ep.method.lower(), *words])
