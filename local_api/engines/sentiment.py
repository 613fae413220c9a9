"""Sentence sentiment with VADER (vaderSentiment 3.3.2, lexicon shipped in the wheel).

Label from VADER's compound score c (-1..1): c ≥ 0.05 → POSITIVE, c ≤ -0.05 → NEGATIVE, else NEUTRAL.

Confidence (0..1), defined here because VADER has no probability:

* POSITIVE / NEGATIVE: ``0.5 + 0.5 * |c|``: just past the ±0.05 threshold is ≈ 0.53 (a coin flip),
  |c| = 1 is 1.0.
* NEUTRAL: ``0.5 + 0.5 * neu * (1 - |c| / 0.05)``: VADER's neutral proportion ``neu`` (0..1),
  discounted as c approaches a threshold; a sentence with no sentiment words at all (neu = 1,
  c = 0) is 1.0.

The analyzer is thread-safe for reading (one shared instance).
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Mapping, Sequence

from .sentences import join_words, majority_speaker

__all__ = ["classify", "sentiment_results", "POS_THRESHOLD", "NEG_THRESHOLD"]

POS_THRESHOLD = 0.05
NEG_THRESHOLD = -0.05

_analyzer = None
_lock = threading.Lock()


def _get_analyzer():
    global _analyzer
    with _lock:
        if _analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            _analyzer = SentimentIntensityAnalyzer()
        return _analyzer


def classify(text: str) -> tuple[str, float]:
    """``(sentiment, confidence)`` for one sentence: "POSITIVE" | "NEUTRAL" | "NEGATIVE", 0..1."""
    scores = _get_analyzer().polarity_scores(text)
    c = float(scores["compound"])
    if c >= POS_THRESHOLD:
        label, conf = "POSITIVE", 0.5 + 0.5 * abs(c)
    elif c <= NEG_THRESHOLD:
        label, conf = "NEGATIVE", 0.5 + 0.5 * abs(c)
    else:
        conf = 0.5 + 0.5 * float(scores["neu"]) * (1.0 - abs(c) / POS_THRESHOLD)
        label = "NEUTRAL"
    return label, round(min(1.0, max(0.0, conf)), 5)


def sentiment_results(sentences: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One AssemblyAI sentiment result per sentence (a sentence = its list of words):
    ``{text, start, end, sentiment, confidence, speaker}``; times in ms; ``speaker`` is the
    sentence's majority speaker, None when the words carry no speaker. Multichannel words (with a
    ``channel``) add ``channel``: the sentence's channel ("1", "2", …).
    """
    out: list[dict[str, Any]] = []
    for words in sentences:
        if not words:
            continue
        text = join_words(words)
        label, conf = classify(text)
        item = {
            "text": text, "start": int(words[0]["start"]), "end": int(words[-1]["end"]),
            "sentiment": label, "confidence": conf, "speaker": majority_speaker(words),
        }
        if any(w.get("channel") is not None for w in words):
            item["channel"] = Counter(w.get("channel") for w in words).most_common(1)[0][0]
        out.append(item)
    return out
