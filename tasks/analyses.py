"""The three analyses as tasks on a completed transcript: each takes the ``Transcript`` and its
captions (``callflows.captions.transcript_captions``), asks the LLM Gateway, and writes its result file
and markdown artifact.

A standalone analysis flow runs one of them after transcribing; analyze-call submits all three on one
transcript. Every prompt starts with the same transcript block (``callflows.captions``), so the second
and third analyses of a call reuse the LLM's evaluated prefix.

``max_tokens`` None: enough for the longest answer the schema allows (``tasks.llm.ask_structured``).
``transcription`` (a standalone flow's): the result's ``usage`` is estimated from it and the task's LLM
requests (``callflows.usage``); analyze-call passes None and records the usage of all three itself.
Each raises ``LLMOutputError`` after one retry with the validation error (what was computed before the
LLM request is already written), and whatever ``chat_completion`` / ``identify_speakers`` raise once
their retries run out (``APIError``).
"""
from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from callflows.captions import Caption
from callflows.errors import InputError, LLMOutputError
from callflows.llm import LLMUsage
from callflows.metrics import conversation_metrics
from callflows.models import SpeakerIdentification, Transcript
from callflows.prompts import PromptTemplate, load_template, render
from callflows.provenance import Provenance
from callflows.scorecard import (RubricCriterion, Scorecard, answer_model, answer_problems, check_speakers,
                                 scorecard_of)
from callflows.scorecard import prompt_context as scorecard_context
from callflows.segmentation import (OTHER, LineAnswer, Phase, PhaseTimeline, answer_schema_model, call_duration_s,
                                    phases_from_lines, repair_phases)
from callflows.segmentation import prompt_context as segmentation_context
from callflows.sentiment import ROLES as SENTIMENT_ROLES
from callflows.sentiment import (Question, SentimentReport, answer_problems as sentiment_problems, answers_model,
                                 count_sentiments, needs_roles, question_answers, sentence_sentiments)
from callflows.sentiment import prompt_context as sentiment_context
from callflows.usage import TranscriptionUsage, estimate
from tasks.llm import ask_structured, identify_speakers
from tasks.reports import publish_report, publish_result

SENTIMENT_ARTIFACT = "call-sentiment"
SCORECARD_ARTIFACT = "sales-scorecard"
SEGMENTATION_ARTIFACT = "call-segmentation"
NO_SPEECH = "No speech was transcribed."


def _provenance(analysis: str, template: PromptTemplate, parameters: dict, *, model: str, max_tokens: int | None,
                temperature: float) -> Provenance:
    """The result's provenance, with the id of the flow run this task runs in."""
    return Provenance.of(analysis, template, parameters, model=model, max_tokens=max_tokens, temperature=temperature,
                         flow_run_id=flow_run.id)


