"""An opt-in latency profile: the local server answers no faster than a remote vendor would.

``POST /_local/latency {"transcript_s": X, "llm_s": Y}`` (seconds, floats >= 0; both optional,
default 0; X at most 3600, Y at most 600; any other key, a negative or a non-number → 422) sets it;
``GET`` returns ``{"transcript_s", "llm_s", "llm_requests", "llm_waited_s"}``: the profile (both 0
when off), the LLM Gateway answers served and the simulated waiting in them (s), both counted since
the server started. ``DELETE`` turns it off (X = Y = 0) and returns the same object. Local-only,
no key needed, like ``/_local/chaos``.

- **Transcripts** created while X > 0 keep X in their record (``local.latency_s``, so a restart or a
  later profile change does not alter it). Until ``created + X`` s such a transcript is reported as
  the client would see a slower vendor's: status ``processing`` (``queued`` while the job really is
  queued) with its results null, in ``GET /v2/transcript/{id}``, the list (status filter included),
  captions, sentences and paragraphs (400 "not completed"), ``DELETE`` (400 "still processing"),
  the gateway's ``transcript_id``, and the webhook (posted at ``created + X``). After that, or at
  once when the engine is slower than X, the real status. A job that ends in ``error`` is reported
  at once (see :meth:`Latency.visible`).
- **LLM Gateway**: ``POST /v1/chat/completions`` and ``POST /v1/understanding`` answer no earlier
  than Y s after the request arrived. The model does its real work first (one request at a time,
  under its lock); the rest of the wait is an ``asyncio`` sleep that holds neither the model nor the
  event loop, so concurrent requests wait together. Refused requests (4xx/5xx) are answered at once.

Engine time stays measurable: ``/_local/jobs`` keeps the jobs' real timings (and shows ``latency_s``),
each ``/_local/requests/log`` entry has ``simulated_wait_s`` (0 when none), and ``GET
/_local/latency`` sums the LLM requests' simulated waiting in ``llm_waited_s``.
"""
from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .transcripts import RESULT_KEYS

TIMING_SCOPE_KEY = "callflows.timing"
"""ASGI scope key of a per-request dict: ``arrived`` (``time.monotonic()``, set by the middleware) and
``simulated_wait_s`` (set by the handler, read back into the request log)."""


class LatencyProfile(BaseModel):
    """The profile's two delays, in seconds (0 = no delay)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)  # JSON numbers only

    transcript_s: float = Field(0.0, ge=0, le=3600, description="a transcript is completed no sooner "
                                                                 "than this after its creation, s")
    llm_s: float = Field(0.0, ge=0, le=600, description="an LLM Gateway answer is returned no sooner than "
                                                         "this after the request arrived, s")


def profile_error(exc: ValidationError) -> str:
    """A pydantic error as one sentence naming the fields (``transcript_s: Input should be …``)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


def visible_at(local: dict) -> float | None:
    """Unix time (s) from which a transcript's final status may be shown, or None without a delay."""
    delay = local.get("latency_s")
    if not delay:
        return None
    return datetime.fromisoformat(local["created"]).replace(tzinfo=timezone.utc).timestamp() + float(delay)


class Latency:
    """The current profile (off by default) and the simulated LLM waiting it caused. Thread-safe."""

    def __init__(self) -> None:
        self.profile = LatencyProfile()
        self._lock = threading.Lock()
        self.llm_waited_s = 0.0
        self.llm_requests = 0

    def configure(self, body: object) -> dict:
        """Replace the profile; raises pydantic's ValidationError (the app answers 422)."""
        self.profile = LatencyProfile.model_validate(body)
        return self.report()

    def clear(self) -> dict:
        """Turn the profile off (X = Y = 0). Transcripts created meanwhile keep their X."""
        self.profile = LatencyProfile()
        return self.report()

    def report(self) -> dict:
        with self._lock:
            return {**self.profile.model_dump(), "llm_requests": self.llm_requests,
                    "llm_waited_s": round(self.llm_waited_s, 3)}

    def on_create(self, local: dict) -> None:
        """Called with a new transcript's ``local`` record: keeps the profile's X (s) in it."""
        if self.profile.transcript_s:
            local["latency_s"] = self.profile.transcript_s

    @staticmethod
    def visible(transcript: dict, local: dict) -> dict:
        """The transcript as a client may see it now: a ``completed`` one is ``processing``, results
        null, until ``created + latency_s``. Any other status is shown as it is. An ``error`` is not
        held back: AssemblyAI's failures (download errors, a file that is not audio, audio too short)
        come from the checks before transcription and are reported within seconds, not after the
        time a transcription would take."""
        if transcript.get("status") != "completed":
            return transcript
        until = visible_at(local)
        if until is None or time.time() >= until:
            return transcript
        return {**transcript, "status": "processing", **{k: None for k in RESULT_KEYS if k in transcript}}

    async def hold_llm(self, arrived: float) -> float:
        """Sleep (asyncio) until ``llm_s`` after ``arrived`` (``time.monotonic()``) if that is still
        ahead; return the seconds slept (0 when the real work took longer, or the profile is off)."""
        wait = arrived + self.profile.llm_s - time.monotonic()
        with self._lock:
            self.llm_requests += 1
        if wait <= 0:
            return 0.0
        await asyncio.sleep(wait)
        with self._lock:
            self.llm_waited_s += wait
        return wait
