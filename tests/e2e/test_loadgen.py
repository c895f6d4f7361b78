"""e2e/load/loadgen.py against a real engine server on loopback, run exactly as the load pod runs it:
a subprocess of the standard-library script, judged by its LOADGEN-RESULT line."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from brainai_engine.api.serving import free_port
from brainai_engine.tools.server_process import ServerProcess
from tests.engine.engine_helpers import write_config

LOADGEN = Path(__file__).resolve().parents[2] / "e2e" / "load" / "loadgen.py"
PREFIX = "LOADGEN-RESULT "
ENDPOINT_NAMES = ("learn", "memory_search", "concept_search", "health", "all")


def parse_result(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, stdout
    result: dict[str, Any] = json.loads(lines[0][len(PREFIX) :])
    return result


def run_loadgen(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, str(LOADGEN), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc, parse_result(proc.stdout)


def assert_consistent(result: dict[str, Any]) -> None:
    """Invariants every result must satisfy, whatever the server did."""
    endpoints = result["endpoints"]
    assert set(endpoints) == set(ENDPOINT_NAMES)
    for name in ENDPOINT_NAMES:
        stats = endpoints[name]
        assert stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= stats["max_ms"], (name, stats)
    assert endpoints["all"]["requests"] == result["requests"] == sum(result["status_counts"].values())
    assert sum(endpoints[name]["requests"] for name in ENDPOINT_NAMES[:-1]) == result["requests"]
    assert sum(bucket["ok"] for bucket in result["timeline"]) == result["ok"]
    assert sum(bucket["errors"] for bucket in result["timeline"]) == result["errors"]
    assert [bucket["t"] for bucket in result["timeline"]] == list(range(len(result["timeline"])))
    delay = result["start_delay_ms"]
    assert 0 <= delay["p50"] <= delay["p95"] <= delay["max"]
    assert len(result["error_samples"]) == min(20, result["errors"])


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("engine")
    config = write_config(base / "engine.toml", base / "data")
    with ServerProcess(base / "data", config_path=str(config)) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def seed_run(engine_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One 3 s seed run (6 flows/s, unique texts, acked file), shared by the tests that judge it."""
    acked = tmp_path_factory.mktemp("seed") / "acked.txt"
    _, result = run_loadgen(
        "--target", engine_url, "--scenario", "seed", "--phase", "3:6", "--unique-texts",
        "--acked-file", str(acked), "--run-id", "seedrun", "--workers", "8",
    )  # fmt: skip
    return result, acked


def test_seed_scenario_has_the_artillery_mix_and_no_errors(seed_run: tuple[dict[str, Any], Path]) -> None:
    result, _ = seed_run
    assert_consistent(result)
    assert result["scenario"] == "seed" and result["stopped_by"] == "completed"
    assert result["flows"] == result["flows_scheduled"] == 18
    assert result["errors"] == 0 and result["error_samples"] == []
    assert set(result["status_counts"]) == {"200"}
    endpoints = result["endpoints"]
    learn, search, concepts = (endpoints[n]["requests"] for n in ("learn", "memory_search", "concept_search"))
    assert learn == search  # every "Learn and Query" flow sends both
    assert abs(learn - 0.7 * 18) <= 2 and abs(concepts - 0.3 * 18) <= 2
    assert endpoints["health"]["requests"] == 0
    assert endpoints["all"]["max_ms"] > 0
    assert 3.0 <= result["duration_s"] < 10
    assert result["start_delay_ms"]["max"] < 1000  # 8 workers keep up with 6 flows/s


def test_acked_file_lists_every_acknowledged_learn_and_the_engine_finds_them(
    seed_run: tuple[dict[str, Any], Path], engine_url: str
) -> None:
    result, acked = seed_run
    texts = acked.read_text(encoding="utf-8").splitlines()
    assert len(texts) == result["endpoints"]["learn"]["ok"] > 0
    assert len(set(texts)) == len(texts)
    assert all(text.startswith("Machine learning is fascinating #seedrun-") for text in texts)
    with httpx.Client(base_url=engine_url, timeout=10) as client:
        for text in texts:
            response = client.get("/api/v1/memory/search", params={"query": text, "limit": 5})
            assert response.status_code == 200
            assert text in [hit["memory"]["content"] for hit in response.json()["results"]], text


