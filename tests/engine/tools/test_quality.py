"""The concept quality report on the standard library's docstrings, and its junk rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brainai_common.engine_config import LearningConfig
from brainai_engine import cli
from brainai_engine.core.segments import SegmentDiscovery
from brainai_engine.core.text import tokenize
from brainai_engine.tools.quality import junk_reason, run_report


def test_junk_rules() -> None:
    seg = SegmentDiscovery(LearningConfig(bpe_min_frequency=2), 0.6)
    for _ in range(3):
        seg.observe(tokenize("git cherry"), now=0)
    seg.observe(tokenize("lonely"), now=0)
    assert junk_reason("the git", seg) == "stopword at an end"
    assert junk_reason("window ab12cd34eexample", seg) == "number or digit/hex id"
    assert junk_reason("x", seg) == "single character"
    assert junk_reason("lonely", seg) == "below the minimum frequency"
    assert junk_reason("git", seg) is None


def test_report_meets_the_quality_targets() -> None:
    """Half a megabyte of docstrings: few junk concepts, related lists that are not the most frequent
    words, and strengths that tell associates apart."""
    report = run_report(None, 0.5, {}, lambda _m: None)
    assert report["bytes"] >= 500_000 and report["concepts"] > 1000
    assert len(report["top_concepts"]) == 100 and len(report["probes"]) == 20
    assert report["junk_share"] <= 0.05, report["junk"]
    assert report["related_frequent_word_share"] <= 0.2
    assert report["concepts_with_flat_strengths"] == 0 and report["strength_spread_median"] > 0.01
    assert all(p["related"] for p in report["probes"])


def test_report_cli_on_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(30):
        (folder / f"page{i}.txt").write_text(
            f"Git cherry-pick applies a commit. The rebase rewrites history, page {i}.\n\n"
            "Docker images hold layers; a container runs an image.\n",
            encoding="utf-8",
        )
    (folder / "blob.bin").write_bytes(b"\x00\x01" * 100)
    assert cli.main(["report", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["corpus"] == f"text files under {folder}" and report["concepts"] > 5
    assert any("cherry pick" in name for name in report["top_concepts"])  # across the hyphen
    assert not any("layers container" in name for name in report["top_concepts"])  # not across ";"
    assert cli.main(["report", str(folder / "missing")]) == 2
