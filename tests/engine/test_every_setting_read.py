"""Every key of the engine config is read by some code path: a key nothing reads is a setting in name
only. Attribute reads of the config sections are recorded while real workloads run (the `serve`,
`learn`, `search` and `concepts` commands, maintenance, each search backend, SQLite and PostgreSQL
with Redis), and the test fails naming every leaf key that no workload read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import tomli_w
import uvicorn
from starlette.testclient import TestClient

from brainai_common import engine_config
from brainai_common.engine_config import EngineConfig, load_config
from brainai_engine import cli
from brainai_engine.engine.facade import Engine
from tests.servers import RedisCluster

Key = tuple[type, str]


def leaf_keys(model: type[pydantic.BaseModel] = EngineConfig, prefix: str = "") -> dict[Key, str]:
    """(section class, field) -> dotted key, for every field that is not itself a section."""
    out: dict[Key, str] = {}
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, pydantic.BaseModel):
            out.update(leaf_keys(sub, f"{prefix}{name}."))
        else:
            out[(model, name)] = f"{prefix}{name}"
    return out


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[Key]]:
    """Records (section class, field) on every attribute read of an engine config section."""
    seen: set[Key] = set()
    original = pydantic.BaseModel.__getattribute__

    def recording(self: Any, name: str) -> Any:
        cls = type(self)
        if cls.__module__ == engine_config.__name__ and name in cls.model_fields:
            seen.add((cls, name))
        return original(self, name)

    monkeypatch.setattr(pydantic.BaseModel, "__getattribute__", recording)
    yield seen


def drive_http(client: TestClient, token: str | None) -> None:
    """What users of the API do, each call checked so a broken path cannot pass as read."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def ok(response: Any) -> Any:
        assert response.status_code < 300, response.text
        return (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )

    ok(client.get("/health"))
    ok(client.get("/ready"))
    learned = ok(
        client.post(
            "/api/v1/learn",
            json={"text": "Tidepools hold anemones. Anemones sting small fish. Tidepools hold crabs."},
            headers=headers,
        )
    )
    ok(
        client.post(
            "/api/v1/learn/batch",
            json={"texts": ["Quasars outshine galaxies.", "Anemones again."]},
            headers=headers,
        )
    )
    added = ok(client.post("/api/v1/memory", json={"content": "a memory about anemones"}, headers=headers))
    for _ in range(2):  # the second is served from the result caches
        ok(client.get("/api/v1/memory/search", params={"query": "anemones"}, headers=headers))
        ok(client.get("/api/v1/concepts/search", params={"query": "anemones"}, headers=headers))
    ok(client.get("/api/v1/concepts/anemones/related", headers=headers))
    ok(client.get(f"/api/v1/memory/{learned['memory_ids'][0]}", headers=headers))
    ok(client.delete(f"/api/v1/memory/{added['id']}", headers=headers))
    ok(client.get("/api/v1/concepts/anemones", headers=headers))
    client.get("/metrics")


def run_workload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sections: dict[str, Any], token: str | None
) -> None:
    """`serve` with uvicorn's loop replaced by HTTP calls through the app it built, then the CLI's
    learn, search and concepts on the same store."""
    data_dir = tmp_path / "data"
    config_file = tmp_path / "engine.toml"
    config_file.write_text(
        tomli_w.dumps({**sections, "server": {"data_dir": str(data_dir), **sections.get("server", {})}})
    )

    def serve_through_client(server: uvicorn.Server) -> None:
        with TestClient(server.config.app) as client:
            drive_http(client, token)

    monkeypatch.setattr(uvicorn.Server, "run", serve_through_client)
    assert cli.main(["serve", "--config", str(config_file)]) == 0
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Merge conflicts happen when two branches edit one line.\n" * 3)
    (docs / "b.txt").write_text("Vim splits a window vertically with :vsplit. Vim splits again.\n")
    common = ["--config", str(config_file)]
    if token:
        monkeypatch.setenv("BRAIN_AI_TOKEN", token)
    assert cli.main(["learn", str(docs), "--quiet", *common]) == 0
    assert cli.main(["search", "merge conflicts", *common]) == 0
    assert cli.main(["concepts", "vim", *common]) == 0
    with Engine.open(load_config(config_file)) as engine:
        engine.maintain(force=True)


@pytest.mark.postgres
@pytest.mark.redis_cluster
def test_every_leaf_key_is_read_by_some_workload(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reads: set[Key],
    pg_database: tuple[str, str],
    redis_cluster: RedisCluster,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    workloads: dict[str, dict[str, Any]] = {
        "defaults": {},
        "vector search, compression, a small working memory consolidated hourly, a token file": {
            "search": {"backend": "vector", "exact_below": 2, "fresh_buffer": 2},
            "performance": {"compression_enabled": True},
            "memory": {"working_memory_size": 2, "consolidation_frequency": "hourly"},
            "server": {"auth_token_file": str(token_file)},
        },
        "PostgreSQL primary + replica, Redis Cluster": {
            "database": {"url": pg_database[0], "read_urls": [pg_database[1]], "work_mem_mb": 8},
            "redis": {"url": redis_cluster.url, "cluster": True},
        },
    }
    for n, (name, sections) in enumerate(workloads.items()):
        home = tmp_path / str(n)
        home.mkdir()
        token = "s3cret" if "server" in sections else None
        run_workload(home, monkeypatch, sections, token)
        assert reads, name
    unread = sorted(dotted for key, dotted in leaf_keys().items() if key not in reads)
    assert not unread, f"engine config keys that no workload read: {unread}"
