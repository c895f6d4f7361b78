"""Memory-search responses as bytes: the hot path of the API.

A page's JSON is built once per cached page and kept in the page's `rendered` slot, without the
per-request `cached` and `took_ms` fields, which are appended to the bytes on every answer. The
model's field order puts those two last, which is what makes the cut safe.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from brainai_engine.engine.results import CachedSearch
from brainai_engine.models import MemorySearchQuery

if TYPE_CHECKING:
    from brainai_engine.engine.facade import Engine

JSON_TAIL = b',"cached":'


def page_head(entry: CachedSearch) -> bytes:
    """The page's JSON up to (not including) the per-request fields."""
    if entry.rendered is None:
        full = entry.result.model_dump_json().encode()
        entry.rendered = full[: full.rindex(JSON_TAIL)]
    return entry.rendered


def memory_search_body(engine: Engine, q: MemorySearchQuery) -> bytes:
    """`GET /memory/search` answered as bytes: `Engine.search_memories` serialised."""
    started = time.perf_counter()
    entry, hit = engine.search_page(q)
    head = page_head(entry)
    took = (time.perf_counter() - started) * 1000
    return b'%s,"cached":%s,"took_ms":%r}' % (head, b"true" if hit else b"false", took)
