"""Call sentiment flow (AssemblyAI cookbook "Analyze the sentiment of a customer call").

audio → transcribe (speaker_labels + sentiment_analysis; multichannel for stereo WAV) → speaker-labelled
lines → questions to the LLM (prompt from prompts/, structured JSON answer) → ``SentimentReport`` (JSON file + markdown artifact).
"""
from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import Field

from callflows.audio import check_audio
from callflows.errors import InputError, LLMOutputError
from callflows.prompts import load_template, render
from callflows.sentiment import (
    DEFAULT_LLM_MODEL, DEFAULT_QUESTIONS, MAX_QUESTIONS, LLMUsage, Question, QuestionAnswer, SentimentReport,
    answers_model, count_sentiments, example_context, prompt_context, sentence_sentiments, speaker_lines,
)
from flows.common import ask_structured, result_dir, subflow
from flows.transcribe import call_options, transcribe_call
from tasks.reports import publish_report

ARTIFACT_KEY = "call-sentiment"


def check_questions(questions: list[Question]) -> list[Question]:
    """Raise ``InputError`` for an empty or too long questions list."""
    if not questions:
        raise InputError("questions is empty: pass at least one {question, context, answer_format} "
                         "or leave the parameter out for the cookbook's five")
    if len(questions) > MAX_QUESTIONS:
        raise InputError(f"questions has {len(questions)} entries; at most {MAX_QUESTIONS} fit one prompt. "
                         f"Split them over several runs")
    return [q if isinstance(q, Question) else Question.model_validate(q) for q in questions]


@flow(name="call-sentiment")
def call_sentiment(
    audio: Annotated[str, Field(description="Local recording path or http(s) URL.")],
    questions: Annotated[list[Question], Field(description="Questions for the LLM, each with optional "
                                               "context and answer format.")] = DEFAULT_QUESTIONS,
    prompt_template: Annotated[str, Field(description="Template name in prompts/ or the template text.")] = "sentiment",
    model: Annotated[str, Field(description="LLM Gateway model.")] = DEFAULT_LLM_MODEL,
    max_tokens: Annotated[int, Field(ge=64, le=16000)] = 2000,
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0,
    speakers_expected: Annotated[int | None, Field(ge=1, le=10, description="Exact speaker count, only "
                                                    "if certain.")] = None,
    results_dir: Annotated[str, Field(description="Folder for the JSON results.")] = "results",
    poll_timeout_s: Annotated[float, Field(gt=0, description="Seconds to wait for the transcript.")] = 3600.0,
) -> SentimentReport:
    """Analyse the sentiment of one call.

    Args:
        audio: local recording path or http(s) URL.
        questions: questions with optional context and answer format.
        prompt_template: a template name in prompts/ (``sentiment``) or the template text.
        model: LLM Gateway model (the local server serves any catalogue name with its local model).
        max_tokens: LLM answer limit in tokens.
        temperature: LLM sampling temperature (0: most deterministic).
        speakers_expected: exact number of speakers if known (AssemblyAI: only when certain).
        results_dir: where ``<audio>-<id>/sentiment.json`` is written.
        poll_timeout_s: seconds to wait for the transcript.

    Raises ``InputError`` (audio, questions or template; before any request), ``APIError``,
    ``TranscriptFailedError``, ``LLMOutputError`` (after one retry with the validation error; the
    report without answers is still written as ``sentiment.partial.json``).
    """
    questions = check_questions(questions)
    template = load_template(prompt_template)
    render(template, example_context(questions))  # syntax, undefined variables, sandbox: before any request
    source = check_audio(audio)

    options = call_options(source, None, speakers_expected)  # same transcript as the other analyses
    transcript = subflow(transcribe_call, audio, options, poll_timeout_s)

    sentences = sentence_sentiments(transcript)
    counts, per_speaker = count_sentiments(sentences)
    lines = speaker_lines(transcript)
    prompt = render(template, prompt_context(lines, questions, sentences))
    out_dir = result_dir(results_dir, source.name, transcript.id)
    report = SentimentReport(audio=audio, transcript_id=transcript.id, audio_duration_s=transcript.audio_duration,
                             sentences=sentences, counts=counts, counts_by_speaker=per_speaker, answers=[],
                             prompt_template=template.name, llm=LLMUsage(model=model))

    try:
        parsed, completion, attempts = ask_structured(prompt, answers_model(len(questions)),
                                                      schema_name="sentiment_answers", model=model,
                                                      max_tokens=max_tokens, temperature=temperature)
    except LLMOutputError:
        publish_report(report, report.to_markdown(), str(out_dir / "sentiment.partial.json"), ARTIFACT_KEY)
        raise

    report.answers = [QuestionAnswer(**q.model_dump(), answer=getattr(parsed, f"answer_{i}"))
                      for i, q in enumerate(questions, 1)]
    usage = completion.usage
    report.llm = LLMUsage(model=model, served_by=completion.served_by, prompt_tokens=usage and usage.prompt_tokens,
                          completion_tokens=usage and usage.completion_tokens, attempts=attempts)
    publish_report(report, report.to_markdown(), str(out_dir / "sentiment.json"), ARTIFACT_KEY)
    return report
