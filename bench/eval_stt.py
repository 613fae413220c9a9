"""Speech-to-text evaluation of the local server: speed (audio seconds per processing second) and
word error rate, on ../shared/evaldata when it is present.

Sets: synthetic-support-call (espeak-ng call with its script) and hvb-harper-valley (real two-party
calls, agent and caller channels mixed to mono; reference = the human transcript segments in time
order). Text is normalised before scoring (lower case, punctuation removed, whitespace collapsed);
numbers are not normalised, so "60" vs "sixty" counts as an error.

Usage: python bench/eval_stt.py [--stt-model base|tiny.en] [--evaldata DIR] [--out FILE.json]
Needs the `eval` extra (jiwer). Attribution: HarperValleyBank (Gridspace/Stanford), CC BY 4.0.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import jiwer
import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callflows.client import AssemblyAIClient  # noqa: E402
from callflows.models import Transcript, TranscriptionOptions  # noqa: E402
from callflows.settings import Settings  # noqa: E402


def normalise(text: str) -> str:
    text = re.sub(r"[^\w\s']", " ", text.lower()).replace("'", "")
    return re.sub(r"\s+", " ", text).strip()


# A word that starts with a mark Whisper splits off the word before it (":30", ".m.", "-bye", ",250"):
# a join gone wrong, as "9 :30 a .m." once was.
SPLIT_PIECE = re.compile(r"^[.:,\-'][^\W_]")


def wrong_joins(words) -> list[str]:
    """The words of a transcript (AssemblyAI ``words``) that look like a piece of the word before."""
    return [w.text for w in words or () if SPLIT_PIECE.match(w.text)]


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels()).mean(axis=1)
        return data, w.getframerate()


def write_wav(path: Path, channels: list[np.ndarray], rate: int) -> None:
    """Write 16-bit PCM with one channel per array (shorter ones padded with silence)."""
    n = max(len(c) for c in channels)
    data = np.zeros((n, len(channels)), np.float32)
    for i, c in enumerate(channels):
        data[: len(c), i] = c
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(data, -32768, 32767).astype(np.int16).tobytes())


def harper_valley_channels(root: Path):
    """Yield (sid, agent samples, caller samples, rate, human segments) for each call with both channels."""
    for agent_wav in sorted((root / "audio" / "agent").glob("*.wav")):
        sid = agent_wav.stem
        caller_wav = root / "audio" / "caller" / agent_wav.name
        transcript = root / "transcript" / f"{sid}.json"
        if not (caller_wav.exists() and transcript.exists()):
            continue
        agent, rate = read_wav(agent_wav)
        caller, rate_caller = read_wav(caller_wav)
        assert rate == rate_caller
        yield sid, agent, caller, rate, json.loads(transcript.read_text())


def harper_valley_calls(root: Path, tmp: Path) -> list[dict]:
    calls = []
    for sid, agent, caller, rate, segments in harper_valley_channels(root):
        out = tmp / f"hvb-{sid}.wav"
        mix = np.zeros(max(len(agent), len(caller)), np.float32)
        mix[: len(agent)] += agent
        mix[: len(caller)] += caller
        write_wav(out, [mix], rate)
        reference = " ".join(s["human_transcript"] for s in sorted(segments, key=lambda s: s["start_ms"]))
        calls.append({"set": "hvb-harper-valley", "name": sid, "audio": out, "reference": reference})
    return calls


def synthetic_call(root: Path) -> list[dict]:
    script = root / "call_script.json"
    if not script.exists():
        return []
    segments = json.loads(script.read_text())["segments"]
    return [{"set": "synthetic-support-call", "name": "call.wav", "audio": root / "call.wav",
             "reference": " ".join(s["text"] for s in segments)}]


def start_server(data_dir: Path, stt_model: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CALLFLOWS_STT_MODEL=stt_model)
    env.pop("CALLFLOWS_LOCAL_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "local_api", "--port", str(port), "--data-dir", str(data_dir)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{url}/_local/health", timeout=1).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("local server did not start")


def transcribe(client: AssemblyAIClient, url: str, audio: Path,
               options: TranscriptionOptions | None = None) -> tuple[Transcript, float]:
    """Upload, create (speaker labels unless ``options`` say otherwise) and poll every 0.5 s; return the
    completed transcript and the server's own processing time in seconds (``/_local/jobs``)."""
    upload = client.upload(audio)
    options = options or TranscriptionOptions(speaker_labels=True)
    created = client.create_transcript(options.to_params(upload.upload_url))
    while True:
        t = client.get_transcript(created.id)
        if t.is_done:
            break
        time.sleep(0.5)
    if t.error:
        raise RuntimeError(f"{audio}: {t.error}")
    job = requests.get(f"{url}/_local/jobs/{created.id}", timeout=10).json()
    return t, job["processing_ms"] / 1000


