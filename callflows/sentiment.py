"""Call sentiment: per-sentence sentiment from AssemblyAI plus LLM answers to questions.

Follows AssemblyAI's cookbook "Analyze the sentiment of a customer call" (questions with context and
answer format, asked over the transcript) and the Sentiment Analysis docs
(``sentiment_analysis_results``: one entry per sentence with POSITIVE/NEUTRAL/NEGATIVE, confidence
and, with speaker labels, the speaker). Deterministic parts (counts per speaker) are computed here;
the LLM only answers the questions.

Each answer is ``{"answer"}``, plus ``"reason"`` when the question's answer format asks for one and
``"quote"`` when the question asks for a quote (``wants_reason``, ``wants_quote``). A quote is
checked against the words of the side the question is about (``Question.quote_from``; speakers
identified by role with ``/v1/understanding``), and a reason that only repeats the answer is a
problem (``answer_problems``): the answer is sent back once, then kept with its quotes marked.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from callflows.captions import EXAMPLE_CAPTIONS, Caption, block_context
from callflows.errors import InputError
from callflows.llm import LLMUsage
from callflows.markdown import cell
from callflows.models import Sentiment, Transcript, Utterance
from callflows.provenance import Provenance
from callflows.usage import Usage
from callflows.quotes import (QUOTE_MARKS_NOTE, QuoteFrom, Quoted, check_quote, quote_problem, restates,
                              role_for, side_named_in, speakers_for)

MAX_QUESTIONS = 20
# Bounds keep the answer short (a small model fills every field to its limit): an answer alone may
# take two sentences; with a reason, each is one sentence.
ANSWER_MAX_CHARS = 300
SENTENCE_MAX_CHARS = 150

AGENT_CONTEXT = "The agent represents the company and is trying to resolve the customer's request."
CUSTOMER_CONTEXT = "The customer is calling the company about a problem, a question or a purchase."
ANSWER_FORMAT = "<answer in one sentence> <reason in one sentence>"
QUOTE_MAX_CHARS = 120
ROLES = ["Agent", "Customer"]  # the sides a quote is checked against: the company's, then the caller's
_REASON_RE = re.compile(r"\b(reasons?|why|because|explain\w*|justif\w*)\b", re.I)
_QUOTE_RE = re.compile(r"\bquot(e|es|ed|ing|ation)\b", re.I)


class Question(BaseModel):
    """A question for the LLM, as in the cookbook: the question, optional context, optional answer format."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is refused with its path, not dropped

    question: str = Field(..., min_length=3, max_length=500, description="The question to answer about the call.")
    # "" rather than None when not given: the classic UI shows a None default as 'Property is type "None"'
    context: str = Field("", max_length=1000, description="Background that helps answer it (optional).")
    answer_format: str = Field("", max_length=300, description="How the answer should be written (optional).")
    quote_from: QuoteFrom = Field("auto", description="When the question asks for a quote: whose words it must "
                                                      "be (agent, customer, anyone; auto: the side the question "
                                                      "names, else anyone).")


DEFAULT_QUESTIONS: list[Question] = [
    Question(question="What was the overall sentiment of the call?", context=CUSTOMER_CONTEXT,
             answer_format=ANSWER_FORMAT),
    Question(question="What was the sentiment of the agent in this call?", context=AGENT_CONTEXT,
             answer_format=ANSWER_FORMAT),
    Question(question="What was the sentiment of the customer in this call?", context=CUSTOMER_CONTEXT,
             answer_format=ANSWER_FORMAT),
    Question(question="What quote best demonstrates the customer's level of interest?",
             context=CUSTOMER_CONTEXT, answer_format=ANSWER_FORMAT),
    Question(question="Provide a quote from the agent that demonstrates their level of enthusiasm.",
             context=AGENT_CONTEXT, answer_format=ANSWER_FORMAT),
]


