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
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import score_call
from tasks.reports import result_dir


@flow(name="sales-scorecard")
def sales_scorecard(
    audio: Annotated[str, Field(description="Local recording path or http(s) URL.")],
    roles: Annotated[list[str], Field(description="Speaker roles; the first is the one coached.")] = DEFAULT_ROLES,
    ideal_rep_talk_share: Annotated[float, Field(gt=0, lt=1, description="Ideal share of speech time for the "
                                                 "first role.")] = DEFAULT_IDEAL_REP_TALK_SHARE,
    rubric: Annotated[list[RubricCriterion], Field(description="Criteria with allowed answers.")] = DEFAULT_RUBRIC,
    prompt_template: Annotated[str, Field(description="Template name in prompts/ or template text.")] = "scorecard",
    model: Annotated[str, Field(description="LLM Gateway model.")] = DEFAULT_LLM_MODEL,
    max_tokens: Annotated[int | None, Field(ge=256, le=16000, description="LLM answer limit; empty: enough for "
                                            "the longest answer the schema allows.")] = None,
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
        max_tokens: LLM answer limit in tokens; None: enough for the longest answer the schema allows.
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
    roles = check_roles(roles)
    rubric = check_rubric(rubric)
    render(load_template(prompt_template), example_context(roles, rubric))  # before any request
    source = check_audio(audio)
    transcript = transcribe(source, call_options(source, multichannel, speakers_expected), poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    return score_call(transcript, fetch_captions(transcript, out_dir), roles, rubric, audio=audio,
                      out_dir=str(out_dir), ideal_rep_talk_share=ideal_rep_talk_share,
                      prompt_template=prompt_template, model=model, max_tokens=max_tokens, temperature=temperature)
