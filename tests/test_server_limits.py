"""Limits of the local server, over real HTTP against real subprocesses (no mocks).

* a job that is cut short by every server start ends in status "error" after
  ``CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS`` interruptions (default 3) instead of looping; a queued
  job whose upload has disappeared ends in "error" too; neither vanishes;
* the server binds to 127.0.0.1 unless told otherwise, checked from the kernel's socket table;
* every API route needs the key when one is configured; a chunked upload over the size cap is a
  413 with no partial file; path-traversal ids never read (or delete) anything outside the data dir;
* load: 50 concurrent clients upload, create and poll transcripts; every job runs exactly once and
  no request gets anything but a 200 (``-m load``, or ``-k concurrent_clients``, runs it alone).

Jobs use a 2-second clip of the sample call (the agent's "Thank you for calling ...").
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests

from callflows.localserver import LocalServer, is_healthy
from conftest import (ROOT, TEST_LLM_MODEL, TEST_STT_MODEL, LocalApi, api_create as create, api_upload as upload,
                      free_port, start_local_api, trim_wav)
from local_api.config import DEFAULT_MAX_INTERRUPTIONS, ConfigError, load_config

AUTH_ERROR = "Authentication error, API token missing/invalid"
LOOKUP_ERROR = "Transcript lookup error, transcript id not found"
DOWNLOAD_ERROR = ("Download error, unable to download {url}. Please make sure the file exists and is "
                  "accessible from the internet.")
SLOW = {"CALLFLOWS_LOCAL_API_JOB_DELAY_S": "120"}  # a job stays "processing" until the server is killed


# ------------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def tiny_clip(sample_call, tmp_path_factory) -> Path:
    """The first 2 s of the sample call (about 64 KB)."""
    return trim_wav(sample_call, tmp_path_factory.mktemp("tiny") / "tiny.wav", 2)






def get(api: LocalApi, transcript_id: str) -> dict:
    r = requests.get(f"{api.url}/v2/transcript/{transcript_id}", headers=api.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def job(api: LocalApi, transcript_id: str) -> dict:
    return requests.get(f"{api.url}/_local/jobs/{transcript_id}", timeout=10).json()


def wait_status(api: LocalApi, transcript_id: str, *statuses: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        t = get(api, transcript_id)
        if t["status"] in statuses or time.monotonic() > deadline:
            return t
        time.sleep(0.2)


def kill(api: LocalApi) -> None:
    """SIGKILL the server (a crash: no shutdown code runs) and reap it."""
    api.process.send_signal(signal.SIGKILL)
    api.process.wait(timeout=10)


def start_without_host_flag(data_dir: Path, extra_env: dict | None = None) -> LocalApi:
    """``python -m local_api --port P --data-dir D`` with no ``--host`` (``start_local_api`` always
    passes one), so the bind address comes from the environment or the default."""
    env = dict(os.environ)
    for name in ("ASSEMBLYAI_API_KEY", "CALLFLOWS_LOCAL_API_KEY", "CALLFLOWS_LOCAL_API_HOST"):
        env.pop(name, None)
    env.update({"CALLFLOWS_STT_MODEL": TEST_STT_MODEL, "CALLFLOWS_LOCAL_LLM": TEST_LLM_MODEL,
                "CALLFLOWS_HOME": str(ROOT / ".callflows"), **(extra_env or {})})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "local_api", "--port", str(port),
                                    "--data-dir", str(data_dir)],
                                   stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = LocalServer(url=url, process=process, log_path=log_path)
    deadline = time.monotonic() + 60
    while not is_healthy(url, timeout_s=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"server did not start: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return LocalApi(url=url, data_dir=data_dir, log_path=log_path, server=server,
                    api_key=env.get("CALLFLOWS_LOCAL_API_KEY"), env=env)


def _proc_addr(hex_addr: str) -> str:
    """An address of /proc/net/tcp{,6} (32-bit words in host byte order) as text."""
    words = [struct.pack("=I", int(hex_addr[i:i + 8], 16)) for i in range(0, len(hex_addr), 8)]
    family = socket.AF_INET if len(words) == 1 else socket.AF_INET6
    return socket.inet_ntop(family, b"".join(words))


def listening_sockets(pid: int, port: int) -> list[tuple[str, str]]:
    """``(table, local address)`` of every socket in LISTEN state on ``port`` in the kernel's tables
    (/proc/net/tcp and tcp6) that belongs to process ``pid`` (matched by socket inode)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port and fields[9] in inodes:  # 0A: LISTEN
                found.append((table, _proc_addr(address)))
    return found


