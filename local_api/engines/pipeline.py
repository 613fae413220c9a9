"""The one entry point of the offline speech engines: a file in, AssemblyAI's result fields out.

Errors the server should turn into a transcript with ``status: "error"`` (message = ``str(exc)``):

* :class:`AudioError`: the input cannot be used ("File does not appear to contain audio. …",
  "Audio duration is too short.").
* :class:`OptionsError` (a subclass of AudioError): a request option is invalid (speakers_expected
  out of range, unknown speech model, language not supported by the model), or ``multichannel``
  was asked for a file with one channel.

Anything else (ModelNotInstalledError, ModelIntegrityError from models.py, bugs) is a server fault.
"""
from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .models import STT_MODELS
from .sentences import (build_channel_utterances, build_utterances, by_channel, has_channels,
                        join_words, majority_speaker, mean_confidence, split_paragraphs,
                        split_sentences)

__all__ = ["AudioError", "OptionsError", "transcribe_file", "decode_file", "decode_channels",
           "sentences_of", "paragraphs_of", "MIN_DURATION_MS", "MAX_SPEAKERS_EXPECTED",
           "MONO_MULTICHANNEL_ERROR"]

SAMPLE_RATE = 16_000
MIN_DURATION_MS = 160
MAX_SPEAKERS_EXPECTED = 10
MAX_CHANNELS = 32
# A channel whose peak stays below this (about -80 dBFS) is digital silence: it is not transcribed.
SILENT_PEAK = 1e-4
# What AssemblyAI answers for multichannel on a mono file is UNCONFIRMED (not in the spec, the docs or
# the SDK); the local server ends the transcript in status "error" with this message.
MONO_MULTICHANNEL_ERROR = ("multichannel was requested but the audio has 1 channel: send a stereo "
                           "(or multichannel) file with one speaker per channel, or use speaker_labels "
                           "for a mono recording")


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


def _decode_error(path: Path, e: Exception) -> AudioError:
    detail = str(e).strip() or type(e).__name__
    if isinstance(e, (IndexError, StopIteration)) or "stream" in detail.lower():
        detail = f"no audio stream found: {detail}"
    detail = re.sub(r"\s*:\s*'?/[^']*'?$", "", detail)  # don't leak server paths
    detail = re.sub(r"^\[Errno -?\d+\]\s*", "", detail)
    return AudioError(f"File does not appear to contain audio. File type is {_mime_type(path)} ({detail}).")


def _check_length(path: Path, n_samples: int) -> None:
    if n_samples * 1000 < MIN_DURATION_MS * SAMPLE_RATE:
        if n_samples == 0 and path.stat().st_size > 0 and _mime_type(path).startswith("text/"):
            raise AudioError(
                f"File does not appear to contain audio. File type is {_mime_type(path)} (no audio decoded).")
        raise AudioError("Audio duration is too short.")


def _missing(path: Path) -> AudioError:
    return AudioError(f"File does not appear to contain audio. File type is unknown (file not found: {path.name}).")


def decode_file(path: Path) -> np.ndarray:
    """Decode any audio/video container (PyAV via faster_whisper.decode_audio) to 16 kHz mono
    float32, shape ``(n_samples,)``. Raises AudioError for unreadable files, files without an audio
    stream and audio shorter than MIN_DURATION_MS."""
    from faster_whisper import decode_audio

    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except Exception as e:  # noqa: BLE001 - PyAV raises many types; all mean "not audio we can read"
        raise _decode_error(path, e) from None
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    _check_length(path, audio.size)
    return audio


def _decode_planar(path: Path) -> np.ndarray:
    """The first audio stream at 16 kHz float32 with its channels kept: shape ``(channels, n)``."""
    import gc

    import av

    chunks: list[np.ndarray] = []
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        channels = int(stream.channels or len(stream.layout.channels) or 1)
        if channels > MAX_CHANNELS:
            raise AudioError(f"multichannel supports at most {MAX_CHANNELS} audio channels; the file "
                             f"has {channels}")
        resampler = av.audio.resampler.AudioResampler(format="fltp", layout=stream.layout,
                                                      rate=SAMPLE_RATE)
        for frame in container.decode(stream):
            try:
                out = resampler.resample(frame)
            except av.error.InvalidDataError:  # a corrupt frame: skip it, like faster-whisper
                continue
            chunks.extend(f.to_ndarray() for f in out)
        chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    del resampler
    gc.collect()  # PyAV resampler objects are only freed by the collector (faster-whisper #390)
    if not chunks:
        return np.zeros((channels, 0), dtype=np.float32)
    audio = np.concatenate([c.reshape(c.shape[0], -1) for c in chunks], axis=1)
    return np.ascontiguousarray(audio, dtype=np.float32)


