"""`make bench-operator`: one operator process and a fleet of BrainAIClusters on a kwok cluster sized
for it (its own: `brain-ai-fleet`, started here and deleted afterwards).

Applies N clusters (engine-only by default; `--data-tier` adds PostgreSQL and Redis to each), waits
until every one is Ready, stays idle, deletes one child of each owned kind of one cluster, and prints:
- seconds from the first apply until all are Ready;
- the operator's peak RSS (VmHWM) and CPU seconds, during convergence and while idle;
- API requests by verb during convergence and during the idle window: the operator's own
  (`brain_ai_operator_api_requests_total`) and everyone's (the API server's `apiserver_request_total`);
- passes and their triggers while idle (`brain_ai_operator_reconciles_total`, `_triggers_total`);
- seconds until each deleted child is back;
- a baseline first (`--no-baseline` skips it): on a fresh cluster of the same size, the same children
  applied by kubectl with no operator, and the seconds until their workloads are ready, with the
  control plane's CPU; the fleet's time to Ready is also given as a ratio to it;
- where the time to Ready went: for each stage of an engine's way up (cluster created, Deployment
  created, Pod created, scheduled, Ready, Deployment Available, cluster Ready), when it was reached
  after the first apply and how long it took after the stage before (p50 / p90 / max over clusters).

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

from brainai_operator import api
from brainai_operator.clock import parse_rfc3339
from brainai_operator.resources import engine, postgres, redis
from brainai_operator.resources.cluster import build_desired
from brainai_operator.resources.common import COMPONENT_LABEL, INSTANCE_LABEL
from brainai_operator.strategies import resolve
from e2e.conftest import OPERATOR_LOG, run_operator
from e2e.kube import CACHE, CLUSTER_SCRIPTS, REPO, Cluster, Tier, to_yaml, wait_until
from e2e.load.loadgen import percentile

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
        spec |= {"postgres": {"enabled": True, "readReplicas": 1}, "redis": {"enabled": True}}
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
        BRAINAI_CLIENT_QPS=os.environ.get("BRAINAI_CLIENT_QPS", "500"),
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


COMPONENTS = ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok-controller")


def component_cpu() -> dict[str, float]:
    """CPU seconds so far of each control-plane process of the fleet's cluster."""
    out: dict[str, float] = {}
    marker = f"/clusters/{NAME}/bin/"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv0 = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
            if marker in argv0 and (name := argv0.rsplit("/", 1)[1]) in COMPONENTS:
                out[name] = out.get(name, 0.0) + process_figures(int(proc.name))["cpu_s"]
        except OSError:
            continue  # gone meanwhile
    return out


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
        self.components = component_cpu()
        self.at = time.monotonic()


def delta(after: Counter[str] | dict[str, float], before: Counter[str] | dict[str, float]) -> dict[str, int]:
    return {
        k: round(after[k] - before.get(k, 0)) for k in sorted(after) if round(after[k] - before.get(k, 0))
    }


def progress(port: int) -> tuple[int, int]:
    """Clusters the operator last saw Ready and passes queued (its own gauges: polling the API server
    for 1,000 objects would load it more than the operator does)."""
    text = scrape(port)
    ready = series(text, "brain_ai_operator_clusters", "phase")["Ready"]
    return round(ready), round(series(text, "brain_ai_operator_queue_depth", None)[""])


def apply_all(cluster: Cluster, objects: list[dict[str, Any]], chunk: int = 100, clients: int = 4) -> None:
    """As several users (or a GitOps tool) would: a few kubectl processes at once."""
    chunks = [objects[i : i + chunk] for i in range(0, len(objects), chunk)]
    with ThreadPoolExecutor(clients) as pool:
        list(
            pool.map(
                lambda part: cluster.run(
                    "kubectl", "apply", "--server-side", "-f", "-", input=to_yaml(part), timeout=900
                ),
                chunks,
            )
        )


STAGES = ["created", "deployment", "pod", "scheduled", "pod ready", "available", "ready"]
SPREAD = [("p50", 50), ("p90", 90), ("max", 100)]


def stamp(text: str | None) -> float | None:
    return parse_rfc3339(text).timestamp() if text else None


def condition_time(obj: dict[str, Any], kind: str) -> float | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status") == "True":
            return stamp(c.get("lastTransitionTime"))
    return None


