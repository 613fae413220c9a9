"""Call segmentation: the VTT parser, the timeline validator and repairer, and the flow end to end
through the Prefect engine and the real local server."""
import json
import math

import pytest

from callflows.errors import InputError, LLMOutputError, PromptError
from callflows.captions import Caption, CaptionsError, assign_speakers, parse_vtt
from callflows.markdown import cell
from callflows.segmentation import (
    DEFAULT_PHASES, NOT_ASSIGNED, OTHER, LineAnswer, LinePhase, Phase, PhaseTimeline, RawPhase, TimelineError,
    answer_schema_model, call_duration_s, check_phase_names, phases_from_lines, repair_phases, timeline_problems,
)
from callflows.models import Utterance
from conftest import run_artifact
from stub_http import Canned, StubServer

NAMES = DEFAULT_PHASES + [OTHER]


# --------------------------------------------------------------------------- VTT parser

def test_vtt_without_hours_and_without_blank_lines_as_in_the_api_spec():
    """The spec's example: ``MM:SS.mmm`` and no blank lines; a cue's text runs to the next timestamp."""
    captions = parse_vtt("WEBVTT\n00:12.340 --> 00:16.220\nLast year I showed these two slides said that demonstrate\n"
                         "00:16.300 --> 00:20.010\nthat the Arctic ice cap\nwhich for most")
    assert [(c.line, c.start, c.end) for c in captions] == [(1, 12340, 16220), (2, 16300, 20010)]
    assert captions[0].text == "Last year I showed these two slides said that demonstrate"
    assert captions[1].text == "that the Arctic ice cap which for most" and captions[1].speaker is None


def test_vtt_with_hours_identifiers_settings_notes_and_voice_tags():
    text = ("\ufeffWEBVTT - call\r\n\r\nNOTE made by hand\r\n00:00.000 --> 00:01.000\r\nnot a cue\r\n\r\n"
            "intro\r\n00:59:58.500 --> 01:00:01.250 align:start position:10%\r\n<v Agent>Hello <b>there</b></v>\r\n\r\n"
            "2\r\n1:02:03.4 --> 1:02:04.050\r\n<v.loud Caller Name>Hi.\r\n\r\n00:00.000 --> 00:00.500\r\n\r\n")
    captions = parse_vtt(text)
    assert [(c.start, c.end) for c in captions] == [(3_598_500, 3_601_250), (3_723_400, 3_724_050)]
    assert [(c.text, c.speaker) for c in captions] == [("Hello there", "Agent"), ("Hi.", "Caller Name")]
    assert [c.line for c in captions] == [1, 2]  # the NOTE block and the empty cue are not captions


@pytest.mark.parametrize("text, match", [
    ("1\n00:00:01,000 --> 00:00:02,000\nThis is SRT\n", "not WebVTT"),
    ("", "not WebVTT"),
    ("WEBVTT\n\n00:05.000 --> 00:04.000\nbackwards\n", "ends before it starts"),
])
def test_text_that_is_not_valid_vtt_is_refused(text, match):
    with pytest.raises(CaptionsError, match=match):
        parse_vtt(text)


def test_header_only_vtt_has_no_captions():
    assert parse_vtt("WEBVTT\n\n") == []


def test_captions_get_the_speaker_of_the_utterance_they_overlap_most():
    captions = [Caption(line=1, start=0, end=2000, text="a"), Caption(line=2, start=1800, end=5000, text="b"),
                Caption(line=3, start=9000, end=9500, text="c", speaker="Z")]
    utterances = [Utterance(speaker="A", text="a", start=0, end=2100, confidence=1),
                  Utterance(speaker="B", text="b", start=2100, end=5000, confidence=1)]
    assert [c.speaker for c in assign_speakers(captions, utterances)] == ["A", "B", "Z"]
    assert [c.speaker for c in assign_speakers(captions, None)] == [None, None, "Z"]


def test_call_duration_covers_speech_past_the_whole_seconds_the_api_reports():
    captions = [Caption(line=1, start=0, end=70_400, text="x")]
    assert call_duration_s(70, captions) == 70.4
    assert call_duration_s(75, captions) == 75.0
    assert call_duration_s(None, [], words_end_ms=1234) == 1.234


# --------------------------------------------------------------------------- phase names

def test_phase_names_get_other_appended_once():
    assert check_phase_names(["Greeting", "Request"]) == ["Greeting", "Request", OTHER]
    assert check_phase_names(["Greeting", "other"]) == ["Greeting", "other"]


