"""A small handle on a Kubernetes cluster for tests: real kubectl and helm, a few waits.

Everything goes through the real binaries so tests exercise what users run. The suite runs on one
of two tiers, chosen by BRAINAI_E2E_TIER: `kwok` (default; `e2e/cluster/up.sh`: a real control
plane whose pods kwok only pretends to run) or `kind` (`e2e/kind/up.sh`: real nodes, real pods,
the project's images). A reachable `KUBECONFIG` of the same tier is used as is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPTS = REPO / "e2e" / "cluster"
KIND_SCRIPTS = REPO / "e2e" / "kind"
# Where e2e/cluster/build.sh keeps binaries and pinned manifests (same default as the scripts).
CACHE = Path(os.environ.get("BRAINAI_CACHE", Path.home() / ".cache" / "brain-ai"))
# The project's Docker daemon (e2e/images/docker.sh), home of the images and the kind nodes.
DOCKER_HOST = os.environ.get("BRAINAI_DOCKER_HOST", "unix:///run/brain-ai/docker.sock")
# The project's images (e2e/images/build.sh builds them; e2e/kind/up.sh loads them into kind).
VERSION = re.search(r'^version = "(.+)"$', (REPO / "operator" / "pyproject.toml").read_text(), re.M).group(1)
IMAGES = {
    "engine": f"brain-ai/engine:{VERSION}",
    "operator": f"brain-ai/operator:{VERSION}",
    "postgres": "brain-ai/postgres:15",
    "redis": "brain-ai/redis:7.0",
}
TIERS = ("kwok", "kind")
TIER = os.environ.get("BRAINAI_E2E_TIER", "kwok")
# The pinned versions of e2e/cluster/versions.env (KEY=value lines).
VERSIONS: dict[str, str] = dict(
    re.findall(r"^([A-Z0-9_]+)=(\S+)$", (CLUSTER_SCRIPTS / "versions.env").read_text(), re.M)
)

T = TypeVar("T")


class KubectlError(RuntimeError):
    """kubectl or helm exited non-zero; `stderr` holds its message."""

    def __init__(self, args: list[str], returncode: int, stderr: str):
        super().__init__(f"{' '.join(args)} exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def wait_until(
    probe: Callable[[], T | None],
    timeout: float = 60,
    interval: float = 0.5,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def own_timeout(args: Iterable[str]) -> float:
    """Seconds of a `--timeout=1m30s` or `--timeout 90s` argument (Go duration), 0 when none."""
    argv = list(args)
    for i, arg in enumerate(argv):
        value = arg.removeprefix("--timeout=") if arg.startswith("--timeout=") else None
        if arg == "--timeout" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None:
            return sum(float(n) * SECONDS[unit] for n, unit in DURATION.findall(value))
    return 0


def to_yaml(manifests: dict[str, Any] | Iterable[dict[str, Any]]) -> str:
    docs = [manifests] if isinstance(manifests, dict) else list(manifests)
    return yaml.safe_dump_all(docs, sort_keys=False)


@dataclass
class Cluster:
    """A reachable cluster: its kubeconfig and the directory holding kubectl/helm."""

    kubeconfig: Path
    bin_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), DOCKER_HOST=DOCKER_HOST)
        if self.bin_dir:
            self.env["PATH"] = f"{self.bin_dir}{os.pathsep}{self.env.get('PATH', '')}"

    def run(
        self, tool: str, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run `tool`; a `--timeout=` of its own (kubectl wait, rollout status, helm) extends ours, so
        the tool reports its own timeout rather than being killed before it."""
        argv = [tool, *args]
        timeout = max(timeout, own_timeout(args) + 30)
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise KubectlError(argv, proc.returncode, proc.stderr)
        return proc

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return self.run("kubectl", *args, input=input, check=check).stdout

    def helm(self, *args: str, check: bool = True) -> str:
        return self.run("helm", *args, check=check).stdout

    def apply(
        self,
        manifests: dict[str, Any] | Iterable[dict[str, Any]],
        namespace: str | None = None,
        server_side: bool = True,
    ) -> str:
        """Apply manifests the way a user would (server-side apply by default)."""
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", "--field-manager=brainai-e2e"]
        if namespace:
            args += ["-n", namespace]
        return self.kubectl(*args, input=to_yaml(manifests))

    def patch(
        self, kind: str, name: str, namespace: str, patch: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """A JSON merge patch, as `kubectl patch --type=merge` sends it."""
        return self.run(
            "kubectl",
            "patch",
            kind,
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps(patch),
            check=check,
        )

    def get(
        self, kind: str, name: str | None = None, namespace: str | None = None, selector: str | None = None
    ) -> dict[str, Any] | None:
        """The object (or list) as JSON, or None when it does not exist."""
        args = ["get", kind, "-o", "json"]
        if name:
            args.insert(2, name)
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        proc = self.run("kubectl", *args, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise KubectlError(["kubectl", *args], proc.returncode, proc.stderr)
        return json.loads(proc.stdout)

    def items(self, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        found = self.get(kind, namespace=namespace, selector=selector)
        return found["items"] if found else []

    def wait_for(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        predicate: Callable[[dict], Any],
        timeout: float = 90,
        what: str | None = None,
    ) -> dict[str, Any]:
        """Poll one object until `predicate(obj)` holds; return the object."""

        def probe() -> dict[str, Any] | None:
            obj = self.get(kind, name, namespace)
            return obj if obj is not None and predicate(obj) else None

        return wait_until(probe, timeout=timeout, what=what or f"{kind}/{name} in {namespace}")

    def wait_established(self, crd: str, timeout: float = 60) -> dict[str, Any]:
        """Poll a CRD until Established; `kubectl wait` fails outright while its conditions are still null."""
        return self.wait_for(
            "crd",
            crd,
            None,
            lambda c: any(
                x["type"] == "Established" and x["status"] == "True"
                for x in (c.get("status") or {}).get("conditions") or []
            ),
            timeout=timeout,
            what=f"crd/{crd} to be Established",
        )

    def wait_gone(self, kind: str, name: str, namespace: str | None, timeout: float = 60) -> None:
        wait_until(
            lambda: self.get(kind, name, namespace) is None,
            timeout=timeout,
            what=f"{kind}/{name} to be deleted",
        )

    def reachable(self) -> bool:
        try:
            return self.run("kubectl", "get", "--raw", "/readyz", check=False, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def tier(self) -> str:
        """`kwok` when kwok answers for the nodes, else `kind` (real kubelets)."""
        nodes = self.get("nodes")["items"]
        fake = [n for n in nodes if n["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") == "fake"]
        return "kwok" if fake else "kind"


@dataclass(frozen=True)
class Tier:
    """How to start and stop one tier's cluster, and where its kubeconfig lives."""

    name: str
    scripts: Path
    kubeconfig: Path

    def start(self) -> Cluster:
        """Run the tier's up.sh (builds or reuses what it needs) and read the exports it prints."""
        up = self.scripts / "up.sh"
        proc = subprocess.run([str(up)], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"{up.relative_to(REPO)} failed:\n{proc.stderr[-4000:]}")
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in proc.stdout.splitlines()
            if line.startswith("export ")
        )
        bin_dir = exports["PATH"].split(":", 1)[0]
        return Cluster(kubeconfig=Path(exports["KUBECONFIG"]), bin_dir=Path(bin_dir))

    def stop(self) -> None:
        subprocess.run([str(self.scripts / "down.sh")], check=True, timeout=600)


CLUSTER_NAME = os.environ.get("BRAINAI_CLUSTER_NAME", "brain-ai")
KWOK = Tier("kwok", CLUSTER_SCRIPTS, CACHE / "kwok" / "clusters" / CLUSTER_NAME / "kubeconfig.yaml")
KIND = Tier("kind", KIND_SCRIPTS, CACHE / "kind" / "kubeconfig")
