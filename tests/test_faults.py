"""Faults survived: a batch under seeded random faults on every endpoint the flows use gives the same
results as a fault-free run, creates no transcript twice, and a fault that outlasts the retries fails
only its recording, saying which and why.

The faults come from the local server (``/_local/chaos``, local_api/faults.py): 429 with
Retry-After, 500, 502, 503, connection resets and lost responses (the request is processed but
the answer is held until the client times out).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

from conftest import FAST, start_local_api, trim_wav
from callflows.ledger import Ledger
from flows.batch import analyze_inbox
from local_api.faults import CHAOS_KINDS, FLOW_ROUTES
from tasks.common import HTTP_RETRIES

SEED = 20261122
VOLATILE = {"transcript_id", "flow_run_id", "created_at", "result_dir", "started_at", "finished_at", "analysed_at", "ledger",
            "results_dir", "files", "timings", "timings_s"}
# What the LLM wrote. llama.cpp's logits depend on how a prompt was split into evaluation batches, and
# the analyses share a cached prompt prefix whose state depends on which request came first (a retried
# request finds more of it cached), so greedy answers can differ in a token between two correct runs.
# Everything computed from the transcript is compared exactly; LLM answers only for being there.
LLM_WRITTEN = {"answers", "summary", "talk_listen", "sentiment_shifts", "coaching_suggestions", "criteria",
               "unverified_quotes", "phases", "repairs", "llm", "total"}  # total: the cost, with the LLM's tokens


@pytest.fixture(scope="module")
def inbox(sample_call, tmp_path_factory) -> Path:
    """Two recordings: the sample call and its first 20 s (greeting, the customer's problem). The first
    faults of each route cover every kind; those of the poll route the sample call's polls leave meet
    the second recording's retried create in its look-up, which tries again in place."""
    folder = tmp_path_factory.mktemp("fault-inbox")
    shutil.copy(sample_call, folder / "a_support_call.wav")
    trim_wav(sample_call, folder / "b_opening.wav", 20)
    return folder


def point_at(server, monkeypatch) -> None:
    monkeypatch.setenv("ASSEMBLYAI_BASE_URL", server.url)
    monkeypatch.setenv("ASSEMBLYAI_LLM_GATEWAY_BASE_URL", server.url)


def normalised(value):
    """A result with what differs between two correct runs removed (ids, times, folders), and each
    LLM-written field replaced by whether it is there."""
    if isinstance(value, dict):
        return {k: (v is not None if k in LLM_WRITTEN else normalised(v)) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def results_of(report) -> dict[str, dict[str, object]]:
    """recording name → {result file name → normalised content}."""
    out = {}
    for row in report.recordings:
        assert row.status == "analysed", (row.audio, row.error)
        folder = Path(row.result_dir)
        out[Path(row.audio).name] = {
            p.name: normalised(json.loads(p.read_text())) if p.suffix == ".json" else p.read_text()
            for p in sorted(folder.iterdir()) if p.is_file()}
    return out


def created_jobs(server) -> list[dict]:
    return requests.get(f"{server.url}/_local/jobs", timeout=10).json()["jobs"]


@pytest.mark.timeout(1800)  # two batches of real LLM work, slower on a busy machine
def test_batch_under_random_faults_matches_a_fault_free_run(prefect_harness, inbox, tmp_path, monkeypatch):
    """Seeded random faults on upload, create, poll, vtt, chat and understanding: every endpoint gets
    every fault kind at least once; the batch still analyses both recordings with results identical
    to a fault-free run (LLM-written fields: present in both), and creates exactly one transcript per recording (a create whose answer was
    lost is found again, not sent twice)."""
    monkeypatch.setenv("ASSEMBLYAI_HTTP_TIMEOUT", "3")
    monkeypatch.setenv("CALLFLOWS_UPLOAD_TIMEOUT_S", "10")
    # A lost LLM answer costs this timeout (chat and understanding each get one). The chats queue for one
    # local model: the longest answer, queued behind the call's other LLM requests, took 23 s here.
    monkeypatch.setenv("CALLFLOWS_LLM_TIMEOUT_S", "45")
    clean = start_local_api(tmp_path / "clean")
    chaotic = start_local_api(tmp_path / "chaotic")
    try:
        point_at(clean, monkeypatch)
        # one call at a time: the same request sequence, so the seeded faults fall the same way every run
        expected = analyze_inbox(inbox=str(inbox), results_dir=str(tmp_path / "clean-results"), max_in_flight=1, **FAST)
        assert expected.analysed == 2

        r = requests.post(f"{chaotic.url}/_local/chaos", timeout=10,
                          json={"seed": SEED, "rate": 0.1, "max_in_a_row": 3, "retry_after_s": 1,
                                "slow_max_s": 600})  # longer than every client timeout: the answer is lost
        assert r.status_code == 200, r.text
        point_at(chaotic, monkeypatch)
        report = analyze_inbox(inbox=str(inbox), results_dir=str(tmp_path / "chaos-results"), max_in_flight=1, **FAST)
        chaos = requests.get(f"{chaotic.url}/_local/chaos", timeout=10).json()
        print("faults injected:", json.dumps(chaos["injected"], indent=1), "requests:", chaos["requests"])

        assert report.analysed == 2, report.to_markdown()
        assert results_of(report) == results_of(expected)
        for route in FLOW_ROUTES:
            assert set(chaos["injected"].get(route, {})) == set(CHAOS_KINDS), (route, chaos["injected"])
        jobs = created_jobs(chaotic)
        assert len(jobs) == 2 and all(j["status"] == "completed" and j["attempts"] == 1 for j in jobs), jobs
        counts = chaotic.request_counts()
        assert counts["GET /v2/transcript"] >= 1  # the lost create answers were looked up
    finally:
        clean.stop()
        chaotic.stop()


def test_a_fault_outlasting_the_retries_fails_only_its_recording_naming_it_and_the_limit(
        prefect_harness, sample_call, tmp_path, monkeypatch):
    """503 on every upload until the retries run out: the first recording (in name order) fails after
    exactly 1 + HTTP_RETRIES upload attempts, the report names it, the status, and the retry limit; the
    second recording is still analysed and in the ledger."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    trim_wav(sample_call, inbox / "a_support_call.wav", 12)
    trim_wav(sample_call, inbox / "b_opening.wav", 10)
    server = start_local_api(tmp_path / "server")
    try:
        point_at(server, monkeypatch)
        attempts = 1 + HTTP_RETRIES
        requests.post(f"{server.url}/_local/faults", timeout=10,
                      json={"route": "POST /v2/upload", "status_code": 503, "times": attempts}).raise_for_status()
        report = analyze_inbox(inbox=str(inbox), results_dir=str(tmp_path / "results"), max_in_flight=1, **FAST)
        first, second = report.recordings
        assert first.status == "failed" and first.audio.endswith("a_support_call.wav")
        assert "POST" in first.error and "/v2/upload" in first.error and "HTTP 503" in first.error
        assert f"still failing after {attempts} attempts: retry limit reached" in first.error
        assert second.status == "analysed"
        assert server.request_counts()["POST /v2/upload"] == attempts + 1
        ledger = {r.audio: r.status for r in Ledger.open(tmp_path / "results").all()}
        assert ledger == {first.audio: "failed", second.audio: "analysed"}
    finally:
        server.stop()


def test_random_faults_are_reproducible_from_the_seed(local_api):
    """The same seed and request sequence give the same faults; a request never gets more than
    max_in_a_row faults in a row; bad settings are refused with the field named."""
    url = f"{local_api.url}/v2/transcript/00000000-0000-4000-8000-000000000000"

    def run(seed: int) -> list[str]:
        spec = {"seed": seed, "rate": 0.5, "kinds": ["429", "500", "503", "reset"],
                "routes": ["GET /v2/transcript/{transcript_id}"], "max_in_a_row": 2}
        requests.post(f"{local_api.url}/_local/chaos", json=spec, timeout=10).raise_for_status()
        seen = []
        for _ in range(24):
            try:
                seen.append(str(requests.get(url, timeout=5).status_code))
            except requests.ConnectionError:
                seen.append("reset")
        requests.delete(f"{local_api.url}/_local/chaos", timeout=10).raise_for_status()
        return seen

    first, again, other = run(1), run(1), run(2)
    assert first == again and first != other
    assert {"429", "500", "503", "reset", "400"} <= set(first)  # 400: the id is unknown, served normally
    streak = longest = 0
    for status in first:
        streak = streak + 1 if status != "400" else 0
        longest = max(longest, streak)
    assert longest == 2
    r = requests.post(f"{local_api.url}/_local/chaos", json={"seed": 1, "kinds": ["418"]}, timeout=10)
    assert r.status_code == 400 and "kinds" in r.json()["error"]
    assert requests.get(url, timeout=5).status_code == 400  # chaos is off again
