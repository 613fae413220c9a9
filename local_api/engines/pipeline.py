"""The one entry point of the offline speech engines: a file in, AssemblyAI's result fields out.

Errors the server should turn into a transcript with ``status: "error"`` (message = ``str(exc)``):

* :class:`AudioError`: the input cannot be used ("File does not appear to contain audio. …",
  "Audio duration is too short.").
* :class:`OptionsError` (a subclass of AudioError): a request option is invalid (speakers_expected
  out of range, unknown speech model, language not supported by the model).

Anything else (ModelNotInstalledError, ModelIntegrityError from models.py, bugs) is a server fault.
"""
from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .models import STT_MODELS
from .sentences import (build_utterances, join_words, majority_speaker, mean_confidence,
                        split_paragraphs, split_sentences)

__all__ = ["AudioError", "OptionsError", "transcribe_file", "decode_file", "sentences_of",
           "paragraphs_of", "MIN_DURATION_MS", "MAX_SPEAKERS_EXPECTED"]

SAMPLE_RATE = 16_000
MIN_DURATION_MS = 160
MAX_SPEAKERS_EXPECTED = 10


class AudioError(ValueError):
    """The input can't be transcribed; ``str(exc)`` is the AssemblyAI-style error message."""


class OptionsError(AudioError):
    """A transcription option is invalid; ``str(exc)`` says which and why."""


def _mime_type(path: Path) -> str:
    """Best-effort MIME type of a file: magic numbers (filetype), then text sniffing, then suffix."""
    try:
        import filetype

        kind = filetype.guess(str(path))
        if kind is not None:
            return kind.mime
    except Exception:  # noqa: BLE001 - detection is cosmetic
        pass
    try:
        head = path.read_bytes()[:4096] if path.stat().st_size else b""
    except OSError:
        head = b""
    if head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and "\x00" not in text:
            low = text.lstrip().lower()
            if low.startswith(("<!doctype html", "<html")):
                return "text/html"
            if low.startswith(("{", "[")):
                return "application/json"
            if low.startswith("<?xml"):
                return "application/xml"
            return "text/plain"
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "unknown"


def decode_file(path: Path) -> np.ndarray:
    """Decode any audio/video container (PyAV via faster_whisper.decode_audio) to 16 kHz mono
    float32, shape ``(n_samples,)``. Raises AudioError for unreadable files, files without an audio
    stream and audio shorter than MIN_DURATION_MS."""
    from faster_whisper import decode_audio

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"File does not appear to contain audio. File type is unknown (file not found: {path.name}).")
    try:
        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except Exception as e:  # noqa: BLE001 - PyAV raises many types; all mean "not audio we can read"
        detail = str(e).strip() or type(e).__name__
        if isinstance(e, (IndexError, StopIteration)) or "stream" in detail.lower():
            detail = f"no audio stream found: {detail}"
        detail = re.sub(r"\s*:\s*'?/[^']*'?$", "", detail)  # don't leak server paths
        detail = re.sub(r"^\[Errno -?\d+\]\s*", "", detail)
        raise AudioError(
            f"File does not appear to contain audio. File type is {_mime_type(path)} ({detail})."
        ) from None
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size * 1000 < MIN_DURATION_MS * SAMPLE_RATE:
        if audio.size == 0 and path.stat().st_size > 0 and _mime_type(path).startswith("text/"):
            raise AudioError(
                f"File does not appear to contain audio. File type is {_mime_type(path)} (no audio decoded).")
        raise AudioError("Audio duration is too short.")
    return audio


_PUNCT_RE = re.compile(r"^[^\w]+|[^\w]+$")


def _render(text: str, punctuate: bool, format_text: bool) -> str:
    """Word text as AssemblyAI would show it with these options (stripping is best effort)."""
    if not punctuate:
        text = _PUNCT_RE.sub("", text)  # leading/trailing punctuation; keeps "don't", "3.5", "e-mail"
    if not format_text:
        text = text.lower()
    return text


def _check_speakers(speakers_expected: int | None, speaker_options: Mapping | None) -> tuple[int | None, int | None, int | None]:
    def as_count(name: str, v: Any) -> int | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            raise OptionsError(f"{name} must be an integer, got {v!r}")
        if not 1 <= int(v) <= MAX_SPEAKERS_EXPECTED:
            raise OptionsError(f"{name} must be between 1 and {MAX_SPEAKERS_EXPECTED}, got {int(v)}")
        return int(v)

    exp = as_count("speakers_expected", speakers_expected)
    opts = dict(speaker_options or {})
    lo = as_count("speaker_options.min_speakers_expected", opts.get("min_speakers_expected"))
    hi = as_count("speaker_options.max_speakers_expected", opts.get("max_speakers_expected"))
    if lo is not None and hi is not None and lo > hi:
        raise OptionsError(
            f"speaker_options.min_speakers_expected ({lo}) is greater than max_speakers_expected ({hi})")
    if exp is not None and ((lo is not None and exp < lo) or (hi is not None and exp > hi)):
        raise OptionsError(f"speakers_expected ({exp}) is outside speaker_options ({lo}..{hi})")
    return exp, lo, hi


