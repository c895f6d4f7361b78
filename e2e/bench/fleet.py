"""`make bench-operator`: one operator process and a fleet of BrainAIClusters on a kwok cluster sized
for it (its own: `brain-ai-fleet`, started here and deleted afterwards).

Applies N clusters (engine-only by default; `--data-tier` adds PostgreSQL and Redis to each), waits
until every one is Ready, stays idle, deletes one child of each owned kind of one cluster, and prints:
- seconds from the first apply until all are Ready;
- the operator's peak RSS (VmHWM) and CPU seconds, during convergence and while idle;
- API requests by verb during convergence and during the idle window: the operator's own
  (`brain_ai_operator_api_requests_total`) and everyone's (the API server's `apiserver_request_total`);
- passes and their triggers while idle (`brain_ai_operator_reconciles_total`, `_triggers_total`);
- seconds until each deleted child is back.

    python -m e2e.bench.fleet [--clusters 1000] [--data-tier] [--workers 4] [--idle 120] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from e2e.conftest import OPERATOR_LOG, run_operator
from e2e.kube import CACHE, CLUSTER_SCRIPTS, REPO, Cluster, Tier, to_yaml

NAME = "brain-ai-fleet"
NAMESPACE = "fleet"
PODS_PER_NODE = 250
REPAIRED_KINDS = [
    ("serviceaccount", "{c}-engine"),
    ("configmap", "{c}-engine-config"),
    ("deployment", "{c}-engine"),
    ("service", "{c}-engine"),
    ("poddisruptionbudget", "{c}-engine"),
    ("networkpolicy", "{c}-engine"),
]


def say(message: str) -> None:
    print(f"[fleet] {message}", file=sys.stderr, flush=True)


def manifests(count: int, data_tier: bool) -> list[dict[str, Any]]:
    spec: dict[str, Any] = {"strategy": "balanced"}
    if data_tier:
        spec |= {"postgres": {"enabled": True, "replicas": 1}, "redis": {"enabled": True}}
    return [
        {
            "apiVersion": "brainai.io/v1alpha1",
            "kind": "BrainAICluster",
            "metadata": {"name": f"fleet-{i:04d}", "namespace": NAMESPACE},
            "spec": spec,
        }
        for i in range(count)
    ]


def pods_per_cluster(data_tier: bool) -> int:
    return 3 + 2 + 6 + 1 if data_tier else 1  # engines at the HPA's floor, primary + replica, Redis, its Job


@contextlib.contextmanager
def fleet_cluster(nodes: int) -> Iterator[Cluster]:
    os.environ.update(
        BRAINAI_CLUSTER_NAME=NAME,
        BRAINAI_CLUSTER_NODES=str(nodes),
        BRAINAI_NODE_PODS=str(PODS_PER_NODE),
        BRAINAI_NODE_CPU="512",
        BRAINAI_NODE_MEMORY="4Ti",
        BRAINAI_SERVICE_CIDR="10.96.0.0/16",
        BRAINAI_CONTROLLER_CONCURRENCY="50",
    )
    tier = Tier("kwok", CLUSTER_SCRIPTS, CACHE / "kwok" / "clusters" / NAME / "kubeconfig.yaml")
    say(f"starting kwok cluster {NAME} with {nodes} nodes of {PODS_PER_NODE} pods")
    cluster = tier.start()
    try:
        yield cluster
    finally:
        say(f"deleting cluster {NAME}")
        tier.stop()


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()
    except OSError:
        return ""


SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? ([0-9.e+-]+)$", re.M)


def series(text: str, name: str, label: str | None) -> Counter[str]:
    """Sum of the samples of `name` by the value of `label` (one bucket "" when None)."""
    out: Counter[str] = Counter()
    for metric, labels, value in SAMPLE.findall(text):
        if metric != name:
            continue
        key = ""
        if label:
            found = re.search(rf'{label}="([^"]*)"', labels or "")
            key = found.group(1) if found else ""
        out[key] += float(value)
    return out


def process_figures(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return {"peak_rss_mib": round(peak, 1), "rss_mib": round(rss, 1), "cpu_s": round(cpu, 1)}


class Snapshot:
    def __init__(self, cluster: Cluster, port: int, pid: int) -> None:
        operator_metrics = scrape(port)
        server_metrics = cluster.kubectl("get", "--raw", "/metrics")
        self.operator_requests = series(operator_metrics, "brain_ai_operator_api_requests_total", "verb")
        self.server_requests = series(server_metrics, "apiserver_request_total", "verb")
        self.reconciles = series(operator_metrics, "brain_ai_operator_reconciles_total", "result")
        self.triggers = series(operator_metrics, "brain_ai_operator_triggers_total", "reason")
        self.skipped = series(operator_metrics, "brain_ai_operator_skipped_applies_total", None)[""]
        self.process = process_figures(pid)
        self.at = time.monotonic()


def delta(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    return {k: round(after[k] - before[k]) for k in sorted(after) if round(after[k] - before[k])}


def ready_count(port: int) -> int:
    """Clusters the operator last saw Ready (its own gauge: polling the API server for 1,000 objects
    would load it more than the operator does)."""
    return round(series(scrape(port), "brain_ai_operator_clusters", "phase")["Ready"])


def apply_all(cluster: Cluster, objects: list[dict[str, Any]], chunk: int = 100, clients: int = 4) -> None:
    """As several users (or a GitOps tool) would: a few kubectl processes at once."""
    chunks = [objects[i : i + chunk] for i in range(0, len(objects), chunk)]
    with ThreadPoolExecutor(clients) as pool:
        list(
            pool.map(
                lambda part: cluster.kubectl("apply", "--server-side", "-f", "-", input=to_yaml(part)), chunks
            )
        )


def repair_times(cluster: Cluster, name: str, timeout: float = 60) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for kind, pattern in REPAIRED_KINDS:
        child = pattern.format(c=name)
        uid = cluster.kubectl("get", kind, child, "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}")
        started = time.monotonic()
        cluster.kubectl("delete", kind, child, "-n", NAMESPACE, "--wait=false")
        out[kind] = None
        while time.monotonic() - started < timeout:
            now = cluster.kubectl(
                "get", kind, child, "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}", "--ignore-not-found"
            )
            if now and now != uid:
                out[kind] = round(time.monotonic() - started, 2)
                break
            time.sleep(0.1)
    return out


def run(clusters: int, data_tier: bool, workers: int, idle: float) -> dict[str, Any]:
    nodes = max(3, math.ceil(clusters * pods_per_cluster(data_tier) / (PODS_PER_NODE * 0.8)))
    with fleet_cluster(nodes) as cluster:
        crd = REPO / "crds" / "brainai.io_brainaiclusters.yaml"
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
        cluster.wait_established("brainaiclusters.brainai.io")
        cluster.kubectl("create", "namespace", NAMESPACE)
        args = ["--workers", str(workers), "--namespace", NAMESPACE, "--resync-seconds", "300"]
        with run_operator(cluster.env, *args, "--log-level", "warning") as proc:
            metrics_port = proc.metrics_port  # type: ignore[attr-defined]
            start = Snapshot(cluster, metrics_port, proc.pid)
            say(f"applying {clusters} BrainAIClusters{' with PostgreSQL and Redis' if data_tier else ''}")
            apply_all(cluster, manifests(clusters, data_tier))
            applied_s = time.monotonic() - start.at
            ready, last_report = 0, 0.0
            while ready < clusters:
                if time.monotonic() - start.at > 1800:
                    raise RuntimeError(
                        f"only {ready} of {clusters} Ready after 30 minutes; see {OPERATOR_LOG}"
                    )
                time.sleep(1)
                ready = ready_count(metrics_port)
                if time.monotonic() - last_report > 10:
                    say(f"{ready}/{clusters} Ready after {time.monotonic() - start.at:.0f}s")
                    last_report = time.monotonic()
            converged = Snapshot(cluster, metrics_port, proc.pid)
            say(f"all Ready after {converged.at - start.at:.1f}s; idle for {idle:.0f}s")
            time.sleep(idle)
            idled = Snapshot(cluster, metrics_port, proc.pid)
            repaired = repair_times(cluster, "fleet-0000")
            final = process_figures(proc.pid)
    return {
        "clusters": clusters,
        "data_tier": data_tier,
        "workers": workers,
        "nodes": nodes,
        "applied_s": round(applied_s, 1),
        "all_ready_s": round(converged.at - start.at, 1),
        "operator_peak_rss_mib": final["peak_rss_mib"],
        "operator_cpu_s_converging": round(converged.process["cpu_s"] - start.process["cpu_s"], 1),
        "operator_cpu_s_idle": round(idled.process["cpu_s"] - converged.process["cpu_s"], 1),
        "operator_requests_converging": delta(converged.operator_requests, start.operator_requests),
        "operator_requests_idle": delta(idled.operator_requests, converged.operator_requests),
        "apiserver_requests_converging": delta(converged.server_requests, start.server_requests),
        "apiserver_requests_idle": delta(idled.server_requests, converged.server_requests),
        "passes_idle": delta(idled.reconciles, converged.reconciles),
        "triggers_idle": delta(idled.triggers, converged.triggers),
        "skipped_applies_converging": round(converged.skipped - start.skipped),
        "idle_s": idle,
        "repair_s": repaired,
    }


def render(r: dict[str, Any]) -> str:
    tier = "with PostgreSQL + Redis" if r["data_tier"] else "engine-only"
    lines = [
        f"{r['clusters']} {tier} BrainAIClusters, {r['workers']} workers, {r['nodes']} kwok nodes",
        f"  all Ready            {r['all_ready_s']:.1f} s after the first apply "
        f"(applying took {r['applied_s']:.1f} s)",
        f"  operator peak RSS    {r['operator_peak_rss_mib']:.0f} MiB",
        f"  operator CPU         {r['operator_cpu_s_converging']:.1f} s converging, "
        f"{r['operator_cpu_s_idle']:.1f} s idle",
        f"  operator requests    converging {r['operator_requests_converging']}",
        f"                       idle {r['idle_s']:.0f} s {r['operator_requests_idle'] or 'none'}",
        f"  API server requests  converging {r['apiserver_requests_converging']}",
        f"                       idle {r['apiserver_requests_idle']}",
        f"  passes while idle    {r['passes_idle'] or 'none'}, "
        f"triggered by {r['triggers_idle'] or 'nothing'}",
        f"  deleted child back   {r['repair_s']} (seconds)",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--data-tier", action="store_true", help="PostgreSQL and Redis in every cluster")
    parser.add_argument("--workers", type=int, default=16, help="the operator's --workers")
    parser.add_argument("--idle", type=float, default=120.0, help="seconds of idle measured after all Ready")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.clusters, args.data_tier, args.workers, args.idle)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
