"""Synthesise the project's sample calls: two-speaker calls spoken by espeak-ng.

``--call support`` (the default): a billing-support call, ``samples/support_call.wav`` (16 kHz mono,
16-bit PCM) and ``samples/support_call.json`` with the ground truth: one entry per sentence with
speaker (``agent``/``customer``), text, ``start_ms``, ``end_ms`` and the sentiment it was written to
carry.

``--call pii``: a short card payment (31.5 s) in which the customer speaks a test card number, a phone
number and an e-mail address, for testing PII redaction end to end: ``samples/pii_call.wav`` and
``samples/pii_call.json``, the same ground truth plus ``pii``: one entry per entity with its
AssemblyAI policy name (``type``), the index of its sentence in ``sentences`` (``sentence``), the
words that speak it (``spoken``) and its canonical value (``value``: digits only for numbers).

Needs espeak-ng and sox (Debian: ``apt-get install espeak-ng sox``) and numpy. Deterministic: sox
runs without dither (``-D``) and the background noise has a fixed seed.

Usage: python scripts/make_sample_call.py [--call support|pii] [OUT_DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
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

# The PII call: the same voices, a card payment. The card is a public test Visa number (Luhn-valid;
# not 4111 1111 1111 1111, whose sixteen "one"s send Whisper tiny.en into a loop of "1, 1, 1, ..."),
# the phone number has the unassigned area code 555, the address is at example.com (RFC 2606). The
# pause before "at" keeps espeak-ng from running "at example" together (Whisper then writes
# "fisheratexample.com" or worse).
PII_DIALOGUE = [
    ("agent", [("Lakeside Energy, Maria speaking, how can I help?", "NEUTRAL")]),
    ("customer", [("Hi, I want to pay my bill by credit card.", "NEUTRAL")]),
    ("agent", [("Sure, what is the card number?", "NEUTRAL")]),
    ("customer", [("It is four two four two, four two four two, four two four two, four two four two.", "NEUTRAL")]),
    ("agent", [("Thanks, and your phone number?", "NEUTRAL")]),
    ("customer", [("It is five five five, two one two, three four five six.", "NEUTRAL")]),
    ("agent", [("And your email address for the receipt?", "NEUTRAL")]),
    ("customer", [("My email is tom dot fisher, at example dot com.", "NEUTRAL")]),
    ("agent", [("Thank you, the payment went through.", "POSITIVE")]),
]
# (policy, the words of the sentence that speak it, canonical value); the sentence is found by them.
PII_ENTITIES = [
    ("credit_card_number", "four two four two, four two four two, four two four two, four two four two",
     "4242424242424242"),
    ("phone_number", "five five five, two one two, three four five six", "5552123456"),
    ("email_address", "tom dot fisher, at example dot com", "tom.fisher@example.com"),
]
PII_PAUSE_BETWEEN_TURNS_S = 0.45  # a brisk exchange: keeps the call near 30 s and under 1 MiB
# name: (dialogue, file stem, description, pause between turns in s, PII entities or None)
CALLS = {
    "support": (DIALOGUE, "support_call",
                "Synthetic billing-support call (espeak-ng), made by scripts/make_sample_call.py",
                PAUSE_BETWEEN_TURNS_S, None),
    "pii": (PII_DIALOGUE, "pii_call",
            "Synthetic card-payment call speaking a card number, a phone number and an e-mail address "
            "(espeak-ng), made by scripts/make_sample_call.py --call pii",
            PII_PAUSE_BETWEEN_TURNS_S, PII_ENTITIES),
}


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


def main(out_dir: Path, call: str = "support") -> None:
    dialogue, stem, description, turn_pause_s, entities = CALLS[call]
    out_dir.mkdir(parents=True, exist_ok=True)
    pieces: list[np.ndarray] = [np.zeros(int(0.4 * SAMPLE_RATE), np.float32)]
    t_s = 0.4
    sentences = []
    for turn, (speaker, lines) in enumerate(dialogue):
        if turn:
            pieces.append(np.zeros(int(turn_pause_s * SAMPLE_RATE), np.float32))
            t_s += turn_pause_s
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
    wav_path = out_dir / f"{stem}.wav"
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    meta = {"description": description,
            "sample_rate": SAMPLE_RATE, "duration_ms": round(len(pcm) / SAMPLE_RATE * 1000),
            "speakers": {"agent": " ".join(VOICES["agent"]), "customer": " ".join(VOICES["customer"])},
            "sentences": sentences}
    if entities is not None:
        meta["pii"] = [{"type": policy, "sentence": _sentence_of(sentences, spoken), "spoken": spoken,
                        "value": value} for policy, spoken, value in entities]
    (out_dir / f"{stem}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {wav_path}: {len(pcm) / SAMPLE_RATE:.1f} s, {len(sentences)} sentences")


def _sentence_of(sentences: list[dict], spoken: str) -> int:
    """Index of the one sentence whose text contains ``spoken``."""
    found = [i for i, s in enumerate(sentences) if spoken in s["text"]]
    if len(found) != 1:
        raise ValueError(f"{spoken!r} is in {len(found)} sentences, not one")
    return found[0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Synthesise a sample call with espeak-ng.")
    parser.add_argument("--call", choices=sorted(CALLS), default="support",
                        help="which call: the billing-support call (default) or the PII card-payment call")
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).resolve().parents[1] / "samples",
                        help="output folder (default: samples/)")
    args = parser.parse_args()
    main(args.out_dir, args.call)
