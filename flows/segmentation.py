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
from flows.parameters import (Audio, MaxTokens, Model, Multichannel, PollTimeout, ResultsDir, SpeakersExpected,
                              Temperature, check_max_tokens, multichannel_choice, optional)
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import segment_call
from tasks.reports import result_dir


@flow(name="call-segmentation")
def call_segmentation(
    audio: Audio,
    phases: Annotated[list[str], Field(description="Phase names in the order they usually happen; Other is added "
                                       "for everything else.")] = DEFAULT_PHASES,
    prompt_template: Annotated[str, Field(description="A template name in prompts/ or the template text.")]
    = "segmentation",
    model: Model = DEFAULT_LLM_MODEL,
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
    chars_per_caption: Annotated[int, Field(ge=0, le=1000, description="Maximum characters per caption, as "
                                            "GET /v2/transcript/{id}/vtt takes it; 0 keeps the API's "
                                            "default.")] = 0,
    speakers_expected: SpeakersExpected = 0,
    multichannel: Multichannel = "auto",
    results_dir: ResultsDir = "results",
    poll_timeout_s: PollTimeout = 3600.0,
) -> PhaseTimeline:
    """Divide one call into phases: ``<results_dir>/<audio name>-<transcript id[:8]>/segmentation.json``
    and ``captions.vtt``. The parameters are described in their ``Field`` (``flows.parameters``);
    multichannel defaults as in the scorecard flow, so the analyses share one cached transcript.

    Returns a ``PhaseTimeline``: phases in time order, contiguous, covering 0 to the audio's duration
    (seconds), with the repairs made to the LLM's answer. A call with no speech gets one ``Other``
    phase and no LLM request.

    Raises ``InputError`` (phases, max_tokens, template, audio; before any request), ``APIError``,
    ``TranscriptFailedError``, ``CaptionsError`` (captions that are not WebVTT), ``LLMOutputError``
    (an answer that cannot be repaired, e.g. no phases, after one retry with the error; keeps the raw
    answer; the captions are already saved as ``captions.vtt``).
    """
    names = check_phase_names(phases)
    max_tokens = check_max_tokens(max_tokens, 64)
    chars_per_caption = optional(chars_per_caption)
    render(load_template(prompt_template), example_context(names))  # before any request
    source = check_audio(audio)
    options = call_options(source, multichannel_choice(multichannel), optional(speakers_expected))
    transcript = transcribe(source, options, poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    return segment_call(transcript, fetch_captions(transcript, out_dir, chars_per_caption), names, audio=audio,
                        out_dir=str(out_dir), chars_per_caption=chars_per_caption, prompt_template=prompt_template,
                        model=model, max_tokens=max_tokens, temperature=temperature)
