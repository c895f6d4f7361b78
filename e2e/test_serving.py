"""Engines serving from the data tiers the operator runs, and through their faults (kind tier).

One BrainAICluster for the module: two engine pods sharing a PostgreSQL primary with two streaming
replicas and a 6-node Redis Cluster, all from the project's images. Requests come from a pod in
the cluster, through Service DNS names, as an application's would. The fault tests come last, in
file order, each leaving the cluster healthy again.

The engines' contract when a store fails: reads go on, writes that cannot be made durable answer
503 with Retry-After (never a silent loss), and nothing acknowledged is lost. Redis is a cache and
change bus the engines can do without for a while, so losing a Redis node costs clients nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest

from e2e.kube import Cluster, KubectlError, wait_until
from e2e.pods import LoadRun, Toolbox, pod_names, psql, redis_cli
from e2e.test_operator import cluster_manifest, wait_ready

pytestmark = [pytest.mark.kind, pytest.mark.usefixtures("operator")]

NAME = "shared"
SPEC = {
    "autoscaling": {"enabled": False},
    "engine": {"replicas": 2},
    "postgres": {"enabled": True, "readReplicas": 2, "synchronous": True},
    "redis": {"enabled": True, "masters": 3, "replicasPerMaster": 1},
}
ENGINES = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=engine"
# The nodes (StatefulSet pods), not the pods of the Job that forms the cluster.
NODE_POD = "statefulset.kubernetes.io/pod-name"
REDIS = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=redis,{NODE_POD}"
SERVICE = f"http://{NAME}-engine:8080"
MEMBERS = [f"{NAME}-postgres-{i}" for i in range(3)]
ROLE = "brainai.io/postgres-role"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"

# Runs in the toolbox: learn a text through engine A, then search engine B until it is there.
PROPAGATION = """
import json, sys, time, urllib.parse, urllib.request
a, b, text, token = sys.argv[1:5]
req = urllib.request.Request(f"http://{a}:8080/api/v1/learn", data=json.dumps({"text": text}).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
urllib.request.urlopen(req, timeout=10).read()
acked = time.monotonic()
url = f"http://{b}:8080/api/v1/memory/search?" + urllib.parse.urlencode({"query": token})
while time.monotonic() - acked < 10:
    answer = json.loads(urllib.request.urlopen(url, timeout=10).read())
    if any(h["memory"]["content"] == text for h in answer["results"]):
        print(json.dumps({"seen_after_s": time.monotonic() - acked}))
        break
    time.sleep(0.01)
else:
    print(json.dumps({"seen_after_s": None, "last_answer": answer}))
"""


@pytest.fixture(scope="module")
def shared(cluster: Cluster, crd: str, operator: object, module_namespace: str) -> str:
    cluster.apply(cluster_manifest(NAME, SPEC), module_namespace)
    wait_ready(cluster, module_namespace, NAME, timeout=420)
    return module_namespace


@pytest.fixture(scope="module")
def toolbox(cluster: Cluster, shared: str) -> Toolbox:
    return Toolbox(cluster, shared).start()


def leader(cluster: Cluster, namespace: str) -> str:
    """The member holding Patroni's leader lock (the -rw Endpoints)."""
    return cluster.get("endpoints", f"{NAME}-postgres-rw", namespace)["metadata"]["annotations"]["leader"]


def engine_ips(cluster: Cluster, namespace: str) -> list[str]:
    return sorted(p["status"]["podIP"] for p in cluster.items("pods", namespace, ENGINES))


def test_a_text_learned_on_one_engine_pod_is_found_on_the_other_within_a_second(
    cluster: Cluster, shared: str, toolbox: Toolbox
) -> None:
    a, b = engine_ips(cluster, shared)
    delays, answers = [], []
    for i in range(5):
        token = f"zebra{secrets.token_hex(4)}"
        source, target = (a, b) if i % 2 == 0 else (b, a)
        out = json.loads(toolbox.python(PROPAGATION, source, target, f"{token} crossed the pods", token))
        delays.append(out["seen_after_s"])
        answers.append(out.get("last_answer"))
    assert None not in delays, (delays, answers)
    assert max(delays) <= 1.0, delays
    # The engines' own logs show the traffic (a summary every performance.metrics_interval, 30 s).
    for pod in pod_names(cluster, shared, ENGINES):
        wait_until(
            lambda p=pod: "/api/v1/learn 200" in cluster.kubectl("logs", p, "-n", shared),
            timeout=60,
            what=f"{pod}'s traffic summary",
        )


def test_replicas_stream_and_engines_read_through_the_ro_service(
    cluster: Cluster, shared: str, toolbox: Toolbox
) -> None:
    primary = leader(cluster, shared)
    replicas = [m for m in MEMBERS if m != primary]
    # Ready says each replica's server is up; its stream may still be catching up a moment later.
    # Patroni names each stream and its slot after the member.
    streams = (
        "select r.application_name, r.state, r.sync_state, s.slot_name from pg_stat_replication r "
        "left join pg_replication_slots s on s.active_pid = r.pid order by 1"
    )

    def expected_rows(rows: str) -> bool:  # every replica synchronous (spec.postgres.synchronous)
        return rows == "\n".join(f"{m}\tstreaming\tsync\t{m.replace('-', '_')}" for m in replicas)

    last = ""

    def both_streaming() -> bool:
        nonlocal last
        last = psql(cluster, shared, primary, streams)
        return expected_rows(last)

    try:
        wait_until(both_streaming, timeout=60)
    except TimeoutError:
        seen = []
        for replica in replicas:
            pod = cluster.get("pod", replica, shared) or {}
            try:
                receiver = psql(
                    cluster,
                    shared,
                    replica,
                    "select status, sender_host, last_msg_receipt_time from pg_stat_wal_receiver",
                )
            except KubectlError as exc:
                receiver = exc.stderr.strip()
            logs = cluster.run("kubectl", "logs", replica, "-n", shared, "--tail=30", check=False)
            seen.append(
                f"--- {replica}: {pod.get('status', {}).get('containerStatuses')}\n"
                f"wal receiver: {receiver}\n{logs.stdout}"
            )
        pytest.fail(f"replicas not all streaming; pg_stat_replication: {last!r}\n" + "\n".join(seen))
    for replica in replicas:  # the replicas' own logs say so too
        assert "started streaming WAL from primary" in cluster.kubectl("logs", replica, "-n", shared)

    token = f"okapi{secrets.token_hex(4)}"
    learned = toolbox.http("POST", f"{SERVICE}/api/v1/learn", {"text": f"{token} reached every replica"})
    assert learned["status"] in (200, 201), learned
    for replica in replicas:
        assert psql(cluster, shared, replica, "select pg_is_in_recovery()") == "t"
        wait_until(
            lambda r=replica: (
                psql(cluster, shared, r, f"select count(*) from memories where content like '{token}%'")
                == "1"
            ),
            timeout=10,
            what=f"the learned row on {replica}",
        )
    # The -ro Service selects the replicas, and the engines hold connections through it.
    endpoints = cluster.get("endpoints", f"{NAME}-postgres-ro", shared)
    ro_ips = {a["ip"] for s in endpoints["subsets"] for a in s["addresses"]}
    replica_ips = {cluster.get("pod", r, shared)["status"]["podIP"] for r in replicas}
    assert ro_ips == replica_ips
    engines = "select count(*) from pg_stat_activity where application_name like 'brain-ai %'"
    on_replicas = sum(int(psql(cluster, shared, r, engines)) for r in replicas)
    assert on_replicas >= 2, "every engine reads from a replica"


def test_every_redis_node_reports_a_healthy_cluster_by_hostname(cluster: Cluster, shared: str) -> None:
    nodes = pod_names(cluster, shared, REDIS)
    assert len(nodes) == 6
    for node in nodes:
        info = redis_cli(cluster, shared, node, "cluster", "info")
        assert "cluster_state:ok" in info and "cluster_known_nodes:6" in info, (node, info)
        assert "cluster_slots_assigned:16384" in info
        assert "Cluster state changed: ok" in cluster.kubectl("logs", node, "-n", shared)
    roles = redis_cli(cluster, shared, nodes[0], "cluster", "nodes")
    assert sum(" master " in f" {line} " or ",master " in line for line in roles.splitlines()) == 3, roles
    # Clients are redirected by stable per-pod names, not pod IPs.
    shards = redis_cli(cluster, shared, nodes[0], "cluster", "shards")
    assert f"{NAME}-redis-0.{NAME}-redis.{shared}.svc" in shards, shards


def test_the_source_documents_load_scenario(
    cluster: Cluster, shared: str, benchmark_figures: list[dict[str, object]]
) -> None:
    """The scaling guide's Artillery scenario (learn + search 70 %, concept search 30 %), shortened.

    A benchmark figure, printed in the run's summary: latency is reported, not asserted.
    """
    phases = ["--phase", "10:10", "--phase", "30:50", "--phase", "10:100"]
    run = LoadRun(cluster, shared, ["--target", SERVICE, "--scenario", "seed", *phases]).start()
    result = run.result(timeout=600)
    benchmark_figures.append({"name": "seed scenario, 2 engines on PostgreSQL + Redis (kind)", **result})
    assert result["errors"] == 0, result["error_samples"]
    assert {"learn", "memory_search", "concept_search"} <= set(result["endpoints"])


# --- faults, under a steady load ---------------------------------------------------------------


def ready(pod: dict | None) -> bool:
    conditions = (pod or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def redis_healthy(cluster: Cluster, namespace: str) -> bool:
    """Every node reports cluster_state:ok (a node whose server is not listening yet: not healthy)."""
    nodes = pod_names(cluster, namespace, REDIS)
    try:
        return len(nodes) == 6 and all(
            "cluster_state:ok" in redis_cli(cluster, namespace, n, "cluster", "info") for n in nodes
        )
    except KubectlError:
        return False


KEYS = 100
WAITED_WRITES = [line for i in range(KEYS) for line in (f"SET e2e:k{i} v{i}", "WAIT 1 2000")]


def redis_pipe(
    cluster: Cluster, namespace: str, pod: str, commands: list[str], per: int = 2
) -> list[tuple[str, ...]]:
    """Commands through one cluster-mode redis-cli connection (WAIT applies to the node the last
    write was redirected to); the replies grouped `per` command."""
    command = 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli -c'
    argv = ["exec", "-i", pod, "-n", namespace, "-c", "redis", "--", "sh", "-c", command]
    out = cluster.run("kubectl", *argv, input="\n".join(commands) + "\n").stdout.replace("\r", "")
    replies = [line for line in out.splitlines() if not line.startswith("-> Redirected")]
    assert len(replies) == len(commands), out
    return [tuple(replies[i : i + per]) for i in range(0, len(replies), per)]


def node_table(cluster: Cluster, namespace: str, pod: str) -> dict[str, tuple[str, str]]:
    """`cluster nodes` as seen from `pod`: node id -> (ip, flags)."""
    rows = {}
    for line in redis_cli(cluster, namespace, pod, "cluster", "nodes").splitlines():
        node_id, addr, flags = line.split()[:3]
        rows[node_id] = (addr.split(":")[0], flags)
    return rows


def wait_for_leader(cluster: Cluster, namespace: str, other_than: str, timeout: float) -> tuple[str, float]:
    """The new leader, and seconds until it held the lock and -rw pointed at it."""
    start = time.monotonic()

    def moved() -> str | None:
        lock = cluster.get("endpoints", f"{NAME}-postgres-rw", namespace) or {}
        holder = (lock.get("metadata", {}).get("annotations") or {}).get("leader")
        addresses = [a["ip"] for s in lock.get("subsets") or [] for a in s.get("addresses") or []]
        pod = cluster.get("pod", holder, namespace) if holder and holder != other_than else None
        return holder if pod and addresses == [pod["status"].get("podIP")] else None

    holder = wait_until(moved, timeout=timeout, interval=0.5, what=f"a leader other than {other_than}")
    return holder, time.monotonic() - start


def wait_rejoined_as_replica(cluster: Cluster, namespace: str, member: str, timeout: float) -> None:
    cluster.wait_for(
        "pod",
        member,
        namespace,
        lambda p: ready(p) and p["metadata"]["labels"].get(ROLE) == "replica",
        timeout=timeout,
        what=f"{member} back as a replica",
    )


def lost_writes(cluster: Cluster, namespace: str, run: LoadRun) -> tuple[int, list[str]]:
    acked = run.file("/tmp/acked").splitlines()
    stored = set(
        psql(cluster, namespace, leader(cluster, namespace), "select content from memories").splitlines()
    )
    return len(acked), [text for text in acked if text not in stored]


def write_load(cluster: Cluster, namespace: str, seconds: int) -> LoadRun:
    args = ["--target", SERVICE, "--scenario", "mixed", "--phase", f"{seconds}:10", "--workers", "16"]
    return LoadRun(cluster, namespace, [*args, "--retry-503", "--acked-file", "/tmp/acked"]).start()


def failover_kept_every_write(
    cluster: Cluster,
    namespace: str,
    run: LoadRun,
    name: str,
    promoted_after: float,
    figures: list[dict[str, object]],
    timeouts_before: float | None = None,
) -> None:
    """Writes were refused for a while with 503 + Retry-After, then resumed; reads never failed;
    every acknowledged write is on the new leader. `timeouts_before`: a lost node answers nothing,
    so requests in flight to it may time out at the client (10 s), up to this moment of the run."""
    result = run.result(timeout=300)
    errors = result["error_samples"]
    if timeouts_before is None:
        assert result["errors"] == 0, errors
        assert result["endpoints"]["memory_search"]["errors"] == 0
    else:
        assert all(e["error"].startswith("TimeoutError") for e in errors), errors
        late = [b for b in result["timeline"] if b["errors"] and b["t"] > timeouts_before]
        assert late == [], (late, errors)
    unavailable = [b["t"] for b in result["timeline"] if b["status_503"]]
    if unavailable:
        after = [b for b in result["timeline"] if b["t"] > max(unavailable) + 2]
        assert after and sum(b["ok"] for b in after) > 0, "writes resumed on the new leader"
    acked, lost = lost_writes(cluster, namespace, run)
    assert acked > 100 and lost == [], f"{len(lost)} of {acked} acknowledged writes lost, e.g. {lost[:3]}"
    figures.append(
        {
            "name": name,
            "promoted_after_s": round(promoted_after, 1),
            "writes_unavailable_s": len(unavailable),
            "acknowledged_writes": acked,
            "lost": len(lost),
            **({"client_timeouts": result["errors"]} if timeouts_before is not None else {}),
        }
    )


def test_postgres_leader_lost_a_replica_takes_over_and_no_acknowledged_write_is_lost(
    cluster: Cluster, shared: str, benchmark_figures: list[dict[str, object]]
) -> None:
    run = write_load(cluster, shared, 60)
    try:
        time.sleep(15)
        old = leader(cluster, shared)
        cluster.kubectl("delete", "pod", old, "-n", shared, "--wait=false")
        new, promoted_after = wait_for_leader(cluster, shared, old, timeout=60)
        assert promoted_after < 30, f"{new} took the lead after {promoted_after:.1f} s"
        failover_kept_every_write(
            cluster,
            shared,
            run,
            "PostgreSQL leader pod deleted (kind, synchronous)",
            promoted_after,
            benchmark_figures,
        )
        # The former leader comes back as a replica of the new one (rewound if it had diverged).
        wait_rejoined_as_replica(cluster, shared, old, timeout=180)
        bac = cluster.wait_for(
            "bac", NAME, shared, lambda b: b["status"].get("postgres", {}).get("primary") == new
        )
        assert bac["status"]["postgres"]["formerPrimary"] == old
        events = cluster.kubectl(
            "get", "events", "-n", shared, "--field-selector", f"involvedObject.name={NAME}"
        )
        assert "FailedOver" in events or "FailingOver" in events, events
    finally:
        run.stop()


def test_switchover_on_request_moves_the_leader_with_no_acknowledged_write_lost(
    cluster: Cluster, shared: str, benchmark_figures: list[dict[str, object]]
) -> None:
    wait_until(
        lambda: len(cluster.get("bac", NAME, shared)["status"]["postgres"].get("replicas", [])) == 2,
        timeout=120,
        what="both replicas ready",
    )
    old = leader(cluster, shared)
    target = next(m for m in MEMBERS if m != old)
    run = write_load(cluster, shared, 40)
    try:
        time.sleep(10)
        cluster.kubectl(
            "annotate", "bac", NAME, "-n", shared, f"brainai.io/postgres-primary={target}", "--overwrite"
        )
        new, moved_after = wait_for_leader(cluster, shared, old, timeout=60)
        assert new == target
        result = run.result(timeout=300)
        assert result["errors"] == 0, result["error_samples"]
        acked, lost = lost_writes(cluster, shared, run)
        assert acked > 50 and lost == [], f"{len(lost)} of {acked} acknowledged writes lost, e.g. {lost[:3]}"
        benchmark_figures.append(
            {
                "name": "PostgreSQL switchover on request (kind, synchronous)",
                "moved_after_s": round(moved_after, 1),
                "writes_unavailable_s": sum(1 for b in result["timeline"] if b["status_503"]),
                "acknowledged_writes": acked,
                "lost": len(lost),
            }
        )
        cluster.wait_for("bac", NAME, shared, lambda b: b["status"]["postgres"].get("primary") == target)
        events = cluster.kubectl(
            "get", "events", "-n", shared, "--field-selector", f"involvedObject.name={NAME}"
        )
        assert "SwitchedOver" in events, events
    finally:
        run.stop()
        cluster.kubectl("annotate", "bac", NAME, "-n", shared, "brainai.io/postgres-primary-")


def test_redis_master_lost_the_cluster_fails_over_and_the_node_rejoins_under_its_new_ip(
    cluster: Cluster, shared: str
) -> None:
    nodes = pod_names(cluster, shared, REDIS)
    master = next(
        n for n in nodes if re.search(r"myself,master", redis_cli(cluster, shared, n, "cluster", "nodes"))
    )
    old = cluster.get("pod", master, shared)
    my_id = redis_cli(cluster, shared, master, "cluster", "myid").strip()
    run = LoadRun(cluster, shared, ["--target", SERVICE, "--scenario", "mixed", "--phase", "50:10"]).start()
    try:
        time.sleep(10)
        cluster.kubectl("delete", "pod", master, "-n", shared, "--wait=false")
        back = cluster.wait_for(
            "pod",
            master,
            shared,
            lambda p: p["metadata"]["uid"] != old["metadata"]["uid"] and ready(p),
            timeout=180,
            what=f"{master} to come back",
        )
        new_ip = back["status"]["podIP"]
        assert new_ip != old["status"]["podIP"]
        wait_until(lambda: redis_healthy(cluster, shared), timeout=120, what="cluster_state:ok everywhere")
        # Every node knows the returning node by its new IP; it came back as a replica, since its
        # replica took over its slots while it was gone.
        for node in nodes:
            wait_until(
                lambda n=node: node_table(cluster, shared, n)[my_id][0] == new_ip,
                timeout=60,
                what=f"{node} to see {master} at {new_ip}",
            )
        assert "slave" in node_table(cluster, shared, master)[my_id][1]
        result = run.result(timeout=300)
        # The engines treat Redis as a cache and change bus they can do without: no client errors.
        assert result["errors"] == 0, result["error_samples"]
    finally:
        run.stop()


def test_every_redis_pod_lost_at_once_the_cluster_reforms_with_its_data(cluster: Cluster, shared: str):
    nodes = pod_names(cluster, shared, REDIS)
    # The nodes keep their data (append-only file) and nodes.conf on their volumes; their peers'
    # addresses there are all stale once every pod has a new IP. Keys over every master, each
    # written then WAITed for: those a replica acknowledged must all come back.
    written = redis_pipe(cluster, shared, nodes[0], WAITED_WRITES)
    acknowledged = [
        f"e2e:k{i}" for i, (ok, replicas) in enumerate(written) if ok == "OK" and int(replicas) >= 1
    ]
    assert len(acknowledged) >= 0.9 * KEYS, written
    ips = {n: cluster.get("pod", n, shared)["status"]["podIP"] for n in nodes}
    cluster.kubectl("delete", "pods", "-n", shared, "-l", REDIS, "--wait=false")

    def moved(pod: str) -> bool:
        now = cluster.get("pod", pod, shared)
        return ready(now) and now["status"]["podIP"] != ips[pod]

    wait_until(
        lambda: all(moved(n) for n in nodes),
        timeout=240,
        what="every Redis pod to come back under a new IP",
    )
    wait_until(lambda: redis_healthy(cluster, shared), timeout=180, what="cluster_state:ok everywhere")
    values = [v for (v,) in redis_pipe(cluster, shared, nodes[0], [f"GET {k}" for k in acknowledged], 1)]
    lost = [k for k, v in zip(acknowledged, values, strict=True) if v != "v" + k.removeprefix("e2e:k")]
    assert lost == [], f"{len(lost)} of {len(acknowledged)} WAITed keys lost, e.g. {lost[:3]}"


def docker(cluster: Cluster, *args: str) -> str:
    """The kind nodes are containers of the project's Docker daemon (cluster.env points at it)."""
    return cluster.run("docker", *args).stdout


def test_the_leaders_node_stopped_a_replica_elsewhere_takes_over_with_no_acknowledged_write_lost(
    cluster: Cluster, shared: str, benchmark_figures: list[dict[str, object]]
) -> None:
    """The node container itself stops: nothing on it shuts down cleanly, its leader cannot hand
    over or demote, and Kubernetes still reports its pods Running. Patroni's leader lock expires
    and a synchronous replica on the other node takes over."""
    wait_until(
        lambda: len(cluster.get("bac", NAME, shared)["status"]["postgres"].get("replicas", [])) == 2,
        timeout=180,
        what="both replicas ready",
    )

    def node_of(pod: str) -> str:
        return cluster.get("pod", pod, shared)["spec"]["nodeName"]

    # The control plane's node stays up (the API server is Patroni's store): a leader there is
    # first moved to a worker.
    control_plane = {n["metadata"]["name"] for n in cluster.items("nodes", "", CONTROL_PLANE)}
    if node_of(leader(cluster, shared)) in control_plane:
        target = next(m for m in MEMBERS if node_of(m) not in control_plane)
        cluster.kubectl("annotate", "bac", NAME, "-n", shared, f"brainai.io/postgres-primary={target}")
        wait_for_leader(cluster, shared, leader(cluster, shared), timeout=60)
        cluster.kubectl("annotate", "bac", NAME, "-n", shared, "brainai.io/postgres-primary-")
    old = leader(cluster, shared)
    node = node_of(old)
    survivors = [m for m in MEMBERS if node_of(m) != node]
    engines = [p for p in cluster.items("pods", shared, ENGINES) if p["spec"]["nodeName"] != node]
    assert survivors and engines, f"a replica and an engine on a node other than {node}"
    # The load runs on, and goes straight to the engine on, the node that stays up: what is
    # measured is PostgreSQL's failover, not how long Kubernetes takes to notice a dead node.
    target = f"http://{engines[0]['status']['podIP']}:8080"
    args = ["--target", target, "--scenario", "mixed", "--phase", "70:10", "--workers", "16"]
    run = LoadRun(
        cluster,
        shared,
        [*args, "--retry-503", "--acked-file", "/tmp/acked"],
        node=engines[0]["spec"]["nodeName"],
    )
    run.start()
    stopped = False
    try:
        time.sleep(15)
        docker(cluster, "stop", "--time=0", node)
        stopped = True
        new, promoted_after = wait_for_leader(cluster, shared, old, timeout=90)
        assert new in survivors
        assert promoted_after < 30, f"{new} took the lead {promoted_after:.1f} s after {node} stopped"
        failover_kept_every_write(
            cluster,
            shared,
            run,
            "PostgreSQL leader's node container stopped (kind, synchronous)",
            promoted_after,
            benchmark_figures,
            # stopped at 15 s; promoted within 30 s; requests sent until then may wait out 10 s
            timeouts_before=15 + 30 + 10,
        )
    finally:
        run.stop()
        if stopped:
            docker(cluster, "start", node)
    # The node back, its former leader rejoins as a replica of the new one, and Redis heals.
    wait_rejoined_as_replica(cluster, shared, old, timeout=300)
    wait_until(lambda: redis_healthy(cluster, shared), timeout=240, what="cluster_state:ok everywhere")
