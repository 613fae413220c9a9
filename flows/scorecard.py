"""Sales coaching scorecard flow (AssemblyAI's sales-call example, made checkable).

audio → transcribe (speaker_labels + sentiment_analysis, or multichannel for stereo; cached) →
identify speakers by role (/v1/understanding) → conversation metrics (code) → scorecard prompt with
the metrics and speaker-labelled lines → structured answer → quotes checked against the transcript →
``Scorecard`` (JSON file + markdown artifact). The metrics are written first, so an LLM failure loses
nothing already computed.
"""
from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from pydantic import Field

from callflows.audio import check_audio
from callflows.errors import InputError, LLMOutputError
from callflows.metrics import ConversationMetrics, conversation_metrics
from callflows.models import SpeakerIdentification, Transcript
from callflows.prompts import load_template, render
from callflows.scorecard import (
    DEFAULT_IDEAL_REP_TALK_SHARE, DEFAULT_ROLES, DEFAULT_RUBRIC, CriterionResult, RubricCriterion, Scorecard,
    SentimentShift, TalkListenAnalysis, answer_model, check_roles, check_rubric, quote_in_transcript, rep_role,
)
from callflows.sentiment import DEFAULT_LLM_MODEL, LLMUsage, speaker_block, speaker_lines
from flows.common import ask_structured, result_dir, subflow
from flows.transcribe import call_options, transcribe_call
from tasks.llm import identify_speakers
from tasks.reports import publish_report

ARTIFACT_KEY = "sales-scorecard"


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


def example_context(roles: list[str], rubric: list[RubricCriterion]) -> dict:
    """Stand-in template inputs with the real shape, to check a template before any request."""
    from callflows.models import Utterance

    utterances = [Utterance(speaker="A", text="Hello, how can I help?", start=0, end=1500, confidence=1.0),
                  Utterance(speaker="B", text="I want a better plan.", start=1700, end=3000, confidence=1.0)]
    metrics = conversation_metrics(utterances, [], 3000)
    return prompt_context(Transcript(id="x", status="completed", utterances=utterances),
                          {"A": roles[0], "B": roles[1]}, roles, metrics, 0.4, rubric)


def prompt_context(transcript: Transcript, mapping: dict[str, str], roles: list[str], metrics: ConversationMetrics,
                   ideal: float, rubric: list[RubricCriterion]) -> dict:
    """Template inputs of prompts/scorecard.j2 (see the template's header)."""
    lines = speaker_lines(transcript)
    rep = rep_role(roles)
    rep_labels = [label for label, role in mapping.items() if role == rep]
    share = sum(metrics.speakers[label].talk_share for label in rep_labels if label in metrics.speakers)
    return {"speaker_lines": speaker_block(lines), "lines": lines, "roles": mapping, "rep_role": rep,
            "customer_role": roles[1], "metrics": metrics.model_dump(), "metrics_table": metrics.to_markdown_table(),
            "rep_talk_share": share, "ideal_rep_talk_share": ideal,
            "rubric": [r.model_dump() for r in rubric]}


