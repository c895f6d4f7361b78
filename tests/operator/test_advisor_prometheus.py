"""The advisor against a real Prometheus scraping real engine servers under a generated load.

Prometheus (Debian's /usr/bin/prometheus) scrapes `brain-ai-engine serve` processes every second;
the static config gives each target the namespace/service/pod labels a ServiceMonitor would. Two
engines form cluster prod/alpha, which gets a learn-heavy then a query-heavy load; one idle engine
forms dev/beta. Everything listens on 127.0.0.1 and stops at the end of the module.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from brainai_engine.api.serving import free_port
from brainai_engine.tools.server_process import ServerProcess
from brainai_operator import api
from brainai_operator.advisor import NOT_CONFIGURED
from brainai_operator.durations import Window
from brainai_operator.main import main as operator_main
from brainai_operator.prometheus import UNREACHABLE, AdvisorSettings, advise, connect, fetch_usage
from brainai_operator.promql import usage_queries
from brainai_operator.status import advisor_state, compute_status
from tests.engine.engine_helpers import write_config
from tests.servers import wait_for

pytestmark = pytest.mark.prometheus

PROMETHEUS = shutil.which("prometheus")
ALPHA, BETA = ("prod", "alpha"), ("dev", "beta")
PHASE_SECONDS = 12
# The load phases last seconds: far below the half hour of usage the advisor asks for by default
# (test_recommend_cli.py covers that floor), so these tests lower it.
SETTINGS = dict(step=1, rate=3, min_evidence=0)
WORDS = ["neuron", "synapse", "cortex", "memory", "concept", "signal", "pattern", "learning"]


@dataclass
class Stack:
    url: str
    alpha: list[ServerProcess]
    beta: list[ServerProcess]
    learn_phase: tuple[float, float] = (0.0, 0.0)
    query_phase: tuple[float, float] = (0.0, 0.0)


def cluster(key: tuple[str, str], **spec: object) -> dict:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"namespace": key[0], "name": key[1]},
        "spec": spec,
    }


def scrape_config(alpha: list[ServerProcess], beta: list[ServerProcess]) -> dict:
    """Static targets labelled as the Prometheus Operator labels ServiceMonitor targets."""
    groups = []
    for (ns, name), servers in ((ALPHA, alpha), (BETA, beta)):
        for i, server in enumerate(servers):
            groups.append(
                {
                    "targets": [f"127.0.0.1:{server.port}"],
                    "labels": {
                        "namespace": ns,
                        "service": f"{name}-engine",
                        "pod": f"{name}-engine-6d9f8b7c5-p{i}x{i}z",
                    },
                }
            )
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "brain-ai-engine", "static_configs": groups}],
    }


def load(servers: list[ServerProcess], kind: str, seconds: float, threads: int = 2) -> None:
    """Bounded loopback load: `threads` clients round-robin over the servers for `seconds`."""
    deadline = time.monotonic() + seconds

    def worker(offset: int) -> None:
        counter = itertools.count(offset * 100_000)
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < deadline:
                i = next(counter)
                base = servers[i % len(servers)].base_url
                if kind == "learn":
                    words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(12))
                    client.post(f"{base}/api/v1/learn", json={"text": f"Entry {i}: {words}."})
                else:
                    client.get(f"{base}/api/v1/memory/search", params={"query": WORDS[i % len(WORDS)]})

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert PROMETHEUS, "prometheus is missing: install Debian's prometheus package (.ci/run does)"
    root = tmp_path_factory.mktemp("prom")
    servers: list[ServerProcess] = []
    proc = None
    try:
        for i in range(3):
            data = root / f"engine{i}"
            config = write_config(root / f"engine{i}.toml", data)
            servers.append(ServerProcess(data, config_path=str(config)).start())
        alpha, beta = servers[:2], servers[2:]
        (root / "prometheus.yml").write_text(yaml.safe_dump(scrape_config(alpha, beta)))
        port = free_port("127.0.0.1")
        log = (root / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        stack = Stack(url, alpha, beta)

        def all_up() -> bool:
            found = httpx.get(f"{url}/api/v1/query", params={"query": "sum(up)"}, timeout=2).json()
            result = found["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) == 3

        wait_for(all_up, 30, "Prometheus to scrape the three engines")
        time.sleep(3)  # a few idle samples before the load starts
        start = time.time()
        load(alpha, "learn", PHASE_SECONDS)
        stack.learn_phase = (start, time.time())
        start = time.time()
        load(alpha, "query", PHASE_SECONDS)
        stack.query_phase = (start, time.time())
        time.sleep(2.5)  # the last scrapes land
        yield stack
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in servers:
            server.stop()


def advice_over(stack: Stack, phase: tuple[float, float], **spec: object) -> dict:
    """Advice for both clusters over one load phase (the window ends as the phase ends)."""
    start, end = phase
    window = f"{int(end - start) - 3}s"  # skip the first seconds: rates need samples to warm up
    settings = AdvisorSettings(prometheus_url=stack.url, window=window, **SETTINGS)
    now = dt.datetime.fromtimestamp(end, dt.UTC)
    return advise([cluster(ALPHA, **spec), cluster(BETA, **spec)], settings, now)


def test_batched_queries_return_series_for_every_cluster(stack: Stack) -> None:
    window = Window.of(30, step=1, rate=3)
    queries = usage_queries([ALPHA, BETA], window)
    assert set(queries) == {"cpu", "memory", "requests", "latency"}  # one query per metric, both clusters
    with connect(stack.url) as prom:
        usage, _, _ = fetch_usage(prom, [ALPHA, BETA], window, stack.query_phase[1])
    alpha, beta = usage[ALPHA], usage[BETA]
    assert len(alpha.pods) == 2 and len(beta.pods) == 1
    assert alpha.samples >= 20 and beta.samples >= 20
    assert int(alpha.replicas.max()) == 2 and int(beta.replicas.max()) == 1
    assert (alpha.memory[np.isfinite(alpha.memory)] > 10 * 2**20).all()  # resident memory, MiB
    assert alpha.query_rps.max() > 1 and alpha.learn_rps.max() > 1
    assert beta.learn_rps.max() == 0 and beta.query_rps.max() == 0  # /metrics scrapes are not API load
    assert alpha.cpu_total.max() > beta.cpu_total.max()


def test_learn_heavy_load_recommends_learning_focused(stack: Stack) -> None:
    advice = advice_over(stack, stack.learn_phase)
    alpha = advice[ALPHA]
    assert alpha.available, alpha.message
    rec = alpha.recommendation
    assert rec is not None
    assert rec.strategy == api.Strategy.LEARNING_FOCUSED, rec.reasons
    assert rec.evidence.learn_share > 0.9
    assert rec.evidence.replicas_peak == 2
    assert any(r.startswith("CPU: currently using") for r in rec.reasons)


def test_query_heavy_load_recommends_query_focused(stack: Stack) -> None:
    advice = advice_over(stack, stack.query_phase, strategy="learning-focused")
    rec = advice[ALPHA].recommendation
    assert rec is not None, advice[ALPHA].message
    assert rec.strategy == api.Strategy.QUERY_FOCUSED, rec.reasons
    assert rec.evidence.learn_share < 0.1
    assert rec.evidence.latency_p95_seconds is not None


def test_more_load_means_no_fewer_replicas_or_cpu(stack: Stack) -> None:
    for phase in (stack.learn_phase, stack.query_phase):
        advice = advice_over(stack, phase)
        busy, idle = advice[ALPHA].recommendation, advice[BETA].recommendation
        assert busy is not None and idle is not None
        assert busy.max_replicas >= idle.max_replicas
        assert busy.min_replicas >= idle.min_replicas
        assert busy.evidence.cpu_p95_cores > idle.evidence.cpu_p95_cores
        assert busy.evidence.request_rate_average > idle.evidence.request_rate_average
        assert idle.strategy == api.Strategy.BALANCED  # idle: too little traffic to change it


def test_no_data_for_a_cluster_nobody_scrapes(stack: Stack) -> None:
    settings = AdvisorSettings(prometheus_url=stack.url, window="20s", **SETTINGS)
    ghost = ("prod", "ghost")
    advice = advise([cluster(ghost)], settings, dt.datetime.now(dt.UTC))
    assert not advice[ghost].available and advice[ghost].reason == "NoData"


def test_unreachable_prometheus_is_a_condition_not_an_exception() -> None:
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    started = time.monotonic()
    advice = advise([cluster(ALPHA)], AdvisorSettings(prometheus_url=url), dt.datetime.now(dt.UTC))
    assert time.monotonic() - started < 10
    got = advice[ALPHA]
    assert not got.available and got.reason == UNREACHABLE and url in got.message
    metrics, recs = advisor_state(got, {})
    status = compute_status(1, "balanced", None, {}, "2025-01-01T00:00:00Z", metrics=metrics)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["MetricsAvailable"]["status"] == "False"
    assert conditions["MetricsAvailable"]["reason"] == UNREACHABLE
    assert recs is None and "recommendations" not in status


def test_no_url_means_no_advice() -> None:
    advice = advise([cluster(ALPHA)], AdvisorSettings(), dt.datetime.now(dt.UTC))
    assert advice[ALPHA] == NOT_CONFIGURED


def test_recommend_command_prints_report_and_json(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "alpha.yaml"
    manifest.write_text(yaml.safe_dump(cluster(ALPHA)))
    window = f"{int(time.time() - stack.learn_phase[0])}s"
    args = ["recommend", "alpha", "-n", "prod", "-f", str(manifest), "--prometheus-url", stack.url]
    args += ["--min-evidence", "10s"]  # the whole load is well under the default 30m
    assert operator_main([*args, "--window", window]) == 0
    report = capsys.readouterr().out
    assert "prod/alpha" in report and "Reasons:" in report and "Evidence:" in report
    assert any(bar in report for bar in "▂▃▄▅▆▇█")  # the sparklines
    assert operator_main([*args, "--window", window, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["evidence"]["replicasPeak"] == 2 and body["reasons"]
