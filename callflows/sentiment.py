"""Call sentiment: per-sentence sentiment from AssemblyAI plus LLM answers to questions.

Follows AssemblyAI's cookbook "Analyze the sentiment of a customer call" (questions with context and
answer format, asked over the transcript) and the Sentiment Analysis docs
(``sentiment_analysis_results``: one entry per sentence with POSITIVE/NEUTRAL/NEGATIVE, confidence
and, with speaker labels, the speaker). Deterministic parts (counts per speaker) are computed here;
the LLM only answers the questions.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from callflows.captions import EXAMPLE_CAPTIONS, Caption, block_context
from callflows.errors import InputError
from callflows.llm import LLMUsage
from callflows.markdown import cell
from callflows.models import Sentiment, Transcript
from callflows.provenance import Provenance

MAX_QUESTIONS = 20
ANSWER_MAX_CHARS = 300  # the default answer format: one sentence of answer, one of reason

AGENT_CONTEXT = "The agent represents the company and is trying to resolve the customer's request."
CUSTOMER_CONTEXT = "The customer is calling the company about a problem, a question or a purchase."
ANSWER_FORMAT = "<answer in one sentence> <reason in one sentence>"


class Question(BaseModel):
    """A question for the LLM, as in the cookbook: the question, optional context, optional answer format."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is refused with its path, not dropped

    question: str = Field(..., min_length=3, max_length=500, description="The question to answer about the call.")
    # "" rather than None when not given: the classic UI shows a None default as 'Property is type "None"'
    context: str = Field("", max_length=1000, description="Background that helps answer it (optional).")
    answer_format: str = Field("", max_length=300, description="How the answer should be written (optional).")


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


class QuestionAnswer(BaseModel):
    question: str
    context: str | None = None
    answer_format: str | None = None
    answer: str


class SentimentReport(BaseModel):
    """Result of the call sentiment flow (written as ``sentiment.json``)."""

    audio: str = Field(..., description="the recording: local path or URL")
    transcript_id: str
    audio_duration_s: float | None = None
    sentences: list[SentenceSentiment]
    counts: SentimentCounts = Field(..., description="all sentences")
    counts_by_speaker: dict[str, SentimentCounts] = Field(..., description="speaker label → counts")
    answers: list[QuestionAnswer]
    prompt_template: str
    llm: LLMUsage
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
            out += [f"**{i}. {qa.question}**", "", f"{qa.answer}", ""]
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


def answers_model(n_questions: int) -> type[BaseModel]:
    """The JSON shape the LLM must return: ``{"answer_1": str, ..., "answer_N": str}`` (bounded length)."""
    fields = {f"answer_{i}": (str, Field(..., min_length=1, max_length=ANSWER_MAX_CHARS))
              for i in range(1, n_questions + 1)}
    return create_model("SentimentAnswers", **fields)


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


def prompt_context(captions: list[Caption], questions: list[Question],
                   sentences: list[SentenceSentiment]) -> dict[str, Any]:
    """Template inputs of prompts/sentiment.j2: ``transcript_block`` and ``lines``
    (``callflows.captions.block_context``), ``questions`` (list of dicts), ``counts`` and
    ``counts_by_speaker`` (speaker → {POSITIVE, NEUTRAL, NEGATIVE})."""
    total, per = count_sentiments(sentences)
    return {**block_context(captions), "questions": [q.model_dump() for q in questions],
            "counts": total.model_dump(), "counts_by_speaker": {k: v.model_dump() for k, v in per.items()}}


def example_context(questions: list[Question]) -> dict[str, Any]:
    """A stand-in context with the real shape, to check a template before any request."""
    sentences = [SentenceSentiment(text=c.text, start=c.start, end=c.end, sentiment="NEUTRAL", confidence=0.5,
                                   speaker=c.speaker) for c in EXAMPLE_CAPTIONS]
    return prompt_context(EXAMPLE_CAPTIONS, questions, sentences)
