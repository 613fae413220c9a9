"""Speech-to-text and speaker evaluation of the local server, one table: per call the word error
rate, the speakers found, the talk share error per speaker, the diarization accuracy and the engines'
time, on ../shared/evaldata when it is present (it says so when it is not).

Sets: synthetic-support-call (espeak-ng call with its script and turn times), hvb-harper-valley (real
two-party calls, agent and caller channels mixed to mono; reference = the human transcript segments
in time order, turns = their times and roles), pyannote-2spk (a 30 s two-party call, RTTM turns and
STM transcript) and ami-4spk-meeting (1 min of a four-person meeting, RTTM turns only: a check that
more than two speakers are still found where there are more). Each call is transcribed once, with
``speaker_labels`` and the server's defaults (``--options`` adds request options).

WER is given under two normalisations: "WER" lower-cases, removes punctuation and collapses
whitespace (numbers not normalised: "60" vs "sixty" is an error); "Whisper norm." applies Whisper's
English normaliser (whisper-normalizer; spelled numbers, times and spellings unified), the rule of the
Whisper paper. Speaker scoring: see :func:`score_speakers`. The engines' time is the server's own
processing time of the job (``/_local/jobs``), speed = audio seconds per processing second.

Usage: python bench/eval_stt.py [--stt-model base|tiny.en] [--evaldata DIR] [--out FILE.json] [--options JSON]
Needs the `eval` extra (jiwer, whisper-normalizer). Attribution: HarperValleyBank (Gridspace/Stanford),
CC BY 4.0; AMI ES2004a (CC BY 4.0) and the pyannote sample, as copied by pyannote-audio (MIT).
"""
from __future__ import annotations

import argparse
import functools
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
        calls.append({"set": "hvb-harper-valley", "name": sid, "audio": out, "reference": reference,
                      "turns": [(s["speaker_role"], s["start_ms"], s["start_ms"] + s["duration_ms"]) for s in segments]})
    return calls


def synthetic_call(root: Path) -> list[dict]:
    script = root / "call_script.json"
    if not script.exists():
        return []
    segments = json.loads(script.read_text())["segments"]
    return [{"set": "synthetic-support-call", "name": "call.wav", "audio": root / "call.wav",
             "reference": " ".join(s["text"] for s in segments),
             "turns": [(s["speaker"], s["start_ms"], s["end_ms"]) for s in segments]}]


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


def role_at(segments, ms: int) -> str | None:
    """The role of the turns ``[(role, start_ms, end_ms)]`` under ``ms``: None under none or two roles."""
    roles = {role for role, start, end in segments if start <= ms < end}
    return roles.pop() if len(roles) == 1 else None


