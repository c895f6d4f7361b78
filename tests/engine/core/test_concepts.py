"""Concept graph: Hebbian rule, decay with floor, pruning, spreading activation."""

from __future__ import annotations

import math

import pytest

from brainai_common.engine_config import ConceptsConfig
from brainai_engine.core.concept_search import ConceptNameIndex
from brainai_engine.core.concepts import ConceptGraph

H = 3600.0


def graph(**kw: float) -> ConceptGraph:
    g = ConceptGraph(ConceptsConfig(**kw))
    return g


def link(g: ConceptGraph, a: str, b: str, times: int, now: float = 0.0) -> None:
    for name in (a, b):
        if name not in g.nodes:
            g.touch(name, 1.0, now)
    for _ in range(times):
        g.reinforce(a, b, now)


def test_hebbian_numbers() -> None:
    g = graph()
    link(g, "a", "b", 1)
    assert g.weight("a", "b", 0) == pytest.approx(0.19)  # 0.1 + 0.1 * 0.9
    g.reinforce("a", "b", 0)
    assert g.weight("b", "a", 0) == pytest.approx(0.271)  # 0.19 + 0.1 * 0.81


def test_decay_and_floor() -> None:
    g = graph(edge_decay_lambda=0.01)
    link(g, "a", "b", 2)
    assert g.weight("a", "b", 10 * H) == pytest.approx(0.271 * math.exp(-0.1))
    assert g.weight("a", "b", 10_000 * H) == pytest.approx(0.1 * 0.1)  # floor 0.1 * w0


def test_reinforcement_starts_from_decayed_weight() -> None:
    g = graph(edge_decay_lambda=0.1)
    link(g, "a", "b", 1)
    g.reinforce("a", "b", 5 * H)
    decayed = 0.19 * math.exp(-0.5)
    assert g.weight("a", "b", 5 * H) == pytest.approx(decayed + 0.1 * (1 - decayed))


def test_prune_below_threshold() -> None:
    g = graph(edge_decay_lambda=0.01)
    link(g, "weak", "x", 1)  # 0.19 -> below 0.1 after ln(1.9)/0.01 = 64 h
    link(g, "strong", "x", 10)
    removed = g.prune(now=70 * H)
    assert removed == [("weak", "x")]
    assert g.weight("weak", "x", 70 * H) is None and g.weight("strong", "x", 70 * H) is not None
    assert g.edge_count == 1
    _, _, gone = g.drain_dirty()
    assert gone == [("weak", "x")]


def test_spreading_activation_values_and_order() -> None:
    g = graph(edge_decay_lambda=0.0)
    link(g, "ai", "ml", 10)
    link(g, "ml", "nn", 10)
    link(g, "ai", "logic", 1)
    w_strong = g.weight("ai", "ml", 0)
    w_weak = g.weight("ai", "logic", 0)
    found = g.related("ai", depth=2, limit=10, min_strength=0.0, now=0)
    names = [f.name for f in found]
    assert names == ["ml", "nn", "logic"]
    act = {f.name: f for f in found}
    assert act["ml"].activation == pytest.approx(w_strong * 0.8 * 0.9)
    assert act["nn"].activation == pytest.approx(w_strong * 0.8 * 0.9 * w_strong * 0.8 * 0.81)
    assert act["logic"].activation == pytest.approx(w_weak * 0.8 * 0.9)
    assert (act["ml"].depth, act["nn"].depth) == (1, 2)
    assert act["nn"].strength == pytest.approx(w_strong)


def test_depth_min_strength_and_cutoff() -> None:
    g = graph(edge_decay_lambda=0.0)
    link(g, "a", "b", 10)
    link(g, "b", "c", 10)
    link(g, "c", "d", 1)
    link(g, "d", "e", 1)
    assert [f.name for f in g.related("a", depth=1, limit=10, min_strength=0, now=0)] == ["b"]
    assert "d" not in {f.name for f in g.related("a", depth=5, limit=10, min_strength=0.5, now=0)}
    found = {f.name: f.activation for f in g.related("a", depth=5, limit=10, min_strength=0, now=0)}
    w = g.weight("a", "b", 0)
    to_d = w * 0.8 * 0.9 * w * 0.8 * 0.81 * 0.19 * 0.8 * 0.729
    assert found["d"] == pytest.approx(to_d)  # 0.024 > cutoff
    assert "e" not in found  # to_d * 0.19 * 0.8 * 0.9^4 = 0.0024 < 0.01 cutoff
    assert g.related("missing", depth=2, limit=10, min_strength=0, now=0) == []


def test_observe_window_and_counts() -> None:
    g = graph(cooccurrence_window=1)
    created, updated, formed = g.observe(["a", "b", "c"], {"a": 1, "b": 1, "c": 1}, now=0)
    assert (created, updated, formed) == (3, 0, 2)  # a-b, b-c; a-c is outside the window
    assert g.weight("a", "c", 0) is None
    created, updated, formed = g.observe(["a", "b"], {"a": 1, "b": 1}, now=0)
    assert (created, updated, formed) == (0, 2, 0)


def test_concept_name_search_contract() -> None:
    idx = ConceptNameIndex()
    usage = {"neural": 5, "network": 2, "neural network": 3, "artificial intelligence": 1, "networking": 9}
    for name in usage:
        idx.add(name)
    ranked = idx.search("neural network", 10, usage.get)
    assert ranked[0] == ("neural network", 1.0)
    assert dict(ranked)["neural"] == pytest.approx(2 / 3)
    assert "neural" in dict(idx.search("neurall", 5, usage.get))  # typo found through trigrams
    assert idx.search("🚀 ✨", 5, usage.get) == []
    assert idx.search("zzzzqqq", 5, usage.get) == []
    assert idx.search("network", 5, usage.get)[0][0] == "network"
