"""Call segmentation flow (AssemblyAI guide "Segment a phone call using LLM Gateway"), made reliable.

audio → transcribe (cached; same options as the other analyses) → GET .../vtt → numbered caption
lines with speakers → segmentation prompt from prompts/ → structured answer (first and last caption
line per phase) → times computed from the captions → repaired and validated ``PhaseTimeline``
(JSON file + markdown artifact with a table and a bar per phase).
"""
from __future__ import annotations

import time
from typing import Annotated

from prefect import flow, get_run_logger
from pydantic import Field

from callflows.audio import check_audio
from callflows.errors import InputError, LLMOutputError
from callflows.prompts import load_template, render
from callflows.segmentation import (
    DEFAULT_PHASES, OTHER, LineAnswer, Phase, PhaseTimeline, answer_schema_model, assign_speakers,
    call_duration_s, check_phase_names, example_context, parse_vtt, phases_from_lines, prompt_context,
    repair_phases,
)
from callflows.sentiment import DEFAULT_LLM_MODEL, LLMUsage
from flows.common import ask_structured, result_dir, subflow
from flows.transcribe import call_options, transcribe_call
from tasks.reports import publish_report
from tasks.transcription import fetch_vtt

ARTIFACT_KEY = "call-segmentation"
NO_SPEECH = "No speech was transcribed."


@flow(name="call-segmentation")
def call_segmentation(
    audio: Annotated[str, Field(description="Local recording path or http(s) URL.")],
    phases: Annotated[list[str], Field(description="Phase names in call order; anything else is 'Other'.")]
    = DEFAULT_PHASES,
    prompt_template: Annotated[str, Field(description="Template name in prompts/ or the template text.")]
    = "segmentation",
    model: Annotated[str, Field(description="LLM Gateway model.")] = DEFAULT_LLM_MODEL,
    max_tokens: Annotated[int, Field(ge=64, le=16000)] = 1500,
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
        max_tokens: LLM answer limit in tokens.
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
    logger = get_run_logger()
    names = check_phase_names(phases)
    template = load_template(prompt_template)
    render(template, example_context(names))  # syntax, undefined variables, sandbox: before any request
    source = check_audio(audio)
    options = call_options(source, multichannel, speakers_expected)

    started = time.monotonic()
    transcript = subflow(transcribe_call, audio, options, poll_timeout_s)
    timings = {"transcription": time.monotonic() - started}

    started = time.monotonic()
    vtt = fetch_vtt(transcript.id, chars_per_caption)
    timings["captions"] = time.monotonic() - started
    out_dir = result_dir(results_dir, source.name, transcript.id)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "captions.vtt").write_text(vtt, encoding="utf-8")  # kept if the LLM step fails
    captions = assign_speakers(parse_vtt(vtt), transcript.utterances)
    words_end = max((w.end for w in transcript.words or []), default=0)
    duration_s = call_duration_s(transcript.audio_duration, captions, words_end)
    if duration_s <= 0:
        raise InputError(f"{audio!r} has no audio to segment (audio_duration is {transcript.audio_duration!r})")

    timeline_args = dict(audio=audio, transcript_id=transcript.id, audio_duration_s=duration_s, phase_names=names,
                         captions=len(captions), chars_per_caption=chars_per_caption, prompt_template=template.name)
    if not captions:
        logger.warning("No captions: the whole call is %r", OTHER)
        timeline = PhaseTimeline(**timeline_args, phases=[Phase(name=OTHER, start_time=0, end_time=duration_s,
                                                               summary=NO_SPEECH)],
                                 repairs=["no speech: the whole call is Other (the LLM was not asked)"],
                                 timings_s={k: round(v, 2) for k, v in timings.items()})
        publish_report(timeline, timeline.to_markdown(), str(out_dir / "segmentation.json"), ARTIFACT_KEY)
        return timeline

    def to_timeline(answer: LineAnswer) -> tuple[list[Phase], list[str]]:
        raw, line_repairs = phases_from_lines(answer, captions, duration_s)
        repaired, repairs = repair_phases(raw, names, duration_s)
        return repaired, line_repairs + repairs

    prompt = render(template, prompt_context(captions, names))
    started = time.monotonic()
    try:
        (timeline_phases, repairs), completion, attempts = ask_structured(
            prompt, LineAnswer, schema_name="call_phases", model=model, max_tokens=max_tokens,
            temperature=temperature, schema_model=answer_schema_model(names, len(captions)), check=to_timeline)
    except LLMOutputError:
        logger.error("The LLM's phases could not be used twice; the captions are in %s", out_dir / "captions.vtt")
        raise
    timings["llm"] = time.monotonic() - started
    if repairs:
        logger.warning("Repaired the LLM's answer: %s", "; ".join(repairs))
    usage = completion.usage
    timeline = PhaseTimeline(
        **timeline_args, phases=timeline_phases, repairs=repairs,
        llm=LLMUsage(model=model, served_by=completion.served_by, prompt_tokens=usage and usage.prompt_tokens,
                     completion_tokens=usage and usage.completion_tokens, attempts=attempts),
        timings_s={k: round(v, 2) for k, v in timings.items()})
    publish_report(timeline, timeline.to_markdown(), str(out_dir / "segmentation.json"), ARTIFACT_KEY)
    return timeline
