"""Conversation metrics: pure functions over AssemblyAI utterances, words and sentence sentiments.

The sales coaching scorecard computes these numbers with code (as Gong or AWS Call Analytics do) and
hands them to the LLM, which only interprets them. Every function is deterministic and side-effect
free, accepts an empty list and a one-speaker call, and documents its unit and edge cases.

Conventions shared by all functions:

* Times are integer **milliseconds** (AssemblyAI's ``start``/``end``); ``*_ms`` values are ms,
  shares are floats in 0..1, speech rates are words per minute.
* An utterance's duration is ``end - start``, clamped at 0 (a malformed ``end < start`` counts 0).
* Speakers appear in dicts in **order of first appearance**: utterances sorted by ``start`` (stable,
  so ties keep the input order), first utterance of each speaker. Every speaker with an utterance
  gets an entry, even when the value is 0.
* Sentences without a speaker (no diarization) are grouped under ``"?"``, as in
  :func:`callflows.sentiment.count_sentiments`.

With single-channel diarization AssemblyAI assigns every word to one speaker, so its utterances rarely
overlap and interruptions are rare; multichannel transcripts (one channel per party) do overlap.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from callflows.models import SentimentAnalysisResult, Utterance
from callflows.sentiment import SentenceSentiment, SentimentCounts

Direction = Literal["improving", "steady", "worsening"]
SentenceLike = SentimentAnalysisResult | SentenceSentiment

UNKNOWN_SPEAKER = "?"
TRAJECTORY_THRESHOLD = 0.25
"""Smallest change of the mean sentiment score (on the −1..+1 scale) that counts as a trend."""
PAUSE_MS = 500  # a silence between two words of a turn at least this long is not talk time
SENTIMENT_SCORES: dict[str, float] = {"POSITIVE": 1.0, "NEUTRAL": 0.0, "NEGATIVE": -1.0}
_EPS = 1e-9
_QUESTION_RE = re.compile(r"[?!]*\?[?!]*")


# --- helpers ------------------------------------------------------------------------------------

def _duration(u: Utterance) -> int:
    return max(0, u.end - u.start)


def _talk_ms(u: Utterance) -> int:
    """Talk time of one utterance, ms: its words' durations plus the pauses between them shorter than
    ``PAUSE_MS``; the utterance's span (``end - start``) when it carries no words."""
    if not u.words:
        return _duration(u)
    words = sorted(u.words, key=lambda w: w.start)
    spoken = sum(max(0, w.end - w.start) for w in words)
    return spoken + sum(gap for a, b in zip(words, words[1:]) if 0 < (gap := b.start - a.end) < PAUSE_MS)


def _chronological(utterances: Iterable[Utterance]) -> list[Utterance]:
    return sorted(utterances, key=lambda u: u.start)


def speakers(utterances: Sequence[Utterance]) -> list[str]:
    """Speaker labels in order of first appearance (utterances sorted by ``start``, ties in input
    order). ``[]`` for no utterances."""
    return list(dict.fromkeys(u.speaker for u in _chronological(utterances)))


def _zeros(utterances: Sequence[Utterance]) -> dict[str, int]:
    return {s: 0 for s in speakers(utterances)}


