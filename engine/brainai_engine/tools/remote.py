"""The CLI's way to a running server: `learn`, `search` and `concepts` with ``--url``.

It offers the three calls the CLI makes of an Engine (`learn_batch`, `search_memories`,
`search_concepts`), over the HTTP API, so the same ingest (progress bar, checkpoints) and output
code runs against a local store or a server that holds it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from brainai_engine.models import (
    BatchLearnRequest,
    BatchLearnResult,
    ConceptSearchQuery,
    ConceptSearchResult,
    MemorySearchQuery,
    MemorySearchResult,
)

API = "/api/v1"


class RemoteError(RuntimeError):
    """The server could not be reached, or refused the call; the message says which and why."""


class RemoteEngine:
    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, API + path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the engine at {self.url}: {exc}") from None
        if response.is_success:
            return response.json()
        try:
            reason = response.json().get("message") or response.text
        except ValueError:
            reason = response.text
        raise RemoteError(f"the engine at {self.url} answered {response.status_code}: {reason}")

    def learn_batch(self, req: BatchLearnRequest) -> BatchLearnResult:
        body = req.model_dump(mode="json", exclude_none=True)
        return BatchLearnResult.model_validate(self._call("POST", "/learn/batch", json=body))

    def search_memories(self, q: MemorySearchQuery) -> MemorySearchResult:
        params = {"query": q.query, "limit": q.limit}
        return MemorySearchResult.model_validate(self._call("GET", "/memory/search", params=params))

    def search_concepts(self, q: ConceptSearchQuery) -> ConceptSearchResult:
        params = {"query": q.query, "limit": q.limit}
        return ConceptSearchResult.model_validate(self._call("GET", "/concepts/search", params=params))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
