"""Sentences, paragraphs and utterances from timed words.

A word is a dict with ``text`` (str), ``start``/``end`` (integer ms), ``confidence`` (0..1),
optionally ``speaker`` ("A", "B", … or None) and, in multichannel transcripts, ``channel`` ("1",
"2", …). Words of different channels may overlap in time: the ``*_by_channel`` helpers split each
channel on its own and merge the pieces in time order. Whisper often joins sentences with commas
("Hi Sarah, my internet …"), so besides punctuation a sentence also ends at a pause.
"""
from __future__ import annotations

import bisect
import re
from collections import Counter
from typing import Any, Mapping, Sequence

__all__ = ["split_sentences", "split_paragraphs", "build_utterances", "build_channel_utterances",
           "by_channel", "has_channels", "join_words",
           "majority_speaker", "mean_confidence", "SENTENCE_PAUSE_MS", "COMMA_PAUSE_MS",
           "PARAGRAPH_PAUSE_MS", "PARAGRAPH_MAX_WORDS"]

Word = Mapping[str, Any]

SENTENCE_PAUSE_MS = 800   # a longer silence between two words ends a sentence
COMMA_PAUSE_MS = 250      # a comma + this much silence may end a sentence (comma splice), see _comma_splice
COMMA_MIN_CLAUSE_WORDS = 3  # ... if the clause before it and the text after it are long enough
PARAGRAPH_PAUSE_MS = 1500
PARAGRAPH_MAX_WORDS = 80  # a paragraph ends at the first sentence end past this length

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "a.m", "p.m",
    "approx", "dept", "inc", "ltd", "co", "corp", "mt", "ave", "blvd", "vol", "fig",
}
_TRAILING = "\"')]}»”’"
_END_RE = re.compile(r"[.?!…]$")


def _ends_sentence(text: str) -> bool:
    t = text.rstrip(_TRAILING)
    if not _END_RE.search(t):
        return False
    if t.endswith("."):
        stem = t[:-1].lower().lstrip("(\"'“‘")
        if stem in _ABBREVIATIONS or (len(stem) == 1 and stem.isalpha()):  # "Mr.", "J."
            return False
    return True


_CONJUNCTIONS = {"and", "but", "or", "so", "because", "nor", "yet", "than", "then", "which", "who",
                 "if", "when", "while", "although", "though", "as", "since", "unless", "until",
                 "where", "whereas", "whether", "for", "to", "like", "including", "especially"}


def _comma_splice(words: Sequence[Word], cur: Sequence[Word], i: int, gap: int) -> bool:
    """Whether the comma ending ``cur`` (before ``words[i]``) joins two sentences.

    Whisper writes "Oh, that is great news, thank you for sorting it out." for two sentences. A
    comma counts as a sentence end when followed by at least COMMA_PAUSE_MS of silence, the clause
    before it has COMMA_MIN_CLAUSE_WORDS+ words (not "Yes," / "Oh, okay,"), the next word is not a
    conjunction ("…, but"), and at least two words follow before the next punctuation mark
    ("…, Tom." is an address, not a sentence).
    """
    if gap < COMMA_PAUSE_MS or not str(cur[-1]["text"]).endswith(","):
        return False
    clause = 0
    for w in reversed(cur):
        if clause and re.search(r"[,.?!;:…]$", str(w["text"])):
            break
        clause += 1
    if clause < COMMA_MIN_CLAUSE_WORDS:
        return False
    nxt = re.sub(r"[^\w']", "", str(words[i]["text"])).lower()
    if nxt in _CONJUNCTIONS:
        return False
    following = 0
    for w in words[i:i + 3]:
        following += 1
        if re.search(r"[,.?!;:…]$", str(w["text"])):
            break
    return following >= 2


def _speaker(w: Word) -> Any:
    return w.get("speaker")


def split_sentences(words: Sequence[Word]) -> list[list[Word]]:
    """Group ``words`` (time order) into sentences: a sentence ends after a word ending in . ? ! …
    (not after an abbreviation such as "Mr." or an initial), at a comma splice (a comma followed by
    a pause, see _comma_splice), before a pause longer than SENTENCE_PAUSE_MS, and at a speaker change.
    """
    sentences: list[list[Word]] = []
    cur: list[Word] = []
    for i, w in enumerate(words):
        if cur:
            prev = cur[-1]
            gap = int(w["start"]) - int(prev["end"])
            text = str(prev["text"])
            brk = (
                _ends_sentence(text)
                and not (text.rstrip(_TRAILING).lower() == "no." and str(w["text"])[:1].isdigit())
            ) or gap > SENTENCE_PAUSE_MS or _comma_splice(words, cur, i, gap) \
                or _speaker(w) != _speaker(prev)
            if brk:
                sentences.append(cur)
                cur = []
        cur.append(w)
    if cur:
        sentences.append(cur)
    return sentences


