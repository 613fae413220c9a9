"""Sales coaching scorecard: roles, conversation metrics, and an LLM scorecard whose quotes are checked.

Follows AssemblyAI's sales-call example (transcribe with speaker labels and sentiment, identify
speakers by role with ``/v1/understanding``, compute talk/listen ratio, then have the LLM write a
coaching scorecard). Metrics are computed in code (``callflows.metrics``) and given to the LLM as
numbers. Every quote the LLM cites is checked against the words of the speaker the claim is about
(``callflows.quotes``): a rubric criterion needs the rep's words (or the customer's, by its
``quote_from``), a sentiment shift the customer's. Misattributed and missing quotes, repeated shifts,
suggestions and rubric reasons are sent back to the model once (``answer_problems``); what is still
wrong after that is marked, and repeats are dropped.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from callflows.captions import EXAMPLE_CAPTIONS, Caption, block_context
from callflows.errors import InputError
from callflows.llm import LLMUsage
from callflows.markdown import cell
from callflows.metrics import ConversationMetrics, conversation_metrics
from callflows.models import Transcript, Utterance
from callflows.provenance import Provenance
from callflows.usage import Usage
from callflows.quotes import (QUOTE_MARKS_NOTE, QuoteCheck, QuoteFrom, Quoted, check_quote, quote_problem, repeats,
                              restates, role_for, side_named_in, speakers_for)

DEFAULT_ROLES = ["Sales Rep", "Customer"]
DEFAULT_IDEAL_REP_TALK_SHARE = 0.4  # 40/60 rep/customer: the usual sales-coaching target
MAX_ROLES = 10
MAX_CRITERIA = 15
# Bounds keep the answer short (a small model fills every field to its limit and repeats itself):
# about 1,500 characters for the default rubric, within the flow's max_tokens=2000 with room for a long rubric.
SUMMARY_MAX_CHARS = 300
TEXT_MAX_CHARS = 160
QUOTE_MAX_CHARS = 120


class RubricCriterion(BaseModel):
    """A rubric line: what to judge and the answers allowed."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is refused with its path, not dropped

    name: str = Field(..., min_length=3, max_length=200, description="What is judged.")
    options: list[str] = Field(default_factory=lambda: ["yes", "partly", "no"], min_length=2, max_length=6,
                               description="The answers allowed.")
    quote_from: QuoteFrom = Field("agent", description="Whose words the evidence must be: agent (the first role, "
                                                       "the rep), customer (the second), anyone, or auto (the "
                                                       "side the name mentions).")


DEFAULT_RUBRIC = [
    RubricCriterion(name="Greeted the customer and introduced themselves and the company"),
    RubricCriterion(name="Asked open questions to understand the customer's needs"),
    RubricCriterion(name="Acknowledged the customer's concerns with empathy"),
    RubricCriterion(name="Explained the solution or offer clearly"),
    RubricCriterion(name="Agreed clear next steps before ending the call"),
]


class CriterionResult(Quoted):
    name: str
    answer: str
    reason: str


class SentimentShift(Quoted):
    shift: str = Field(..., description="how the customer's sentiment changed")
    cause: str


class TalkListenAnalysis(BaseModel):
    rep_role: str
    rep_talk_share: float | None = Field(None, description="share of speech time, 0..1 (computed)")
    ideal_rep_talk_share: float
    assessment: str