def test_mixed_keepalive_splits_learn_and_search(engine_url: str, tmp_path: Path) -> None:
    acked = tmp_path / "acked.txt"
    _, result = run_loadgen(
        "--target", engine_url, "--scenario", "mixed", "--phase", "2:10", "--keepalive",
        "--acked-file", str(acked), "--run-id", "mix", "--workers", "4",
    )  # fmt: skip
    assert_consistent(result)
    assert result["errors"] == 0 and result["flows"] == 20
    assert result["endpoints"]["learn"]["requests"] == result["endpoints"]["memory_search"]["requests"] == 10
    texts = acked.read_text(encoding="utf-8").splitlines()
    assert len(texts) == 10 and all(text.startswith("loadgen mix ") for text in texts)


def test_404_counts_as_an_error(engine_url: str) -> None:
    _, result = run_loadgen("--target", engine_url + "/nope", "--scenario", "health", "--phase", "1:5")
    assert_consistent(result)
    assert result["status_counts"] == {"404": 5} and result["errors"] == 5
    assert result["error_samples"][0]["error"].startswith("HTTP 404 GET /health")
    assert result["endpoints"]["health"]["max_ms"] > 0  # a response, so it has a latency


def test_nothing_listening_gives_connection_errors_and_exit_0() -> None:
    _, result = run_loadgen(
        "--target", f"http://127.0.0.1:{free_port()}", "--scenario", "seed", "--phase", "1:5"
    )
    assert_consistent(result)
    assert result["requests"] == result["flows"] == 5  # a refused connection ends the flow
    assert result["status_counts"] == {"conn": 5} and result["errors"] == 5 and result["ok"] == 0
    assert all("ConnectionRefusedError" in sample["error"] for sample in result["error_samples"])
    assert all(0 <= sample["t"] < 5 for sample in result["error_samples"])


@pytest.mark.parametrize("phase", ["abc", "10", "0:5", "5:-1", "nan:1", "5:x"])
def test_bad_phase_exits_2(phase: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(LOADGEN), "--target", "http://127.0.0.1:1", "--phase", phase],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "--phase" in proc.stderr and PREFIX not in proc.stdout


def test_sigterm_ends_the_run_early_and_still_prints_a_result(engine_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(LOADGEN), "--target", engine_url, "--scenario", "health", "--phase", "60:20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert "sent=" in proc.stderr.readline()  # the first progress line: load is running
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    result = parse_result(stdout)
    assert_consistent(result)
    assert result["stopped_by"] == "sigterm"
    assert result["duration_s"] < 15 and result["flows_scheduled"] < 60 * 20
    assert result["requests"] > 0 and result["errors"] == 0


def test_duration_cap_bounds_the_run() -> None:
    _, result = run_loadgen(
        "--target", f"http://127.0.0.1:{free_port()}", "--scenario", "health", "--phase", "60:5",
        "--duration-cap", "1",
    )  # fmt: skip
    assert result["stopped_by"] == "duration_cap"
    assert 1.0 <= result["duration_s"] < 3 and result["flows_scheduled"] <= 6


@pytest.fixture(scope="module")
def loadgen_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loadgen_under_test", LOADGEN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_percentile_is_nearest_rank(loadgen_module: ModuleType) -> None:
    values = [float(v) for v in range(1, 21)]
    assert [loadgen_module.percentile(values, p) for p in (50, 95, 99, 100)] == [10.0, 19.0, 20.0, 20.0]
    assert loadgen_module.percentile([7.0], 50) == 7.0
    assert loadgen_module.percentile([], 95) == 0.0


def test_arrivals_follow_the_phases(loadgen_module: ModuleType) -> None:
    phases = [loadgen_module.parse_phase(p) for p in ("2:2", "4:0.5", "1:0", "1:3")]
    offsets = list(loadgen_module.arrivals(phases))
    assert offsets == pytest.approx([0, 0.5, 1, 1.5, 2, 4, 7, 7 + 1 / 3, 7 + 2 / 3])


def test_repeated_targets_share_the_flows(engine_url: str, tmp_path: Path) -> None:
    base = tmp_path / "second"
    config = write_config(tmp_path / "second.toml", base)
    with ServerProcess(base, config_path=str(config)) as second:
        _, result = run_loadgen(
            "--target", engine_url, "--target", second.base_url, "--scenario", "seed", "--phase", "2:10",
            "--unique-texts", "--run-id", "twotargets", "--workers", "8",
        )  # fmt: skip
        assert_consistent(result)
        assert result["errors"] == 0 and result["target"] == f"{engine_url} {second.base_url}"
        for url in (engine_url, second.base_url):  # each store learned its share of the run's texts
            found = httpx.get(f"{url}/api/v1/memory/search", params={"query": "twotargets", "limit": 100})
            assert found.json()["total"] > 0, url
