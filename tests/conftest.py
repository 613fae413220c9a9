"""Shared fixtures: the local AssemblyAI-compatible server, started for real in a subprocess.

Tests use the small engines (Whisper tiny.en, SmolLM2-135M) so the suite stays fast; the demo
uses Whisper base and Qwen2.5-Coder-1.5B.
"""
from __future__ import annotations

import os
import socket
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import tempfile

# Before anything imports prefect: keep its state in a throwaway folder, quiet offline, fast retries.
_PREFECT_HOME = tempfile.mkdtemp(prefix="callflows-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ["CALLFLOWS_RETRY_DELAY_S"] = "0.2"
for _name in ("ASSEMBLYAI_API_KEY", "ASSEMBLYAI_BASE_URL", "ASSEMBLYAI_LLM_GATEWAY_BASE_URL",
              "CALLFLOWS_API_KEY_SECRET_BLOCK", "PREFECT_API_URL"):
    os.environ.pop(_name, None)

import pytest  # noqa: E402
import requests  # noqa: E402

from callflows.localserver import LocalServer, start_local_server  # noqa: E402
from callflows.scorecard import DEFAULT_RUBRIC  # noqa: E402
from callflows.sentiment import DEFAULT_QUESTIONS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CALL = ROOT / "samples" / "support_call.wav"
TEST_STT_MODEL = "tiny.en"
TEST_LLM_MODEL = "smollm2-135m"
# For tests of orchestration, not of the answers: two questions and two criteria, shorter LLM answers
# on the same code paths; FAST_PARAMETERS as JSON, as run_deployment sends them.
FAST = dict(questions=DEFAULT_QUESTIONS[:2], rubric=DEFAULT_RUBRIC[:2])
FAST_PARAMETERS = {name: [item.model_dump(mode="json") for item in items] for name, items in FAST.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalApi:
    """A running local server: its base URL, data folder, log file and configured key."""

    url: str
    data_dir: Path
    log_path: Path
    server: LocalServer
    api_key: str | None = None
    env: dict = field(default_factory=dict)

    @property
    def process(self):
        return self.server.process

    def headers(self) -> dict[str, str]:
        return {"authorization": self.api_key} if self.api_key else {}

    def request_counts(self) -> dict[str, int]:
        """Requests served per endpoint (``"POST /v2/upload"`` → n), from ``GET /_local/requests``."""
        r = requests.get(f"{self.url}/_local/requests", timeout=10)
        r.raise_for_status()
        return r.json()["counts"]

    def api_counts(self) -> dict[str, int]:
        """Requests to the API only (not the server's own /_local routes), per endpoint."""
        return {k: v for k, v in self.request_counts().items() if not k.split(" ", 1)[1].startswith("/_local")}

    def reset_request_counts(self) -> None:
        requests.delete(f"{self.url}/_local/requests", timeout=10).raise_for_status()

    def stop(self) -> None:
        self.server.stop()


def start_local_api(data_dir: Path, *, api_key: str | None = None, extra_env: dict | None = None,
                    timeout_s: float = 60, url: str | None = None) -> LocalApi:
    """Start ``python -m local_api`` on ``url`` (default: a free loopback port) with the test models;
    wait until healthy."""
    env = dict(os.environ)
    env.pop("ASSEMBLYAI_API_KEY", None)
    env.update({
        "CALLFLOWS_STT_MODEL": TEST_STT_MODEL,
        "CALLFLOWS_LOCAL_LLM": TEST_LLM_MODEL,
        "CALLFLOWS_HOME": str(ROOT / ".callflows"),  # shared model cache across test servers
    })
    env.pop("CALLFLOWS_LOCAL_API_KEY", None)
    if api_key:
        env["CALLFLOWS_LOCAL_API_KEY"] = api_key
    env.update(extra_env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    url = url or f"http://127.0.0.1:{free_port()}"
    server = start_local_server(url, log_path, data_dir=data_dir, env=env, timeout_s=timeout_s)
    return LocalApi(url=url, data_dir=data_dir, log_path=log_path, server=server, api_key=api_key, env=env)


def api_upload(api: LocalApi, path: Path) -> str:
    """``POST /v2/upload`` the file (streamed); its ``upload_url``."""
    with open(path, "rb") as f:
        r = requests.post(f"{api.url}/v2/upload", data=f, headers=api.headers(), timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["upload_url"]


def api_create(api: LocalApi, audio_url: str, **options) -> dict:
    """``POST /v2/transcript``; the transcript (status queued)."""
    r = requests.post(f"{api.url}/v2/transcript", json={"audio_url": audio_url, **options},
                      headers=api.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def wait_done(api: LocalApi, transcript_id: str, timeout_s: float = 300) -> dict:
    """Poll ``GET /v2/transcript/{id}`` until ``completed`` or ``error`` (or ``timeout_s`` s); the transcript."""
    deadline = time.monotonic() + timeout_s
    while True:
        t = requests.get(f"{api.url}/v2/transcript/{transcript_id}", headers=api.headers(), timeout=30).json()
        if t["status"] in ("completed", "error") or time.monotonic() > deadline:
            return t
        time.sleep(0.5)


def files_under(*roots: Path) -> list[Path]:
    """Every file under ``roots`` (those that exist), sorted."""
    return [p for root in roots if root.exists() for p in sorted(root.rglob("*")) if p.is_file()]


def holding(needle: str, paths: list[Path], ignore_case: bool = False) -> list[Path]:
    """The files whose bytes contain ``needle`` (also as UTF-16, as some stores encode text)."""
    if ignore_case:
        needle = needle.lower()
    variants = [needle.encode(), needle.encode("utf-16-le")]
    return [p for p in paths
            if any(v in (p.read_bytes().lower() if ignore_case else p.read_bytes()) for v in variants)]


def trim_wav(source: Path, target: Path, seconds: float) -> Path:
    """A different real recording: the first ``seconds`` of the WAV ``source`` (same format), at ``target``."""
    with wave.open(str(source), "rb") as src, wave.open(str(target), "wb") as dst:
        dst.setparams(src.getparams())
        dst.writeframes(src.readframes(int(src.getframerate() * seconds)))
    return target


def run_artifact(key: str, flow_run_id: str) -> str:
    """The markdown of the artifact ``key`` that the flow run ``flow_run_id`` created (exactly one)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return artifact.data


@pytest.fixture(scope="session")
def local_api(tmp_path_factory) -> LocalApi:
    """The local server without an API key, shared by the whole session."""
    server = start_local_api(tmp_path_factory.mktemp("local_api"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sample_call() -> Path:
    """The project's own synthetic two-speaker support call (16 kHz mono WAV, ~80 s)."""
    assert SAMPLE_CALL.exists(), "samples/support_call.wav is missing: run `make sample`"
    return SAMPLE_CALL


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (SQLite) for every test that runs flows through the engine."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@dataclass
class PostgresServer:
    """A running PostgreSQL of ``scripts/postgres.py`` in a temporary CALLFLOWS_HOME. ``env`` (that
    home and ``CALLFLOWS_POSTGRES_PORT``) makes the script and its URL functions find it. The URLs
    hold the password: never print them."""

    home: Path
    port: int
    # secrets: kept out of the repr, which pytest prints when a test using the fixture fails
    env: dict[str, str] = field(repr=False)
    callflows_url: str = field(repr=False)  # postgresql+psycopg://callflows:…@127.0.0.1:PORT/callflows
    prefect_url: str = field(repr=False)  # postgresql+asyncpg://callflows:…@127.0.0.1:PORT/prefect
    password: str = field(repr=False)


def postgres_script(command: str, env: dict[str, str], timeout_s: float = 900):
    """``python scripts/postgres.py COMMAND`` with ``env``; the CompletedProcess (text output)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(ROOT / "scripts" / "postgres.py"), command], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL for the session (``scripts/postgres.py start`` on a free port, ~5 s), with the
    role ``callflows`` and the databases ``callflows`` and ``prefect``; stopped and deleted at the end.
    Skipped only when Debian's server is not installed and cannot be (not root, or apt-get fails)."""
    import shutil
    import sys
    from unittest import mock

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # scripts/ is not an installed package
    from scripts import postgres

    try:
        postgres.ensure_installed()
    except postgres.PostgresError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    home = Path(tempfile.mkdtemp(prefix="callflows-pg-"))  # in /tmp: pytest's own tmp folder is 0700,
    home.chmod(0o755)  # and the server's OS user must pass through
    port = free_port()
    env = {**os.environ, "CALLFLOWS_HOME": str(home), "CALLFLOWS_POSTGRES_PORT": str(port)}
    try:
        started = postgres_script("start", env)
        assert started.returncode == 0, started.stdout + started.stderr
        with mock.patch.dict(os.environ, {"CALLFLOWS_HOME": str(home), "CALLFLOWS_POSTGRES_PORT": str(port)}):
            urls = postgres.callflows_database_url(), postgres.prefect_database_url()
        yield PostgresServer(home=home, port=port, env=env, callflows_url=urls[0], prefect_url=urls[1],
                             password=(home / "postgres" / "password").read_text().strip())
    finally:
        postgres_script("stop", env, timeout_s=120)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """The SQLAlchemy URL (psycopg 3) of the session's PostgreSQL database ``callflows``."""
    return postgres_server.callflows_url


@pytest.fixture()
def use_local_api(local_api, monkeypatch):
    """Point the flows' settings (environment, as in production) at the session's local server."""
    monkeypatch.setenv("ASSEMBLYAI_BASE_URL", local_api.url)
    monkeypatch.setenv("ASSEMBLYAI_LLM_GATEWAY_BASE_URL", local_api.url)
    return local_api
