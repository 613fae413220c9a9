"""The API key never leaks: after runs with a recognisable key (a normal one, one whose LLM calls
fail until the retries run out, one whose server is unreachable), the key is in none of the files a
run leaves behind: the Prefect database (flow and task run parameters, task inputs, states and their
messages, logs, artifacts), Prefect's result storage, the result files, the command's output and
tracebacks, and the local server's data and log.

Positive controls (the transcript id, the recording's name, the failures' messages) prove each place
scanned really holds what the runs wrote.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import requests

from conftest import FAST_PARAMETERS, ROOT, free_port, start_local_api, trim_wav

KEY_CORE = secrets.token_hex(16)
KEY = f"cf-test-key-{KEY_CORE}"


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
    return subprocess.run([sys.executable, "-m", "flows.cli", "analyze", str(audio), "--out", str(out), *fast],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in sorted(root.rglob("*")) if p.is_file()]


def holding(needle: str, paths: list[Path]) -> list[Path]:
    """The files whose bytes contain ``needle`` (also as UTF-16, as some stores encode text)."""
    variants = [needle.encode(), needle.encode("utf-16-le")]
    return [p for p in paths if any(v in p.read_bytes() for v in variants)]


def test_the_key_appears_in_no_database_log_parameter_artifact_result_or_exception(sample_call, tmp_path):
    audio = trim_wav(sample_call, tmp_path / "keyscan_call.wav", 20)
    server = start_local_api(tmp_path / "server", api_key=KEY)
    home, out = tmp_path / "home", tmp_path / "results"
    try:
        ok = run_cli(audio, out, home, server.url)  # SmolLM2 may fail an analysis: a message to scan too
        assert ok.returncode in (0, 1) and list(out.glob("keyscan_call-*/analysis.json")), ok.stderr[-3000:]
        requests.post(f"{server.url}/_local/faults", timeout=10,
                      json={"route": "POST /v1/chat/completions", "status_code": 500, "times": None}).raise_for_status()
        llm_down = run_cli(audio, out, home, server.url)
        requests.delete(f"{server.url}/_local/faults", timeout=10).raise_for_status()
        unreachable = run_cli(audio, tmp_path / "results-unreachable", home, f"http://127.0.0.1:{free_port()}")
    finally:
        server.stop()
    assert llm_down.returncode == 1 and "retry limit reached" in llm_down.stdout + llm_down.stderr
    assert unreachable.returncode == 1 and "connection failed" in unreachable.stdout + unreachable.stderr

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for name, run in (("ok", ok), ("llm_down", llm_down), ("unreachable", unreachable)):
        (outputs / f"{name}.out").write_text(run.stdout + run.stderr)
    prefect_files = files_under(home / "prefect")
    result_files = files_under(out, tmp_path / "results-unreachable")
    server_files = files_under(tmp_path / "server")
    scanned = prefect_files + result_files + server_files + files_under(outputs)

    # positive controls: the places scanned hold what the runs wrote
    databases = [p for p in prefect_files if p.name.startswith("prefect.db")]
    assert databases, [str(p) for p in prefect_files][:20]
    [analysis] = out.glob("keyscan_call-*/analysis.json")
    transcript_id = analysis.parent.name.split("-", 1)[1]
    assert holding("keyscan_call", databases), "flow run parameters are in the database"
    assert holding(transcript_id, databases), "task results, logs or artifacts are in the database"
    assert holding("retry limit reached", databases + files_under(outputs)), "failure messages are kept"
    assert holding(transcript_id, server_files) and holding(transcript_id, result_files)
    assert len(scanned) > 20

    assert holding(KEY_CORE, scanned) == []
    assert holding(KEY, scanned) == []
