"""The learning step: text -> memories, segments, concepts and co-occurrence edges.

`prepare` is pure (chunking and tokenising) and runs before the engine takes its locks, so
concurrent learns overlap that work; `analyse` updates the shared vocabulary and graph and runs
under the engine's state lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from brainai_common.engine_config import ConceptsConfig
from brainai_engine.core.concept_search import ConceptNameIndex
from brainai_engine.core.concepts import ConceptGraph
from brainai_engine.core.segments import SegmentDiscovery
from brainai_engine.core.text import concept_units, phrase_units, split_chunks, words_of


@dataclass(slots=True)
class Prepared:
    """One text after the lock-free stage: its memory chunks, their words (what the index holds)
    and their phrase units (words and punctuation breaks, what segment discovery reads; links and
    markup are breaks there, see `concept_units`)."""

    chunks: list[str]
    tokens: list[list[str]]
    units: list[list[str]]
    started: float


def prepare(text: str, max_chunk_chars: int) -> Prepared:
    started = time.perf_counter()
    chunks = split_chunks(text, max_chunk_chars)
    units = [phrase_units(c) for c in chunks]
    return Prepared(
        chunks,
        [words_of(u) for u in units],
        [concept_units(c, u) for c, u in zip(chunks, units, strict=True)],
        started,
    )


def analyse(
    prepared: list[Prepared],
    segments: SegmentDiscovery,
    graph: ConceptGraph,
    names: ConceptNameIndex,
    cfg: ConceptsConfig,
    now: float,
) -> list[tuple[int, int, int, int]]:
    """Run every chunk through segment discovery and the concept graph.

    Units whose segment confidence reaches `extraction_threshold` are the chunk's concepts, in
    order of appearance (at most `max_concepts_per_memory` distinct ones); the graph strengthens
    edges between concepts within the co-occurrence window. Returns per text
    (segments discovered, concepts created, concepts updated, relationships formed).
    """
    threshold = cfg.extraction_threshold
    cap = cfg.max_concepts_per_memory
    confidence = segments.confidence
    out: list[tuple[int, int, int, int]] = []
    for p in prepared:
        discovered = created = updated = formed = 0
        for units in p.units:
            analysis = segments.observe(units, now)
            discovered += len(analysis.new_segments)
            confidences: dict[str, float] = {}
            sequence: list[str] = []
            for unit in analysis.units:
                c = confidences.get(unit)
                if c is None:
                    c = confidences[unit] = confidence(unit)
                if c >= threshold:
                    if len(confidences) > cap and unit not in sequence:
                        continue
                    sequence.append(unit)
            c_new, c_upd, f_new = graph.observe(sequence, confidences, now)
            for name in graph.take_created():
                names.add(name)
            created, updated, formed = created + c_new, updated + c_upd, formed + f_new
        out.append((discovered, created, updated, formed))
    return out
