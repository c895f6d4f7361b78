"""Segment discovery: BPE-style merges over word units, kept only where the words associate.

Base units are content words (see `text.is_content`: no stopword, no number or hex id); stopwords
and punctuation break adjacency, so a segment never starts or ends on filler nor spans a comma.
Known merged segments are applied greedily (longest first) to each text, then adjacent unit pairs
are counted, as a BPE merge is learned from a frequent adjacent pair; merges nest, so
"neural network" + "training" can become a three-word segment.

Confidence in [0, 1]; segments whose confidence reaches `concepts.extraction_threshold` are concept
names. With f a segment's frequency and m = bpe_min_frequency (the minimum frequency of any concept):
- a word: sat(f) = 1 - 0.5^(1 + f/m) once f >= m, else 0   (f=m -> 0.75; 0.9 needs f >= 2.33 m)
- a pair a+b: sat(f_ab) x NPMI(a, b), with T the units counted so far and
  NPMI = ln(f_ab T / (f_a f_b)) / -ln(f_ab / T)   in [-1, 1], clipped at 0,
  the normalised pointwise mutual information gensim's Phrases scores with: 1 when a and b only
  occur together, 0 when they meet as often as chance predicts ("license becomes").
A pair becomes a merged segment only once its confidence reaches the threshold; until then it stays
a pending count (in memory only, bounded by `max_pending_pairs`), so chance pairs never hide their
words' own occurrences. Discovered segments and their frequencies are persisted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from brainai_common.engine_config import LearningConfig
from brainai_engine.core.text import is_content


@dataclass(slots=True)
class SegmentStat:
    frequency: int
    units: int
    created_at: float
    parts: tuple[str, str] | None = None


@dataclass(slots=True)
class Analysis:
    """Result of running one text through discovery."""

    units: list[str]
    new_segments: list[str]


def saturation(frequency: int, min_frequency: int) -> float:
    return 1.0 - 0.5 ** (1.0 + frequency / min_frequency)


def npmi(f_ab: int, f_a: int, f_b: int, total: int) -> float:
    """Normalised PMI of a pair seen f_ab times among `total` units (see the module docstring)."""
    if f_ab <= 0 or total <= 0:
        return 0.0
    f_a, f_b, total = max(f_a, f_ab), max(f_b, f_ab), max(total, f_a, f_b)
    if f_ab >= total:
        return 1.0
    return math.log(f_ab * total / (f_a * f_b)) / -math.log(f_ab / total)


class SegmentDiscovery:
    """Vocabulary of words and merged segments with frequencies; learns merges incrementally."""

    def __init__(self, cfg: LearningConfig, threshold: float) -> None:
        self.cfg = cfg
        self.threshold = threshold
        self.total = 0  # units counted (the T of NPMI), restored as the sum of frequencies
        self.stats: dict[str, SegmentStat] = {}
        self._merges: dict[tuple[str, ...], str] = {}
        self._prefix2: set[tuple[str, str]] = set()
        self._max_len = 1
        self._pairs: dict[tuple[str, str], int] = {}
        self.dirty: set[str] = set()

    def __len__(self) -> int:
        return len(self.stats)

    def confidence(self, segment: str) -> float:
        st = self.stats.get(segment)
        if st is None or st.frequency < self.cfg.bpe_min_frequency:
            return 0.0
        if st.parts is None:
            return saturation(st.frequency, self.cfg.bpe_min_frequency)
        return self._pair_confidence(st.frequency, *st.parts)

    def _pair_confidence(self, f_ab: int, a: str, b: str) -> float:
        stats = self.stats
        f_a = stats[a].frequency if a in stats else f_ab
        f_b = stats[b].frequency if b in stats else f_ab
        association = max(npmi(f_ab, f_a, f_b, self.total), 0.0)
        return saturation(f_ab, self.cfg.bpe_min_frequency) * association

    def restore(
        self, text: str, frequency: int, units: int, created_at: float, parts: tuple[str, str] | None
    ) -> None:
        """Load a persisted segment (at open)."""
        old = self.stats.get(text)
        self.total += frequency - (old.frequency if old is not None else 0)
        self.stats[text] = SegmentStat(frequency, units, created_at, parts)
        if units > 1:
            self._register_merge(text)

    def _register_merge(self, segment: str) -> None:
        words = tuple(segment.split(" "))
        self._merges[words] = segment
        self._prefix2.add((words[0], words[1]))
        self._max_len = max(self._max_len, len(words))

    def segment(self, tokens: list[str]) -> list[list[str]]:
        """Apply known merges greedily; return runs of adjacent content units (read only)."""
        runs: list[list[str]] = []
        run: list[str] = []
        merges, prefix2, max_len = self._merges, self._prefix2, self._max_len
        i, n = 0, len(tokens)
        while i < n:
            tok = tokens[i]
            if not is_content(tok):
                if run:
                    runs.append(run)
                    run = []
                i += 1
                continue
            if i + 1 < n and (tok, tokens[i + 1]) in prefix2:
                for length in range(min(max_len, n - i), 1, -1):
                    seg = merges.get(tuple(tokens[i : i + length]))
                    if seg is not None:
                        run.append(seg)
                        i += length
                        break
                else:
                    run.append(tok)
                    i += 1
            else:
                run.append(tok)
                i += 1
        if run:
            runs.append(run)
        return runs

    def observe(self, tokens: list[str], now: float) -> Analysis:
        """Count one text's units and pairs; learn merges that reach the minimum frequency."""
        stats, pairs, dirty = self.stats, self._pairs, self.dirty
        min_f, max_units, threshold = self.cfg.bpe_min_frequency, self.cfg.max_segment_units, self.threshold
        new: list[str] = []
        units: list[str] = []
        for run in self.segment(tokens):
            prev: str | None = None
            for unit in run:
                st = stats.get(unit)
                if st is None:
                    stats[unit] = SegmentStat(1, 1, now)
                    new.append(unit)
                else:
                    st.frequency += 1
                dirty.add(unit)
                units.append(unit)
                self.total += 1
                if prev is not None:
                    key = (prev, unit)
                    count = pairs.get(key, 0) + 1
                    merged = f"{prev} {unit}"
                    size = stats[prev].units + stats[unit].units
                    if size > max_units or merged in stats:
                        pairs.pop(key, None)
                    elif count >= min_f and self._pair_confidence(count, prev, unit) >= threshold:
                        stats[merged] = SegmentStat(count, size, now, (prev, unit))
                        self._register_merge(merged)
                        dirty.add(merged)
                        new.append(merged)
                        pairs.pop(key, None)
                    else:
                        pairs[key] = count
                prev = unit
        if len(pairs) > self.cfg.max_pending_pairs:
            self._trim_pairs()
        return Analysis(units, new)

    def _trim_pairs(self) -> None:
        """Drop the rarest pending pairs (a lossy counter): memory stays bounded under any input."""
        counts = sorted(self._pairs.values())
        cut = counts[len(counts) // 2]
        self._pairs = {k: v for k, v in self._pairs.items() if v > cut}

    def drain_dirty(self) -> list[tuple[str, int, float, int, float, tuple[str, str] | None]]:
        """Changed segments as (text, frequency, confidence, units, created_at, parts); clears the set."""
        out = []
        for text in self.dirty:
            st = self.stats[text]
            out.append((text, st.frequency, self.confidence(text), st.units, st.created_at, st.parts))
        self.dirty = set()
        return out
