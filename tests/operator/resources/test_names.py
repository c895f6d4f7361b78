"""Every child of a valid BrainAICluster has a name (and labels) the API server accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources.cluster import build_desired
from brainai_operator.resources.common import (
    CHILD_NAME_LIMIT,
    CLUSTER_NAME_LIMIT,
    CLUSTER_NAME_PATTERN,
    child_name,
)
from brainai_operator.strategies import resolve

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PASSWORDS = {
    "postgres": {"superuser-password": "a", "replication-password": "b"},
    "redis": {"password": "c"},
}
# Everything on, at the sizes that make names longest.
WIDEST = {
    "postgres": {"enabled": True, "readReplicas": 15},
    "redis": {"enabled": True, "masters": 20, "replicasPerMaster": 5},
    "monitoring": {"enabled": True},
}


def children(name: str) -> list[dict[str, Any]]:
    spec = BrainAIClusterSpec.model_validate(WIDEST)
    return build_desired(name, "ns", resolve(spec), PASSWORDS, monitoring_crds=True)


def check(obj: dict[str, Any]) -> list[str]:
    kind, meta = obj["kind"], obj["metadata"]
    name = meta["name"]
    problems = []
    if not DNS_1123_SUBDOMAIN.match(name):
        problems.append("not a DNS-1123 subdomain")
    if kind == "Service" and not (DNS_1035.match(name) and len(name) <= 63):
        problems.append("not a DNS-1035 label")
    if kind in ("StatefulSet", "Job") and len(name) > CHILD_NAME_LIMIT:
        problems.append(f"longer than {CHILD_NAME_LIMIT} (pod labels carry it plus a suffix)")
    for labels in (
        meta.get("labels") or {},
        ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {},
    ):
        problems += [f"label {k}={v!r}" for k, v in labels.items() if len(v) > 63 or not LABEL_VALUE.match(v)]
    return [f"{kind}/{name}: {p}" for p in problems]


@pytest.mark.parametrize("name", ["c", "brain-prod", "b" * CLUSTER_NAME_LIMIT, "a" + "-b" * 31])
def test_every_child_of_a_valid_name_is_valid(name: str) -> None:
    assert re.match(CLUSTER_NAME_PATTERN, name) and len(name) <= CLUSTER_NAME_LIMIT
    problems = [p for obj in children(name) for p in check(obj)]
    assert problems == []


def test_short_names_are_kept_and_long_ones_shortened_uniquely() -> None:
    assert child_name("brain", "postgres-replica") == "brain-postgres-replica"
    a = child_name("x" * 60 + "a", "postgres-replica")
    b = child_name("x" * 60 + "b", "postgres-replica")
    assert a != b and len(a) == len(b) == CHILD_NAME_LIMIT and a.endswith("-postgres-replica")
    assert child_name("x" * 60 + "a", "postgres-replica") == a  # deterministic


def test_names_of_one_cluster_do_not_collide() -> None:
    names = [(o["kind"], o["metadata"]["name"]) for o in children("b" * CLUSTER_NAME_LIMIT)]
    assert len(names) == len(set(names))
