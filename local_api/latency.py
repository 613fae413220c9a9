"""An opt-in latency profile: the local server answers no faster than a remote vendor would.

``POST /_local/latency {"transcript_s": X, "llm_s": Y}`` (both >= 0, seconds), ``GET`` reports it
and the time waited so far, ``DELETE`` turns it off. While on:

- a transcript created meanwhile is reported ``processing`` (its results withheld; captions,
  sentences and the gateway refuse it as not completed) until ``X`` s after its creation, even when
  the engine finished sooner; a slower engine is not slowed further. A transcript that ends in
  ``error`` is reported at once: AssemblyAI also reports failures such as download errors early.
- ``POST /v1/chat/completions`` and ``POST /v1/understanding`` answer no earlier than ``Y`` s after
  the request arrived. The model does its real work first; the rest of the wait is an ``asyncio``
  sleep that holds neither the model nor the event loop, so concurrent requests wait together.

The engines' own time stays measurable: ``/_local/jobs`` keeps the real processing times and
``GET /_local/latency`` reports ``llm_waited_s``, the simulated part of the LLM requests' time.
"""
from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field

# fields of a completed transcript that a client cannot see while it is processing
RESULT_FIELDS = ("text", "words", "utterances", "sentiment_analysis_results", "confidence", "audio_duration")


class LatencyProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transcript_s: float = Field(0.0, ge=0, le=3600, description="a transcript is completed no sooner, s")
    llm_s: float = Field(0.0, ge=0, le=600, description="an LLM Gateway answer is returned no sooner, s")


class Latency:
    """The current profile (off by default) and the simulated waiting it caused."""

    def __init__(self) -> None:
        self.profile = LatencyProfile()
        self._lock = threading.Lock()
        self.llm_waited_s = 0.0
        self.llm_requests = 0
        self.used = False  # set once a transcript got a delay: the list route then checks each one

    def configure(self, body: dict) -> dict:
        self.profile = LatencyProfile.model_validate(body)
        return self.report()

    def clear(self) -> dict:
        self.profile = LatencyProfile()
        return self.report()

    def report(self) -> dict:
        return {**self.profile.model_dump(), "llm_waited_s": round(self.llm_waited_s, 3),
                "llm_requests": self.llm_requests}

    def on_create(self, local: dict) -> None:
        """Called with a new transcript's ``local`` record: remembers the profile's delay for it."""
        if self.profile.transcript_s:
            local["latency_s"] = self.profile.transcript_s
            self.used = True

    @staticmethod
    def visible(transcript: dict, local: dict) -> dict:
        """The transcript as a client may see it now (``processing`` until its delay has passed)."""
        delay = local.get("latency_s")
        if not delay or transcript.get("status") != "completed":
            return transcript
        created = datetime.fromisoformat(local["created"]).replace(tzinfo=timezone.utc).timestamp()
        if time.time() >= created + delay:
            return transcript
        return {**transcript, "status": "processing", **{k: None for k in RESULT_FIELDS if k in transcript}}

    async def hold_llm(self, arrived: float) -> None:
        """Sleep until ``llm_s`` after ``arrived`` (``time.monotonic()``), if that is still ahead."""
        wait = arrived + self.profile.llm_s - time.monotonic()
        with self._lock:
            self.llm_requests += 1
        if wait > 0:
            await asyncio.sleep(wait)
            with self._lock:
                self.llm_waited_s += wait
