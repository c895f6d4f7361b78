"""Segment discovery: BPE-style merges with a minimum frequency, confidence formula."""

from __future__ import annotations

import pytest

from brainai_common.engine_config import LearningConfig
from brainai_engine.core.segments import SegmentDiscovery, saturation
from brainai_engine.core.text import split_chunks, tokenize


def discovery(**kw: int) -> SegmentDiscovery:
    return SegmentDiscovery(LearningConfig(**kw))


def test_saturation_numbers() -> None:
    assert saturation(1, 2) == pytest.approx(1 - 0.5**1.5)  # 0.6464
    assert saturation(2, 2) == pytest.approx(0.75)
    assert saturation(6, 2) == pytest.approx(0.9375)


def test_pair_becomes_segment_at_min_frequency_then_merges() -> None:
    seg = discovery(bpe_min_frequency=2)
    first = seg.observe(tokenize("neural network training"), now=0)
    assert "neural network" not in seg.stats
    assert set(first.new_segments) == {"neural", "network", "training"}
    second = seg.observe(tokenize("a neural network"), now=1)
    assert second.new_segments == ["neural network"]
    assert seg.stats["neural network"].frequency == 2
    third = seg.observe(tokenize("the neural network learns"), now=2)
    assert third.units == ["neural network", "learns"]
    assert seg.stats["neural network"].frequency == 3


def test_higher_min_frequency_delays_discovery() -> None:
    seg = discovery(bpe_min_frequency=3)
    for _ in range(2):
        seg.observe(tokenize("deep learning"), now=0)
    assert "deep learning" not in seg.stats
    seg.observe(tokenize("deep learning"), now=0)
    assert "deep learning" in seg.stats


def test_stopwords_break_adjacency() -> None:
    seg = discovery()
    for _ in range(5):
        seg.observe(tokenize("cats and dogs"), now=0)
    assert "cats dogs" not in seg.stats and "and" not in seg.stats


@pytest.mark.parametrize("max_units", [2, 4])
def test_merges_nest_up_to_max_units(max_units: int) -> None:
    seg = discovery(bpe_min_frequency=2, max_segment_units=max_units)
    for _ in range(8):
        seg.observe(tokenize("large language model benchmark"), now=0)
    assert max(st.units for st in seg.stats.values()) == max_units
    if max_units == 4:  # pairs of pairs merged: BPE nesting
        assert seg.stats["large language model benchmark"].parts == ("large language", "model benchmark")
        units = seg.observe(tokenize("large language model benchmark"), 0).units
        assert units == ["large language model benchmark"]


def test_confidence_uses_dice_cohesion() -> None:
    seg = discovery(bpe_min_frequency=2)
    for _ in range(2):
        seg.observe(tokenize("quantum computing"), now=0)
    together = seg.confidence("quantum computing")
    assert together == pytest.approx(saturation(2, 2) * 1.0)
    for _ in range(6):
        seg.observe(tokenize("quantum"), now=0)
    # quantum now occurs 8 times, the pair 2: Dice = 2*2/(8+2) = 0.4
    assert seg.confidence("quantum computing") == pytest.approx(saturation(2, 2) * 0.4)


def test_pending_pairs_stay_bounded() -> None:
    seg = discovery(max_pending_pairs=1000)
    for i in range(3000):
        seg.observe([f"w{i}", f"v{i}"], now=0)
    assert len(seg._pairs) <= 1000


def test_drain_dirty_reports_changes_once() -> None:
    seg = discovery()
    seg.observe(tokenize("alpha beta"), now=5)
    drained = {row[0]: row for row in seg.drain_dirty()}
    assert set(drained) == {"alpha", "beta"} and drained["alpha"][1] == 1
    assert seg.drain_dirty() == []


def test_tokenize_and_chunk_any_unicode() -> None:
    assert tokenize("Ünïcode ÉTÉ 東京 🚀!") == ["ünïcode", "été", "東京"]
    assert tokenize("🚀🔥 ...") == []
    text = "One sentence here. " * 100
    chunks = split_chunks(text, 120)
    assert all(len(c) <= 120 for c in chunks) and "".join(chunks).count("One") == 100
    long_word = "x" * 1000
    assert all(len(c) <= 64 for c in split_chunks(long_word, 64))
