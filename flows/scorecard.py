"""Sales coaching scorecard flow (AssemblyAI's sales-call example, made checkable).

audio → inputs checked → transcribe (speaker_labels + sentiment_analysis, or multichannel for stereo;
cached) → captions → the ``sales-scorecard`` task (``tasks.analyses.score_call``): speakers identified
by role (/v1/understanding), conversation metrics (code, written first), the scorecard prompt, quotes
checked against the transcript → ``Scorecard`` (JSON file + markdown artifact).
"""
from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import Field

from callflows.audio import call_options, check_audio
from callflows.llm import DEFAULT_LLM_MODEL
from callflows.prompts import load_template, render
from callflows.scorecard import (DEFAULT_IDEAL_REP_TALK_SHARE, DEFAULT_ROLES, DEFAULT_RUBRIC, RubricCriterion,
                                 Scorecard, check_roles, check_rubric, example_context)
from flows.parameters import (Audio, MaxTokens, Model, Multichannel, PollTimeout, ResultsDir, SpeakersExpected,
                              Temperature, check_max_tokens, multichannel_choice, optional)
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import score_call
from tasks.reports import result_dir


@flow(name="sales-scorecard")
def sales_scorecard(
    audio: Audio,
    roles: Annotated[list[str], Field(description="Speaker roles; the first is the one coached.")] = DEFAULT_ROLES,
    ideal_rep_talk_share: Annotated[float, Field(gt=0, lt=1, description="Ideal share of speech time for the "
                                                 "first role, between 0 and 1.")] = DEFAULT_IDEAL_REP_TALK_SHARE,
    rubric: Annotated[list[RubricCriterion], Field(description="Criteria, each with its allowed answers; the LLM "
                                                   "answers each with a reason and a quote checked against the "
                                                   "transcript.")] = DEFAULT_RUBRIC,
    prompt_template: Annotated[str, Field(description="A template name in prompts/ or the template text.")]
    = "scorecard",
    model: Model = DEFAULT_LLM_MODEL,
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
    speakers_expected: SpeakersExpected = 0,
    multichannel: Multichannel = "auto",
    results_dir: ResultsDir = "results",
    poll_timeout_s: PollTimeout = 3600.0,
) -> Scorecard:
    """Score one sales call: ``<results_dir>/<audio name>-<transcript id[:8]>/scorecard.json`` and
    ``metrics.json``. Speaker roles come from ``POST /v1/understanding`` speaker identification. The
    parameters are described in their ``Field`` (``flows.parameters``).

    Raises ``InputError`` (roles, rubric, max_tokens, template, audio, mono file with multichannel; before any
    request; then a transcript without speaker labels or with fewer speakers than roles, before role
    identification), ``APIError``, ``TranscriptFailedError``, ``LLMOutputError`` (after one retry with
    the validation error; ``metrics.json`` is already written).
    """
    roles = check_roles(roles)
    rubric = check_rubric(rubric)
    max_tokens = check_max_tokens(max_tokens, 256)
    render(load_template(prompt_template), example_context(roles, rubric))  # before any request
    source = check_audio(audio)
    options = call_options(source, multichannel_choice(multichannel), optional(speakers_expected))
    transcript = transcribe(source, options, poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    return score_call(transcript, fetch_captions(transcript, out_dir), roles, rubric, audio=audio,
                      out_dir=str(out_dir), ideal_rep_talk_share=ideal_rep_talk_share,
                      prompt_template=prompt_template, model=model, max_tokens=max_tokens, temperature=temperature)
