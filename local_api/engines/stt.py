"""Speech-to-text with faster-whisper (CTranslate2, CPU, int8) and per-word timestamps.

Models come from :mod:`local_api.engines.models` (verified before loading). A loaded model is
cached per name for the life of the process; loading is serialised by a lock, so concurrent
callers share one instance. ``WhisperModel.transcribe`` itself may run from several threads at
once, but on a 2-core machine that only slows both down: the server should run one
transcription at a time (see :data:`TRANSCRIBE_LOCK`).
"""
from __future__ import annotations

import os
import threading
from typing import Any, TypedDict

import numpy as np

from .models import STT_MODELS, stt_model_dir

__all__ = ["Word", "SAMPLE_RATE", "BEAM_SIZE", "TRANSCRIBE_LOCK", "get_whisper", "join_pieces", "transcribe_words",
           "whisper_language", "UnsupportedLanguageError"]

SAMPLE_RATE = 16_000  # Hz, what Whisper expects

# Beam size, measured on two synthetic two-voice calls (70 s sample / 76 s own clip) on 2 shared
# cores; WER ignoring numbers:    tiny.en          base            CPU s for the sample (tiny / base)
#   beam 1 (greedy)               12.9 % / 4.0 %    7.5 % / 3.0 %     7.6 / 11.6
#   beam 3                        10.8 % / 2.5 %    5.9 % / 3.0 %     7.5 / 18.2
#   beam 5 (Whisper's default)    10.2 % / 2.5 %    6.5 % / 2.0 %     9.7 / 19.9
# Beam 5 costs ~30-70 % more CPU than greedy for 1-3 points less WER; calls are analysed offline,
# so accuracy wins. CALLFLOWS_STT_BEAM_SIZE=1 saves 25-40 % of the time.
BEAM_SIZE = int(os.environ.get("CALLFLOWS_STT_BEAM_SIZE", "5"))
# Speech chunks (Silero VAD, ≤ 30 s) decoded per batch by faster-whisper's BatchedInferencePipeline;
# batch sizes 1, 4 and 8 gave the same words on the Harper Valley calls (bench/eval_stt.py).
BATCH_SIZE = 4
# Speech the batched decode left without words, at least this long, is decoded again on its own.
MISSED_SPEECH_S = 1.0
MISSED_SPEECH_PAUSE_MS = 500  # ... in speech segments split at pauses this long

# Held by transcribe_words around the decode: one transcription at a time per process.
TRANSCRIBE_LOCK = threading.Lock()


class Word(TypedDict):
    """One recognised word. ``start``/``end`` in integer milliseconds; ``confidence`` in 0..1."""

    text: str
    start: int
    end: int
    confidence: float


# Whisper's languages written without spaces between words: there its word pieces never start with
# one (faster-whisper's Tokenizer.split_to_word_tokens splits them per character instead).
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})


def join_pieces(pieces: list[tuple[str, float, float, float]], spaced: bool = True,
                after_ms: int = 0) -> list[Word]:
    """faster-whisper's words of one segment → AssemblyAI-shaped words.

    ``pieces``: ``(word, start_s, end_s, probability)`` as ``Segment.words`` gives them. Whisper's
    tokenizer starts a new piece at a space and also at a punctuation mark, so "9:30 a.m." arrives as
    ``" 9"``, ``":30"``, ``" a"``, ``".m."`` and "bye-bye" as ``" Bye"``, ``"-bye."``. With ``spaced``
    (the language puts spaces between words) a piece that does not start with a space is part of the
    word before it: text joined as written, ``start`` of its first piece, ``end`` of its last,
    ``confidence`` the lowest piece's. Times in integer ms; no word starts before the one before it,
    nor before ``after_ms`` (the previous segment's last word).
    """
    words: list[Word] = []
    last_start = after_ms
    for raw, start_s, end_s, probability in pieces:
        text = raw.strip()
        if not text:
            continue
        start = max(int(round(start_s * 1000)), last_start)
        end = max(int(round(end_s * 1000)), start)
        confidence = round(float(probability), 5)
        if spaced and words and not raw[:1].isspace():
            prev = words[-1]
            prev.update(text=prev["text"] + text, end=max(prev["end"], end),
                        confidence=min(prev["confidence"], confidence))
            continue
        words.append(Word(text=text, start=start, end=end, confidence=confidence))
        last_start = start
    return words


class UnsupportedLanguageError(ValueError):
    """The requested language is not supported by the chosen model (e.g. ``fr`` with ``tiny.en``)."""


_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _threads() -> int:
    try:
        return max(1, int(os.environ.get("CALLFLOWS_STT_THREADS", "2")))
    except ValueError:
        return 2


def get_whisper(model_name: str) -> Any:
    """The cached ``faster_whisper.BatchedInferencePipeline`` (its ``.model`` is the
    ``WhisperModel``) for a registry name ("tiny.en", "base").

    First call per name: verifies the files' sha256 (see models.py) and loads the model (~0.5 s
    tiny.en, ~1 s base). Raises KeyError, ModelNotInstalledError, ModelIntegrityError.
    """
    with _models_lock:
        model = _models.get(model_name)
        if model is None:
            from faster_whisper import BatchedInferencePipeline, WhisperModel

            folder = stt_model_dir(model_name)
            model = BatchedInferencePipeline(WhisperModel(str(folder), device="cpu", compute_type="int8",
                                                          cpu_threads=_threads(), num_workers=1))
            _models[model_name] = model
        return model


