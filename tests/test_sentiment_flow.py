"""The call sentiment flow end to end through the Prefect engine and the real local server."""
import json
import os

import pytest
import requests

from conftest import run_artifact
from callflows.errors import AudioInputError, PromptError
from callflows.markdown import cell
from callflows.models import Utterance
from callflows.quotes import check_quote, speakers_for
from callflows.sentiment import DEFAULT_QUESTIONS, ROLES, SentimentReport
from flows.sentiment import call_sentiment

API_CALLS = ("POST /v2/upload", "POST /v2/transcript", "POST /v1/chat/completions")


@pytest.fixture(scope="module")
def first_run(prefect_harness, local_api, sample_call, tmp_path_factory):
    """Run the flow once on the sample call (the transcript is then cached for the other tests)."""
    os.environ["ASSEMBLYAI_BASE_URL"] = os.environ["ASSEMBLYAI_LLM_GATEWAY_BASE_URL"] = local_api.url
    out = tmp_path_factory.mktemp("results")
    local_api.reset_request_counts()
    report = call_sentiment(audio=str(sample_call), results_dir=str(out), max_tokens=400)
    counts = local_api.api_counts()
    yield report, out, counts
    del os.environ["ASSEMBLYAI_BASE_URL"], os.environ["ASSEMBLYAI_LLM_GATEWAY_BASE_URL"]


def test_report_has_sentences_with_speaker_times_and_answers(first_run):
    """Per-sentence sentiment carries speaker, confidence and ms times; every question is answered."""
    report, _, counts = first_run
    # At most one of each: another analysis of the same call earlier in the session (same audio and
    # options, e.g. the scorecard) is reused from the cache, which is the point.
    assert counts.get("POST /v2/upload", 0) <= 1 and counts.get("POST /v2/transcript", 0) <= 1
    assert len(report.sentences) >= 15
    assert {s.speaker for s in report.sentences} == {"A", "B"}
    assert all(0 <= s.confidence <= 1 and s.start < s.end for s in report.sentences)
    assert report.sentences[-1].end > 60_000
    assert sum(c.total for c in report.counts_by_speaker.values()) == len(report.sentences) == report.counts.total
    assert [a.question for a in report.answers] == [q.question for q in DEFAULT_QUESTIONS]
    assert all(a.answer.strip() and a.reason.strip() for a in report.answers)  # the answer format asks for a reason
    # Questions 4 and 5 ask for a quote of the customer and of the agent: speakers identified by role,
    # each quote's mark is the checker's verdict on the server's transcript against that side.
    assert sorted(report.roles.values()) == ["Agent", "Customer"] and counts.get("POST /v1/understanding", 0) <= 1
    assert [a.quote_check is not None for a in report.answers] == [False, False, False, True, True]
    utterances = [Utterance.model_validate(u) for u in requests.get(
        f"{os.environ['ASSEMBLYAI_BASE_URL']}/v2/transcript/{report.transcript_id}", timeout=10).json()["utterances"]]
    for answer, side in zip(report.answers[3:], ("customer", "agent")):
        assert answer.quote_check == check_quote(answer.quote, utterances, speakers_for(side, report.roles, ROLES))
    assert report.misattributed_quotes == [a.quote_check for a in report.answers].count("misattributed")
    assert report.llm.served_by == "smollm2-135m" and report.llm.prompt_tokens > 100


