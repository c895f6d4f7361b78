"""The engine's /metrics: process, load and learning-throughput series next to the HTTP ones, the
`[metrics]` switches that choose them, and the write queue's bound."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from brainai_common.engine_config import EngineConfig
from brainai_engine.api.app import create_app
from brainai_engine.engine.facade import Engine
from tests.engine.engine_helpers import SMALL
from tests.servers import wait_for


def sample(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(f"{name} ")).split()[-1])


def test_process_and_load_metrics_are_exported(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert sample(text, "process_cpu_seconds_total") > 0
    assert sample(text, "process_resident_memory_bytes") > 10 * 2**20
    assert "python_info{" in text
    assert sample(text, "brain_ai_http_requests_in_flight") == 0  # /metrics itself is not API load
    assert sample(text, "brain_ai_http_requests_in_flight_limit") >= 1
    assert sample(text, "brain_ai_write_queue_depth") == 0
    assert sample(text, "brain_ai_write_workers") >= 1


def test_learning_throughput_counts_texts_and_bytes(client: TestClient) -> None:
    assert client.post("/api/v1/learn", json={"text": "Neurons fire together."}).status_code == 200
    batch = client.post("/api/v1/learn/batch", json={"texts": ["Synapses strengthen.", "Cortex learns."]})
    assert batch.status_code == 200
    text = client.get("/metrics").text
    assert sample(text, "brain_ai_learn_texts_total") == 3
    learned = "Neurons fire together." + "Synapses strengthen." + "Cortex learns."
    assert sample(text, "brain_ai_learn_bytes_total") == len(learned)
    assert 'brain_ai_http_requests_total{method="POST",route="/api/v1/learn",status="200"} 1.0' in text


def test_traffic_summary_counts_requests_since_the_last_one(client: TestClient) -> None:
    metrics = client.app.state.metrics
    metrics.traffic_summary()  # whatever the fixture sent
    client.post("/api/v1/learn", json={"text": "Axons carry signals."})
    client.get("/api/v1/memory/search", params={"query": "axons"})
    client.get("/api/v1/memory/search", params={"query": "axons", "limit": "0"})
    summary = metrics.traffic_summary()
    assert summary is not None and summary.startswith("served 3 requests")
    assert "/api/v1/learn 200: 1" in summary
    assert "/api/v1/memory/search 200: 1" in summary and "/api/v1/memory/search 400: 1" in summary
    assert metrics.traffic_summary() is None  # nothing since


def app_with(tmp_path: Path, **sections: Any) -> TestClient:
    engine = Engine(EngineConfig.model_validate({**SMALL, "server": {"data_dir": str(tmp_path)}, **sections}))
    client = TestClient(create_app(engine, engine.config), raise_server_exceptions=False)
    client.engine = engine  # type: ignore[attr-defined]
    return client


@pytest.fixture
def switched(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(**metrics: Any) -> TestClient:
        client = app_with(tmp_path / str(len(opened)), metrics=metrics)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.engine.close()  # type: ignore[attr-defined]


def test_metrics_switched_off_answers_404_naming_the_key(switched: Callable[..., TestClient]) -> None:
    response = switched(enabled=False).get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and "metrics.enabled" in response.json()["message"]


FAMILIES = {
    "request_rate": "brain_ai_http_requests_total",
    "response_time": "brain_ai_http_request_duration_seconds",
    "queue_depth": "brain_ai_write_queue_depth",
    "memory_operations": "brain_ai_memories_total",
    "concept_operations": "brain_ai_concept_nodes_total",
    "learning_throughput": "brain_ai_learn_texts_total",
}


@pytest.mark.parametrize("switch", sorted(FAMILIES))
def test_each_application_switch_removes_its_families(
    switched: Callable[..., TestClient], switch: str
) -> None:
    off = {"error_rate": False} if switch == "request_rate" else {}
    client = switched(application={switch: False, **off})
    client.post("/api/v1/learn", json={"text": "Neurons fire together."})
    client.get("/api/v1/memory/search", params={"query": "neurons"})
    text = client.get("/metrics").text
    assert FAMILIES[switch] not in text
    for other, family in FAMILIES.items():
        if other != switch:
            assert family in text, other


def test_error_rate_alone_counts_only_failed_requests(switched: Callable[..., TestClient]) -> None:
    client = switched(application={"request_rate": False, "error_rate": True})
    assert client.get("/api/v1/memory/search", params={"query": "neurons"}).status_code == 200
    assert client.get("/api/v1/memory/search", params={"query": ""}).status_code == 400
    text = client.get("/metrics").text
    assert 'route="/api/v1/memory/search",status="400"} 1.0' in text
    assert 'status="200"' not in text


def test_system_switches_choose_the_process_families(switched: Callable[..., TestClient]) -> None:
    text = switched().get("/metrics").text
    assert sample(text, "process_cpu_seconds_total") > 0
    assert sample(text, "brain_ai_process_disk_written_bytes_total") >= 0
    assert sample(text, "brain_ai_network_receive_bytes_total") >= 0
    quiet = switched(
        system={"cpu_usage": False, "memory_usage": False, "disk_io": False, "network_io": False}
    )
    text = quiet.get("/metrics").text
    for family in (
        "process_cpu",
        "process_resident_memory",
        "python_gc_",
        "brain_ai_process_disk",
        "brain_ai_network",
    ):
        assert family not in text, family
    assert "process_open_fds" in text  # identity and limits stay


def test_writes_beyond_the_write_queue_bound_get_503(tmp_path: Path) -> None:
    """system.async_task_queue_size: with one writer thread busy and one write waiting, a third write
    is refused at once rather than queued. The first learn is held inside the engine by an event, the
    only way to keep a real writer busy for as long as the test needs."""
    client = app_with(tmp_path, system={"worker_threads": 1, "async_task_queue_size": 1})
    engine = client.engine  # type: ignore[attr-defined]
    release, entered = threading.Event(), threading.Event()
    learn = engine.learn

    def held_learn(request: Any) -> Any:
        entered.set()
        release.wait(10)
        return learn(request)

    engine.learn = held_learn
    statuses: list[int] = []
    try:
        with client, ThreadPoolExecutor(2) as pool:
            post = lambda text: client.post("/api/v1/learn", json={"text": text}).status_code  # noqa: E731
            first = pool.submit(post, "Held in the writer.")
            assert entered.wait(5)
            second = pool.submit(post, "Waiting for the writer.")
            wait_for(
                lambda: sample(client.get("/metrics").text, "brain_ai_write_queue_depth") == 1, 5, "queued"
            )
            refused = client.post("/api/v1/learn", json={"text": "One too many."})
            release.set()
            statuses = [first.result(10), second.result(10)]
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        body = refused.json()
        assert body["error"] == "write_queue_full" and "system.async_task_queue_size" in body["message"]
        assert body["details"] == {"waiting": 1, "limit": 1}
        assert statuses == [200, 200]
    finally:
        release.set()
        engine.close()