@flow(name="sales-scorecard")
def sales_scorecard(
    audio: Annotated[str, Field(description="Local recording path or http(s) URL.")],
    roles: Annotated[list[str], Field(description="Speaker roles; the first is the one coached.")] = DEFAULT_ROLES,
    ideal_rep_talk_share: Annotated[float, Field(gt=0, lt=1, description="Ideal share of speech time for the "
                                                 "first role.")] = DEFAULT_IDEAL_REP_TALK_SHARE,
    rubric: Annotated[list[RubricCriterion], Field(description="Criteria with allowed answers.")] = DEFAULT_RUBRIC,
    prompt_template: Annotated[str, Field(description="Template name in prompts/ or template text.")] = "scorecard",
    model: Annotated[str, Field(description="LLM Gateway model.")] = DEFAULT_LLM_MODEL,
    max_tokens: Annotated[int, Field(ge=256, le=16000)] = 2000,
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0,
    speakers_expected: Annotated[int | None, Field(ge=1, le=10)] = None,
    multichannel: Annotated[bool | None, Field(description="One speaker per channel; default: on for stereo "
                                                "WAV input.")] = None,
    results_dir: Annotated[str, Field(description="Folder for the JSON results.")] = "results",
    poll_timeout_s: Annotated[float, Field(gt=0)] = 3600.0,
) -> Scorecard:
    """Score one sales call.

    Args:
        audio: local recording path or http(s) URL.
        roles: speaker roles for ``/v1/understanding`` speaker identification; the first is the one
            coached (default: Sales Rep, Customer).
        ideal_rep_talk_share: ideal share of speech time for the first role (0-1; default 0.4).
        rubric: criteria, each with a name and its allowed answers; the LLM answers each with a reason
            and a quote that is checked against the transcript.
        prompt_template: a template name in prompts/ (``scorecard``) or the template text.
        model: LLM Gateway model (the local server serves any catalogue name with its local model).
        max_tokens: LLM answer limit in tokens.
        temperature: LLM sampling temperature (0: most deterministic).
        speakers_expected: exact number of speakers, only if certain.
        multichannel: one speaker per channel; default: on for stereo WAV input.
        results_dir: where ``<audio>-<id>/scorecard.json`` and ``metrics.json`` are written.
        poll_timeout_s: seconds to wait for the transcript.

    Raises ``InputError`` (roles, rubric, template, audio, mono file with multichannel; before any
    request; then a transcript without speaker labels or with fewer speakers than roles, before role
    identification), ``APIError``, ``TranscriptFailedError``, ``LLMOutputError`` (after one retry with
    the validation error; ``metrics.json`` is already written).
    """
    logger = get_run_logger()
    roles = check_roles(roles)
    rubric = check_rubric(rubric)
    template = load_template(prompt_template)
    render(template, example_context(roles, rubric))  # before any request
    source = check_audio(audio)
    options = call_options(source, multichannel, speakers_expected)
    transcript = subflow(transcribe_call, audio, options, poll_timeout_s)
    check_speakers(transcript, roles)
    out_dir = result_dir(results_dir, source.name, transcript.id)

    understanding = identify_speakers(transcript.id, SpeakerIdentification(speaker_type="role", known_values=roles))
    mapping = understanding.mapping
    logger.info("Roles: %s", mapping)
    duration_ms = int((transcript.audio_duration or 0) * 1000) or None
    metrics = conversation_metrics(transcript.utterances, transcript.sentiment_analysis_results or [], duration_ms)
    metrics_path = out_dir / "metrics.json"
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(metrics.model_dump_json(indent=2) + "\n", encoding="utf-8")  # kept if the LLM fails

    context = prompt_context(transcript, mapping, roles, metrics, ideal_rep_talk_share, rubric)
    prompt = render(template, context)
    try:
        answer, completion, attempts = ask_structured(prompt, answer_model(rubric), schema_name="sales_scorecard",
                                                      model=model, max_tokens=max_tokens, temperature=temperature)
    except LLMOutputError:
        logger.error("The LLM's scorecard did not validate twice; the metrics are in %s", metrics_path)
        raise

    text = " ".join(u.text for u in transcript.utterances)
    shifts = [SentimentShift(**s.model_dump(), quote_verified=quote_in_transcript(s.quote, text))
              for s in answer.sentiment_shifts]
    criteria = []
    for i, criterion in enumerate(rubric, 1):
        item = getattr(answer, f"criterion_{i}")
        criteria.append(CriterionResult(name=criterion.name, answer=item.answer, reason=item.reason, quote=item.quote,
                                        quote_verified=quote_in_transcript(item.quote, text)))
    usage = completion.usage
    scorecard = Scorecard(
        audio=audio, transcript_id=transcript.id, roles=mapping, metrics=metrics, summary=answer.summary,
        talk_listen=TalkListenAnalysis(rep_role=rep_role(roles), rep_talk_share=context["rep_talk_share"],
                                       ideal_rep_talk_share=ideal_rep_talk_share,
                                       assessment=answer.talk_listen_assessment),
        sentiment_shifts=shifts, coaching_suggestions=answer.coaching_suggestions, criteria=criteria,
        unverified_quotes=sum(not q.quote_verified for q in [*shifts, *criteria]),
        prompt_template=template.name,
        llm=LLMUsage(model=model, served_by=completion.served_by, prompt_tokens=usage and usage.prompt_tokens,
                     completion_tokens=usage and usage.completion_tokens, attempts=attempts))
    publish_report(scorecard, scorecard.to_markdown(), str(out_dir / "scorecard.json"), ARTIFACT_KEY)
    return scorecard
