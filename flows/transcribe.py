"""The transcription path shared by every analysis: upload → submit → wait.

Each step is a cached, retryable task, so another analysis of the same call, or a rerun with a new
prompt, makes no upload and no transcription request, and a crashed run resumes polling the same
transcript id. Submitting and waiting hold a slot of the ``assemblyai-transcripts`` global
concurrency limit (``tasks.limits``), AssemblyAI's concurrent transcriptions per account.
"""
from __future__ import annotations

from prefect import flow, get_run_logger

from callflows.audio import AudioSource, check_audio, wav_channels
from callflows.errors import InputError, NotFoundError, TranscriptFailedError
from callflows.models import Transcript, TranscriptionOptions
from tasks.limits import transcript_slot
from tasks.transcription import submit_transcript, upload_audio, wait_for_transcript


def call_options(source: AudioSource, multichannel: bool | None,
                 speakers_expected: int | None) -> TranscriptionOptions:
    """Transcription options shared by the analyses, so they reuse one cached transcript:
    ``multichannel`` (one speaker per channel) for stereo WAV input unless ``multichannel=False``,
    otherwise ``speaker_labels`` (with ``speakers_expected``); ``sentiment_analysis`` always.

    Raises ``InputError`` (before any request) for ``multichannel=True`` on a mono WAV file.
    """
    channels = wav_channels(source)
    if multichannel is None:
        multichannel = bool(channels and channels >= 2)
    elif multichannel and channels == 1:
        raise InputError(f"multichannel=True but {source.value!r} is mono (1 channel): pass a stereo recording with "
                         f"one speaker per channel, or leave multichannel off to use speaker labels")
    if multichannel:
        return TranscriptionOptions(multichannel=True, sentiment_analysis=True)
    return TranscriptionOptions(speaker_labels=True, sentiment_analysis=True, speakers_expected=speakers_expected)


def _is_stale(exc: Exception) -> bool:
    """A cached upload or transcript that the API no longer has (deleted, or another server's data)."""
    if isinstance(exc, NotFoundError):
        return True
    if isinstance(exc, TranscriptFailedError):
        return exc.resubmit_may_help or exc.error.lower().startswith("download error")
    return False


@flow(name="transcribe-call")
def transcribe_call(audio: str, options: TranscriptionOptions, poll_timeout_s: float = 3600.0) -> Transcript:
    """Transcribe one recording (local path or http(s) URL) with ``options``; return the completed
    transcript. Raises ``AudioInputError`` before any request for bad audio, ``TranscriptFailedError``
    with AssemblyAI's message, ``APIError`` for HTTP failures that retries did not cure.

    If the cached upload or transcript turns out stale (404, a download error for a cached upload, or
    AssemblyAI's "Server error" which its docs say to resubmit), the path is redone once without cache.
    """
    source = check_audio(audio)
    try:
        return _transcribe(source, options, poll_timeout_s, refresh=False)
    except (NotFoundError, TranscriptFailedError) as exc:
        if not _is_stale(exc):
            raise
        get_run_logger().warning("%s: uploading and submitting again without the cache", exc)
        return _transcribe(source, options, poll_timeout_s, refresh=True)


def _transcribe(source: AudioSource, options: TranscriptionOptions, poll_timeout_s: float,
                refresh: bool) -> Transcript:
    if source.kind == "file":
        audio_url = upload_audio.with_options(refresh_cache=refresh)(source.value, source.sha256)
    else:
        audio_url = source.value
    with transcript_slot():  # from the submission until the transcript is completed
        transcript_id = submit_transcript.with_options(refresh_cache=refresh)(audio_url, options, source.cache_key)
        return wait_for_transcript.with_options(refresh_cache=refresh)(transcript_id, poll_timeout_s)
