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

Routers: local_api/routes/transcripts.py (/v2, with the behaviour choices where AssemblyAI's is
unknown or impossible offline), routes/gateway.py (/v1), routes/control.py (/_local); the API-key
check, faults, chaos and request counting are local_api/middleware.py's.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .config import LocalApiConfig
from .faults import Chaos, Faults, FaultSpecError
from .gateway import GatewayError
from .jobs import JobRunner
from .latency import Latency
from .middleware import LocalMiddleware, RequestCounters
from .routes import control, gateway, transcripts
from .routes.common import ApiError, AppState
from .store import Store

log = logging.getLogger("local_api")


def create_app(config: LocalApiConfig) -> FastAPI:
    """Build the app over ``config.data_dir``; the job workers start with the app's lifespan."""
    store = Store(config.data_dir)
    state = AppState(config=config, store=store, runner=JobRunner(store, config), counters=RequestCounters(),
                     faults=Faults(), chaos=Chaos(), latency=Latency())
    app = FastAPI(title="callflows local AssemblyAI-compatible API", version="1.0",
                  lifespan=_lifespan, docs_url="/_local/docs", redoc_url=None,
                  openapi_url="/_local/openapi.json")
    app.state.local = state
    app.state.store = store  # read by ``python -m local_api``
    app.add_middleware(LocalMiddleware, fastapi_app=app, config=config, counters=state.counters,
                       faults=state.faults, chaos=state.chaos)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(FaultSpecError, _fault_spec_error)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    for module in (transcripts, gateway, control):
        app.include_router(module.router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    state: AppState = app.state.local
    state.runner.start()
    log.info("local AssemblyAI-compatible API ready: data %s, speech model %s, workers %d, auth %s",
             state.store.root, state.config.stt_model, state.config.workers,
             "on" if state.config.api_key else "off")
    try:
        yield
    finally:
        state.runner.stop()


# --------------------------------------------------------------------------------- error handlers
async def _api_error(request: Request, exc: ApiError):
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


async def _fault_spec_error(request: Request, exc: FaultSpecError):
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _gateway_error(request: Request, exc: GatewayError):
    return JSONResponse(exc.body(), status_code=exc.status)


async def _validation_error(request: Request, exc: RequestValidationError):
    return JSONResponse({"error": _validation_message(exc)}, status_code=400)


async def _http_error(request: Request, exc: StarletteHTTPException):
    message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "Internal Server Error"}, status_code=500)


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
