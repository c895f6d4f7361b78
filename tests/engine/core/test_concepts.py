"""Concept graph: Hebbian rule, decay with floor, pruning, association strength, spreading activation."""

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


def test_association_strength_is_npmi_of_counts() -> None:
    g = graph(edge_decay_lambda=0.0)
    link(g, "ai", "ml", 4)
    g.nodes["ai"].usage_count, g.nodes["ml"].usage_count = 8, 10
    edge = g.adj["ai"]["ml"]
    expected = math.log(4 * 1000 / (8 * 10)) / -math.log(4 / 1000) * 4 / 6
    assert g.strength("ai", "ml", edge, 1000, 0) == pytest.approx(expected)
    g.nodes["ai"].usage_count = g.nodes["ml"].usage_count = 4  # only ever together: NPMI 1
    assert g.strength("ai", "ml", edge, 1000, 0) == pytest.approx(4 / 6)
    g.nodes["ai"].usage_count = g.nodes["ml"].usage_count = 500  # as often as chance, or less
    assert g.strength("ai", "ml", edge, 1000, 0) == 0.0


def test_strength_decays_with_the_hebbian_weight() -> None:
    g = graph(edge_decay_lambda=0.01)
    link(g, "a", "b", 3)
    edge = g.adj["a"]["b"]
    fresh = g.strength("a", "b", edge, 100, 0)
    assert g.strength("a", "b", edge, 100, 10 * H) == pytest.approx(fresh * math.exp(-0.1))


def test_generic_word_ranks_below_true_associates() -> None:
    """A word in half of all memories meets "git" more often than "commit" does, and its Hebbian
    weight saturates higher; it meets "git" exactly as often as chance predicts, so its association
    is 0 and it is not followed at all, while the true associates' strengths spread out."""
    g = graph(edge_decay_lambda=0.0)
    for i in range(1000):
        seq = ["use"] if i % 2 else []
        if i < 40:
            seq += ["git", "commit" if i < 30 else "branch"]
        elif i < 60:
            seq += ["commit"]
        g.observe(seq, dict.fromkeys(seq, 1.0), now=0)
    assert g.weight("git", "use", 0) > g.weight("git", "branch", 0)
    found = g.related("git", depth=1, limit=10, min_strength=0.0, documents=1000, now=0)
    assert [f.name for f in found] == ["commit", "branch"]
    assert g.strength("git", "use", g.adj["git"]["use"], 1000, 0) == pytest.approx(0.0, abs=1e-9)
    assert found[0].strength - found[1].strength > 0.01
    assert found[0].edge is not None and found[0].edge.count == 30


def test_spreading_activation_values_and_order() -> None:
    g = graph(edge_decay_lambda=0.0)
    link(g, "ai", "ml", 10)
    link(g, "ml", "nn", 10)
    link(g, "ai", "logic", 1)
    for name, usage in {"ai": 12, "ml": 20, "nn": 15, "logic": 30}.items():
        g.nodes[name].usage_count = usage
    n = 1000
    s_ml = g.strength("ai", "ml", g.adj["ai"]["ml"], n, 0)
    s_nn = g.strength("ml", "nn", g.adj["ml"]["nn"], n, 0)
    s_logic = g.strength("ai", "logic", g.adj["ai"]["logic"], n, 0)
    found = g.related("ai", depth=2, limit=10, min_strength=0.0, documents=n, now=0)
    assert [f.name for f in found] == ["ml", "nn", "logic"]
    act = {f.name: f for f in found}
    assert act["ml"].activation == pytest.approx(s_ml * 0.8 * 0.9)
    assert act["nn"].activation == pytest.approx(s_ml * 0.8 * 0.9 * s_nn * 0.8 * 0.81)
    assert act["logic"].activation == pytest.approx(s_logic * 0.8 * 0.9)
    assert (act["ml"].depth, act["nn"].depth) == (1, 2)
    assert act["nn"].strength == pytest.approx(max(s_ml, s_nn)) and act["nn"].edge is None


def test_depth_min_strength_and_cutoff() -> None:
    g = graph(edge_decay_lambda=0.0)
    for a, b, times in [("a", "b", 10), ("b", "c", 10), ("c", "d", 2), ("d", "e", 2)]:
        link(g, a, b, times)
    for name, usage in {"a": 10, "b": 10, "c": 10, "d": 40, "e": 40}.items():
        g.nodes[name].usage_count = usage
    n = 1000
    s = {k: g.strength(*k, g.adj[k[0]][k[1]], n, 0) for k in [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")]}
    assert s[("c", "d")] < 0.5 < s[("a", "b")]
    assert [f.name for f in g.related("a", depth=1, limit=10, min_strength=0, documents=n, now=0)] == ["b"]
    strong_only = g.related("a", depth=5, limit=10, min_strength=0.5, documents=n, now=0)
    assert "d" not in {f.name for f in strong_only}
    found = {
        f.name: f.activation for f in g.related("a", depth=3, limit=10, min_strength=0, documents=n, now=0)
    }
    to_d = s[("a", "b")] * 0.8 * 0.9 * s[("b", "c")] * 0.8 * 0.81 * s[("c", "d")] * 0.8 * 0.729
    assert found["d"] == pytest.approx(to_d) and to_d > 0.01
    deeper = g.related("a", depth=5, limit=10, min_strength=0, documents=n, now=0)
    assert "e" not in {f.name for f in deeper}  # to_d * s(d, e) * 0.8 * 0.9^4 < the 0.01 cutoff
    assert g.related("missing", depth=2, limit=10, min_strength=0, documents=n, now=0) == []


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
