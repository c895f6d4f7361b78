"""Fixtures for tests against a real Kubernetes API server, on the tier BRAINAI_E2E_TIER names.

`kwok` (default): the local control plane, kwok pretending to run pods; fast API semantics.
`kind`: a kind cluster with real pods and the project's images. Tests marked `kwok` rely on kwok's
simulation (annotated resource usage, ...) and tests marked `kind` need real pods; the other
tier's tests are deselected. The session starts the tier's cluster unless `KUBECONFIG` already
points at a reachable one of that tier, and stops it again only if it started it (set
BRAINAI_KEEP_CLUSTER=1 to keep it for the next run). When a test fails, the pods, events and logs
of its namespace are printed with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.kube import CACHE, IMAGES, KIND, KWOK, TIER, TIERS, Cluster, wait_until

# Where the operator processes the tests start write their output.
OPERATOR_LOG = Path(os.environ.get("BRAINAI_OPERATOR_LOG", f"/tmp/brain-ai-operator-e2e-{TIER}.log"))
# What the operator run by the tests deploys for the data tiers: the project's own images.
DATA_IMAGES = ("--postgres-image", IMAGES["postgres"], "--redis-image", IMAGES["redis"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TIER not in TIERS:
        raise pytest.UsageError(f"BRAINAI_E2E_TIER={TIER!r}: expected one of {', '.join(TIERS)}")
    here = Path(__file__).parent
    keep, other = [], []
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.cluster)
        tiers = {t for t in TIERS if item.get_closest_marker(t)}
        (keep if not tiers or TIER in tiers else other).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = keep


FAILED = pytest.StashKey[bool]()
FAILED_MODULES: set[str] = set()
# What diagnose() found for failed tests' namespaces: printed in the terminal summary, since output
# printed by a fixture's teardown is shown only when that teardown's test failed.
DIAGNOSES: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
        FAILED_MODULES.add(item.module.__name__)
    return report


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    tier = KIND if TIER == "kind" else KWOK
    bin_dir = CACHE / "bin" if (CACHE / "bin").is_dir() else None
    existing = os.environ.get("KUBECONFIG")
    if existing and Path(existing) != tier.kubeconfig:
        candidate = Cluster(Path(existing), bin_dir=bin_dir)
        if candidate.reachable():
            found = candidate.tier()
            if found != tier.name:
                pytest.exit(f"KUBECONFIG={existing} is a {found} cluster: set BRAINAI_E2E_TIER={found}", 2)
            yield candidate
            return
    already_up = tier.kubeconfig.exists() and Cluster(tier.kubeconfig, bin_dir=bin_dir).reachable()
    started = tier.start()
    yield started
    if not already_up and not os.environ.get("BRAINAI_KEEP_CLUSTER"):
        tier.stop()


def _create_namespace(cluster: Cluster, label: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", label.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    return name


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (without waiting) afterwards."""
    name = _create_namespace(cluster, request.node.name)
    yield name
    if request.node.stash.get(FAILED, False):
        DIAGNOSES.append(diagnose(cluster, name))
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture(scope="module")
def module_namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace the tests of one module share (for what takes minutes to start); deleted after."""
    module = request.module.__name__
    name = _create_namespace(cluster, module.rsplit(".", 1)[-1].replace("_", "-"))
    yield name
    if module in FAILED_MODULES:
        DIAGNOSES.append(diagnose(cluster, name))
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def diagnose(cluster: Cluster, namespace: str) -> str:
    """What a user would look at when something did not become Ready: objects, the logs of pods that
    are not ready, restarted or belong to a Job (a Job's pod can be ready and still stuck), events."""
    out = [f"===== namespace {namespace} ====="]
    out.append(
        cluster.run(
            "kubectl", "get", "bac,deploy,sts,job,pods,pvc", "-o", "wide", "-n", namespace, check=False
        ).stdout
    )
    for pod in cluster.items("pods", namespace):
        status = pod.get("status", {})
        statuses = status.get("containerStatuses", []) + status.get("initContainerStatuses", [])
        restarted = any(s.get("restartCount") for s in statuses)
        of_job = any(o.get("kind") == "Job" for o in pod["metadata"].get("ownerReferences", []))
        if statuses and all(s.get("ready") for s in statuses) and not restarted and not of_job:
            continue
        name = pod["metadata"]["name"]
        for c in statuses:
            runs = [("--tail=40",)] + ([("--tail=40", "--previous")] if c.get("restartCount") else [])
            for flags in runs:
                argv = ("logs", name, "-c", c["name"], "-n", namespace, *flags)
                logs = cluster.run("kubectl", *argv, check=False)
                which = " (previous run)" if "--previous" in flags else ""
                out.append(f"----- logs {name}/{c['name']}{which} -----\n{logs.stdout}{logs.stderr}")
    events = cluster.run("kubectl", "get", "events", "--sort-by=.lastTimestamp", "-n", namespace, check=False)
    out.append("----- events (latest 80) -----\n" + "\n".join(events.stdout.splitlines()[-80:]))
    return "\n".join(out)


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
    cluster.wait_established(name)
    return name


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crd: str) -> Iterator[subprocess.Popen[bytes]]:
    """The real operator process (`brain-ai-operator run`) watching every namespace, per test module."""
    with run_operator(cluster.env, *DATA_IMAGES) as proc:
        yield proc


@contextlib.contextmanager
def run_operator(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start `brain-ai-operator run` with `env` (its KUBECONFIG decides who it is); stop it after."""
    health, metrics = _free_port(), _free_port()
    log_path = OPERATOR_LOG
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
                str(metrics),
                "--resync-seconds",
                "20",
                *args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.health_port = health  # type: ignore[attr-defined]
        proc.metrics_port = metrics  # type: ignore[attr-defined]
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


BENCHMARKS: list[dict[str, Any]] = []


@pytest.fixture(scope="session")
def benchmark_figures() -> list[dict[str, Any]]:
    """Load-generator results a test reports; printed at the end of the run, never asserted on time."""
    return BENCHMARKS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if DIAGNOSES:
        path = CACHE / "logs" / "e2e-diagnostics.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(DIAGNOSES))
        terminalreporter.section("namespaces of failed tests")
        for text in DIAGNOSES:
            for line in text.splitlines()[:400]:
                terminalreporter.write_line(line)
        terminalreporter.write_line(f"(all of it in {path})")
    if not BENCHMARKS:
        return
    terminalreporter.section("benchmark figures (e2e/load/loadgen.py, failover timings)")
    for run in BENCHMARKS:
        if "endpoints" not in run:  # a figure of its own (a failover's timings), not a load run
            figures = ", ".join(f"{k} {v}" for k, v in run.items() if k != "name")
            terminalreporter.write_line(f"{run['name']}: {figures}")
            continue
        terminalreporter.write_line(
            f"{run['name']}: {run['flows']} flows, {run['requests']} requests in {run['duration_s']:.0f}s, "
            f"{run['errors']} errors, start delay p95 {run['start_delay_ms']['p95']:.0f} ms"
        )
        for endpoint, f in sorted(run["endpoints"].items()):
            terminalreporter.write_line(
                f"  {endpoint:15s} {f['requests']:7d} req  p50 {f['p50_ms']:8.1f}  p95 {f['p95_ms']:8.1f}  "
                f"p99 {f['p99_ms']:8.1f}  max {f['max_ms']:8.1f} ms  errors {f['errors']}"
            )
    path = CACHE / "logs" / "e2e-benchmarks.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(BENCHMARKS, indent=1))
    terminalreporter.write_line(f"(also in {path})")
