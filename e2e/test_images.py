"""The engine and operator images, built offline by `make images`, run the way the cluster runs them.

Marked `images` (`make test-images` runs them alone; `make test` includes them). The module
fixture starts the project's Docker daemon when it is not running (e2e/images/docker.sh, which
installs Debian's docker.io if needed) and leaves it running, as `make images` does: the kind
cluster may live there too (`make kind-down` stops both). Then it runs e2e/images/build.sh, which is
cached: seconds when nothing changed. The tests are skipped only when no Docker daemon can be
started.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from e2e.kube import DOCKER_HOST, IMAGES, REPO, VERSION

DOCKER_SH = REPO / "e2e" / "images" / "docker.sh"
BUILD_SH = REPO / "e2e" / "images" / "build.sh"
ENGINE = os.environ.get("BRAINAI_ENGINE_IMAGE", IMAGES["engine"])
OPERATOR = os.environ.get("BRAINAI_OPERATOR_IMAGE", IMAGES["operator"])
RUN_AS = "10001"

pytestmark = pytest.mark.images


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": DOCKER_HOST}
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    proc = subprocess.run([str(DOCKER_SH), "start"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"no Docker daemon could be started: {proc.stderr.strip().splitlines()[-1:]}")
    subprocess.run([str(BUILD_SH)], check=True, timeout=1800, env={**os.environ})
    return {"engine": ENGINE, "operator": OPERATOR}


@pytest.fixture
def container(images: dict[str, str]) -> Iterator[list[str]]:
    """Collects the ids of containers a test starts; removes them afterwards."""
    started: list[str] = []
    yield started
    for cid in started:
        docker("rm", "--force", cid, check=False)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_http_ok(base: str, cid: str, path: str, deadline_s: float = 60) -> bytes:
    deadline = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = _get(base + path)
            if status == 200:
                return body
            last = status
        except OSError as exc:  # not listening yet
            last = exc
        state = json.loads(docker("inspect", cid).stdout)[0]["State"]
        if not state["Running"]:
            logs = docker("logs", cid, check=False)
            pytest.fail(f"container exited ({state['ExitCode']}):\n{logs.stdout}{logs.stderr}")
        time.sleep(0.5)
    logs = docker("logs", cid, check=False)
    pytest.fail(f"{path} did not answer 200 within {deadline_s}s (last: {last}):\n{logs.stderr[-3000:]}")


def _published(cid: str, port: int = 8080) -> str:
    out = docker("port", cid, f"{port}/tcp").stdout.split()[0]  # 127.0.0.1:NNNNN
    return f"http://{out}"


def test_engine_runs_as_the_operator_deploys_it(images: dict[str, str], container: list[str], tmp_path: Path):
    """uid 10001, read-only root, all capabilities dropped, writable data dir and /tmp, and the
    operator's args `serve --config /etc/brain-ai/engine.toml` with a config mounted read-only."""
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    (config_dir / "engine.toml").write_text(
        '[server]\nhost = "0.0.0.0"\nport = 8080\ndata_dir = "/var/lib/brain-ai"\n'
    )
    config_dir.chmod(0o755)
    tmp_path.chmod(0o755)
    cid = docker(
        "run", "--detach",
        "--user", f"{RUN_AS}:{RUN_AS}",
        "--read-only",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--tmpfs", "/tmp:size=64m",
        "--tmpfs", f"/var/lib/brain-ai:uid={RUN_AS},gid={RUN_AS}",
        "--volume", f"{config_dir}:/etc/brain-ai:ro",
        "--env", "INSTANCE_ID=engine-test-0",
        "--publish", "127.0.0.1::8080",
        "--health-interval", "2s", "--health-start-period", "0s",
        images["engine"], "serve", "--config", "/etc/brain-ai/engine.toml",
    ).stdout.strip()  # fmt: skip
    container.append(cid)
    base = _published(cid)
    assert json.loads(_wait_http_ok(base, cid, "/health")) == {"status": "ok"}
    _wait_http_ok(base, cid, "/ready")
    # The image's HEALTHCHECK (a Python one-liner) reports the container healthy.
    deadline = time.monotonic() + 60
    health = ("inspect", "--format", "{{.State.Health.Status}}", cid)
    while (status := docker(*health).stdout.strip()) != "healthy":
        assert status in ("starting", ""), f"health check status {status!r}"
        assert time.monotonic() < deadline, "HEALTHCHECK never reported healthy"
        time.sleep(1)
    # The data went to the writable data dir, as the engine's user.
    listing = docker("exec", cid, "ls", "-ln", "/var/lib/brain-ai").stdout
    assert "brain-ai.db" in listing and f" {RUN_AS} {RUN_AS} " in listing


def test_engine_default_command_serves(images: dict[str, str], container: list[str]):
    cid = docker("run", "--detach", "--publish", "127.0.0.1::8080", images["engine"]).stdout.strip()
    container.append(cid)
    assert json.loads(_wait_http_ok(_published(cid), cid, "/health")) == {"status": "ok"}
    assert docker("exec", cid, "id", "-u").stdout.strip() == RUN_AS


def test_operator_image_runs_its_cli(images: dict[str, str]):
    out = docker("run", "--rm", images["operator"], "--version").stdout
    assert out.strip() == f"brain-ai-operator {VERSION}"
    crd = yaml.safe_load(docker("run", "--rm", "--network", "none", images["operator"], "crd").stdout)
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "brainaiclusters.brainai.io"


def test_engine_image_runs_the_demo(images: dict[str, str]):
    """The dev tools ship with the engine (its `tools` extra): the demo runs in the image as built."""
    out = docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", images["engine"], "demo"
    )
    assert "== GET /metrics (engine gauges) ==" in out.stdout
    assert "brain_ai_memories_total 3.0" in out.stdout


# Each image installs its own distribution: what must be there, and what must not.
HALVES = {
    "engine": ("brainai_engine", ["brainai_operator", "kopf", "kubernetes"]),
    "operator": ("brainai_operator", ["brainai_engine", "faiss", "psycopg", "redis", "starlette", "uvicorn"]),
}


@pytest.mark.parametrize("target", sorted(HALVES))
def test_each_image_carries_only_its_own_half(images: dict[str, str], target: str):
    own, foreign = HALVES[target]
    probe = "import importlib.util, sys; print(*[m for m in sys.argv[1:] if importlib.util.find_spec(m)])"
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "python3", images[target], "-c", probe,
                 own, "brainai_common", *foreign).stdout.split()  # fmt: skip
    assert out == [own, "brainai_common"]


@pytest.mark.parametrize("target", ["engine", "operator"])
def test_image_metadata_and_contents(images: dict[str, str], target: str):
    config = json.loads(docker("image", "inspect", images[target]).stdout)[0]["Config"]
    assert config["User"] == f"{RUN_AS}:{RUN_AS}"
    assert config["Entrypoint"] == [f"brain-ai-{target}"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == f"brain-ai-{target}"
    assert labels["org.opencontainers.image.version"] == VERSION
    for key in ("revision", "created", "licenses", "description"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    if target == "engine":
        assert config["Healthcheck"]["Test"][:2] == ["CMD", "python3"]
        assert config["Cmd"][0] == "serve"
    # No compiler, no pip: the final stage holds the virtual environment and nothing to build with.
    probe = (
        "for t in gcc cc c++ make pip pip3; do command -v $t; done;"
        " python3 -c 'import pip' 2>/dev/null && echo pip"
    )
    found = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", images[target], "-c", probe,
                   check=False).stdout.split()  # fmt: skip
    assert found == []
