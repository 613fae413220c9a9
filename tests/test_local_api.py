"""The local AssemblyAI-compatible server over real HTTP (a subprocess; no mocks).

Shapes, status codes and error bodies are those of /work/shared/docs/assemblyai-contract.md.
The sample is transcribed once per session (tiny.en); other jobs use a 12-second clip of it.
"""
from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest
import requests

from conftest import LocalApi, api_create as create, api_upload as upload, start_local_api, trim_wav, wait_done

LOOKUP_ERROR = "Transcript lookup error, transcript id not found"
UNKNOWN_ID = "3f1c8a9e-0000-4000-8000-000000000000"
# Every key of the contract's completed example (§3).
CONTRACT_KEYS = {
    "id", "status", "audio_url", "text", "language_code", "language_detection", "language_confidence",
    "language_confidence_threshold", "confidence", "audio_duration", "speech_model", "speech_models",
    "speech_model_used", "punctuate", "format_text", "speaker_labels", "speakers_expected",
    "sentiment_analysis", "words", "utterances", "sentiment_analysis_results", "webhook_url",
    "webhook_auth", "webhook_auth_header_name", "webhook_status_code", "error", "throttled", "entities",
    "chapters", "summary", "auto_highlights", "auto_highlights_result", "redact_pii", "summarization",
    "language_model", "acoustic_model",
}
VTT_TS = r"(?:\d{2}:)?\d{2}:\d{2}\.\d{3}"
SRT_TS = r"\d{2}:\d{2}:\d{2},\d{3}"


# ------------------------------------------------------------------------------------ helpers




def get(api: LocalApi, transcript_id: str) -> requests.Response:
    return requests.get(f"{api.url}/v2/transcript/{transcript_id}", headers=api.headers(), timeout=30)