@task(name="call-sentiment", cache_policy=NO_CACHE)
def analyze_sentiment(transcript: Transcript, captions: list[Caption], questions: list[Question], *,
                      audio: str, out_dir: str, prompt_template: str = "sentiment", model: str, max_tokens: int | None,
                      temperature: float, roles: list[str] = SENTIMENT_ROLES,
                      transcription: TranscriptionUsage | None = None) -> SentimentReport:
    """Per-sentence sentiment (``sentiment_analysis_results``) counted per speaker, and the LLM's answers
    to ``questions`` (AssemblyAI cookbook "Analyze the sentiment of a customer call"). When a question
    asks for a quote of one side, the speakers are first identified by ``roles`` (agent side first;
    ``POST /v1/understanding``) and the quote is checked against that side's words; an answer with a
    misattributed or missing quote or a reason that only repeats the answer is sent back once
    (``callflows.sentiment.answer_problems``). Writes ``<out_dir>/sentiment.json``; when the LLM's
    answer is unusable twice, ``sentiment.partial.json`` (sentences and counts, no answers) before
    raising ``LLMOutputError``."""
    template = load_template(prompt_template)
    sentences = sentence_sentiments(transcript)
    counts, per_speaker = count_sentiments(sentences)
    mapping: dict[str, str] = {}
    if needs_roles(questions) and transcript.utterances:
        mapping = identify_speakers(transcript.id, SpeakerIdentification(speaker_type="role",
                                                                         known_values=roles)).mapping
    report = SentimentReport(audio=audio, transcript_id=transcript.id, audio_duration_s=transcript.audio_duration,
                             sentences=sentences, counts=counts, counts_by_speaker=per_speaker, answers=[],
                             roles=mapping, prompt_template=template.name, llm=LLMUsage(model=model),
                             provenance=_provenance("sentiment", template, {"questions": questions, "roles": roles},
                                                    model=model, max_tokens=max_tokens, temperature=temperature))
    prompt = render(template, sentiment_context(captions, questions, sentences, mapping, roles))
    utterances = transcript.utterances or []
    try:
        parsed, report.llm = ask_structured(
            prompt, answers_model(questions), schema_name="sentiment_answers", model=model, max_tokens=max_tokens,
            temperature=temperature, review=lambda a: sentiment_problems(a, questions, utterances, mapping, roles))
    except LLMOutputError:
        publish_report(report, report.to_markdown(), str(Path(out_dir) / "sentiment.partial.json"),
                       SENTIMENT_ARTIFACT)
        raise
    report = report.model_copy(update=question_answers(parsed, questions, utterances, mapping, roles))
    if transcription:
        report.usage = estimate(transcription, {"sentiment": report.llm})
    publish_result(report, report.to_markdown(), out_dir, "sentiment.json", SENTIMENT_ARTIFACT)
    return report


@task(name="sales-scorecard", cache_policy=NO_CACHE)
def score_call(transcript: Transcript, captions: list[Caption], roles: list[str], rubric: list[RubricCriterion], *,
               audio: str, out_dir: str, ideal_rep_talk_share: float, prompt_template: str = "scorecard",
               model: str, max_tokens: int | None, temperature: float,
               transcription: TranscriptionUsage | None = None) -> Scorecard:
    """AssemblyAI's sales-call example: speakers identified by role (``POST /v1/understanding``),
    conversation metrics computed from the utterances (written first, as ``<out_dir>/metrics.json``),
    then the LLM's scorecard (``scorecard.json``), every quote checked against the words of the speaker
    its claim is about; an answer with misattributed or missing quotes or repeats is sent back once
    (``callflows.scorecard.answer_problems``).

    Raises ``InputError`` for a transcript without speaker labels or with fewer speakers than
    ``roles`` (before any request)."""
    logger = get_run_logger()
    template = load_template(prompt_template)
    check_speakers(transcript, roles)
    understanding = identify_speakers(transcript.id, SpeakerIdentification(speaker_type="role", known_values=roles))
    mapping = understanding.mapping
    logger.info("Roles: %s", mapping)
    duration_ms = int((transcript.audio_duration or 0) * 1000) or None
    metrics = conversation_metrics(transcript.utterances, transcript.sentiment_analysis_results or [], duration_ms)
    metrics_path = Path(out_dir) / "metrics.json"
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(metrics.model_dump_json(indent=2) + "\n", encoding="utf-8")  # kept if the LLM fails

    context = scorecard_context(captions, mapping, roles, metrics, ideal_rep_talk_share, rubric)
    try:
        answer, usage = ask_structured(
            render(template, context), answer_model(rubric), schema_name="sales_scorecard", model=model,
            max_tokens=max_tokens, temperature=temperature,
            review=lambda a: answer_problems(a, rubric, transcript.utterances, mapping, roles))
    except LLMOutputError:
        logger.error("The LLM's scorecard did not validate twice; the metrics are in %s", metrics_path)
        raise
    scorecard = scorecard_of(answer, rubric, transcript, mapping, roles, metrics, context["rep_talk_share"],
                             ideal_rep_talk_share, audio=audio, transcript_id=transcript.id,
                             prompt_template=template.name, llm=usage,
                             provenance=_provenance("scorecard", template,
                                                    {"roles": roles, "rubric": rubric,
                                                     "ideal_rep_talk_share": ideal_rep_talk_share},
                                                    model=model, max_tokens=max_tokens, temperature=temperature))
    if transcription:
        scorecard.usage = estimate(transcription, {"scorecard": scorecard.llm})
    publish_result(scorecard, scorecard.to_markdown(), out_dir, "scorecard.json", SCORECARD_ARTIFACT)
    return scorecard


