"""Segment discovery: BPE-style merges over word units.

Base units are content words (see `text.is_content`); stopwords break adjacency, so segments never
start or end inside filler. Known merged segments are applied greedily (longest first) to each text,
then adjacent unit pairs are counted; a pair seen `bpe_min_frequency` times becomes a new merged
segment, exactly as a BPE merge is learned from a frequent adjacent pair. Merges nest, so
"neural network" + "training" can become a three-word segment.

Confidence in [0, 1] grows with evidence:
- a word seen f times: sat(f) = 1 - 0.5^(1 + f/m)   (m = bpe_min_frequency; f=1,m=2 -> 0.646)
- a merged segment: sat(f) x Dice(a, b) = sat(f) x min(1, 2 f_ab / (f_a + f_b)), so a pair that
  mostly occurs together is cohesive while two frequent words that meet by chance are not.
Segments whose confidence reaches `concepts.extraction_threshold` are concept names.

Pair counts that have not yet reached the threshold are statistics kept in memory only (bounded by
`max_pending_pairs`); discovered segments and their frequencies are persisted.
"""

from __future__ import annotations

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


class SegmentDiscovery:
    """Vocabulary of words and merged segments with frequencies; learns merges incrementally."""

    def __init__(self, cfg: LearningConfig) -> None:
        self.cfg = cfg
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
        if st is None:
            return 0.0
        sat = saturation(st.frequency, self.cfg.bpe_min_frequency)
        if st.parts is None:
            return sat
        fa = self.stats[st.parts[0]].frequency if st.parts[0] in self.stats else st.frequency
        fb = self.stats[st.parts[1]].frequency if st.parts[1] in self.stats else st.frequency
        return sat * min(1.0, 2.0 * st.frequency / max(fa + fb, 1))

    def restore(
        self, text: str, frequency: int, units: int, created_at: float, parts: tuple[str, str] | None
    ) -> None:
        """Load a persisted segment (at open)."""
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
        min_f, max_units = self.cfg.bpe_min_frequency, self.cfg.max_segment_units
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
                if prev is not None:
                    key = (prev, unit)
                    count = pairs.get(key, 0) + 1
                    if count >= min_f:
                        merged = f"{prev} {unit}"
                        size = stats[prev].units + stats[unit].units
                        if size <= max_units and merged not in stats:
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
