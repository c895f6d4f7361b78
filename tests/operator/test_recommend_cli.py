"""`brain-ai-operator recommend` as a command: exit statuses, stderr, the table, -f, the evidence floor.

A real Prometheus (Debian's /usr/bin/prometheus) serves hours of engine usage that `promtool`
backfilled into its TSDB before it started, so windows of an hour exist without waiting an hour.
Three clusters: prod/alpha with two hours of data, prod/young with its last ten minutes only, and
prod/gappy with forty minutes (steps where no pod reported at all, at the start of a 1h window).
The command's clock is pinned to the end of the data. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from brainai_engine.api.serving import free_port
from brainai_operator import api, clock
from brainai_operator.main import main as operator_main
from brainai_operator.prometheus import INSUFFICIENT_DATA, AdvisorSettings, advise
from brainai_operator.quantities import MI
from tests.servers import wait_for

pytestmark = pytest.mark.prometheus

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
ALPHA, YOUNG, GAPPY, GHOST = ("prod", "alpha"), ("prod", "young"), ("prod", "gappy"), ("prod", "ghost")
SCRAPE = 15  # seconds between backfilled samples
# Per pod: (cluster, pod, seconds of history before the end, cores, memory at the start).
PODS = [
    (ALPHA, "alpha-engine-6d9f8b7c5-a0a0a", 7200, 0.30, 600 * MI),
    (ALPHA, "alpha-engine-6d9f8b7c5-a1a1a", 7200, 0.34, 640 * MI),
    (YOUNG, "young-engine-6d9f8b7c5-y0y0y", 600, 0.20, 300 * MI),
    (GAPPY, "gappy-engine-6d9f8b7c5-g0g0g", 2400, 0.25, 400 * MI),
    (GAPPY, "gappy-engine-6d9f8b7c5-g1g1g", 2100, 0.25, 410 * MI),
]
GROWTH = 20 * MI  # per hour, every pod
ROUTES = [("POST", "/api/v1/learn", 4.0), ("GET", "/api/v1/memory/search", 1.0)]  # requests/s per pod


@dataclass
class Backfilled:
    url: str
    end: float  # the last sample; the command's clock stands here


def openmetrics(end: float) -> str:
    """The engines' own metric families as OpenMetrics text with timestamps, for promtool."""
    families: dict[str, tuple[str, list[str]]] = {
        "process_cpu_seconds": ("counter", []),
        "process_resident_memory_bytes": ("gauge", []),
        "brain_ai_http_requests": ("counter", []),
    }
    for (ns, name), pod, history, cores, memory in PODS:
        labels = f'namespace="{ns}",service="{name}-engine",pod="{pod}"'
        steps = range(int(history // SCRAPE) + 1)
        for i in steps:
            t = end - history + i * SCRAPE
            elapsed = t - (end - history)
            wobble = 0.02 * math.sin(i / 7)  # a little variation, so percentiles are not all equal
            families["process_cpu_seconds"][1].append(
                f"process_cpu_seconds_total{{{labels}}} {cores * elapsed + wobble:.3f} {t:.0f}"
            )
            families["process_resident_memory_bytes"][1].append(
                f"process_resident_memory_bytes{{{labels}}} {memory + GROWTH * elapsed / 3600:.0f} {t:.0f}"
            )
        for method, route, rate in ROUTES:
            route_labels = f'{labels},method="{method}",route="{route}"'
            for i in steps:
                t = end - history + i * SCRAPE
                families["brain_ai_http_requests"][1].append(
                    f"brain_ai_http_requests_total{{{route_labels}}} {rate * i * SCRAPE:.0f} {t:.0f}"
                )
    out = []
    for family, (kind, samples) in families.items():
        out += [f"# TYPE {family} {kind}", *samples]
    return "\n".join([*out, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    assert PROMETHEUS and PROMTOOL, "prometheus/promtool missing: install Debian's prometheus package"
    root = tmp_path_factory.mktemp("backfill")
    end = float(math.floor(time.time() / SCRAPE) * SCRAPE - 60)
    (root / "usage.om").write_text(openmetrics(end))
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(root / "usage.om"), str(root / "tsdb")],
        check=True,
        capture_output=True,
    )
    (root / "prometheus.yml").write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"}}))
    port = free_port("127.0.0.1")
    with (root / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def loaded() -> bool:
            params = {"query": "count(process_resident_memory_bytes)", "time": str(end)}
            result = httpx.get(f"{url}/api/v1/query", params=params, timeout=2).json()["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) == len(PODS)

        wait_for(loaded, 30, "Prometheus to load the backfilled blocks")
        yield Backfilled(url, end)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def at_end(prom: Backfilled, monkeypatch: pytest.MonkeyPatch) -> Backfilled:
    """The command's clock at the end of the backfilled data."""
    monkeypatch.setattr(clock, "utcnow", lambda: dt.datetime.fromtimestamp(prom.end, dt.UTC))
    return prom


def manifest(path: Path, *keys: tuple[str, str], **spec: object) -> Path:
    docs = [
        {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "metadata": {"namespace": ns, "name": n},
            "spec": spec,
        }
        for ns, n in keys
    ]
    path.write_text(yaml.safe_dump_all(docs))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command in-process with every warning an error: a warning fails it (exit 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = operator_main(["recommend", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and "query_range" not in err and "%28" not in err, err


# Exit statuses and their one line on stderr.


def test_no_prometheus_url_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    code, out, err = run(capsys, "-f", str(manifest(tmp_path / "a.yaml", ALPHA)))
    assert code == 2 and out == ""
    assert err.startswith("error: no Prometheus URL for prod/alpha: pass --prometheus-url"), err
    assert_one_line(err)


def test_unreachable_prometheus_exits_3_with_host_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    started = time.monotonic()
    code, out, err = run(capsys, "-f", str(manifest(tmp_path / "a.yaml", ALPHA)), "--prometheus-url", url)
    assert time.monotonic() - started < 10
    assert code == 3 and out == ""
    assert err == f"error: Prometheus at {url} is unreachable (connection refused)\n"


def test_unreachable_prometheus_as_a_process_prints_one_line(tmp_path: Path) -> None:
    """The installed entry point, so logging is configured as in a shell: no library log lines."""
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    file = manifest(tmp_path / "a.yaml", ALPHA)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "brainai_operator.main",
            "recommend",
            "-f",
            str(file),
            "--prometheus-url",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr == f"error: Prometheus at {url} is unreachable (connection refused)\n"


def test_unreachable_kubernetes_api_exits_3(tmp_path: Path) -> None:
    """Without -f the cluster comes from the API server; a kubeconfig pointing at a closed port."""
    port = free_port("127.0.0.1")
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "unused"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    done = subprocess.run(
        [sys.executable, "-m", "brainai_operator.main", "recommend", "alpha", "-n", "prod"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "kubeconfig")},
    )
    assert done.returncode == 3 and done.stdout == ""
    assert (
        done.stderr
        == f"error: the Kubernetes API at https://127.0.0.1:{port} is unreachable (connection refused)\n"
    )


def test_query_refused_exits_3_with_the_status(
    prom: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{prom.url}/not-the-api"  # the real server, a path it answers 404 on
    code, _, err = run(capsys, "-f", str(manifest(tmp_path / "a.yaml", ALPHA)), "--prometheus-url", url)
    assert code == 3
    assert err.startswith(f"error: Prometheus at {url} refused the cpu query (HTTP 404 Not Found"), err
    assert_one_line(err)


def test_no_data_exits_4(at_end: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = manifest(tmp_path / "g.yaml", GHOST)
    code, out, err = run(capsys, "-f", str(file), "--prometheus-url", at_end.url)
    assert code == 4 and out == ""
    assert err.startswith("error: no engine metrics for prod/ghost"), err
    assert_one_line(err)


# The evidence floor.


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_a_five_minute_window_is_insufficient(
    at_end: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    file = manifest(tmp_path / "a.yaml", ALPHA)
    code, out, err = run(capsys, "-f", str(file), "--prometheus-url", at_end.url, "--window", "5m", *extra)
    assert code == 5 and out == ""  # nothing a script could mistake for advice
    assert err == (
        "insufficient data: a 5m window is too short to advise prod/alpha on (need at least 30m, have 5m)\n"
    )


def test_a_young_cluster_is_insufficient_over_the_default_window(
    at_end: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = manifest(tmp_path / "y.yaml", YOUNG)
    code, out, err = run(capsys, "-f", str(file), "--prometheus-url", at_end.url)
    assert code == 5 and out == ""
    found = re.fullmatch(
        r"insufficient data: too little engine usage for prod/young in the last 1h "
        r"\(need at least 30m, have (\d+)m(?:\d+s)?\)\n",
        err,
    )
    assert found, err
    assert 9 <= int(found.group(1)) <= 10  # ten minutes of samples


def test_min_evidence_can_be_lowered(
    at_end: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = manifest(tmp_path / "y.yaml", YOUNG)
    code, out, err = run(capsys, "-f", str(file), "--prometheus-url", at_end.url, "--min-evidence", "5m")
    assert code == 0 and err == ""
    assert "prod/young" in out


def test_advisor_gives_no_recommendation_on_thin_evidence(prom: Backfilled) -> None:
    settings = AdvisorSettings(prometheus_url=prom.url, window="1h")
    now = dt.datetime.fromtimestamp(prom.end, dt.UTC)
    objs = [
        {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "metadata": {"namespace": ns, "name": n},
            "spec": {},
        }
        for ns, n in (ALPHA, YOUNG)
    ]
    advice = advise(objs, settings, now)
    assert advice[ALPHA].available and advice[ALPHA].recommendation is not None
    young = advice[YOUNG]
    assert not young.available and young.recommendation is None  # status and autopilot see none
    assert young.reason == INSUFFICIENT_DATA and "(need at least 30m, have " in young.message


# The report.


def test_report_columns_never_run_together(
    at_end: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "-f", str(manifest(tmp_path / "a.yaml", ALPHA)), "--prometheus-url", at_end.url
    )
    assert code == 0 and err == ""
    lines = out.splitlines()

    header = next(i for i, line in enumerate(lines) if line.split() == ["setting", "current", "recommended"])
    starts = [lines[header].index(word) for word in ("current", "recommended")]
    rows = lines[header + 1 : lines.index("", header)]
    assert len(rows) == 7
    for row in rows:
        for start in starts:  # every cell starts under its heading, two spaces after the one before
            assert row[start - 2 : start] == "  " and row[start] != " ", (row, start)

    evidence = lines[lines.index("Evidence:") + 1 : lines.index("", lines.index("Evidence:"))]
    cells = dict(re.fullmatch(r"  (\S+) {2,}(\S.*)", line).groups() for line in evidence)  # type: ignore[union-attr]
    assert cells["memoryGrowthBytesPerHour"] == "+20MiB per hour"
    assert cells["memoryPeakBytes"].endswith("MiB per pod")
    assert cells["cpuPeakCores"].endswith("cores per pod")
    assert cells["requestRateAverage"] == "10.0 req/s"  # two pods at 4 learn + 1 query per second
    assert cells["learnShare"] == "80% of API requests"
    assert not any(re.search(r"\d{5,}", line) for line in evidence), evidence  # no raw byte counts


def test_steps_without_any_pod_give_a_report_and_no_warnings(
    at_end: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    """gappy's pods appeared 40 minutes ago: a 1h window starts with steps no pod reported in."""
    file = manifest(tmp_path / "g.yaml", GAPPY)
    code, out, err = run(capsys, "-f", str(file), "--prometheus-url", at_end.url)
    assert code == 0, err
    assert err == "" and len(recwarn) == 0
    chart = next(line for line in out.splitlines() if line.lstrip().startswith("memory (max pod)"))
    assert "max 4" in chart and "MiB" in chart


# -f without CLUSTER, and CLUSTER without -f.


def test_file_names_the_cluster(
    at_end: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "-f", str(manifest(tmp_path / "a.yaml", ALPHA)), "--prometheus-url", at_end.url
    )
    assert code == 0 and out.startswith("BrainAICluster prod/alpha: recommendations over the last 1h")


def test_file_with_several_clusters_needs_a_name(
    at_end: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = str(manifest(tmp_path / "two.yaml", ALPHA, GAPPY))
    code, out, err = run(capsys, "-f", file, "--prometheus-url", at_end.url)
    assert code == 2 and out == ""
    assert (
        err
        == f"error: {file} holds 2 BrainAIClusters (prod/alpha, prod/gappy): name one as CLUSTER (and -n)\n"
    )
    code, out, _ = run(capsys, "gappy", "-f", file, "--prometheus-url", at_end.url)
    assert code == 0 and out.startswith("BrainAICluster prod/gappy:")
    code, _, err = run(capsys, "beta", "-f", file, "--prometheus-url", at_end.url)
    assert code == 2 and err.startswith("error: no BrainAICluster named beta in ")


def test_neither_cluster_nor_file_names_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        operator_main(["recommend", "--prometheus-url", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error: name the BrainAICluster (CLUSTER), or pass -f FILE" in err


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-f", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert err == f"error: cannot read {tmp_path / 'missing.yaml'}: No such file or directory\n"


def test_run_refuses_a_bad_log_level_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from brainai_operator.main import main as operator_main

    monkeypatch.setenv("LOG_LEVEL", "bogus")
    assert operator_main(["run"]) == 2
    assert "log level 'bogus'" in capsys.readouterr().err
