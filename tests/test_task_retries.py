"""Task retries through the real Prefect engine: transient failures are retried and visible as
AwaitingRetry → Retrying, each attempt a WARNING with its delay; permanent ones (400, 401) fail at
once; Retry-After is honoured; a failure is logged once, on one line."""
import re
import time

import pytest
from prefect import flow

from callflows.errors import AuthenticationError, BadRequestError
from stub_http import Canned, StubServer
from tasks.transcription import submit_transcript, upload_audio, wait_for_transcript
from callflows.models import TranscriptionOptions


def state_names(task_run_id) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [s.name for s in client.read_task_run_states(task_run_id)]


def run_logs(flow_run_id) -> list[tuple[str, str]]:
    """(level name, message) of every log line of the flow run and its task runs, as the UI lists them."""
    import logging

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [(logging.getLevelName(log.level), log.message) for log in logs]


@flow
def upload_once(path: str, sha: str):
    return upload_audio.with_options(refresh_cache=True)(path, sha, return_state=True)


def test_transient_upload_failures_are_retried_and_visible(prefect_harness, sample_call, monkeypatch):
    """503 then 429 (Retry-After: 1) then 200: the task completes and its states show the retries."""
    with StubServer({"POST /v2/upload": [
        Canned(503, "Service Unavailable"),
        Canned(429, {"error": "Too Many Requests"}, {"Retry-After": "1"}),
        Canned(200, {"upload_url": "https://cdn.example/upload/abc"}),
    ]}) as stub:
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", stub.url)
        started = time.monotonic()
        state = upload_once(str(sample_call), "f" * 64)
        elapsed = time.monotonic() - started
    assert state.is_completed() and state.result() == "https://cdn.example/upload/abc"
    assert stub.count("POST", "/v2/upload") == 3
    names = state_names(state.state_details.task_run_id)
    assert names.count("AwaitingRetry") == 2 and names.count("Retrying") == 2, names
    assert elapsed >= 1.0  # Retry-After: 1 was waited for
    retries = [(level, m) for level, m in run_logs(state.state_details.flow_run_id) if " - retry " in m]
    assert [level for level, _ in retries] == ["WARNING", "WARNING"], retries
    assert re.fullmatch(r"ServerError: POST .*/v2/upload failed with HTTP 503: Service Unavailable "
                        r"\(transient: a retry can help\) - retry 1/4 in \d+\.\d s", retries[0][1]), retries
    assert retries[1][1].startswith("RateLimitError: ") and " - retry 2/4 in " in retries[1][1], retries


@pytest.mark.parametrize("status, error", [(400, BadRequestError), (401, AuthenticationError)])
def test_permanent_errors_are_not_retried(prefect_harness, status, error, monkeypatch):
    """A 400 or 401 on submit fails after exactly one request, with the API's text."""
    with StubServer({"POST /v2/transcript": [Canned(status, {"error": f"nope {status}"})]}) as stub:
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", stub.url)

        @flow
        def submit_once():
            return submit_transcript.with_options(refresh_cache=True)(
                "https://cdn.example/upload/abc", TranscriptionOptions(), f"url:{stub.url}", return_state=True)

        state = submit_once(return_state=True)
    assert stub.count("POST", "/v2/transcript") == 1
    with pytest.raises(error, match=f"nope {status}"):
        state.result()


def test_transcript_error_status_fails_with_the_api_message(prefect_harness, monkeypatch):
    """status "error" ends the wait task with AssemblyAI's message; it is not retried."""
    body = {"id": "t1", "status": "error", "audio_url": "https://x", "error": "Audio duration is too short."}
    with StubServer({"GET /v2/transcript/t1": [Canned(200, body)]}) as stub:
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", stub.url)

        @flow
        def wait_once():
            return wait_for_transcript.with_options(refresh_cache=True)("t1", 30.0)

        state = wait_once(return_state=True)
    assert stub.count("GET", "/v2/transcript/t1") == 1
    with pytest.raises(Exception, match="Audio duration is too short"):
        state.result()
    logs = run_logs(state.state_details.flow_run_id)
    said = [(level, m) for level, m in logs if "Audio duration is too short" in m]
    assert len(said) == 1 and said[0][0] == "ERROR" and "\n" not in said[0][1], logs  # once, one line
    assert not any("Traceback" in m for _, m in logs), logs
    assert logs[-1] == ("INFO", "Finished in state Failed"), logs  # the flow's state, without the copy
