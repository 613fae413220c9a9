"""The cookbook way, for comparison: AssemblyAI's three guide scripts, one after the other.

Each script does what its guide does, with ``requests`` and no orchestration:

1. "Analyze the sentiment of a customer call using LLM Gateway"
   (https://www.assemblyai.com/docs/guides/call-sentiment-analysis): upload, ``POST /v2/transcript``
   with ``sentiment_analysis``, poll every 3 s, then one ``POST /v1/chat/completions`` for all the
   questions, with ``transcript_id`` and the ``{{ transcript }}`` tag (the gateway puts the
   transcript's text in its place).
2. The sales-call scorecard example: upload, transcript with ``speaker_labels`` and
   ``sentiment_analysis``, poll every 3 s, ``POST /v1/understanding`` (speaker roles), the talk/listen
   ratio per speaker from the utterances, then one chat request with the scorecard prompt (with the
   ratios) and the speaker-labelled transcript after it.
3. "Segment a phone call using LLM Gateway": upload, transcript, poll every 3 s,
   ``GET /v2/transcript/{id}/vtt``, then one chat request with the phases and the VTT.

So each script uploads and transcribes the same call again, and every LLM request starts with its
own instructions, which leaves nothing for a prompt cache to reuse.
"""
from __future__ import annotations

import time
from typing import Any

import requests

POLL_INTERVAL_S = 3.0  # the guides' time.sleep(3)
MAX_TOKENS = 1000  # the guides' max_tokens
LLM_MODEL = "claude-sonnet-4-5-20250929"  # the guides' model; the local server serves its own


def _upload(session: requests.Session, base: str, path: str) -> str:
    with open(path, "rb") as f:  # the guides stream the open file (data=f)
        response = session.post(f"{base}/v2/upload", data=f, timeout=600)
    response.raise_for_status()
    return response.json()["upload_url"]


def _transcribe(session: requests.Session, base: str, path: str, options: dict[str, Any]) -> dict[str, Any]:
    audio_url = _upload(session, base, path)
    response = session.post(f"{base}/v2/transcript", json={"audio_url": audio_url, **options}, timeout=60)
    response.raise_for_status()
    transcript_id = response.json()["id"]
    while True:
        transcript = session.get(f"{base}/v2/transcript/{transcript_id}", timeout=60).json()
        if transcript["status"] == "completed":
            return transcript
        if transcript["status"] == "error":
            raise RuntimeError(f"Transcription failed: {transcript['error']}")
        time.sleep(POLL_INTERVAL_S)


def _chat(session: requests.Session, gateway: str, content: str, **extra: Any) -> str:
    response = session.post(f"{gateway}/v1/chat/completions", timeout=1800, json={
        "model": LLM_MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": MAX_TOKENS, **extra})
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"]


def _speaker_text(transcript: dict[str, Any], names: dict[str, str] | None = None) -> str:
    names = names or {}
    return "\n".join(f"{names.get(u['speaker'], 'Speaker ' + u['speaker'])}: {u['text']}"
                     for u in transcript.get("utterances") or [])


def sentiment_script(session: requests.Session, base: str, gateway: str, path: str,
                     questions: list[dict[str, str]]) -> list[str]:
    transcript = _transcribe(session, base, path, {"sentiment_analysis": True})
    asked = "\n\n".join(f"Question: {q['question']}\nContext: {q.get('context') or ''}\n"
                         f"Answer Format: {q.get('answer_format') or ''}" for q in questions)
    prompt = (f"You are an expert at analyzing call transcripts. Given the series of questions below, answer "
              f"them accurately and concisely. When context or an answer format is provided, use it to guide "
              f"your answers.\n\nTranscript: {{{{ transcript }}}}\n\nQuestions:\n{asked}")
    return [_chat(session, gateway, prompt, transcript_id=transcript["id"])]


def scorecard_script(session: requests.Session, base: str, gateway: str, path: str,
                     roles: list[str], rubric: list[str]) -> str:
    transcript = _transcribe(session, base, path, {"speaker_labels": True, "sentiment_analysis": True})
    response = session.post(f"{gateway}/v1/understanding", timeout=600, json={
        "transcript_id": transcript["id"],
        "speech_understanding": {"request": {"speaker_identification": {
            "speaker_type": "role", "known_values": roles}}}})
    response.raise_for_status()
    understood = response.json()["speech_understanding"]["response"]["speaker_identification"]
    names = understood.get("mapping") or {}
    talk: dict[str, float] = {}
    for u in transcript.get("utterances") or []:  # the example's talk/listen ratio: speech time per speaker
        speaker = names.get(u["speaker"], u["speaker"])
        talk[speaker] = talk.get(speaker, 0.0) + (u["end"] - u["start"]) / 1000
    total = sum(talk.values()) or 1.0
    ratios = "\n".join(f"{speaker}: {seconds:.0f} s, {seconds / total:.0%} of the talk time"
                       for speaker, seconds in talk.items())
    prompt = (f"You are a sales coach. Talk/listen ratio:\n{ratios}\n\nScore the {roles[0]} on this call for "
              f"each criterion ({'; '.join(rubric)}), then give a short summary and three coaching suggestions.")
    return _chat(session, gateway, f"{prompt}\n\nTranscript:\n{_speaker_text(transcript, names)}")


def segmentation_script(session: requests.Session, base: str, gateway: str, path: str,
                        phases: list[str]) -> str:
    transcript = _transcribe(session, base, path, {})
    vtt = session.get(f"{base}/v2/transcript/{transcript['id']}/vtt", timeout=60)
    vtt.raise_for_status()
    prompt = (f"Analyze the following transcript of a phone call conversation and divide it into the "
              f"following phases: {', '.join(phases)}.\nYou will be given the transcript in the format of "
              f"VTT captions. For each phase give its start time, end time and a one-sentence summary, "
              f"as a JSON list of objects with keys phase, start_time, end_time, summary.")
    return _chat(session, gateway, f"{prompt}\n\nTranscript:\n{vtt.text}")


def run_cookbook(base: str, gateway: str, path: str, *, questions: list[dict[str, str]], roles: list[str],
                 rubric: list[str], phases: list[str], api_key: str | None = None) -> dict[str, float]:
    """Run the three scripts one after the other on ``path``; return each one's wall time (s)."""
    timings = {}
    with requests.Session() as session:
        if api_key:
            session.headers["authorization"] = api_key
        for name, script, args in (("sentiment", sentiment_script, (questions,)),
                                   ("scorecard", scorecard_script, (roles, rubric)),
                                   ("segmentation", segmentation_script, (phases,))):
            started = time.monotonic()
            script(session, base, gateway, path, *args)
            timings[name] = time.monotonic() - started
    return timings
