"""The local server's latency profile (``/_local/latency``): transcripts and LLM answers no faster than
a remote vendor, with the engines still doing the real work (the session's shared local server)."""
from __future__ import annotations

import http.server
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import api_create, api_upload, trim_wav

CHAT = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]}
LLM_ROUTES = ("POST /v1/chat/completions", "POST /v1/understanding")


@pytest.fixture()
def latency(local_api):
    """Sets the profile (``latency(transcript_s=…, llm_s=…)``); always turned off afterwards."""
    def set_profile(**profile):
        r = requests.post(f"{local_api.url}/_local/latency", json=profile, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    try:
        yield set_profile
    finally:
        requests.delete(f"{local_api.url}/_local/latency", timeout=10).raise_for_status()


class Webhook:
    """A local webhook receiver: ``items`` are (monotonic time received, JSON body)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, dict]] = []
        items = self.items

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                items.append((time.monotonic(), json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def webhook():
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.server.shutdown()


def _get(api, path: str, **kw) -> requests.Response:
    return requests.get(f"{api.url}{path}", timeout=30, **kw)


def _log(api) -> list[dict]:
    return _get(api, "/_local/requests/log").json()["requests"]


def test_transcript_is_processing_until_the_profile_delay_then_completed(local_api, latency, webhook, sample_call,
                                                                       tmp_path):
    """With ``transcript_s`` = 12, a 4 s recording whose engine work ends sooner is shown processing
    everywhere a client can look (results null, captions/sentences/gateway refused, delete refused,
    list and its status filter) until 12 s after its creation, then completed with its text; the
    webhook comes no sooner; the job's real processing time is kept in /_local/jobs. Then, with
    ``llm_s`` = 2, speaker identification on it answers after 2 s."""
    x = 12.0
    assert latency(transcript_s=x)["transcript_s"] == x
    url = api_upload(local_api, trim_wav(sample_call, tmp_path / "short.wav", 4))
    before_create = time.monotonic()
    tid = api_create(local_api, url, webhook_url=webhook.url, speaker_labels=True)["id"]
    job: dict = {}
    # the real job (tiny.en, 4 s of audio, diarization) takes 1.5-5 s cold on 2 cores: well before X
    while time.monotonic() - before_create < x - 2.5:
        job = _get(local_api, f"/_local/jobs/{tid}").json()
        if job["status"] == "completed":
            break
        seen = _get(local_api, f"/v2/transcript/{tid}").json()
        assert seen["status"] in ("queued", "processing"), seen["status"]
        time.sleep(0.3)
    assert job.get("status") == "completed" and job["processing_ms"] > 0 and job["latency_s"] == x, job

    seen = _get(local_api, f"/v2/transcript/{tid}").json()
    assert seen["status"] == "processing" and seen["text"] is None and seen["words"] is None
    for sub in ("vtt", "srt", "sentences", "paragraphs"):
        r = _get(local_api, f"/v2/transcript/{tid}/{sub}")
        assert r.status_code == 400 and "not completed" in r.json()["error"], (sub, r.text)
    listed = {t["id"]: t for t in _get(local_api, "/v2/transcript", params={"limit": 20}).json()["transcripts"]}
    assert listed[tid]["status"] == "processing" and listed[tid]["completed"] is None
    completed_ids = {t["id"] for t in _get(local_api, "/v2/transcript",
                                           params={"status": "completed", "limit": 200}).json()["transcripts"]}
    assert tid not in completed_ids
    chat = requests.post(f"{local_api.url}/v1/chat/completions", json={**CHAT, "transcript_id": tid}, timeout=30)
    assert chat.status_code == 400 and "not completed" in chat.text
    roles = {"transcript_id": tid, "speech_understanding": {"request": {"speaker_identification": {
        "speaker_type": "role", "known_values": ["Agent", "Customer"]}}}}
    refused = requests.post(f"{local_api.url}/v1/understanding", json=roles, timeout=30)
    assert refused.status_code == 400 and "not completed" in refused.text
    deleted = requests.delete(f"{local_api.url}/v2/transcript/{tid}", timeout=30)
    assert deleted.status_code == 400 and "still processing" in deleted.text
    assert not webhook.items

    while (seen := _get(local_api, f"/v2/transcript/{tid}").json())["status"] != "completed":
        assert time.monotonic() - before_create < x + 30
        time.sleep(0.2)
    assert time.monotonic() - before_create >= x - 0.05 and seen["text"]
    assert _get(local_api, f"/v2/transcript/{tid}/vtt").text.startswith("WEBVTT")
    deadline = time.monotonic() + 10
    while not webhook.items and time.monotonic() < deadline:
        time.sleep(0.1)
    assert webhook.items and webhook.items[0][1] == {"transcript_id": tid, "status": "completed"}
    assert webhook.items[0][0] - before_create >= x - 0.05
    assert _get(local_api, f"/_local/jobs/{tid}").json()["processing_ms"] == job["processing_ms"]

    latency(llm_s=2)  # speaker identification (no model, milliseconds of work) answers after 2 s
    started = time.time()
    identified = requests.post(f"{local_api.url}/v1/understanding", json=roles, timeout=30)
    assert identified.status_code == 200 and time.time() - started >= 2 - 0.05, identified.text
    entry = [e for e in _log(local_api) if e["route"] == "POST /v1/understanding" and e["start"] >= started - 0.05]
    assert len(entry) == 1 and 1.5 < entry[0]["simulated_wait_s"] <= 2, entry


def test_concurrent_llm_answers_wait_together_not_in_turn(local_api, latency):
    """With ``llm_s`` = 5, three concurrent chat requests (8 tokens) each take at least 5 s and all
    three together well under 3 × 5 s: the wait holds neither the model nor the server. The request
    log tells the simulated wait apart; after DELETE an answer comes without it."""
    y = 5.0
    requests.post(f"{local_api.url}/v1/chat/completions", json=CHAT, timeout=120).raise_for_status()  # load the model
    waited_before = latency(llm_s=y)["llm_waited_s"]

    def ask(_):
        started = time.monotonic()
        r = requests.post(f"{local_api.url}/v1/chat/completions", json=CHAT, timeout=120)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None, r.text
        return time.monotonic() - started

    started = time.time()
    with ThreadPoolExecutor(3) as pool:
        each = list(pool.map(ask, range(3)))
    total = time.time() - started
    assert min(each) >= y - 0.05 and total < 2 * y, (each, total)
    report = _get(local_api, "/_local/latency").json()
    assert report["llm_s"] == y and report["llm_waited_s"] - waited_before > 2 * y, report
    entries = [e for e in _log(local_api) if e["route"] in LLM_ROUTES and e["start"] >= started - 0.001]
    assert len(entries) == 3 and all(e["simulated_wait_s"] > 0 for e in entries), entries
    assert all(e["end"] - e["start"] >= y - 0.05 for e in entries), entries

    requests.delete(f"{local_api.url}/_local/latency", timeout=10).raise_for_status()
    started = time.time()
    requests.post(f"{local_api.url}/v1/chat/completions", json=CHAT, timeout=120).raise_for_status()
    last = [e for e in _log(local_api) if e["route"] in LLM_ROUTES and e["start"] >= started - 0.05]
    assert len(last) == 1 and last[0]["simulated_wait_s"] == 0, last


def test_profile_is_validated_and_delete_turns_it_off(local_api, latency):
    """Negative, non-numeric and unknown fields are 422 naming the field; GET reports the profile,
    DELETE returns it turned off (0 s)."""
    for bad, field in (({"transcript_s": -1}, "transcript_s"), ({"llm_s": "slow"}, "llm_s"),
                       ({"llm_ms": 5}, "llm_ms"), ([1, 2], "")):
        r = requests.post(f"{local_api.url}/_local/latency", json=bad, timeout=10)
        assert r.status_code == 422 and field in r.json()["error"], (bad, r.text)
    assert _get(local_api, "/_local/latency").json()["transcript_s"] == 0
    assert latency(transcript_s=5, llm_s=0.5)["transcript_s"] == 5
    assert _get(local_api, "/_local/latency").json()["llm_s"] == 0.5
    off = requests.delete(f"{local_api.url}/_local/latency", timeout=10).json()
    assert off["transcript_s"] == 0 and off["llm_s"] == 0
    assert _get(local_api, "/_local/latency").json()["transcript_s"] == 0
