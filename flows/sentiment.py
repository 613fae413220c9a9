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
from flows.parameters import (Audio, MaxTokens, Model, PollTimeout, ResultsDir, SpeakersExpected, Temperature,
                              check_max_tokens, optional)
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import analyze_sentiment
from tasks.reports import result_dir


@flow(name="call-sentiment")
def call_sentiment(
    audio: Audio,
    questions: Annotated[list[Question], Field(description="Questions for the LLM, each with optional "
                                               "context and answer format.")] = DEFAULT_QUESTIONS,
    prompt_template: Annotated[str, Field(description="A template name in prompts/ or the template text.")]
    = "sentiment",
    model: Model = DEFAULT_LLM_MODEL,
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
    speakers_expected: SpeakersExpected = 0,
    results_dir: ResultsDir = "results",
    poll_timeout_s: PollTimeout = 3600.0,
) -> SentimentReport:
    """Analyse the sentiment of one call: ``<results_dir>/<audio name>-<transcript id[:8]>/sentiment.json``.
    The parameters are described in their ``Field`` (``flows.parameters``).

    Raises ``InputError`` (audio, questions, template or max_tokens; before any request), ``APIError``,
    ``TranscriptFailedError``, ``LLMOutputError`` (after one retry with the validation error; the
    report without answers is still written as ``sentiment.partial.json``).
    """
    questions = check_questions(questions)
    max_tokens = check_max_tokens(max_tokens, 64)
    render(load_template(prompt_template), example_context(questions))  # before any request
    source = check_audio(audio)
    transcript = transcribe(source, call_options(source, None, optional(speakers_expected)), poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    return analyze_sentiment(transcript, fetch_captions(transcript, out_dir), questions, audio=audio,
                             out_dir=str(out_dir), prompt_template=prompt_template, model=model,
                             max_tokens=max_tokens, temperature=temperature)
