"""AssemblyAI's /v2 routes: ``POST /v2/upload`` and ``/v2/transcript`` (create, list, get, delete,
captions, sentences, paragraphs); shapes, codes and error bodies from
/work/shared/docs/assemblyai-contract.md.

Behaviour choices (where AssemblyAI's is unknown or impossible offline):

* upload URLs are ``<base url of the request>/upload/<uuid>`` (AssemblyAI: ``https://cdn.assemblyai
  .com/upload/<uuid>``); an ``audio_url`` whose *path* is ``/upload/<uuid>`` of a stored upload uses
  that file whatever the host; any other http(s) URL is downloaded by the job.
* unknown or malformed transcript ids → 400 ``Transcript lookup error, transcript id not found``.
* captions/sentences/paragraphs of a transcript not completed → 400 ``Transcript is not completed
  yet`` (status queued/processing), ``Transcript failed: <error>`` (status error); of a deleted one
  → 400 ``Transcript has been deleted``.
* DELETE of a queued or processing transcript → 400 (the job would otherwise write it back).
* features the engines lack (summarization, entity_detection, redact_pii_audio, …) → 400 naming the
  field; ``redact_pii`` with a policy the offline rules do not find (local_api/engines/pii.py) → 400
  naming the policy and the supported ones.
* ``multichannel: true``: each channel is transcribed on its own; words, utterances and sentiment
  results carry ``channel`` ("1" = left, "2" = right, …), ``speaker`` is the channel ("1", "2") or,
  with ``speaker_labels`` too, ``"<channel><letter>"`` ("1A", "2A"), and ``audio_channels`` is set
  (AssemblyAI docs, "Multichannel transcription"). A mono file ends in status "error" with
  engines.pipeline.MONO_MULTICHANNEL_ERROR (AssemblyAI's behaviour there is UNCONFIRMED).
"""
from __future__ import annotations

import logging
from datetime import date
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.requests import ClientDisconnect

from ..store import UPLOAD_PATH_RE, EmptyUpload, UploadTooLarge, new_id, now_iso, parse_id
from ..subtitles import to_srt, to_vtt
from ..transcripts import STATUSES, ParamError, new_transcript, public, scrubbed, validate_params
from .common import ApiError, AppState, State, base_url, json_body

log = logging.getLogger("local_api")

LOOKUP_ERROR = "Transcript lookup error, transcript id not found"
NOT_COMPLETED_ERROR = "Transcript is not completed yet"

router = APIRouter()


def load_record(state: AppState, transcript_id: str) -> dict:
    record = state.store.load(transcript_id) if parse_id(transcript_id) else None
    if record is None:
        raise ApiError(400, LOOKUP_ERROR)
    return record


def completed_transcript(state: AppState, transcript_id: str) -> dict:
    record = load_record(state, transcript_id)
    t = state.latency.visible(record["transcript"], record["local"])
    if record["local"].get("deleted"):
        raise ApiError(400, "Transcript has been deleted")
    if t["status"] == "error":
        raise ApiError(400, f"Transcript failed: {t.get('error')}")
    if t["status"] != "completed":
        raise ApiError(400, NOT_COMPLETED_ERROR)
    return t


# ----------------------------------------------------------------- /v2/upload
@router.post("/v2/upload")
async def upload(request: Request, state: State):
    """Stream the raw body to disk (any or no Content-Type)."""
    config = state.config
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > config.max_upload_bytes:
        raise ApiError(413, f"File too large: uploads are limited to {config.max_upload_bytes} bytes")
    try:
        upload_id, size = await state.store.save_upload(request.stream(), config.max_upload_bytes)
    except UploadTooLarge:
        raise ApiError(413, f"File too large: uploads are limited to {config.max_upload_bytes} bytes") from None
    except ClientDisconnect:
        log.warning("upload interrupted: the client disconnected (partial file removed)")
        raise ApiError(400, "Upload interrupted: the client disconnected before sending the whole body") from None
    except EmptyUpload:
        raise ApiError(400, "Upload is empty: the request body had no bytes. Send the file's "
                            "bytes as the request body.") from None
    log.info("upload %s stored (%d bytes)", upload_id, size)
    return {"upload_url": f"{base_url(request)}/upload/{upload_id}"}


