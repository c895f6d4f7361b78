"""The engine's /metrics: process, load and learning-throughput series next to the HTTP ones."""

from __future__ import annotations

from starlette.testclient import TestClient


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
