"""`make loadtest`: the source document's Artillery scenario against engines on this machine.

Two setups, each started here from real parts and stopped afterwards:
- one engine on its embedded SQLite store;
- two engines sharing a PostgreSQL primary with a streaming replica and a 6-node Redis Cluster,
  the flows spread over both (as a Service would), while a probe learns a text on one engine every
  two seconds and times until the other finds it.

The load is e2e/load/loadgen.py, the scenario's flows (learn + memory search 70 %, concept search
30 %) arriving open-loop in the scenario's phases: 5 min at 10/s, 10 min at 50/s, 5 min at 100/s,
or 10 s / 20 s / 10 s with --short. Printed per setup and endpoint: requests, p50/p95/p99/max and
errors; the figures also go to $BRAINAI_CACHE/logs/loadtest.json.

    python -m e2e.load.local [--short] [--setup single|pair]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from brainai_engine.tools.server_process import ServerProcess
from tests.servers import start_pg_cluster, start_redis_cluster

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
RESULT = "LOADGEN-RESULT "
FULL = ["300:10", "600:50", "300:100"]
SHORT = ["10:10", "20:50", "10:100"]
ENGINE_CONFIG = (
    '[system]\nmemory_capacity = 1000000\n\n[server]\ndata_dir = "{data}"\n\n[redis]\ncluster = {cluster}\n'
)


def say(message: str) -> None:
    print(f"[loadtest] {message}", file=sys.stderr, flush=True)


def run_load(targets: list[str], phases: list[str]) -> dict[str, Any]:
    argv = [sys.executable, str(LOADGEN), "--scenario", "seed", "--unique-texts", "--workers", "128"]
    for target in targets:
        argv += ["--target", target]
    for phase in phases:
        argv += ["--phase", phase]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode or not lines:
        raise RuntimeError(f"loadgen failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT) :])
    return result


@contextlib.contextmanager
def engines(base: Path, count: int, env: dict[str, str]) -> Iterator[list[ServerProcess]]:
    servers = []
    try:
        for i in range(count):
            data = base / f"engine{i}"
            config = base / f"engine{i}.toml"
            cluster = "true" if "REDIS_URL" in env else "false"
            config.write_text(ENGINE_CONFIG.format(data=data, cluster=cluster), encoding="utf-8")
            servers.append(
                ServerProcess(data, config_path=str(config), env={**env, "INSTANCE_ID": f"engine-{i}"})
            )
            servers[-1].start()
        yield servers
    finally:
        for server in servers:
            server.stop()


class PropagationProbe:
    """Every `every` seconds: learn a unique text on engine A, time until engine B finds it."""

    def __init__(self, a: str, b: str, every: float = 2.0, timeout: float = 10.0) -> None:
        self.a, self.b, self.every, self.timeout = a, b, every, timeout
        self.delays: list[float | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PropagationProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self.every):
                token = f"probe{secrets.token_hex(5)}"
                learned = client.post(f"{self.a}/api/v1/learn", json={"text": f"{token} crossed over"})
                if learned.status_code != 200:
                    self.delays.append(None)
                    continue
                acked = time.monotonic()
                seen = None
                while time.monotonic() - acked < self.timeout:
                    found = client.get(f"{self.b}/api/v1/memory/search", params={"query": token}).json()
                    if found.get("total"):
                        seen = time.monotonic() - acked
                        break
                    time.sleep(0.01)
                self.delays.append(seen)


def single(phases: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="brainai-loadtest-") as tmp, engines(Path(tmp), 1, {}) as (one,):
        say(f"one engine on SQLite at {one.base_url}: phases {' '.join(phases)}")
        return {"name": "one engine on SQLite", **run_load([one.base_url], phases)}


def pair(phases: list[str]) -> dict[str, Any]:
    say("starting PostgreSQL (primary + streaming replica) and a 6-node Redis Cluster")
    pg = start_pg_cluster()
    redis = start_redis_cluster()
    try:
        primary, replica = pg.new_database("loadtest")
        env = {"DATABASE_URL": primary, "DATABASE_READ_URLS": replica, "REDIS_URL": redis.url}
        with (
            tempfile.TemporaryDirectory(prefix="brainai-loadtest-") as tmp,
            engines(Path(tmp), 2, env) as two,
        ):
            urls = [s.base_url for s in two]
            say(f"two engines on PostgreSQL + Redis at {' '.join(urls)}: phases {' '.join(phases)}")
            with PropagationProbe(urls[0], urls[1]) as probe:
                result = run_load(urls, phases)
        seen = [d for d in probe.delays if d is not None]
        result["propagation_s"] = {
            "probes": len(probe.delays),
            "not_seen": len(probe.delays) - len(seen),
            "max": round(max(seen), 3) if seen else None,
        }
        return {"name": "two engines on PostgreSQL + replica + Redis Cluster", **result}
    finally:
        redis.shutdown()
        pg.shutdown()


def print_table(run: dict[str, Any]) -> None:
    print(f"{run['name']}: {run['requests']} requests in {run['duration_s']:.0f}s, {run['errors']} errors")
    for endpoint, f in sorted(run["endpoints"].items()):
        if f["requests"]:
            print(
                f"  {endpoint:15s} {f['requests']:7d} req  p50 {f['p50_ms']:8.1f}  p95 {f['p95_ms']:8.1f}  "
                f"p99 {f['p99_ms']:8.1f}  max {f['max_ms']:8.1f} ms  errors {f['errors']}"
            )
    if "propagation_s" in run:
        p = run["propagation_s"]
        seen = f"{p['probes']} probes, max {p['max']} s, not seen {p['not_seen']}"
        print(f"  propagation A -> B under load: {seen}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="40 s per setup instead of 20 min")
    parser.add_argument("--setup", choices=["single", "pair"], action="append", help="default: both")
    args = parser.parse_args(argv)
    phases = SHORT if args.short else FULL
    runs = [{"single": single, "pair": pair}[s](phases) for s in args.setup or ["single", "pair"]]
    for run in runs:
        print_table(run)
    cache = Path(os.environ.get("BRAINAI_CACHE") or Path.home() / ".cache" / "brain-ai")
    out = cache / "logs" / "loadtest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(runs, indent=1))
    print(f"(also in {out})")
    return 1 if any(run["errors"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