# ------------------------------------------------------------------------------------ jobs never loop, never vanish
def test_max_interruptions_setting_defaults_to_3_and_is_validated():
    """CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS: 3 when unset, an integer >= 1 otherwise."""
    assert DEFAULT_MAX_INTERRUPTIONS == 3
    assert load_config({}).max_interruptions == 3
    assert load_config({"CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS": "5"}).max_interruptions == 5
    for bad in ("0", "-1", "three"):
        with pytest.raises(ConfigError, match="CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS"):
            load_config({"CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS": bad})


def test_job_killing_the_server_every_time_ends_in_error_after_3_interruptions(tmp_path, tiny_clip,
                                                                                  monkeypatch):
    """A job that is processing whenever the server dies (SIGKILL, three times) is re-queued twice,
    then, on the next start, ends in status "error" with a message saying why (attempts 3,
    interrupted 3), listed and never run again; a job queued behind it all along still completes."""
    monkeypatch.delenv("CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS", raising=False)  # the default: 3
    data = tmp_path / "data"
    for crash in range(3):
        server = start_local_api(data, extra_env=SLOW)
        try:
            if crash == 0:
                crashing = create(server, upload(server, tiny_clip))["id"]
                bystander = create(server, upload(server, tiny_clip))["id"]
            assert wait_status(server, crashing, "processing", timeout_s=60)["status"] == "processing"
            assert get(server, bystander)["status"] == "queued"
            state = job(server, crashing)
            assert (state["attempts"], state["interrupted"] or 0) == (crash + 1, crash)
            kill(server)
        finally:
            server.stop()
    server = start_local_api(data)
    try:
        failed = get(server, crashing)  # decided at start, before the server answers
        assert failed["status"] == "error"
        assert failed["error"] == ("Transcription was interrupted 3 times by server restarts (crashes or "
                                   "stops mid-job); submit the audio again")
        finished = wait_status(server, bystander, "completed", "error", timeout_s=120)
        assert finished["status"] == "completed", finished["error"]
        state = job(server, crashing)
        assert (state["status"], state["attempts"], state["interrupted"]) == ("error", 3, 3)
        assert state["completed"] and state["total_ms"] >= 0
        assert job(server, bystander)["attempts"] == 1
        listed = requests.get(f"{server.url}/v2/transcript", params={"status": "error"}, timeout=10).json()
        assert [(x["id"], x["error"]) for x in listed["transcripts"]] == [(crashing, failed["error"])]
        r = requests.get(f"{server.url}/v2/transcript/{crashing}/vtt", timeout=10)
        assert (r.status_code, r.json()) == (400, {"error": f"Transcript failed: {failed['error']}"})
    finally:
        server.stop()
    assert "interrupted 3 times by server restarts" in server.log_path.read_text()
    again = start_local_api(data, extra_env={"CALLFLOWS_LOCAL_API_WORKERS": "0"})
    try:  # a finished job stays finished: nothing is re-queued or counted again
        assert get(again, crashing) == failed and job(again, crashing)["interrupted"] == 3
        assert requests.get(f"{again.url}/_local/health", timeout=10).json()["jobs"]["waiting"] == 0
    finally:
        again.stop()


