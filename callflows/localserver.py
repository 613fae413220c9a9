"""Start the local AssemblyAI-compatible server for a run, or reuse one that is already running."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests

HEALTH_PATH = "/_local/health"


def is_healthy(url: str, timeout_s: float = 2.0) -> bool:
    try:
        return requests.get(url.rstrip("/") + HEALTH_PATH, timeout=timeout_s).ok
    except requests.RequestException:
        return False


@dataclass
class LocalServer:
    """A local server handle; ``process`` is None when it was already running (we leave it alone)."""

    url: str
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def ensure_local_server(url: str, log_path: Path, timeout_s: float = 90.0) -> LocalServer:
    """Return a handle on the server at ``url``: reuse it if ``/_local/health`` answers, else start
    one there (see ``start_local_server``).

    Raises ``RuntimeError`` if the URL is not on this machine, or the server exits or does not
    become healthy (with the end of its log).
    """
    if is_healthy(url):
        return LocalServer(url=url)
    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise RuntimeError(f"the local server URL {url} is not on this machine and does not answer: start it "
                           f"there with `callflows local-api`, or set ASSEMBLYAI_API_KEY for AssemblyAI")
    return start_local_server(url, log_path, timeout_s=timeout_s)


def start_local_server(url: str, log_path: Path, *, data_dir: Path | None = None, env: dict | None = None,
                       timeout_s: float = 90.0) -> LocalServer:
    """Start ``python -m local_api`` on ``url``'s host and port (output appended to ``log_path``,
    environment ``env`` or this process's) and wait until ``/_local/health`` answers."""
    parsed = urlparse(url)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "local_api", "--host", parsed.hostname, "--port", str(parsed.port or 80)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ) if env is None else env,
                                   cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local server exited with code {process.returncode}; its log "
                               f"({log_path}) ends with:\n{log_path.read_text(errors='replace')[-2000:]}")
        if is_healthy(url, timeout_s=1.0):
            return LocalServer(url=url, process=process, log_path=log_path)
        time.sleep(0.2)
    process.kill()
    process.wait()
    raise RuntimeError(f"the local server did not answer within {timeout_s:.0f} s; see {log_path}")