def stage_times(cluster: Cluster) -> dict[str, dict[str, float | None]]:
    """Per cluster, when each stage of its engine's way to Ready was reached (API timestamps, 1 s)."""

    engines = f"{COMPONENT_LABEL}={engine.COMPONENT}"

    def engine_items(kind: str) -> list[dict[str, Any]]:
        return cluster.get(kind, namespace=NAMESPACE, selector=engines)["items"]

    out: dict[str, dict[str, float | None]] = {}
    for bac in cluster.get("brainaiclusters.brainai.io", namespace=NAMESPACE)["items"]:
        out[bac["metadata"]["name"]] = dict.fromkeys(STAGES, None) | {
            "created": stamp(bac["metadata"]["creationTimestamp"]),
            "ready": condition_time(bac, "Ready"),
        }
    for deploy in engine_items("deployments"):
        if (times := out.get(deploy["metadata"]["labels"][INSTANCE_LABEL])) is not None:
            times["deployment"] = stamp(deploy["metadata"]["creationTimestamp"])
            times["available"] = condition_time(deploy, "Available")
    for pod in engine_items("pods"):
        if (times := out.get(pod["metadata"]["labels"][INSTANCE_LABEL])) is None:
            continue
        created = stamp(pod["metadata"]["creationTimestamp"])
        if times["pod"] is None or (created is not None and created < times["pod"]):  # the first engine pod
            times["pod"] = created
            times["scheduled"] = condition_time(pod, "PodScheduled")
            times["pod ready"] = condition_time(pod, "Ready")
    return out


