"""Fixtures for tests against a real Kubernetes API server.

The session starts the local cluster unless `KUBECONFIG` already points at a reachable one, and
stops it again only if it started it (set BRAINAI_KEEP_CLUSTER=1 to keep it for the next run).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.kube import Cluster, start_local_cluster, stop_local_cluster

CACHE = Path(os.environ.get("BRAINAI_CACHE", Path.home() / ".cache" / "brain-ai"))
CLUSTER_NAME = os.environ.get("BRAINAI_CLUSTER_NAME", "brain-ai")
LOCAL_KUBECONFIG = CACHE / "kwok" / "clusters" / CLUSTER_NAME / "kubeconfig.yaml"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    bin_dir = CACHE / "bin" if (CACHE / "bin").is_dir() else None
    existing = os.environ.get("KUBECONFIG")
    if existing and Path(existing) != LOCAL_KUBECONFIG:
        candidate = Cluster(Path(existing), bin_dir=bin_dir)
        if candidate.reachable():
            yield candidate
            return
    already_up = LOCAL_KUBECONFIG.exists() and Cluster(LOCAL_KUBECONFIG, bin_dir=bin_dir).reachable()
    local = start_local_cluster()
    yield local
    if not already_up and not os.environ.get("BRAINAI_KEEP_CLUSTER"):
        stop_local_cluster()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (without waiting) afterwards."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
