"""The analyze-call flow (three analyses, concurrently, on one transcript) and the analyze-inbox flow
(every new recording of a folder, with a ledger), end to end through the Prefect engine and the real
local server."""
import csv
import json
import shutil
from datetime import datetime

import pytest
import requests

from callflows.errors import AudioInputError, InputError, PromptError
from callflows.sentiment import DEFAULT_QUESTIONS
from conftest import FAST, trim_wav
from stub_http import Canned, StubServer


def _env(mp, api_url, gateway_url=None):
    mp.setenv("ASSEMBLYAI_BASE_URL", api_url)
    mp.setenv("ASSEMBLYAI_LLM_GATEWAY_BASE_URL", gateway_url or api_url)


def _subflow_runs(parent_id):
    """Flow runs whose parent is the flow run ``parent_id``, as (flow name, run) pairs, checked to hang
    off a task run of that parent."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))
        out = []
        for run in runs:
            assert client.read_task_run(run.parent_task_run_id).flow_run_id == parent_id
            out.append((client.read_flow(run.flow_id).name, run))
    return out


def _artifact(key, flow_run_id):
    """The markdown of the artifact ``key`` published by the flow run ``flow_run_id``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return artifact.data


# --------------------------------------------------------------------------- analyze-call

@pytest.fixture(scope="module")
def call_clip(sample_call, tmp_path_factory):
    """The sample call's first 30 s (both speakers, every phase but the goodbye), named as the sample;
    the inbox below has the same content, so its transcript is cached."""
    return trim_wav(sample_call, tmp_path_factory.mktemp("clip") / "support_call.wav", 30)


@pytest.fixture(scope="module")
def analysed(prefect_harness, local_api, call_clip, tmp_path_factory):
    """analyze-call once on the call clip; (state, CallAnalysis, results folder, API request counts)."""
    from flows.analyze import analyze_call

    out = tmp_path_factory.mktemp("analysis")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, local_api.url)
        local_api.reset_request_counts()
        state = analyze_call(audio=str(call_clip), results_dir=str(out), **FAST, return_state=True)
        counts = local_api.api_counts()
    assert state.is_completed(), state.message
    return state, state.result(), out, counts


def test_analyze_call_runs_the_three_analyses_on_one_transcript(analysed):
    from flows.analyze import ANALYSES, CallAnalysis

    state, analysis, out, counts = analysed
    assert analysis.ok and analysis.errors == {}
    assert counts.get("POST /v2/upload", 0) <= 1 and counts.get("POST /v2/transcript", 0) <= 1
    assert counts.get("POST /v1/chat/completions", 0) >= 3 and counts.get("GET /v2/transcript/{transcript_id}/vtt") == 1
    for report in (analysis.sentiment, analysis.scorecard, analysis.segmentation):
        assert report.transcript_id == analysis.transcript_id
    assert len(analysis.sentiment.answers) == 2 and len(analysis.scorecard.criteria) == 2
    assert analysis.segmentation.phases[-1].end_time == analysis.segmentation.audio_duration_s
    [folder] = out.iterdir()
    assert str(folder) == analysis.result_dir and folder.name == f"support_call-{analysis.transcript_id[:8]}"
    assert CallAnalysis.model_validate_json((folder / "analysis.json").read_text()) == analysis
    assert analysis.files == {name: str(folder / f"{name}.json") for name in ("sentiment", "scorecard", "segmentation")}
    assert json.loads((folder / "scorecard.json").read_text())["transcript_id"] == analysis.transcript_id
    assert (folder / "captions.vtt").exists() and (folder / "metrics.json").exists()
    markdown = _artifact("analyze-call", state.state_details.flow_run_id)
    assert f"# Call analysis: {analysis.audio}" in markdown
    for title in ("call sentiment", "sales scorecard", "call segmentation"):
        assert f"| {title} | ok |" in markdown
    usage = analysis.usage  # tokens of every analysis; the cost adds up
    assert set(usage.llm) == set(ANALYSES) and all(u.prompt_tokens > 0 for u in usage.llm.values())
    assert usage.llm["scorecard"] == analysis.scorecard.llm
    assert usage.transcription.audio_duration_s == analysis.audio_duration_s == 30
    assert {"speaker_labels", "sentiment_analysis", "speaker_identification"} <= set(usage.transcription.priced_options)
    assert usage.cost.total > 0 and usage.cost.total == pytest.approx(
        usage.cost.transcription + sum(usage.cost.llm.values()))
    assert "Usage: 30 s of audio" in markdown and "estimated cost" in markdown


