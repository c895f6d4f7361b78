"""Request and result models shared by the engine facade, the HTTP API and the CLI.

These are the public contract of the engine: the HTTP layer validates input with them and
serialises results from them, so the OpenAPI document and the facade never drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Priority = Literal["low", "medium", "high", "critical"]
PRIORITY_WEIGHT: dict[Priority, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}

MemoryType = Literal["working", "episodic", "semantic"]
SortBy = Literal["relevance", "confidence", "recency"]

MAX_QUERY_CHARS = 1000
MAX_SEARCH_LIMIT = 100
MAX_RELATED_DEPTH = 5
MAX_BATCH_TEXTS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class _Body(_Strict):
    """JSON request bodies: no type coercion either (`false` is not a confidence, `"1"` not a count)."""

    model_config = ConfigDict(strict=True)


def _reject_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain non-whitespace text")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class LearnRequest(_Body):
    text: str = Field(min_length=1, description="Text to learn from.")
    priority: Priority = "medium"
    context: dict[str, str] | None = Field(default=None, description="Free-form labels kept with the memory.")

    _text = field_validator("text")(_reject_blank)


class LearnResult(BaseModel):
    segments_discovered: int
    concepts_created: int
    concepts_updated: int
    relationships_formed: int
    memories_stored: int = Field(description="New memories stored from this text.")
    memories_known: int = Field(
        default=0,
        description="Chunks whose identical content was already stored: not stored again; the stored "
        "memory counts one more access and its concepts are strengthened as for any learn.",
    )
    memory_ids: list[str] = Field(description="One per chunk: the new memory, or the stored identical one.")
    processing_time_ms: float


class BatchLearnRequest(_Body):
    texts: list[str] = Field(min_length=1, max_length=MAX_BATCH_TEXTS)
    priority: Priority = "medium"
    context: dict[str, str] | None = None

    @field_validator("texts")
    @classmethod
    def _texts_not_blank(cls, texts: list[str]) -> list[str]:
        for i, text in enumerate(texts):
            try:
                _reject_blank(text)
            except ValueError as exc:
                raise ValueError(f"texts[{i}] {exc}") from None
        return texts


class BatchSummary(BaseModel):
    items: int
    memories_stored: int
    memories_known: int = 0
    concepts_created: int
    concepts_updated: int
    relationships_formed: int
    segments_discovered: int
    processing_time_ms: float


class BatchLearnResult(BaseModel):
    results: list[LearnResult]
    summary: BatchSummary


class MemoryIn(_Body):
    content: str = Field(min_length=1)
    type: MemoryType = "episodic"
    priority: Priority = "medium"
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    context: dict[str, str] | None = None

    _content = field_validator("content")(_reject_blank)


class Memory(BaseModel):
    id: str
    content: str
    type: MemoryType
    priority: Priority
    confidence: float
    importance: float
    access_count: int
    created_at: float = Field(description="Unix time, seconds.")
    last_accessed: float = Field(description="Unix time, seconds.")
    context: dict[str, str] | None = None


class MemorySearchQuery(_Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    limit: int = Field(default=10, ge=1, le=MAX_SEARCH_LIMIT)
    offset: int = Field(default=0, ge=0, le=10_000)
    type: MemoryType | None = None
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    sort_by: SortBy = "relevance"

    _query = field_validator("query")(_reject_blank)


class MemoryHit(BaseModel):
    memory: Memory
    score: float = Field(description="Raw relevance: BM25 (lexical backend) or cosine (vector backend).")
    normalized_score: float = Field(
        ge=0.0,
        le=1.0,
        description="The score over that of a memory made of exactly the query's words (BM25; "
        "clipped at 1) or the cosine as is: comparable across stores and queries.",
    )


class MemorySearchResult(BaseModel):
    query: str
    total: int = Field(description="Memories matching the query, before limit/offset.")
    total_exact: bool = Field(
        default=True,
        description="Whether `total` was counted. False: an estimate, when the query's words are so "
        "common that counting every match would cost more than the search (lexical backend), or "
        "the matches within the candidate pool (vector backend).",
    )
    results: list[MemoryHit]
    cached: bool = Field(
        default=False,
        description="Served from the result cache: identical to a fresh "
        "search of the same state, with importance as of the same clock tick.",
    )
    took_ms: float = Field(description="Time this call spent in the engine, cache lookup included.")


class Concept(BaseModel):
    name: str
    usage_count: int
    confidence: float
    created_at: float
    last_used: float


class ConceptSearchQuery(_Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    limit: int = Field(default=10, ge=1, le=MAX_SEARCH_LIMIT)

    _query = field_validator("query")(_reject_blank)


class ConceptHit(BaseModel):
    concept: Concept
    score: float


class ConceptSearchResult(BaseModel):
    query: str
    results: list[ConceptHit]
    took_ms: float


class RelatedQuery(_Strict):
    depth: int = Field(default=2, ge=1, le=MAX_RELATED_DEPTH)
    limit: int = Field(default=10, ge=1, le=MAX_SEARCH_LIMIT)
    min_strength: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Edges of lower association strength are not followed."
    )


class RelatedConcept(BaseModel):
    name: str
    activation: float = Field(
        description="Spreading activation reaching it: the sum over paths of a * s * spreading_factor * "
        "depth_decay^d, s the association strength of each edge."
    )
    depth: int = Field(description="Hops from the start concept on the shortest path that reached it.")
    strength: float = Field(
        description="Association strength in [0, 1] of the strongest edge on the path that reached it: "
        "NPMI(a, b) = ln(c_ab N / (c_a c_b)) / -ln(c_ab / N) clipped at 0 (c: memories holding a, b, "
        "both; N: memories in the store), times the evidence c_ab / (c_ab + 2), times the decay of the "
        "edge's Hebbian weight since its last use."
    )
    weight: float | None = Field(
        default=None,
        description="Hebbian weight of the direct edge (w <- w + eta(1 - w) per co-occurrence, decayed), "
        "when there is one.",
    )
    cooccurrences: int | None = Field(
        default=None, description="Memories in which both concepts occurred, for a direct edge."
    )


class RelatedResult(BaseModel):
    concept: str
    related: list[RelatedConcept]


class EngineStats(BaseModel):
    memories: int
    working_memories: int
    concepts: int
    relationships: int
    segments: int
    storage: str
    extra: dict[str, Any] = Field(default_factory=dict)