def split_paragraphs(words: Sequence[Word]) -> list[list[Word]]:
    """Group ``words`` into paragraphs of whole sentences: a new paragraph starts at a speaker
    change, after a pause longer than PARAGRAPH_PAUSE_MS, or once the paragraph has more than
    PARAGRAPH_MAX_WORDS words.
    """
    paragraphs: list[list[Word]] = []
    cur: list[Word] = []
    for sent in split_sentences(words):
        if cur:
            gap = int(sent[0]["start"]) - int(cur[-1]["end"])
            if (_speaker(sent[0]) != _speaker(cur[-1]) or gap > PARAGRAPH_PAUSE_MS
                    or len(cur) >= PARAGRAPH_MAX_WORDS):
                paragraphs.append(cur)
                cur = []
        cur.extend(sent)
    if cur:
        paragraphs.append(cur)
    return paragraphs


def join_words(words: Sequence[Word]) -> str:
    """The words' texts joined by single spaces."""
    return " ".join(str(w["text"]) for w in words if str(w["text"]))


def mean_confidence(words: Sequence[Word]) -> float:
    """Mean word confidence (0..1), 0.0 for no words."""
    if not words:
        return 0.0
    return round(sum(float(w["confidence"]) for w in words) / len(words), 5)


def majority_speaker(words: Sequence[Word]) -> Any:
    """The most frequent ``speaker`` among ``words`` (ties: the first to appear); None if unlabelled."""
    counts = Counter(_speaker(w) for w in words)
    if not counts:
        return None
    best = max(counts.values())
    for w in words:
        if counts[_speaker(w)] == best:
            return _speaker(w)
    return None


def build_utterances(words: Sequence[Word]) -> list[dict[str, Any]]:
    """Runs of consecutive words with the same speaker, as AssemblyAI utterances:
    ``{speaker, text, start, end, confidence, words}`` (times in ms, confidence = mean word confidence).
    """
    out: list[dict[str, Any]] = []
    run: list[Word] = []

    def flush() -> None:
        if run:
            out.append({
                "speaker": _speaker(run[0]), "text": join_words(run),
                "start": int(run[0]["start"]), "end": int(run[-1]["end"]),
                "confidence": mean_confidence(run), "words": [dict(w) for w in run],
            })

    for w in words:
        if run and _speaker(w) != _speaker(run[-1]):
            flush()
            run = []
        run.append(w)
    flush()
    return out


# ----------------------------------------------------------------------------------- multichannel
def has_channels(words: Sequence[Word]) -> bool:
    """Whether the words carry a ``channel`` (a multichannel transcript)."""
    return any(w.get("channel") is not None for w in words)


def _channel_key(ch: Any) -> tuple[int, str]:
    text = str(ch)
    return (int(text), text) if text.isdigit() else (1 << 30, text)


def by_channel(words: Sequence[Word], split) -> list[list[Word]]:
    """``split`` (split_sentences / split_paragraphs) applied to each channel's words on its own,
    the groups merged in time order (ties: channel order). Words without channels: ``split(words)``."""
    if not has_channels(words):
        return split(words)
    channels: dict[Any, list[Word]] = {}
    for w in words:
        channels.setdefault(w.get("channel"), []).append(w)
    groups = [g for ch in sorted(channels, key=_channel_key) for g in split(channels[ch]) if g]
    return sorted(groups, key=lambda g: int(g[0]["start"]))


def build_channel_utterances(words: Sequence[Word]) -> list[dict[str, Any]]:
    """Utterances of a multichannel transcript: ``{speaker, text, start, end, confidence, words,
    channel}``, in order of start time.

    Each channel is cut into turns on its own: a turn ends when the speaker changes within the
    channel, or when a word of another channel lies entirely inside the pause between two of this
    channel's words (the other side spoke: turn-taking). A word of another channel that overlaps
    this channel's speech (an interjection, "uh-huh") does not cut the turn; it becomes an
    utterance of its own channel.
    """
    channels: dict[Any, list[Word]] = {}
    for w in words:
        channels.setdefault(w.get("channel"), []).append(w)
    out: list[dict[str, Any]] = []
    for ch, own in channels.items():
        others = sorted(((int(w["start"]), int(w["end"])) for w in words if w.get("channel") != ch))
        starts = [o[0] for o in others]

        def other_in_gap(g0: int, g1: int) -> bool:
            i = bisect.bisect_left(starts, g0)
            while i < len(others) and others[i][0] < g1:
                if others[i][1] <= g1:
                    return True
                i += 1
            return False

        run: list[Word] = []
        for w in own:
            if run and (_speaker(w) != _speaker(run[-1])
                        or other_in_gap(int(run[-1]["end"]), int(w["start"]))):
                out.append(_utterance(run, ch))
                run = []
            run.append(w)
        if run:
            out.append(_utterance(run, ch))
    out.sort(key=lambda u: (u["start"], _channel_key(u["channel"])))
    return out


def _utterance(run: Sequence[Word], channel: Any) -> dict[str, Any]:
    return {"speaker": _speaker(run[0]), "text": join_words(run), "start": int(run[0]["start"]),
            "end": int(run[-1]["end"]), "confidence": mean_confidence(run),
            "words": [dict(w) for w in run], "channel": channel}
