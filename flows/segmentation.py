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
from flows.transcribe import fetch_captions, transcribe
from tasks.analyses import segment_call
from tasks.reports import result_dir


@flow(name="call-segmentation")
def call_segmentation(
    audio: Annotated[str, Field(description="Local recording path or http(s) URL.")],
    phases: Annotated[list[str], Field(description="Phase names in call order; anything else is 'Other'.")]
    = DEFAULT_PHASES,
    prompt_template: Annotated[str, Field(description="Template name in prompts/ or the template text.")]
    = "segmentation",
    model: Annotated[str, Field(description="LLM Gateway model.")] = DEFAULT_LLM_MODEL,
    max_tokens: Annotated[int | None, Field(ge=64, le=16000, description="LLM answer limit; empty: enough for "
                                            "the longest answer the schema allows.")] = None,
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0,
    chars_per_caption: Annotated[int | None, Field(ge=1, le=1000, description="Maximum characters per caption "
                                                   "(GET .../vtt?chars_per_caption); default: the API's.")] = None,
    speakers_expected: Annotated[int | None, Field(ge=1, le=10, description="Exact speaker count, only "
                                                    "if certain.")] = None,
    multichannel: Annotated[bool | None, Field(description="One speaker per channel; default: on for stereo "
                                                "WAV input.")] = None,
    results_dir: Annotated[str, Field(description="Folder for the JSON results.")] = "results",
    poll_timeout_s: Annotated[float, Field(gt=0, description="Seconds to wait for the transcript.")] = 3600.0,
) -> PhaseTimeline:
    """Divide one call into phases.

    Args:
        audio: local recording path or http(s) URL.
        phases: phase names in the order they usually happen (default: the guide's Introduction,
            Complaint, Resolution, Goodbye); ``Other`` is added for everything else.
        prompt_template: a template name in prompts/ (``segmentation``) or the template text.
        model: LLM Gateway model (the local server serves any catalogue name with its local model).
        max_tokens: LLM answer limit in tokens; None: enough for the longest answer the schema allows.
        temperature: LLM sampling temperature (0: most deterministic).
        chars_per_caption: caption length passed to ``GET /v2/transcript/{id}/vtt``; empty: the API's.
        speakers_expected: exact number of speakers, only if certain.
        multichannel: one speaker per channel; default: on for stereo WAV input (as in the scorecard
            flow, so the analyses share one cached transcript).
        results_dir: where ``<audio>-<id>/segmentation.json`` is written.
        poll_timeout_s: seconds to wait for the transcript.

    Returns a ``PhaseTimeline``: phases in time order, contiguous, covering 0 to the audio's duration
    (seconds), with the repairs made to the LLM's answer. A call with no speech gets one ``Other``
    phase and no LLM request.

    Raises ``InputError`` (phases, template, audio; before any request), ``APIError``,
    ``TranscriptFailedError``, ``CaptionsError`` (captions that are not WebVTT), ``LLMOutputError``
    (an answer that cannot be repaired, e.g. no phases, after one retry with the error; keeps the raw
    answer; the captions are already saved as ``captions.vtt``).
    """
    names = check_phase_names(phases)
    render(load_template(prompt_template), example_context(names))  # before any request
    source = check_audio(audio)
    transcript = transcribe(source, call_options(source, multichannel, speakers_expected), poll_timeout_s)
    out_dir = result_dir(results_dir, source.name, transcript.id)
    return segment_call(transcript, fetch_captions(transcript, out_dir, chars_per_caption), names, audio=audio,
                        out_dir=str(out_dir), chars_per_caption=chars_per_caption, prompt_template=prompt_template,
                        model=model, max_tokens=max_tokens, temperature=temperature)
