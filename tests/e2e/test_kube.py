"""The test harness's own arithmetic: a tool's `--timeout` must outlast ours."""

from __future__ import annotations

import pytest

from e2e.kube import own_timeout


@pytest.mark.parametrize(
    ("args", "seconds"),
    [
        (["wait", "--for=condition=Ready", "--timeout=300s"], 300),
        (["uninstall", "brain", "--wait", "--timeout", "1m30s"], 90),
        (["rollout", "status", "--timeout=1h"], 3600),
        (["wait", "--timeout=500ms"], 0.5),
        (["get", "pods"], 0),
    ],
)
def test_own_timeout_reads_go_durations(args: list[str], seconds: float) -> None:
    assert own_timeout(args) == seconds