class SentenceSentiment(BaseModel):
    """One sentence's sentiment. ``start``/``end`` in ms (AssemblyAI's units)."""

    text: str
    start: int = Field(..., description="ms")
    end: int = Field(..., description="ms")
    sentiment: Sentiment
    confidence: float
    speaker: str | None = None


class SentimentCounts(BaseModel):
    """Number of sentences per sentiment label."""

    POSITIVE: int = 0
    NEUTRAL: int = 0
    NEGATIVE: int = 0

    @property
    def total(self) -> int:
        return self.POSITIVE + self.NEUTRAL + self.NEGATIVE


class QuestionAnswer(Quoted):
    question: str
    context: str | None = None
    answer_format: str | None = None
    quote_from: QuoteFrom = "auto"
    answer: str
    reason: str = Field("", description="when the answer format asks for one")

    @property
    def markdown(self) -> str:
        """The answer, its reason and its quote (marked unless verified), on one line."""
        return (self.answer + (f" {self.reason}" if self.reason else "")
                + (f" — “{self.quote}”{self.quote_mark}" if self.quote else ""))


class SentimentReport(BaseModel):
    """Result of the call sentiment flow (written as ``sentiment.json``)."""

    audio: str = Field(..., description="the recording: local path or URL")
    transcript_id: str
    audio_duration_s: float | None = None
    sentences: list[SentenceSentiment]
    counts: SentimentCounts = Field(..., description="all sentences")
    counts_by_speaker: dict[str, SentimentCounts] = Field(..., description="speaker label → counts")
    answers: list[QuestionAnswer]
    roles: dict[str, str] = Field(default_factory=dict, description="speaker label → role (/v1/understanding), "
                                                                     "when a question asks for a quote of one side")
    unverified_quotes: int = Field(0, description="quotes not verified: misattributed or not found")
    misattributed_quotes: int = Field(0, description="quotes said by another speaker than the question is about")
    problems: list[str] = Field(default_factory=list, description="what was still wrong in the LLM's answer after "
                                                                  "its one retry")
    prompt_template: str
    llm: LLMUsage
    usage: Usage | None = Field(None, description="set by the standalone flow: audio, LLM tokens and estimated "
                                                "cost of its run (analyze-call keeps it in analysis.json)")
    provenance: Provenance | None = Field(None, description="what produced it (callflows.provenance)")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def to_markdown(self) -> str:
        """The report as Markdown (used for the Prefect artifact and the CLI)."""
        out = [f"# Call sentiment: {self.audio}", "",
               f"Transcript `{self.transcript_id}`, {fmt_seconds(self.audio_duration_s)} of audio, "
               f"{len(self.sentences)} sentences. LLM: `{self.llm.model}`"
               f"{f' (served locally by `{self.llm.served_by}`)' if self.llm.served_by else ''}, "
               f"template `{self.prompt_template}`.", "",
               "## Sentiment per speaker", "", "| speaker | positive | neutral | negative | sentences |",
               "|---|---:|---:|---:|---:|"]
        for speaker, c in [*self.counts_by_speaker.items(), ("**all**", self.counts)]:
            out.append(f"| {speaker} | {c.POSITIVE} | {c.NEUTRAL} | {c.NEGATIVE} | {c.total} |")
        out += ["", "## Sentences", "", "| time | speaker | sentiment | conf. | text |", "|---|---|---|---:|---|"]
        for s in self.sentences:
            out.append(f"| {fmt_ms(s.start)}–{fmt_ms(s.end)} | {s.speaker or '-'} | {s.sentiment} | "
                       f"{s.confidence:.2f} | {cell(s.text)} |")
        out += ["", "## Questions", ""]
        for i, qa in enumerate(self.answers, 1):
            out += [f"**{i}. {qa.question}**", "", qa.markdown, ""]
        if self.unverified_quotes:
            out += [f"{self.unverified_quotes} quote(s) not verified ({self.misattributed_quotes} misattributed). "
                    + QUOTE_MARKS_NOTE, ""]
        if self.problems:
            out += ["Left after one retry: " + "; ".join(self.problems) + ".", ""]
        return "\n".join(out).rstrip() + "\n"