def whisper_language(language_code: str | None) -> str | None:
    """AssemblyAI language code → Whisper's (``"en_us"`` → ``"en"``); None stays None (detect)."""
    if not language_code:
        return None
    return language_code.lower().replace("-", "_").split("_")[0]


def transcribe_words(audio: np.ndarray, model_name: str, language_code: str | None = "en_us",
                     *, beam_size: int | None = None) -> tuple[list[Word], str]:
    """Transcribe 16 kHz mono float32 ``audio`` (shape ``(n_samples,)``, values in -1..1).

    Returns ``(words, language_code)``: words in time order with Whisper's punctuation kept
    (``"Hello,"``) and its word pieces joined as written (``"9:30"``, ``"a.m."``; :func:`join_pieces`),
    times in integer ms, confidence = Whisper's word probability (the lowest piece's). The language code
    is the one asked for, or the detected Whisper code (e.g. ``"en"``) when ``language_code`` is
    None. English-only models (``*.en``) accept only English and always report ``"en"`` when
    detecting.

    Decoding is faster-whisper's batched pipeline: Silero VAD (bundled with faster-whisper) cuts the
    speech into chunks of at most 30 s, each decoded on its own without the text before it (beam
    ``beam_size``, default BEAM_SIZE). Against the sequential decode with VAD filtering used before,
    which dropped a whole greeting on one call, it lowered the mean WER on the six Harper Valley
    calls (mono mix, Whisper base) from 21.8 % to 17.4 % and ran at 11.0× real time instead of 8.8×,
    with speech left without words decoded again (:func:`_missed_speech`; ``bench/eval_stt.py``).
    Under Whisper's normaliser (18.5 % before, 13.9 % now; 13.0 % without the re-decoding), the sequential
    decode with condition_on_previous_text, VAD padding, soxr resampling or temperature 0 gave
    17.2-17.4 %, beam 8 18.8 %, hotwords with the bank's name 13.7 %; in the batched pipeline an
    initial prompt or those hotwords made it worse (14.2-15.3 %), so keyterms are not passed on.
    """
    if model_name not in STT_MODELS:
        raise KeyError(f"unknown speech model {model_name!r}; known: {', '.join(sorted(STT_MODELS))}")
    lang = whisper_language(language_code)
    english_only = model_name.endswith(".en")
    if english_only and lang not in (None, "en"):
        raise UnsupportedLanguageError(
            f"speech model {model_name!r} is English-only; language_code {language_code!r} is not supported")
    if english_only:
        lang = "en"
    model = get_whisper(model_name)
    audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    beam = beam_size or BEAM_SIZE
    with TRANSCRIBE_LOCK:
        segments, info = model.transcribe(audio, language=lang, task="transcribe", beam_size=beam,
                                          word_timestamps=True, batch_size=BATCH_SIZE)
        spaced = (lang or info.language) not in UNSPACED_LANGUAGES
        words = _words_of(segments, spaced)  # a generator: decoding happens here
        for start, end in _missed_speech(audio, words):
            segments, _ = model.model.transcribe(audio[start:end], language=lang or info.language,
                                                 task="transcribe", beam_size=beam, word_timestamps=True,
                                                 vad_filter=False, condition_on_previous_text=False)
            words += _words_of(segments, spaced, offset_s=start / SAMPLE_RATE)
    words.sort(key=lambda w: w["start"])
    detected = language_code if language_code else (info.language or "en")
    return words, detected


def _words_of(segments, spaced: bool, offset_s: float = 0.0) -> list[Word]:
    """faster-whisper ``Segment``s (times in s, shifted by ``offset_s``) → words (:func:`join_pieces`)."""
    words: list[Word] = []
    for seg in segments:
        words += join_pieces([(w.word, w.start + offset_s, w.end + offset_s, w.probability)
                              for w in seg.words or ()], spaced, words[-1]["start"] if words else 0)
    return words


def _missed_speech(audio: np.ndarray, words: list[Word]) -> list[tuple[int, int]]:
    """Silero VAD speech segments (split at pauses of MISSED_SPEECH_PAUSE_MS) of at least
    MISSED_SPEECH_S that no word overlaps, as ``(start, end)`` sample indices. Decoded without
    timestamps, Whisper sometimes ends a 30 s chunk early or starts it late: on the sample call's
    first 30 s, tiny.en gave words for 5.7-18.2 s only."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    starts = np.array([w["start"] for w in words], dtype=np.int64) * SAMPLE_RATE // 1000
    ends = np.array([w["end"] for w in words], dtype=np.int64) * SAMPLE_RATE // 1000
    vad = VadOptions(min_silence_duration_ms=MISSED_SPEECH_PAUSE_MS, speech_pad_ms=100)  # about a turn each
    return [(seg["start"], seg["end"]) for seg in get_speech_timestamps(audio, vad)
            if seg["end"] - seg["start"] >= MISSED_SPEECH_S * SAMPLE_RATE
            and not np.any((starts < seg["end"]) & (ends > seg["start"]))]
