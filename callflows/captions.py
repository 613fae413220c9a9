"""Captions (``GET /v2/transcript/{id}/vtt``) and the transcript block every prompt starts with.

The three analyses' prompts begin with the same text, :func:`transcript_block`: numbered caption lines
with time and speaker (``12 [01:05] Speaker A: …``). Segmentation answers with those line numbers;
sentiment and the scorecard read the same lines. Because the block is identical, an LLM server that
reuses an evaluated prompt prefix (AssemblyAI's gateway models, llama.cpp's prefix cache in the local
server) evaluates a call's transcript once for all analyses and for every rerun with a new prompt.

Times: captions in ms (AssemblyAI's units).
"""
from __future__ import annotations

import re
from typing import Iterable

from pydantic import BaseModel, Field

from callflows.errors import CallflowsError
from callflows.models import Transcript, Utterance

TRANSCRIPT_HEADER = ('Transcript of a recorded call as numbered caption lines '
                     '("<line> [minutes:seconds] Speaker <label>: <text>"):')


class CaptionsError(CallflowsError):
    """The captions text (``GET /v2/transcript/{id}/vtt``) could not be parsed as WebVTT."""



class Caption(BaseModel):
    """One caption cue. ``line`` numbers cues from 1; ``start``/``end`` in ms."""

    line: int = Field(..., ge=1)
    start: int = Field(..., ge=0, description="ms")
    end: int = Field(..., ge=0, description="ms")
    text: str
    speaker: str | None = None


_TS = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE_RE = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}(?:\s+.*)?$")
_VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+)>")
_TAG_RE = re.compile(r"</?[^>]*>")


def _ms(hours: str | None, minutes: str, seconds: str, fraction: str) -> int:
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(fraction.ljust(3, "0"))


def parse_vtt(text: str) -> list[Caption]:
    """Parse WebVTT captions into ``Caption`` objects numbered from 1, in file order.

    Accepts timestamps with or without the hours field (``MM:SS.mmm`` as AssemblyAI writes them,
    ``HH:MM:SS.mmm`` from one hour on), cue identifiers, cue settings, ``NOTE``/``STYLE``/``REGION``
    blocks, and cues with or without blank lines between them (the API spec's example has none; text
    then runs until the next timestamp line). Markup tags are removed; a ``<v Name>`` voice tag
    becomes the caption's speaker. Cues with no text are skipped.

    Raises ``CaptionsError`` when the text does not start with ``WEBVTT`` or a cue ends before it starts.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    if not lines or not lines[0].startswith("WEBVTT"):
        raise CaptionsError(f"the captions are not WebVTT: they start with {lines[0][:40]!r} instead of 'WEBVTT'")
    cues: list[tuple[int, int, list[str]]] = []
    current: list[str] | None = None
    skipping = False  # inside a NOTE/STYLE/REGION block
    previous_blank = True
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line:
            current = None  # a blank line ends the cue's text
            skipping = False
            previous_blank = True
            continue
        if previous_blank and re.match(r"^(NOTE|STYLE|REGION)\b", line):
            skipping = True
        previous_blank = False
        if skipping:
            continue
        match = _CUE_RE.match(line)
        if match:
            g = match.groups()
            start, end = _ms(*g[:4]), _ms(*g[4:])
            if end < start:
                raise CaptionsError(f"caption on line {number} ends before it starts: {line!r}")
            current = []
            cues.append((start, end, current))
        elif current is not None:
            current.append(line)
        # else: a cue identifier or header text before the first cue; ignored
    captions: list[Caption] = []
    for start, end, text_lines in cues:
        joined = " ".join(text_lines)
        voice = _VOICE_RE.search(joined)
        clean = " ".join(_TAG_RE.sub("", joined).split())
        if clean:
            captions.append(Caption(line=len(captions) + 1, start=start, end=end, text=clean,
                                    speaker=voice.group(1).strip() if voice else None))
    return captions


def assign_speakers(captions: list[Caption], utterances: Iterable[Utterance] | None) -> list[Caption]:
    """Give each caption without a speaker the speaker of the utterance it overlaps most (ms)."""
    spans = [(u.start, u.end, u.speaker) for u in utterances or [] if u.speaker]
    if not spans:
        return captions
    out = []
    for c in captions:
        if c.speaker is None:
            best = max(spans, key=lambda s: (min(c.end, s[1]) - max(c.start, s[0]), -abs(s[0] - c.start)))
            if min(c.end, best[1]) - max(c.start, best[0]) >= 0:
                c = c.model_copy(update={"speaker": best[2]})
        out.append(c)
    return out


def _clock(ms: int) -> str:
    minutes, seconds = divmod(int(ms) // 1000, 60)
    return f"{minutes:02d}:{seconds:02d}"


def caption_lines(captions: list[Caption]) -> str:
    """``"<line> [MM:SS] Speaker <speaker>: <text>"``, one caption per line (speaker omitted when
    unknown). "Speaker" keeps multichannel labels ("1", "2") from reading as numbers."""
    return "\n".join(f"{c.line} [{_clock(c.start)}] {'Speaker ' + c.speaker + ': ' if c.speaker else ''}{c.text}"
                     for c in captions)


def transcript_captions(transcript: Transcript, vtt: str) -> list[Caption]:
    """The captions of ``vtt`` (the transcript's ``GET /v2/transcript/{id}/vtt``), each with the speaker
    of the utterance it overlaps most. Raises ``CaptionsError`` for text that is not WebVTT."""
    return assign_speakers(parse_vtt(vtt), transcript.utterances)


EXAMPLE_CAPTIONS = [Caption(line=1, start=0, end=1500, text="Hello, how can I help?", speaker="A"),
                    Caption(line=2, start=1700, end=3000, text="My bill is wrong.", speaker="B")]


def block_context(captions: list[Caption]) -> dict:
    """The template variables every analysis prompt has: ``transcript_block`` (str, see
    :func:`transcript_block`; templates start with it) and ``lines`` (the captions as dicts: ``line``,
    ``start``/``end`` in ms, ``text``, ``speaker``)."""
    return {"transcript_block": transcript_block(captions), "lines": [c.model_dump() for c in captions]}


def transcript_block(captions: list[Caption]) -> str:
    """The text every analysis prompt starts with: ``TRANSCRIPT_HEADER``, a blank line, then
    :func:`caption_lines`. The same captions always give the same text (a shared prompt prefix)."""
    return f"{TRANSCRIPT_HEADER}\n\n{caption_lines(captions)}"
