"""`biomatch serve` as a real process tree (parent + uvicorn workers) on a loopback port, for
the start and shared-limit tests and the benchmarks that reuse them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

STARTED = "Application startup complete."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``with Server(data_dir, workers=2, env={...}) as server: server.url``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 2,
        env: dict[str, str] | None = None,
        pythonpath: str | None = None,
        timeout_s: float = 90.0,
    ) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self._env = {**os.environ, **(env or {})}
        if pythonpath:
            self._env["PYTHONPATH"] = pythonpath
        self._timeout_s = timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def start(self) -> float:
        """Start and wait until every worker has started; returns the seconds it took.
        Raises ``RuntimeError`` (with the log) where the service died or never came up."""
        command = [sys.executable, "-m", "biomatch.cli", "serve", "--data-dir", str(self.data_dir)]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        began = time.monotonic()
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self._env, start_new_session=True
            )
        while time.monotonic() - began < self._timeout_s:
            if self._process.poll() is not None:
                raise RuntimeError(f"serve exited with {self._process.returncode}:\n{self.text()}")
            if self.text().count(STARTED) >= self.workers and self._answers():
                return time.monotonic() - began
            time.sleep(0.2)
        raise RuntimeError(f"serve did not start within {self._timeout_s} s:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def worker_pids(self) -> list[int]:
        import psutil

        assert self._process is not None
        return [child.pid for child in psutil.Process(self._process.pid).children(recursive=True)]

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(5)

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