@task(name="call-segmentation", cache_policy=NO_CACHE)
def segment_call(transcript: Transcript, captions: list[Caption], names: list[str], *, audio: str, out_dir: str,
                 chars_per_caption: int | None = None, prompt_template: str = "segmentation", model: str,
                 max_tokens: int | None, temperature: float,
                 transcription: TranscriptionUsage | None = None) -> PhaseTimeline:
    """AssemblyAI's guide "Segment a phone call using LLM Gateway", made reliable: the LLM names the
    caption line where each phase starts; times (s) come from the captions; the answer is repaired
    into a complete timeline (``callflows.segmentation``). Writes ``<out_dir>/segmentation.json``. A
    call with no speech gets one ``Other`` phase and no LLM request.

    Raises ``InputError`` for a transcript with no audio duration and no captions."""
    logger = get_run_logger()
    template = load_template(prompt_template)
    words_end = max((w.end for w in transcript.words or []), default=0)
    duration_s = call_duration_s(transcript.audio_duration, captions, words_end)
    if duration_s <= 0:
        raise InputError(f"{audio!r} has no audio to segment (audio_duration is {transcript.audio_duration!r})")
    timeline_args = dict(audio=audio, transcript_id=transcript.id, audio_duration_s=duration_s, phase_names=names,
                         captions=len(captions), chars_per_caption=chars_per_caption, prompt_template=template.name,
                         provenance=_provenance("segmentation", template,
                                                {"phases": names, "chars_per_caption": chars_per_caption},
                                                model=model, max_tokens=max_tokens, temperature=temperature))
    if not captions:
        logger.warning("No captions: the whole call is %r", OTHER)
        timeline = PhaseTimeline(**timeline_args, phases=[Phase(name=OTHER, start_time=0, end_time=duration_s,
                                                               summary=NO_SPEECH)],
                                 repairs=["no speech: the whole call is Other (the LLM was not asked)"])
    else:
        def to_timeline(answer: LineAnswer) -> tuple[list[Phase], list[str]]:
            raw, line_repairs = phases_from_lines(answer, captions, duration_s)
            repaired, repairs = repair_phases(raw, names, duration_s)
            return repaired, line_repairs + repairs

        started = time.monotonic()
        try:
            (phases, repairs), usage = ask_structured(
                render(template, segmentation_context(captions, names)), LineAnswer, schema_name="call_phases",
                model=model, max_tokens=max_tokens, temperature=temperature,
                schema_model=answer_schema_model(names, len(captions)), check=to_timeline)
        except LLMOutputError:
            logger.error("The LLM's phases could not be used twice; the captions are in %s",
                         Path(out_dir) / "captions.vtt")
            raise
        if repairs:
            logger.warning("Repaired the LLM's answer: %s", "; ".join(repairs))
        timeline = PhaseTimeline(**timeline_args, phases=phases, repairs=repairs, llm=usage,
                                 timings_s={"llm": round(time.monotonic() - started, 2)})
    if transcription:
        timeline.usage = estimate(transcription, {"segmentation": timeline.llm} if timeline.llm else {})
    publish_result(timeline, timeline.to_markdown(), out_dir, "segmentation.json", SEGMENTATION_ARTIFACT)
    return timeline