def fmt_ms(ms: int) -> str:
    """``83456`` → ``"01:23.4"`` (minutes:seconds)."""
    s = ms / 1000
    return f"{int(s // 60):02d}:{s % 60:04.1f}"


def fmt_seconds(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.0f} s"


def sentence_sentiments(transcript: Transcript) -> list[SentenceSentiment]:
    return [SentenceSentiment(text=r.text, start=r.start, end=r.end, sentiment=r.sentiment,
                              confidence=r.confidence, speaker=r.speaker)
            for r in transcript.sentiment_analysis_results or []]


def count_sentiments(sentences: list[SentenceSentiment]) -> tuple[SentimentCounts, dict[str, SentimentCounts]]:
    """Counts over all sentences and per speaker (speakers in order of first appearance; no speaker → "?")."""
    total = SentimentCounts()
    per: dict[str, SentimentCounts] = {}
    for s in sentences:
        for c in (total, per.setdefault(s.speaker or "?", SentimentCounts())):
            setattr(c, s.sentiment, getattr(c, s.sentiment) + 1)
    return total, per


def wants_reason(question: Question) -> bool:
    """True when the answer format asks for a reason ("reason", "why", "because", "explain")."""
    return bool(_REASON_RE.search(question.answer_format))


def wants_quote(question: Question) -> bool:
    """True when the question or its answer format asks for a quote."""
    return bool(_QUOTE_RE.search(question.question) or _QUOTE_RE.search(question.answer_format))


def quote_side(question: Question) -> QuoteFrom:
    """Whose words the question's quote must be: ``quote_from``, or for ``auto`` the side the question
    names (``callflows.quotes.side_named_in``)."""
    return side_named_in(question.question) if question.quote_from == "auto" else question.quote_from


def answers_model(questions: list[Question]) -> type[BaseModel]:
    """The JSON shape the LLM must return: ``{"answer_1": {"answer": str, "reason": str, "quote": str},
    ...}``, with ``reason`` only where ``wants_reason`` and ``quote`` only where ``wants_quote`` (bounded
    lengths)."""
    def text(max_chars: int) -> tuple:
        return str, Field(..., min_length=1, max_length=max_chars)

    fields = {}
    for i, q in enumerate(questions, 1):
        shape = ({"answer": text(SENTENCE_MAX_CHARS), "reason": text(SENTENCE_MAX_CHARS)} if wants_reason(q)
                 else {"answer": text(ANSWER_MAX_CHARS)})
        if wants_quote(q):
            shape["quote"] = text(QUOTE_MAX_CHARS)
        fields[f"answer_{i}"] = (create_model(f"Answer{i}", **shape), ...)
    return create_model("SentimentAnswers", **fields)


def _answers(parsed: BaseModel, questions: list[Question], utterances: list[Utterance], mapping: dict[str, str],
             roles: list[str]) -> list[QuestionAnswer]:
    out = []
    for i, q in enumerate(questions, 1):
        item = getattr(parsed, f"answer_{i}")
        quote = getattr(item, "quote", "")
        check = check_quote(quote, utterances, speakers_for(quote_side(q), mapping, roles)) \
            if wants_quote(q) else None
        out.append(QuestionAnswer(**q.model_dump(), answer=item.answer, reason=getattr(item, "reason", ""),
                                  quote=quote, quote_check=check))
    return out


def _reason_problems(answers: list[QuestionAnswer], questions: list[Question]) -> list[str]:
    return [f"answer_{i}.reason only repeats the answer: say why, as the answer format asks"
            for i, (q, qa) in enumerate(zip(questions, answers), 1)
            if wants_reason(q) and restates(qa.reason, qa.answer)]