def timeline(times: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float]]:
    """p50 / p90 / max of each stage's time after the first apply and after the stage before it."""
    first = min((t["created"] for t in times.values() if t["created"] is not None), default=0.0)

    def spread(prefix: str, values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {f"{prefix}_{name}": percentile(ordered, pct) for name, pct in SPREAD} if ordered else {}

    out: dict[str, dict[str, float]] = {}
    for before, stage in zip([None, *STAGES], STAGES, strict=False):
        at = [t[stage] - first for t in times.values() if t[stage] is not None]
        step = [t[stage] - t[before] for t in times.values() if before and None not in (t[stage], t[before])]
        out[stage] = spread("at", at) | spread("step", step)
    return out


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


def children(count: int, data_tier: bool) -> list[dict[str, Any]]:
    """What the operator's builders make of the fleet's clusters, without owners (fixed passwords)."""
    passwords = {
        "postgres": dict.fromkeys(postgres.SECRET_KEYS, "baseline"),
        "redis": dict.fromkeys(redis.SECRET_KEYS, "baseline"),
    }
    out: list[dict[str, Any]] = []
    for bac in manifests(count, data_tier):
        resolved = resolve(api.BrainAIClusterSpec.model_validate(bac["spec"]))
        out += build_desired(bac["metadata"]["name"], NAMESPACE, resolved, passwords)
    return out


def workloads_ready(cluster: Cluster) -> int:
    found = json.loads(cluster.kubectl("get", "deployments,statefulsets", "-n", NAMESPACE, "-o", "json"))
    return sum(
        1
        for w in found["items"]
        if (w.get("status") or {}).get("readyReplicas", 0) >= (w["spec"].get("replicas") or 1)
    )


def baseline(clusters: int, data_tier: bool, nodes: int) -> dict[str, Any]:
    """The same children applied by kubectl, no operator: how fast this cluster itself gets there."""
    objects = children(clusters, data_tier)
    want = sum(1 for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
    with fleet_cluster(nodes) as cluster:
        cluster.kubectl("create", "namespace", NAMESPACE)
        before = component_cpu()
        started = time.monotonic()
        say(f"baseline: {len(objects)} children of {clusters} clusters applied by kubectl, no operator")
        apply_all(cluster, objects)
        applied = time.monotonic() - started
        wait_until(
            lambda: workloads_ready(cluster) >= want, timeout=1800, interval=3, what=f"{want} workloads ready"
        )
        took = time.monotonic() - started
        say(f"baseline: {want} workloads ready after {took:.1f}s")
        return {
            "applied_s": round(applied, 1),
            "all_ready_s": round(took, 1),
            "cpu_s": delta(component_cpu(), before),
        }


def run(clusters: int, data_tier: bool, workers: int, idle: float, with_baseline: bool) -> dict[str, Any]:
    nodes = max(3, math.ceil(clusters * pods_per_cluster(data_tier) / (PODS_PER_NODE * 0.8)))
    floor = baseline(clusters, data_tier, nodes) if with_baseline else None
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
                ready, queued = progress(metrics_port)
                if time.monotonic() - last_report > 10:
                    took = time.monotonic() - start.at
                    say(f"{ready}/{clusters} Ready after {took:.0f}s, {queued} passes queued")
                    last_report = time.monotonic()
            converged = Snapshot(cluster, metrics_port, proc.pid)
            say(f"all Ready after {converged.at - start.at:.1f}s; idle for {idle:.0f}s")
            time.sleep(idle)
            idled = Snapshot(cluster, metrics_port, proc.pid)
            stages = timeline(stage_times(cluster))
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
        "control_plane_cpu_s_converging": delta(converged.components, start.components),
        "operator_requests_converging": delta(converged.operator_requests, start.operator_requests),
        "operator_requests_idle": delta(idled.operator_requests, converged.operator_requests),
        "apiserver_requests_converging": delta(converged.server_requests, start.server_requests),
        "apiserver_requests_idle": delta(idled.server_requests, converged.server_requests),
        "passes_converging": delta(converged.reconciles, start.reconciles),
        "triggers_converging": delta(converged.triggers, start.triggers),
        "passes_idle": delta(idled.reconciles, converged.reconciles),
        "triggers_idle": delta(idled.triggers, converged.triggers),
        "skipped_applies_converging": round(converged.skipped - start.skipped),
        "idle_s": idle,
        "repair_s": repaired,
        "stages": stages,
        "baseline": floor,
    }


def render(r: dict[str, Any]) -> str:
    tier = "with PostgreSQL + Redis" if r["data_tier"] else "engine-only"
    lines = [
        f"{r['clusters']} {tier} BrainAIClusters, {r['workers']} workers, {r['nodes']} kwok nodes",
        f"  all Ready            {r['all_ready_s']:.1f} s after the first apply "
        f"(applying took {r['applied_s']:.1f} s)",
    ]
    if r["baseline"]:
        b = r["baseline"]
        ratio = r["all_ready_s"] / b["all_ready_s"]
        lines.append(
            f"  without the operator {b['all_ready_s']:.1f} s until the same children applied by kubectl "
            f"are ready (applying took {b['applied_s']:.1f} s); with it {ratio:.2f}x"
        )
        lines.append(f"                       control-plane CPU s {b['cpu_s']}")
    lines += [
        f"  control-plane CPU    {r['control_plane_cpu_s_converging']} s converging",
        f"  operator peak RSS    {r['operator_peak_rss_mib']:.0f} MiB",
        f"  operator CPU         {r['operator_cpu_s_converging']:.1f} s converging, "
        f"{r['operator_cpu_s_idle']:.1f} s idle",
        f"  operator requests    converging {r['operator_requests_converging']}",
        f"                       idle {r['idle_s']:.0f} s {r['operator_requests_idle'] or 'none'}",
        f"  API server requests  converging {r['apiserver_requests_converging']}",
        f"                       idle {r['apiserver_requests_idle']}",
        f"  passes converging    {r['passes_converging']}, triggered by {r['triggers_converging']}",
        f"  passes while idle    {r['passes_idle'] or 'none'}, "
        f"triggered by {r['triggers_idle'] or 'nothing'}",
        f"  deleted child back   {r['repair_s']} (seconds)",
        "  stages (s)           after the first apply p50/p90/max    after the stage before p50/p90/max",
    ]
    for stage, f in r["stages"].items():
        at, step = ("/".join(f"{f[k]:.0f}" for k in f if k.startswith(p)) or "-" for p in ("at_", "step_"))
        lines.append(f"    {stage:<18} {at:<38} {step}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--data-tier", action="store_true", help="PostgreSQL and Redis in every cluster")
    parser.add_argument("--workers", type=int, default=16, help="the operator's --workers")
    parser.add_argument("--idle", type=float, default=120.0, help="seconds of idle measured after all Ready")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the run without the operator (the same children applied by kubectl on a fresh cluster)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.clusters, args.data_tier, args.workers, args.idle, not args.no_baseline)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