def wait_status(api: LocalApi, transcript_id: str, status: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        t = get(api, transcript_id).json()
        if t["status"] == status or time.monotonic() > deadline:
            return t
        time.sleep(0.1)


def chat(api: LocalApi, **body) -> requests.Response:
    return requests.post(f"{api.url}/v1/chat/completions", json=body, headers=api.headers(), timeout=300)


@pytest.fixture(scope="module")
def short_clip(sample_call, tmp_path_factory) -> Path:
    """The first 12 s of the sample (agent greeting and the customer's first turn)."""
    return trim_wav(sample_call, tmp_path_factory.mktemp("clip") / "clip.wav", 12)


@pytest.fixture(scope="module")
def done(local_api, sample_call) -> tuple[dict, dict]:
    """The sample uploaded and transcribed with speaker labels (2 expected) and sentiment."""
    url = upload(local_api, sample_call)
    created = create(local_api, url, speaker_labels=True, speakers_expected=2, sentiment_analysis=True,
                     some_unknown_field="ignored")
    return created, wait_done(local_api, created["id"])


# ------------------------------------------------------------------------------------ transcripts
def test_create_echoes_options_with_every_key_and_nulls(done, local_api):
    """POST /v2/transcript answers 200 with the full object: every contract key, status queued,
    options echoed, result fields null, speech_models defaulted, speech_model null."""
    created, _ = done
    assert CONTRACT_KEYS <= set(created), CONTRACT_KEYS - set(created)
    assert created["status"] == "queued"
    assert created["speaker_labels"] is True and created["speakers_expected"] == 2
    assert created["sentiment_analysis"] is True and created["punctuate"] is True
    assert created["speech_models"] == ["universal-3-pro", "universal-2"]
    assert created["speech_model"] is None
    for key in ("text", "words", "utterances", "sentiment_analysis_results", "audio_duration", "confidence"):
        assert created[key] is None, key
    assert "some_unknown_field" not in created
    assert created["audio_url"].startswith(local_api.url + "/upload/")


def test_completed_transcript_has_assemblyai_shapes_and_units(done):
    """The finished transcript: ms integer word times, integer audio_duration (s), speakers A/B in
    words and utterances, upper-case sentiment per sentence, local model in speech_model_used."""
    _, t = done
    assert t["status"] == "completed", t["error"]
    assert CONTRACT_KEYS <= set(t)
    assert isinstance(t["audio_duration"], int) and 65 <= t["audio_duration"] <= 75
    assert isinstance(t["confidence"], float) and 0 < t["confidence"] <= 1
    words = t["words"]
    assert len(words) > 100
    for w in words:
        assert isinstance(w["start"], int) and isinstance(w["end"], int) and w["start"] <= w["end"]
        assert 0 <= w["confidence"] <= 1 and w["speaker"] in ("A", "B")
    assert words[-1]["end"] > 60_000 and words[-1]["end"] <= t["audio_duration"] * 1000 + 1000
    assert {u["speaker"] for u in t["utterances"]} == {"A", "B"}
    assert all(u["words"] and isinstance(u["start"], int) for u in t["utterances"])
    sentiments = t["sentiment_analysis_results"]
    assert sentiments and {s["sentiment"] for s in sentiments} <= {"POSITIVE", "NEUTRAL", "NEGATIVE"}
    assert all(s["speaker"] in ("A", "B") and isinstance(s["start"], int) for s in sentiments)
    assert t["speech_model"] is None and t["speech_model_used"] and "universal" not in t["speech_model_used"]
    assert "bill" in t["text"].lower()


def test_vtt_and_srt_follow_the_formats(done, local_api):
    """VTT: WEBVTT header, blank lines, MM:SS.mmm; SRT: numbered from 1, HH:MM:SS,mmm; captions
    respect chars_per_caption and come out in time order."""
    _, t = done
    r = requests.get(f"{local_api.url}/v2/transcript/{t['id']}/vtt", params={"chars_per_caption": 32}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    vtt = r.text
    assert vtt.startswith("WEBVTT\n\n")
    cues = vtt[len("WEBVTT\n\n"):].strip("\n").split("\n\n")
    assert len(cues) > 10
    previous_start = -1.0
    for cue in cues:
        timing, text = cue.split("\n", 1)
        m = re.fullmatch(rf"(\d{{2}}):(\d{{2}})\.(\d{{3}}) --> ({VTT_TS})", timing)
        assert m, timing  # no hours field below one hour
        start = int(m[1]) * 60 + int(m[2]) + int(m[3]) / 1000
        assert start >= previous_start
        previous_start = start
        assert "\n" not in text and (len(text) <= 32 or " " not in text), text

    srt = requests.get(f"{local_api.url}/v2/transcript/{t['id']}/srt", timeout=30).text
    blocks = srt.strip("\n").split("\n\n")
    for i, block in enumerate(blocks, start=1):
        number, timing, text = block.split("\n", 2)
        assert number == str(i)
        assert re.fullmatch(rf"{SRT_TS} --> {SRT_TS}", timing), timing
        assert text.strip()
    joined = " ".join(b.split("\n", 2)[2] for b in blocks)
    assert joined.split() == [w["text"] for w in t["words"]]

    bad = requests.get(f"{local_api.url}/v2/transcript/{t['id']}/srt", params={"chars_per_caption": 0}, timeout=30)
    assert bad.status_code == 400 and "chars_per_caption" in bad.json()["error"]


def test_sentences_and_paragraphs(done, local_api):
    """/sentences items carry text, ms start/end, confidence, words and speaker; /paragraphs items
    the same without speaker; both with the transcript's id, confidence and audio_duration."""
    _, t = done
    s = requests.get(f"{local_api.url}/v2/transcript/{t['id']}/sentences", timeout=30).json()
    assert s["id"] == t["id"] and s["audio_duration"] == t["audio_duration"] and s["confidence"] == t["confidence"]
    assert len(s["sentences"]) >= 10
    for item in s["sentences"]:
        assert {"text", "start", "end", "confidence", "words", "speaker"} <= set(item)
        assert isinstance(item["start"], int) and item["start"] <= item["end"] and item["words"]
    p = requests.get(f"{local_api.url}/v2/transcript/{t['id']}/paragraphs", timeout=30).json()
    assert 1 <= len(p["paragraphs"]) <= len(s["sentences"])
    assert all("speaker" not in item and item["words"] for item in p["paragraphs"])
    assert sum(len(item["words"]) for item in p["paragraphs"]) == len(t["words"])


def test_official_sdk_reads_the_transcript(done, local_api):
    """SDK 1.8.2 parses the stored transcript (get_by_id), its captions, sentences and the list."""
    aai = pytest.importorskip("assemblyai")
    _, t = done
    aai.settings.base_url = local_api.url
    aai.settings.api_key = "unused-by-this-server"
    transcript = aai.Transcript.get_by_id(t["id"])
    assert transcript.status == aai.TranscriptStatus.completed
    assert transcript.audio_duration == t["audio_duration"] and len(transcript.words) == len(t["words"])
    assert {u.speaker for u in transcript.utterances} == {"A", "B"}
    assert transcript.export_subtitles_srt(chars_per_caption=40).startswith("1\n")
    assert len(transcript.get_sentences()) >= 10
    page = aai.Transcriber().list_transcripts(aai.ListTranscriptParameters(limit=200))
    assert t["id"] in {item.id for item in page.transcripts}


def test_non_audio_and_unreachable_audio_end_in_error_status(local_api):
    """A text file uploaded as audio and an unreachable audio_url both give status "error" (HTTP 200)
    with AssemblyAI's messages; the job timings are exposed at /_local/jobs/{id}."""
    r = requests.post(f"{local_api.url}/v2/upload", data=b"this is not audio, just text\n" * 10, timeout=30)
    text_job = create(local_api, r.json()["upload_url"])
    url = "http://127.0.0.1:9/missing.wav"
    missing_job = create(local_api, url)
    t1, t2 = wait_done(local_api, text_job["id"]), wait_done(local_api, missing_job["id"])
    assert t1["status"] == "error" and t1["error"].startswith("File does not appear to contain audio")
    assert t2["status"] == "error" and t2["error"] == (
        f"Download error, unable to download {url}. Please make sure the file exists and is accessible "
        "from the internet.")
    job = requests.get(f"{local_api.url}/_local/jobs/{t2['id']}", timeout=10).json()
    assert job["status"] == "error" and isinstance(job["processing_ms"], int) and job["attempts"] == 1


def test_list_pages_newest_first_and_delete_scrubs(local_api, short_clip):
    """GET /v2/transcript lists newest first with prev_url (older, before_id) / next_url (newer);
    DELETE returns the scrubbed object, GET shows it afterwards, and the uploaded file is gone."""
    url = upload(local_api, short_clip)
    first = create(local_api, url)
    second = create(local_api, "http://127.0.0.1:9/a.wav")
    page = requests.get(f"{local_api.url}/v2/transcript", params={"limit": 1}, timeout=30).json()
    assert page["page_details"]["limit"] == 1 and page["page_details"]["result_count"] == 1
    assert page["transcripts"][0]["id"] == second["id"]
    assert page["page_details"]["next_url"] is None
    older = requests.get(page["page_details"]["prev_url"], timeout=30).json()
    assert older["transcripts"][0]["id"] == first["id"]
    newer = requests.get(older["page_details"]["next_url"], timeout=30).json()
    assert [x["id"] for x in newer["transcripts"]] == [second["id"]]
    item = older["transcripts"][0]
    assert set(item) == {"id", "resource_url", "status", "created", "completed", "audio_url", "error"}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", item["created"])
    assert requests.get(f"{local_api.url}/v2/transcript", params={"limit": 500}, timeout=30).status_code == 400

    done_first = wait_done(local_api, first["id"])
    assert done_first["status"] == "completed", done_first["error"]
    r = requests.delete(f"{local_api.url}/v2/transcript/{first['id']}", timeout=30)
    assert r.status_code == 200
    deleted = r.json()
    assert deleted["audio_url"] == "http://deleted_by_user" and deleted["text"] == "Deleted by user."
    assert deleted["words"] is None and deleted["utterances"] is None and deleted["id"] == first["id"]
    assert get(local_api, first["id"]).json() == deleted
    assert requests.get(f"{local_api.url}/v2/transcript/{first['id']}/vtt", timeout=30).status_code == 400
    again = wait_done(local_api, create(local_api, url)["id"])  # the upload went with the transcript
    assert again["status"] == "error" and again["error"].startswith("Download error")


def test_unknown_and_malformed_ids_are_lookup_errors(local_api, done):
    """Unknown ids and path-traversal attempts get 400 "transcript id not found" on every
    transcript route; unknown routes get 404 {"error": "Not found"}."""
    _, t = done
    for tid in (UNKNOWN_ID, "..%2F..%2Fetc%2Fpasswd", "..%2F..%2Fetc", "not-a-uuid", "%2e%2e"):
        for suffix in ("", "/vtt", "/srt", "/sentences", "/paragraphs"):
            r = requests.get(f"{local_api.url}/v2/transcript/{tid}{suffix}", timeout=30)
            assert (r.status_code, r.json()) == (400, {"error": LOOKUP_ERROR}), (tid, suffix, r.text)
        r = requests.delete(f"{local_api.url}/v2/transcript/{tid}", timeout=30)
        assert (r.status_code, r.json()) == (400, {"error": LOOKUP_ERROR})
    r = requests.get(f"{local_api.url}/v2/nothing-here", timeout=30)
    assert (r.status_code, r.json()) == (404, {"error": "Not found"})
    r = requests.get(f"{local_api.url}/v2/transcript/{t['id']}/word-cloud", timeout=30)
    assert (r.status_code, r.json()) == (404, {"error": "Not found"})


def test_bad_requests_are_400_with_an_error_message(local_api):
    """Type errors, bad URLs, empty uploads and FastAPI's own validation (422) all answer
    400 {"error": "<message>"}."""
    cases = [
        ({"audio_url": "https://example.com/a.wav", "format_text": "yes"}, "format_text must be a Boolean"),
        ({"audio_url": "https://example.com/a.wav", "speakers_expected": "two"}, "speakers_expected must be an Integer"),
        ({"audio_url": "file:///etc/passwd"}, "audio_url"),
        ({"punctuate": True}, "audio_url is required"),
        ({"audio_url": "https://example.com/a.wav", "summarization": True}, "summarization is not supported"),
        ({"audio_url": "https://example.com/a.wav", "dual_channel": True}, "use multichannel: true"),
        ({"audio_url": "https://example.com/a.wav", "speakers_expected": 2,
          "speaker_options": {"min_speakers_expected": 1}}, "not both"),
    ]
    for body, expected in cases:
        r = requests.post(f"{local_api.url}/v2/transcript", json=body, timeout=30)
        assert r.status_code == 400 and expected in r.json()["error"], (body, r.text)
    r = requests.post(f"{local_api.url}/v2/transcript", data="{not json", timeout=30)
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = requests.post(f"{local_api.url}/v2/upload", data=b"", timeout=30)
    assert r.status_code == 400 and "empty" in r.json()["error"].lower()
    # FastAPI validation (query parameter types) is converted from 422 to 400
    r = requests.get(f"{local_api.url}/v2/transcript", params={"limit": "ten"}, timeout=30)
    assert (r.status_code, r.json()) == (400, {"error": "limit must be an Integer"})


def test_request_counts_per_route_template(local_api):
    """/_local/requests counts API requests per "METHOD /route/template", errors included, and
    per status code; DELETE resets them; /_local itself is not counted."""
    local_api.reset_request_counts()
    get(local_api, UNKNOWN_ID)
    get(local_api, UNKNOWN_ID)
    requests.post(f"{local_api.url}/v2/upload", data=b"", timeout=30)
    requests.get(f"{local_api.url}/nowhere", timeout=30)
    requests.get(f"{local_api.url}/_local/health", timeout=30)
    body = requests.get(f"{local_api.url}/_local/requests", timeout=30).json()
    assert body["counts"] == {"GET /v2/transcript/{transcript_id}": 2, "POST /v2/upload": 1,
                              "GET <unmatched>": 1}
    assert body["status_codes"] == {"400": 3, "404": 1} and body["total"] == 4
    local_api.reset_request_counts()
    assert local_api.request_counts() == {}


# ------------------------------------------------------------------------------------ LLM Gateway
def test_chat_completion_shape_and_transcript_injection(local_api, done):
    """The response has the contract's shape and echoes the requested model; transcript_id replaces
    the first "{{ transcript }}" (exact spelling) with the transcript text, visible in prompt_tokens."""
    _, t = done
    question = "Answer with one word: is this a phone call?"
    injected = chat(local_api, model="claude-sonnet-4-5-20250929", max_tokens=4, temperature=0,
                    transcript_id=t["id"],
                    messages=[{"role": "system", "content": "You read call transcripts."},
                              {"role": "user", "content": "Transcript:\n{{ transcript }}\n" + question}])
    assert injected.status_code == 200, injected.text
    body = injected.json()
    assert injected.headers["X-Callflows-Served-By"] == "smollm2-135m"
    assert set(body) >= {"request_id", "choices", "request", "usage", "http_status_code", "response_time",
                         "llm_status_code"}
    assert body["request"]["model"] == "claude-sonnet-4-5-20250929"
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert set(usage) == {"input_tokens", "output_tokens", "prompt_tokens", "completion_tokens", "total_tokens",
                          "prompt_tokens_details"}
    assert 0 <= usage["prompt_tokens_details"]["cached_tokens"] < usage["prompt_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert isinstance(body["response_time"], int) and body["response_time"] > 1_000_000  # ns

    not_injected = chat(local_api, model="gpt-4.1", max_tokens=4, temperature=0, transcript_id=t["id"],
                        messages=[{"role": "system", "content": "You read call transcripts."},
                                  {"role": "user", "content": "Transcript:\n{{transcript}}\n" + question}])
    assert not_injected.status_code == 200
    transcript_tokens = usage["prompt_tokens"] - not_injected.json()["usage"]["prompt_tokens"]
    assert transcript_tokens > len(t["text"].split()) * 0.8, transcript_tokens


def test_chat_completion_follows_a_json_schema(local_api):
    """response_format json_schema reaches the engine: the content is JSON valid under the schema."""
    schema = {"type": "object", "additionalProperties": False, "required": ["sentiment"],
              "properties": {"sentiment": {"type": "string", "enum": ["POSITIVE", "NEUTRAL", "NEGATIVE"]}}}
    r = chat(local_api, model="smollm2-135m", max_tokens=40, temperature=0,
             prompt="The customer said: 'Thank you so much, that solved everything!' Give the sentiment.",
             response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}})
    assert r.status_code == 200, r.text
    assert json.loads(r.json()["choices"][0]["message"]["content"])["sentiment"] in ("POSITIVE", "NEUTRAL", "NEGATIVE")


def test_chat_completion_errors_use_the_gateway_envelope(local_api):
    """Unknown model → 400 "model X is not supported"; no messages/prompt → 400; unknown transcript
    → 404; all as {"message", "code", "request_id", "metadata": {"errors": [...]}}."""
    r = chat(local_api, model="gpt-9000", messages=[{"role": "user", "content": "hi"}])
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"message", "code", "request_id", "metadata"}
    assert body["metadata"]["errors"] == ["model gpt-9000 is not supported"] and body["code"] == 400
    r = chat(local_api, model="gpt-4.1")
    assert r.status_code == 400 and "one of messages or prompt required" in r.json()["metadata"]["errors"]
    r = chat(local_api, model="gpt-4.1", transcript_id=UNKNOWN_ID,
             messages=[{"role": "user", "content": "{{ transcript }}"}])
    assert r.status_code == 404 and UNKNOWN_ID in r.json()["message"]
    r = chat(local_api, model="gpt-4.1", temperature=3, messages=[{"role": "user", "content": "hi"}])
    assert r.status_code == 400 and "temperature" in r.json()["message"]