@pytest.mark.parametrize("phases, match", [
    ([], "phases is empty"), (["Intro", " "], "1 to 60 characters"), (["Intro", "intro"], "more than once"),
    ([f"p{i}" for i in range(13)], "at most 12"),
])
def test_bad_phase_names_are_refused(phases, match):
    with pytest.raises(InputError, match=match):
        check_phase_names(phases)


def test_answer_schema_restricts_names_and_line_numbers():
    schema = answer_schema_model(NAMES, 24).model_json_schema()
    item = schema["$defs"]["Phase"]
    assert item["properties"]["name"]["enum"] == NAMES
    assert item["properties"]["first_line"]["maximum"] == 24 and item["properties"]["first_line"]["minimum"] == 1
    assert item["properties"]["first_words"]["maxLength"] == 40 and item["properties"]["summary"]["maxLength"] == 200
    assert schema["properties"]["phases"]["minItems"] == 1
    assert schema["properties"]["phases"]["maxItems"] == len(NAMES) * 3
    # no more phases than caption lines: each starts on its own line
    assert answer_schema_model(NAMES, 2).model_json_schema()["properties"]["phases"]["maxItems"] == 2


# --------------------------------------------------------------------------- validator and repairer

def _raw(name, start, end, summary="s"):
    return RawPhase(name=name, start_time=start, end_time=end, summary=summary)


def _check(phases, repairs, duration=60.0):
    assert timeline_problems(phases, NAMES, duration) == [], phases
    PhaseTimeline(audio="a.wav", transcript_id="t", audio_duration_s=duration, phase_names=NAMES, phases=phases,
                  repairs=repairs)  # validates
    return [(p.name, p.start_time, p.end_time) for p in phases]


def test_a_valid_answer_is_kept_as_it_is():
    raw = [_raw("Introduction", 0, 10), _raw("Complaint", 10, 30), _raw("Resolution", 30, 50), _raw("Goodbye", 50, 60)]
    phases, repairs = repair_phases(raw, NAMES, 60)
    assert repairs == []
    assert _check(phases, repairs) == [("Introduction", 0, 10), ("Complaint", 10, 30), ("Resolution", 30, 50),
                                       ("Goodbye", 50, 60)]


def test_gaps_are_filled_with_other_and_short_ones_closed():
    raw = [_raw("Introduction", 0.4, 10), _raw("Complaint", 10.5, 30), _raw("Goodbye", 45, 52)]
    phases, repairs = repair_phases(raw, NAMES, 60)
    assert _check(phases, repairs) == [("Introduction", 0, 10.5), ("Complaint", 10.5, 30), (OTHER, 30, 45),
                                       ("Goodbye", 45, 52), (OTHER, 52, 60)]
    assert phases[2].summary == NOT_ASSIGNED
    assert any("gap 30.0-45.0 s filled" in r for r in repairs) and any("at the end filled" in r for r in repairs)
    assert any("gap 0-0.4 s closed" in r for r in repairs) and any("gap 10.0-10.5 s closed" in r for r in repairs)


def test_overlaps_are_clamped_and_a_phase_inside_another_is_dropped():
    raw = [_raw("Introduction", 0, 15), _raw("Complaint", 12, 40), _raw("Other", 20, 30), _raw("Goodbye", 40, 60)]
    phases, repairs = repair_phases(raw, NAMES, 60)
    assert _check(phases, repairs) == [("Introduction", 0, 15), ("Complaint", 15, 40), ("Goodbye", 40, 60)]
    assert any("overlapped" in r and "now starts at 15.0 s" in r for r in repairs)
    assert any("lies inside the previous phase; dropped" in r for r in repairs)


def test_unknown_names_become_other_and_case_is_corrected():
    raw = [_raw("  introduction ", 0, 20), _raw("Small talk", 20, 40), _raw("GOODBYE", 40, 60)]
    phases, repairs = repair_phases(raw, NAMES, 60)
    assert _check(phases, repairs) == [("Introduction", 0, 20), (OTHER, 20, 40), ("Goodbye", 40, 60)]
    assert any("'Small talk' is not one of the phases" in r for r in repairs)
    assert any("renamed 'GOODBYE' to 'Goodbye'" in r for r in repairs)


def test_times_past_the_end_are_clamped_and_phases_after_it_dropped():
    raw = [_raw("Introduction", 0, 30), _raw("Resolution", 30, 95.5), _raw("Goodbye", 80, 120)]
    phases, repairs = repair_phases(raw, NAMES, 60)
    assert _check(phases, repairs) == [("Introduction", 0, 30), ("Resolution", 30, 60)]
    assert any("95.5 s is past the end of the call (60.0 s); clamped" in r for r in repairs)
    assert any("starts at 80.0 s, at or after the end" in r for r in repairs)