def test_max_interruptions_is_read_from_the_environment(tmp_path, tiny_clip):
    """With CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS=1 a single crash mid-job is enough."""
    data = tmp_path / "data"
    server = start_local_api(data, extra_env=SLOW)
    try:
        tid = create(server, upload(server, tiny_clip))["id"]
        assert wait_status(server, tid, "processing", timeout_s=60)["status"] == "processing"
        kill(server)
    finally:
        server.stop()
    server = start_local_api(data, extra_env={"CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS": "1"})
    try:
        t = get(server, tid)
        assert t["status"] == "error" and t["error"].startswith("Transcription was interrupted 1 time by")
        assert job(server, tid)["attempts"] == 1
    finally:
        server.stop()


def test_queued_job_whose_upload_disappeared_ends_in_error(tmp_path, tiny_clip):
    """The uploaded file of a queued job is deleted behind the server's back: the job still runs
    and ends in status "error" with AssemblyAI's download error naming the URL (it does not vanish
    or stay queued)."""
    data = tmp_path / "data"
    server = start_local_api(data, extra_env={"CALLFLOWS_LOCAL_API_WORKERS": "0"})
    try:
        audio_url = upload(server, tiny_clip)
        tid = create(server, audio_url)["id"]
    finally:
        server.stop()
    upload_id = urlsplit(audio_url).path.rsplit("/", 1)[1]
    (data / "uploads" / upload_id).unlink()
    server = start_local_api(data)
    try:
        t = wait_status(server, tid, "completed", "error", timeout_s=60)
        assert (t["status"], t["error"]) == ("error", DOWNLOAD_ERROR.format(url=audio_url))
        assert job(server, tid)["attempts"] == 1
    finally:
        server.stop()


