"""The local AssemblyAI-compatible HTTP API (FastAPI): ``create_app(config)``.

AssemblyAI routes (shapes, codes and error bodies from /work/shared/docs/assemblyai-contract.md)::

    POST   /v2/upload                              → {"upload_url": "<base>/upload/<uuid>"}
    POST   /v2/transcript                          → Transcript (status "queued")
    GET    /v2/transcript                          → {"page_details", "transcripts"}
    GET    /v2/transcript/{id}                     → Transcript
    DELETE /v2/transcript/{id}                     → scrubbed Transcript
    GET    /v2/transcript/{id}/vtt | /srt          → text/plain captions (?chars_per_caption=)
    GET    /v2/transcript/{id}/sentences | /paragraphs
    POST   /v1/chat/completions                    LLM Gateway (local model)
    POST   /v1/understanding                       speaker identification (heuristic, offline)
    POST   /v1/understanding/validate              → {} when the request is valid
    GET    /v1/models                              (no key needed, like the real gateway)

Local-only routes (never need the key, never show it)::

    GET    /_local/health
    GET    /_local/requests     {"counts": {"METHOD /route/template": n}, "status_codes": {...}, "total"}
                                (every API request, errors included; /_local/* itself is not counted)
    GET    /_local/requests/log {"requests": [{"route", "status", "start", "end", "simulated_wait_s"}]}:
                                the newest 10,000 requests' times (Unix time, s; from the first byte
                                in to the last out) and the latency profile's wait in them (s, 0 if none)
    DELETE /_local/requests     reset the counters and the log
    GET    /_local/jobs         per-job timings (processing_ms …), newest first
    GET    /_local/jobs/{id}
    GET|POST|DELETE /_local/faults   scripted faults (status codes, delays) per route
    GET|POST|DELETE /_local/chaos    seeded random faults (429/500/502/503, resets, lost responses)
                                     and what was injected (local_api/faults.py)
    GET|POST|DELETE /_local/latency  {"transcript_s": X, "llm_s": Y}: transcripts completed no sooner
                                     than X s after creation, LLM answers no sooner than Y s after
                                     the request (simulated waits; local_api/latency.py)
    GET    /_local/docs         OpenAPI UI

Behaviour choices (where AssemblyAI's is unknown or impossible offline):

* upload URLs are ``<base url of the request>/upload/<uuid>`` (AssemblyAI: ``https://cdn.assemblyai
  .com/upload/<uuid>``); an ``audio_url`` whose *path* is ``/upload/<uuid>`` of a stored upload uses
  that file whatever the host; any other http(s) URL is downloaded by the job.
* unknown or malformed transcript ids → 400 ``Transcript lookup error, transcript id not found``.
* captions/sentences/paragraphs of a transcript not completed → 400 ``Transcript is not completed
  yet`` (status queued/processing), ``Transcript failed: <error>`` (status error); of a deleted one
  → 400 ``Transcript has been deleted``.
* DELETE of a queued or processing transcript → 400 (the job would otherwise write it back).
* features the engines lack (summarization, entity_detection, redact_pii, …) → 400 naming the field.
* ``multichannel: true``: each channel is transcribed on its own; words, utterances and sentiment
  results carry ``channel`` ("1" = left, "2" = right, …), ``speaker`` is the channel ("1", "2") or,
  with ``speaker_labels`` too, ``"<channel><letter>"`` ("1A", "2A"), and ``audio_channels`` is set
  (AssemblyAI docs, "Multichannel transcription"). A mono file ends in status "error" with
  engines.pipeline.MONO_MULTICHANNEL_ERROR (AssemblyAI's behaviour there is UNCONFIRMED).
* ``/v1/understanding``: see local_api/understanding.py (heuristic identification, a 400 naming
  ``speaker_labels`` for a transcript without utterances, unmapped values listed, not an error).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections import deque
from contextlib import asynccontextmanager
from datetime import date
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from .config import LocalApiConfig, resolve_llm_model
from .faults import (Chaos, Faults, FaultSpecError, fingerprint, hold_until_disconnect, reset_connection,
                     status_response)
from .gateway import GatewayError, LocalLLM, inject_transcript, model_list, parse_chat_request
from .jobs import JobRunner
from .latency import TIMING_SCOPE_KEY, Latency, profile_error
from .store import UPLOAD_PATH_RE, EmptyUpload, Store, UploadTooLarge, new_id, now_iso, parse_id
from .subtitles import to_srt, to_vtt
from .transcripts import (STATUSES, ParamError, new_transcript, public, scrubbed,
                          validate_params)

log = logging.getLogger("local_api")

AUTH_ERROR = "Authentication error, API token missing/invalid"
LOOKUP_ERROR = "Transcript lookup error, transcript id not found"
NOT_COMPLETED_ERROR = "Transcript is not completed yet"
MAX_JSON_BYTES = 10 * 1024 * 1024
UNMATCHED = "<unmatched>"
NO_AUTH_ROUTES = {"GET /v1/models"}


class ApiError(Exception):
    """An error answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


