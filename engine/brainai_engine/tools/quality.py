"""`brain-ai-engine report`: how much the concepts mean, measured on a corpus anyone can rebuild.

The default corpus is the docstrings of the running interpreter's standard library (module, class
and function docstrings of every `.py` file under `sysconfig`'s stdlib path, in path order), so the
figures are reproducible on any machine with the same Python; a folder of text files can be given
instead and is learned through the same ingest path as `brain-ai-engine learn`.

Printed figures:
- junk among the top 100 concepts by usage, by the rules concept discovery enforces (a stopword at
  either end, a number or digit/hex id, a single character, below the minimum frequency, a phrase
  whose words do not associate: confidence under the extraction threshold);
- for the 20 most used concepts, the spread (max - min) of their related concepts' strengths, and
  how many of their top-10 related concepts are among the 50 most frequent content words overall.
"""

from __future__ import annotations

import ast
import statistics
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from brainai_common.engine_config import EngineConfig
from brainai_engine.core.segments import SegmentDiscovery
from brainai_engine.core.text import STOPWORDS, content_words, is_code_like, tokenize
from brainai_engine.engine.facade import Engine
from brainai_engine.engine.ingest import Ingestor, iter_files
from brainai_engine.models import BatchLearnRequest, BatchLearnResult, RelatedQuery

TOP_CONCEPTS = 100
PROBED_CONCEPTS = 20
RELATED_PER_CONCEPT = 10
FREQUENT_WORDS = 50
BATCH_TEXTS = 64
# The config sections that shape what is learned; storage and server settings are the report's own.
REPORT_SECTIONS = ("memory", "learning", "concepts", "search")

Progress = Callable[[str], None]


def stdlib_docstrings(limit_bytes: int) -> Iterator[str]:
    """Docstrings of the interpreter's standard library, in a fixed order, up to `limit_bytes`."""
    root = Path(sysconfig.get_paths()["stdlib"])
    taken = 0
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts or "tests" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and doc.strip():
                    yield doc
                    taken += len(doc.encode("utf-8"))
                    if taken >= limit_bytes:
                        return


def junk_reason(name: str, segments: SegmentDiscovery) -> str | None:
    """Why a concept name breaks the rules of concept discovery, or None."""
    words = name.split(" ")
    if words[0] in STOPWORDS or words[-1] in STOPWORDS:
        return "stopword at an end"
    if any(w.isdigit() or is_code_like(w) for w in words):
        return "number or digit/hex id"
    if any(len(w) < 2 for w in words):
        return "single character"
    stat = segments.stats.get(name)
    if stat is None or stat.frequency < segments.cfg.bpe_min_frequency:
        return "below the minimum frequency"
    if segments.confidence(name) < segments.threshold:
        return "words do not associate"
    return None


def measure(engine: Engine, word_counts: Counter[str]) -> dict[str, Any]:
    """The report's figures over what `engine` has learned."""
    nodes = engine.graph.nodes
    by_usage = sorted(nodes, key=lambda n: (-nodes[n].usage_count, n))
    top = by_usage[:TOP_CONCEPTS]
    junk = {name: reason for name in top if (reason := junk_reason(name, engine.segments))}
    frequent = {w for w, _ in word_counts.most_common(FREQUENT_WORDS)}
    probes: list[dict[str, Any]] = []
    for name in by_usage[:PROBED_CONCEPTS]:
        found = engine.related_concepts(name, RelatedQuery(depth=1, limit=RELATED_PER_CONCEPT))
        related = found.related if found is not None else []
        strengths = [r.strength for r in related]
        probes.append(
            {
                "concept": name,
                "usage": nodes[name].usage_count,
                "related": [f"{r.name} ({r.strength:.2f})" for r in related],
                "strength_spread": round(max(strengths) - min(strengths), 3) if strengths else 0.0,
                "frequent_words": sum(r.name in frequent for r in related),
            }
        )
    related_total = sum(len(p["related"]) for p in probes)
    overlap = sum(p["frequent_words"] for p in probes)
    spreads = [p["strength_spread"] for p in probes if len(p["related"]) > 1]
    return {
        "concepts": len(nodes),
        "top_concepts": top,
        "junk_share": round(len(junk) / max(len(top), 1), 3),
        "junk": junk,
        "frequent_words": sorted(frequent),
        "related_frequent_word_share": round(overlap / max(related_total, 1), 3),
        "strength_spread_min": min(spreads) if spreads else 0.0,
        "strength_spread_median": round(statistics.median(spreads), 3) if spreads else 0.0,
        "concepts_with_flat_strengths": sum(s <= 0.01 for s in spreads),
        "probes": probes,
    }


class _CountingLearner:
    """Counts the content words of every text learned, then hands the batch to the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.words: Counter[str] = Counter()
        self.bytes = 0

    def learn_batch(self, req: BatchLearnRequest) -> BatchLearnResult:
        for text in req.texts:
            self.words.update(content_words(tokenize(text)))
            self.bytes += len(text.encode("utf-8"))
        return self.engine.learn_batch(req)


def run_report(
    folder: Path | None, megabytes: float, config: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """Learn the corpus into a fresh store, then measure it."""
    with tempfile.TemporaryDirectory(prefix="brainai-report-") as tmp:
        cfg = EngineConfig.model_validate({**config, "server": {"data_dir": tmp}})
        engine = Engine(cfg)
        learner = _CountingLearner(engine)
        started = time.perf_counter()
        try:
            if folder is None:
                corpus = f"stdlib docstrings of {sysconfig.get_paths()['stdlib']} (first {megabytes:g} MB)"
                batch: list[str] = []
                for text in stdlib_docstrings(int(megabytes * 1e6)):
                    batch.append(text)
                    if len(batch) >= BATCH_TEXTS:
                        learner.learn_batch(BatchLearnRequest(texts=batch))
                        batch = []
                if batch:
                    learner.learn_batch(BatchLearnRequest(texts=batch))
            else:
                corpus = f"text files under {folder}"
                ingestor = Ingestor(learner, tmp)
                for path in iter_files([folder]):
                    ingestor.ingest_file(path)
                ingestor.finish()
            progress(f"learned {learner.bytes:,} bytes in {time.perf_counter() - started:.1f}s; measuring")
            report = measure(engine, learner.words)
        finally:
            engine.close()
    threshold = cfg.concepts.extraction_threshold
    return {"corpus": corpus, "bytes": learner.bytes, "extraction_threshold": threshold, **report}


def render(report: dict[str, Any]) -> str:
    lines = [
        f"corpus: {report['corpus']} — {report['bytes'] / 1e6:.1f} MB, {report['concepts']:,} concepts "
        f"(extraction_threshold {report['extraction_threshold']})",
        f"junk among the top {len(report['top_concepts'])} concepts: {report['junk_share']:.1%}"
        + (f"  {report['junk']}" if report["junk"] else ""),
        f"related concepts among the {FREQUENT_WORDS} most frequent words: "
        f"{report['related_frequent_word_share']:.1%}",
        f"spread of related strengths per concept: min {report['strength_spread_min']:.3f}, median "
        f"{report['strength_spread_median']:.3f}; all within 0.01: {report['concepts_with_flat_strengths']}",
        "top concepts: " + ", ".join(report["top_concepts"][:30]),
    ]
    for p in report["probes"]:
        lines.append(f"  {p['concept']} ({p['usage']}): {', '.join(p['related'])}")
    return "\n".join(lines)
