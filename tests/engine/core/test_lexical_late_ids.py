"""Lexical postings stay sorted when a lower id arrives after higher ones (another engine replica's
memory applied by the change feed), so search finds and scores it like any other."""

from __future__ import annotations

import numpy as np

from brainai_engine.core.columns import MemoryColumns
from brainai_engine.core.lexical import LexicalIndex


def test_late_lower_id_is_inserted_in_order() -> None:
    cols = MemoryColumns(64)
    index = LexicalIndex(cols)

    def add(memory_id: int, terms: set[str]) -> None:
        ids = np.asarray([memory_id])
        cols.set(
            ids,
            np.asarray([1], dtype=np.uint8),
            np.asarray([1.0], dtype=np.float32),
            np.asarray([0.0]),
            np.asarray([len(terms)], dtype=np.float32),
        )
        index.add([memory_id], [terms])

    add(5, {"comet", "tail"})
    add(9, {"comet"})
    add(7, {"comet", "tail"})  # committed before 9 elsewhere, applied here after it
    assert list(index._post["comet"]) == [5, 7, 9]
    assert list(index._by_len["comet"][2]) == [5, 7]
    ids, _, total, _ = index.search({"comet", "tail"}, want=10)
    assert sorted(ids.tolist()) == [5, 7, 9] and total == 3
    ids, scores, *_ = index.search({"tail"}, want=10)
    assert sorted(ids.tolist()) == [5, 7] and scores[0] == scores[1]