def _ui_task_runs(flow_run_id) -> list[dict]:
    """The flow run's Task Runs tab, as the classic UI asks for it: ``POST /task_runs/filter`` on the flow
    run, without the stand-in task runs of subflows."""
    from prefect.settings import PREFECT_API_URL

    body = {"flow_runs": {"id": {"any_": [str(flow_run_id)]}}, "task_runs": {"subflow_runs": {"exists_": False}},
            "sort": "EXPECTED_START_TIME_ASC", "limit": 200}
    r = requests.post(f"{PREFECT_API_URL.value()}/task_runs/filter", json=body, timeout=30)
    r.raise_for_status()
    return r.json()


def test_one_transcription_then_the_three_analysis_tasks_concurrently(analysed):
    """analyze-call has no subflow: its Task Runs tab (the UI's query) lists one upload, one submission,
    one wait and one captions fetch, then the three analysis tasks, which overlap in time: their run
    times add up to more than the span from the first start to the last end."""
    from prefect.client.orchestration import get_client

    flow_run_id = analysed[0].state_details.flow_run_id
    assert _subflow_runs(flow_run_id) == []
    runs = _ui_task_runs(flow_run_id)
    names = [r["name"].rsplit("-", 1)[0] for r in runs]
    for step in ("upload_audio", "submit_transcript", "wait_for_transcript", "fetch_vtt",
                 "call-sentiment", "sales-scorecard", "call-segmentation"):
        assert names.count(step) == 1, names
    assert names.count("chat_completion") >= 3 and names.count("identify_speakers") == 1, names
    assert all(r["state"]["type"] == "COMPLETED" for r in runs), [(r["name"], r["state"]["type"]) for r in runs]
    by_name = dict(zip(names, runs))
    analyses = [by_name[n] for n in ("call-sentiment", "sales-scorecard", "call-segmentation")]

    def t(r, key):
        return datetime.fromisoformat(r[key])

    busy = sum((t(r, "end_time") - t(r, "start_time")).total_seconds() for r in analyses)
    span = (max(t(r, "end_time") for r in analyses) - min(t(r, "start_time") for r in analyses)).total_seconds()
    assert busy > span, [(r["name"], r["start_time"], r["end_time"]) for r in analyses]
    assert t(by_name["fetch_vtt"], "end_time") <= min(t(r, "start_time") for r in analyses)
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run_id).state.is_completed()


def test_one_failed_analysis_keeps_the_others_and_fails_the_run(analysed, use_local_api, call_clip, tmp_path):
    """Three roles on a two-speaker call: the scorecard fails after transcription; sentiment and
    segmentation are still written, analysis.json records the error, and the run ends Failed."""
    from prefect.client.orchestration import get_client

    from flows.analyze import AnalysesFailedError, CallAnalysis, analyze_call

    state = analyze_call(audio=str(call_clip), results_dir=str(tmp_path), questions=DEFAULT_QUESTIONS[:1],
                         roles=["Sales Rep", "Customer", "Manager"], return_state=True)
    assert state.is_failed()
    exc = state.result(raise_on_failure=False)
    assert isinstance(exc, AnalysesFailedError)
    assert "1 of 3 analyses" in str(exc) and "sales scorecard failed: InputError: the call has 2 speaker(s)" in str(exc)
    analysis = exc.analysis
    assert set(analysis.errors) == {"scorecard"} and "3 roles" in analysis.errors["scorecard"]
    assert analysis.scorecard is None and analysis.sentiment.answers and analysis.segmentation.phases
    folder = tmp_path / f"support_call-{analysis.transcript_id[:8]}"
    assert CallAnalysis.model_validate_json((folder / "analysis.json").read_text()).errors == analysis.errors
    assert (folder / "sentiment.json").exists() and (folder / "segmentation.json").exists()
    assert not (folder / "scorecard.json").exists()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.state.is_failed() and "sales scorecard failed" in run.state.message
    states = {r["name"].rsplit("-", 1)[0]: r["state"]["type"] for r in _ui_task_runs(run.id)}
    assert states["sales-scorecard"] == "FAILED" and states["call-sentiment"] == "COMPLETED", states
    usage = analysis.usage  # a rerun on the cached transcript: only its LLM requests cost
    assert usage.transcription.billed is False and usage.cost.transcription == 0
    assert set(usage.llm) == {"sentiment", "segmentation"}
    assert usage.cost.total == pytest.approx(sum(usage.cost.llm.values())) and usage.cost.total > 0
    assert any("failed analyses" in note for note in usage.cost.notes)