def decode_channels(path: Path) -> np.ndarray:
    """Decode a file keeping its channels, each resampled to 16 kHz float32: shape
    ``(channels, n_samples)`` (channel 1 = left = row 0, like AssemblyAI's numbering). Same errors
    as :func:`decode_file`."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        audio = _decode_planar(path)
    except AudioError:
        raise
    except Exception as e:  # noqa: BLE001 - PyAV raises many types; all mean "not audio we can read"
        raise _decode_error(path, e) from None
    _check_length(path, audio.shape[1])
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
                    punctuate: bool = True, format_text: bool = True,
                    multichannel: bool = False, redact_pii_policies: Sequence[str] | None = None,
                    redact_pii_sub: str = "hash") -> dict[str, Any]:
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

    ``multichannel=True`` (AssemblyAI's multichannel transcription) transcribes each channel on its
    own and adds ``audio_channels`` (int) to the result. Then every word, utterance and sentiment
    result carries ``channel`` ("1" = left, "2" = right, …); words of all channels are merged in
    time order; utterances are per-channel turns (always present, as in AssemblyAI); ``speaker`` is
    the channel ("1", "2", …), or ``"<channel><letter>"`` ("1A", "1B", "2A") when
    ``speaker_labels`` is also set (diarization within each channel; speakers_expected and
    speaker_options apply per channel, as in AssemblyAI; without them each channel is one speaker,
    "1A", "2A"). A digitally silent channel is not transcribed and
    produces no words. One channel raises OptionsError(MONO_MULTICHANNEL_ERROR).

    ``redact_pii_policies`` (AssemblyAI's ``redact_pii`` with its policies and ``redact_pii_sub``)
    redacts the words before anything is built from them, so text, utterances, sentences and
    sentiment results only ever hold the redacted text (rules in :mod:`local_api.engines.pii`);
    an unsupported policy or substitution raises OptionsError.

    Runs on the calling thread and takes roughly audio/15 (tiny.en) to audio/8 (base) on 2 cores,
    plus ~3 s per minute for diarization. Raises AudioError / OptionsError (see module doc),
    ModelNotInstalledError, ModelIntegrityError.
    """
    from .stt import UnsupportedLanguageError, transcribe_words

    if speech_model not in STT_MODELS:
        raise OptionsError(f"speech model {speech_model!r} is not available; "
                           f"available: {', '.join(sorted(STT_MODELS))}")
    exp, lo, hi = _check_speakers(speakers_expected, speaker_options) if speaker_labels else (None, None, None)

    audio_channels = None
    if multichannel:
        planes = decode_channels(Path(path))
        audio_channels = int(planes.shape[0])
        if audio_channels < 2:
            raise OptionsError(MONO_MULTICHANNEL_ERROR)
        duration_s = int(round(planes.shape[1] / SAMPLE_RATE))
    else:
        planes = decode_file(Path(path))[np.newaxis, :]
        duration_s = int(round(planes.shape[1] / SAMPLE_RATE))

    words: list[dict[str, Any]] = []
    langs: list[tuple[int, str]] = []  # (words, language) per transcribed channel
    for index, audio in enumerate(planes):
        channel = str(index + 1)
        if multichannel and float(np.max(np.abs(audio), initial=0.0)) < SILENT_PEAK:
            continue  # digital silence: nothing to transcribe (and nothing for Whisper to invent)
        try:
            raw, lang = transcribe_words(audio, speech_model, language_code)
        except UnsupportedLanguageError as e:
            raise OptionsError(str(e)) from None
        langs.append((len(raw), lang))
        chan_words: list[dict[str, Any]] = [dict(w, speaker=None) for w in raw]
        if speaker_labels and chan_words:
            from .diarization import assign_speakers

            # Per-channel diarization: the diarizer cannot tell one voice from two on its own (it
            # picks k >= 2 unless told 1), and a channel is usually one party; so without
            # speakers_expected / speaker_options each channel is one speaker ("1A", "2A").
            ch_exp = exp if (not multichannel or exp is not None or lo is not None or hi is not None) else 1
            for w, spk in zip(chan_words, assign_speakers(audio, chan_words, ch_exp, lo, hi)):
                w["speaker"] = f"{channel}{spk}" if multichannel else spk
        if multichannel:
            for w in chan_words:
                if not speaker_labels:
                    w["speaker"] = channel
                w["channel"] = channel
        words.extend(chan_words)
    if multichannel:  # merge the channels in time order (stable: channel order on ties)
        words.sort(key=lambda w: (w["start"], int(w["channel"])))
    if langs:
        lang = max(langs, key=lambda x: x[0])[1]  # the language of the channel with most words
    else:
        lang = language_code or "en"

    if redact_pii_policies:
        from .pii import redact_words

        try:
            words, _ = redact_words(words, redact_pii_policies, redact_pii_sub)
        except ValueError as e:
            raise OptionsError(str(e)) from None

    # Sentences are split on the punctuated words (per channel); only the displayed text is stripped.
    sentences = by_channel(words, split_sentences) if sentiment_analysis else []
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

    if multichannel:
        utterances = build_channel_utterances(words)
    else:
        utterances = build_utterances(words) if speaker_labels else None
    result = {
        "text": join_words(words),
        "words": words,
        "utterances": utterances,
        "sentiment_analysis_results": sentiment,
        "audio_duration": duration_s,
        "confidence": mean_confidence(words) if words else None,
        "language_code": lang,
        "speech_model_used": f"whisper-{speech_model}",
    }
    if multichannel:
        result["audio_channels"] = audio_channels
    return result


def _item(words: Sequence[Mapping[str, Any]], with_speaker: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "text": join_words(words), "start": int(words[0]["start"]), "end": int(words[-1]["end"]),
        "confidence": mean_confidence(words), "words": [dict(w) for w in words],
    }
    if with_speaker:
        item["speaker"] = majority_speaker(words)
    if has_channels(words):
        item["channel"] = words[0].get("channel")
    return item


def sentences_of(words: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """AssemblyAI ``/sentences`` items for a transcript's words:
    ``[{text, start, end, confidence, words, speaker}]`` (ms; speaker = majority speaker or None);
    multichannel words are split per channel and the items carry ``channel``."""
    return [_item(s, True) for s in by_channel(words, split_sentences) if s]


def paragraphs_of(words: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """AssemblyAI ``/paragraphs`` items for a transcript's words:
    ``[{text, start, end, confidence, words}]`` (ms; no speaker key); multichannel words are split
    per channel and the items carry ``channel``."""
    return [_item(p, False) for p in by_channel(words, split_paragraphs) if p]
