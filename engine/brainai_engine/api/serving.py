"""Uvicorn settings shared by ``serve`` and the HTTP benchmark, so the benchmark measures production."""

from __future__ import annotations

import importlib.util
import socket
from typing import Any

import uvicorn


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def uvicorn_config(app: Any, host: str, port: int, *, log_level: str = "info") -> uvicorn.Config:
    """One worker, fastest available loop and parser, no access log (metrics cover per-request data)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if _have("uvloop") else "asyncio",
        http="httptools" if _have("httptools") else "h11",
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
