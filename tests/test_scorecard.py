"""Sales scorecard: input checks, and the flow end to end on real audio (the quote checks on hand-built
transcripts are in test_quotes)."""
import json
import wave

import numpy as np
import pytest

from callflows.errors import InputError, LLMOutputError
from callflows.models import Transcript, Utterance
from callflows.quotes import check_quote, speakers_for
from callflows.scorecard import DEFAULT_RUBRIC, Scorecard, answer_model, check_roles
from callflows.structured import parse_answer
from callflows.scorecard import check_speakers
from flows.scorecard import sales_scorecard
from conftest import run_artifact
from stub_http import Canned, StubServer

def test_rubric_answers_must_be_one_of_the_options():
    """The schema's enum is enforced on the way back: an answer outside the options is rejected."""
    model = answer_model(DEFAULT_RUBRIC[:1])
    good = {"summary": "s", "talk_listen_assessment": "t", "sentiment_shifts": [],
            "coaching_suggestions": ["a", "b", "c"], "criterion_1": {"answer": "yes", "reason": "r", "quote": "q"}}
    assert parse_answer(json.dumps(good), model).criterion_1.answer == "yes"
    bad = dict(good, criterion_1={"answer": "maybe", "reason": "r", "quote": "q"})
    with pytest.raises(LLMOutputError, match="criterion_1.answer"):
        parse_answer(json.dumps(bad), model)
    with pytest.raises(LLMOutputError, match="coaching_suggestions"):
        parse_answer(json.dumps(dict(good, coaching_suggestions=["only one"])), model)


@pytest.mark.parametrize("roles, text", [
    (["Sales Rep"], "at least two"),
    (["Sales Rep", "sales rep"], "repeat"),
    (["Sales Rep", "x" * 36], "1 to 35 characters"),
])
def test_bad_roles_are_refused(roles, text):
    with pytest.raises(InputError, match=text):
        check_roles(roles)


def test_transcript_without_speaker_labels_names_the_option():
    t = Transcript(id="t1", status="completed", text="hello", utterances=None)
    with pytest.raises(InputError, match="speaker_labels=True"):
        check_speakers(t, ["Sales Rep", "Customer"])


def test_scorecard_end_to_end_on_the_sample_call(prefect_harness, use_local_api, sample_call, tmp_path):
    """Roles from /v1/understanding, metrics from code, a validated scorecard with checked quotes,
    written as JSON (plus metrics.json) and as a markdown artifact."""
    report = sales_scorecard(audio=str(sample_call), results_dir=str(tmp_path), rubric=DEFAULT_RUBRIC[:2])
    assert sorted(report.roles.values()) == ["Customer", "Sales Rep"]
    # The agent (who opens the call) is the rep: speaker A on the sample.
    assert report.roles["A"] == "Sales Rep"
    shares = [s.talk_share for s in report.metrics.speakers.values()]
    assert abs(sum(shares) - 1) < 1e-6 and report.talk_listen.rep_talk_share == report.metrics.speakers["A"].talk_share
    suggestions = report.coaching_suggestions  # repeated ones are dropped
    assert 1 <= len(suggestions) <= 3 and len(set(suggestions)) == len(suggestions) and len(report.criteria) == 2
    text = " ".join(line for line in [report.summary])  # the LLM's content exists
    assert text.strip()
    # Each quote's mark is what the checker says on the server's transcript, against the claim's speaker.
    utterances = _utterances(use_local_api, report.transcript_id)
    rep, customer = (speakers_for(side, report.roles, ["Sales Rep", "Customer"]) for side in ("agent", "customer"))
    assert [c.quote_check for c in report.criteria] == [check_quote(c.quote, utterances, rep) for c in report.criteria]
    assert [s.quote_check for s in report.sentiment_shifts] == [check_quote(s.quote, utterances, customer)
                                                                 for s in report.sentiment_shifts]
    checks = [q.quote_check for q in [*report.criteria, *report.sentiment_shifts]]
    assert (report.unverified_quotes, report.misattributed_quotes) == (
        len(checks) - checks.count("verified"), checks.count("misattributed"))
    [folder] = tmp_path.iterdir()
    assert Scorecard.model_validate_json((folder / "scorecard.json").read_text()).transcript_id == report.transcript_id
    assert json.loads((folder / "metrics.json").read_text())["speakers"]["A"]["talk_share"] > 0
    markdown = report.to_markdown()
    assert "## Conversation metrics" in markdown and "## Top coaching suggestions" in markdown

    # A rerun with another rubric keeps both scorecards; its artifact compares their rubric answers.
    rerun = sales_scorecard(audio=str(sample_call), results_dir=str(tmp_path), rubric=DEFAULT_RUBRIC[2:4])
    assert {p.name for p in (folder / "versions").iterdir()} == {
        f"scorecard-{r.provenance.version}.json" for r in (report, rerun)}
    assert rerun.provenance.parameters["rubric"] == [c.model_dump() for c in DEFAULT_RUBRIC[2:4]]
    assert Scorecard.model_validate_json((folder / "scorecard.json").read_text()).provenance == rerun.provenance
    artifact = run_artifact("sales-scorecard", rerun.provenance.flow_run_id)
    assert "## Compared with the previous prompt's result" in artifact
    assert f"| {DEFAULT_RUBRIC[0].name} | **{report.criteria[0].answer}**" in artifact
    assert f"| {DEFAULT_RUBRIC[2].name} | – (not in the rubric) | **{rerun.criteria[0].answer}**" in artifact
    # Each run records its usage; the rerun reused the transcript, so only its LLM requests cost.
    assert report.usage.llm == {"scorecard": report.llm} and "speaker_identification" in (
        report.usage.transcription.priced_options)
    assert rerun.usage.transcription.billed is False and rerun.usage.cost.transcription == 0
    assert rerun.usage.cost.total == rerun.usage.cost.llm["scorecard"] > 0
    assert Scorecard.model_validate_json((folder / "scorecard.json").read_text()).usage == rerun.usage