def _chat(content):
    return {"request_id": "r", "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                            "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def test_gateway_answering_garbage_fails_each_analysis_keeping_what_was_computed(prefect_harness, local_api,
                                                                                 call_clip, tmp_path, monkeypatch):
    """Every LLM answer is not JSON: each analysis retries once, then fails with LLMOutputError; the
    error of each is recorded, the files written before the LLM step are kept, analysis.json too."""
    from flows.analyze import AnalysesFailedError, CallAnalysis, analyze_call

    understanding = {"request_id": "r", "speech_understanding": {"response": {"speaker_identification": {
        "mapping": {"A": "Sales Rep", "B": "Customer"}, "status": "success"}}}, "utterances": [], "words": []}
    with StubServer({"POST /v1/understanding": [Canned(200, understanding)],
                     "POST /v1/chat/completions": [Canned(200, _chat("Great call!"))]}) as gateway:
        _env(monkeypatch, local_api.url, gateway.url)
        state = analyze_call(audio=str(call_clip), results_dir=str(tmp_path), **FAST, return_state=True)
    assert gateway.count("POST", "/v1/chat/completions") == 6  # one retry each
    exc = state.result(raise_on_failure=False)
    assert state.is_failed() and isinstance(exc, AnalysesFailedError) and "3 of 3 analyses" in str(exc)
    analysis = exc.analysis
    assert set(analysis.errors) == {"sentiment", "scorecard", "segmentation"}
    assert all(e.startswith("LLMOutputError: ") and "\n" not in e for e in analysis.errors.values())
    assert analysis.sentiment is analysis.scorecard is analysis.segmentation is None and analysis.files == {}
    folder = tmp_path / f"support_call-{analysis.transcript_id[:8]}"
    assert CallAnalysis.model_validate_json((folder / "analysis.json").read_text()).errors == analysis.errors
    assert {p.name for p in folder.iterdir()} == {"analysis.json", "sentiment.partial.json", "metrics.json",
                                                  "captions.vtt"}
    assert "| sales scorecard | **failed** |" in _artifact("analyze-call", state.state_details.flow_run_id)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(phases=[]), InputError, "phases is empty"),
    (dict(questions=[]), InputError, "questions is empty"),
    (dict(roles=["Sales Rep"]), InputError, "at least two"),
    (dict(rubric=[]), InputError, "rubric is empty"),
    (dict(segmentation_prompt_template="{{ transcript_block }} {{ agenda }}"), PromptError, "agenda"),
    (dict(scorecard_prompt_template="no-such-template"), PromptError, "unknown prompt template"),
    (dict(multichannel="on"), InputError, "is mono"),
    (dict(audio="ftp://example.com/call.wav"), AudioInputError, "unsupported URL scheme"),
])
def test_bad_input_fails_before_any_request(prefect_harness, use_local_api, sample_call, tmp_path, kwargs, error,
                                            match):
    from flows.analyze import analyze_call

    use_local_api.reset_request_counts()
    with pytest.raises(error, match=match):
        analyze_call(**{"audio": str(sample_call), "results_dir": str(tmp_path), **kwargs})
    assert use_local_api.api_counts() == {}
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- the CLI's use of analyze-call

