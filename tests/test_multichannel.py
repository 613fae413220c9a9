"""Multichannel transcription and speaker identification (/v1/understanding) over real HTTP.

The server is the session's subprocess (tests/conftest.py, Whisper tiny.en); no mocks. The stereo
file is built here from the project's mono sample and its script (samples/support_call.json):
every sentence of the agent is copied to channel 1 (left), every sentence of the customer to
channel 2 (right), silence elsewhere. Three transcriptions run (stereo, mono with speaker labels, a
4-second clip): about 45 s on 2 cores.
"""
from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
import requests

from conftest import LocalApi, api_create, api_upload, wait_done

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = json.loads((ROOT / "samples" / "support_call.json").read_text())["sentences"]
PAD_MS = 150  # around each sentence (turn gaps are ~700 ms): keeps word onsets espeak starts early
MONO_ERROR = "multichannel was requested but the audio has 1 channel"


# ------------------------------------------------------------------------------------ helpers
def transcribe(api: LocalApi, path: Path, timeout_s: float = 240, **options) -> dict:
    return wait_done(api, api_create(api, api_upload(api, path), **options)["id"], timeout_s)


def understand(api: LocalApi, transcript_id: str, **identification) -> requests.Response:
    body = {"transcript_id": transcript_id,
            "speech_understanding": {"request": {"speaker_identification": identification}}}
    return requests.post(f"{api.url}/v1/understanding", json=body, headers=api.headers(), timeout=60)


