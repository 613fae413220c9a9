"""Tasks of the transcription path: upload → submit → wait → captions.

Caching (persisted results, reused across runs, flows and deployments):
- ``upload_audio``: by the file's SHA-256 (and the account), so the same recording is uploaded once.
- ``submit_transcript``: by (audio content or URL, transcription options, account), so a rerun (e.g.
  with a new prompt) creates no new transcript, and a crashed run resumes polling the same id.
- ``wait_for_transcript``: by transcript id (a completed transcript does not change).

Results and cache keys are kept in ``tasks.common.RESULT_STORAGE`` (``$CALLFLOWS_RESULT_STORAGE``, a
folder every worker shares), so workers on other machines reuse them too.
"""
from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.runtime import task_run

from callflows.client import AssemblyAIClient, check_transcript_id
from callflows.errors import APIError, TranscriptFailedError, TranscriptTimeoutError
from callflows.models import Transcript, TranscriptionOptions, TranscriptStatus
from tasks.common import (HTTP_RETRIES, MAX_RETRY_AFTER_S, RESULT_STORAGE, RETRYING, resolve_settings,
                          says_when_retries_run_out, stable_hash)

FIRST_POLL_INTERVAL_S = 1.0
MAX_POLL_INTERVAL_S = 3.0  # the guides poll every 3 s; we start at 1 s, so short jobs are seen sooner
POLL_GROWTH = 1.5
POLL_FAILURES_TOLERATED = HTTP_RETRIES


def _upload_key(context, parameters) -> str:
    return f"upload-{resolve_settings().account_fingerprint()}-{parameters['sha256']}"


def _submit_key(context, parameters) -> str:
    options = parameters["options"]
    options = options.model_dump(exclude_none=True) if hasattr(options, "model_dump") else options
    return (f"transcript-{resolve_settings().account_fingerprint()}-"
            f"{stable_hash([parameters['audio_key'], options])}")


def _wait_key(context, parameters) -> str:
    return f"completed-{resolve_settings().account_fingerprint()}-{stable_hash(parameters['transcript_id'])}"


@task(name="upload_audio", cache_key_fn=_upload_key, persist_result=True, result_storage=RESULT_STORAGE, **RETRYING)
@says_when_retries_run_out
def upload_audio(path: str, sha256: str) -> str:
    """``POST /v2/upload`` the file at ``path`` (streamed from disk); return its ``upload_url``.

    Cached by ``sha256`` (the file's content hash, from ``callflows.audio.check_audio``).
    Raises ``APIError`` (transient ones are retried).
    """
    settings = resolve_settings()
    with AssemblyAIClient(settings) as client:
        uploaded = client.upload(path)
    get_run_logger().info("Uploaded %s (sha256 %s…)", path, sha256[:12])
    return uploaded.upload_url


def _find_created(client: AssemblyAIClient, params, logger) -> Transcript | None:
    """``client.find_transcript(params)``, with a transient failure (429, 5xx, timeout, connection error)
    tried again in place up to ``HTTP_RETRIES`` times: a failing look-up must not use up the retries the
    create itself was given."""
    failures = 0
    while True:
        try:
            return client.find_transcript(params)
        except APIError as exc:
            failures += 1
            if not exc.retryable or failures > HTTP_RETRIES:
                raise
            pause = min(max(FIRST_POLL_INTERVAL_S, exc.retry_after_s or 0.0), MAX_RETRY_AFTER_S)
            logger.warning("Looking up the transcript an earlier attempt may have created failed (%s); "
                           "trying again in %.1f s", exc, pause)
            time.sleep(pause)


@task(name="submit_transcript", cache_key_fn=_submit_key, persist_result=True, result_storage=RESULT_STORAGE,
      **RETRYING)