def test_cli_prints_the_analyses_that_succeeded_and_exits_1_naming_the_failed_one(prefect_harness, use_local_api,
                                                                                   sample_call, tmp_path, capsys,
                                                                                   monkeypatch):
    """`callflows analyze` (in-process, one analyze-call run) with the server refusing speaker
    identification once: the scorecard fails, the sentiment and segmentation reports are still
    printed and written, the failure is one stderr line, and the exit code is 1."""
    from flows.cli import main

    monkeypatch.setenv("CALLFLOWS_HOME", str(tmp_path / "home"))
    audio = tmp_path / "short_call.wav"  # a recording without cached speaker roles, so the request is made
    trim_wav(sample_call, audio, 40)
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps([q.model_dump() for q in DEFAULT_QUESTIONS[:1]]))
    fault = {"route": "POST /v1/understanding", "status_code": 400, "times": 1, "body": {"error": "injected refusal"}}
    requests.post(f"{use_local_api.url}/_local/faults", json=fault, timeout=10).raise_for_status()
    try:
        code = main(["analyze", str(audio), "--out", str(tmp_path / "out"), "--questions", str(questions)])
    finally:
        requests.delete(f"{use_local_api.url}/_local/faults", timeout=10).raise_for_status()
    out, err = capsys.readouterr()
    assert code == 1
    [line] = [ln for ln in err.splitlines() if ln.startswith("callflows: error:")]
    assert line.startswith("callflows: error: sales scorecard failed: BadRequestError: ") and "injected refusal" in line
    assert "## Sentiment per speaker" in out and "## Call segmentation" in out and "# Sales scorecard" not in out
    [folder] = (tmp_path / "out").iterdir()
    assert {p.name for p in folder.glob("*.json")} == {"analysis.json", "sentiment.json", "segmentation.json"}


def test_cli_bad_parameter_is_a_one_line_error_before_any_request(prefect_harness, use_local_api, sample_call,
                                                                  tmp_path, capsys, monkeypatch):
    from flows.cli import main

    monkeypatch.setenv("CALLFLOWS_HOME", str(tmp_path / "home"))
    use_local_api.reset_request_counts()
    code = main(["analyze", str(sample_call), "--out", str(tmp_path / "out"), "--max-tokens", "10"])
    err = capsys.readouterr().err
    assert code == 2 and use_local_api.api_counts() == {}
    [line] = [ln for ln in err.splitlines() if ln.startswith("callflows: error:")]
    assert "max_tokens" in line

    inbox, rubric = tmp_path / "inbox", tmp_path / "rubric.json"
    inbox.mkdir()
    shutil.copy(sample_call, inbox / "call.wav")
    rubric.write_text("[]")
    for flags, message in ((["--rubric", str(rubric)], "rubric is empty"),
                           (["--questions", str(tmp_path / "nope.json")], "nope.json")):
        code = main(["analyze-inbox", str(inbox), "--out", str(tmp_path / "out"), *flags])
        err = capsys.readouterr().err
        assert code == 2 and use_local_api.api_counts() == {}, flags
        [line] = [ln for ln in err.splitlines() if ln.startswith("callflows: error:")]
        assert message in line, line


def test_cli_analyze_inbox_runs_the_calls_in_process_with_the_given_questions_and_rubric(
        prefect_harness, use_local_api, sample_call, tmp_path, capsys, monkeypatch):
    """``callflows analyze-inbox DIR`` without --deployment: the call is a subflow of the inbox run, with
    the questions and rubric of --questions / --rubric; the batch report is printed."""
    from callflows.scorecard import DEFAULT_RUBRIC
    from flows.cli import main

    monkeypatch.setenv("CALLFLOWS_HOME", str(tmp_path / "home"))
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    trim_wav(sample_call, inbox / "call.wav", 12)
    files = {"questions": DEFAULT_QUESTIONS[:1], "rubric": DEFAULT_RUBRIC[:1]}
    for name, items in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps([i.model_dump(mode="json") for i in items]))
    code = main(["analyze-inbox", str(inbox), "--out", str(out), "--max-in-flight", "1",
                 "--questions", str(tmp_path / "questions.json"), "--rubric", str(tmp_path / "rubric.json")])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr[-3000:]
    assert "1 analysed, 0 skipped, 0 failed" in stdout and str(out / "inbox-report.json") in stdout
    [analysis] = out.glob("call-*/analysis.json")
    result = json.loads(analysis.read_text())
    assert [a["question"] for a in result["sentiment"]["answers"]] == [DEFAULT_QUESTIONS[0].question]
    assert [c["name"] for c in result["scorecard"]["criteria"]] == [DEFAULT_RUBRIC[0].name]


# --------------------------------------------------------------------------- analyze-inbox