def _utterances(server, transcript_id) -> list[Utterance]:
    import requests

    body = requests.get(f"{server.url}/v2/transcript/{transcript_id}", timeout=10).json()
    return [Utterance.model_validate(u) for u in body["utterances"]]


def test_mono_file_with_multichannel_is_refused_before_any_request(prefect_harness, use_local_api, sample_call, tmp_path):
    use_local_api.reset_request_counts()
    with pytest.raises(InputError, match="is mono"):
        sales_scorecard(audio=str(sample_call), multichannel="on", results_dir=str(tmp_path))
    assert use_local_api.api_counts() == {}


def test_more_roles_than_speakers_fails_before_role_identification(prefect_harness, use_local_api, sample_call, tmp_path):
    """Three roles on a two-speaker call: a clear error after transcription, no /v1/understanding call."""
    use_local_api.reset_request_counts()
    with pytest.raises(InputError, match=r"2 speaker\(s\).*3 roles"):
        sales_scorecard(audio=str(sample_call), roles=["Sales Rep", "Customer", "Manager"], results_dir=str(tmp_path))
    assert "POST /v1/understanding" not in use_local_api.api_counts()


def test_invalid_llm_answer_is_retried_once_then_fails_keeping_the_metrics(prefect_harness, local_api, sample_call,
                                                                          tmp_path, monkeypatch):
    """A gateway whose answers never validate: one retry with the error, then LLMOutputError with the
    raw answer; metrics.json is written anyway."""
    understanding = {"request_id": "r", "speech_understanding": {"response": {"speaker_identification": {
        "mapping": {"A": "Sales Rep", "B": "Customer"}, "status": "success"}}}, "utterances": [], "words": []}
    chat = {"request_id": "r", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Great call!"},
                                            "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    with StubServer({"POST /v1/understanding": [Canned(200, understanding)],
                     "POST /v1/chat/completions": [Canned(200, chat)]}) as gateway:
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", local_api.url)
        monkeypatch.setenv("ASSEMBLYAI_LLM_GATEWAY_BASE_URL", gateway.url)
        with pytest.raises(LLMOutputError, match="not valid JSON") as info:
            sales_scorecard(audio=str(sample_call), results_dir=str(tmp_path))
    assert info.value.raw == "Great call!"
    assert gateway.count("POST", "/v1/chat/completions") == 2
    [metrics] = list(tmp_path.glob("*/metrics.json"))
    assert json.loads(metrics.read_text())["speakers"]


def test_stereo_input_uses_multichannel(prefect_harness, use_local_api, sample_call, tmp_path):
    """A stereo WAV (agent left, customer right) is transcribed with multichannel and scored."""
    script = json.loads((sample_call.parent / "support_call.json").read_text())
    with wave.open(str(sample_call)) as w:
        rate = w.getframerate()
        mono = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    stereo = np.zeros((len(mono), 2), np.int16)
    for s in script["sentences"]:
        a, b = int(s["start_ms"] * rate / 1000), int(s["end_ms"] * rate / 1000)
        stereo[a:b, 0 if s["speaker"] == "agent" else 1] = mono[a:b]
    path = tmp_path / "stereo_call.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(stereo.tobytes())
    report = sales_scorecard(audio=str(path), results_dir=str(tmp_path / "out"), rubric=DEFAULT_RUBRIC[:2])
    assert sorted(report.roles) == ["1", "2"] and report.roles["1"] == "Sales Rep"  # channel 1 is the agent
    assert len(report.metrics.speakers) == 2 and len(report.criteria) == 2
