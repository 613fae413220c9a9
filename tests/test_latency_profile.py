"""The local server's latency profile (``/_local/latency``): transcripts and LLM answers no faster than
a remote vendor, with the engines still doing the real work (the session's shared local server)."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from callflows.sentiment import DEFAULT_LLM_MODEL
from conftest import api_create, api_upload, trim_wav


@pytest.fixture()
def latency(local_api):
    def set_profile(**profile):
        r = requests.post(f"{local_api.url}/_local/latency", json=profile, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    yield set_profile
    requests.delete(f"{local_api.url}/_local/latency", timeout=10).raise_for_status()


def _status(api, tid: str) -> dict:
    return requests.get(f"{api.url}/v2/transcript/{tid}", timeout=10).json()


def test_transcript_is_processing_until_the_profile_delay_then_completed(local_api, latency, sample_call, tmp_path):
    """With ``transcript_s`` = 12, a 4 s recording whose engine work ends sooner is reported processing
    (no text, captions refused) until 12 s after its creation, then completed with its text; the
    job's real processing time is kept in /_local/jobs."""
    latency(transcript_s=12)
    url = api_upload(local_api, trim_wav(sample_call, tmp_path / "short.wav", 4))
    created = time.monotonic()
    tid = api_create(local_api, url)["id"]
    while time.monotonic() - created < 9:
        job = requests.get(f"{local_api.url}/_local/jobs/{tid}", timeout=10).json()
        if job["status"] == "completed":
            break
        time.sleep(0.5)
    assert job["status"] == "completed" and job["processing_ms"] > 0, job
    seen = _status(local_api, tid)
    assert seen["status"] == "processing" and seen["text"] is None
    vtt = requests.get(f"{local_api.url}/v2/transcript/{tid}/vtt", timeout=10)
    assert vtt.status_code == 400 and "not completed" in vtt.text
    listed = requests.get(f"{local_api.url}/v2/transcript", params={"limit": 5}, timeout=10).json()
    assert {t["id"]: t["status"] for t in listed["transcripts"]}[tid] == "processing"
    while _status(local_api, tid)["status"] != "completed":
        assert time.monotonic() - created < 60
        time.sleep(0.5)
    assert time.monotonic() - created >= 11.5
    assert _status(local_api, tid)["text"]


def test_concurrent_llm_answers_wait_together_not_in_turn(local_api, latency):
    """With ``llm_s`` = 6, three concurrent chat requests each take at least 6 s, and all three
    together well under 3 × 6 s: the wait holds neither the model nor the server."""
    latency(llm_s=6)
    body = {"model": DEFAULT_LLM_MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]}

    def ask(_):
        started = time.monotonic()
        r = requests.post(f"{local_api.url}/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        return time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        each = list(pool.map(ask, range(3)))
    total = time.monotonic() - started
    assert min(each) >= 5.9 and total < 14, (each, total)
    report = requests.get(f"{local_api.url}/_local/latency", timeout=10).json()
    assert report["llm_s"] == 6 and report["llm_requests"] >= 3 and report["llm_waited_s"] > 10


def test_profile_is_validated_and_delete_turns_it_off(local_api, latency):
    for bad in ({"transcript_s": -1}, {"llm_s": "slow"}, {"llm_ms": 5}):
        r = requests.post(f"{local_api.url}/_local/latency", json=bad, timeout=10)
        assert r.status_code == 422, (bad, r.text)
    assert latency(transcript_s=5)["transcript_s"] == 5
    off = requests.delete(f"{local_api.url}/_local/latency", timeout=10).json()
    assert off["transcript_s"] == 0 and off["llm_s"] == 0
