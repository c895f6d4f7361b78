"""Fixtures for tests against a real Kubernetes API server.

The session starts the local cluster unless `KUBECONFIG` already points at a reachable one, and
stops it again only if it started it (set BRAINAI_KEEP_CLUSTER=1 to keep it for the next run).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.kube import CACHE, Cluster, start_local_cluster, stop_local_cluster, wait_until

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> str:
    """The BrainAICluster CRD from crds/, installed as a user would, and Established."""
    path = Path(__file__).resolve().parent.parent / "crds" / "brainai.io_brainaiclusters.yaml"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    name = "brainaiclusters.brainai.io"
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return name


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crd: str) -> Iterator[subprocess.Popen[bytes]]:
    """The real operator process (`brain-ai-operator run`) watching every namespace, per test module."""
    with run_operator(cluster.env) as proc:
        yield proc


@contextlib.contextmanager
def run_operator(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start `brain-ai-operator run` with `env` (its KUBECONFIG decides who it is); stop it after."""
    health = _free_port()
    log_path = Path(os.environ.get("BRAINAI_OPERATOR_LOG", "/tmp/brain-ai-operator-e2e.log"))
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "brainai_operator.main",
                "run",
                "--health-port",
                str(health),
                "--metrics-port",
                str(_free_port()),
                "--resync-seconds",
                "20",
                *args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.health_port = health  # type: ignore[attr-defined]
        try:
            wait_until(
                lambda: _healthy(health) or proc.poll() is not None,
                timeout=60,
                what="the operator's liveness endpoint",
            )
            assert proc.poll() is None, f"operator exited; see {log_path}"
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False