def test_report_is_written_as_json_and_markdown_artifact(first_run):
    """sentiment.json parses back into a SentimentReport; the flow run has the markdown artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    report, out, _ = first_run
    files = list(out.glob("*/sentiment.json"))
    assert len(files) == 1 and files[0].parent.name.startswith("support_call-")
    assert SentimentReport.model_validate(json.loads(files[0].read_text())).transcript_id == report.transcript_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["call-sentiment"])))
    assert artifacts and "## Sentiment per speaker" in artifacts[-1].data


def test_rerun_with_a_new_prompt_reuses_the_transcript_and_keeps_both_results(first_run, local_api, sample_call):
    """A rerun with other prompt parameters into the same results folder makes no upload and no
    transcription request, only the LLM call; both prompt versions' results are kept, the latest is the
    rerun's, and the rerun's artifact compares the two answers."""
    local_api.reset_request_counts()
    template = "{{ transcript_block }}\n\nAnswer each question in a few words.\n{% for q in questions %}{{ loop.index }}. {{ q.question }}\n{% endfor %}Reply as JSON with keys answer_1..answer_{{ questions | length }}."
    os.environ["ASSEMBLYAI_BASE_URL"] = os.environ["ASSEMBLYAI_LLM_GATEWAY_BASE_URL"] = local_api.url
    first, out, _ = first_run
    report = call_sentiment(audio=str(sample_call), results_dir=str(out), prompt_template=template,
                            questions=[{"question": "Was the customer's problem solved?"}], max_tokens=100)
    counts = local_api.api_counts()
    assert counts.get("POST /v2/upload", 0) == 0
    assert counts.get("POST /v2/transcript", 0) == 0
    assert counts.get("POST /v1/chat/completions") == 1
    assert report.transcript_id == first.transcript_id and report.prompt_template == "<inline>"

    [folder] = out.iterdir()
    versions = {p.name: SentimentReport.model_validate_json(p.read_text()) for p in (folder / "versions").iterdir()}
    assert set(versions) == {f"sentiment-{first.provenance.version}.json", f"sentiment-{report.provenance.version}.json"}
    assert [a.question for a in versions[f"sentiment-{first.provenance.version}.json"].answers] == \
        [q.question for q in DEFAULT_QUESTIONS]
    latest = SentimentReport.model_validate_json((folder / "sentiment.json").read_text())
    assert latest.provenance == report.provenance and report.provenance.template == "<inline>"
    assert report.provenance.parameters == {"questions": [{"question": "Was the customer's problem solved?",
                                                           "context": "", "answer_format": "", "quote_from": "auto"}],
                                            "roles": ROLES}
    assert report.provenance.max_tokens == 100 and report.provenance.flow_run_id != first.provenance.flow_run_id
    artifact = run_artifact("call-sentiment", report.provenance.flow_run_id)
    assert "## Compared with the previous prompt's result" in artifact
    assert "Changed from previous to this run: template: 'sentiment' → '<inline>'" in artifact
    assert f"| {DEFAULT_QUESTIONS[0].question} | {cell(first.answers[0].markdown)} | – (not asked) |" in artifact
    assert f"| Was the customer's problem solved? | – (not asked) | {cell(report.answers[0].markdown)} |" in artifact


def _bad_inputs(tmp_path, sample_call):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 10)
    good = str(sample_call)
    return [
        (dict(audio=str(tmp_path / "missing.wav")), AudioInputError, "not found"),
        (dict(audio=str(empty)), AudioInputError, "empty"),
        (dict(audio=str(text)), AudioInputError, "does not look like audio"),
        (dict(audio=good, prompt_template="no_such_template"), PromptError, "unknown prompt template"),
        (dict(audio=good, prompt_template="{{ transcript_block }\n"), PromptError, "syntax error"),
        (dict(audio=good, prompt_template="{{ transcript_block }} {{ customer_name }}\n"), PromptError, "customer_name"),
    ]


def test_bad_input_fails_clearly_before_any_request(prefect_harness, use_local_api, sample_call, tmp_path):
    """Missing, empty and non-audio files, unknown templates, syntax errors and undefined variables
    each fail with a one-line error naming the input, and no request reaches the API."""
    local_api = use_local_api
    for kwargs, error, text in _bad_inputs(tmp_path, sample_call):
        local_api.reset_request_counts()
        with pytest.raises(error, match=text) as info:
            call_sentiment(results_dir=str(tmp_path), **kwargs)
        assert "\n" not in str(info.value).strip()
        assert local_api.api_counts() == {}, kwargs