def test_order_is_restored_reversed_times_swapped_and_same_names_merged():
    raw = [_raw("Goodbye", 60, 45, "bye"), _raw("Introduction", 0, 20, "hi"), _raw("Complaint", 20, 30, "a"),
           _raw("Complaint", 30, 45, "b"), _raw("Other", -3, 0)]
    phases, repairs = repair_phases(raw, NAMES, 60)
    assert _check(phases, repairs) == [("Introduction", 0, 20), ("Complaint", 20, 45), ("Goodbye", 45, 60)]
    assert phases[1].summary == "a b"
    assert any("not in time order" in r for r in repairs) and any("swapped" in r for r in repairs)
    assert any("merged" in r for r in repairs) and any("has no length" in r for r in repairs)


@pytest.mark.parametrize("raw, match", [
    ([], "no phases"),
    ([_raw("Introduction", 70, 80)], "no phase of the answer lies within the call"),
    ([_raw("Introduction", math.nan, 10)], "no phase of the answer lies within the call"),
])
def test_answers_that_cannot_be_repaired_raise(raw, match):
    with pytest.raises(TimelineError, match=match):
        repair_phases(raw, NAMES, 60)


def test_timeline_model_refuses_a_broken_timeline():
    phases = [Phase(name="Introduction", start_time=0, end_time=10), Phase(name="Complaint", start_time=12, end_time=50)]
    with pytest.raises(ValueError, match=r"starts at 12.0 s, not where the previous one ends \(10.0 s\).*"
                                         r"not at the end of the call \(60.0 s\)"):
        PhaseTimeline(audio="a", transcript_id="t", audio_duration_s=60, phase_names=NAMES, phases=phases)
    with pytest.raises(ValueError, match="no phases"):
        PhaseTimeline(audio="a", transcript_id="t", audio_duration_s=60, phase_names=NAMES, phases=[])


CAPTIONS = [Caption(line=i + 1, start=1000 + i * 5000, end=4500 + i * 5000, text=f"Caption number {i + 1}, said.")
            for i in range(10)]


def test_phase_starts_become_contiguous_times_from_the_captions():
    """Line 1's phase starts at 0, each phase ends where the next one's first caption starts, the last
    ends at the duration."""
    answer = LineAnswer(phases=[LinePhase(name="Introduction", first_line=1, first_words="Caption number 1"),
                                LinePhase(name="Complaint", first_line=3, first_words="caption number 3,"),
                                LinePhase(name="Goodbye", first_line=8)])
    raw, line_repairs = phases_from_lines(answer, CAPTIONS, 52.0)
    phases, repairs = repair_phases(raw, NAMES, 52.0)
    assert line_repairs == repairs == []
    assert _check(phases, repairs, 52.0) == [("Introduction", 0, 11), ("Complaint", 11, 36), ("Goodbye", 36, 52)]
    assert [(p.first_line, p.last_line) for p in phases] == [(1, 2), (3, 7), (8, 10)]


def test_copied_first_words_win_over_a_miscounted_line_number():
    """Small models miscount lines but copy text: the line holding the words is used (the nearest
    one to first_line when several hold them), and the correction is listed."""
    answer = LineAnswer(phases=[LinePhase(name="Introduction", first_line=2, first_words="CAPTION number 1."),
                                LinePhase(name="Complaint", first_line=5, first_words="number 4, said"),
                                LinePhase(name="Goodbye", first_line=9, first_words="Caption number")])
    raw, line_repairs = phases_from_lines(answer, CAPTIONS, 52.0)
    assert [p.first_line for p in raw] == [1, 4, 9]
    assert any("are on line 1, not on first_line 2" in r for r in line_repairs)
    assert any("are on line 4, not on first_line 5" in r for r in line_repairs)
    assert len(line_repairs) == 2


def test_line_answers_out_of_range_out_of_order_or_on_one_line_are_repaired():
    answer = LineAnswer(phases=[LinePhase(name="Goodbye", first_line=40, first_words="not in the call"),
                                LinePhase(name="Complaint", first_line=-2),
                                LinePhase(name="Introduction", first_line=4),
                                LinePhase(name="Resolution", first_line=4)])
    raw, line_repairs = phases_from_lines(answer, CAPTIONS, 52.0)
    phases, repairs = repair_phases(raw, NAMES, 52.0)
    assert _check(phases, repairs, 52.0) == [("Complaint", 0, 16), ("Resolution", 16, 46), ("Goodbye", 46, 52)]
    assert any("first_line 40 is outside the captions (1-10); set to 10" in r for r in line_repairs)
    assert any("first_line -2 is outside the captions (1-10); set to 1" in r for r in line_repairs)
    assert any("not in the order of their lines" in r for r in line_repairs)
    assert any("both start at line 4; Introduction dropped" in r for r in line_repairs)
    with pytest.raises(TimelineError, match="no phases"):
        phases_from_lines(LineAnswer(phases=[]), CAPTIONS, 52.0)