class Scorecard(BaseModel):
    """Result of the sales scorecard flow (written as ``scorecard.json``)."""

    audio: str
    transcript_id: str
    roles: dict[str, str] = Field(..., description="speaker label → role, from /v1/understanding")
    metrics: ConversationMetrics
    summary: str
    talk_listen: TalkListenAnalysis
    sentiment_shifts: list[SentimentShift]
    coaching_suggestions: list[str]
    criteria: list[CriterionResult]
    unverified_quotes: int = Field(0, description="quotes not verified: misattributed or not found")
    misattributed_quotes: int = Field(0, description="quotes said by another speaker than the claim is about")
    problems: list[str] = Field(default_factory=list, description="what was still wrong in the LLM's answer after "
                                                                  "its one retry (repeats were dropped)")
    prompt_template: str
    llm: LLMUsage
    usage: Usage | None = Field(None, description="set by the standalone flow: audio, LLM tokens and estimated "
                                                "cost of its run (analyze-call keeps it in analysis.json)")
    provenance: Provenance | None = Field(None, description="what produced it (callflows.provenance)")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def to_markdown(self) -> str:
        """The scorecard as Markdown: metrics table, then the LLM's scorecard with quote checks."""
        tl = self.talk_listen
        share = "?" if tl.rep_talk_share is None else f"{tl.rep_talk_share:.0%}"
        out = [f"# Sales scorecard: {self.audio}", "",
               f"Transcript `{self.transcript_id}`. Roles: "
               + ", ".join(f"{k} = {v}" for k, v in self.roles.items()) + ".", "",
               "## Conversation metrics", "", self.metrics.to_markdown_table(), "",
               "## Summary", "", self.summary, "",
               "## Talk/listen", "",
               f"{tl.rep_role} talked {share} of the speech time (ideal {tl.ideal_rep_talk_share:.0%}). {tl.assessment}",
               "", "## Customer sentiment shifts", ""]
        out += [f"- {s.shift}: {s.cause} — “{s.quote}”{s.quote_mark}" for s in self.sentiment_shifts] or ["- none"]
        out += ["", "## Top coaching suggestions", ""]
        out += [f"{i}. {s}" for i, s in enumerate(self.coaching_suggestions, 1)]
        out += ["", "## Rubric", "", "| criterion | answer | reason | quote |", "|---|---|---|---|"]
        out += [f"| {cell(c.name)} | {c.answer} | {cell(c.reason)} | “{cell(c.quote)}”{c.quote_mark} |"
                for c in self.criteria]
        if self.unverified_quotes:
            out += ["", f"{self.unverified_quotes} quote(s) not verified ({self.misattributed_quotes} misattributed). "
                    + QUOTE_MARKS_NOTE]
        if self.problems:
            out += ["", "Left after one retry: " + "; ".join(self.problems) + "."]
        out += ["", f"LLM: `{self.llm.model}`" + (f" (served locally by `{self.llm.served_by}`)" if self.llm.served_by
                                                  else "") + f", template `{self.prompt_template}`."]
        return "\n".join(out).rstrip() + "\n"


# --- input checks --------------------------------------------------------------------------------

def check_roles(roles: list[str]) -> list[str]:
    """At least two distinct, non-empty roles of at most 35 characters (the API's limit)."""
    cleaned = [r.strip() for r in roles or []]
    if len(cleaned) < 2:
        raise InputError(f"roles has {len(cleaned)} entries: give at least two (e.g. {DEFAULT_ROLES})")
    if len(cleaned) > MAX_ROLES:
        raise InputError(f"roles has {len(cleaned)} entries; at most {MAX_ROLES} are supported")
    for role in cleaned:
        if not role or len(role) > 35:
            raise InputError(f"role {role!r} must be 1 to 35 characters (AssemblyAI's limit for known_values)")
    if len({r.casefold() for r in cleaned}) != len(cleaned):
        raise InputError(f"roles {cleaned} repeat a role: each role must be different")
    return cleaned


def check_rubric(rubric: list[RubricCriterion]) -> list[RubricCriterion]:
    items = [r if isinstance(r, RubricCriterion) else RubricCriterion.model_validate(r) for r in rubric or []]
    if not items:
        raise InputError("rubric is empty: give at least one {name, options} or leave it out for the default")
    if len(items) > MAX_CRITERIA:
        raise InputError(f"rubric has {len(items)} criteria; at most {MAX_CRITERIA} fit one prompt")
    return items


# --- the LLM's answer ----------------------------------------------------------------------------

class _Shift(BaseModel):
    shift: str = Field(..., min_length=1, max_length=TEXT_MAX_CHARS)
    cause: str = Field(..., min_length=1, max_length=TEXT_MAX_CHARS)
    quote: str = Field(..., min_length=1, max_length=QUOTE_MAX_CHARS)


def answer_model(rubric: list[RubricCriterion]) -> type[BaseModel]:
    """The JSON the LLM must return: summary, talk_listen_assessment, 0–3 sentiment_shifts, exactly 3
    coaching_suggestions (the schema sent says ``uniqueItems``; ``answer_problems`` checks it), and
    ``criterion_1..N`` each with an answer from that criterion's options, a reason and a supporting quote."""
    criteria: dict[str, Any] = {}
    for i, criterion in enumerate(rubric, 1):
        item = create_model(f"Criterion{i}",
                            answer=(Literal[tuple(criterion.options)], ...),
                            reason=(str, Field(..., min_length=1, max_length=TEXT_MAX_CHARS)),
                            quote=(str, Field(..., min_length=1, max_length=QUOTE_MAX_CHARS)))
        criteria[f"criterion_{i}"] = (item, ...)
    return create_model(
        "ScorecardAnswer",
        summary=(str, Field(..., min_length=1, max_length=SUMMARY_MAX_CHARS)),
        talk_listen_assessment=(str, Field(..., min_length=1, max_length=TEXT_MAX_CHARS)),
        sentiment_shifts=(list[_Shift], Field(..., max_length=3, json_schema_extra={"uniqueItems": True})),
        coaching_suggestions=(list[Annotated[str, Field(min_length=1, max_length=TEXT_MAX_CHARS)]],
                              Field(..., min_length=3, max_length=3, json_schema_extra={"uniqueItems": True})),
        **criteria,
    )


