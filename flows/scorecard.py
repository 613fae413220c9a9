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
from callflows.usage import load_prices, transcription_usage
from flows.parameters import (DEFAULT_PII_POLICIES, MaxTokens, Multichannel, PollTimeout, RedactPiiSub,
                              SpeakersExpected, Temperature, check_max_tokens, multichannel_choice, optional,
                              redaction)
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import score_call
from tasks.reports import result_dir


@flow(name="sales-scorecard")
def sales_scorecard(
    audio: str,
    roles: list[str] = DEFAULT_ROLES,
    ideal_rep_talk_share: Annotated[float, Field(gt=0, lt=1)] = DEFAULT_IDEAL_REP_TALK_SHARE,
    rubric: list[RubricCriterion] = DEFAULT_RUBRIC,
    prompt_template: str = "scorecard",
    model: str = DEFAULT_LLM_MODEL,
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
    speakers_expected: SpeakersExpected = 0,
    multichannel: Multichannel = "auto",
    redact_pii: bool = False,
    redact_pii_policies: list[str] = DEFAULT_PII_POLICIES,
    redact_pii_sub: RedactPiiSub = "hash",
    results_dir: str = "results",
    poll_timeout_s: PollTimeout = 3600.0,
) -> Scorecard:
    """Score one sales call: ``<results_dir>/<audio name>-<transcript id[:8]>/scorecard.json`` and
    ``metrics.json``. Speaker roles come from ``POST /v1/understanding`` speaker identification.

    Args:
        audio: Local recording path or http(s) URL.
        roles: Speaker roles; the first is the one coached.
        ideal_rep_talk_share: Ideal share of speech time for the first role, between 0 and 1.
        rubric: Criteria, each with its allowed answers; the LLM answers each with a reason and a quote
            checked against the transcript.
        prompt_template: A template name in prompts/ or the template text.
        model: LLM Gateway model (the local server answers any catalogue name with its own model).
        max_tokens: Answer limit in tokens for each LLM request; 0 (the default) allows the longest
            answer the answer's schema permits.
        temperature: LLM sampling temperature; 0 is the most deterministic.
        speakers_expected: Exact number of speakers, only if certain; 0 lets the speech model decide.
        multichannel: One speaker per audio channel: auto turns it on for stereo WAV files.
        results_dir: Folder for the results: each call's files go in a folder named after the recording
            and its transcript id.
        redact_pii: Redact personal data in the transcript (AssemblyAI's PII redaction): the analysis, its
            files, artifact and prompt then see only the redacted text.
        redact_pii_policies: What to redact: AssemblyAI's policy names (the local server supports the
            default six).
        redact_pii_sub: Replace redacted text with # marks (hash) or the policy's name (entity_name).
        poll_timeout_s: Seconds to wait for the transcript to complete.

    Raises ``InputError`` (roles, rubric, max_tokens, template, audio, mono file with multichannel, redaction
    policies, the price table; before any request; then a transcript without speaker labels or with fewer
    speakers than roles, before role identification), ``APIError``, ``TranscriptFailedError``,
    ``LLMOutputError`` (after one retry with the validation error; ``metrics.json`` is already written).
    """
    roles = check_roles(roles)
    rubric = check_rubric(rubric)
    max_tokens = check_max_tokens(max_tokens, 256)
    render(load_template(prompt_template), example_context(roles, rubric))  # before any request
    source = check_audio(audio)
    options = call_options(source, multichannel_choice(multichannel), optional(speakers_expected),
                           redaction(redact_pii, redact_pii_policies, redact_pii_sub))
    prices = load_prices()
    transcript, billed = transcribe(source, options, poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    return score_call(transcript, fetch_captions(transcript, out_dir), roles, rubric, audio=audio,
                      out_dir=str(out_dir), ideal_rep_talk_share=ideal_rep_talk_share,
                      prompt_template=prompt_template, model=model, max_tokens=max_tokens, temperature=temperature,
                      transcription=transcription_usage(transcript, options, billed, True, prices))
