"""The production HTTP server's own refusals (before any route runs) use the API's JSON error shape."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from brainai_engine.api.serving import MAX_HEADER_BYTES, MAX_HEADERS, MAX_URL_BYTES
from brainai_engine.tools.server_process import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("serving")) as running:
        yield running


def exchange(server: ServerProcess, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One raw request on its own connection: status, headers, body."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


def get(target: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: engine\r\n" + extra + b"Connection: close\r\n\r\n"


def assert_json_error(reply: tuple[int, dict[str, str], bytes], status: int, error: str) -> None:
    code, headers, body = reply
    assert code == status, body
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["error"] == error and payload["message"] and payload["request_id"]


def test_a_url_over_the_bound_is_414(server: ServerProcess) -> None:
    for size in (MAX_URL_BYTES + 1, 70_000, 300_000):
        reply = exchange(server, get(b"/api/v1/memory/search?query=" + b"a" * size))
        assert_json_error(reply, 414, "uri_too_long")


def test_headers_over_the_bound_are_431(server: ServerProcess) -> None:
    big = b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n"
    assert_json_error(exchange(server, get(b"/health", big)), 431, "headers_too_large")
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(MAX_HEADERS + 1))
    assert_json_error(exchange(server, get(b"/health", many)), 431, "headers_too_large")


def test_what_is_not_http_is_a_json_400(server: ServerProcess) -> None:
    assert_json_error(exchange(server, b"\x00\x01 nonsense\r\n\r\n"), 400, "bad_request")


def test_requests_inside_the_bounds_are_served(server: ServerProcess) -> None:
    near = b"X-Fill: " + b"a" * (MAX_HEADER_BYTES // 2) + b"\r\n"
    code, _, body = exchange(server, get(b"/health", near))
    assert code == 200 and json.loads(body)["status"] == "ok"
    # A long but legal search URL reaches the route, which answers with its own validation.
    query = b"%C3%A9" * 1000  # 1000 characters, 6000 bytes
    code, _, body = exchange(server, get(b"/api/v1/memory/search?query=" + query))
    assert code == 200, body
