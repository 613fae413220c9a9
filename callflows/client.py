"""requests-based clients for AssemblyAI's REST API and the LLM Gateway.

Thin functions over one ``requests.Session``, each taking and returning the pydantic models of
``callflows.models``. Failures raise ``callflows.errors.APIError`` subclasses that keep the status code
and the API's error text and say whether a retry can help. These clients never retry: retries belong
to the Prefect tasks, where they are visible. Endpoints: AssemblyAI OpenAPI spec (``/v2/upload``,
``/v2/transcript``, ``/v2/transcript/{id}/vtt|srt|sentences``) and ``llm-gateway.yml``
(``/v1/chat/completions``).
"""
from __future__ import annotations

import email.utils
import re
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import requests

from callflows import __version__
from callflows.errors import (
    APIError, AuthenticationError, BadRequestError, InputError, NotFoundError, PermissionDeniedError,
    RateLimitError, ServerError, TransportError,
)
from callflows.models import (
    ChatCompletion, ChatCompletionRequest, SentencesResponse, SpeakerIdentification, Transcript, TranscriptList,
    TranscriptParams, TranscriptStatus, UnderstandingResponse, UploadedFile,
)
from callflows.settings import Settings

CONNECT_TIMEOUT_S = 10.0
_NOT_FOUND_TEXT = "transcript id not found"  # AssemblyAI answers 400 with this for unknown ids


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (integer seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_text(response: requests.Response) -> str:
    """The API's error message from any of its three error shapes, or the start of a non-JSON body.

    Shapes: ``{"error": "..."}`` (AssemblyAI), ``{"error": {"code", "message"}}`` (gateway docs),
    ``{"message": ..., "metadata": {"errors": [...]}}`` (gateway business errors).
    """
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip()
        return text[:300] if text else (response.reason or "no response body")
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, str) and err:
            return err
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        details = (body.get("metadata") or {}).get("errors") if isinstance(body.get("metadata"), dict) else None
        if body.get("message"):
            return str(body["message"]) + (f" ({'; '.join(map(str, details))})" if details else "")
        if details:
            return "; ".join(map(str, details))
        if isinstance(body.get("detail"), str):
            return body["detail"]
    return str(body)[:300]


def raise_for_status(response: requests.Response) -> None:
    """Raise the typed ``APIError`` for any status other than 200 (AssemblyAI's only success code)."""
    status = response.status_code
    if status == 200:
        return
    text = error_text(response)
    common = dict(status_code=status, method=response.request.method or "", url=_safe_url(response.url))
    if status == 429:
        raise RateLimitError(text, retryable=True,
                             retry_after_s=parse_retry_after(response.headers.get("Retry-After")), **common)
    if status == 408 or status >= 500:
        raise ServerError(text, retryable=True,
                          retry_after_s=parse_retry_after(response.headers.get("Retry-After")), **common)
    if status == 401:
        raise AuthenticationError(text + ". Check ASSEMBLYAI_API_KEY (or your Secret block)", **common)
    if status == 403:
        raise PermissionDeniedError(text, **common)
    if status == 404 or (status == 400 and _NOT_FOUND_TEXT in text.lower()):
        if _NOT_FOUND_TEXT in text.lower():
            text += (". Check the id: a transcript exists only for the account (API key) and server that "
                     "created it, and not after DELETE")
        raise NotFoundError(text, **common)
    if 200 < status < 300:
        raise APIError(f"unexpected success status {status}: {text}", **common)
    raise BadRequestError(text, **common)


def _safe_url(url: str | None) -> str:
    return (url or "").split("?")[0]