# ------------------------------------------------------------------------------------ bind address
def test_binds_to_loopback_by_default_and_to_all_interfaces_only_when_told(tmp_path):
    """Read from the kernel (/proc/net/tcp, tcp6): with no host setting the server's only listening
    socket is 127.0.0.1:<port>; with CALLFLOWS_LOCAL_API_HOST=0.0.0.0 it is 0.0.0.0:<port> (so the
    check can tell them apart)."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp")
    for name, extra, expected in (("default", {}, "127.0.0.1"),
                                  ("wildcard", {"CALLFLOWS_LOCAL_API_HOST": "0.0.0.0",
                                                "CALLFLOWS_LOCAL_API_WORKERS": "0",
                                                "CALLFLOWS_LOCAL_API_KEY": "bind-test-key"}, "0.0.0.0")):
        server = start_without_host_flag(tmp_path / name, extra)
        try:
            port = urlsplit(server.url).port
            assert listening_sockets(server.process.pid, port) == [("tcp", expected)], name
        finally:
            server.stop()


# ------------------------------------------------------------------------------------ key, size cap, ids
KEY = "limits-secret-key-9876"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory) -> LocalApi:
    """A server with an API key, a 100 kB upload cap and no workers (jobs stay queued)."""
    server = start_local_api(tmp_path_factory.mktemp("keyed") / "data", api_key=KEY,
                             extra_env={"CALLFLOWS_LOCAL_API_MAX_UPLOAD_BYTES": "100000",
                                        "CALLFLOWS_LOCAL_API_WORKERS": "0"})
    yield server
    server.stop()


def test_every_api_route_the_flows_use_needs_the_key(keyed, tiny_clip):
    """Without the key, or with a wrong one, each route the flows call answers 401 and does nothing
    (no upload or transcript stored); with it the same request gets past the check. Every other
    route of the OpenAPI schema except GET /v1/models needs the key too."""
    ok = {"authorization": KEY}
    audio_url = requests.post(f"{keyed.url}/v2/upload", data=tiny_clip.read_bytes(), headers=ok,
                              timeout=30).json()["upload_url"]
    tid = requests.post(f"{keyed.url}/v2/transcript", json={"audio_url": audio_url}, headers=ok,
                        timeout=30).json()["id"]
    uploads_before = sorted(p.name for p in (keyed.data_dir / "uploads").iterdir())
    transcripts_before = sorted(p.name for p in (keyed.data_dir / "transcripts").iterdir())
    understanding = {"transcript_id": tid, "speech_understanding": {"request": {"speaker_identification": {
        "speaker_type": "role", "known_values": ["Agent", "Customer"]}}}}
    not_completed = "is not completed"
    routes = [  # method, path, request kwargs, status and body text with the key
        ("POST", "/v2/upload", {"data": tiny_clip.read_bytes()}, 200, "upload_url"),
        ("POST", "/v2/transcript", {"json": {"audio_url": audio_url}}, 200, "queued"),
        ("GET", f"/v2/transcript/{tid}", {}, 200, tid),
        ("GET", f"/v2/transcript/{tid}/vtt", {}, 400, "Transcript is not completed yet"),
        ("POST", "/v1/chat/completions", {"json": {"model": "gpt-4.1", "transcript_id": tid,
                                                   "messages": [{"role": "user", "content": "{{ transcript }}"}]}},
         400, not_completed),
        ("POST", "/v1/understanding", {"json": understanding}, 400, not_completed),
    ]
    keyed.reset_request_counts()
    for method, path, kwargs, _, _ in routes:
        for headers in ({}, {"authorization": "wrong"}, {"authorization": f"Bearer {KEY}"}):
            r = requests.request(method, keyed.url + path, headers=headers, timeout=30, **kwargs)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.json()["error"] == AUTH_ERROR and KEY not in r.text
    assert keyed.request_counts() and set(requests.get(f"{keyed.url}/_local/requests", timeout=10)
                                          .json()["status_codes"]) == {"401"}
    assert sorted(p.name for p in (keyed.data_dir / "uploads").iterdir()) == uploads_before
    assert sorted(p.name for p in (keyed.data_dir / "transcripts").iterdir()) == transcripts_before
    for method, path, kwargs, status, text in routes:
        r = requests.request(method, keyed.url + path, headers=ok, timeout=30, **kwargs)
        assert r.status_code == status and text in r.text, (method, path, r.text)

    schema = requests.get(f"{keyed.url}/_local/openapi.json", timeout=10).json()
    checked = set()
    for path, methods in schema["paths"].items():
        if path.startswith("/_local"):
            continue
        for method in methods:
            key = f"{method.upper()} {path}"
            r = requests.request(method, keyed.url + path.replace("{transcript_id}", tid), timeout=30)
            expected = 200 if key == "GET /v1/models" else 401
            assert r.status_code == expected, (key, r.text)
            checked.add(key)
    assert {"POST /v2/upload", "POST /v2/transcript", "GET /v2/transcript/{transcript_id}",
            "GET /v2/transcript/{transcript_id}/vtt", "POST /v1/chat/completions",
            "POST /v1/understanding"} <= checked


def test_chunked_upload_over_the_cap_is_413_and_leaves_no_partial_file(keyed):
    """Without a Content-Length (chunked transfer) the cap is enforced while streaming: 413 naming
    the limit, nothing left in uploads/ or tmp/, and the server keeps serving."""
    headers = keyed.headers()
    before = sorted(p.name for p in (keyed.data_dir / "uploads").iterdir())
    r = requests.post(f"{keyed.url}/v2/upload", data=iter([b"\0" * 10_000] * 25), headers=headers, timeout=30)
    assert r.request.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in r.request.headers
    assert r.status_code == 413 and "100000" in r.json()["error"], r.text
    assert sorted(p.name for p in (keyed.data_dir / "uploads").iterdir()) == before
    assert list((keyed.data_dir / "tmp").iterdir()) == []
    r = requests.post(f"{keyed.url}/v2/upload", data=iter([b"\1" * 10_000] * 5), headers=headers, timeout=30)
    assert r.status_code == 200, r.text  # under the cap, chunked: stored
    upload_id = urlsplit(r.json()["upload_url"]).path.rsplit("/", 1)[1]
    assert (keyed.data_dir / "uploads" / upload_id).stat().st_size == 50_000


def _raw_request(api: LocalApi, method: str, path: str) -> tuple[int, str]:
    """Send ``path`` byte for byte (requests/urllib3 would remove ``..`` segments first)."""
    host, port = urlsplit(api.url).hostname, urlsplit(api.url).port
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, headers=api.headers())
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_traversal_ids_never_read_or_delete_outside_the_data_dir(keyed):
    """A transcript-shaped file is planted next to the data dir, where ``../../planted`` (relative
    to transcripts/) or its absolute path would lead. Raw, %-encoded and absolute ids, and
    ../../etc/passwd, get 400 "transcript id not found" on every transcript route (GET, DELETE);
    as transcript_id of the LLM Gateway and understanding they are 404; the planted file is never
    served, and is still there, unchanged."""
    planted = keyed.data_dir.parent / "planted.json"
    secret = "PLANTED-SECRET-TEXT"
    planted.write_text(json.dumps({
        "transcript": {"id": "../../planted", "status": "completed", "text": secret, "audio_url": "x",
                       "words": [{"text": secret, "start": 0, "end": 500, "confidence": 1.0, "speaker": None}],
                       "utterances": [], "error": None},
        "local": {"seq": 1, "created": "2024-01-01T00:00:00"}}))
    content = planted.read_text()
    absolute = str(keyed.data_dir.parent / "planted")
    ids = ["../../planted", "..%2F..%2Fplanted", "%2e%2e%2f%2e%2e%2fplanted", "..", "..%2F",
           "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "....//....//etc/passwd",
           absolute, quote(absolute, safe=""), "/etc/passwd", "%2Fetc%2Fpasswd", "..\\..\\planted"]
    for tid in ids:
        for suffix in ("", "/vtt", "/srt", "/sentences", "/paragraphs"):
            status, body = _raw_request(keyed, "GET", f"/v2/transcript/{tid}{suffix}")
            assert (status, json.loads(body)) == (400, {"error": LOOKUP_ERROR}), (tid, suffix, body)
        status, body = _raw_request(keyed, "DELETE", f"/v2/transcript/{tid}")
        assert (status, json.loads(body)) == (400, {"error": LOOKUP_ERROR}), (tid, body)
        status, body = _raw_request(keyed, "GET", f"/_local/jobs/{tid}")
        assert status in (404, 307) and secret not in body, (tid, body)  # 307: starlette's slash redirect
    for tid in ("../../planted", absolute, "../../etc/passwd", "/etc/passwd"):
        r = requests.post(f"{keyed.url}/v1/chat/completions", headers=keyed.headers(), timeout=30,
                          json={"model": "gpt-4.1", "transcript_id": tid,
                                "messages": [{"role": "user", "content": "{{ transcript }}"}]})
        assert r.status_code == 404 and secret not in r.text, (tid, r.text)
        r = requests.post(f"{keyed.url}/v1/understanding", headers=keyed.headers(), timeout=30,
                          json={"transcript_id": tid, "speech_understanding": {"request": {
                              "speaker_identification": {"speaker_type": "role", "known_values": ["A", "B"]}}}})
        assert r.status_code == 404 and secret not in r.text, (tid, r.text)
    assert planted.read_text() == content


# ------------------------------------------------------------------------------------ load
CLIENTS = 50
POLL_INTERVAL_S = 0.5
LOAD_DEADLINE_S = 300


@pytest.mark.load
def test_50_concurrent_clients_creating_and_polling_transcripts(tmp_path, tiny_clip):
    """50 threads start together against one loopback server (1 worker); each uploads the 2 s clip,
    creates a transcript and polls it every 0.5 s until it is done (overall deadline 300 s).
    Afterwards: 50 distinct transcripts, all completed, each job run exactly once (attempts 1);
    the server's own counters show only 200s, exactly as many requests as the clients made, and so
    did every client. Prints wall time, jobs/s and the GET latencies seen during the load."""
    server = start_local_api(tmp_path / "load")
    clip = tiny_clip.read_bytes()
    lock = threading.Lock()
    seen: list[tuple[str, int, float]] = []  # (route, status, seconds) of every request made
    failures: list[str] = []
    barrier = threading.Barrier(CLIENTS)
    deadline = time.monotonic() + LOAD_DEADLINE_S

    def timed(session: requests.Session, route: str, method: str, url: str, **kwargs) -> requests.Response:
        t0 = time.perf_counter()
        r = session.request(method, url, timeout=30, **kwargs)
        with lock:
            seen.append((route, r.status_code, time.perf_counter() - t0))
        return r

    def client(i: int) -> dict | None:
        with requests.Session() as s:
            try:
                barrier.wait(timeout=60)
                r = timed(s, "POST /v2/upload", "POST", f"{server.url}/v2/upload", data=clip)
                r = timed(s, "POST /v2/transcript", "POST", f"{server.url}/v2/transcript",
                          json={"audio_url": r.json()["upload_url"]})
                tid = r.json()["id"]
                while time.monotonic() < deadline:
                    time.sleep(POLL_INTERVAL_S)
                    r = timed(s, "GET /v2/transcript/{transcript_id}", "GET", f"{server.url}/v2/transcript/{tid}")
                    if r.status_code != 200:
                        continue  # counted as a non-200 below
                    t = r.json()
                    if t["status"] in ("completed", "error"):
                        return t
                failures.append(f"client {i}: {tid} not done by the deadline")
            except Exception as e:  # a timeout, a refused connection, a body that is not JSON
                failures.append(f"client {i}: {type(e).__name__}: {e}")
        return None

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="client") as pool:
            results = list(pool.map(client, range(CLIENTS)))
        wall_s = time.perf_counter() - started
        jobs = requests.get(f"{server.url}/_local/jobs", timeout=30).json()["jobs"]
        counters = requests.get(f"{server.url}/_local/requests", timeout=30).json()
    finally:
        server.stop()

    def ms(route: str, q: float) -> str:  # the q-quantile latency of a route, in ms
        times = sorted(t for r, _, t in seen if r == route)
        return f"{times[min(len(times) - 1, int(q * len(times)))] * 1000:.0f}" if times else "-"

    poll = "GET /v2/transcript/{transcript_id}"
    processing = sorted(j["processing_ms"] or 0 for j in jobs) or [0]
    print(f"\nload: {CLIENTS} clients, {len(seen)} requests in {wall_s:.1f} s, {CLIENTS / wall_s:.2f} jobs/s; "
          f"GET /v2/transcript/{{id}} latency ms: n={sum(r == poll for r, _, _ in seen)} p50={ms(poll, .5)} "
          f"p95={ms(poll, .95)} p99={ms(poll, .99)} max={ms(poll, 1)}; upload max {ms('POST /v2/upload', 1)}, "
          f"create max {ms('POST /v2/transcript', 1)}; job processing_ms median {processing[len(processing) // 2]}, "
          f"max {processing[-1]} (the first job loads the model); "
          f"distinct texts {len({t['text'] for t in results if t})}")
    assert failures == []
    assert {status for _, status, _ in seen} == {200}
    ids = [t["id"] for t in results]
    assert len(ids) == CLIENTS and len(set(ids)) == CLIENTS
    assert all(t["status"] == "completed" and t["words"] for t in results), \
        [t["error"] for t in results if t["status"] != "completed"]
    assert sorted(j["id"] for j in jobs) == sorted(ids)  # nothing else ran, nothing twice
    assert all((j["status"], j["attempts"], j["interrupted"]) == ("completed", 1, None) for j in jobs), jobs
    assert counters["status_codes"] == {"200": len(seen)} and counters["total"] == len(seen)
    polls_made = sum(1 for route, _, _ in seen if route.startswith("GET"))
    assert counters["counts"] == {"POST /v2/upload": CLIENTS, "POST /v2/transcript": CLIENTS,
                                  "GET /v2/transcript/{transcript_id}": polls_made}
