"""Checks on what an LLM's answer claims: quotes against who said them, repeats, missing reasons.

Pure functions on AssemblyAI's ``utterances`` (each with ``speaker`` and ``text``), used by the
sentiment and scorecard analyses to mark an answer and to send it back to the model once.

A quote is compared *folded* (``fold``: case, punctuation and apostrophes removed, whitespace
collapsed), without surrounding quote marks or a leading "Speaker A:"/"Customer:" label. A quote
whose parts are joined by "..." matches when every part occurs, in order. Each part must lie within
one utterance: a quote that runs across a change of speaker is not one speaker's words.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from callflows.models import Utterance

QuoteCheck = Literal["verified", "misattributed", "not_found"]
"""``verified``: the quote occurs in the words of the speaker the claim is about; ``misattributed``:
it occurs in the transcript, but not (only) in that speaker's words; ``not_found``: it does not occur."""

QuoteFrom = Literal["auto", "agent", "customer", "anyone"]
"""Whose words a quote must be: ``agent`` is the first role (the company's side: the agent, the sales
rep), ``customer`` the second; ``anyone`` accepts any speaker; ``auto`` reads it from the question."""

MIN_PART_CHARS = 3  # a folded quote part shorter than this ("ok", "i") proves nothing
_SPEAKER_PREFIX = re.compile(r"^\s*(speaker\s+\w+|[\w .'-]{1,35})\s*:\s+", re.I)
_ELLIPSIS = re.compile(r"\.\.\.|…")
_AGENT_WORDS = {"agent", "agents", "rep", "reps", "representative", "salesperson", "seller", "advisor",
                "adviser", "associate", "operator", "banker", "staff", "employee"}
_CUSTOMER_WORDS = {"customer", "customers", "caller", "callers", "client", "clients", "prospect", "buyer"}


def fold(text: str) -> str:
    """Lower-case, punctuation removed, whitespace collapsed: the form quotes are compared in."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.casefold().replace("’", "'").replace("'", ""))).strip()


def quote_parts(quote: str) -> list[str]:
    """The folded parts of ``quote`` (split at "..."), its quote marks and speaker label removed."""
    quote = _SPEAKER_PREFIX.sub("", quote.strip().strip("\"'“”‘’"))
    return [p for p in (fold(part) for part in _ELLIPSIS.split(quote)) if p]


def _occurs(parts: list[str], texts: Iterable[str]) -> bool:
    """Every part occurs in one of the folded ``texts``, in order (a later part in the same text or a
    later one)."""
    if not parts or any(len(p) < MIN_PART_CHARS for p in parts):
        return False
    texts = [f" {t} " for t in texts]  # padded: a part must start and end on word boundaries
    index, position = 0, 0
    for part in parts:
        while index < len(texts):
            found = texts[index].find(f" {part} ", position)
            if found >= 0:
                position = found + len(part) + 1
                break
            index, position = index + 1, 0
        else:
            return False
    return True


def check_quote(quote: str, utterances: Sequence[Utterance], speakers: Collection[str] | None) -> QuoteCheck:
    """Whether ``quote`` is the words of one of ``speakers`` (speaker labels, e.g. ``{"A"}``).

    ``speakers`` None or empty (the claim is about nobody in particular, or no speaker has the role):
    ``verified`` when the quote occurs anywhere, else ``not_found``. Otherwise ``verified`` when it
    occurs within those speakers' utterances, ``misattributed`` when it occurs elsewhere in the
    transcript (another speaker's utterance, or across a change of speaker), ``not_found`` when not
    at all."""
    parts = quote_parts(quote)
    folded = [(u.speaker, fold(u.text)) for u in utterances]
    if speakers and _occurs(parts, (t for s, t in folded if s in speakers)):
        return "verified"
    if not _occurs(parts, [" ".join(t for _, t in folded)]):  # anywhere, also across a change of speaker
        return "not_found"
    return "misattributed" if speakers else "verified"


def repeats(texts: Sequence[str]) -> list[int]:
    """Indexes (0-based) of the texts that repeat an earlier one once folded."""
    seen: set[str] = set()
    out = []
    for i, text in enumerate(texts):
        key = fold(text)
        if key in seen:
            out.append(i)
        seen.add(key)
    return out


def restates(reason: str, answer: str) -> bool:
    """True when ``reason`` is empty or says nothing beyond ``answer`` (equal, or contained in it, folded)."""
    r, a = fold(reason), fold(answer)
    return not r or r in a


def side_named_in(text: str) -> QuoteFrom:
    """``agent`` or ``customer`` when ``text`` names exactly one side ("a quote from the agent", "the
    customer's interest"), else ``anyone``."""
    words = set(fold(text).split())
    agent, customer = bool(words & _AGENT_WORDS), bool(words & _CUSTOMER_WORDS)
    return "agent" if agent and not customer else "customer" if customer and not agent else "anyone"


def labels_of(mapping: dict[str, str], role: str) -> set[str]:
    """The speaker labels that ``mapping`` (label → role, from ``/v1/understanding``) gives ``role``."""
    return {label for label, value in mapping.items() if value == role}


class Quoted(BaseModel):
    """A claim's quote and its check against the transcript (``check_quote``)."""

    quote: str = ""
    quote_check: QuoteCheck | None = Field(None, description="None when no quote was asked for")

    @model_validator(mode="before")
    @classmethod
    def _from_quote_verified(cls, data: Any) -> Any:
        """Results written before quote_check had ``quote_verified: bool``."""
        if isinstance(data, dict) and "quote_verified" in data and "quote_check" not in data:
            data = {**data, "quote_check": "verified" if data["quote_verified"] else "not_found"}
            del data["quote_verified"]
        return data

    @property
    def quote_mark(self) -> str:
        """Markdown after the quote: nothing when verified or not checked."""
        return {"misattributed": " *(misattributed)*", "not_found": " *(not found)*"}.get(self.quote_check or "", "")


QUOTE_MARKS_NOTE = ("*(misattributed)*: the words occur in the transcript but were said by another speaker; "
                    "*(not found)*: they do not occur in it.")


def role_for(side: QuoteFrom, roles: Sequence[str]) -> str | None:
    """The role of ``side`` (``agent``: ``roles[0]``, ``customer``: ``roles[1]``), None for the others."""
    return {"agent": roles[0], "customer": roles[1]}.get(side)


def speakers_for(side: QuoteFrom, mapping: dict[str, str], roles: Sequence[str]) -> set[str] | None:
    """The speaker labels whose words verify a quote for a claim on ``side`` (``auto`` already
    resolved): the labels ``mapping`` gives ``roles[0]`` (agent) or ``roles[1]`` (customer). None, so
    any speaker verifies it, for ``anyone`` and when no label has that role."""
    role = role_for(side, roles)
    return (labels_of(mapping, role) or None) if role else None


def quote_problem(field: str, check: QuoteCheck, whose: str | None) -> str | None:
    """The sentence sent back to the model for a quote that is not verified (no transcript text in it:
    it is logged), or None when it is verified."""
    if check == "misattributed":
        return f"{field} was said by another speaker, not the {whose}: quote the {whose}'s own words"
    if check == "not_found":
        whose_words = f"the {whose}'s words" if whose else "the words"
        return f"{field} does not occur in the transcript: copy {whose_words} exactly"
    return None
