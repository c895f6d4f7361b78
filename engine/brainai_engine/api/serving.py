"""Uvicorn settings shared by ``serve`` and the HTTP benchmark, so the benchmark measures production.

The HTTP protocol is uvicorn's httptools one with bounds on the request line and headers: a request
over them is answered 414 or 431 in the API's JSON error shape (as is any request the parser
refuses, 400), where uvicorn alone answers a plain-text 400 for a long URL and accepts headers of
any size.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
from http import HTTPStatus
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from brainai_engine.api.errors import error_body, new_request_id

log = logging.getLogger(__name__)

# The longest URL the API needs is a search: 1000 query characters, up to 9 bytes each once
# percent-encoded. Headers: nginx's default budget (4 x 8 KiB), and no more than 100 of them.
MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100
# After a refusal the client may still be sending (a 300 KB URL): what arrives is discarded for this
# long before the connection closes, since closing on unread data resets it and the reply is lost.
DRAIN_SECONDS = 1.0


class RequestRefused(Exception):
    """Raised from a parser callback; the parser stops and the connection gets `status`."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HTTP/1.1 with a bounded request line and header block, refusals in the JSON error shape."""

    _refused: RequestRefused | None = None
    _header_bytes = 0
    _draining = False

    def data_received(self, data: bytes) -> None:
        if not self._draining:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self._refuse(414, "uri_too_long", f"the request URL is over {MAX_URL_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES or len(self.headers) >= MAX_HEADERS:
            self._refuse(
                431,
                "headers_too_large",
                f"request headers are over {MAX_HEADER_BYTES} bytes or {MAX_HEADERS} fields",
            )
        super().on_header(name, value)

    def _refuse(self, status: int, error: str, message: str) -> None:
        self._refused = RequestRefused(status, error, message)
        raise self._refused

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this for every parser error; ours say which bound the request broke."""
        refused, self._refused = self._refused, None
        status, error, message = (
            (refused.status, refused.error, refused.message)
            if refused
            else (400, "bad_request", "the request is not valid HTTP/1.1")
        )
        log.debug("refused a request from %s: %s", self.client, message)
        body = error_body(error, message, None, new_request_id(None))
        head = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            "connection: close",
        ]
        self.transport.write("\r\n".join(head).encode("ascii") + b"\r\n\r\n" + body)
        self._draining = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def uvicorn_config(app: Any, host: str, port: int, *, log_level: str = "info") -> uvicorn.Config:
    """One worker, fastest available loop, the bounded parser, no access log (metrics cover
    per-request data)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if _have("uvloop") else "asyncio",
        http=BoundedHttpToolsProtocol,
        access_log=False,
        log_level=log_level,
        lifespan="off",
        timeout_graceful_shutdown=10,
        server_header=False,
        date_header=False,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