# ----------------------------------------------------------------- /v2/transcript
@router.post("/v2/transcript")
async def create_transcript(request: Request, state: State):
    body = await json_body(request)
    try:
        params = validate_params(body)
    except ParamError as e:
        raise ApiError(400, str(e)) from None
    tid = new_id()
    t = new_transcript(tid, params)
    local = {"seq": state.store.next_seq(), "created": now_iso(), "attempts": 0}
    if params.get("webhook_auth_header_value") is not None:
        local["webhook_auth_header_value"] = params["webhook_auth_header_value"]
    match = UPLOAD_PATH_RE.search(urlsplit(params["audio_url"]).path)
    if match:
        local["upload_id"] = match.group(1).lower()
    state.latency.on_create(local)
    state.store.save({"transcript": t, "local": local})
    state.runner.submit(tid)
    return public(t)


@router.get("/v2/transcript")
async def list_transcripts(request: Request, state: State, limit: int = Query(10, ge=1, le=200)):
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
    entries = state.store.index()  # newest first

    def seen_status(e) -> str:  # as the latency profile lets clients see it
        if not e.latency_s or e.status != "completed":
            return e.status
        return state.latency.visible({"status": e.status}, {"created": e.created, "latency_s": e.latency_s})["status"]

    seen = {e.id: seen_status(e) for e in entries}

    def ref_seq(value: str) -> int:
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
        seq = ref_seq(before_id)
        window = [e for e in filtered if e.seq < seq][:limit]
    elif after_id is not None:
        seq = ref_seq(after_id)
        window = [e for e in filtered if e.seq > seq][-limit:]
    else:
        window = filtered[:limit]
    base = base_url(request)
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


@router.get("/v2/transcript/{transcript_id}")
async def get_transcript(transcript_id: str, state: State):
    record = load_record(state, transcript_id)
    return public(state.latency.visible(record["transcript"], record["local"]))


@router.delete("/v2/transcript/{transcript_id}")
async def delete_transcript(transcript_id: str, state: State):
    store = state.store
    record = load_record(state, transcript_id)
    t, local = record["transcript"], record["local"]
    if local.get("deleted"):
        return public(t)
    shown = state.latency.visible(t, local)["status"]
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


@router.get("/v2/transcript/{transcript_id}/vtt", response_class=PlainTextResponse)
async def get_vtt(transcript_id: str, state: State, chars_per_caption: int | None = Query(None, ge=1)):
    t = completed_transcript(state, transcript_id)
    return PlainTextResponse(to_vtt(t.get("words") or [], chars_per_caption))


@router.get("/v2/transcript/{transcript_id}/srt", response_class=PlainTextResponse)
async def get_srt(transcript_id: str, state: State, chars_per_caption: int | None = Query(None, ge=1)):
    t = completed_transcript(state, transcript_id)
    return PlainTextResponse(to_srt(t.get("words") or [], chars_per_caption))


def _segments(t: dict, key: str) -> dict:
    from local_api.engines import pipeline  # lazy: numpy etc.

    fn = pipeline.sentences_of if key == "sentences" else pipeline.paragraphs_of
    return {"id": t["id"], "confidence": t.get("confidence"), "audio_duration": t.get("audio_duration"),
            key: fn(t.get("words") or []), "speech_model_used": t.get("speech_model_used")}


@router.get("/v2/transcript/{transcript_id}/sentences")
def get_sentences(transcript_id: str, state: State):
    return _segments(completed_transcript(state, transcript_id), "sentences")


@router.get("/v2/transcript/{transcript_id}/paragraphs")
def get_paragraphs(transcript_id: str, state: State):
    return _segments(completed_transcript(state, transcript_id), "paragraphs")


@router.api_route("/v2/transcript/{rest:path}", methods=["GET", "DELETE", "POST", "PUT", "PATCH"],
                  include_in_schema=False)
async def transcript_fallback(rest: str, state: State):
    """Anything else under /v2/transcript/: a bad id (``..%2F..%2Fetc``) is a lookup error, an
    unknown sub-resource of a real transcript is 404."""
    first = rest.split("/", 1)[0]
    if parse_id(first) and state.store.exists(first):
        raise ApiError(404, "Not found")
    raise ApiError(400, LOOKUP_ERROR)
