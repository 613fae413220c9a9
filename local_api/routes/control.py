"""The local-only ``/_local/*`` routes: health, request counters and timing log, job timings, scripted
faults, chaos and the latency profile. They never need the API key and are not counted."""
from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from ..latency import profile_error
from ..store import parse_id
from .common import ApiError, State, json_body

router = APIRouter()


def _job_view(record: dict) -> dict:
    t, local = record["transcript"], record["local"]
    keys = ("created", "started", "completed", "queue_ms", "processing_ms", "transcribe_ms",
            "total_ms", "attempts", "interrupted", "stt_model", "deleted", "latency_s")
    return {"id": t["id"], "status": t["status"], "audio_duration": t.get("audio_duration"),
            "error": t.get("error"), **{k: local.get(k) for k in keys}}


@router.get("/_local/health")
async def health(state: State):
    config = state.config
    return {"status": "ok", "stt_model": config.stt_model,
            "llm_model": state.served_by(), "auth_required": bool(config.api_key),
            "data_dir": str(state.store.root), "jobs": state.runner.stats()}


@router.get("/_local/requests")
async def get_requests(state: State):
    return state.counters.snapshot()


@router.get("/_local/requests/log")
async def get_request_log(state: State):
    return state.counters.timing_log()


@router.delete("/_local/requests")
async def reset_requests(state: State):
    state.counters.reset()
    return state.counters.snapshot()


@router.get("/_local/jobs")
async def list_jobs(state: State):
    return {"jobs": [_job_view(r) for r in state.store.iter_records()]}


@router.get("/_local/jobs/{transcript_id}")
async def get_job(transcript_id: str, state: State):
    record = state.store.load(transcript_id) if parse_id(transcript_id) else None
    if record is None:
        raise ApiError(404, "Not found")
    return _job_view(record)


@router.get("/_local/faults")
async def get_faults(state: State):
    return {"faults": state.faults.list()}


@router.post("/_local/faults")
async def add_fault(request: Request, state: State):
    return state.faults.add(await json_body(request))


@router.delete("/_local/faults")
async def clear_faults(state: State):
    state.faults.clear()
    return {"faults": []}


@router.get("/_local/chaos")
async def get_chaos(state: State):
    return state.chaos.report()


@router.post("/_local/chaos")
async def set_chaos(request: Request, state: State):
    return state.chaos.configure(await json_body(request))


@router.delete("/_local/chaos")
async def clear_chaos(state: State):
    return state.chaos.clear()


@router.get("/_local/latency")
async def get_latency(state: State):
    return state.latency.report()


@router.post("/_local/latency")
async def set_latency(request: Request, state: State):
    """Set the latency profile (local_api/latency.py); an invalid one is a 422 naming the field."""
    try:
        return state.latency.configure(await json_body(request))
    except ValidationError as exc:
        raise ApiError(422, f"latency profile: {profile_error(exc)}") from None


@router.delete("/_local/latency")
async def clear_latency(state: State):
    return state.latency.clear()
