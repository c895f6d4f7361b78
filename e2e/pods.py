"""Clients inside the cluster, for the tests that need real pods (the kind tier).

A `Toolbox` is a pod from the engine image (Python 3.11 with the engine's libraries) in the test's
namespace: requests go from there to Services by their DNS names, as an application's would. A
`LoadRun` is a pod running e2e/load/loadgen.py against a Service; its result is the JSON line the
load generator prints at the end.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.kube import IMAGES, Cluster, wait_until

LOADGEN = Path(__file__).resolve().parent / "load" / "loadgen.py"
RESULT_PREFIX = "LOADGEN-RESULT "

# Runs in the toolbox: one HTTP request, the answer as JSON {status, headers, body} on stdout.
HTTP = """
import json, sys, urllib.error, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as resp:
        status, headers, raw = resp.status, dict(resp.headers), resp.read()
except urllib.error.HTTPError as err:
    status, headers, raw = err.code, dict(err.headers), err.read()
try:
    parsed = json.loads(raw)
except ValueError:
    parsed = raw.decode(errors="replace")
print(json.dumps({"status": status, "headers": headers, "body": parsed}))
"""


def _pod(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "e2e-client"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
            "containers": [
                {
                    "name": "client",
                    "image": IMAGES["engine"],
                    "imagePullPolicy": "IfNotPresent",
                    "command": command,
                    "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}},
                    **extra,
                }
            ],
        },
    }


@dataclass
class Toolbox:
    cluster: Cluster
    namespace: str
    name: str = "toolbox"

    def start(self) -> Toolbox:
        sleep = ["python3", "-c", "import time; time.sleep(3600)"]
        self.cluster.apply(_pod(self.name, sleep), self.namespace)
        self.cluster.kubectl(
            "wait", "pod", self.name, "-n", self.namespace, "--for=condition=Ready", "--timeout=120s"
        )
        return self

    def python(self, code: str, *args: str, timeout: float = 120) -> str:
        argv = ["exec", self.name, "-n", self.namespace, "--", "python3", "-c", code, *args]
        return self.cluster.run("kubectl", *argv, timeout=timeout).stdout

    def http(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """{status, headers, body} of one request sent from inside the cluster."""
        return json.loads(self.python(HTTP, method, url, json.dumps(body) if body is not None else ""))


@dataclass
class LoadRun:
    """One run of e2e/load/loadgen.py as a pod; `start`, then `result` waits for its end.

    The pod stays up after the run so that files the load generator wrote can still be read.
    """

    cluster: Cluster
    namespace: str
    args: list[str]
    name: str = ""
    node: str | None = None  # the node to run on (a fault test keeps its load off the node it stops)

    def start(self) -> LoadRun:
        self.name = self.name or f"loadgen-{secrets.token_hex(3)}"
        self.cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": self.name},
                "data": {"loadgen.py": LOADGEN.read_text()},
            },
            self.namespace,
        )
        run = 'python3 /load/loadgen.py "$@"; echo "loadgen exited $?"; exec sleep 3600'
        pod = _pod(
            self.name,
            ["sh", "-c", run, "loadgen", *self.args],
            volumeMounts=[{"name": "load", "mountPath": "/load"}],
        )
        pod["spec"]["volumes"] = [{"name": "load", "configMap": {"name": self.name}}]
        if self.node:
            pod["spec"]["nodeName"] = self.node
        self.cluster.apply(pod, self.namespace)
        wait_until(lambda: self.phase() in ("Running", "Succeeded", "Failed"), timeout=120, what=self.name)
        return self

    def phase(self) -> str:
        pod = self.cluster.get("pod", self.name, self.namespace)
        return (pod or {}).get("status", {}).get("phase", "")

    def logs(self) -> str:
        return self.cluster.kubectl("logs", self.name, "-n", self.namespace)

    def result(self, timeout: float = 900) -> dict[str, Any]:
        def finished() -> str | None:
            logs = self.logs()
            return logs if "loadgen exited" in logs or self.phase() == "Failed" else None

        logs = wait_until(finished, timeout=timeout, interval=2, what=f"{self.name} to finish")
        lines = [line for line in logs.splitlines() if line.startswith(RESULT_PREFIX)]
        assert "loadgen exited 0" in logs and lines, f"{self.name} failed:\n{logs[-3000:]}"
        return json.loads(lines[-1].removeprefix(RESULT_PREFIX))

    def file(self, path: str) -> str:
        """A file the load generator wrote (e.g. --acked-file)."""
        return self.cluster.kubectl("exec", self.name, "-n", self.namespace, "--", "cat", path)

    def stop(self) -> None:
        self.cluster.kubectl("delete", "pod,configmap", self.name, "-n", self.namespace, "--wait=false")


def pod_names(cluster: Cluster, namespace: str, selector: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in cluster.items("pods", namespace, selector))


def psql(cluster: Cluster, namespace: str, pod: str, sql: str) -> str:
    """Rows of `sql` run in the pod's database as the superuser (unaligned, tab-separated)."""
    argv = ["exec", pod, "-n", namespace, "-c", "postgres", "--"]
    argv += ["psql", "-U", "postgres", "-d", "brain_ai", "-AtX", "-F", "\t", "-c", sql]
    return cluster.run("kubectl", *argv).stdout.strip()


def redis_cli(cluster: Cluster, namespace: str, pod: str, *args: str) -> str:
    """redis-cli in the node's pod, authenticated with the cluster's password."""
    command = 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli "$@"'
    argv = ["exec", pod, "-n", namespace, "-c", "redis", "--", "sh", "-c", command, "redis-cli", *args]
    return cluster.run("kubectl", *argv).stdout.replace("\r", "")


def master_slots(cluster_nodes: str) -> dict[str, int]:
    """Slots held by each live master in `CLUSTER NODES` output (migrating-slot markers skipped)."""
    masters: dict[str, int] = {}
    for line in cluster_nodes.splitlines():
        f = line.split()
        if len(f) >= 8 and "master" in f[2] and "fail" not in f[2]:
            ranges = [r.split("-") for r in f[8:] if not r.startswith("[")]
            masters[f[0]] = sum(int(r[-1]) - int(r[0]) + 1 for r in ranges)
    return masters