# --------------------------------------------------------------------------------- bookkeeping
class RequestCounters:
    """Requests per "METHOD /route/template" and per status code, since start or the last reset.

    Unknown paths count as ``"METHOD <unmatched>"``; the /_local/* routes are not counted, so the
    numbers are the API traffic of the clients under test."""

    LOG_SIZE = 10_000  # newest requests kept in the timing log

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.counts: dict[str, int] = {}
            self.status_codes: dict[str, int] = {}
            self.log: deque[dict] = deque(maxlen=self.LOG_SIZE)
            self.since = now_iso()

    def record(self, key: str, status: int | str, start: float | None = None, end: float | None = None,
               simulated_wait_s: float = 0.0) -> None:
        """Count one request; ``start``/``end`` (Unix time, s) and the latency profile's simulated wait
        within them (s) also go to the timing log."""
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.status_codes[str(status)] = self.status_codes.get(str(status), 0) + 1
            if start is not None and end is not None:
                self.log.append({"route": key, "status": status, "start": round(start, 4), "end": round(end, 4),
                                 "simulated_wait_s": round(simulated_wait_s, 4)})

    def timing_log(self) -> dict:
        with self._lock:
            return {"requests": list(self.log), "since": self.since}

    def snapshot(self) -> dict:
        with self._lock:
            return {"counts": dict(sorted(self.counts.items())),
                    "status_codes": dict(sorted(self.status_codes.items())),
                    "total": sum(self.counts.values()), "since": self.since}


class LocalMiddleware:
    """Pure ASGI middleware: route key, API-key check, fault injection, request counting."""

    def __init__(self, app, *, fastapi_app: FastAPI, config: LocalApiConfig, counters: RequestCounters,
                 faults: Faults, chaos: Chaos) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.config = config
        self.counters = counters
        self.faults = faults
        self.chaos = chaos

    def route_key(self, scope) -> str:
        method = scope.get("method", "GET")
        partial = None
        for route in self.fastapi_app.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return f"{method} {getattr(route, 'path', UNMATCHED)}"
            if match == Match.PARTIAL and partial is None:
                partial = f"{method} {getattr(route, 'path', UNMATCHED)}"
        return partial or f"{method} {UNMATCHED}"

    def authorized(self, scope) -> bool:
        key = self.config.api_key
        if not key:
            return True
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                return hmac.compare_digest(value.strip(), key.encode("utf-8"))
        return False

    async def chaos_request(self, key: str, scope, receive, send) -> str | None:
        """Serve one request under random faults (local_api.faults). ``send`` records the status of
        what is answered; returns the status to count when nothing is: ``"reset"``, or ``"lost"`` when
        a held response was never read."""
        app_receive, body = receive, b""
        if scope.get("method") != "GET" and key != "POST /v2/upload":  # small JSON: part of the fingerprint
            chunks, more = [], True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return "lost"
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body, replayed = b"".join(chunks), [False]

            async def replay():
                if not replayed[0]:
                    replayed[0] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            app_receive = replay

        kind = self.chaos.decide(key, fingerprint(scope, body))
        if kind is None:
            await self.app(scope, app_receive, send)
            return None
        log.info("chaos: %s on %s", kind, key)
        if kind == "reset":
            if reset_connection(receive):
                await asyncio.sleep(0)  # let uvicorn see the connection is gone (no 500 on a dead socket)
                return "reset"
            kind = "503"  # transport unreachable (not uvicorn): the nearest fault
        if kind == "slow":
            held: list[dict] = []

            async def hold(message):
                held.append(message)

            await self.app(scope, app_receive, hold)
            if await hold_until_disconnect(receive, self.chaos.config["slow_max_s"] if self.chaos.config else 0.1):
                return "lost"
            for message in held:
                await send(message)
            return None
        status = int(kind)
        retry_after = (self.chaos.config or {}).get("retry_after_s") if status == 429 else None
        await status_response(status, retry_after)(scope, app_receive, send)
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = self.route_key(scope)
        status_seen: list[int | str] = [500]
        started = time.time()
        timing = scope[TIMING_SCOPE_KEY] = {"arrived": time.monotonic(), "simulated_wait_s": 0.0}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_seen[0] = message["status"]
            await send(message)

        try:
            path = scope.get("path", "")
            if not path.startswith("/_local") and key not in NO_AUTH_ROUTES and not self.authorized(scope):
                body: dict = {"error": AUTH_ERROR}
                if path.startswith("/v1/"):
                    body.update({"status": "error", "request_id": new_id()})
                await JSONResponse(body, status_code=401)(scope, receive, send_wrapper)
                return
            if not path.startswith("/_local"):
                fault = self.faults.take(key)
                if fault is not None:
                    if fault["delay_ms"]:
                        await asyncio.sleep(fault["delay_ms"] / 1000)
                    if fault["status_code"] is not None:
                        response = status_response(fault["status_code"], fault.get("retry_after"), fault.get("body"))
                        await response(scope, receive, send_wrapper)
                        return
                if self.chaos.covers(key):
                    unanswered = await self.chaos_request(key, scope, receive, send_wrapper)
                    if unanswered:
                        status_seen[0] = unanswered
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            if not scope.get("path", "").startswith("/_local"):
                self.counters.record(key, status_seen[0], started, time.time(), timing["simulated_wait_s"])


