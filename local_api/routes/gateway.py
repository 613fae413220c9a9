"""The LLM Gateway and Speech Understanding routes: ``POST /v1/chat/completions`` (the local model;
request checks and response shape in local_api/gateway.py), ``GET /v1/models`` (no key needed, like
the real gateway), ``POST /v1/understanding`` and ``/v1/understanding/validate``.

``/v1/understanding``: see local_api/understanding.py (heuristic identification, a 400 naming
``speaker_labels`` for a transcript without utterances, unmapped values listed, not an error).
"""
from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..gateway import GatewayError, inject_transcript, model_list, parse_chat_request
from ..latency import TIMING_SCOPE_KEY
from ..store import parse_id
from ..transcripts import public
from .common import AppState, State, json_body

router = APIRouter()


def transcript_for_gateway(state: AppState, transcript_id: str) -> dict | None:
    """The transcript as a client would see it, or None if unknown or deleted."""
    record = state.store.load(transcript_id) if parse_id(transcript_id) else None
    if record is None or record["local"].get("deleted"):
        return None
    return public(state.latency.visible(record["transcript"], record["local"]))


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, state: State):
    timing = request.scope.get(TIMING_SCOPE_KEY) or {"arrived": time.monotonic()}
    req = parse_chat_request(await json_body(request, gateway=True))
    messages = req.messages
    if req.transcript_id is not None:
        t = transcript_for_gateway(state, req.transcript_id)
        if t is None:
            raise GatewayError(404, f"transcript {req.transcript_id} not found")
        if t["status"] != "completed":
            raise GatewayError(400, f"transcript {req.transcript_id} is not completed "
                                    f"(status: {t['status']})")
        messages = inject_transcript(messages, t.get("text") or "")
    llm = state.local_llm()
    result = await anyio.to_thread.run_sync(llm.complete, req, messages)  # holds the model's lock
    timing["simulated_wait_s"] = await state.latency.hold_llm(timing["arrived"])  # holds nothing
    return JSONResponse(result, headers={"X-Callflows-Served-By": llm.name})


@router.get("/v1/models")
async def list_models(state: State):
    return model_list(state.served_by())


@router.post("/v1/understanding")
async def understanding(request: Request, state: State):
    from ..understanding import understanding_response

    timing = request.scope.get(TIMING_SCOPE_KEY) or {"arrived": time.monotonic()}
    body = await json_body(request, gateway=True)
    response = understanding_response(body, lambda tid: transcript_for_gateway(state, tid))
    timing["simulated_wait_s"] = await state.latency.hold_llm(timing["arrived"])
    return response


@router.post("/v1/understanding/validate")
async def understanding_validate(request: Request):
    from ..understanding import validate_request

    validate_request(await json_body(request, gateway=True))
    return {}
