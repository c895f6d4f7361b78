"""kill -9 of the operator at random moments while specs change: once a last operator runs, every
cluster converges to exactly what its spec asks for (no orphan, no duplicate), every child is owned
by its current cluster, and the generated passwords never changed."""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

import pytest

from brainai_operator import api
from brainai_operator.resources import postgres, redis
from brainai_operator.resources.cluster import OWNED_KINDS, build_desired
from brainai_operator.resources.common import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from brainai_operator.strategies import resolve
from e2e.conftest import DATA_IMAGES, run_operator
from e2e.kube import Cluster, wait_until
from e2e.test_operator import cluster_manifest

pytestmark = pytest.mark.kwok  # many PostgreSQL and Redis pods coming and going: API semantics only

DATA = {"postgres": {"enabled": True}, "redis": {"enabled": True}}
SPECS: dict[str, dict[str, Any]] = {
    "crash-a": {"autoscaling": {"enabled": False}, "engine": {"replicas": 1}},
    "crash-b": {},
    "crash-c": DATA,
    "crash-d": {**DATA, "strategy": "query-focused"},
}
ROUNDS = 8


def random_change(rng: random.Random) -> dict[str, Any]:
    """One spec edit of the kinds users make, each admissible from any state the others leave (more
    than one engine pod needs PostgreSQL); each changes, adds or removes children."""
    shared = {"postgres": {"enabled": True}}
    return rng.choice(
        [
            {"strategy": rng.choice(["balanced", "learning-focused", "query-focused"])},
            {**shared, "autoscaling": {"enabled": False}, "engine": {"replicas": rng.randint(1, 3)}},
            {
                **shared,
                "autoscaling": {"enabled": True, "minReplicas": rng.randint(1, 2), "maxReplicas": 4},
                "engine": {"replicas": None},
            },
            {"postgres": {"enabled": True, "readReplicas": rng.randint(0, 2)}},
            {"postgres": {"enabled": False}, "autoscaling": {"enabled": False}, "engine": {"replicas": 1}},
            {"monitoring": {"enabled": rng.random() < 0.5}},
        ]
    )


PASSWORDS = set(postgres.SECRET_KEYS) | set(redis.SECRET_KEYS)


def secret_data(cluster: Cluster, namespace: str) -> dict[str, dict[str, str]]:
    """Every data-tier Secret's generated passwords, by name (the URLs beside them follow the spec)."""
    found = cluster.get("secret", namespace=namespace, selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
    return {
        s["metadata"]["name"]: {
            k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items() if k in PASSWORDS
        }
        for s in found["items"]
    }


def owned_children(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    kinds = [k for _, k in OWNED_KINDS if k not in ("ServiceMonitor", "PrometheusRule")]
    found = cluster.get(",".join(kinds), namespace=namespace, selector=selector)
    return found["items"]


def expected_children(live: dict[str, Any]) -> set[tuple[str, str]]:
    """What the operator's own builders make of the live spec (the monitoring CRDs are absent here)."""
    meta = live["metadata"]
    resolved = resolve(api.BrainAIClusterSpec.model_validate(live["spec"]))
    names_only = {
        "postgres": dict.fromkeys(postgres.SECRET_KEYS, ""),
        "redis": dict.fromkeys(redis.SECRET_KEYS, ""),
    }
    desired = build_desired(meta["name"], meta["namespace"], resolved, names_only)
    return {(o["kind"], o["metadata"]["name"]) for o in desired}


def converged(cluster: Cluster, namespace: str, name: str) -> bool:
    live = cluster.get("bac", name, namespace)
    status = (live or {}).get("status") or {}
    return (
        status.get("observedGeneration") == live["metadata"]["generation"] and status.get("phase") == "Ready"
    )


def test_kill_9_during_spec_changes_leaves_no_orphan_duplicate_or_new_password(
    cluster: Cluster, namespace: str, crd: str
) -> None:
    rng = random.Random(20261202)
    for name, spec in SPECS.items():
        cluster.apply(cluster_manifest(name, spec), namespace)
    first_seen: dict[str, dict[str, str]] = {}
    kills = []
    alive = sorted(SPECS)
    for round_ in range(ROUNDS):
        with run_operator(cluster.env, *DATA_IMAGES) as proc:
            for name in rng.sample(alive, 2):
                patch = json.dumps({"spec": random_change(rng)})
                cluster.kubectl("patch", "bac", name, "-n", namespace, "--type=merge", "-p", patch)
            if round_ == ROUNDS // 2:  # a cluster deleted while the operator may be mid-pass
                cluster.kubectl("delete", "bac", "crash-b", "-n", namespace, "--wait=false")
                alive.remove("crash-b")
            after = rng.uniform(0.2, 4.0)
            time.sleep(after)
            proc.kill()  # SIGKILL: no shutdown, no lease release, whatever pass was running is cut
            proc.wait()
            kills.append(round(after, 1))
        for secret, data in secret_data(cluster, namespace).items():
            assert first_seen.setdefault(secret, data) == data, f"{secret} changed after a kill"
    print(f"killed after {kills} s")

    def children_of(name: str) -> list[dict[str, Any]]:
        found = owned_children(cluster, namespace)
        return [c for c in found if c["metadata"]["labels"].get(INSTANCE_LABEL) == name]

    def collected() -> bool:  # Secrets of retained data outlive their cluster, by design
        return all(c["kind"] == "Secret" for c in children_of("crash-b"))

    with run_operator(cluster.env, *DATA_IMAGES):
        for name in alive:
            wait_until(
                lambda name=name: converged(cluster, namespace, name),
                timeout=180,
                what=f"{name} to converge on its last spec",
            )
        wait_until(collected, timeout=120, what="crash-b's children to be collected")
        for name in alive:
            live = cluster.get("bac", name, namespace)
            mine = children_of(name)
            names = {(c["kind"], c["metadata"]["name"]) for c in mine}
            expected = expected_children(live)
            retained = {n for n in names if n[0] == "Secret" and n not in expected}
            assert names - retained == expected, f"{name}: children differ from its spec"
            for child in mine:
                refs = child["metadata"].get("ownerReferences") or []
                owners = [o["uid"] for o in refs if o.get("controller")]
                if child["kind"] == "Secret" and not owners:
                    continue  # credentials of retained data belong to no one, so they outlive the cluster
                assert owners == [live["metadata"]["uid"]], f"{child['kind']}/{child['metadata']['name']}"
        for secret, data in secret_data(cluster, namespace).items():
            assert first_seen.get(secret, data) == data, f"{secret} changed"