def transcribe_file(path: Path, *, speech_model: str, language_code: str | None = "en_us",
                    speaker_labels: bool = False, speakers_expected: int | None = None,
                    speaker_options: dict | None = None, sentiment_analysis: bool = False,
                    punctuate: bool = True, format_text: bool = True) -> dict[str, Any]:
    """Transcribe one audio/video file with the offline engines.

    Returns exactly AssemblyAI's result fields:

    * ``text``: str, the words joined by spaces ("" when nothing was said)
    * ``words``: ``[{text, start, end, confidence, speaker}]``, times in integer ms; ``speaker`` is
      "A", "B", … with ``speaker_labels``, else None
    * ``utterances``: ``[{speaker, text, start, end, confidence, words}]`` or None (no speaker_labels)
    * ``sentiment_analysis_results``: ``[{text, start, end, sentiment, confidence, speaker}]`` or
      None (no sentiment_analysis)
    * ``audio_duration``: int seconds (rounded)
    * ``confidence``: float, mean word confidence (None when there are no words)
    * ``language_code``: the requested code, or the detected one when ``language_code`` is None
    * ``speech_model_used``: e.g. "whisper-tiny.en"

    Runs on the calling thread and takes roughly audio/15 (tiny.en) to audio/8 (base) on 2 cores,
    plus ~3 s per minute for diarization. Raises AudioError / OptionsError (see module doc),
    ModelNotInstalledError, ModelIntegrityError.
    """
    from .stt import UnsupportedLanguageError, transcribe_words

    if speech_model not in STT_MODELS:
        raise OptionsError(f"speech model {speech_model!r} is not available; "
                           f"available: {', '.join(sorted(STT_MODELS))}")
    exp, lo, hi = _check_speakers(speakers_expected, speaker_options) if speaker_labels else (None, None, None)

    audio = decode_file(Path(path))
    duration_s = int(round(audio.size / SAMPLE_RATE))
    try:
        raw, lang = transcribe_words(audio, speech_model, language_code)
    except UnsupportedLanguageError as e:
        raise OptionsError(str(e)) from None

    words: list[dict[str, Any]] = [dict(w, speaker=None) for w in raw]
    if speaker_labels and words:
        from .diarization import assign_speakers

        for w, spk in zip(words, assign_speakers(audio, words, exp, lo, hi)):
            w["speaker"] = spk

    # Sentences are split on the punctuated words; only the displayed text is stripped.
    sentences = split_sentences(words) if sentiment_analysis else []
    if not punctuate or not format_text:
        for w in words:
            w["text"] = _render(w["text"], punctuate, format_text)
        kept = [w for w in words if w["text"]]
        sentences = [[w for w in s if w["text"]] for s in sentences]
        sentences = [s for s in sentences if s]
        words = kept

    sentiment = None
    if sentiment_analysis:
        from .sentiment import sentiment_results

        sentiment = sentiment_results(sentences)

    return {
        "text": join_words(words),
        "words": words,
        "utterances": build_utterances(words) if speaker_labels else None,
        "sentiment_analysis_results": sentiment,
        "audio_duration": duration_s,
        "confidence": mean_confidence(words) if words else None,
        "language_code": lang,
        "speech_model_used": f"whisper-{speech_model}",
    }


def _item(words: Sequence[Mapping[str, Any]], with_speaker: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "text": join_words(words), "start": int(words[0]["start"]), "end": int(words[-1]["end"]),
        "confidence": mean_confidence(words), "words": [dict(w) for w in words],
    }
    if with_speaker:
        item["speaker"] = majority_speaker(words)
    return item


def sentences_of(words: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """AssemblyAI ``/sentences`` items for a transcript's words:
    ``[{text, start, end, confidence, words, speaker}]`` (ms; speaker = majority speaker or None)."""
    return [_item(s, True) for s in split_sentences(words) if s]


def paragraphs_of(words: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """AssemblyAI ``/paragraphs`` items for a transcript's words:
    ``[{text, start, end, confidence, words}]`` (ms; no speaker key)."""
    return [_item(p, False) for p in split_paragraphs(words) if p]