def rep_role(roles: list[str]) -> str:
    """The role whose talk share is compared with the ideal: the first role (``Sales Rep`` by default)."""
    return roles[0]


# --- prompt and result ---------------------------------------------------------------------------

def check_speakers(transcript: Transcript, roles: list[str]) -> list[str]:
    """The transcript's speaker labels, in order of appearance. Raises ``InputError`` when it has no
    speaker labels, or fewer speakers than roles."""
    if not transcript.utterances:
        raise InputError(f"transcript {transcript.id} has no speaker labels (utterances is empty): create it "
                         f"with speaker_labels=True (or multichannel=True for one speaker per channel)")
    speakers = list(dict.fromkeys(u.speaker for u in transcript.utterances))
    if len(speakers) < len(roles):
        raise InputError(f"the call has {len(speakers)} speaker(s) ({', '.join(speakers)}) but {len(roles)} roles "
                         f"were given ({', '.join(roles)}): pass fewer roles, or set speakers_expected="
                         f"{len(roles)} if you know the call has that many speakers")
    return speakers


def prompt_context(captions: list[Caption], mapping: dict[str, str], roles: list[str],
                   metrics: ConversationMetrics, ideal: float, rubric: list[RubricCriterion]) -> dict[str, Any]:
    """Template inputs of prompts/scorecard.j2: ``transcript_block`` and ``lines``
    (``callflows.captions.block_context``), ``roles`` (speaker label → role), ``rep_role``,
    ``customer_role``, ``metrics`` (dict), ``metrics_table`` (markdown), ``rep_talk_share`` and
    ``ideal_rep_talk_share`` (0..1), ``rubric`` (list of {name, options, quote_from, quote_role}: the
    role whose words the quote must be, or "" for anyone)."""
    rep = rep_role(roles)
    rep_labels = [label for label, role in mapping.items() if role == rep]
    share = sum(metrics.speakers[label].talk_share for label in rep_labels if label in metrics.speakers)
    return {**block_context(captions), "roles": mapping, "rep_role": rep, "customer_role": roles[1],
            "metrics": metrics.model_dump(), "metrics_table": metrics.to_markdown_table(),
            "rep_talk_share": share, "ideal_rep_talk_share": ideal,
            "rubric": [{**r.model_dump(), "quote_role": role_for(_side(r), roles) or ""} for r in rubric]}


def example_context(roles: list[str], rubric: list[RubricCriterion]) -> dict[str, Any]:
    """Stand-in template inputs with the real shape, to check a template before any request."""
    utterances = [Utterance(speaker=c.speaker, text=c.text, start=c.start, end=c.end, confidence=1.0)
                  for c in EXAMPLE_CAPTIONS]
    metrics = conversation_metrics(utterances, [], EXAMPLE_CAPTIONS[-1].end)
    return prompt_context(EXAMPLE_CAPTIONS, {"A": roles[0], "B": roles[1]}, roles, metrics, 0.4, rubric)


# --- checks on the answer (callflows.quotes) -----------------------------------------------------

def _quote_checks(answer: BaseModel, rubric: list[RubricCriterion], utterances: list[Utterance],
                  mapping: dict[str, str], roles: list[str]) -> tuple[list[QuoteCheck], list[QuoteCheck]]:
    """Each sentiment shift's quote checked against the customer's words, each criterion's against the
    side its ``quote_from`` names."""
    customer = speakers_for("customer", mapping, roles)
    shifts = [check_quote(s.quote, utterances, customer) for s in answer.sentiment_shifts]
    criteria = [check_quote(getattr(answer, f"criterion_{i}").quote, utterances,
                            speakers_for(_side(c), mapping, roles)) for i, c in enumerate(rubric, 1)]
    return shifts, criteria


def _side(criterion: RubricCriterion) -> QuoteFrom:
    return side_named_in(criterion.name) if criterion.quote_from == "auto" else criterion.quote_from


