"""The lexical index saved next to an embedded store: a reopen maps it instead of rebuilding, and
catches it up against storage after a crash; a foreign or damaged index is rebuilt. In every case
the answers equal those of an index rebuilt from storage."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from brainai_engine.engine.facade import Engine
from brainai_engine.models import MemoryIn, MemorySearchQuery
from brainai_engine.tools.corpus import Corpus
from tests.engine.engine_helpers import small_config

QUERIES = [
    "river",
    "drurgeang",  # in most memories
    "derhouctclaing tocted",
    "shuing kaingly",
    "zqlate",
    "zqsingle",
    "stone garden",
]


def answers(engine: Engine) -> list[tuple[int, bool, list[str]]]:
    out = []
    for query in QUERIES:
        for sort_by in ("relevance", "recency"):
            r = engine.search_memories(MemorySearchQuery(query=query, limit=20, sort_by=sort_by))
            out.append((r.total, r.total_exact, [m.memory.id for m in r.results]))
    return out


def rebuilt_answers(data_dir: Path) -> list[tuple[int, bool, list[str]]]:
    """What a fresh index built from storage answers (the saved one moved aside and back)."""
    index = data_dir / "brain-ai.db.index"
    aside = data_dir.parent / "index-aside"
    shutil.move(index, aside)
    try:
        with Engine(small_config(data_dir)) as engine:
            return answers(engine)
    finally:
        shutil.rmtree(index, ignore_errors=True)
        shutil.move(aside, index)


def opened_from_saved(caplog: pytest.LogCaptureFixture) -> bool:
    return any("search index opened from" in r.getMessage() for r in caplog.records)


def fill(engine: Engine, n: int = 3_000) -> None:
    engine.import_memories(Corpus(3).texts(n))
    for i in range(20):
        engine.add_memory(MemoryIn(content=f"zqsingle fact number {i} about the river", type="semantic"))


def test_reopen_maps_the_saved_index(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    with Engine(small_config(data)) as engine:
        fill(engine)
        before = answers(engine)
    assert (data / "brain-ai.db.index" / "lexical" / "manifest.json").exists()
    caplog.set_level(logging.INFO, logger="brainai_engine.engine.indexing")
    with Engine(small_config(data)) as engine:
        assert opened_from_saved(caplog)
        assert answers(engine) == before
    assert rebuilt_answers(data) == before


CRASH = """
import os, sys
from brainai_engine.engine.facade import Engine
from brainai_engine.models import MemoryIn
from brainai_engine.tools.corpus import Corpus
from tests.engine.engine_helpers import small_config

engine = Engine(small_config(sys.argv[1]))
engine.import_memories(Corpus(3).texts(3000))
engine.indexes.persist(engine.storage, engine._writer, force=True)
# After the save: more memories (single and bulk), deletions, then death without a close.
for i in range(30):
    engine.add_memory(MemoryIn(content=f"zqlate memory {i} on the stone garden", type="semantic"))
engine.import_memories([f"zqlate bulk {i} river market" for i in range(1500)])
for memory_id in range(1, 400, 7):
    engine.delete_memory(str(memory_id))
os._exit(0)
"""


def test_a_crash_after_the_save_is_caught_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("brainai_engine.storage.sqlite.CATALOG_PAGE", 1_000)  # the catalog in pages
    data = tmp_path / "data"
    repo = Path(__file__).resolve().parents[3]
    script = textwrap.dedent(CRASH)
    subprocess.run([sys.executable, "-c", script, str(data)], check=True, cwd=repo, timeout=300)
    caplog.set_level(logging.INFO, logger="brainai_engine.engine.indexing")
    with Engine(small_config(data)) as engine:
        assert opened_from_saved(caplog)
        got = answers(engine)
        late = engine.search_memories(MemorySearchQuery(query="zqlate", limit=5))
        assert late.total == 1530 and late.total_exact
        assert engine.get_memory("8") is None
        assert engine.search_memories(MemorySearchQuery(query="zqlate")).total == 1530
    # Deleted memories' postings stay until a merge and still count in word frequencies, so
    # relevance order may differ slightly from a rebuild's; what matches may not.
    rebuilt = rebuilt_answers(data)
    assert [a[:2] for a in got] == [a[:2] for a in rebuilt]
    assert got[1::2] == rebuilt[1::2]  # recency order


def test_a_foreign_or_damaged_index_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for data in (one, two):
        with Engine(small_config(data)) as engine:
            fill(engine, 1_500 if data == one else 2_500)
    expected = rebuilt_answers(two)
    shutil.rmtree(two / "brain-ai.db.index")
    shutil.copytree(one / "brain-ai.db.index", two / "brain-ai.db.index")  # another store's index
    caplog.set_level(logging.INFO, logger="brainai_engine.engine.indexing")
    with Engine(small_config(two)) as engine:
        assert not opened_from_saved(caplog)
        assert answers(engine) == expected
    assert any("not this store's" in r.getMessage() for r in caplog.records)

    segment = next((two / "brain-ai.db.index" / "lexical").glob("segment-*"))
    (segment / "postings.npy").write_bytes(b"damaged")
    caplog.clear()
    with Engine(small_config(two)) as engine:
        assert answers(engine) == expected
    assert any("unusable; rebuilding" in r.getMessage() for r in caplog.records)


def test_an_idle_index_is_merged_into_one_segment_and_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("brainai_engine.engine.indexing.IDLE_MERGE_S", 0.0)
    data = tmp_path / "data"
    with Engine(small_config(data)) as engine:
        engine._stop.set()  # the maintenance thread stands aside; tidy runs here
        engine._maintainer.join()
        for start in range(0, 3_000, 1_000):  # three bulk batches: three segments
            engine.import_memories(Corpus(start).texts(1_000))
        before = answers(engine)
        assert len(engine.indexes.lexical.segments()) > 1
        engine.indexes.tidy(engine.storage, engine._writer)
        assert len(engine.indexes.lexical.segments()) == 1
        assert answers(engine) == before
    manifest = json.loads((data / "brain-ai.db.index" / "lexical" / "manifest.json").read_text())
    assert len(manifest["segments"]) == 1
