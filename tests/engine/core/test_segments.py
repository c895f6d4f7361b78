"""Segment discovery: BPE-style merges gated by frequency and NPMI, the confidence formula, units."""

from __future__ import annotations

import math

import pytest

from brainai_common.engine_config import LearningConfig
from brainai_engine.core.segments import SegmentDiscovery, npmi, saturation
from brainai_engine.core.text import (
    concept_units,
    is_code_like,
    phrase_units,
    split_chunks,
    tokenize,
    words_of,
)


def discovery(threshold: float = 0.6, **kw: int) -> SegmentDiscovery:
    return SegmentDiscovery(LearningConfig(**kw), threshold)


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
    for i in range(8):
        seg.observe(tokenize("large language model benchmark"), now=0)
        seg.observe([f"filler{_letters(i * 10 + j)}" for j in range(20)], now=0)
    assert max(st.units for st in seg.stats.values()) == max_units
    if max_units == 4:  # pairs of pairs merged: BPE nesting
        assert seg.stats["large language model benchmark"].parts == ("large language", "model benchmark")
        units = seg.observe(tokenize("large language model benchmark"), 0).units
        assert units == ["large language model benchmark"]


def test_npmi_numbers() -> None:
    assert npmi(5, 5, 5, 1000) == pytest.approx(1.0)  # only ever together
    assert npmi(1, 10, 100, 1000) == pytest.approx(0.0)  # exactly as often as chance
    assert npmi(4, 8, 10, 1000) == pytest.approx(math.log(4 * 1000 / 80) / -math.log(4 / 1000))
    assert npmi(0, 3, 3, 10) == 0.0


def test_pair_confidence_is_saturation_times_npmi() -> None:
    seg = discovery(threshold=0.0, bpe_min_frequency=2)
    for _ in range(2):
        seg.observe(tokenize("quantum computing"), now=0)
    assert seg.confidence("quantum computing") == pytest.approx(saturation(2, 2) * 1.0)
    for _ in range(6):
        seg.observe(tokenize("quantum"), now=0)
    f_q, f_c, total = seg.stats["quantum"].frequency, seg.stats["computing"].frequency, seg.total
    expected = saturation(2, 2) * npmi(2, f_q, f_c, total)
    assert seg.confidence("quantum computing") == pytest.approx(expected)
    assert 0 < expected < saturation(2, 2)


def test_chance_pair_is_not_merged() -> None:
    """Two frequent words that meet no more often than their frequencies predict stay two units;
    a collocation of rarer words in the same texts is merged."""
    seg = discovery(bpe_min_frequency=2)
    fillers = [f"{a}{b}" for a in "bcdfghk" for b in ("ada", "ine", "oro")]
    for i in range(300):
        seg.observe(tokenize(f"license {fillers[i % 21]} becomes {fillers[(i * 7) % 21]}"), now=0)
        if i % 30 == 0:
            seg.observe(tokenize("license becomes"), now=0)
            seg.observe(tokenize("apache software"), now=0)
    assert "license becomes" not in seg.stats
    assert seg.confidence("license becomes") == 0.0
    assert "apache software" in seg.stats and seg.confidence("apache software") >= 0.6


def test_a_word_below_min_frequency_is_no_concept() -> None:
    seg = discovery(bpe_min_frequency=3)
    seg.observe(tokenize("zebra"), now=0)
    seg.observe(tokenize("zebra"), now=0)
    assert seg.confidence("zebra") == 0.0
    seg.observe(tokenize("zebra"), now=0)
    assert seg.confidence("zebra") == pytest.approx(saturation(3, 3))


def test_threshold_gates_merges() -> None:
    """The same texts merge a pair at a low extraction threshold and not (yet) at a high one."""
    texts = ["solar panel"] * 2 + ["solar", "panel"] * 3
    low, high = discovery(threshold=0.3), discovery(threshold=0.9)
    for t in texts:
        low.observe(tokenize(t), now=0)
        high.observe(tokenize(t), now=0)
    assert "solar panel" in low.stats and "solar panel" not in high.stats


def test_punctuation_breaks_phrases() -> None:
    seg = discovery(bpe_min_frequency=2)
    for i in range(6):
        seg.observe(phrase_units("use, copy, modify, merge"), now=0)
        seg.observe(phrase_units("git cherry-pick"), now=0)
        seg.observe([f"filler{_letters(i * 10 + j)}" for j in range(20)], now=0)
    assert not any(" " in s for s in seg.stats if "copy" in s or "modify" in s)
    assert "git cherry pick" in seg.stats


def test_units_and_words() -> None:
    text = "Use, copy (and) modify: don't cherry-pick — 東京。ü_x 12"
    units = phrase_units(text)
    assert units[:3] == ["use", ",", "copy"] and "(" in units and ":" in units
    assert words_of(units) == tokenize(text)


@pytest.mark.parametrize(
    ("word", "code"),
    [
        ("ab12cd34eexample", True),
        ("0x7ffd", True),
        ("v2024", True),
        ("deadbeef12", True),
        ("x86", False),
        ("sha256", False),
        ("utf8", False),
        ("python3", False),
        ("ipv4", False),
    ],
)
def test_code_like_tokens(word: str, code: bool) -> None:
    assert is_code_like(word) is code
    seg = discovery()
    for _ in range(4):
        seg.observe([word], now=0)
    assert (word in seg.stats) is not code


def test_pending_pairs_stay_bounded() -> None:
    seg = discovery(max_pending_pairs=1000)
    for i in range(3000):
        seg.observe([f"w{_letters(i)}", f"v{_letters(i)}"], now=0)
    assert len(seg._pairs) <= 1000


def _letters(i: int) -> str:
    return "".join("abcdefghij"[int(d)] for d in str(i))


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


@pytest.mark.parametrize(
    "text",
    [
        'Read <a href="https://github.com/nodejs/node/pull/1">the merge notes</a> today.',
        "Mail maintainer@example.org or visit www.example.org/docs for merge notes.",
        '<span class="hljs-keyword">merge notes</span> &amp; more &#x3c;',
    ],
)
def test_links_addresses_and_markup_name_no_concept(text: str) -> None:
    units = phrase_units(text)
    kept = [u for u in concept_units(text, units) if len(u) > 1]
    assert "merge" in kept and "notes" in kept
    for junk in ("https", "github", "com", "href", "span", "class", "hljs", "www", "org", "amp", "x3c"):
        assert junk not in kept
    assert set(words_of(units)) >= {"merge", "notes"}  # search still indexes the whole text


def test_prose_units_pass_through_unchanged() -> None:
    units = phrase_units("Merge conflicts happen when two branches edit one line.")
    assert concept_units("Merge conflicts happen when two branches edit one line.", units) is units