def eval_parser(doc: str) -> argparse.ArgumentParser:
    """The options every evaluation script takes: ``--stt-model``, ``--evaldata``, ``--out``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--stt-model", default="base")
    parser.add_argument("--evaldata", type=Path, default=ROOT.parent / "shared" / "evaldata")
    parser.add_argument("--out", type=Path, default=None)
    return parser


def harper_valley_root(evaldata: Path) -> Path | None:
    """``<evaldata>/hvb-harper-valley``, or None (saying so) when it is not there: the data is optional."""
    root = evaldata / "hvb-harper-valley"
    if root.is_dir():
        return root
    print(f"No Harper Valley data at {root}: nothing to evaluate (it is optional).")
    return None


def main() -> int:
    args = eval_parser(__doc__).parse_args()
    if not args.evaldata.is_dir():
        print(f"No evaluation data at {args.evaldata}: nothing to evaluate (it is optional).")
        return 0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        calls = synthetic_call(args.evaldata / "synthetic-support-call") + harper_valley_calls(
            args.evaldata / "hvb-harper-valley", tmp)
        proc, url = start_server(tmp / "server", args.stt_model)
        try:
            client = AssemblyAIClient(Settings(base_url=url))
            # Warm-up job (model load, first diarization import), timed separately and not scored.
            _, cold_s = transcribe(client, url, calls[0]["audio"])
            print(f"warm-up (loads the models): {calls[0]['name']} took {cold_s:.1f} s", flush=True)
            rows = []
            for call in calls:
                t, processing_s = transcribe(client, url, call["audio"])
                with wave.open(str(call["audio"])) as w:
                    audio_s = w.getnframes() / w.getframerate()
                wer = jiwer.wer(normalise(call["reference"]), normalise(t.text or ""))
                joins = wrong_joins(t.words)
                rows.append({"set": call["set"], "call": call["name"], "audio_s": round(audio_s, 1),
                             "processing_s": round(processing_s, 2), "speed_x": round(audio_s / processing_s, 1),
                             "wer": round(wer, 3), "wrong_joins": joins})
                print(f"{call['set']:24s} {call['name']:18s} {audio_s:6.1f} s audio  {processing_s:6.1f} s  "
                      f"{audio_s / processing_s:5.1f}x  WER {wer:6.1%}  wrong joins {len(joins)} {joins[:5]}",
                      flush=True)
        finally:
            proc.terminate()
            proc.wait()
    for name in sorted({r["set"] for r in rows}):
        sel = [r for r in rows if r["set"] == name]
        audio, proc_s = sum(r["audio_s"] for r in sel), sum(r["processing_s"] for r in sel)
        print(f"{name}: {len(sel)} calls, {audio / proc_s:.1f}x real time overall, mean WER "
              f"{np.mean([r['wer'] for r in sel]):.1%} (range {min(r['wer'] for r in sel):.1%}–"
              f"{max(r['wer'] for r in sel):.1%}), {sum(len(r['wrong_joins']) for r in sel)} wrong joins, "
              f"stt model {args.stt_model}")
    if args.out:
        args.out.write_text(json.dumps({"stt_model": args.stt_model, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