@pytest.fixture(scope="module")
def inbox_runs(prefect_harness, local_api, sample_call, tmp_path_factory):
    """Two runs of analyze-inbox over one inbox: the sample call's first 30 s and 20 s, a text file and a
    truncated WAV (plus a subfolder, ignored). Between the runs the sample call is renamed.
    Returns (inbox, results, [(state, report, API request counts) per run])."""
    from flows.batch import InboxFailedError, analyze_inbox

    root = tmp_path_factory.mktemp("batch")
    inbox, results = root / "inbox", root / "results"
    (inbox / "archive").mkdir(parents=True)
    trim_wav(sample_call, inbox / "call-a.wav", 30)
    trim_wav(sample_call, inbox / "short.wav", 20)
    (inbox / "notes.txt").write_text("Call back Mrs. Jones on Monday.\n")
    (inbox / "short.json").write_text('{"agent": "Maria"}')  # a sidecar: short.wav's agent, not a recording
    (inbox / "broken.wav").write_bytes(sample_call.read_bytes()[:2000])  # header of 70 s, 60 ms of data
    trim_wav(sample_call, inbox / "archive" / "old.wav", 20)
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, local_api.url)
        for run in (1, 2):
            if run == 2:
                (inbox / "call-a.wav").rename(inbox / "renamed-call.wav")
            local_api.reset_request_counts()
            state = analyze_inbox(inbox=str(inbox), results_dir=str(results), agent_pattern="^(?P<agent>[a-z]+)",
                                  **FAST, return_state=True)
            result = state.result(raise_on_failure=False)
            report = result.report if isinstance(result, InboxFailedError) else result
            runs.append((state, report, local_api.api_counts()))
    return inbox, results, runs


def _statuses(report):
    return {r.audio.rsplit("/", 1)[-1]: r.status for r in report.recordings}


def test_inbox_analyses_new_recordings_skips_other_files_and_reports_the_failure(inbox_runs):
    from callflows.ledger import Ledger
    from flows.analyze import CallAnalysis

    inbox, results, [(state, report, counts), _] = inbox_runs
    assert state.is_completed()  # one recording failed, two were analysed: the run is not Failed
    assert _statuses(report) == {"broken.wav": "failed", "call-a.wav": "analysed", "notes.txt": "skipped",
                                 "short.wav": "analysed"}
    rows = {r.audio.rsplit("/", 1)[-1]: r for r in report.recordings}
    assert "looks cut short" in rows["broken.wav"].error and rows["broken.wav"].cache_key is None  # no request
    assert "does not look like audio" in rows["notes.txt"].note and rows["notes.txt"].cache_key is None
    assert counts.get("POST /v2/upload", 0) <= 2 and counts.get("POST /v2/transcript", 0) <= 2
    ledger = {r.cache_key: r for r in Ledger.open(results).all()}
    assert set(ledger) == {rows["call-a.wav"].cache_key, rows["short.wav"].cache_key}
    for name in ("call-a.wav", "short.wav"):
        entry = ledger[rows[name].cache_key]
        assert entry.status == "analysed" and entry.holder == str(state.state_details.flow_run_id)
        assert entry.audio == str(inbox / name) and entry.result_dir == rows[name].result_dir
        analysis = CallAnalysis.model_validate_json((results.joinpath(entry.result_dir, "analysis.json")).read_text())
        assert analysis.ok and analysis.transcript_id == entry.transcript_id
        assert len(analysis.sentiment.answers) == 2 and len(analysis.scorecard.criteria) == 2  # FAST, passed on
    assert rows["short.wav"].transcript_id != rows["call-a.wav"].transcript_id
    names = sorted(run.name for _, run in _subflow_runs(state.state_details.flow_run_id))
    assert names == ["analyze-call-a", "analyze-short"]  # the subfolder was ignored, broken.wav never sent
    totals, analysed = report.totals, [rows["call-a.wav"], rows["short.wav"]]  # the costs add up
    assert totals.calls == 2 and totals.audio_transcribed_s + totals.audio_reused_s == 50
    assert totals.estimated_cost == pytest.approx(sum(r.usage.cost.total for r in analysed))
    assert totals.completion_tokens == sum(u.completion_tokens for r in analysed for u in r.usage.llm.values())
    assert "Usage of 2 call(s)" in report.to_markdown()
    assert "# Calls by agent" in _artifact("calls-by-agent", state.state_details.flow_run_id)
    with open(results / "report.csv", newline="") as f:  # the sidecar names one agent, the pattern the other
        assert sorted(r["agent"] for r in csv.DictReader(f)) == ["Maria", "call"]