def test_models_lists_local_and_catalogue_names(local_api):
    """GET /v1/models lists the local models and the catalogue names, in the shape the SDK parses."""
    body = requests.get(f"{local_api.url}/v1/models", timeout=30).json()
    ids = {m["id"] for m in body["data"]}
    assert {"smollm2-135m", "qwen2.5-coder-1.5b", "claude-sonnet-4-5-20250929", "gpt-4.1"} <= ids
    assert all(m["name"] and m["served_by"] == "smollm2-135m" for m in body["data"])
    models = pytest.importorskip("assemblyai.llm_gateway.v1.models")
    assert len(models.LLMGatewayModelList.model_validate(body).data) == len(body["data"])


def test_understanding_maps_speakers_to_roles(local_api, done):
    """POST /v1/understanding (speaker identification by role) relabels utterances and words."""
    _, t = done
    body = {"transcript_id": t["id"], "speech_understanding": {"request": {"speaker_identification": {
        "speaker_type": "role", "known_values": ["Agent", "Customer"]}}}}
    r = requests.post(f"{local_api.url}/v1/understanding", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    mapping = out["speech_understanding"]["response"]["speaker_identification"]["mapping"]
    assert sorted(mapping.values()) == ["Agent", "Customer"]
    assert mapping[t["utterances"][0]["speaker"]] == "Agent"  # the sample's agent speaks first
    assert {u["speaker"] for u in out["utterances"]} == {"Agent", "Customer"}
    assert all(w["speaker"] in ("Agent", "Customer") for u in out["utterances"] for w in u["words"])
    assert out["request_id"]


# ------------------------------------------------------------------------------------ auth, limits
def test_api_key_is_enforced_and_never_shown(tmp_path):
    """With a key configured: 401 without it, with a wrong one or a "Bearer" prefix; the raw key works
    (either header case); health and /_local need no key and never show it; uploads over the size
    cap get 413 and leave no partial file."""
    key = "local-secret-key-4242"
    server = start_local_api(tmp_path / "keyed", api_key=key,
                             extra_env={"CALLFLOWS_LOCAL_API_MAX_UPLOAD_BYTES": "1000"})
    try:
        url = f"{server.url}/v2/transcript/{UNKNOWN_ID}"
        for headers in ({}, {"authorization": "wrong"}, {"Authorization": f"Bearer {key}"}):
            r = requests.get(url, headers=headers, timeout=10)
            assert (r.status_code, r.json()) == (401, {"error": "Authentication error, API token missing/invalid"})
        assert requests.get(url, headers={"authorization": key}, timeout=10).status_code == 400
        assert requests.get(url, headers={"Authorization": key}, timeout=10).status_code == 400
        r = requests.post(f"{server.url}/v1/chat/completions", json={"model": "gpt-4.1", "prompt": "x"}, timeout=10)
        assert r.status_code == 401 and r.json()["status"] == "error" and r.json()["request_id"]
        r = requests.post(f"{server.url}/v2/upload", data=b"x" * 2000, headers={"authorization": key}, timeout=10)
        assert r.status_code == 413 and "1000" in r.json()["error"]
        assert list((server.data_dir / "uploads").iterdir()) == [] and list((server.data_dir / "tmp").iterdir()) == []
        local_pages = [requests.get(f"{server.url}{p}", timeout=10) for p in
                       ("/_local/health", "/_local/requests", "/_local/jobs")]
        assert all(p.status_code == 200 for p in local_pages)
        assert local_pages[0].json()["auth_required"] is True
        assert not any(key in p.text for p in local_pages)
    finally:
        server.stop()
    assert key not in server.log_path.read_text()


# ------------------------------------------------------------------------------------ restarts
def test_jobs_and_transcripts_survive_restarts_and_crashes(tmp_path, short_clip):
    """A job queued when the server stops, and one killed (SIGKILL) mid-processing, are finished by
    the next server on the same data folder; completed transcripts and uploads survive restarts."""
    data = tmp_path / "data"
    # 1. no workers: the job stays queued; captions of a queued transcript are a 400
    a = start_local_api(data, extra_env={"CALLFLOWS_LOCAL_API_WORKERS": "0"})
    try:
        audio_url = upload(a, short_clip)
        queued = create(a, audio_url, speaker_labels=True)
        time.sleep(0.5)
        assert get(a, queued["id"]).json()["status"] == "queued"
        r = requests.get(f"{a.url}/v2/transcript/{queued['id']}/vtt", timeout=10)
        assert (r.status_code, r.json()) == (400, {"error": "Transcript is not completed yet"})
    finally:
        a.stop()
    # 2. the job is picked up again, then the server is killed while it is processing
    b = start_local_api(data, extra_env={"CALLFLOWS_LOCAL_API_JOB_DELAY_S": "60"})
    try:
        assert wait_status(b, queued["id"], "processing")["status"] == "processing"
        b.process.send_signal(signal.SIGKILL)
        b.process.wait(timeout=10)
    finally:
        b.stop()
    # 3. a normal server finishes it; its upload URL (from server a's port) still resolves
    c = start_local_api(data)
    try:
        finished = wait_done(c, queued["id"], timeout_s=120)
        assert finished["status"] == "completed", finished["error"]
        assert finished["audio_url"] == audio_url and finished["words"]
        job = requests.get(f"{c.url}/_local/jobs/{queued['id']}", timeout=10).json()
        assert job["attempts"] == 2 and job["interrupted"] == 1 and job["processing_ms"] > 0 and job["total_ms"] >= job["processing_ms"]
    finally:
        c.stop()
    # 4. everything is still there after a plain restart
    d = start_local_api(data, extra_env={"CALLFLOWS_LOCAL_API_WORKERS": "0"})
    try:
        assert get(d, queued["id"]).json() == finished
        listed = requests.get(f"{d.url}/v2/transcript", timeout=10).json()["transcripts"]
        assert [x["id"] for x in listed] == [queued["id"]]
        assert requests.get(f"{d.url}/v2/transcript/{queued['id']}/srt", timeout=10).text.startswith("1\n")
    finally:
        d.stop()


# ------------------------------------------------------------------------------------ webhooks, faults
def test_webhook_is_posted_with_its_auth_header(local_api):
    """A finished job POSTs {"transcript_id", "status"} to webhook_url with the auth header; the
    transcript shows webhook_auth, the header name and webhook_status_code, never the value."""
    import http.server
    import threading

    received: list[tuple[dict, dict]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((body, dict(self.headers)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        audio = requests.post(f"{local_api.url}/v2/upload", data=b"not audio at all", timeout=30).json()["upload_url"]
        created = create(local_api, audio, webhook_url=f"http://127.0.0.1:{hook.server_port}/hook?call=7",
                         webhook_auth_header_name="X-Hook-Secret", webhook_auth_header_value="s3cr3t-value")
        assert created["webhook_auth"] is True and created["webhook_auth_header_name"] == "X-Hook-Secret"
        assert "s3cr3t-value" not in json.dumps(created)
        wait_done(local_api, created["id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and get(local_api, created["id"]).json()["webhook_status_code"] is None:
            time.sleep(0.2)
        assert received and received[0][0] == {"transcript_id": created["id"], "status": "error"}
        assert received[0][1]["X-Hook-Secret"] == "s3cr3t-value"
        after = get(local_api, created["id"]).json()
        assert after["webhook_status_code"] == 200 and "s3cr3t-value" not in json.dumps(after)
    finally:
        hook.shutdown()


def test_injected_faults_answer_once_then_clear(local_api):
    """POST /_local/faults makes the next matching request fail (here 429 with Retry-After, then a
    non-JSON 503); later requests succeed again."""
    route = "GET /v2/transcript"
    for fault in ({"route": route, "status_code": 429, "retry_after": 2},
                  {"route": route, "status_code": 503, "delay_ms": 200}):
        assert requests.post(f"{local_api.url}/_local/faults", json=fault, timeout=10).status_code == 200
    first = requests.get(f"{local_api.url}/v2/transcript", timeout=10)
    assert (first.status_code, first.headers["Retry-After"], first.json()) == (429, "2", {"error": "Too Many Requests"})
    started = time.monotonic()
    second = requests.get(f"{local_api.url}/v2/transcript", timeout=10)
    assert second.status_code == 503 and second.text == "Service Unavailable" and time.monotonic() - started >= 0.2
    assert requests.get(f"{local_api.url}/v2/transcript", timeout=10).status_code == 200
    assert requests.get(f"{local_api.url}/_local/faults", timeout=10).json() == {"faults": []}
