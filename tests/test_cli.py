"""The `callflows` command as a user runs it (subprocess)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, env_extra=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSEMBLYAI_", "PREFECT_API"))}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_missing_audio_is_a_one_line_error(tmp_path):
    """A missing file fails at once (exit 2) with one line naming the file, before any server starts."""
    result = run_cli("analyze", str(tmp_path / "nope.wav"), env_extra={"CALLFLOWS_HOME": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "audio file not found" in lines[0] and "nope.wav" in lines[0]
    assert not (tmp_path / "logs").exists()  # no local server was started


def test_analyze_uses_the_running_local_server_and_writes_results(local_api, sample_call, tmp_path):
    """With no key, analyze says in one line that it uses the local server, prints the sentiment report,
    the sales scorecard and the call segmentation, and writes their JSON (the sample call's first 30 s)."""
    from conftest import trim_wav

    out = tmp_path / "out"
    call = trim_wav(sample_call, tmp_path / "call.wav", 30)
    result = run_cli("analyze", str(call), "--out", str(out),
                     env_extra={"CALLFLOWS_HOME": str(tmp_path / "home"), "CALLFLOWS_LOCAL_API_URL": local_api.url,
                                "PREFECT_HOME": str(tmp_path / "home" / "prefect")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"No ASSEMBLYAI_API_KEY set: using the local AssemblyAI-compatible server at {local_api.url} " \
           f"(already running)." in result.stdout
    assert "## Sentiment per speaker" in result.stdout and "## Questions" in result.stdout
    assert "# Sales scorecard" in result.stdout and "## Top coaching suggestions" in result.stdout
    [path] = out.glob("*/sentiment.json")
    assert len(json.loads(path.read_text())["answers"]) == 5
    [path] = out.glob("*/scorecard.json")
    assert 1 <= len(json.loads(path.read_text())["coaching_suggestions"]) <= 3  # repeated ones are dropped
    assert "## Call segmentation" in result.stdout
    [path] = out.glob("*/segmentation.json")
    phases = json.loads(path.read_text())["phases"]
    assert phases[0]["start_time"] == 0 and phases[-1]["end_time"] >= 29.9
