"""Two results of one analysis side by side: what a new prompt changed (``callflows compare A B``).

Sentiment: each question's two answers; scorecard: summaries, rubric answers (with quote checks) and
suggestions; segmentation: the two timelines phase by phase. Times in seconds.
"""
from __future__ import annotations

import json
from itertools import zip_longest
from pathlib import Path

from pydantic import BaseModel, ValidationError

from callflows.errors import InputError
from callflows.markdown import cell
from callflows.scorecard import Scorecard
from callflows.segmentation import PhaseTimeline
from callflows.sentiment import SentimentReport

Result = SentimentReport | Scorecard | PhaseTimeline
KINDS: dict[type, str] = {SentimentReport: "sentiment", Scorecard: "scorecard", PhaseTimeline: "segmentation"}


def load_result(path: str | Path) -> Result:
    """The result in ``path`` (a ``sentiment.json``, ``scorecard.json`` or ``segmentation.json``, or one of
    their ``versions/`` files). Raises ``InputError`` naming the file when it is missing, not JSON, or no
    analysis result."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{str(file)!r} is not a file: give the path of a result, e.g. <call folder>/sentiment.json")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{str(file)!r} is not JSON ({exc}): give a result file written by an analysis") from None
    kind = (data.get("provenance") or {}).get("analysis") if isinstance(data, dict) else None
    model = {v: k for k, v in KINDS.items()}.get(kind) or _kind_of(data)
    if model is None:
        raise InputError(f"{str(file)!r} is not a sentiment, scorecard or segmentation result "
                         f"(analysis.json is a summary: compare the files it lists)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{str(file)!r} is not a valid {KINDS[model]} result: {exc.errors()[0]['msg']} at "
                         f"{'.'.join(map(str, exc.errors()[0]['loc']))}") from None


def _kind_of(data: object) -> type[BaseModel] | None:
    if not isinstance(data, dict):
        return None
    if "sentences" in data and "answers" in data:
        return SentimentReport
    if "criteria" in data:
        return Scorecard
    if "phases" in data:
        return PhaseTimeline
    return None


def compare(a: Result, b: Result, labels: tuple[str, str] = ("A", "B")) -> str:
    """Markdown: ``a`` and ``b`` side by side, after what differs in their prompts. Raises
    ``InputError`` when they are results of different analyses."""
    if type(a) is not type(b):
        raise InputError(f"cannot compare a {KINDS[type(a)]} result with a {KINDS[type(b)]} result: "
                         f"give two results of the same analysis")
    la, lb = labels
    out = [f"{la}: template `{a.prompt_template}`, {_made(a)}. {lb}: template `{b.prompt_template}`, {_made(b)}."]
    if a.provenance and b.provenance:
        changed = b.provenance.differences(a.provenance)
        out += ["", f"Changed from {la} to {lb}: " + ("; ".join(changed) if changed else "nothing (same prompt)") + "."]
    out.append("")
    if isinstance(a, SentimentReport):
        out += _sentiment(a, b, la, lb)
    elif isinstance(a, Scorecard):
        out += _scorecard(a, b, la, lb)
    else:
        out += _segmentation(a, b, la, lb)
    return "\n".join(out).rstrip() + "\n"


def _made(result: Result) -> str:
    version = f"version `{result.provenance.version}`, " if result.provenance else ""
    return f"{version}written {result.created_at:%Y-%m-%d %H:%M:%S} UTC"


def _sentiment(a: SentimentReport, b: SentimentReport, la: str, lb: str) -> list[str]:
    old = {qa.question: qa.markdown for qa in a.answers}
    new = {qa.question: qa.markdown for qa in b.answers}
    out = [f"| question | {la} | {lb} |", "|---|---|---|"]
    for question in dict.fromkeys([*old, *new]):
        out.append(f"| {cell(question)} | {cell(old.get(question, '– (not asked)'))} | "
                   f"{cell(new.get(question, '– (not asked)'))} |")
    return out


def _criterion(result: Scorecard, name: str) -> str:
    for c in result.criteria:
        if c.name == name:
            return f"**{c.answer}**: {c.reason} “{c.quote}”{c.quote_mark}"
    return "– (not in the rubric)"


def _scorecard(a: Scorecard, b: Scorecard, la: str, lb: str) -> list[str]:
    out = [f"| | {la} | {lb} |", "|---|---|---|", f"| summary | {cell(a.summary)} | {cell(b.summary)} |",
           f"| unverified quotes | {a.unverified_quotes} | {b.unverified_quotes} |",
           f"| misattributed quotes | {a.misattributed_quotes} | {b.misattributed_quotes} |", "", "### Rubric", "",
           f"| criterion | {la} | {lb} |", "|---|---|---|"]
    for name in dict.fromkeys([c.name for c in a.criteria] + [c.name for c in b.criteria]):
        out.append(f"| {cell(name)} | {cell(_criterion(a, name))} | {cell(_criterion(b, name))} |")
    out += ["", "### Coaching suggestions", "", f"| # | {la} | {lb} |", "|---|---|---|"]
    for i, (x, y) in enumerate(zip_longest(a.coaching_suggestions, b.coaching_suggestions, fillvalue="–"), 1):
        out.append(f"| {i} | {cell(x)} | {cell(y)} |")
    return out


def _segmentation(a: PhaseTimeline, b: PhaseTimeline, la: str, lb: str) -> list[str]:
    def phase(p) -> str:
        return "–" if p is None else f"**{p.name}** {p.start_time:.1f}–{p.end_time:.1f} s: {cell(p.summary)}"

    out = [f"| # | {la} | {lb} |", "|---|---|---|"]
    for i, (x, y) in enumerate(zip_longest(a.phases, b.phases), 1):
        out.append(f"| {i} | {phase(x)} | {phase(y)} |")
    return out
