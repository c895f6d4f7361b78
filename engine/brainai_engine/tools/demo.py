"""``brain-ai-engine demo``: the embedded default end to end, over real HTTP against a real server process."""

from __future__ import annotations

import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import httpx

from brainai_engine.tools.server_process import ServerProcess

SAMPLE_TEXT = """\
Machine learning is a field of artificial intelligence that builds systems which learn from data.
A neural network is a machine learning model made of layers of simple units. Deep learning uses neural
networks with many layers to recognise images, understand speech and translate languages.

Artificial intelligence research also studies reasoning, planning and knowledge representation.
Knowledge graphs connect concepts with relationships, so a system can reason about how ideas relate.
Memory matters too: working memory holds what is in focus, while long-term memory keeps experiences.

Reinforcement learning trains an agent by reward. Supervised learning trains a model from labelled
examples, and unsupervised learning finds structure in data without labels. Machine learning and
artificial intelligence change how software is written.
"""


def _section(title: str) -> None:
    print(f"\n== {title} ==")


GAUGES = ("brain_ai_memories_total", "brain_ai_concept_nodes_total", "brain_ai_concept_edges_total")


def _show_learn(body: dict[str, object]) -> None:
    keys = (
        "items",
        "memories_stored",
        "segments_discovered",
        "concepts_created",
        "concepts_updated",
        "relationships_formed",
        "processing_time_ms",
    )
    shown = [
        f"{k}={round(v, 2) if isinstance(v, float) else v}" for k in keys if (v := body.get(k)) is not None
    ]
    print("  " + ", ".join(shown))


def run_demo(config_path: str | None = None) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="brain-ai-demo-"))
    try:
        with ServerProcess(data_dir, config_path=config_path) as server:
            print(f"engine serving on {server.base_url} (data dir {data_dir})")
            with httpx.Client(base_url=server.base_url, timeout=30.0, headers=server.auth_headers) as client:
                paragraphs = [p.strip() for p in SAMPLE_TEXT.split("\n\n") if p.strip()]
                _section(f"POST /api/v1/learn/batch ({len(paragraphs)} paragraphs)")
                print(textwrap.indent(SAMPLE_TEXT.strip(), "  | "))
                learned = client.post("/api/v1/learn/batch", json={"texts": paragraphs, "priority": "high"})
                learned.raise_for_status()
                _show_learn(learned.json()["summary"])

                _section("GET /api/v1/memory/search?query=machine learning")
                found = client.get("/api/v1/memory/search", params={"query": "machine learning", "limit": 3})
                found.raise_for_status()
                for hit in found.json()["results"]:
                    text = " ".join(hit["memory"]["content"].split())[:100]
                    print(f"  [{hit['normalized_score']:.2f} (bm25 {hit['score']:.2f})] {text}")

                _section("GET /api/v1/concepts/search?query=learning")
                concepts = client.get("/api/v1/concepts/search", params={"query": "learning", "limit": 5})
                concepts.raise_for_status()
                hits = concepts.json()["results"]
                for hit in hits:
                    c = hit["concept"]
                    print(f"  [{hit['score']:.3f}] {c['name']} (used {c['usage_count']}x)")

                if hits:
                    name = hits[0]["concept"]["name"]
                    _section(f"GET /api/v1/concepts/{name}/related")
                    related = client.get(f"/api/v1/concepts/{name}/related", params={"depth": 2, "limit": 8})
                    related.raise_for_status()
                    for item in related.json()["related"]:
                        print(
                            f"  {item['name']}: strength {item['strength']:.2f}, "
                            f"activation {item['activation']:.3f}, depth {item['depth']}"
                        )
                    if not related.json()["related"]:
                        print("  (no related concepts yet)")

                _section("GET /metrics (engine gauges)")
                for line in client.get("/metrics").text.splitlines():
                    if line.split(" ")[0] in GAUGES:
                        print(f"  {line}")
            print("\nstopping the server")
        return 0
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