def score_speakers(transcript: Transcript, segments) -> dict:
    """Speakers against human turns ``[(role, start_ms, end_ms)]``.

    Each speaker label is mapped to the role under most of its words' midpoints (the usual oracle
    mapping, several labels may map to one role); words under no turn or under turns of two roles are
    not judged. Returns ``speakers`` (labels found), ``accuracy`` (share of judged words whose label
    maps to the role under them) and ``share_error_pp`` per role: |measured − true share of speech
    time| in percentage points, measured = the share of the role's labels by callflows.metrics.talk_share
    of the transcript's utterances, true = its turns' time.
    """
    from callflows.metrics import talk_share

    roles = sorted({r for r, _, _ in segments})
    votes: dict[str, dict[str, int]] = {}
    judged = []
    for w in transcript.words or ():
        role = role_at(segments, (w.start + w.end) // 2)
        if role is None or w.speaker is None:
            continue
        votes.setdefault(w.speaker, dict.fromkeys(roles, 0))[role] += 1
        judged.append((w.speaker, role))
    mapping = {label: max(v, key=v.get) for label, v in votes.items()}
    shares = talk_share(transcript.utterances or [])
    true_ms = {r: sum(b - a for ro, a, b in segments if ro == r) for r in roles}
    total = max(1, sum(true_ms.values()))
    error = {r: round(abs(sum(s for lab, s in shares.items() if mapping.get(lab) == r)
                          - true_ms[r] / total) * 100, 1) for r in roles}
    return {"speakers": len(shares), "accuracy": round(sum(mapping[lab] == r for lab, r in judged)
                                                        / max(1, len(judged)), 3),
            "share_error_pp": error}


def rttm_turns(path: Path) -> list[tuple[str, int, int]]:
    """``SPEAKER file 1 start_s duration_s … name …`` lines → ``[(name, start_ms, end_ms)]``."""
    turns = []
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            start = round(float(f[3]) * 1000)
            turns.append((f[7], start, start + round(float(f[4]) * 1000)))
    return turns


def other_calls(evaldata: Path) -> list[dict]:
    """The pyannote two-speaker call (RTTM turns, STM words) and 1 min of the AMI four-person meeting
    (RTTM turns; its overlapping speech makes a WER meaningless here): checks of the speaker count."""
    calls = []
    pyannote = evaldata / "pyannote-sample-2spk-call"
    if (pyannote / "sample.wav").exists():
        stm = [line.split(maxsplit=5) for line in (pyannote / "sample.stm").read_text().splitlines() if line.strip()]
        calls.append({"set": "pyannote-2spk", "name": "sample.wav", "audio": pyannote / "sample.wav",
                      "reference": " ".join(f[5] for f in sorted(stm, key=lambda f: float(f[3])) if len(f) > 5),
                      "turns": rttm_turns(pyannote / "sample.rttm")})
    ami = evaldata / "ami-es2004a-1min"
    if (ami / "mixture.wav").exists():
        calls.append({"set": "ami-4spk-meeting", "name": "mixture.wav", "audio": ami / "mixture.wav",
                      "reference": None, "turns": rttm_turns(ami / "mixture.rttm")})
    return calls


@functools.cache
def _whisper_normaliser():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def whisper_normalise(text: str) -> str:
    """Whisper's English normaliser (package whisper-normalizer, the rules of the Whisper paper's WER:
    spelled numbers to digits, "9:30" and "nine thirty" alike, contractions and spellings unified)."""
    return _whisper_normaliser()(text)


def main() -> int:
    parser = eval_parser(__doc__)
    parser.add_argument("--options", default="{}",
                        help="extra POST /v2/transcript options as JSON, e.g. '{\"speakers_expected\": 2}'")
    args = parser.parse_args()
    if not args.evaldata.is_dir():
        print(f"No evaluation data at {args.evaldata}: nothing to evaluate (it is optional).")
        return 0
    options = TranscriptionOptions(speaker_labels=True, **json.loads(args.options))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        calls = (synthetic_call(args.evaldata / "synthetic-support-call")
                 + harper_valley_calls(args.evaldata / "hvb-harper-valley", tmp) + other_calls(args.evaldata))
        proc, url = start_server(tmp / "server", args.stt_model)
        try:
            client = AssemblyAIClient(Settings(base_url=url))
            # Warm-up job (model load, first diarization import), timed separately and not scored.
            _, cold_s = transcribe(client, url, calls[0]["audio"], options)
            print(f"warm-up (loads the models): {calls[0]['name']} took {cold_s:.1f} s", flush=True)
            rows = []
            for call in calls:
                t, processing_s = transcribe(client, url, call["audio"], options)
                audio_s = wav_seconds(call["audio"])
                row = {"set": call["set"], "call": call["name"], "audio_s": round(audio_s, 1),
                       "engines_s": round(processing_s, 2), "speed_x": round(audio_s / processing_s, 1),
                       "wrong_joins": wrong_joins(t.words)}
                if call["reference"] is not None:
                    row["wer"] = round(jiwer.wer(normalise(call["reference"]), normalise(t.text or "")), 3)
                    row["wer_whisper_norm"] = round(jiwer.wer(whisper_normalise(call["reference"]),
                                                              whisper_normalise(t.text or "")), 3)
                row.update(score_speakers(t, call["turns"]))
                rows.append(row)
                print(format_row(row), flush=True)
        finally:
            proc.terminate()
            proc.wait()
    print_table(rows, args.stt_model, options)
    if args.out:
        args.out.write_text(json.dumps({"stt_model": args.stt_model, "options": options.model_dump(exclude_none=True),
                                        "rows": rows}, indent=1))
    return 0


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _pct(v) -> str:
    return "—" if v is None else f"{v:.1%}"


def format_row(r: dict) -> str:
    errors = " / ".join(f"{e:.1f}" for e in r["share_error_pp"].values())
    return (f"| {r['set']} | {r['call'][:16]} | {r['audio_s']:.1f} | {_pct(r.get('wer'))} | "
            f"{_pct(r.get('wer_whisper_norm'))} | {r['speakers']} of {len(r['share_error_pp'])} | {errors} | "
            f"{r['accuracy']:.1%} | {r['engines_s']:.1f} s ({r['speed_x']:.1f}×) | {len(r['wrong_joins'])} |")


def print_table(rows: list[dict], stt_model: str, options: TranscriptionOptions) -> None:
    """The table, then the means over the Harper Valley calls (the goals of issue 15)."""
    print(f"\nstt model {stt_model}, options {options.model_dump(exclude_none=True, exclude={'speech_models'})}")
    print("| set | call | audio s | WER | WER, Whisper norm. | speakers found | talk share error per speaker, pp "
          "| diarization accuracy | engines' time (speed) | wrong joins |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(format_row(r))
    for name in sorted({r["set"] for r in rows}):
        sel = [r for r in rows if r["set"] == name]
        if len(sel) < 2:
            continue
        wer_rows = [r for r in sel if "wer" in r]
        errors = [e for r in sel for e in r["share_error_pp"].values()]
        print(f"{name}: {len(sel)} calls, mean WER {np.mean([r['wer'] for r in wer_rows]):.1%} "
              f"(Whisper norm. {np.mean([r['wer_whisper_norm'] for r in wer_rows]):.1%}), mean talk share error "
              f"{np.mean(errors):.1f} pp (max {max(errors):.1f}), speakers found "
              f"{[r['speakers'] for r in sel]}, mean diarization accuracy {np.mean([r['accuracy'] for r in sel]):.1%}, "
              f"{sum(r['audio_s'] for r in sel) / sum(r['engines_s'] for r in sel):.1f}× real time, "
              f"{sum(len(r['wrong_joins']) for r in sel)} wrong joins")


if __name__ == "__main__":
    sys.exit(main())