@says_when_retries_run_out
def submit_transcript(audio_url: str, options: TranscriptionOptions, audio_key: str) -> str:
    """``POST /v2/transcript`` for ``audio_url`` with ``options``; return the transcript id.

    ``audio_key`` identifies the recording's content (``sha256:…`` or ``url:…``) for the cache key, so
    a re-upload of the same file (new upload URL) still reuses the transcript. A retry first looks for
    a transcript the failed attempt created (``AssemblyAIClient.find_transcript``), so a lost answer
    (timeout, connection reset) does not pay for a second transcription.
    """
    logger = get_run_logger()
    params = options.to_params(audio_url)
    with AssemblyAIClient(resolve_settings()) as client:
        if task_run.run_count > 1:  # an earlier attempt's request may have created it and lost the answer
            found = _find_created(client, params, logger)
            if found is not None:
                logger.warning("Transcript %s (status %s) was created by an earlier attempt whose answer was lost: "
                               "using it instead of submitting again", found.id, found.status.value)
                return found.id
        transcript = client.create_transcript(params)
    logger.info("Submitted transcript %s (status %s)", transcript.id, transcript.status.value)
    return transcript.id


@task(name="wait_for_transcript", cache_key_fn=_wait_key, persist_result=True, result_storage=RESULT_STORAGE,
      **RETRYING)
@says_when_retries_run_out
def wait_for_transcript(transcript_id: str, poll_timeout_s: float = 3600.0) -> Transcript:
    """Poll ``GET /v2/transcript/{id}`` until ``completed``; return the transcript.

    The interval grows from 1 s by ×1.5 up to 3 s (the guides poll every 3 s; a completed
    transcript is seen at most 3 s late, and a GET costs nothing). A transient poll failure (429, 5xx, timeout,
    connection error) is only a missed poll: polling goes on after the next interval (or the
    ``Retry-After``), up to ``POLL_FAILURES_TOLERATED`` failures in a row; then the task fails and its
    retries resume polling. Raises ``TranscriptFailedError`` with the API's message on
    ``status: "error"`` (not retried), ``TranscriptTimeoutError`` after ``poll_timeout_s`` seconds,
    ``InputError`` for a malformed id (before any request), ``NotFoundError`` for an unknown one,
    ``APIError`` on other HTTP failures.
    """
    logger = get_run_logger()
    check_transcript_id(transcript_id)
    settings = resolve_settings()
    started = time.monotonic()
    interval = FIRST_POLL_INTERVAL_S
    last_status = None
    failures = 0
    with AssemblyAIClient(settings) as client:
        while True:
            try:
                transcript = client.get_transcript(transcript_id)
            except APIError as exc:
                waited = time.monotonic() - started
                if not exc.retryable or failures >= POLL_FAILURES_TOLERATED or waited + interval > poll_timeout_s:
                    raise
                failures += 1
                pause = min(max(interval, exc.retry_after_s or 0.0), MAX_RETRY_AFTER_S)
                logger.warning("Polling transcript %s failed (%s); polling again in %.1f s (%d/%d in a row)",
                               transcript_id, exc, pause, failures, POLL_FAILURES_TOLERATED)
                time.sleep(pause)
                interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL_S)
                continue
            failures = 0
            if transcript.status != last_status:
                logger.info("Transcript %s is %s", transcript_id, transcript.status.value)
                last_status = transcript.status
            if transcript.status == TranscriptStatus.completed:
                return transcript
            if transcript.status == TranscriptStatus.error:
                raise TranscriptFailedError(transcript_id, transcript.error or "no error message given")
            waited = time.monotonic() - started
            if waited + interval > poll_timeout_s:
                raise TranscriptTimeoutError(transcript_id, transcript.status.value, waited)
            time.sleep(interval)
            interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL_S)


@task(name="fetch_vtt", **RETRYING)
@says_when_retries_run_out
def fetch_vtt(transcript_id: str, chars_per_caption: int | None = None) -> str:
    """``GET /v2/transcript/{id}/vtt``: WebVTT captions (times ``MM:SS.mmm``)."""
    with AssemblyAIClient(resolve_settings()) as client:
        return client.get_subtitles(transcript_id, "vtt", chars_per_caption)