def script_party(word: dict) -> str:
    """"agent" or "customer": the script sentence nearest to the word's midpoint."""
    mid = (word["start"] + word["end"]) / 2
    dist = [max(s["start_ms"] - mid, 0) + max(mid - s["end_ms"], 0) for s in SCRIPT]
    return SCRIPT[int(np.argmin(dist))]["speaker"]


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def write_wav(path: Path, frames: np.ndarray, rate: int) -> Path:
    frames = frames.reshape(frames.shape[0], -1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(frames, dtype="<i2").tobytes())
    return path


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def stereo_call(sample_call, tmp_path_factory) -> Path:
    """The sample split by its script: agent sentences on channel 1 (left), customer on channel 2."""
    mono, rate = read_mono(sample_call)
    stereo = np.zeros((mono.size, 2), dtype="<i2")
    for s in SCRIPT:
        a = max(0, s["start_ms"] - PAD_MS) * rate // 1000
        b = min(mono.size, (s["end_ms"] + PAD_MS) * rate // 1000)
        stereo[a:b, 0 if s["speaker"] == "agent" else 1] = mono[a:b]
    return write_wav(tmp_path_factory.mktemp("stereo") / "stereo_call.wav", stereo, rate)


@pytest.fixture(scope="module")
def multichannel_done(local_api, stereo_call) -> dict:
    """The stereo call transcribed with multichannel and sentiment analysis."""
    return transcribe(local_api, stereo_call, multichannel=True, sentiment_analysis=True)


@pytest.fixture(scope="module")
def diarized(local_api, sample_call) -> dict:
    """The mono sample transcribed with speaker labels (2 expected)."""
    t = transcribe(local_api, sample_call, speaker_labels=True, speakers_expected=2)
    assert t["status"] == "completed", t["error"]
    return t


@pytest.fixture(scope="module")
def unlabelled(local_api, sample_call, tmp_path_factory) -> dict:
    """The first 4 s of the sample transcribed without speaker labels (utterances null)."""
    mono, rate = read_mono(sample_call)
    clip = write_wav(tmp_path_factory.mktemp("clip") / "clip4s.wav", mono[:4 * rate], rate)
    t = transcribe(local_api, clip)
    assert t["status"] == "completed", t["error"]
    return t


# ------------------------------------------------------------------------------------ multichannel
def test_multichannel_words_follow_the_script_channels(multichannel_done):
    """Every word carries channel "1"/"2" and speaker = its channel; > 90 % of the words sit on
    the channel of the script's speaker (agent → "1", customer → "2"); words of both channels are
    merged in time order; audio_channels is 2."""
    t = multichannel_done
    assert t["status"] == "completed", t["error"]
    assert t["multichannel"] is True and t["audio_channels"] == 2
    words = t["words"]
    assert len(words) > 100
    assert {w["channel"] for w in words} == {"1", "2"}
    assert all(w["speaker"] == w["channel"] for w in words)
    expected = {"agent": "1", "customer": "2"}
    agree = sum(w["channel"] == expected[script_party(w)] for w in words) / len(words)
    assert agree > 0.9, f"only {agree:.0%} of the words are on their speaker's channel"
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert t["text"] and "refund" in t["text"].lower()


def test_multichannel_utterances_and_sentiment_carry_the_channel(multichannel_done, local_api):
    """Utterances (present without speaker_labels) are per-channel turns with channel and speaker
    equal, one channel per utterance; sentiment results carry channel; the official SDK parses
    the channels; /sentences items carry channel too."""
    t = multichannel_done
    utterances = t["utterances"]
    assert len(utterances) >= 8  # the script has 11 turns
    for u in utterances:
        assert set(u) >= {"speaker", "text", "start", "end", "confidence", "words", "channel"}
        assert u["speaker"] == u["channel"] and {w["channel"] for w in u["words"]} == {u["channel"]}
    assert utterances[0]["channel"] == "1"  # the agent opens the call
    assert [u["start"] for u in utterances] == sorted(u["start"] for u in utterances)
    turns = [u["channel"] for u in utterances]
    assert sum(a != b for a, b in zip(turns, turns[1:])) >= 7  # the parties alternate
    results = t["sentiment_analysis_results"]
    assert results and all(r["channel"] in ("1", "2") and r["speaker"] == r["channel"] for r in results)
    r = requests.get(f"{local_api.url}/v2/transcript/{t['id']}/sentences", timeout=30)
    assert r.status_code == 200 and all(s["channel"] in ("1", "2") for s in r.json()["sentences"])
    aai = pytest.importorskip("assemblyai")
    aai.settings.base_url = local_api.url
    aai.settings.api_key = "unused-by-this-server"
    sdk = aai.Transcript.get_by_id(t["id"])
    assert sdk.json_response["audio_channels"] == 2
    assert sdk.utterances[0].channel == "1" and sdk.words[0].channel in ("1", "2")


def test_mono_file_with_multichannel_ends_in_error(local_api, sample_call):
    """multichannel on a mono file: the transcript ends in status "error" with a message that says
    why and what to do (AssemblyAI's own behaviour here is unconfirmed)."""
    t = transcribe(local_api, sample_call, multichannel=True)
    assert t["status"] == "error"
    assert MONO_ERROR in t["error"] and "speaker_labels" in t["error"]
    assert t["words"] is None and t["utterances"] is None


# ------------------------------------------------------------------------------------ understanding
def _agent_label(t: dict) -> str:
    """The transcript label that holds most of the script's agent words."""
    votes: dict[str, int] = {}
    for w in t["words"]:
        if script_party(w) == "agent":
            votes[w["speaker"]] = votes.get(w["speaker"], 0) + 1
    return max(votes, key=votes.get)


def test_understanding_maps_the_agent_by_role(local_api, diarized):
    """known_values ["Agent", "Customer"] (either order) map the speaker who says "Thank you for
    calling Lakeside Energy" to Agent; utterances, their words and the words are renamed; the
    request is echoed, status is success, request_id is set, the rest of the transcript is there."""
    agent = _agent_label(diarized)
    for values in (["Agent", "Customer"], ["Customer", "Agent"]):
        r = understand(local_api, diarized["id"], speaker_type="role", known_values=values)
        assert r.status_code == 200, r.text
        out = r.json()
        su = out["speech_understanding"]
        assert su["request"]["speaker_identification"] == {"speaker_type": "role", "known_values": values}
        result = su["response"]["speaker_identification"]
        assert result["status"] == "success" and result["unmapped_values"] == []
        assert result["mapping"][agent] == "Agent" and sorted(result["mapping"].values()) == ["Agent", "Customer"]
        assert out["request_id"] and out["id"] == diarized["id"] and out["text"] == diarized["text"]
        assert {u["speaker"] for u in out["utterances"]} == {"Agent", "Customer"}
        assert all(w["speaker"] == u["speaker"] for u in out["utterances"] for w in u["words"])
        assert {w["speaker"] for w in out["words"]} == {"Agent", "Customer"}
        greeting = next(u for u in out["utterances"] if "for calling" in u["text"].lower())
        assert greeting["speaker"] == "Agent"


def test_understanding_with_sales_roles_described_speakers_and_extra_values(local_api, diarized):
    """Roles of a sales scorecard ("Sales Rep"/"Customer"), speakers with descriptions, and three
    values for two speakers: the agent is still found; the unused value is listed with a message."""
    agent = _agent_label(diarized)
    r = understand(local_api, diarized["id"], speaker_type="role", known_values=["Sales Rep", "Customer"])
    assert r.status_code == 200 and r.json()["speech_understanding"]["response"][
        "speaker_identification"]["mapping"][agent] == "Sales Rep"
    r = understand(local_api, diarized["id"], speaker_type="role", speakers=[
        {"role": "Caller", "description": "Calls about a high electricity bill"},
        {"role": "Support", "description": "Answers the phone for the energy company"}])
    assert r.status_code == 200 and r.json()["speech_understanding"]["response"][
        "speaker_identification"]["mapping"][agent] == "Support"
    r = understand(local_api, diarized["id"], speaker_type="role",
                   known_values=["Agent", "Customer", "Supervisor"])
    assert r.status_code == 200, r.text
    result = r.json()["speech_understanding"]["response"]["speaker_identification"]
    assert result["status"] == "success" and result["mapping"][agent] == "Agent"
    assert result["unmapped_values"] == ["Supervisor"] and "Supervisor" in result["message"]


def test_understanding_on_a_multichannel_transcript_maps_channels(local_api, multichannel_done):
    """Multichannel utterances count as speaker labels: roles map channel "1" (agent) to Agent;
    names without known_values are taken from the speakers' introductions; words keep channel."""
    r = understand(local_api, multichannel_done["id"], speaker_type="role", known_values=["Customer", "Agent"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["speech_understanding"]["response"]["speaker_identification"]["mapping"] == {
        "1": "Agent", "2": "Customer"}
    assert all(w["speaker"] == {"1": "Agent", "2": "Customer"}[w["channel"]] for w in out["words"])
    r = understand(local_api, multichannel_done["id"], speaker_type="name")
    assert r.status_code == 200, r.text
    mapping = r.json()["speech_understanding"]["response"]["speaker_identification"]["mapping"]
    assert mapping.get("1") == "Maria" and mapping.get("2", "").startswith("Tom")


def test_understanding_without_speaker_labels_is_400_naming_speaker_labels(local_api, unlabelled):
    """A transcript created without speaker_labels (or multichannel) has no utterances: 400 in the
    gateway's error envelope, naming speaker_labels; an unknown transcript is 404."""
    r = understand(local_api, unlabelled["id"], speaker_type="role", known_values=["Agent", "Customer"])
    assert r.status_code == 400
    body = r.json()
    assert "speaker_labels" in body["message"] and "speaker_labels" in body["metadata"]["errors"][0]
    assert body["code"] == 400 and body["request_id"]
    r = understand(local_api, "3f1c8a9e-0000-4000-8000-000000000000", speaker_type="role",
                   known_values=["Agent", "Customer"])
    assert r.status_code == 404 and "not found" in r.json()["message"]


def test_understanding_refuses_known_values_and_speakers_together(local_api, diarized):
    """known_values and speakers are alternatives: both together is a 400 saying so."""
    r = understand(local_api, diarized["id"], speaker_type="role", known_values=["Agent", "Customer"],
                   speakers=[{"role": "Agent"}, {"role": "Customer"}])
    assert r.status_code == 400
    assert "known_values or speakers, not both" in r.json()["message"]


def test_understanding_refuses_values_over_35_characters(local_api, diarized):
    """Each known value (or speakers[].role/name) must be 35 characters or fewer: a longer one is a
    400 naming the value and the limit; exactly 35 is accepted."""
    long_value = "Senior Customer Success Representative"  # 38 characters
    r = understand(local_api, diarized["id"], speaker_type="role", known_values=["Agent", long_value])
    assert r.status_code == 400
    assert long_value in r.json()["message"] and "35 characters" in r.json()["message"]
    r = understand(local_api, diarized["id"], speaker_type="name", speakers=[{"name": "x" * 36}])
    assert r.status_code == 400 and "speakers[0].name" in r.json()["message"]
    r = understand(local_api, diarized["id"], speaker_type="role", known_values=["Agent", "C" * 35])
    assert r.status_code == 200, r.text
    r = understand(local_api, diarized["id"], speaker_type="role")
    assert r.status_code == 400 and "known_values" in r.json()["message"]


def test_role_heuristic_on_a_scripted_sales_call():
    """The identification rules (called directly, no server) on a sales call where the prospect
    answers the phone first: the rep (introduces the company, asks discovery questions) gets the
    rep role whatever the order or wording of the values."""
    from local_api.understanding import identify

    lines = [
        ("A", "Hello?"),
        ("B", "Hi, is this Jordan? This is Dana from Brightline Analytics. Thanks for taking my call."),
        ("A", "Sure, I have a few minutes."),
        ("B", "We help operations teams cut reporting time in half. How are you currently building reports?"),
        ("A", "Mostly spreadsheets. We're currently using Excel. How much does your tool cost?"),
        ("B", "It depends on seats. How many people would use it? I could set up a demo next week."),
        ("A", "About ten. Send me some details."),
    ]
    utterances = [{"speaker": s, "text": x, "start": i * 2000, "end": i * 2000 + 1500}
                  for i, (s, x) in enumerate(lines)]
    for values in (["Sales Rep", "Customer"], ["Customer", "Sales Rep"], ["Prospect", "Account Executive"],
                   ["Caller", "Rep"]):
        mapping = identify(utterances, "role", values)
        rep = next(v for v in values if v in ("Sales Rep", "Account Executive", "Rep"))
        assert mapping["B"] == rep and mapping["A"] != rep, (values, mapping)
    assert identify(utterances, "name", ["Dana", "Jordan"]) == {"A": "Jordan", "B": "Dana"}