def answer_problems(parsed: BaseModel, questions: list[Question], utterances: list[Utterance],
                    mapping: dict[str, str], roles: list[str] = ROLES) -> list[str]:
    """What is wrong with a parsed answer (an ``answers_model(questions)`` instance) that its schema
    cannot say, one sentence per problem naming the field (no transcript text: they are logged): a
    quote misattributed or not found, a reason that is empty or only repeats the answer. ``mapping``:
    speaker label → role (``/v1/understanding``) for ``roles`` (agent side first)."""
    answers = _answers(parsed, questions, utterances, mapping, roles)
    problems = [quote_problem(f"answer_{i}.quote", qa.quote_check, role_for(quote_side(q), roles))
                for i, (q, qa) in enumerate(zip(questions, answers), 1) if qa.quote_check]
    return [p for p in problems if p] + _reason_problems(answers, questions)


def question_answers(parsed: BaseModel, questions: list[Question], utterances: list[Utterance],
                     mapping: dict[str, str], roles: list[str] = ROLES) -> dict[str, Any]:
    """The report's fields for the LLM's answer: ``answers`` (each quote checked), ``unverified_quotes``,
    ``misattributed_quotes`` and ``problems`` (reasons that only repeat the answer; quotes are marked)."""
    answers = _answers(parsed, questions, utterances, mapping, roles)
    checks = [a.quote_check for a in answers if a.quote_check]
    return {"answers": answers, "unverified_quotes": sum(c != "verified" for c in checks),
            "misattributed_quotes": checks.count("misattributed"), "problems": _reason_problems(answers, questions)}


def needs_roles(questions: list[Question]) -> bool:
    """True when a question asks for a quote of one side, so the speakers must be identified by role."""
    return any(wants_quote(q) and quote_side(q) != "anyone" for q in questions)


def check_questions(questions: list[Question]) -> list[Question]:
    """The questions as ``Question`` objects. Raises ``InputError`` for an empty list or more than
    ``MAX_QUESTIONS``."""
    if not questions:
        raise InputError("questions is empty: pass at least one {question, context, answer_format} "
                         "or leave the parameter out for the cookbook's five")
    if len(questions) > MAX_QUESTIONS:
        raise InputError(f"questions has {len(questions)} entries; at most {MAX_QUESTIONS} fit one prompt. "
                         f"Split them over several runs")
    return [q if isinstance(q, Question) else Question.model_validate(q) for q in questions]


def prompt_context(captions: list[Caption], questions: list[Question], sentences: list[SentenceSentiment],
                   mapping: dict[str, str] | None = None, roles: list[str] = ROLES) -> dict[str, Any]:
    """Template inputs of prompts/sentiment.j2: ``transcript_block`` and ``lines``
    (``callflows.captions.block_context``), ``questions`` (list of {question, context, answer_format,
    quote_from, wants_reason, wants_quote, quote_role}: quote_role is the role whose words the quote
    must be, or ""), ``roles`` (speaker label → role, maybe empty), ``counts`` and
    ``counts_by_speaker`` (speaker → {POSITIVE, NEUTRAL, NEGATIVE})."""
    total, per = count_sentiments(sentences)
    items = [{**q.model_dump(), "wants_reason": wants_reason(q), "wants_quote": wants_quote(q),
              "quote_role": role_for(quote_side(q), roles) or ""} for q in questions]
    return {**block_context(captions), "questions": items, "roles": mapping or {},
            "counts": total.model_dump(), "counts_by_speaker": {k: v.model_dump() for k, v in per.items()}}


def example_context(questions: list[Question]) -> dict[str, Any]:
    """A stand-in context with the real shape, to check a template before any request."""
    sentences = [SentenceSentiment(text=c.text, start=c.start, end=c.end, sentiment="NEUTRAL", confidence=0.5,
                                   speaker=c.speaker) for c in EXAMPLE_CAPTIONS]
    return prompt_context(EXAMPLE_CAPTIONS, questions, sentences, {"A": ROLES[0], "B": ROLES[1]})