def _merged_intervals(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(iv for iv in intervals if iv[1] > iv[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _utterance_word_count(u: Utterance) -> int:
    return len(u.words) if u.words else len(u.text.split())


# --- talk time ----------------------------------------------------------------------------------

def talk_time_ms(utterances: Sequence[Utterance]) -> dict[str, int]:
    """**Talk time** per speaker, in **ms**: the time the speaker's words take, with the pauses
    between them shorter than ``PAUSE_MS`` (an utterance without ``words``: its ``end - start``).

    A longer pause inside an utterance (typing, looking something up) is not talk. On the six Harper
    Valley calls, with each word given its true speaker, the agent's share from utterance spans was
    off by 10 points on average against the human turn times, from words and pauses under 0.5 s by
    2.4 (pauses under 0, 0.3, 0.8 or 1.5 s: 2.6-3.1).

    Overlapping talk counts for each speaker who talks (two people talking over each other for 1 s
    both get 1 s). Silence between utterances counts for nobody. ``{}`` for no utterances.
    """
    out = _zeros(utterances)
    for u in utterances:
        out[u.speaker] += _talk_ms(u)
    return out


def talk_share(utterances: Sequence[Utterance]) -> dict[str, float]:
    """**Talk share** per speaker, a **share 0..1**: the speaker's talk time divided by the total talk
    time of all speakers.

    It is a share of *speech* time, not of the call's duration (silence is excluded), so the shares
    sum to 1. One-speaker call: ``{"A": 1.0}``. ``{}`` when nobody speaks (no utterances, or only
    zero-length ones).
    """
    times = talk_time_ms(utterances)
    total = sum(times.values())
    if total <= 0:
        return {}
    return {s: t / total for s, t in times.items()}


def talk_listen_ratio(utterances: Sequence[Utterance], speaker: str) -> float | None:
    """**Talk/listen ratio** of ``speaker``, a **dimensionless ratio** (≥ 0): the speaker's talk time
    divided by the talk time of all other speakers together (1.0 = talks as much as listens; 2.0 =
    talks twice as much).

    ``None`` when the other speakers never talk (one-speaker call, empty transcript): the ratio is
    undefined. ``0.0`` when ``speaker`` never talks but others do (also for an unknown label).
    """
    times = talk_time_ms(utterances)
    own = times.get(speaker, 0)
    others = sum(t for s, t in times.items() if s != speaker)
    if others <= 0:
        return None
    return own / others


def speech_time_ms(utterances: Sequence[Utterance], duration_ms: int | None = None) -> int:
    """**Speech time** of the call, in **ms**: the length of the union of all utterance intervals, so
    overlapping talk counts once. With ``duration_ms``, intervals are clipped to ``0..duration_ms``.
    ``0`` for no utterances."""
    intervals = ((u.start, u.end) for u in utterances)
    if duration_ms is not None:
        intervals = ((max(0, s), min(duration_ms, e)) for s, e in intervals)
    return sum(e - s for s, e in _merged_intervals(intervals))


def silence_share(utterances: Sequence[Utterance], duration_ms: int) -> float:
    """**Silence share** of the call, a **share 0..1**: the part of ``0..duration_ms`` where nobody
    speaks, i.e. ``1 - speech_time / duration``.

    Speech is the union of the utterance intervals (overlapping talk counts once) clipped to the
    call, so the result stays in 0..1. No utterances and ``duration_ms > 0``: ``1.0``. ``0.0`` when
    ``duration_ms <= 0`` (nothing to measure).
    """
    if duration_ms <= 0:
        return 0.0
    speech = speech_time_ms(utterances, duration_ms)
    return max(0.0, (duration_ms - speech) / duration_ms)


# --- turn-taking --------------------------------------------------------------------------------

def longest_monologue_ms(utterances: Sequence[Utterance]) -> dict[str, int]:
    """**Longest monologue** per speaker, in **ms**.

    A monologue is a run of consecutive utterances of one speaker (utterances in order of ``start``)
    with no other speaker's utterance in between; its length is from the run's first ``start`` to
    its last ``end`` (the latest ``end`` in the run). Pauses *inside* the run count toward it: a
    speaker who pauses and carries on, with nobody else speaking, is still holding the floor.
    Any utterance of another speaker, even a short backchannel ("mm-hmm") that starts during the
    run, ends it; the utterance during which it starts is not split. Every speaker gets an entry
    (their single longest run); one-speaker call: the span of all their utterances. ``{}`` for no
    utterances.
    """
    out = _zeros(utterances)
    run_speaker: str | None = None
    run_start = run_end = 0
    for u in _chronological(utterances):
        if u.speaker == run_speaker:
            run_end = max(run_end, u.end)
            continue
        if run_speaker is not None:
            out[run_speaker] = max(out[run_speaker], run_end - run_start)
        run_speaker, run_start, run_end = u.speaker, u.start, max(u.start, u.end)
    if run_speaker is not None:
        out[run_speaker] = max(out[run_speaker], run_end - run_start)
    return out


def interruptions(utterances: Sequence[Utterance]) -> dict[str, int]:
    """**Interruptions** made by each speaker, a **count** of turns.

    A turn (utterance) of speaker X is an interruption when it starts while an utterance of another
    speaker Y is still running: ``Y.start < X.start < Y.end``. It is counted for X, the speaker who
    cuts in, at most once per turn (even if it overlaps several others). Not interruptions: turns
    starting exactly when the other's ends (``X.start == Y.end``, a clean hand-over), simultaneous
    starts (``X.start == Y.start``), and overlaps with the speaker's own earlier utterance.
    Backchannels ("mm-hmm") over someone else's turn count, as they are turns of their own. Every
    speaker gets an entry; one-speaker call: ``{"A": 0}``; ``{}`` for no utterances.
    """
    out = _zeros(utterances)
    ordered = _chronological(utterances)
    latest_end: dict[str, int] = {}  # speaker -> latest end among utterances that started earlier
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j].start == ordered[i].start:
            j += 1
        group = ordered[i:j]  # same start: none of them interrupts another in the group
        for u in group:
            if any(end > u.start for s, end in latest_end.items() if s != u.speaker):
                out[u.speaker] += 1
        for u in group:
            latest_end[u.speaker] = max(latest_end.get(u.speaker, u.end), u.end)
        i = j
    return out


def questions_asked(utterances: Sequence[Utterance]) -> dict[str, int]:
    """**Questions asked** per speaker, a **count** of sentences ending in ``?`` in the speaker's
    utterance texts.

    Each run of sentence-final punctuation containing a ``?`` counts once (``"Really?!"`` and
    ``"Why??"`` are one question each). Needs punctuated text (AssemblyAI's default ``punctuate``).
    Every speaker gets an entry; ``{}`` for no utterances.
    """
    out = _zeros(utterances)
    for u in utterances:
        out[u.speaker] += len(_QUESTION_RE.findall(u.text))
    return out


def word_counts(utterances: Sequence[Utterance]) -> dict[str, int]:
    """**Words** spoken per speaker, a **count**: ``len(utterance.words)`` when AssemblyAI gave the
    words, else the whitespace-separated tokens of ``utterance.text``. ``{}`` for no utterances."""
    out = _zeros(utterances)
    for u in utterances:
        out[u.speaker] += _utterance_word_count(u)
    return out


def words_per_minute(utterances: Sequence[Utterance]) -> dict[str, float]:
    """**Speech rate** per speaker, in **words per minute**: words spoken (see :func:`word_counts`)
    divided by the speaker's talk time in minutes (:func:`talk_time_ms` / 60 000).

    Pauses between utterances are not in the talk time, so this is the rate while speaking.
    ``0.0`` for a speaker whose talk time is 0; ``{}`` for no utterances.
    """
    words = word_counts(utterances)
    times = talk_time_ms(utterances)
    return {s: (words[s] / (times[s] / 60_000) if times[s] > 0 else 0.0) for s in words}


# --- sentiment ----------------------------------------------------------------------------------

def sentiment_counts(results: Sequence[SentenceLike]) -> dict[str, SentimentCounts]:
    """**Sentiment counts** per speaker, **counts of sentences** per label (POSITIVE/NEUTRAL/NEGATIVE)
    over AssemblyAI's ``sentiment_analysis_results``.

    Speakers in order of first appearance in ``results``; sentences without a speaker are counted
    under ``"?"``. ``{}`` for no results.
    """
    out: dict[str, SentimentCounts] = {}
    for r in results:
        counts = out.setdefault(r.speaker or UNKNOWN_SPEAKER, SentimentCounts())
        setattr(counts, r.sentiment, getattr(counts, r.sentiment) + 1)
    return out


class Trajectory(BaseModel):
    """How sentiment moves from the start to the end of the call (see :func:`sentiment_trajectory`)."""

    start_score: float | None = Field(None, description="mean sentiment score of the sentences in the first "
                                                        "third of the call, -1..+1; None without sentences")
    end_score: float | None = Field(None, description="mean sentiment score of the sentences in the last "
                                                      "third of the call, -1..+1; None without sentences")
    change: float | None = Field(None, description="end_score - start_score, -2..+2; None if either is None")
    direction: Direction | None = Field(None, description="improving / steady / worsening; None if change is None")
    start_sentences: int = Field(0, description="sentences in the first third")
    end_sentences: int = Field(0, description="sentences in the last third")
    threshold: float = Field(TRAJECTORY_THRESHOLD, description="smallest |change| that is not 'steady'")
    weighted: bool = Field(False, description="scores weighted by the sentences' confidence")

    def describe(self) -> str:
        """``"improving (-0.50 → +0.33)"``, or ``"n/a"`` when a third has no sentences."""
        if self.direction is None or self.start_score is None or self.end_score is None:
            return "n/a"
        return f"{self.direction} ({self.start_score:+.2f} → {self.end_score:+.2f})"


def _mean_score(sentences: list[SentenceLike], weighted: bool) -> float | None:
    if not sentences:
        return None
    weights = [max(0.0, s.confidence) if weighted else 1.0 for s in sentences]
    total = sum(weights)
    if total <= 0:
        return None
    return sum(w * SENTIMENT_SCORES[s.sentiment] for w, s in zip(weights, sentences)) / total


def sentiment_trajectory(results: Sequence[SentenceLike], duration_ms: int | None,
                         speaker: str | None = None, *, threshold: float = TRAJECTORY_THRESHOLD,
                         weight_by_confidence: bool = False) -> Trajectory:
    """**Sentiment trajectory**: the mean sentiment score over the first third of the call vs the
    last third, and its direction.

    * Score of a sentence: POSITIVE = +1, NEUTRAL = 0, NEGATIVE = −1. The mean is **unweighted** by
      default, so it equals (positive − negative) / sentences (a net sentiment share in −1..+1), the
      same sentences as the counts; ``weight_by_confidence=True`` weights each sentence by its
      ``confidence`` instead.
    * A sentence belongs to the third that holds its midpoint ``(start + end) / 2``: first third
      ``< duration/3``, last third ``>= 2·duration/3``; the middle third is not used.
    * ``change = end_score − start_score``; ``"improving"`` when ``change >= threshold``,
      ``"worsening"`` when ``change <= −threshold``, else ``"steady"``. The default threshold 0.25
      means e.g. a quarter of the sentences moving from neutral to positive.
    * ``speaker``: only that speaker's sentences (``"?"`` selects sentences without a speaker); the
      thirds are still thirds of the whole call. ``None``: all sentences.
    * ``duration_ms`` in ms; ``None`` (or ≤ 0) falls back to the latest ``end`` of all sentences.
    * Edge cases: a third without sentences has score ``None``, and then ``change`` and ``direction``
      are ``None`` (no results at all: both scores ``None``).
    """
    if duration_ms is None or duration_ms <= 0:
        duration_ms = max((r.end for r in results), default=0)  # all sentences, before the speaker filter
    if speaker is not None:
        results = [r for r in results if (r.speaker or UNKNOWN_SPEAKER) == speaker]
    first: list[SentenceLike] = []
    last: list[SentenceLike] = []
    if duration_ms > 0:
        for r in results:
            mid = (r.start + r.end) / 2
            if mid < duration_ms / 3:
                first.append(r)
            elif mid >= 2 * duration_ms / 3:
                last.append(r)
    start_score = _mean_score(first, weight_by_confidence)
    end_score = _mean_score(last, weight_by_confidence)
    change: float | None = None
    direction: Direction | None = None
    if start_score is not None and end_score is not None:
        change = end_score - start_score
        if change >= threshold - _EPS:
            direction = "improving"
        elif change <= -threshold + _EPS:
            direction = "worsening"
        else:
            direction = "steady"
    return Trajectory(start_score=start_score, end_score=end_score, change=change, direction=direction,
                      start_sentences=len(first), end_sentences=len(last), threshold=threshold,
                      weighted=weight_by_confidence)


# --- all together -------------------------------------------------------------------------------

class SpeakerMetrics(BaseModel):
    """One speaker's conversation metrics (definitions: the functions of :mod:`callflows.metrics`)."""

    speaker: str
    talk_time_ms: int = Field(..., description="time the speaker's words take, with pauses under 0.5 s, ms")
    talk_share: float = Field(..., description="share of all speech time, 0..1 (shares sum to 1)")
    talk_listen_ratio: float | None = Field(..., description="own talk time / other speakers' talk time; "
                                                             "None when the others never talk")
    longest_monologue_ms: int = Field(..., description="longest run of own utterances with no other "
                                                       "speaker's utterance in between, pauses included, ms")
    interruptions: int = Field(..., description="turns started while another speaker's utterance was running")
    questions: int = Field(..., description="sentences ending in '?'")
    words: int = Field(..., description="words spoken")
    words_per_minute: float = Field(..., description="words / talk time in minutes")
    sentiment: SentimentCounts = Field(default_factory=SentimentCounts,
                                       description="the speaker's sentences per sentiment label")
    trajectory: Trajectory = Field(default_factory=Trajectory,
                                   description="the speaker's sentiment, first vs last third of the call")


class ConversationMetrics(BaseModel):
    """Metrics of a whole call: call-level numbers plus :class:`SpeakerMetrics` per speaker."""

    duration_ms: int = Field(..., description="call duration, ms")
    speech_ms: int = Field(..., description="time when at least one person speaks (overlaps once), ms")
    silence_share: float = Field(..., description="share of the call when nobody speaks, 0..1")
    speakers: dict[str, SpeakerMetrics] = Field(default_factory=dict,
                                                description="speaker label -> metrics, in order of first appearance")
    trajectory: Trajectory = Field(default_factory=Trajectory,
                                   description="sentiment of all sentences, first vs last third of the call")

    def to_markdown_table(self) -> str:
        """One Markdown table row per speaker: talk share as %, times in seconds with one decimal,
        ratio with two decimals ("–" when undefined), sentiment as positive/neutral/negative counts.
        With no speakers, only the header."""
        out = ["| speaker | talk time (s) | talk share | talk/listen | longest monologue (s) | interruptions "
               "| questions | words | words/min | sentiment +/0/− | sentiment trajectory |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for m in self.speakers.values():
            ratio = "–" if m.talk_listen_ratio is None else f"{m.talk_listen_ratio:.2f}"
            s = m.sentiment
            out.append(f"| {m.speaker} | {m.talk_time_ms / 1000:.1f} | {m.talk_share * 100:.1f}% | {ratio} "
                       f"| {m.longest_monologue_ms / 1000:.1f} | {m.interruptions} | {m.questions} | {m.words} "
                       f"| {m.words_per_minute:.0f} | {s.POSITIVE}/{s.NEUTRAL}/{s.NEGATIVE} "
                       f"| {m.trajectory.describe()} |")
        return "\n".join(out) + "\n"


def conversation_metrics(utterances: Sequence[Utterance], sentiment_results: Sequence[SentenceLike],
                         duration_ms: int | None) -> ConversationMetrics:
    """All metrics of a call. ``duration_ms`` is the call's length in ms (AssemblyAI gives
    ``audio_duration`` in seconds: pass ``round(audio_duration * 1000)``); ``None`` or ≤ 0 falls back
    to the latest ``end`` of any utterance or sentence (trailing silence is then not seen).

    ``speakers`` holds the speakers of ``utterances`` in order of first appearance; sentences of a
    speaker with no utterance (e.g. ``"?"`` without diarization) count only in the call-level
    ``trajectory``. Empty transcript: no speakers, ``speech_ms`` 0, silence share 1.0 (or 0.0 when the
    duration is 0 too), trajectory with ``None`` scores.
    """
    if duration_ms is None or duration_ms <= 0:
        duration_ms = max([u.end for u in utterances] + [r.end for r in sentiment_results], default=0)
    duration_ms = int(duration_ms)
    times = talk_time_ms(utterances)
    shares = talk_share(utterances)
    monologues = longest_monologue_ms(utterances)
    cuts = interruptions(utterances)
    questions = questions_asked(utterances)
    words = word_counts(utterances)
    rates = words_per_minute(utterances)
    counts = sentiment_counts(sentiment_results)
    per_speaker = {
        s: SpeakerMetrics(
            speaker=s, talk_time_ms=times[s], talk_share=shares.get(s, 0.0),
            talk_listen_ratio=talk_listen_ratio(utterances, s), longest_monologue_ms=monologues[s],
            interruptions=cuts[s], questions=questions[s], words=words[s], words_per_minute=rates[s],
            sentiment=counts.get(s, SentimentCounts()),
            trajectory=sentiment_trajectory(sentiment_results, duration_ms, s))
        for s in times
    }
    return ConversationMetrics(duration_ms=duration_ms, speech_ms=speech_time_ms(utterances, duration_ms),
                               silence_share=silence_share(utterances, duration_ms), speakers=per_speaker,
                               trajectory=sentiment_trajectory(sentiment_results, duration_ms))
