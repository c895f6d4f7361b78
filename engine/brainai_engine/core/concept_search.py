"""Concept search by name: the contract behind `GET /concepts/search`.

A query is tokenised like learned text. Each concept name is a sequence of words; the score of a
concept is the Dice coefficient between the query's content words Q and the concept's words C,

    score = 2 * sum(match(w) for w in C) / (|Q| + |C|),   in (0, 1],

where match(w) is 1 when w is a query word, else the character-trigram Jaccard similarity of w to
its closest query word when that is >= FUZZY_MIN (so "nueral" finds "neural"), else 0. A concept
named exactly like the query scores 1. Results are sorted by score, then usage count, then name;
only concepts sharing at least one (possibly fuzzy) word are returned, so a query with no known
words (emoji, another script, punctuation) yields an empty list rather than an error.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable

import numpy as np

from brainai_engine.core.text import content_words, tokenize

FUZZY_MIN = 0.4
MAX_WORD_POSTINGS = 5000


def trigrams(word: str) -> set[str]:
    padded = f"^{word}$"
    return {padded[i : i + 3] for i in range(len(padded) - 2)} if len(padded) >= 3 else {padded}


class ConceptNameIndex:
    """word -> concept names containing it, and trigram -> word ids, for fuzzy matching.

    Not thread-safe by itself: the engine mutates it under its state lock (write) and queries it
    under the same lock (read), which also keeps numpy views of the postings valid.
    """

    def __init__(self) -> None:
        self.by_word: dict[str, list[str]] = {}
        self._tri: dict[str, array] = {}
        self._words: list[str] = []
        self._sizes = np.zeros(1024, dtype=np.float32)

    def add(self, name: str) -> None:
        for word in dict.fromkeys(name.split(" ")):
            names = self.by_word.get(word)
            if names is None:
                self.by_word[word] = [name]
                self._index_word(word)
            elif len(names) < MAX_WORD_POSTINGS:
                names.append(name)

    def _index_word(self, word: str) -> None:
        word_id = len(self._words)
        self._words.append(word)
        grams = trigrams(word)
        if word_id >= len(self._sizes):
            self._sizes = np.concatenate([self._sizes, np.zeros(len(self._sizes), dtype=np.float32)])
        self._sizes[word_id] = len(grams)
        for g in grams:
            post = self._tri.get(g)
            if post is None:
                post = self._tri[g] = array("I")
            post.append(word_id)

    def fuzzy(self, word: str) -> list[tuple[str, float]]:
        """Known words whose trigram Jaccard similarity to `word` is >= FUZZY_MIN.

        Counting how many of the query's trigram postings list each word gives |A & B| for every
        word at once, so the similarity is exact for all words, with no candidate sampling.
        """
        grams = trigrams(word)
        views = [np.frombuffer(self._tri[g], dtype=np.uint32) for g in grams if g in self._tri]
        if not views:
            return []
        ids, shared = np.unique(np.concatenate(views), return_counts=True)
        del views
        n = len(grams)
        sim = shared / (n + self._sizes[ids] - shared)
        hit = np.flatnonzero(sim >= FUZZY_MIN)
        words = self._words
        return [
            (words[i], float(sim[k]))
            for k, i in zip(hit.tolist(), ids[hit].tolist(), strict=True)
            if words[i] != word
        ]

    def search(self, query: str, limit: int, usage: Callable[[str], int]) -> list[tuple[str, float]]:
        """(concept name, score) best first; see the module docstring for the contract."""
        tokens = tokenize(query)
        q_words = list(dict.fromkeys(content_words(tokens)))
        if not q_words:
            return []
        weights: dict[str, float] = {w: 1.0 for w in q_words if w in self.by_word}
        for w in q_words:
            if w not in self.by_word and len(w) >= 3:
                for cand, sim in self.fuzzy(w):
                    if sim > weights.get(cand, 0.0):
                        weights[cand] = sim
        if not weights:
            return []
        candidates: set[str] = set()
        for w in weights:
            candidates.update(self.by_word.get(w, ()))
        q_len = len(q_words)
        scored = []
        for name in candidates:
            words = name.split(" ")
            hit = sum(weights.get(w, 0.0) for w in words)
            score = min(1.0, 2.0 * hit / (q_len + len(words)))
            scored.append((name, score))
        return heapq.nsmallest(limit, scored, key=lambda kv: (-kv[1], -usage(kv[0]), kv[0]))
