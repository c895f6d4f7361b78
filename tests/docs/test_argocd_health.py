"""The Argo CD health check (Lua) run by a real Lua interpreter against status fixtures."""

import re
from pathlib import Path
from typing import Any

import pytest
from lupa import LuaRuntime

from brainai_operator.status import compute_status

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCRIPT = (DOCS / "gitops" / "brainaicluster-health.lua").read_text()
T0 = "2026-01-01T00:00:00Z"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)

    def to_lua(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([to_lua(v) for v in value])
        return value

    lua.globals().obj = to_lua(obj)
    result = lua.execute(SCRIPT)
    return result["status"], result["message"]


def deployment(available: int, want: int = 3) -> dict[str, Any]:
    return {
        "metadata": {"generation": 1},
        "spec": {"replicas": want, "selector": {"matchLabels": {}}},
        "status": {
            "replicas": want,
            "updatedReplicas": want,
            "availableReplicas": available,
            "readyReplicas": available,
            "observedGeneration": 1,
        },
    }


def cluster(generation: int = 1, **status_args: Any) -> dict[str, Any]:
    status = compute_status(1, "balanced", previous=None, now=T0, **status_args)
    return {"metadata": {"name": "brain", "generation": generation}, "status": status}


def test_healthy_when_ready_for_the_current_generation() -> None:
    assert health(cluster(deploy=deployment(3)))[0] == "Healthy"


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": {"generation": 1}},
        cluster(deploy=deployment(1)),
        cluster(deploy=None),
        cluster(generation=2, deploy=deployment(3)),  # spec changed, operator not there yet
    ],
    ids=["no-status", "rolling-out", "pending", "stale-generation"],
)
def test_progressing(obj: dict[str, Any]) -> None:
    assert health(obj)[0] == "Progressing"


def test_degraded_names_the_reason() -> None:
    status, message = health(cluster(deploy=deployment(3), error=("InvalidConfig", "memory.x: bad")))
    assert status == "Degraded" and message.startswith("InvalidConfig")


def test_paused_is_suspended() -> None:
    assert health(cluster(deploy=deployment(3), paused=True))[0] == "Suspended"


def test_the_doc_shows_the_tested_script() -> None:
    blocks = re.findall(r"```lua\n(.*?)```", (DOCS / "gitops.md").read_text(), re.S)
    assert [b.strip() for b in blocks] == [SCRIPT.strip()]
