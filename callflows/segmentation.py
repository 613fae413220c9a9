"""Call segmentation: VTT captions → a validated, complete timeline of the call's phases.

Follows AssemblyAI's guide "Segment a phone call using LLM Gateway" (GET ``/v2/transcript/{id}/vtt``,
then ask the LLM for phases ``Introduction, Complaint, Resolution, Goodbye`` with ``start_time`` and
``end_time`` in **seconds** and a summary), with two changes so that small models succeed and the
result can be relied on:

* the LLM gets numbered caption lines with speakers and answers with the **line where each phase
  starts**, plus that line's first words copied (small models miscount lines but copy text well; the
  words win when they disagree); the times are computed here from the captions, each phase ending
  where the next starts (:func:`phases_from_lines`);
* whatever comes back is checked and, where the fix is unambiguous, repaired (:func:`repair_phases`):
  unknown names become ``Other``, times past the end are clamped, order is restored, overlaps are
  clamped, gaps are filled with ``Other``. Every repair is listed in ``PhaseTimeline.repairs``.

Times: captions and words are in ms (AssemblyAI's units); phases are in seconds (the guide's units).
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, model_validator

from callflows.captions import EXAMPLE_CAPTIONS, Caption, block_context
from callflows.errors import CallflowsError, InputError
from callflows.llm import LLMUsage
from callflows.provenance import Provenance
from callflows.usage import Usage

OTHER = "Other"
DEFAULT_PHASES: list[str] = ["Introduction", "Complaint", "Resolution", "Goodbye"]  # the guide's four
MAX_PHASE_NAMES = 12
MAX_PHASES_PER_NAME = 3  # a phase may recur (Complaint, Resolution, Complaint, ...)
SUMMARY_MAX_CHARS = 200
FIRST_WORDS_MAX_CHARS = 40
MIN_GAP_S = 1.0  # gaps shorter than this between phases are closed, not filled with Other
NOT_ASSIGNED = "Not assigned to a phase by the LLM."


class TimelineError(CallflowsError, ValueError):
    """An LLM answer that cannot be repaired into a timeline without guessing (e.g. no phases)."""


# --------------------------------------------------------------------------- names

def check_phase_names(phases: list[str]) -> list[str]:
    """Validate the ``phases`` parameter; return the allowed names: the phases, then ``Other``.

    Raises ``InputError`` for an empty list, blank or duplicate names (case-insensitive), or more than
    ``MAX_PHASE_NAMES`` names.
    """
    if not phases:
        raise InputError("phases is empty: pass the phase names to find, e.g. "
                         "[\"Introduction\", \"Complaint\", \"Resolution\", \"Goodbye\"], or leave it out")
    names = [str(p).strip() for p in phases]
    if any(not n or len(n) > 60 for n in names):
        raise InputError(f"phases {phases!r}: every name must be 1 to 60 characters")
    if len(names) > MAX_PHASE_NAMES:
        raise InputError(f"phases has {len(names)} names; at most {MAX_PHASE_NAMES} are supported: merge or drop "
                         f"some (everything outside the listed phases is 'Other')")
    folded = [n.casefold() for n in names]
    duplicates = sorted({n for n in names if folded.count(n.casefold()) > 1})
    if duplicates:
        raise InputError(f"phases lists {duplicates} more than once: give each phase once")
    return names if OTHER.casefold() in folded else [*names, OTHER]


# --------------------------------------------------------------------------- LLM answer

class LinePhase(BaseModel):
    """A phase as the LLM answers it: where it starts (caption line number and that line's first
    words, copied), not times. Parsed leniently (any name, any integer) so that bad answers reach the
    repairer instead of failing validation."""

    name: str
    first_line: int
    first_words: str = ""
    summary: str = ""


class LineAnswer(BaseModel):
    phases: list[LinePhase]


def answer_schema_model(names: list[str], line_count: int) -> type[BaseModel]:
    """The JSON schema sent as ``response_format``: names restricted to ``names``, line numbers to
    1..``line_count``, bounded lengths (small local models need the bounds to stop). Each phase starts
    on its own caption line, so there are at most ``line_count`` phases (and at most
    ``MAX_PHASES_PER_NAME`` per name)."""
    item = create_model(
        "Phase",
        name=(Literal[tuple(names)], Field(..., description="one of the phase names")),
        first_line=(int, Field(..., ge=1, le=max(line_count, 1), description="caption line where the phase starts")),
        first_words=(str, Field(..., max_length=FIRST_WORDS_MAX_CHARS,
                                description="the first words of that line, copied exactly")),
        summary=(str, Field(..., max_length=SUMMARY_MAX_CHARS, description="one sentence")),
    )
    item.model_config["extra"] = "forbid"
    most = min(len(names) * MAX_PHASES_PER_NAME, max(line_count, 1))
    return create_model("PhaseAnswer", phases=(list[item], Field(..., min_length=1, max_length=most)))


class RawPhase(BaseModel):
    """A phase before repair: times in seconds, any name."""

    name: str
    start_time: float
    end_time: float
    summary: str = ""
    first_line: int | None = None
    last_line: int | None = None


def _fold(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.casefold()).split())


def locate_line(first_words: str, hint: int, captions: list[Caption]) -> int | None:
    """The caption line (1-based) that starts with ``first_words`` (case and punctuation folded), else
    the one containing them; the one nearest ``hint`` when several do. None when no line matches."""
    words = _fold(first_words)
    if not words:
        return None
    folded = [_fold(c.text) for c in captions]
    for match in (lambda t: f"{t} ".startswith(f"{words} "), lambda t: f" {words} " in f" {t} "):
        lines = [c.line for c, t in zip(captions, folded) if match(t)]
        if lines:
            return min(lines, key=lambda line: (abs(line - hint), line))
    return None


def phases_from_lines(answer: LineAnswer, captions: list[Caption], duration_s: float) -> tuple[list[RawPhase], list[str]]:
    """Turn phase starts (caption lines) into contiguous times (s): a phase starts where its first
    caption starts (a phase starting at line 1 starts at 0) and ends where the next phase starts (the
    last one at ``duration_s``).

    The start line is the line holding the copied ``first_words`` when one does (nearest to
    ``first_line``), else ``first_line`` clamped to 1..len(captions); phases are put in line order and a
    phase starting on the same line as the next one is dropped. Each such correction is listed.
    Raises ``TimelineError`` when there are no captions or no phases.
    """
    if not captions:
        raise TimelineError("there are no captions to divide into phases")
    if not answer.phases:
        raise TimelineError("the answer lists no phases: give at least one phase, the first starting at "
                            f"caption line 1 (lines 1 to {len(captions)})")
    n = len(captions)
    repairs: list[str] = []
    starts: list[tuple[int, LinePhase]] = []
    for i, p in enumerate(answer.phases, 1):
        label = f"phase {i} ({p.name})"
        line = locate_line(p.first_words, p.first_line, captions)
        if line is None:
            line = min(max(p.first_line, 1), n)
            if line != p.first_line:
                repairs.append(f"{label}: first_line {p.first_line} is outside the captions (1-{n}); set to {line}")
        elif line != p.first_line:
            repairs.append(f"{label}: its first words {p.first_words.strip()!r} are on line {line}, not on "
                           f"first_line {p.first_line}; starts at line {line}")
        starts.append((line, p))
    ordered = sorted(starts, key=lambda s: s[0])
    if [id(p) for _, p in ordered] != [id(p) for _, p in starts]:
        repairs.append("phases were not in the order of their lines; sorted")
    out: list[RawPhase] = []
    for k, (line, p) in enumerate(ordered):
        next_line = ordered[k + 1][0] if k + 1 < len(ordered) else n + 1
        if next_line == line:
            repairs.append(f"{p.name} and {ordered[k + 1][1].name} both start at line {line}; {p.name} dropped")
            continue
        start_s = 0.0 if line == 1 else captions[line - 1].start / 1000
        end_s = duration_s if next_line > n else captions[next_line - 1].start / 1000
        out.append(RawPhase(name=p.name, start_time=start_s, end_time=end_s, summary=p.summary,
                            first_line=line, last_line=next_line - 1))
    return out, repairs


# --------------------------------------------------------------------------- timeline

class Phase(BaseModel):
    """One phase of the call. Times in **seconds** from the start of the audio."""

    name: str
    start_time: float = Field(..., ge=0, description="s")
    end_time: float = Field(..., ge=0, description="s")
    summary: str = ""
    first_line: int | None = Field(None, description="first caption line (1-based) in the phase, if known")
    last_line: int | None = Field(None, description="last caption line in the phase, if known")

    @property
    def duration_s(self) -> float:
        return round(self.end_time - self.start_time, 3)


def _s(ms: int) -> float:
    return round(ms / 1000, 3)


def timeline_problems(phases: list[Phase], names: list[str], duration_s: float) -> list[str]:
    """Every rule the timeline breaks (empty when valid): at least one phase; names from ``names``;
    each phase longer than zero; in time order and contiguous (each starts where the previous ends);
    together covering 0 to ``duration_s``. Times are compared to the ms."""
    if not phases:
        return ["the timeline has no phases"]
    problems = []
    cursor = 0
    for i, p in enumerate(phases, 1):
        start, end = round(p.start_time * 1000), round(p.end_time * 1000)
        if p.name not in names:
            problems.append(f"phase {i} is named {p.name!r}, not one of {names}")
        if end <= start:
            problems.append(f"phase {i} ({p.name}) ends at {p.end_time} s, not after its start {p.start_time} s")
        if start != cursor:
            problems.append(f"phase {i} ({p.name}) starts at {p.start_time} s, not where the previous one "
                            f"ends ({_s(cursor)} s)")
        cursor = end
    if cursor != round(duration_s * 1000):
        problems.append(f"the last phase ends at {_s(cursor)} s, not at the end of the call ({duration_s} s)")
    return problems


def repair_phases(phases: list[RawPhase], names: list[str], duration_s: float,
                  min_gap_s: float = MIN_GAP_S) -> tuple[list[Phase], list[str]]:
    """Repair an answer into a valid timeline over 0..``duration_s`` (s); return (phases, repairs).

    In order: a name matching one of ``names`` but for case or spaces is corrected, another unknown
    name becomes ``Other``; negative starts become 0 and ends past ``duration_s`` are clamped to it; a
    reversed phase is swapped; phases with no time left (zero length, or starting at or after the end)
    are dropped; phases are sorted by start; a phase overlapping the previous one starts where it
    ends (dropped if nothing is left); a gap shorter than ``min_gap_s`` is closed by extending the
    phase before it (the first phase by starting at 0), a longer one is filled with an ``Other`` phase;
    adjacent phases of the same name are merged. Every change is described in the returned list.

    Raises ``TimelineError`` when there is nothing to repair: no phases, or none with time in the call.
    """
    if not phases:
        raise TimelineError("the answer lists no phases")
    if not duration_s or duration_s <= 0:
        raise TimelineError(f"the call's duration is {duration_s!r} s; nothing can be covered")
    total = round(duration_s * 1000)
    canonical = {" ".join(n.split()).casefold(): n for n in names}
    repairs: list[str] = []
    kept: list[tuple[int, int, str, RawPhase]] = []
    for i, p in enumerate(phases, 1):
        label = f"phase {i} ({p.name})"
        name = p.name
        if name not in names:
            name = canonical.get(" ".join(str(name).split()).casefold(), OTHER)
            repairs.append(f"{label}: renamed {p.name!r} to {name!r}" if name != OTHER else
                           f"{label}: {p.name!r} is not one of the phases {names}; named {OTHER!r}")
            label = f"phase {i} ({name})"
        if not (math.isfinite(p.start_time) and math.isfinite(p.end_time)):
            repairs.append(f"{label}: times {p.start_time}-{p.end_time} are not numbers; dropped")
            continue
        start, end = round(p.start_time * 1000), round(p.end_time * 1000)
        if end < start:
            start, end = end, start
            repairs.append(f"{label}: end_time {p.end_time} s was before start_time {p.start_time} s; swapped")
        if start < 0:
            repairs.append(f"{label}: start_time {_s(start)} s is before the call; set to 0")
            start = 0
        if start >= total:
            repairs.append(f"{label}: starts at {_s(start)} s, at or after the end of the call ({_s(total)} s); dropped")
            continue
        if end > total:
            repairs.append(f"{label}: end_time {_s(end)} s is past the end of the call ({_s(total)} s); clamped")
            end = total
        if end == start:
            repairs.append(f"{label}: has no length ({_s(start)} s); dropped")
            continue
        kept.append((start, end, name, p))
    if not kept:
        raise TimelineError(f"no phase of the answer lies within the call (0-{_s(total)} s)")
    ordered = sorted(kept, key=lambda k: (k[0], k[1]))
    if ordered != kept:
        repairs.append("phases were not in time order; sorted by start_time")

    out: list[Phase] = []
    cursor = 0

    def other(start: int, end: int) -> Phase:
        return Phase(name=OTHER, start_time=_s(start), end_time=_s(end), summary=NOT_ASSIGNED)

    for start, end, name, p in ordered:
        if start < cursor:
            if end <= cursor:
                repairs.append(f"{name} at {_s(start)}-{_s(end)} s lies inside the previous phase; dropped")
                continue
            repairs.append(f"{name} at {_s(start)}-{_s(end)} s overlapped the previous phase; "
                           f"now starts at {_s(cursor)} s")
            start = cursor
        elif start > cursor:
            if start - cursor < min_gap_s * 1000:
                if out:
                    out[-1].end_time = _s(start)
                    repairs.append(f"gap {_s(cursor)}-{_s(start)} s closed by extending {out[-1].name}")
                else:
                    repairs.append(f"gap 0-{_s(start)} s closed by starting {name} at 0")
                    start = 0
            else:
                out.append(other(cursor, start))
                repairs.append(f"gap {_s(cursor)}-{_s(start)} s filled with {OTHER!r}")
        out.append(Phase(name=name, start_time=_s(start), end_time=_s(end), summary=p.summary.strip(),
                         first_line=p.first_line, last_line=p.last_line))
        cursor = end
    if cursor < total:
        if total - cursor < min_gap_s * 1000:
            out[-1].end_time = _s(total)
            repairs.append(f"gap {_s(cursor)}-{_s(total)} s at the end closed by extending {out[-1].name}")
        else:
            out.append(other(cursor, total))
            repairs.append(f"gap {_s(cursor)}-{_s(total)} s at the end filled with {OTHER!r}")

    merged: list[Phase] = []
    for p in out:
        if merged and merged[-1].name == p.name:
            last = merged[-1]
            repairs.append(f"adjacent {p.name} phases at {last.start_time}-{p.end_time} s merged")
            summaries = [s for s in dict.fromkeys([last.summary, p.summary]) if s]
            last.end_time = p.end_time
            last.summary = " ".join(summaries)
            last.last_line = p.last_line if p.last_line is not None else last.last_line
        else:
            merged.append(p)
    return merged, repairs


class PhaseTimeline(BaseModel):
    """Result of the call segmentation flow (``segmentation.json``): phases in time order, contiguous,
    covering 0..``audio_duration_s`` (seconds), each named from ``phase_names`` (which ends with
    ``Other``). ``repairs`` lists what was corrected in the LLM's answer (empty when it was valid).
    Construction raises ``ValueError`` if the phases break any rule (see :func:`timeline_problems`)."""

    audio: str
    transcript_id: str
    audio_duration_s: float = Field(..., gt=0, description="s")
    phase_names: list[str]
    phases: list[Phase]
    repairs: list[str] = Field(default_factory=list)
    captions: int = Field(0, description="number of caption lines given to the LLM")
    chars_per_caption: int | None = None
    prompt_template: str = ""
    llm: LLMUsage | None = None
    usage: Usage | None = Field(None, description="set by the standalone flow: audio, LLM tokens and estimated "
                                                "cost of its run (analyze-call keeps it in analysis.json)")
    provenance: Provenance | None = Field(None, description="what produced it (callflows.provenance)")
    timings_s: dict[str, float] = Field(default_factory=dict, description="wall time per step, s")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @model_validator(mode="after")
    def _valid(self) -> "PhaseTimeline":
        problems = timeline_problems(self.phases, self.phase_names, self.audio_duration_s)
        if problems:
            raise ValueError("invalid timeline: " + "; ".join(problems))
        return self

    def phase_at(self, t_s: float) -> str:
        """Name of the phase at ``t_s`` seconds (the last phase for ``t_s`` at or past the end)."""
        for p in self.phases:
            if t_s < p.end_time:
                return p.name
        return self.phases[-1].name

    def to_markdown(self, width: int = 40) -> str:
        """Markdown: a table of the phases, then a bar per phase over the call's length (``width`` cells)."""
        rows = ["## Call segmentation", "",
                f"Transcript `{self.transcript_id}`, {self.audio_duration_s:.1f} s, {len(self.phases)} phases.", "",
                "| # | phase | start (s) | end (s) | length (s) | summary |", "|---|---|---:|---:|---:|---|"]
        for i, p in enumerate(self.phases, 1):
            summary = " ".join(p.summary.split()).replace("|", "\\|")
            rows.append(f"| {i} | {p.name} | {p.start_time:.1f} | {p.end_time:.1f} | {p.duration_s:.1f} | {summary} |")
        label = max(len(p.name) for p in self.phases)
        rows += ["", "```text"]
        for p in self.phases:
            a = round(p.start_time / self.audio_duration_s * width)
            b = max(round(p.end_time / self.audio_duration_s * width), a + 1)
            bar = "·" * a + "█" * (b - a) + "·" * max(width - b, 0)
            rows.append(f"{p.name:<{label}} |{bar[:width]}| {p.start_time:6.1f}-{p.end_time:.1f} s")
        rows.append("```")
        if self.repairs:
            rows += ["", f"Repairs to the LLM's answer ({len(self.repairs)}):", ""]
            rows += [f"- {r}" for r in self.repairs]
        return "\n".join(rows) + "\n"


def call_duration_s(audio_duration: float | None, captions: list[Caption], words_end_ms: int = 0) -> float:
    """The length the timeline must cover, in s: the transcript's ``audio_duration`` (AssemblyAI sends
    whole seconds), or the end of the last caption or word if speech runs past it."""
    last_ms = max([c.end for c in captions] + [words_end_ms, 0])
    return round(max(float(audio_duration or 0), last_ms / 1000), 3)


def example_context(names: list[str]) -> dict[str, Any]:
    """Template variables with placeholder values: renders a template once before any request."""
    return prompt_context(EXAMPLE_CAPTIONS, names)


def prompt_context(captions: list[Caption], names: list[str]) -> dict[str, Any]:
    """Variables for the segmentation template: ``transcript_block`` and ``lines``
    (``callflows.captions.block_context``), ``line_count``, ``phases`` (the names without Other),
    ``other`` (``"Other"``)."""
    return {**block_context(captions), "line_count": len(captions),
            "phases": [n for n in names if n != OTHER], "other": OTHER}
