"""Neither the API key nor redacted PII leaks.

The runs: `callflows analyze --redact-pii` on the PII sample call (a spoken card number, phone number
and e-mail address), with a recognisable key, three times: a normal run, one whose LLM calls fail
until the retries run out, one whose server is unreachable. Then the key, and the PII as the speech
model writes it, are in none of the files the runs left behind: the Prefect database (flow and task
run parameters, task inputs, states and their messages, logs, artifacts), Prefect's result storage,
the result files, the command's output and tracebacks, and the local server's data and log.

Positive controls (the transcript id, the recording's name, the failures' messages, the redaction
marks) prove each place scanned really holds what the runs wrote. The PII needles come from an
unredacted transcript of the same call on another server: the words the redaction rules replace.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import (FAST_PARAMETERS, ROOT, api_create, api_upload, files_under, free_port, holding,
                      start_local_api, wait_done)

KEY_CORE = secrets.token_hex(16)
KEY = f"cf-test-key-{KEY_CORE}"
PII_CALL = ROOT / "samples" / "pii_call.wav"
POLICIES = ["credit_card_number", "phone_number", "email_address"]
HOST = re.compile(r"[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io)[.,]?", re.I)


def run_cli(audio: Path, out: Path, home: Path, base_url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSEMBLYAI_", "PREFECT_"))}
    env.update({"ASSEMBLYAI_API_KEY": KEY, "ASSEMBLYAI_BASE_URL": base_url,
                "ASSEMBLYAI_LLM_GATEWAY_BASE_URL": base_url, "CALLFLOWS_HOME": str(home),
                "PREFECT_HOME": str(home / "prefect"), "CALLFLOWS_RETRY_DELAY_S": "0.2",
                "PREFECT_LOGGING_LEVEL": "DEBUG"})
    fast = []  # two questions and criteria: shorter answers, the same places written
    home.mkdir(parents=True, exist_ok=True)
    for name, items in FAST_PARAMETERS.items():
        (home / f"{name}.json").write_text(json.dumps(items))
        fast += [f"--{name}", str(home / f"{name}.json")]
    return subprocess.run([sys.executable, "-m", "flows.cli", "analyze", str(audio), "--out", str(out), *fast,
                           "--redact-pii", ",".join(POLICIES)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> dict:
    """The three runs; what they left: ``files`` (all, but the uploaded audio), ``databases``,
    ``prefect``, ``results``, ``server``, ``outputs`` (file lists), ``analysis`` and ``captions`` (the
    normal run's analysis.json and captions.vtt)."""
    tmp = tmp_path_factory.mktemp("scan")
    audio = shutil.copy(PII_CALL, tmp / "keyscan_call.wav")
    server = start_local_api(tmp / "server", api_key=KEY)
    home, out = tmp / "home", tmp / "results"
    try:
        ok = run_cli(audio, out, home, server.url)  # SmolLM2 may fail an analysis: a message to scan too
        assert ok.returncode in (0, 1) and list(out.glob("keyscan_call-*/analysis.json")), ok.stderr[-3000:]
        requests.post(f"{server.url}/_local/faults", timeout=10,
                      json={"route": "POST /v1/chat/completions", "status_code": 500, "times": None}).raise_for_status()
        llm_down = run_cli(audio, out, home, server.url)
        requests.delete(f"{server.url}/_local/faults", timeout=10).raise_for_status()
        unreachable = run_cli(audio, tmp / "results-unreachable", home, f"http://127.0.0.1:{free_port()}")
    finally:
        server.stop()
    assert llm_down.returncode == 1 and "retry limit reached" in llm_down.stdout + llm_down.stderr
    assert unreachable.returncode == 1 and "connection failed" in unreachable.stdout + unreachable.stderr

    outputs = tmp / "outputs"
    outputs.mkdir()
    for name, run in (("ok", ok), ("llm_down", llm_down), ("unreachable", unreachable)):
        (outputs / f"{name}.out").write_text(run.stdout + run.stderr)
    prefect_files = files_under(home / "prefect")
    result_files = files_under(out, tmp / "results-unreachable")
    server_files = [p for p in files_under(tmp / "server") if p.read_bytes()[:4] != b"RIFF"]  # not the audio
    [analysis] = out.glob("keyscan_call-*/analysis.json")
    return {"files": prefect_files + result_files + server_files + files_under(outputs, home / "logs"),
            "prefect": prefect_files, "databases": [p for p in prefect_files if p.name.startswith("prefect.db")],
            "results": result_files, "server": server_files, "outputs": files_under(outputs),
            "analysis": json.loads(analysis.read_text()), "captions": (analysis.parent / "captions.vtt").read_text()}


def test_the_key_appears_in_no_database_log_parameter_artifact_result_or_exception(scanned):
    # positive controls: the places scanned hold what the runs wrote
    databases = scanned["databases"]
    assert databases, [str(p) for p in scanned["prefect"]][:20]
    transcript_id = scanned["analysis"]["transcript_id"]
    assert holding("keyscan_call", databases), "flow run parameters are in the database"
    assert holding(transcript_id, databases), "task results, logs or artifacts are in the database"
    assert holding("retry limit reached", databases + scanned["outputs"]), "failure messages are kept"
    assert holding(transcript_id, scanned["server"]) and holding(transcript_id, scanned["results"])
    assert len(scanned["files"]) > 20

    assert holding(KEY_CORE, scanned["files"]) == []
    assert holding(KEY, scanned["files"]) == []


def pii_needles(transcript: dict) -> list[str]:
    """The PII as written, lower case: each run of words the rules redact, each pair of neighbours in
    it, each word of 5 or more letters and digits with a letter (but a host name: Prefect's own data
    holds example.com), and its digits (when 7 or more)."""
    from local_api.engines.pii import redact_words

    words = transcript["words"]
    redacted, _ = redact_words(words, POLICIES, "hash")
    changed = [i for i, (a, b) in enumerate(zip(words, redacted)) if a["text"] != b["text"]]
    runs: list[list[int]] = []
    for i in changed:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    out = set()
    for run in runs:
        texts = [words[i]["text"] for i in run]
        out.add(" ".join(texts).strip(" ,.?!").lower())
        out.update(f"{a} {b}".strip(" ,.?!").lower() for a, b in zip(texts, texts[1:]))  # a caption may break a span
        out.update(t.strip(" ,.?!").lower() for t in texts
                   if len(re.sub(r"\W", "", t)) >= 5 and re.search("[a-z]", t, re.I) and not HOST.fullmatch(t))
        digits = re.sub(r"\D", "", "".join(texts))
        if len(digits) >= 7:
            out.add(digits)
    return sorted(out)


def test_redacted_pii_appears_in_no_database_log_artifact_result_or_output(scanned, local_api, tmp_path):
    created = api_create(local_api, api_upload(local_api, PII_CALL), speaker_labels=True)  # never scanned
    unredacted = wait_done(local_api, created["id"])
    assert unredacted["status"] == "completed", unredacted["error"]
    needles = pii_needles(unredacted)
    assert len(needles) >= 6, needles  # the card number, the phone number and the address, at least
    control = tmp_path / "control.json"  # the scan finds each needle in the unredacted transcript
    control.write_text(json.dumps(unredacted))
    assert [n for n in needles if not (holding(n, [control], ignore_case=True) or n.isdigit())] == []

    # positive controls: the redaction happened, and the redacted transcript is where the scan looks
    assert "####" in scanned["captions"] and "payment" in scanned["captions"].lower()
    assert "redact_pii" in scanned["analysis"]["usage"]["transcription"]["priced_options"]
    assert holding("####", scanned["prefect"]) and holding("####", scanned["server"])

    leaks = {n: [str(p) for p in holding(n, scanned["files"], ignore_case=True)] for n in needles}
    assert {n: paths for n, paths in leaks.items() if paths} == {}