class _HTTPClient:
    def __init__(self, settings: Settings, base_url: str, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.base_url = base_url
        self.session = session or requests.Session()
        self.session.headers["user-agent"] = f"callflows/{__version__} python-requests/{requests.__version__}"
        if settings.api_key is not None and settings.api_key.get_secret_value():
            # The raw key, no "Bearer" prefix (AssemblyAI OpenAPI securitySchemes.ApiKey).
            self.session.headers["authorization"] = settings.api_key.get_secret_value()

    def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(
                method, url, timeout=(CONNECT_TIMEOUT_S, timeout or self.settings.http_timeout), **kwargs)
        except requests.Timeout as exc:
            raise TransportError(f"timed out ({type(exc).__name__})", method=method, url=_safe_url(url),
                                 retryable=True) from None
        except requests.ConnectionError as exc:
            raise TransportError(f"connection failed ({type(exc).__name__}: {_short(exc)})", method=method,
                                 url=_safe_url(url), retryable=True) from None
        raise_for_status(response)
        return response

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


TRANSCRIPT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_transcript_id(transcript_id: str) -> str:
    """The id stripped, or ``InputError`` before any request if it is empty or malformed.

    AssemblyAI ids are UUIDs (``9ea68fd3-f953-42c1-9742-976c447fb463``); anything but letters,
    digits, ``-`` and ``_`` (a path, a URL, ``..``) cannot be one."""
    if not isinstance(transcript_id, str) or not transcript_id.strip():
        raise InputError("transcript_id is empty: pass the id returned by POST /v2/transcript")
    value = transcript_id.strip()
    if not TRANSCRIPT_ID_RE.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "…"
        raise InputError(f"transcript_id {shown!r} is malformed: an id has only letters, digits, '-' and '_' "
                         f"(e.g. 9ea68fd3-f953-42c1-9742-976c447fb463); pass the id returned by POST /v2/transcript")
    return value


def _transcript_path(transcript_id: str) -> str:
    return "/v2/transcript/" + quote(check_transcript_id(transcript_id), safe="")


class AssemblyAIClient(_HTTPClient):
    """AssemblyAI REST API (``settings.api_base_url``)."""

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        super().__init__(settings, settings.api_base_url, session)

    def upload(self, path: str | Path) -> UploadedFile:
        """``POST /v2/upload``: stream the file's bytes from disk (constant memory, any size up to the
        API's 2.2 GB). Returns the ``upload_url`` to transcribe. Raises ``APIError``."""
        with open(path, "rb") as f:
            response = self._request("POST", "/v2/upload", data=f, timeout=self.settings.upload_timeout_s,
                                     headers={"content-type": "application/octet-stream"})
        return UploadedFile.model_validate(response.json())

    def create_transcript(self, params: TranscriptParams) -> Transcript:
        """``POST /v2/transcript``: submit a transcription job; returns the transcript (status queued)."""
        body = params.model_dump(exclude_none=True)
        return Transcript.model_validate(self._request("POST", "/v2/transcript", json=body).json())

    def list_transcripts(self, limit: int = 100, status: str | None = None) -> TranscriptList:
        """``GET /v2/transcript?limit=&status=``: the account's newest transcripts first (1 ≤ limit ≤ 200)."""
        params = {"limit": limit, **({"status": status} if status else {})}
        return TranscriptList.model_validate(self._request("GET", "/v2/transcript", params=params).json())

    def find_transcript(self, params: TranscriptParams, limit: int = 100) -> Transcript | None:
        """The newest transcript of ``params.audio_url`` made with the same options, not failed nor
        deleted, among the account's ``limit`` newest; else None. Used before re-sending a
        ``POST /v2/transcript`` whose answer was lost (timeout, reset): AssemblyAI has no idempotency
        key, so this is how a retry avoids paying for the same transcription twice. Options the API
        does not echo (null) are not compared. Costs 1 list request plus 1 GET per candidate."""
        wanted = params.model_dump(exclude_none=True)
        for item in self.list_transcripts(limit).transcripts:
            if item.audio_url != params.audio_url or item.status == TranscriptStatus.error:
                continue
            candidate = self.get_transcript(item.id)
            echoed = candidate.model_dump()
            if all(echoed.get(k) is None or echoed.get(k) == v for k, v in wanted.items()) and \
                    all(echoed.get(k) is True for k, v in wanted.items() if v is True):
                return candidate
        return None

    def get_transcript(self, transcript_id: str) -> Transcript:
        """``GET /v2/transcript/{id}``. Unknown id → ``NotFoundError`` (AssemblyAI answers 400 or 404)."""
        return Transcript.model_validate(self._request("GET", _transcript_path(transcript_id)).json())

    def delete_transcript(self, transcript_id: str) -> Transcript:
        """``DELETE /v2/transcript/{id}``: scrub the transcript and its uploaded audio."""
        return Transcript.model_validate(self._request("DELETE", _transcript_path(transcript_id)).json())

    def get_subtitles(self, transcript_id: str, fmt: Literal["vtt", "srt"] = "vtt",
                      chars_per_caption: int | None = None) -> str:
        """``GET /v2/transcript/{id}/vtt`` (or ``/srt``): captions as text."""
        params = {"chars_per_caption": chars_per_caption} if chars_per_caption else None
        return self._request("GET", f"{_transcript_path(transcript_id)}/{fmt}", params=params).text

    def get_sentences(self, transcript_id: str) -> SentencesResponse:
        """``GET /v2/transcript/{id}/sentences``."""
        return SentencesResponse.model_validate(
            self._request("GET", f"{_transcript_path(transcript_id)}/sentences").json())


class LLMGatewayClient(_HTTPClient):
    """AssemblyAI LLM Gateway (``settings.gateway_base_url``)."""

    def __init__(self, settings: Settings, session: requests.Session | None = None,
                 timeout_s: float | None = None) -> None:
        super().__init__(settings, settings.gateway_base_url, session)
        self.timeout_s = timeout_s or settings.llm_timeout_s

    def chat_completion(self, request: ChatCompletionRequest) -> ChatCompletion:
        """``POST /v1/chat/completions``. Raises ``APIError`` (429/5xx retryable)."""
        response = self._request("POST", "/v1/chat/completions", json=request.payload(), timeout=self.timeout_s)
        completion = ChatCompletion.model_validate(response.json())
        completion.served_by = response.headers.get("x-callflows-served-by")
        return completion

    def identify_speakers(self, transcript_id: str, identification: SpeakerIdentification) -> UnderstandingResponse:
        """``POST /v1/understanding`` speaker identification on an existing transcript (which must have
        been created with ``speaker_labels``). Source: AssemblyAI docs, "Speaker identification on an
        existing transcript"."""
        body = {"transcript_id": check_transcript_id(transcript_id), "speech_understanding": {"request": {
            "speaker_identification": identification.model_dump(exclude_none=True)}}}
        response = self._request("POST", "/v1/understanding", json=body, timeout=self.timeout_s)
        return UnderstandingResponse.model_validate(response.json())
