"""Call segmentation flow (AssemblyAI guide "Segment a phone call using LLM Gateway"), made reliable.

audio → inputs checked → transcribe (cached; same options as the other analyses) → GET .../vtt →
the ``call-segmentation`` task (``tasks.analyses.segment_call``): numbered caption lines with
speakers, structured answer (first caption line per phase), times computed from the captions,
repaired and validated ``PhaseTimeline`` (JSON file + markdown artifact with a bar per phase).
"""
from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import Field

from callflows.audio import call_options, check_audio
from callflows.llm import DEFAULT_LLM_MODEL
from callflows.prompts import load_template, render
from callflows.segmentation import DEFAULT_PHASES, PhaseTimeline, check_phase_names, example_context
from callflows.usage import load_prices, transcription_usage
from flows.parameters import (DEFAULT_PII_POLICIES, MaxTokens, Multichannel, PollTimeout, RedactPiiSub,
                              SpeakersExpected, Temperature, check_max_tokens, multichannel_choice, optional,
                              redaction)
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import segment_call
from tasks.reports import result_dir


@flow(name="call-segmentation")
def call_segmentation(
    audio: str,
    phases: list[str] = DEFAULT_PHASES,
    prompt_template: str = "segmentation",
    model: str = DEFAULT_LLM_MODEL,
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
    chars_per_caption: Annotated[int, Field(ge=0, le=1000)] = 0,
    speakers_expected: SpeakersExpected = 0,
    multichannel: Multichannel = "auto",
    redact_pii: bool = False,
    redact_pii_policies: list[str] = DEFAULT_PII_POLICIES,
    redact_pii_sub: RedactPiiSub = "hash",
    results_dir: str = "results",
    poll_timeout_s: PollTimeout = 3600.0,
) -> PhaseTimeline:
    """Divide one call into phases: ``<results_dir>/<audio name>-<transcript id[:8]>/segmentation.json``
    and ``captions.vtt``. Multichannel defaults as in the scorecard flow, so the analyses share one
    cached transcript.

    Args:
        audio: Local recording path or http(s) URL.
        phases: Phase names in the order they usually happen; Other is added for everything else.
        prompt_template: A template name in prompts/ or the template text.
        model: LLM Gateway model (the local server answers any catalogue name with its own model).
        max_tokens: Answer limit in tokens for each LLM request; 0 (the default) allows the longest
            answer the answer's schema permits.
        temperature: LLM sampling temperature; 0 is the most deterministic.
        chars_per_caption: Maximum characters per caption, as GET /v2/transcript/{id}/vtt takes it; 0
            keeps the API's default.
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

    Returns a ``PhaseTimeline``: phases in time order, contiguous, covering 0 to the audio's duration
    (seconds), with the repairs made to the LLM's answer. A call with no speech gets one ``Other``
    phase and no LLM request.

    Raises ``InputError`` (phases, max_tokens, template, audio, redaction policies, the price table; before any
    request), ``APIError``, ``TranscriptFailedError``, ``CaptionsError`` (captions that are not WebVTT),
    ``LLMOutputError`` (an answer that cannot be repaired, e.g. no phases, after one retry with the error; keeps
    the raw answer; the captions are already saved as ``captions.vtt``).
    """
    names = check_phase_names(phases)
    max_tokens = check_max_tokens(max_tokens, 64)
    chars_per_caption = optional(chars_per_caption)
    render(load_template(prompt_template), example_context(names))  # before any request
    source = check_audio(audio)
    options = call_options(source, multichannel_choice(multichannel), optional(speakers_expected),
                           redaction(redact_pii, redact_pii_policies, redact_pii_sub))
    prices = load_prices()
    transcript, billed = transcribe(source, options, poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    return segment_call(transcript, fetch_captions(transcript, out_dir, chars_per_caption), names, audio=audio,
                        out_dir=str(out_dir), chars_per_caption=chars_per_caption, prompt_template=prompt_template,
                        model=model, max_tokens=max_tokens, temperature=temperature,
                        transcription=transcription_usage(transcript, options, billed, False, prices))
