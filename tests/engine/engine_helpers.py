"""Shared utilities for the engine tests: small configs on temporary data dirs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brainai_common.engine_config import EngineConfig, config_from_mapping

# Small index sizes keep engine start-up fast; behaviour is the same as the defaults.
SMALL = {"system": {"memory_capacity": 10_000}}


def small_config(data_dir: Path, **server: Any) -> EngineConfig:
    return config_from_mapping({**SMALL, "server": {"data_dir": str(data_dir), **server}})


def write_config(path: Path, data_dir: Path, extra: str = "") -> Path:
    path.write_text(
        f'[system]\nmemory_capacity = 10000\n\n[server]\ndata_dir = "{data_dir}"\n{extra}', encoding="utf-8"
    )
    return path