def test_a_first_phase_after_line_1_leaves_the_opening_to_other():
    raw, _ = phases_from_lines(LineAnswer(phases=[LinePhase(name="Complaint", first_line=3)]), CAPTIONS, 52.0)
    phases, repairs = repair_phases(raw, NAMES, 52.0)
    assert _check(phases, repairs, 52.0) == [(OTHER, 0, 11), ("Complaint", 11, 52)]
    assert any("gap 0.0-11.0 s filled with 'Other'" in r for r in repairs)


# --------------------------------------------------------------------------- the flow


@pytest.fixture(scope="module")
def first_run(prefect_harness, local_api, sample_call, tmp_path_factory):
    """Run the flow once on the sample call with the defaults (SmolLM2 on the local server)."""
    import os

    from flows.segmentation import call_segmentation

    os.environ["ASSEMBLYAI_BASE_URL"] = os.environ["ASSEMBLYAI_LLM_GATEWAY_BASE_URL"] = local_api.url
    out = tmp_path_factory.mktemp("results")
    local_api.reset_request_counts()
    timeline = call_segmentation(audio=str(sample_call), results_dir=str(out))
    counts = local_api.api_counts()
    yield timeline, out, counts
    del os.environ["ASSEMBLYAI_BASE_URL"], os.environ["ASSEMBLYAI_LLM_GATEWAY_BASE_URL"]


def test_flow_returns_a_complete_valid_timeline_for_the_sample_call(first_run):
    timeline, out, counts = first_run
    assert counts.get("GET /v2/transcript/{transcript_id}/vtt") == 1
    assert counts.get("POST /v1/chat/completions") in (1, 2)
    assert 69.9 <= timeline.audio_duration_s <= 71 and timeline.phase_names == NAMES
    assert timeline_problems(timeline.phases, NAMES, timeline.audio_duration_s) == []
    assert timeline.phases[0].start_time == 0 and timeline.phases[-1].end_time == timeline.audio_duration_s
    assert timeline.captions >= 10 and timeline.llm.served_by == "smollm2-135m"
    assert set(timeline.timings_s) == {"llm"}
    [folder] = out.iterdir()
    saved = PhaseTimeline.model_validate_json((folder / "segmentation.json").read_text())
    assert saved.phases == timeline.phases and saved.repairs == timeline.repairs
    captions = parse_vtt((folder / "captions.vtt").read_text())
    assert len(captions) == timeline.captions and captions[-1].end > 60_000


def test_flow_publishes_the_timeline_as_a_markdown_artifact(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    timeline, _, _ = first_run
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["call-segmentation"])))
    assert artifacts
    markdown = artifacts[-1].data
    assert "## Call segmentation" in markdown and "| phase | start (s) | end (s) |" in markdown
    assert markdown.count("█") >= len(timeline.phases) and timeline.phases[0].name in markdown


