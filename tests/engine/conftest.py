"""Fixtures for engine tests: every engine runs on a real SQLite file under tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from brainai_common.engine_config import EngineConfig
from brainai_engine.api.app import create_app
from brainai_engine.engine.facade import Engine
from tests.engine.engine_helpers import small_config


def make_config(data_dir: Path, **sections: dict[str, Any]) -> EngineConfig:
    return EngineConfig.model_validate({"server": {"data_dir": str(data_dir)}, **sections})


@pytest.fixture
def open_engine(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """Factory: open_engine(**sections) opens an engine on tmp_path; all are closed at teardown."""
    engines: list[Engine] = []

    def factory(**sections: dict[str, Any]) -> Engine:
        engine = Engine(make_config(tmp_path, **sections))
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(small_config(tmp_path))
    yield eng
    eng.close()


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(engine, small_config(tmp_path, max_body_bytes=64 * 1024))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
