"""Crash safety over real HTTP: every acknowledged write survives ``kill -9`` of the server process."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from brainai_engine.tools.server_process import ServerProcess
from tests.engine.engine_helpers import write_config

TOPICS = ["astronomy", "botany", "cryptography", "geology", "linguistics", "oceanography"]


def text(i: int) -> str:
    topic = TOPICS[i % len(TOPICS)]
    return (
        f"Record {i} is about {topic}. Scholars of {topic} study {topic} methods and {topic} history. "
        f"Marker zq{i}x appears only here."
    )


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = str(write_config(tmp_path / "engine.toml", data_dir))
    acked_memories: dict[str, str] = {}  # id -> content
    server = ServerProcess(data_dir, config_path=config).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            for i in range(12):
                response = client.post("/api/v1/learn", json={"text": text(i)})
                assert response.status_code == 200, response.text
                for memory_id in response.json()["memory_ids"]:
                    acked_memories[memory_id] = f"zq{i}x"
            batch = client.post("/api/v1/learn/batch", json={"texts": [text(i) for i in range(12, 20)]})
            assert batch.status_code == 200
            for i, result in enumerate(batch.json()["results"], start=12):
                for memory_id in result["memory_ids"]:
                    acked_memories[memory_id] = f"zq{i}x"
            added = client.post(
                "/api/v1/memory",
                json={"content": "Marker zqsolox appears in a standalone fact.", "type": "semantic"},
            )
            assert added.status_code == 201
            acked_memories[added.json()["id"]] = "zqsolox"
            concepts = {
                hit["concept"]["name"]
                for topic in TOPICS
                for hit in client.get("/api/v1/concepts/search", params={"query": topic}).json()["results"]
            }
            assert concepts
        server.kill()  # no shutdown code runs: nothing may depend on a graceful close
    finally:
        server.stop()

    with (
        ServerProcess(data_dir, config_path=config) as restarted,
        httpx.Client(base_url=restarted.base_url, timeout=30) as client,
    ):
        for memory_id, marker in acked_memories.items():
            fetched = client.get(f"/api/v1/memory/{memory_id}")
            assert fetched.status_code == 200, (memory_id, fetched.text)
            assert marker in fetched.json()["content"]
        for marker in sorted(set(acked_memories.values())):
            found = client.get(
                "/api/v1/memory/search", params={"query": f"marker {marker} appears", "limit": 5}
            ).json()["results"]
            assert any(marker in hit["memory"]["content"] for hit in found), marker
        for name in concepts:
            assert client.get(f"/api/v1/concepts/{name}").status_code == 200, name
        stats = client.get("/metrics").text
        line = next(x for x in stats.splitlines() if x.startswith("brain_ai_memories_total "))
        assert float(line.split()[1]) == len(acked_memories)


def _learn_until_killed(server: ServerProcess, round_no: int, acked: dict[str, str]) -> None:
    """Four clients learn unique markers concurrently; the server is killed -9 mid-stream. Only
    answers that arrived (200) count as acknowledged."""
    import random
    import threading

    stop = threading.Event()
    lock = threading.Lock()

    def client(worker: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                marker = f"zk{round_no}w{worker}n{i}q"
                try:
                    response = http.post("/api/v1/learn", json={"text": f"Crash marker {marker} is here."})
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        acked.update((m, marker) for m in response.json()["memory_ids"])

    workers = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    time.sleep(random.uniform(0.8, 1.6))
    server.kill()
    stop.set()
    for w in workers:
        w.join(timeout=30)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_repeated_kill_9_during_concurrent_learns_loses_no_acknowledged_write(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    env = {}
    if backend == "postgres":
        primary, _replica = request.getfixturevalue("pg_database")
        env = {"DATABASE_URL": primary}
    data_dir = tmp_path / "data"
    config = str(write_config(tmp_path / "engine.toml", data_dir))
    acked: dict[str, str] = {}
    for round_no in range(3):
        server = ServerProcess(data_dir, config_path=config, env=env).start()
        try:
            _learn_until_killed(server, round_no, acked)
        finally:
            server.stop()
        assert acked, "no write was acknowledged before the kill"
    with (
        ServerProcess(data_dir, config_path=config, env=env) as restarted,
        httpx.Client(base_url=restarted.base_url, timeout=30) as client,
    ):
        for memory_id, marker in acked.items():
            fetched = client.get(f"/api/v1/memory/{memory_id}")
            assert fetched.status_code == 200 and marker in fetched.json()["content"], memory_id
        # Searchable too: the index was caught up with what the crashes left unsaved.
        for marker in sorted(set(acked.values()))[::7]:
            found = client.get("/api/v1/memory/search", params={"query": marker, "limit": 3}).json()
            assert any(marker in hit["memory"]["content"] for hit in found["results"]), marker