def test_second_inbox_run_skips_analysed_recordings_even_renamed_and_retries_the_failed_one(inbox_runs):
    from callflows.ledger import Ledger
    from flows.batch import BatchReport

    inbox, results, [(_, first, _), (state, report, counts)] = inbox_runs
    assert state.is_failed() and "every recording this run tried failed" in state.message  # the only one it tried
    assert _statuses(report) == {"broken.wav": "failed", "renamed-call.wav": "skipped", "notes.txt": "skipped",
                                 "short.wav": "skipped"}
    rows = {r.audio.rsplit("/", 1)[-1]: r for r in report.recordings}
    assert f"already analysed as {inbox / 'call-a.wav'}" in rows["renamed-call.wav"].note
    assert counts.get("POST /v2/upload", 0) == 0 and counts.get("POST /v2/transcript", 0) == 0
    assert counts.get("POST /v1/chat/completions", 0) == 0 and report.totals.calls == 0
    assert _subflow_runs(state.state_details.flow_run_id) == []  # broken.wav is refused before any request
    analysed = {r.cache_key for r in Ledger.open(results).all() if r.status == "analysed"}
    assert analysed == {r.cache_key for r in first.recordings if r.status == "analysed"}
    assert BatchReport.model_validate_json((results / "inbox-report.json").read_text()) == report
    markdown = _artifact("analyze-inbox", state.state_details.flow_run_id)
    assert "0 analysed, 3 skipped, 1 failed" in markdown and "| **failed** |" in markdown
    assert "the next run retries them" in markdown


def test_inbox_run_where_every_recording_fails_ends_failed(prefect_harness, local_api, tmp_path, monkeypatch):
    """No inbox folder but a URL the server cannot download: the run ends Failed with InboxFailedError,
    after writing the report."""
    from flows.batch import InboxFailedError, analyze_inbox

    _env(monkeypatch, local_api.url)
    url = "http://127.0.0.1:9/missing-call.wav"
    summary = r"every recording this run tried failed \(0 analysed, 0 skipped, 1 failed\)"
    with pytest.raises(InboxFailedError, match=summary) as info:
        analyze_inbox(inbox=str(tmp_path / "no-inbox"), urls=[url], results_dir=str(tmp_path / "results"))
    [row] = info.value.report.recordings
    assert row.audio == url and row.cache_key == f"url:{url}" and "Download error" in row.error
    assert info.value.report.inbox is None
    assert (tmp_path / "results" / "inbox-report.json").exists()
    from callflows.ledger import Ledger

    [entry] = Ledger.open(tmp_path / "results").all()
    assert entry.status == "failed" and "Download error" in entry.error


def test_empty_inbox_is_not_an_error(prefect_harness, use_local_api, tmp_path):
    from flows.batch import analyze_inbox

    (tmp_path / "inbox").mkdir()
    use_local_api.reset_request_counts()
    state = analyze_inbox(inbox=str(tmp_path / "inbox"), results_dir=str(tmp_path / "results"), return_state=True)
    report = state.result()
    assert state.is_completed() and report.recordings == [] and report.summary() == "0 analysed, 0 skipped, 0 failed"
    assert use_local_api.api_counts() == {}
    assert "No recordings found." in _artifact("analyze-inbox", state.state_details.flow_run_id)


def test_bad_inbox_input_fails_before_any_request(prefect_harness, use_local_api, sample_call, tmp_path):
    from flows.batch import analyze_inbox

    inbox = tmp_path / "inbox"
    results = tmp_path / "results"
    cases = [(dict(inbox=str(tmp_path / "nope")), InputError, "inbox folder .*nope.* does not exist.*create it"),
             (dict(inbox=str(sample_call)), InputError, "is not a folder"),
             (dict(urls=["https://example.com/a.wav", "ftp://example.com/b.wav"]), AudioInputError,
              r"urls\[1\]: .*unsupported URL scheme"),
             (dict(urls=[str(sample_call)]), AudioInputError, r"urls\[0\] is .*not an http\(s\) URL"),
             (dict(questions=[]), InputError, "questions is empty"),
             (dict(rubric=[]), InputError, "rubric is empty"),
             (dict(), InputError, "inbox-ledger.json.* cannot be read .*delete it")]
    inbox.mkdir()
    shutil.copy(sample_call, inbox / "call.wav")
    results.mkdir()
    (results / "inbox-ledger.json").write_text("{not json")  # an earlier ledger; only the last case gets this far
    for kwargs, error, match in cases:
        use_local_api.reset_request_counts()
        with pytest.raises(error, match=match):
            analyze_inbox(**{"inbox": str(inbox), "results_dir": str(results), **kwargs})
        assert use_local_api.api_counts() == {}, kwargs
