"""Run ``brain-ai-engine serve`` as a child process on a free port (demo, durability tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from brainai_common.engine_config import load_config
from brainai_engine.api.serving import free_port


class ServerProcess:
    """A real engine server; ``kill()`` simulates a crash, ``stop()`` a graceful shutdown."""

    def __init__(
        self,
        data_dir: Path,
        *,
        config_path: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        ready_timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.config_path = config_path
        self.host = host
        self.port = port or free_port(host)
        self.ready_timeout = ready_timeout
        self.env = {**os.environ, **(env or {})}
        token = load_config(config_path, env=self.env).server.auth_token
        self.auth_headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process it logs

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "brainai_engine.cli",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.config_path:
            cmd += ["--config", self.config_path]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.base_url}/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"server not ready after {self.ready_timeout}s:\n{self.log_tail()}")

    def log_tail(self, limit: int = 4000) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")[-limit:]

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crashed or OOM-killed pod."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._log.close()