def test_rerun_with_new_phases_and_prompt_reuses_the_transcript_and_keeps_both_timelines(
        first_run, use_local_api, sample_call):
    """New phases and an inline prompt into the same results folder: no upload, no transcription, one
    captions and one LLM request; both timelines are kept and the rerun's artifact compares them."""
    from flows.segmentation import call_segmentation

    template = ("{{ transcript_block }}\nSplit the call into {{ phases | join(', ') }} or {{ other }}. Answer as JSON "
                "with the first_line (1 to {{ line_count }}) and its first_words per phase.")
    use_local_api.reset_request_counts()
    timeline = call_segmentation(audio=str(sample_call), phases=["Greeting", "Billing question", "Farewell"],
                                 prompt_template=template, chars_per_caption=40, results_dir=str(first_run[1]))
    counts = use_local_api.api_counts()
    assert counts.get("POST /v2/upload", 0) == 0 and counts.get("POST /v2/transcript", 0) == 0
    assert counts.get("GET /v2/transcript/{transcript_id}/vtt") == 1
    assert timeline.transcript_id == first_run[0].transcript_id and timeline.prompt_template == "<inline>"
    assert timeline.phase_names == ["Greeting", "Billing question", "Farewell", OTHER]
    assert {p.name for p in timeline.phases} <= set(timeline.phase_names)
    assert timeline.captions > first_run[0].captions  # 40-character captions: more lines
    assert timeline.phases[-1].end_time == timeline.audio_duration_s

    first = first_run[0]
    [folder] = first_run[1].iterdir()
    assert {p.name for p in (folder / "versions").iterdir()} == {
        f"segmentation-{v}.json" for v in (first.provenance.version, timeline.provenance.version)}
    assert PhaseTimeline.model_validate_json((folder / "segmentation.json").read_text()).phases == timeline.phases
    assert timeline.provenance.parameters == {"phases": ["Greeting", "Billing question", "Farewell", OTHER],
                                              "chars_per_caption": 40}
    artifact = run_artifact("call-segmentation", timeline.provenance.flow_run_id)
    assert "## Compared with the previous prompt's result" in artifact
    assert "parameters.chars_per_caption changed; parameters.phases changed" in artifact
    p, q = first.phases[0], timeline.phases[0]
    assert (f"| 1 | **{p.name}** {p.start_time:.1f}–{p.end_time:.1f} s: {cell(p.summary)} | "
            f"**{q.name}** {q.start_time:.1f}–{q.end_time:.1f} s: {cell(q.summary)} |") in artifact


def test_bad_parameters_fail_before_any_request(prefect_harness, use_local_api, sample_call, tmp_path):
    from flows.segmentation import call_segmentation

    cases = [(dict(phases=[]), InputError, "phases is empty"),
             (dict(phases=["A", "a"]), InputError, "more than once"),
             (dict(prompt_template="{{ transcript_block }} {{ agenda }}"), PromptError, "agenda"),
             (dict(audio=str(tmp_path / "nope.wav")), InputError, "not found")]
    for kwargs, error, match in cases:
        use_local_api.reset_request_counts()
        with pytest.raises(error, match=match):
            call_segmentation(**{"audio": str(sample_call), "results_dir": str(tmp_path), **kwargs})
        assert use_local_api.api_counts() == {}, kwargs


def _chat(content):
    return {"request_id": "r", "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                            "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def test_unrepairable_answer_is_retried_once_with_the_error(prefect_harness, local_api, sample_call, tmp_path,
                                                            monkeypatch):
    """An answer with no phases is sent back once with the reason; the second (broken but repairable)
    answer is repaired, and the repairs are listed in the result."""
    from flows.segmentation import call_segmentation

    second = json.dumps({"phases": [{"name": "Complaint", "first_line": 99, "first_words": "", "summary": "x"},
                                    {"name": "introduction", "first_line": 1, "first_words": "", "summary": "hi"}]})
    with StubServer({"POST /v1/chat/completions": [Canned(200, _chat('{"phases": []}')),
                                                   Canned(200, _chat(second))]}) as gateway:
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", local_api.url)
        monkeypatch.setenv("ASSEMBLYAI_LLM_GATEWAY_BASE_URL", gateway.url)
        timeline = call_segmentation(audio=str(sample_call), results_dir=str(tmp_path))
    assert gateway.count("POST", "/v1/chat/completions") == 2 and timeline.llm.attempts == 2
    assert [p.name for p in timeline.phases] == ["Introduction", "Complaint"]
    assert timeline.phases[1].end_time == timeline.audio_duration_s
    assert any("first_line 99 is outside the captions" in r for r in timeline.repairs)
    assert any("renamed 'introduction'" in r for r in timeline.repairs)
    assert any("not in the order of their lines" in r for r in timeline.repairs)


def test_answer_that_stays_unusable_fails_keeping_the_raw_answer_and_the_captions(prefect_harness, local_api,
                                                                                  sample_call, tmp_path, monkeypatch):
    from flows.segmentation import call_segmentation

    bad = json.dumps({"phases": []})
    with StubServer({"POST /v1/chat/completions": [Canned(200, _chat(bad))]}) as gateway:
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", local_api.url)
        monkeypatch.setenv("ASSEMBLYAI_LLM_GATEWAY_BASE_URL", gateway.url)
        with pytest.raises(LLMOutputError, match="the answer lists no phases") as info:
            call_segmentation(audio=str(sample_call), results_dir=str(tmp_path))
    assert info.value.raw == bad and gateway.count("POST", "/v1/chat/completions") == 2
    [captions] = list(tmp_path.glob("*/captions.vtt"))
    assert parse_vtt(captions.read_text())