# --------------------------------------------------------------------------------- helpers
def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _json_body(request: Request, gateway: bool = False) -> Any:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            msg = f"request body is larger than {MAX_JSON_BYTES} bytes"
            raise GatewayError(413, msg) if gateway else ApiError(413, msg)
    if not raw.strip():
        msg = "request body is empty: send a JSON object"
        raise GatewayError(400, msg) if gateway else ApiError(400, "Request body is empty: send a JSON object")
    try:
        return json.loads(raw)
    except ValueError as e:
        msg = f"request body is not valid JSON: {e}"
        raise GatewayError(400, msg) if gateway else ApiError(400, f"Request body is not valid JSON: {e}")


def _validation_message(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one AssemblyAI-style sentence ("limit must be an Integer")."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "request"
        kind, ctx = err.get("type", ""), err.get("ctx") or {}
        if kind == "int_parsing" or kind == "int_type":
            parts.append(f"{field} must be an Integer")
        elif kind == "greater_than_equal":
            parts.append(f"{field} must be greater than or equal to {ctx.get('ge')}")
        elif kind == "less_than_equal":
            parts.append(f"{field} must be less than or equal to {ctx.get('le')}")
        elif kind == "missing":
            parts.append(f"{field} is required")
        else:
            parts.append(f"{field}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "Invalid request"


def _job_view(record: dict) -> dict:
    t, local = record["transcript"], record["local"]
    keys = ("created", "started", "completed", "queue_ms", "processing_ms", "transcribe_ms",
            "total_ms", "attempts", "interrupted", "stt_model", "deleted", "latency_s")
    return {"id": t["id"], "status": t["status"], "audio_duration": t.get("audio_duration"),
            "error": t.get("error"), **{k: local.get(k) for k in keys}}


# --------------------------------------------------------------------------------- the app
def create_app(config: LocalApiConfig) -> FastAPI:
    """Build the app over ``config.data_dir``; the job workers start with the app's lifespan."""
    store = Store(config.data_dir)
    runner = JobRunner(store, config)
    counters = RequestCounters()
    faults = Faults()
    chaos = Chaos()
    latency = Latency()
    llm_name: dict[str, str] = {}
    llm_holder: dict[str, LocalLLM] = {}
    llm_guard = threading.Lock()

    def served_by() -> str:
        with llm_guard:
            if "name" not in llm_name:
                llm_name["name"] = resolve_llm_model(config)
            return llm_name["name"]

    def local_llm() -> LocalLLM:
        name = served_by()
        with llm_guard:
            if "llm" not in llm_holder:
                llm_holder["llm"] = LocalLLM(name)
            return llm_holder["llm"]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.start()
        log.info("local AssemblyAI-compatible API ready: data %s, speech model %s, workers %d, auth %s",
                 store.root, config.stt_model, config.workers, "on" if config.api_key else "off")
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(title="callflows local AssemblyAI-compatible API", version="1.0",
                  lifespan=lifespan, docs_url="/_local/docs", redoc_url=None,
                  openapi_url="/_local/openapi.json")
    app.state.store, app.state.runner, app.state.config = store, runner, config
    app.add_middleware(LocalMiddleware, fastapi_app=app, config=config, counters=counters, faults=faults, chaos=chaos)

    # ----------------------------------------------------------------- error handlers
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(FaultSpecError)
    async def _fault_spec_error(request: Request, exc: FaultSpecError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "Internal Server Error"}, status_code=500)

    # ----------------------------------------------------------------- lookups
    def load_record(transcript_id: str) -> dict:
        record = store.load(transcript_id) if parse_id(transcript_id) else None
        if record is None:
            raise ApiError(400, LOOKUP_ERROR)
        return record

    def completed_transcript(transcript_id: str) -> dict:
        record = load_record(transcript_id)
        t = latency.visible(record["transcript"], record["local"])
        if record["local"].get("deleted"):
            raise ApiError(400, "Transcript has been deleted")
        if t["status"] == "error":
            raise ApiError(400, f"Transcript failed: {t.get('error')}")
        if t["status"] != "completed":
            raise ApiError(400, NOT_COMPLETED_ERROR)
        return t

    # ----------------------------------------------------------------- /v2/upload
    @app.post("/v2/upload")
    async def upload(request: Request):
        """Stream the raw body to disk (any or no Content-Type)."""
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > config.max_upload_bytes:
            raise ApiError(413, f"File too large: uploads are limited to {config.max_upload_bytes} bytes")
        try:
            upload_id, size = await store.save_upload(request.stream(), config.max_upload_bytes)
        except UploadTooLarge:
            raise ApiError(413, f"File too large: uploads are limited to {config.max_upload_bytes} bytes") from None
        except ClientDisconnect:
            log.warning("upload interrupted: the client disconnected (partial file removed)")
            raise ApiError(400, "Upload interrupted: the client disconnected before sending the whole body") from None
        except EmptyUpload:
            raise ApiError(400, "Upload is empty: the request body had no bytes. Send the file's "
                                "bytes as the request body.") from None
        log.info("upload %s stored (%d bytes)", upload_id, size)
        return {"upload_url": f"{_base_url(request)}/upload/{upload_id}"}

    # ----------------------------------------------------------------- /v2/transcript
    @app.post("/v2/transcript")
    async def create_transcript(request: Request):
        body = await _json_body(request)
        try:
            params = validate_params(body)
        except ParamError as e:
            raise ApiError(400, str(e)) from None
        tid = new_id()
        t = new_transcript(tid, params)
        local = {"seq": store.next_seq(), "created": now_iso(), "attempts": 0}
        if params.get("webhook_auth_header_value") is not None:
            local["webhook_auth_header_value"] = params["webhook_auth_header_value"]
        match = UPLOAD_PATH_RE.search(urlsplit(params["audio_url"]).path)
        if match:
            local["upload_id"] = match.group(1).lower()
        latency.on_create(local)
        store.save({"transcript": t, "local": local})
        runner.submit(tid)
        return public(t)

    @app.get("/v2/transcript")
    async def list_transcripts(request: Request, limit: int = Query(10, ge=1, le=200)):
        q = request.query_params
        status = q.get("status") or None
        if status is not None and status not in STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        created_on = q.get("created_on") or None
        if created_on is not None:
            try:
                date.fromisoformat(created_on)
            except ValueError:
                raise ApiError(400, f"created_on must be a date (YYYY-MM-DD), got {created_on!r}") from None
        throttled_only = (q.get("throttled_only") or "").lower() == "true"
        before_id, after_id = q.get("before_id") or None, q.get("after_id") or None
        entries = store.index()  # newest first

        def seen_status(e) -> str:  # as the latency profile lets clients see it
            if not e.latency_s or e.status != "completed":
                return e.status
            return latency.visible({"status": e.status}, {"created": e.created, "latency_s": e.latency_s})["status"]

        seen = {e.id: seen_status(e) for e in entries}

        def ref_seq(name: str, value: str) -> int:
            tid = parse_id(value)
            for e in entries:
                if e.id == tid:
                    return e.seq
            raise ApiError(400, LOOKUP_ERROR)

        filtered = [e for e in entries
                    if (status is None or seen[e.id] == status)
                    and (created_on is None or e.created.startswith(created_on))
                    and not throttled_only]
        if before_id is not None:
            seq = ref_seq("before_id", before_id)
            window = [e for e in filtered if e.seq < seq][:limit]
        elif after_id is not None:
            seq = ref_seq("after_id", after_id)
            window = [e for e in filtered if e.seq > seq][-limit:]
        else:
            window = filtered[:limit]
        base = _base_url(request)
        extra = {k: v for k, v in (("status", status), ("created_on", created_on)) if v}

        def page_url(**kw) -> str:
            return f"{base}/v2/transcript?" + urlencode({"limit": limit, **extra, **kw})

        prev_url = next_url = None
        if window:
            if any(e.seq < window[-1].seq for e in filtered):
                prev_url = page_url(before_id=window[-1].id)
            if any(e.seq > window[0].seq for e in filtered):
                next_url = page_url(after_id=window[0].id)
        return {
            "page_details": {"limit": limit, "result_count": len(window), "current_url": str(request.url),
                             "prev_url": prev_url, "next_url": next_url},
            "transcripts": [{"id": e.id, "resource_url": f"{base}/v2/transcript/{e.id}",
                             "status": seen[e.id], "created": e.created,
                             "completed": e.completed if seen[e.id] == e.status else None,
                             "audio_url": e.audio_url, "error": e.error} for e in window],
        }

    @app.get("/v2/transcript/{transcript_id}")
    async def get_transcript(transcript_id: str):
        record = load_record(transcript_id)
        return public(latency.visible(record["transcript"], record["local"]))

    @app.delete("/v2/transcript/{transcript_id}")
    async def delete_transcript(transcript_id: str):
        record = load_record(transcript_id)
        t, local = record["transcript"], record["local"]
        if local.get("deleted"):
            return public(t)
        shown = latency.visible(t, local)["status"]
        if shown in ("queued", "processing"):
            raise ApiError(400, f"Transcript is still {shown}: delete it once its status is "
                                "completed or error")
        upload_id = local.get("upload_id")
        if upload_id:
            store.delete_upload(upload_id)
        store.download_path(t["id"]).unlink(missing_ok=True)

        def scrub(rec: dict) -> None:
            rec["transcript"] = scrubbed(rec["transcript"])
            rec["local"]["deleted"] = now_iso()
            rec["local"].pop("webhook_auth_header_value", None)

        record = store.update(t["id"], scrub)
        return public(record["transcript"])

    @app.get("/v2/transcript/{transcript_id}/vtt", response_class=PlainTextResponse)
    async def get_vtt(transcript_id: str, chars_per_caption: int | None = Query(None, ge=1)):
        t = completed_transcript(transcript_id)
        return PlainTextResponse(to_vtt(t.get("words") or [], chars_per_caption))

    @app.get("/v2/transcript/{transcript_id}/srt", response_class=PlainTextResponse)
    async def get_srt(transcript_id: str, chars_per_caption: int | None = Query(None, ge=1)):
        t = completed_transcript(transcript_id)
        return PlainTextResponse(to_srt(t.get("words") or [], chars_per_caption))

    def _segments(t: dict, key: str) -> dict:
        from local_api.engines import pipeline  # lazy: numpy etc.

        fn = pipeline.sentences_of if key == "sentences" else pipeline.paragraphs_of
        return {"id": t["id"], "confidence": t.get("confidence"), "audio_duration": t.get("audio_duration"),
                key: fn(t.get("words") or []), "speech_model_used": t.get("speech_model_used")}

    @app.get("/v2/transcript/{transcript_id}/sentences")
    def get_sentences(transcript_id: str):
        return _segments(completed_transcript(transcript_id), "sentences")

    @app.get("/v2/transcript/{transcript_id}/paragraphs")
    def get_paragraphs(transcript_id: str):
        return _segments(completed_transcript(transcript_id), "paragraphs")

    @app.api_route("/v2/transcript/{rest:path}", methods=["GET", "DELETE", "POST", "PUT", "PATCH"],
                   include_in_schema=False)
    async def transcript_fallback(rest: str):
        """Anything else under /v2/transcript/: a bad id (``..%2F..%2Fetc``) is a lookup error, an
        unknown sub-resource of a real transcript is 404."""
        first = rest.split("/", 1)[0]
        if parse_id(first) and store.exists(first):
            raise ApiError(404, "Not found")
        raise ApiError(400, LOOKUP_ERROR)

    # ----------------------------------------------------------------- LLM Gateway
    def transcript_for_gateway(transcript_id: str) -> dict | None:
        record = store.load(transcript_id) if parse_id(transcript_id) else None
        if record is None or record["local"].get("deleted"):
            return None
        return public(latency.visible(record["transcript"], record["local"]))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        timing = request.scope.get(TIMING_SCOPE_KEY) or {"arrived": time.monotonic()}
        req = parse_chat_request(await _json_body(request, gateway=True))
        messages = req.messages
        if req.transcript_id is not None:
            t = transcript_for_gateway(req.transcript_id)
            if t is None:
                raise GatewayError(404, f"transcript {req.transcript_id} not found")
            if t["status"] != "completed":
                raise GatewayError(400, f"transcript {req.transcript_id} is not completed "
                                        f"(status: {t['status']})")
            messages = inject_transcript(messages, t.get("text") or "")
        llm = local_llm()
        result = await anyio.to_thread.run_sync(llm.complete, req, messages)  # holds the model's lock
        timing["simulated_wait_s"] = await latency.hold_llm(timing["arrived"])  # holds nothing
        return JSONResponse(result, headers={"X-Callflows-Served-By": llm.name})

    @app.get("/v1/models")
    async def list_models():
        return model_list(served_by())

    @app.post("/v1/understanding")
    async def understanding(request: Request):
        from .understanding import understanding_response

        timing = request.scope.get(TIMING_SCOPE_KEY) or {"arrived": time.monotonic()}
        body = await _json_body(request, gateway=True)
        response = understanding_response(body, transcript_for_gateway)
        timing["simulated_wait_s"] = await latency.hold_llm(timing["arrived"])
        return response

    @app.post("/v1/understanding/validate")
    async def understanding_validate(request: Request):
        from .understanding import validate_request

        validate_request(await _json_body(request, gateway=True))
        return {}

    # ----------------------------------------------------------------- /_local
    @app.get("/_local/health")
    async def health():
        return {"status": "ok", "stt_model": config.stt_model,
                "llm_model": served_by(), "auth_required": bool(config.api_key),
                "data_dir": str(store.root), "jobs": runner.stats()}

    @app.get("/_local/requests")
    async def get_requests():
        return counters.snapshot()

    @app.get("/_local/requests/log")
    async def get_request_log():
        return counters.timing_log()

    @app.delete("/_local/requests")
    async def reset_requests():
        counters.reset()
        return counters.snapshot()

    @app.get("/_local/jobs")
    async def list_jobs():
        return {"jobs": [_job_view(r) for r in store.iter_records()]}

    @app.get("/_local/jobs/{transcript_id}")
    async def get_job(transcript_id: str):
        record = store.load(transcript_id) if parse_id(transcript_id) else None
        if record is None:
            raise ApiError(404, "Not found")
        return _job_view(record)

    @app.get("/_local/faults")
    async def get_faults():
        return {"faults": faults.list()}

    @app.post("/_local/faults")
    async def add_fault(request: Request):
        return faults.add(await _json_body(request))

    @app.delete("/_local/faults")
    async def clear_faults():
        faults.clear()
        return {"faults": []}

    @app.get("/_local/chaos")
    async def get_chaos():
        return chaos.report()

    @app.post("/_local/chaos")
    async def set_chaos(request: Request):
        return chaos.configure(await _json_body(request))

    @app.delete("/_local/chaos")
    async def clear_chaos():
        return chaos.clear()

    @app.get("/_local/latency")
    async def get_latency():
        return latency.report()

    @app.post("/_local/latency")
    async def set_latency(request: Request):
        """Set the latency profile (local_api/latency.py); an invalid one is a 422 naming the field."""
        try:
            return latency.configure(await _json_body(request))
        except ValidationError as exc:
            raise ApiError(422, f"latency profile: {profile_error(exc)}") from None

    @app.delete("/_local/latency")
    async def clear_latency():
        return latency.clear()

    return app
