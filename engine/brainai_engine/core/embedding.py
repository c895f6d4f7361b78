"""Hashed lexical embedding: content words and adjacent-word bigrams -> dense unit vector.

Feature hashing needs no vocabulary and no training, is stable across processes (crc32, not
Python's salted hash) and makes inner product approximate a weighted word/bigram overlap, which is
what keyword-style memory queries ask for. Stopwords are ignored unless a text has nothing else.
"""

from __future__ import annotations

import math
import zlib
from itertools import pairwise

import numpy as np

from brainai_engine.core.text import content_words, tokenize

BIGRAM_WEIGHT = 0.5
_CACHE_LIMIT = 2_000_000


def features(tokens: list[str]) -> dict[str, float]:
    """Feature -> weight: sublinear term frequency for words, half weight for bigrams."""
    content = content_words(tokens)
    counts: dict[str, float] = {}
    for t in content:
        counts[t] = counts.get(t, 0.0) + 1.0
    for a, b in pairwise(content):
        key = f"{a}\x1f{b}"
        counts[key] = counts.get(key, 0.0) + BIGRAM_WEIGHT
    return {k: (1.0 + math.log(v) if v >= 1.0 else v) for k, v in counts.items()}


class HashingEmbedder:
    """Maps texts to L2-normalised float32 vectors of `dim` components."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._slots: dict[str, int] = {}

    def _slot(self, feature: str) -> int:
        """Signed slot: index + 1, negated for a negative sign (0 is never used)."""
        s = self._slots.get(feature)
        if s is None:
            h = zlib.crc32(feature.encode("utf-8"))
            s = (h % self.dim) + 1
            if h & 0x80000000:
                s = -s
            if len(self._slots) >= _CACHE_LIMIT:
                self._slots.clear()
            self._slots[feature] = s
        return s

    def embed_tokens(self, token_lists: list[list[str]]) -> np.ndarray:
        n = len(token_lists)
        out = np.zeros((n, self.dim), dtype=np.float32)
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        slot = self._slot
        for i, tokens in enumerate(token_lists):
            for feat, w in features(tokens).items():
                s = slot(feat)
                rows.append(i)
                if s > 0:
                    cols.append(s - 1)
                    vals.append(w)
                else:
                    cols.append(-s - 1)
                    vals.append(-w)
        if rows:
            np.add.at(out, (np.asarray(rows), np.asarray(cols)), np.asarray(vals, dtype=np.float32))
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, norms, out=out, where=norms > 0)
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_tokens([tokenize(t) for t in texts])

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
