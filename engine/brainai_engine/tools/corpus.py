"""Deterministic English-like text for benchmarks and demos.

Word frequencies follow Zipf's law (rank^-1.07, like English), function words make up ~40% of
tokens, and a fixed set of two-word collocations recurs, so segment discovery, the concept graph
and search all see the statistics they would see on real prose. Same seed, same text.
"""

from __future__ import annotations

import numpy as np

from brainai_engine.core.text import STOPWORDS

_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "br",
    "cl",
    "dr",
    "fl",
    "gr",
    "pl",
    "pr",
    "sh",
    "st",
    "str",
    "th",
    "tr",
    "ch",
    "sp",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "ee"]
_CODAS = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "rk", "ct", "ss"]
_SUFFIXES = ["", "", "", "ing", "ion", "er", "ed", "al", "ity", "ment", "ly", "s"]
_FUNCTION = sorted(STOPWORDS)


class Corpus:
    """Generates sentences and texts from a Zipfian pseudo-English vocabulary."""

    def __init__(self, seed: int = 0, vocabulary: int = 30_000, collocations: int = 2_000) -> None:
        self.rng = np.random.default_rng(seed)
        self.words = self._vocabulary(vocabulary)
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        p = ranks**-1.07
        self._cdf = np.cumsum(p / p.sum())
        pairs = self.rng.integers(0, min(len(self.words), 3000), size=(collocations, 2))
        self.collocations = [f"{self.words[a]} {self.words[b]}" for a, b in pairs if a != b]

    def _vocabulary(self, n: int) -> list[str]:
        rng = self.rng
        seen: set[str] = set()
        words: list[str] = []
        while len(words) < n:
            syllables = int(rng.integers(1, 4))
            w = "".join(
                _ONSETS[rng.integers(len(_ONSETS))]
                + _VOWELS[rng.integers(len(_VOWELS))]
                + _CODAS[rng.integers(len(_CODAS))]
                for _ in range(syllables)
            )
            w += _SUFFIXES[rng.integers(len(_SUFFIXES))]
            if len(w) > 2 and w not in seen and w not in STOPWORDS:
                seen.add(w)
                words.append(w)
        return words

    def content_words(self, n: int) -> list[str]:
        idx = np.searchsorted(self._cdf, self.rng.random(n))
        return [self.words[i] for i in np.minimum(idx, len(self.words) - 1)]

    def sentences(self, n: int, min_words: int = 6, max_words: int = 18) -> list[str]:
        rng = self.rng
        lengths = rng.integers(min_words, max_words + 1, size=n)
        total = int(lengths.sum())
        content = self.content_words(total)
        is_function = rng.random(total) < 0.4
        function = rng.integers(0, len(_FUNCTION), size=total)
        colloc = rng.random(n) < 0.3
        colloc_pick = rng.integers(0, len(self.collocations), size=n)
        out: list[str] = []
        pos = 0
        for i, length in enumerate(lengths.tolist()):
            words = [
                _FUNCTION[function[j]] if is_function[j] else content[j] for j in range(pos, pos + length)
            ]
            pos += length
            if colloc[i]:
                words.insert(length // 2, self.collocations[colloc_pick[i]])
            out.append(words[0].capitalize() + " " + " ".join(words[1:]) + ".")
        return out

    def texts(self, n: int, sentences_per_text: tuple[int, int] = (1, 3)) -> list[str]:
        lo, hi = sentences_per_text
        counts = self.rng.integers(lo, hi + 1, size=n)
        sents = self.sentences(int(counts.sum()))
        out: list[str] = []
        pos = 0
        for c in counts.tolist():
            out.append(" ".join(sents[pos : pos + c]))
            pos += c
        return out

    def queries(self, n: int, texts: list[str], words: tuple[int, int] = (1, 3)) -> list[str]:
        """Queries of a few content words taken from random texts, so each has true matches."""
        rng = self.rng
        out = []
        for i in rng.integers(0, len(texts), size=n).tolist():
            tokens = [t.strip(".").lower() for t in texts[i].split() if t.strip(".").lower() not in STOPWORDS]
            k = int(rng.integers(words[0], words[1] + 1))
            if not tokens:
                continue
            start = int(rng.integers(0, max(len(tokens) - k, 0) + 1))
            out.append(" ".join(tokens[start : start + k]))
        return out
