"""SRT and WebVTT captions built from a transcript's words (pure functions, no I/O).

Formats (contract §4):

* VTT: ``WEBVTT`` header, a blank line after it and between cues; timestamps ``MM:SS.mmm`` like
  AssemblyAI's, except that once any cue reaches one hour every timestamp of the file is written
  ``HH:MM:SS.mmm`` (``MM`` never goes past 59).
* SRT: cues numbered from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, a blank line between cues.

Captions are built greedily from words: a cue ends when adding the next word would pass
``chars_per_caption`` characters (text joined with single spaces), when the speaker changes, or at a
pause of ``max_gap_ms`` or more; a cue at least half full also ends after a word that ends a
sentence (``.``, ``?``, ``!``), so captions rarely straddle sentences. A single word longer than
the limit gets a cue of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

DEFAULT_CHARS_PER_CAPTION = 80
MAX_GAP_MS = 1500
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def build_cues(words: Iterable[Mapping], chars_per_caption: int | None = None,
               max_gap_ms: int = MAX_GAP_MS) -> list[Cue]:
    """Group words (``{"text","start","end","speaker"?}``, ms) into caption cues."""
    limit = chars_per_caption or DEFAULT_CHARS_PER_CAPTION
    if limit < 1:
        raise ValueError("chars_per_caption must be a positive integer")
    cues: list[Cue] = []
    texts: list[str] = []
    start = end = 0
    length = 0
    speaker = None
    for w in words:
        text = str(w.get("text") or "").strip()
        if not text:
            continue
        w_start = int(w.get("start") or 0)
        w_end = max(int(w.get("end") or w_start), w_start)
        w_speaker = w.get("speaker")
        if texts:
            too_long = length + 1 + len(text) > limit
            pause = w_start - end >= max_gap_ms
            if too_long or pause or w_speaker != speaker:
                cues.append(Cue(start, end, " ".join(texts)))
                texts = []
        if not texts:
            start, length, speaker = w_start, len(text), w_speaker
        else:
            length += 1 + len(text)
        texts.append(text)
        end = max(end, w_end) if len(texts) > 1 else w_end
        if text[-1] in ".?!" and length * 2 >= limit:
            cues.append(Cue(start, end, " ".join(texts)))
            texts = []
    if texts:
        cues.append(Cue(start, end, " ".join(texts)))
    return cues


def _split_ms(ms: int) -> tuple[int, int, int, int]:
    ms = max(0, int(ms))
    hours, rest = divmod(ms, HOUR_MS)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return hours, minutes, seconds, millis


def srt_timestamp(ms: int) -> str:
    """``HH:MM:SS,mmm``."""
    h, m, s, f = _split_ms(ms)
    return f"{h:02d}:{m:02d}:{s:02d},{f:03d}"


def vtt_timestamp(ms: int, with_hours: bool = False) -> str:
    """``MM:SS.mmm``, or ``HH:MM:SS.mmm`` when ``with_hours`` (required from one hour on)."""
    h, m, s, f = _split_ms(ms)
    if with_hours or h:
        return f"{h:02d}:{m:02d}:{s:02d}.{f:03d}"
    return f"{m:02d}:{s:02d}.{f:03d}"


def to_srt(words: Iterable[Mapping], chars_per_caption: int | None = None) -> str:
    """SRT text of the words; empty string when there are none."""
    blocks = [f"{i}\n{srt_timestamp(c.start_ms)} --> {srt_timestamp(c.end_ms)}\n{c.text}"
              for i, c in enumerate(build_cues(words, chars_per_caption), start=1)]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def to_vtt(words: Iterable[Mapping], chars_per_caption: int | None = None) -> str:
    """WebVTT text of the words (just the header when there are none)."""
    cues = build_cues(words, chars_per_caption)
    with_hours = any(c.end_ms >= HOUR_MS for c in cues)
    blocks = [f"{vtt_timestamp(c.start_ms, with_hours)} --> {vtt_timestamp(c.end_ms, with_hours)}\n{c.text}"
              for c in cues]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + ("\n" if blocks else "")