def _repeated_shifts(shifts: list[Any]) -> set[int]:
    return set(repeats([s.quote for s in shifts])) | set(repeats([s.shift for s in shifts]))


def _repeat_problems(answer: BaseModel) -> list[str]:
    problems = [f"sentiment_shifts[{k}] repeats an earlier shift: list only different moments"
                for k in sorted(_repeated_shifts(answer.sentiment_shifts))]
    return problems + [f"coaching_suggestions[{k}] repeats an earlier suggestion: give different suggestions"
                       for k in repeats(answer.coaching_suggestions)]


def _reason_problems(answer: BaseModel, rubric: list[RubricCriterion]) -> list[str]:
    items = [getattr(answer, f"criterion_{i}") for i in range(1, len(rubric) + 1)]
    problems = [f"criterion_{k + 1}.reason repeats an earlier criterion's reason: give each criterion its own reason"
                for k in repeats([item.reason for item in items])]
    return problems + [f"criterion_{i}.reason only repeats the answer: say why" for i, item in enumerate(items, 1)
                       if restates(item.reason, item.answer)]


def answer_problems(answer: BaseModel, rubric: list[RubricCriterion], utterances: list[Utterance],
                    mapping: dict[str, str], roles: list[str]) -> list[str]:
    """What is wrong with a parsed answer (an ``answer_model(rubric)`` instance) that its schema cannot
    say, one sentence per problem naming the field (no transcript text: they are logged): quotes that
    are misattributed or not found (``callflows.quotes.check_quote``), repeated shifts (same quote or
    same shift), suggestions and rubric reasons, and reasons that only repeat the answer. ``mapping``:
    speaker label → role (``/v1/understanding``); ``roles[0]`` is the rep, ``roles[1]`` the customer."""
    shifts, criteria = _quote_checks(answer, rubric, utterances, mapping, roles)
    problems = [quote_problem(f"sentiment_shifts[{k}].quote", check, roles[1]) for k, check in enumerate(shifts)]
    for i, (criterion, check) in enumerate(zip(rubric, criteria), 1):
        problems.append(quote_problem(f"criterion_{i}.quote", check, role_for(_side(criterion), roles)))
    return [p for p in problems if p] + _repeat_problems(answer) + _reason_problems(answer, rubric)


def scorecard_of(answer: BaseModel, rubric: list[RubricCriterion], transcript: Transcript, mapping: dict[str, str],
                 roles: list[str], metrics: ConversationMetrics, rep_talk_share: float | None, ideal: float,
                 **fields: Any) -> Scorecard:
    """The ``Scorecard`` for the LLM's ``answer`` (an ``answer_model(rubric)`` instance): each quote
    checked against its speaker's utterances, repeated shifts and suggestions dropped, and rubric
    reasons that repeat another or only restate the answer listed in ``problems``. ``fields``: the
    rest of the Scorecard (audio, transcript_id, prompt_template, llm, provenance)."""
    utterances = transcript.utterances or []
    shift_checks, criterion_checks = _quote_checks(answer, rubric, utterances, mapping, roles)
    repeated = _repeated_shifts(answer.sentiment_shifts)
    shifts = [SentimentShift(**s.model_dump(), quote_check=check)
              for k, (s, check) in enumerate(zip(answer.sentiment_shifts, shift_checks)) if k not in repeated]
    repeated_suggestions = repeats(answer.coaching_suggestions)
    suggestions = [s for k, s in enumerate(answer.coaching_suggestions) if k not in repeated_suggestions]
    criteria = []
    for i, (criterion, check) in enumerate(zip(rubric, criterion_checks), 1):
        item = getattr(answer, f"criterion_{i}")
        criteria.append(CriterionResult(name=criterion.name, answer=item.answer, reason=item.reason, quote=item.quote,
                                        quote_check=check))
    quoted = [*shifts, *criteria]
    return Scorecard(
        roles=mapping, metrics=metrics, summary=answer.summary,
        talk_listen=TalkListenAnalysis(rep_role=rep_role(roles), rep_talk_share=rep_talk_share,
                                       ideal_rep_talk_share=ideal, assessment=answer.talk_listen_assessment),
        sentiment_shifts=shifts, coaching_suggestions=suggestions, criteria=criteria,
        unverified_quotes=sum(q.quote_check != "verified" for q in quoted),
        misattributed_quotes=sum(q.quote_check == "misattributed" for q in quoted),
        problems=_reason_problems(answer, rubric), **fields)
