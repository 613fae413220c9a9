"""Crash recovery: a flow process killed while polling resumes the same transcript when rerun, and a
local server killed mid-job finishes its queued and processing jobs after a restart while the flow
that was polling simply carries on.

The flow runs in a subprocess (its own Prefect home, ephemeral API, persisted results), killed with
SIGKILL on its whole process group, as when a machine or container dies.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import ROOT, free_port, start_local_api, trim_wav

POLL = "GET /v2/transcript/{transcript_id}"
DRIVER = """
import sys
from prefect import flow
from callflows.audio import check_audio
from callflows.models import TranscriptionOptions
from flows.transcribe import transcribe
t, _ = flow(name="transcribe")(transcribe)(check_audio(sys.argv[1]),
                                           TranscriptionOptions(speaker_labels=True, sentiment_analysis=True))
print("TRANSCRIPT", t.id, t.status.value, len(t.words or []))
"""


@pytest.fixture(scope="module")
def clip(sample_call, tmp_path_factory) -> Path:
    """The first 12 s of the sample call."""
    return trim_wav(sample_call, tmp_path_factory.mktemp("crash-clip") / "clip.wav", 12)


def flow_env(server, prefect_home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSEMBLYAI_", "PREFECT_API"))}
    env.update({"ASSEMBLYAI_BASE_URL": server.url, "ASSEMBLYAI_LLM_GATEWAY_BASE_URL": server.url,
                "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                **extra})
    return env


def start_flow(audio: Path, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", DRIVER, str(audio)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def jobs(server) -> list[dict]:
    return requests.get(f"{server.url}/_local/jobs", timeout=10).json()["jobs"]


def finished_transcript(log: Path) -> list[str]:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("TRANSCRIPT ")]
    assert lines, log.read_text(errors="replace")[-3000:]
    return lines[-1].split()


def test_flow_killed_while_polling_resumes_the_same_transcript(clip, tmp_path):
    """Kill the flow process (SIGKILL, whole process group) once it polls; rerun it: no second upload,
    no second transcript, polling resumes on the same id until it completes."""
    server = start_local_api(tmp_path / "data", extra_env={"CALLFLOWS_LOCAL_API_JOB_DELAY_S": "15"})
    try:
        env = flow_env(server, tmp_path / "prefect")
        log = tmp_path / "flow.log"
        first = start_flow(clip, env, log)
        try:
            wait_until(lambda: server.request_counts().get(POLL, 0) >= 1 or first.poll() is not None, 180,
                       "the flow to poll the transcript")
            assert first.poll() is None, log.read_text()[-3000:]
        finally:
            kill_group(first)
        [job] = jobs(server)
        assert job["status"] in ("queued", "processing")
        polls_before = server.request_counts()[POLL]

        rerun = subprocess.run([sys.executable, "-c", DRIVER, str(clip)], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        log.write_text(rerun.stdout)
        _, transcript_id, status, words = finished_transcript(log)
        assert (transcript_id, status) == (job["id"], "completed") and int(words) > 10
        counts = server.request_counts()
        assert counts["POST /v2/upload"] == 1 and counts["POST /v2/transcript"] == 1, counts
        assert counts[POLL] > polls_before
        assert [j["id"] for j in jobs(server)] == [job["id"]]
    finally:
        server.stop()


def test_server_killed_mid_job_finishes_its_jobs_after_a_restart_and_the_flow_carries_on(clip, tmp_path):
    """While a flow polls its transcript (processing) and another job waits (queued), the local server
    is killed (SIGKILL) and restarted on the same port and data: both jobs complete, none vanishes,
    and the flow completes with the same transcript id without uploading or submitting again."""
    url = f"http://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    first = start_local_api(data, url=url, extra_env={"CALLFLOWS_LOCAL_API_JOB_DELAY_S": "60"})
    log = tmp_path / "flow.log"
    flow = None
    second = None
    try:
        env = flow_env(first, tmp_path / "prefect", CALLFLOWS_RETRY_DELAY_S="2")
        flow = start_flow(clip, env, log)
        processing = wait_until(lambda: [j for j in jobs(first) if j["status"] == "processing"]
                                and first.request_counts().get(POLL, 0) >= 1, 180, "the flow's job to be processing")
        assert processing and flow.poll() is None, log.read_text()[-3000:]
        [flow_job] = jobs(first)
        with open(clip, "rb") as f:
            upload_url = requests.post(f"{url}/v2/upload", data=f, timeout=30).json()["upload_url"]
        queued = requests.post(f"{url}/v2/transcript", json={"audio_url": upload_url}, timeout=30).json()
        assert queued["status"] == "queued"

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
        time.sleep(2)  # the flow's polls now fail: connection refused
        second = start_local_api(data, url=url)

        assert flow.wait(timeout=600) == 0, log.read_text()[-3000:]
        _, transcript_id, status, _ = finished_transcript(log)
        assert (transcript_id, status) == (flow_job["id"], "completed")
        done = wait_until(lambda: (lambda js: js if all(j["status"] == "completed" for j in js) else None)(jobs(second)),
                          300, "the queued job to complete")
        by_id = {j["id"]: j for j in done}
        assert set(by_id) == {flow_job["id"], queued["id"]}
        assert by_id[flow_job["id"]]["interrupted"] == 1 and by_id[flow_job["id"]]["attempts"] == 2
        counts = second.request_counts()
        assert "POST /v2/upload" not in counts and "POST /v2/transcript" not in counts and counts[POLL] >= 1
        assert "Polling transcript" in log.read_text() and "polling again" in log.read_text()
    finally:
        if flow is not None and flow.poll() is None:
            kill_group(flow)
        first.stop()
        if second is not None:
            second.stop()
