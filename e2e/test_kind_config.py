"""The kind cluster config (tier 4, `make e2e-kind`) is valid for the pinned kind, checked offline.

No node image can be pulled here, so the cluster itself cannot be created; instead
e2e/kind/check-config.sh runs kind's own config loader and validation (the code
`kind create cluster --config` runs before creating anything) at the version in
e2e/cluster/versions.env, and these tests check what it understood.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from e2e.kube import CACHE, VERSIONS

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "e2e" / "kind" / "check-config.sh"
CONFIG = ROOT / "e2e" / "kind" / "kind-config.yaml"

pytestmark = pytest.mark.skipif(
    shutil.which("go") is None, reason="needs the Go toolchain (as make cluster-bins does)"
)


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK), str(path)], capture_output=True, text=True, timeout=900)


def test_kind_config_is_valid_for_the_pinned_kind():
    proc = check(CONFIG)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles.count("control-plane") == 1 and roles.count("worker") == 2, roles
    # Every node runs the image this kind version was released with for Kubernetes v1.34,
    # pinned by digest.
    images = {n["image"] for n in cfg["nodes"]}
    assert images == {cfg["defaultImage"]}, (images, cfg["defaultImage"])
    assert re.fullmatch(r"kindest/node:v1\.34\.\d+@sha256:[0-9a-f]{64}", cfg["defaultImage"])
    assert cfg["apiServerAddress"] == "127.0.0.1"
    # Worker zones, so the engine's topology spread has something to spread over.
    workers = [n for n in cfg["nodes"] if n["role"] == "worker"]
    zones = {n.get("labels", {}).get("topology.kubernetes.io/zone") for n in workers}
    assert len(zones) == 2 and None not in zones


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("nodes:\n- role: worker\n", "at least one control-plane"),
        ("nodes:\n- role: control-plane\n  imagee: x\n", "field imagee not found"),
        ("nodes:\n- role: master\n", "master"),
        ("networking:\n  ipFamily: ipv5\n", "ipv5"),
    ],
)
def test_kind_config_check_rejects_invalid_configs(tmp_path: Path, body: str, error: str):
    bad = tmp_path / "kind.yaml"
    bad.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n" + body)
    proc = check(bad)
    assert proc.returncode == 1
    assert error in proc.stderr


def test_kind_binary_matches_the_pin():
    kind = CACHE / "bin" / "kind"
    if not kind.exists():
        pytest.skip("kind not built yet (make cluster-bins)")
    out = subprocess.run([str(kind), "version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"kind {VERSIONS['KIND_VERSION']} ")
