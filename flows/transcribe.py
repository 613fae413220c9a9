"""The transcription path shared by every analysis flow: upload → submit → wait, then the captions.

Each step is a cached, retryable task, so another analysis of the same call, or a rerun with a new
prompt, makes no upload and no transcription request, and a crashed run resumes polling the same
transcript id. Submitting and waiting hold a slot of the ``assemblyai-transcripts`` global
concurrency limit (``tasks.limits``), AssemblyAI's concurrent transcriptions per account.

These are plain functions called by the flows, so the tasks appear in the calling flow run.
"""
from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger

from callflows.audio import AudioSource
from callflows.captions import Caption, transcript_captions
from callflows.errors import NotFoundError, TranscriptFailedError
from callflows.models import Transcript, TranscriptionOptions
from tasks.limits import transcript_slot
from tasks.transcription import fetch_vtt, submit_transcript, upload_audio, wait_for_transcript


def _is_stale(exc: Exception) -> bool:
    """A cached upload or transcript that the API no longer has (deleted, or another server's data)."""
    if isinstance(exc, NotFoundError):
        return True
    if isinstance(exc, TranscriptFailedError):
        return exc.resubmit_may_help or exc.error.lower().startswith("download error")
    return False


def transcribe(source: AudioSource, options: TranscriptionOptions,
               poll_timeout_s: float = 3600.0) -> tuple[Transcript, bool]:
    """Transcribe one checked recording (``callflows.audio.check_audio``) with ``options``; return the completed
    transcript, and whether this run submitted it (False: the transcript id came from the cache, so this run
    paid no transcription: ``callflows.usage``). Raises ``TranscriptFailedError`` with AssemblyAI's message,
    ``APIError`` for HTTP failures that retries did not cure, ``TranscriptTimeoutError`` after
    ``poll_timeout_s`` s.

    If the cached upload or transcript turns out stale (404, a download error for a cached upload, or
    AssemblyAI's "Server error" which its docs say to resubmit), the path is redone once without cache.
    """
    try:
        return _transcribe(source, options, poll_timeout_s, refresh=False)
    except (NotFoundError, TranscriptFailedError) as exc:
        if not _is_stale(exc):
            raise
        get_run_logger().warning("%s: uploading and submitting again without the cache", exc)
        return _transcribe(source, options, poll_timeout_s, refresh=True)


def _transcribe(source: AudioSource, options: TranscriptionOptions, poll_timeout_s: float,
                refresh: bool) -> tuple[Transcript, bool]:
    if source.kind == "file":
        audio_url = upload_audio.with_options(refresh_cache=refresh)(source.value, source.sha256)
    else:
        audio_url = source.value
    with transcript_slot():  # from the submission until the transcript is completed
        submitted = submit_transcript.with_options(refresh_cache=refresh)(audio_url, options, source.cache_key,
                                                                          return_state=True)
        transcript_id = submitted.result()
        return (wait_for_transcript.with_options(refresh_cache=refresh)(transcript_id, poll_timeout_s),
                submitted.name != "Cached")


def fetch_captions(transcript: Transcript, out_dir: Path, chars_per_caption: int | None = None) -> list[Caption]:
    """``GET /v2/transcript/{id}/vtt`` (``fetch_vtt``), saved as ``<out_dir>/captions.vtt``; returns the
    captions with speakers (``callflows.captions.transcript_captions``). Raises ``CaptionsError`` for
    captions that are not WebVTT (the file is still saved)."""
    vtt = fetch_vtt(transcript.id, chars_per_caption)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "captions.vtt").write_text(vtt, encoding="utf-8")
    return transcript_captions(transcript, vtt)
