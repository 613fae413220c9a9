"""Call sentiment flow (AssemblyAI cookbook "Analyze the sentiment of a customer call").

audio → inputs checked → transcribe (speaker_labels + sentiment_analysis; multichannel for stereo WAV;
cached) → captions → the ``call-sentiment`` task (``tasks.analyses.analyze_sentiment``): per-sentence
sentiment per speaker and the LLM's answers to the questions → ``SentimentReport`` (JSON file +
markdown artifact).
"""
from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import Field

from callflows.audio import call_options, check_audio
from callflows.llm import DEFAULT_LLM_MODEL
from callflows.prompts import load_template, render
from callflows.sentiment import DEFAULT_QUESTIONS, Question, SentimentReport, check_questions, example_context
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import analyze_sentiment
from tasks.reports import result_dir


@flow(name="call-sentiment")
def call_sentiment(
    audio: Annotated[str, Field(description="Local recording path or http(s) URL.")],
    questions: Annotated[list[Question], Field(description="Questions for the LLM, each with optional "
                                               "context and answer format.")] = DEFAULT_QUESTIONS,
    prompt_template: Annotated[str, Field(description="Template name in prompts/ or the template text.")] = "sentiment",
    model: Annotated[str, Field(description="LLM Gateway model.")] = DEFAULT_LLM_MODEL,
    max_tokens: Annotated[int | None, Field(ge=64, le=16000, description="LLM answer limit; empty: enough for "
                                            "the longest answer the schema allows.")] = None,
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
        max_tokens: LLM answer limit in tokens; None: enough for the longest answer the schema allows.
        temperature: LLM sampling temperature (0: most deterministic).
        speakers_expected: exact number of speakers if known (AssemblyAI: only when certain).
        results_dir: where ``<audio>-<id>/sentiment.json`` is written.
        poll_timeout_s: seconds to wait for the transcript.

    Raises ``InputError`` (audio, questions or template; before any request), ``APIError``,
    ``TranscriptFailedError``, ``LLMOutputError`` (after one retry with the validation error; the
    report without answers is still written as ``sentiment.partial.json``).
    """
    questions = check_questions(questions)
    render(load_template(prompt_template), example_context(questions))  # before any request
    source = check_audio(audio)
    transcript = transcribe(source, call_options(source, None, speakers_expected), poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    return analyze_sentiment(transcript, fetch_captions(transcript, out_dir), questions, audio=audio,
                             out_dir=str(out_dir), prompt_template=prompt_template, model=model,
                             max_tokens=max_tokens, temperature=temperature)
