"""Concept graph: nodes with usage counts, Hebbian co-occurrence edges, spreading activation.

Edge rules (all constants from `ConceptsConfig`):
- a new edge starts at w0 = initial_edge_weight, and every co-occurrence applies w <- w + eta(1 - w);
- weights decay lazily with time: w(t) = max(w * e^(-lambda * hours since update), floor_ratio * w0);
  the decayed value is what queries see and what the next Hebbian update starts from;
- `prune` deletes edges whose decayed weight is below prune_threshold.

Every edge also counts its co-occurrences c_ab (memories holding both concepts). The weight is the
source's Hebbian trace: it saturates towards 1 for any pair seen often, so a frequent word ends up
as strong as a true associate. Related concepts are therefore ranked by association strength,
    s(a, b) = NPMI(a, b) x c_ab / (c_ab + 2) x w(t) / w,
    NPMI = ln(c_ab N / (c_a c_b)) / -ln(c_ab / N)   clipped to [0, 1]
with c_a, c_b the concepts' usage counts (memories holding each) and N the memories in the store.
NPMI is 1 for concepts that only occur together and 0 for a pair that meets no more often than
chance (a generic word next to anything); the evidence factor c_ab / (c_ab + 2) keeps a pair seen
once or twice (NPMI's known favourites) from outranking an established one; w(t) / w scales it
down as the edge's Hebbian trace decays unused.
Spreading activation runs on s from the start node (activation 1): reaching depth d over an edge of
strength s adds a * s * spreading_factor * depth_decay^d to the neighbour, and paths whose
contribution falls below activation_cutoff stop spreading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from brainai_common.engine_config import ConceptsConfig

SECONDS_PER_HOUR = 3600.0


@dataclass(slots=True)
class Node:
    usage_count: int
    confidence: float
    created_at: float
    last_used: float


@dataclass(slots=True)
class Edge:
    weight: float
    w0: float
    updated_at: float
    count: int = 1


@dataclass(slots=True)
class Activated:
    name: str
    activation: float
    depth: int
    strength: float
    edge: Edge | None  # the direct edge from the start concept, if any


def edge_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


class ConceptGraph:
    """In-process graph; storage holds the durable copy and is written from the dirty sets."""

    def __init__(self, cfg: ConceptsConfig) -> None:
        self.cfg = cfg
        self.nodes: dict[str, Node] = {}
        self.adj: dict[str, dict[str, Edge]] = {}
        self.edge_count = 0
        self.dirty_nodes: set[str] = set()
        self.dirty_edges: set[tuple[str, str]] = set()
        self.removed_edges: set[tuple[str, str]] = set()
        self._created: list[str] = []

    def current_weight(self, edge: Edge, now: float) -> float:
        hours = (now - edge.updated_at) / SECONDS_PER_HOUR
        if hours <= 0 or self.cfg.edge_decay_lambda == 0:
            return edge.weight
        decayed = edge.weight * math.exp(-self.cfg.edge_decay_lambda * hours)
        return max(decayed, self.cfg.decay_floor_ratio * edge.w0)

    def strength(self, a: str, b: str, edge: Edge, documents: int, now: float) -> float:
        """Association strength s(a, b) of the module docstring."""
        c_a, c_b = self.nodes[a].usage_count, self.nodes[b].usage_count
        n = max(documents, c_a, c_b, 1)
        c_ab = min(edge.count, c_a, c_b)
        if c_ab <= 0:
            return 0.0
        association = 1.0 if c_ab >= n else math.log(c_ab * n / (c_a * c_b)) / -math.log(c_ab / n)
        evidence = c_ab / (c_ab + 2)
        freshness = self.current_weight(edge, now) / edge.weight if edge.weight > 0 else 1.0
        return min(max(association, 0.0), 1.0) * evidence * freshness

    def weight(self, a: str, b: str, now: float) -> float | None:
        edge = self.adj.get(a, {}).get(b)
        return None if edge is None else self.current_weight(edge, now)

    def touch(self, name: str, confidence: float, now: float) -> bool:
        """Count one use of a concept, creating it if new; returns True when created."""
        node = self.nodes.get(name)
        self.dirty_nodes.add(name)
        if node is None:
            self.nodes[name] = Node(1, confidence, now, now)
            self.adj[name] = {}
            self._created.append(name)
            return True
        node.usage_count += 1
        node.confidence = confidence
        node.last_used = now
        return False

    def reinforce(self, a: str, b: str, now: float) -> bool:
        """Hebbian update of edge a-b; returns True when the edge is new."""
        edge = self.adj[a].get(b)
        created = edge is None
        if edge is None:
            edge = Edge(self.cfg.initial_edge_weight, self.cfg.initial_edge_weight, now, 0)
            self.adj[a][b] = edge
            self.adj[b][a] = edge
            self.edge_count += 1
            w = edge.weight
        else:
            w = self.current_weight(edge, now)
        edge.count += 1
        edge.weight = w + self.cfg.hebbian_learning_rate * (1.0 - w)
        edge.updated_at = now
        key = edge_key(a, b)
        self.dirty_edges.add(key)
        self.removed_edges.discard(key)
        return created

    def observe(self, sequence: list[str], confidences: dict[str, float], now: float) -> tuple[int, int, int]:
        """Record concepts appearing in order in one memory; edges join concepts within the
        co-occurrence window (each pair once per memory). Returns (created, updated, new edges)."""
        created = updated = 0
        for name in dict.fromkeys(sequence):
            if self.touch(name, confidences[name], now):
                created += 1
            else:
                updated += 1
        window = self.cfg.cooccurrence_window
        pairs: set[tuple[str, str]] = set()
        for i, a in enumerate(sequence):
            for b in sequence[i + 1 : i + 1 + window]:
                if a != b:
                    pairs.add(edge_key(a, b))
        formed = 0
        for a, b in pairs:
            if self.reinforce(a, b, now):
                formed += 1
        return created, updated, formed

    def take_created(self) -> list[str]:
        """Names created since the last call (to feed the name index)."""
        created, self._created = self._created, []
        return created

    def prune(self, now: float) -> list[tuple[str, str]]:
        """Delete edges whose decayed weight is below the threshold; returns the removed keys."""
        threshold = self.cfg.prune_threshold
        removed: list[tuple[str, str]] = []
        for a, nbrs in self.adj.items():
            for b, edge in nbrs.items():
                if a < b and self.current_weight(edge, now) < threshold:
                    removed.append((a, b))
        for a, b in removed:
            del self.adj[a][b]
            del self.adj[b][a]
            self.dirty_edges.discard((a, b))
            self.removed_edges.add((a, b))
        self.edge_count -= len(removed)
        return removed

    def related(
        self, name: str, depth: int, limit: int, min_strength: float, documents: int, now: float
    ) -> list[Activated]:
        """Spreading activation over association strengths from `name` (`documents`: the N of
        NPMI); most activated first (ties by name)."""
        cfg = self.cfg
        activation: dict[str, float] = {}
        first_depth: dict[str, int] = {}
        strength: dict[str, float] = {}
        frontier: dict[str, tuple[float, float]] = {name: (1.0, 0.0)}
        for d in range(1, depth + 1):
            gain = cfg.spreading_factor * cfg.depth_decay**d
            nxt: dict[str, tuple[float, float]] = {}
            for node, (a, path_strength) in frontier.items():
                for nb, edge in self.adj.get(node, {}).items():
                    if nb == name:
                        continue
                    w = self.strength(node, nb, edge, documents, now)
                    if w < min_strength or w <= 0.0:
                        continue
                    delta = a * w * gain
                    if delta < cfg.activation_cutoff:
                        continue
                    s = max(path_strength, w)
                    prev = nxt.get(nb)
                    nxt[nb] = (delta, s) if prev is None else (prev[0] + delta, max(prev[1], s))
            for nb, (delta, s) in nxt.items():
                activation[nb] = activation.get(nb, 0.0) + delta
                first_depth.setdefault(nb, d)
                strength[nb] = max(strength.get(nb, 0.0), s)
            frontier = nxt
            if not frontier:
                break
        ranked = sorted(activation.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        direct = self.adj.get(name, {})
        return [Activated(n, a, first_depth[n], strength[n], direct.get(n)) for n, a in ranked]

    def drain_dirty(
        self,
    ) -> tuple[list[tuple[str, Node]], list[tuple[str, str, Edge]], list[tuple[str, str]]]:
        nodes = [(n, self.nodes[n]) for n in self.dirty_nodes if n in self.nodes]
        edges = [(a, b, self.adj[a][b]) for a, b in self.dirty_edges if b in self.adj.get(a, {})]
        removed = list(self.removed_edges)
        self.dirty_nodes, self.dirty_edges, self.removed_edges = set(), set(), set()
        return nodes, edges, removed

    def restore_node(self, name: str, node: Node) -> None:
        self.nodes[name] = node
        self.adj.setdefault(name, {})

    def restore_edge(self, a: str, b: str, edge: Edge) -> None:
        self.adj.setdefault(a, {})[b] = edge
        self.adj.setdefault(b, {})[a] = edge
        self.edge_count += 1

    def replace_edge(self, a: str, b: str, edge: Edge | None) -> None:
        """Make edge a-b equal a stored row (None: no row), as another replica wrote it: nothing is
        marked dirty, and an edge between unknown concepts is ignored."""
        exists = b in self.adj.get(a, {})
        if edge is None:
            if exists:
                del self.adj[a][b]
                del self.adj[b][a]
                self.edge_count -= 1
        elif exists:
            self.adj[a][b] = self.adj[b][a] = edge
        elif a in self.nodes and b in self.nodes:
            self.restore_edge(a, b, edge)
