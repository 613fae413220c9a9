"""Synthesise the project's sample call: a two-speaker billing-support call, spoken by espeak-ng.

Writes ``samples/support_call.wav`` (16 kHz mono, 16-bit PCM) and ``samples/support_call.json`` with
the ground truth: one entry per sentence with speaker (``agent``/``customer``), text, ``start_ms``,
``end_ms`` and the sentiment it was written to carry.

Needs espeak-ng and sox (Debian: ``apt-get install espeak-ng sox``) and numpy. Deterministic: sox
runs without dither (``-D``) and the background noise has a fixed seed.

Usage: python scripts/make_sample_call.py [OUT_DIR]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
VOICES = {
    "agent": ["-v", "en-us+f3", "-p", "62", "-s", "165"],
    "customer": ["-v", "en-gb+m4", "-p", "30", "-s", "150"],
}
PAUSE_IN_TURN_S = 0.25
PAUSE_BETWEEN_TURNS_S = 0.7

# (speaker, [(sentence, intended sentiment)]): introduction, complaint, resolution, goodbye.
DIALOGUE = [
    ("agent", [("Thank you for calling Lakeside Energy, this is Maria speaking.", "POSITIVE"),
               ("How can I help you today?", "NEUTRAL")]),
    ("customer", [("Hello Maria, my name is Tom Becker.", "NEUTRAL"),
                  ("I am calling because my electricity bill this month is twice as high as usual.", "NEGATIVE"),
                  ("I think there is a mistake, and I am quite upset about it.", "NEGATIVE")]),
    ("agent", [("I am sorry to hear that, Tom.", "NEGATIVE"),
               ("Could you give me your account number, please?", "NEUTRAL")]),
    ("customer", [("Yes, it is four five seven two nine one.", "NEUTRAL")]),
    ("agent", [("Thank you.", "POSITIVE"),
               ("I can see that your last meter reading was estimated instead of measured.", "NEUTRAL"),
               ("The estimate was far too high.", "NEGATIVE")]),
    ("customer", [("So I was charged for energy that I never used?", "NEGATIVE"),
                  ("That is really annoying.", "NEGATIVE")]),
    ("agent", [("You are right, and I apologise for the trouble.", "NEUTRAL"),
               ("I will correct the bill using your actual reading, and you will get a refund of sixty dollars.", "POSITIVE")]),
    ("customer", [("Oh, that is great news.", "POSITIVE"),
                  ("Thank you for sorting it out so quickly.", "POSITIVE")]),
    ("agent", [("You are welcome.", "POSITIVE"),
               ("The corrected bill will arrive by email within two days.", "NEUTRAL"),
               ("Is there anything else I can help you with?", "NEUTRAL")]),
    ("customer", [("No, that is all.", "NEUTRAL"),
                  ("You have been very helpful, thanks again.", "POSITIVE")]),
    ("agent", [("Thank you for calling Lakeside Energy, Tom.", "POSITIVE"),
               ("Have a wonderful day, goodbye.", "POSITIVE")]),
]


def speak(text: str, voice: list[str]) -> np.ndarray:
    """Return ``text`` spoken by espeak-ng as 16 kHz float32 samples, silence trimmed at both ends."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp, "raw.wav"), Path(tmp, "out.wav")
        subprocess.run(["espeak-ng", *voice, "-w", str(raw), text], check=True)
        subprocess.run(["sox", "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out),
                        "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"],
                       check=True)
        with wave.open(str(out)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    pieces: list[np.ndarray] = [np.zeros(int(0.4 * SAMPLE_RATE), np.float32)]
    t_s = 0.4
    sentences = []
    for turn, (speaker, lines) in enumerate(DIALOGUE):
        if turn:
            pieces.append(np.zeros(int(PAUSE_BETWEEN_TURNS_S * SAMPLE_RATE), np.float32))
            t_s += PAUSE_BETWEEN_TURNS_S
        for i, (text, sentiment) in enumerate(lines):
            if i:
                pieces.append(np.zeros(int(PAUSE_IN_TURN_S * SAMPLE_RATE), np.float32))
                t_s += PAUSE_IN_TURN_S
            audio = speak(text, VOICES[speaker])
            sentences.append({"turn": turn, "speaker": speaker, "text": text, "sentiment": sentiment,
                              "start_ms": round(t_s * 1000), "end_ms": round((t_s + len(audio) / SAMPLE_RATE) * 1000)})
            pieces.append(audio)
            t_s += len(audio) / SAMPLE_RATE
    pieces.append(np.zeros(int(0.5 * SAMPLE_RATE), np.float32))
    signal = np.concatenate(pieces)
    signal += np.random.default_rng(2026).normal(0, 0.003, len(signal)).astype(np.float32)  # line noise
    pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(out_dir / "support_call.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    meta = {"description": "Synthetic billing-support call (espeak-ng), made by scripts/make_sample_call.py",
            "sample_rate": SAMPLE_RATE, "duration_ms": round(len(pcm) / SAMPLE_RATE * 1000),
            "speakers": {"agent": " ".join(VOICES["agent"]), "customer": " ".join(VOICES["customer"])},
            "sentences": sentences}
    (out_dir / "support_call.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out_dir / 'support_call.wav'}: {len(pcm) / SAMPLE_RATE:.1f} s, {len(sentences)} sentences")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "samples")
