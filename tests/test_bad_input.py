"""Bad input, one catalogue: every case gets a clear error that names the input and the fix, before
any request where that can be known, and nothing is written.

Each case drives what a user drives (mostly the ``analyze-call`` flow; a parameter that belongs to one
analysis through that analysis's flow; transcript ids through the client and the
``wait_for_transcript`` task) against the real local server and the real Prefect engine, and checks:
the exception type (an ``InputError`` subclass for problems caught before a request), that the
message contains the words that name the input and the fix, and the API requests the server counted
(``{}``: refused before any request; an unknown id or a wrong key need exactly one, not retried).

Print the catalogue as a table: ``.venv/bin/python tests/test_bad_input.py``.

Covered elsewhere, not repeated here: an LLM answer that is not valid JSON or does not match the
schema (each analysis retries once, then fails with ``LLMOutputError`` keeping the raw answer, and the
other results, ``analysis.json`` and the files written before the LLM step are kept):
tests/test_analyze_batch.py::test_gateway_answering_garbage_fails_each_analysis_keeping_what_was_computed,
tests/test_scorecard.py::test_invalid_llm_answer_is_retried_once_then_fails_keeping_the_metrics and
tests/test_scorecard.py::test_rubric_answers_must_be_one_of_the_options; parsing itself in
tests/test_structured.py. Unit tests of each audio check: tests/test_audio_input.py.
"""
from __future__ import annotations

import secrets
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from callflows.errors import (AudioInputError, AuthenticationError, BadRequestError, DamagedAudioError, InputError,
                             NotFoundError, PromptError)
from callflows.segmentation import MAX_PHASE_NAMES
from callflows.sentiment import MAX_QUESTIONS

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"  # well formed, never created
GET_TRANSCRIPT = "GET /v2/transcript/{transcript_id}"


# --------------------------------------------------------------------------- how a case is driven

@dataclass
class Ctx:
    """What a case's ``run`` gets: a scratch folder and the sample call."""

    tmp: Path
    sample: Path

    @property
    def results(self) -> Path:
        return self.tmp / "results"

    def file(self, name: str, content: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(content)
        return str(path)

    def analyze(self, **kwargs: Any) -> Any:
        from flows.analyze import analyze_call

        return analyze_call(**{"audio": str(self.sample), "results_dir": str(self.results), **kwargs})

    def sentiment(self, **kwargs: Any) -> Any:
        from flows.sentiment import call_sentiment

        return call_sentiment(**{"audio": str(self.sample), "results_dir": str(self.results), **kwargs})

    def segmentation(self, **kwargs: Any) -> Any:
        from flows.segmentation import call_segmentation

        return call_segmentation(**{"audio": str(self.sample), "results_dir": str(self.results), **kwargs})

    def get_transcript(self, transcript_id: str) -> Any:
        from callflows.client import AssemblyAIClient
        from callflows.settings import Settings

        with AssemblyAIClient(Settings()) as client:
            return client.get_transcript(transcript_id)

    def wait_for_transcript(self, transcript_id: str) -> Any:
        """The task, in a flow of its own (as the transcription flow runs it)."""
        from prefect import flow

        from tasks.transcription import wait_for_transcript

        @flow(name="wait-for-transcript")
        def wait(transcript_id: str) -> Any:
            return wait_for_transcript(transcript_id, poll_timeout_s=30)

        return wait(transcript_id)


def _wav(ms: int, rate: int = 16000) -> bytes:
    """A complete mono 16-bit PCM WAV file of ``ms`` milliseconds of silence."""
    data = b"\0\0" * (rate * ms // 1000)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _sample_head(ctx: Ctx, n: int) -> bytes:
    with open(ctx.sample, "rb") as f:
        return f.read(n)


def _questions(n: int) -> list[dict]:
    return [{"question": f"Question number {i}?"} for i in range(1, n + 1)]


def _phases(n: int) -> list[str]:
    return [f"Phase {i}" for i in range(1, n + 1)]


@dataclass(frozen=True)
class Case:
    id: str  # what is wrong, readable as a test id
    via: str  # what the user called
    run: Callable[[Ctx], Any]
    error: type[Exception]
    words: tuple[str, ...]  # the message contains each: the input named, the problem, the fix
    api_requests: dict[str, int] = field(default_factory=dict)  # counted by the server; {} = none at all
    server: str = "local"  # "keyed": a second server that requires the key "right-key"


CASES: list[Case] = [
    # ---- audio: checked from the file (header only) or the URL before any request
    Case("audio/missing-file", "analyze_call(audio=<no such file>)",
         lambda c: c.analyze(audio=str(c.tmp / "missing-call.wav")),
         AudioInputError, ("missing-call.wav", "audio file not found", "Check the path")),
    Case("audio/directory", "analyze_call(audio=<a folder>)",
         lambda c: c.analyze(audio=str(c.tmp)),
         AudioInputError, ("is a directory", "pass one recording file")),
    Case("audio/empty-file", "analyze_call(audio=<0 bytes>)",
         lambda c: c.analyze(audio=c.file("empty-call.wav", b"")),
         AudioInputError, ("empty-call.wav", "is empty (0 bytes)", "re-export or re-download")),
    Case("audio/truncated-wav", "analyze_call(audio=<WAV cut after 48 kB>)",
         lambda c: c.analyze(audio=c.file("cut-call.wav", _sample_head(c, 48_000))),
         DamagedAudioError, ("cut-call.wav", "looks cut short", "WAV header declares", "are present",
                           "Copy or export the recording again")),
    Case("audio/wav-header-cut", "analyze_call(audio=<WAV cut inside its header>)",
         lambda c: c.analyze(audio=c.file("header-only.wav", _sample_head(c, 30))),
         DamagedAudioError, ("header-only.wav", "header cannot be read", "cut short or corrupt",
                           "Copy or export the recording again")),
    Case("audio/text-file", "analyze_call(audio=<text named .wav>)",
         lambda c: c.analyze(audio=c.file("notes.wav", b"Call back Mrs. Jones on Monday.\n" * 20)),
         AudioInputError, ("notes.wav", "does not look like audio", "Pass a recording in a common format")),
    Case("audio/image-file", "analyze_call(audio=<PNG named .mp3>)",
         lambda c: c.analyze(audio=c.file("photo.mp3", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)),
         AudioInputError, ("photo.mp3", "detected image/png", "Pass a recording in a common format")),
    Case("audio/ftp-url", "analyze_call(audio='ftp://…')",
         lambda c: c.analyze(audio="ftp://example.com/call.wav"),
         AudioInputError, ("ftp://example.com/call.wav", "unsupported URL scheme 'ftp'",
                           "Pass a public http(s) URL")),
    Case("audio/file-url", "analyze_call(audio='file://…')",
         lambda c: c.analyze(audio="file:///tmp/call.wav"),
         AudioInputError, ("file:///tmp/call.wav", "unsupported URL scheme 'file'", "pass its local path")),
    Case("audio/shorter-than-160ms", "analyze_call(audio=<100 ms WAV>)",
         lambda c: c.analyze(audio=c.file("blip.wav", _wav(100))),
         DamagedAudioError, ("blip.wav", "is 100 ms long", "at least 160 ms", "Pass a longer recording")),

    # ---- transcript ids: malformed ones never reach the network; an unknown one costs one request
    Case("transcript-id/path-via-client", "AssemblyAIClient.get_transcript('../../etc/passwd')",
         lambda c: c.get_transcript("../../etc/passwd"),
         InputError, ("transcript_id '../../etc/passwd' is malformed", "pass the id returned by POST /v2/transcript")),
    Case("transcript-id/space-via-client", "AssemblyAIClient.get_transcript('abc def')",
         lambda c: c.get_transcript("abc def"),
         InputError, ("transcript_id 'abc def' is malformed", "pass the id returned by POST /v2/transcript")),
    Case("transcript-id/path-via-task", "wait_for_transcript('../../etc/passwd')",
         lambda c: c.wait_for_transcript("../../etc/passwd"),
         InputError, ("transcript_id '../../etc/passwd' is malformed", "pass the id returned by POST /v2/transcript")),
    Case("transcript-id/space-via-task", "wait_for_transcript('abc def')",
         lambda c: c.wait_for_transcript("abc def"),
         InputError, ("transcript_id 'abc def' is malformed", "pass the id returned by POST /v2/transcript")),
    Case("transcript-id/unknown-via-client", "AssemblyAIClient.get_transcript(<unknown id>)",
         lambda c: c.get_transcript(UNKNOWN_ID),
         NotFoundError, (UNKNOWN_ID, "transcript id not found", "Check the id"), {GET_TRANSCRIPT: 1}),
    Case("transcript-id/unknown-not-retried-via-task", "wait_for_transcript(<unknown id>)",
         lambda c: c.wait_for_transcript(UNKNOWN_ID),
         NotFoundError, (UNKNOWN_ID, "transcript id not found", "Check the id"), {GET_TRANSCRIPT: 1}),

    # ---- the API key: only the API can tell; one request, not retried, the key never shown
    Case("api-key/wrong-key-not-retried", "analyze_call(...) with a wrong ASSEMBLYAI_API_KEY",
         lambda c: c.analyze(),
         AuthenticationError, ("HTTP 401", "Check ASSEMBLYAI_API_KEY"), {"POST /v2/upload": 1}, server="keyed"),

    # ---- prompt templates (inline text): rendered with example inputs before any request
    Case("template/syntax-error", "analyze_call(sentiment_prompt_template='{{ transcript_block }')",
         lambda c: c.analyze(sentiment_prompt_template="{{ transcript_block }\n"),
         PromptError, ("sentiment_prompt_template", "syntax error on line 1", "Fix the template")),
    Case("template/undefined-variable", "analyze_call(segmentation_prompt_template='… {{ agenda }}')",
         lambda c: c.analyze(segmentation_prompt_template="{{ transcript_block }} {{ agenda }}"),
         PromptError, ("segmentation_prompt_template", "'agenda' is undefined", "Variables available: ")),
    Case("template/python-internals-mro", "analyze_call(scorecard_prompt_template=\"{{ ''.__class__.__mro__ }}\")",
         lambda c: c.analyze(scorecard_prompt_template="{{ ''.__class__.__mro__ }}"),
         PromptError, ("scorecard_prompt_template", "sandbox forbids", "may only read the variables they are given")),
    Case("template/python-internals-globals", "call_sentiment(prompt_template='{{ cycler.__init__.__globals__ }}')",
         lambda c: c.sentiment(prompt_template="{{ cycler.__init__.__globals__ }}"),
         PromptError, ("prompt template '<inline>'", "sandbox forbids",
                       "may only read the variables they are given")),
    Case("template/include-file", "analyze_call(sentiment_prompt_template=\"{% include '/etc/passwd' %}\")",
         lambda c: c.analyze(sentiment_prompt_template="{% include '/etc/passwd' %}"),
         PromptError, ("sentiment_prompt_template", "cannot read files", "Put the text in the template itself")),
    Case("template/import-file", "call_segmentation(prompt_template=\"{% import '/etc/passwd' as p %}\")",
         lambda c: c.segmentation(prompt_template="{% import '/etc/passwd' as p %}{{ transcript_block }}"),
         PromptError, ("prompt template '<inline>'", "cannot read files", "Put the text in the template itself")),
    Case("template/unknown-name", "analyze_call(scorecard_prompt_template='no-such-template')",
         lambda c: c.analyze(scorecard_prompt_template="no-such-template"),
         PromptError, ("scorecard_prompt_template", "unknown prompt template 'no-such-template'", "Use one of")),

    # ---- lists that must fit one prompt
    Case("questions/empty", "call_sentiment(questions=[])",
         lambda c: c.sentiment(questions=[]),
         InputError, ("questions is empty", "pass at least one", "leave the parameter out")),
    Case("questions/too-many", f"call_sentiment(questions=<{MAX_QUESTIONS + 1}>)",
         lambda c: c.sentiment(questions=_questions(MAX_QUESTIONS + 1)),
         InputError, (f"questions has {MAX_QUESTIONS + 1} entries", f"at most {MAX_QUESTIONS}",
                      "Split them over several runs")),
    Case("questions/too-many-via-analyze", f"analyze_call(questions=<{MAX_QUESTIONS + 1}>)",
         lambda c: c.analyze(questions=_questions(MAX_QUESTIONS + 1)),
         InputError, (f"questions has {MAX_QUESTIONS + 1} entries", "Split them over several runs")),
    Case("phases/empty", "call_segmentation(phases=[])",
         lambda c: c.segmentation(phases=[]),
         InputError, ("phases is empty", "pass the phase names to find", "or leave it out")),
    Case("phases/too-many", f"call_segmentation(phases=<{MAX_PHASE_NAMES + 1}>)",
         lambda c: c.segmentation(phases=_phases(MAX_PHASE_NAMES + 1)),
         InputError, (f"phases has {MAX_PHASE_NAMES + 1} names", f"at most {MAX_PHASE_NAMES}", "merge or drop")),
    Case("phases/empty-via-analyze", "analyze_call(phases=[])",
         lambda c: c.analyze(phases=[]),
         InputError, ("phases is empty", "or leave it out")),

    # ---- PII redaction: policy names checked against AssemblyAI's before any request
    Case("redaction/unknown-policy", "analyze_call(redact_pii=True, redact_pii_policies=['phone'])",
         lambda c: c.analyze(redact_pii=True, redact_pii_policies=["phone"]),
         InputError, ("['phone'] are not AssemblyAI PII policies", "phone_number")),
    Case("redaction/no-policies", "call_sentiment(redact_pii=True, redact_pii_policies=[])",
         lambda c: c.sentiment(redact_pii=True, redact_pii_policies=[]),
         InputError, ("redact_pii_policies is empty", "credit_card_number")),
    Case("redaction/policy-the-local-server-lacks",
         "analyze_call(redact_pii=True, redact_pii_policies=['person_name'])",
         lambda c: c.analyze(audio=c.file("unique-call.wav", c.sample.read_bytes() + secrets.token_bytes(8)),
                             redact_pii=True, redact_pii_policies=["person_name"]),  # not a cached upload
         BadRequestError, ("HTTP 400", "person_name", "not supported by the local", "email_address"),
         {"POST /v2/upload": 1, "POST /v2/transcript": 1}),
]


def table() -> str:
    """The catalogue as a markdown table."""
    rows = ["| case | called | error | message contains | API requests |", "|---|---|---|---|---|"]
    for case in CASES:
        requests = ", ".join(f"{k} ×{v}" for k, v in case.api_requests.items()) or "none"
        words = " · ".join(f"`{w}`" for w in case.words)
        rows.append(f"| {case.id} | `{case.via}` | {case.error.__name__} | {words} | {requests} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------- the test

@pytest.fixture(scope="module")
def keyed_api(tmp_path_factory):
    """A second local server that requires the key ``right-key``."""
    from conftest import start_local_api

    server = start_local_api(tmp_path_factory.mktemp("keyed_api"), api_key="right-key")
    yield server
    server.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case, request, prefect_harness, use_local_api, sample_call, tmp_path,
                                      monkeypatch):
    server = use_local_api
    wrong_key = None
    if case.server == "keyed":
        server = request.getfixturevalue("keyed_api")
        wrong_key = f"wrong-key-{secrets.token_hex(8)}"
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", server.url)
        monkeypatch.setenv("ASSEMBLYAI_LLM_GATEWAY_BASE_URL", server.url)
        monkeypatch.setenv("ASSEMBLYAI_API_KEY", wrong_key)
    ctx = Ctx(tmp=tmp_path, sample=sample_call)
    server.reset_request_counts()

    with pytest.raises(Exception) as info:
        case.run(ctx)

    exc, message = info.value, str(info.value)
    assert type(exc) is case.error or (case.error is InputError and isinstance(exc, InputError)), \
        f"{type(exc).__name__}: {message}"
    missing = [w for w in case.words if w not in message]
    assert not missing, f"message lacks {missing}: {message}"
    assert server.api_counts() == case.api_requests, message
    if not case.api_requests:
        assert isinstance(exc, InputError)  # refused before any request: an input error
    if wrong_key:
        assert exc.status_code == 401 and not exc.retryable
        assert wrong_key not in message and "right-key" not in message
    assert not ctx.results.exists() or not any(ctx.results.rglob("*")), "nothing is written for bad input"



def test_a_misspelt_key_inside_a_parameter_is_refused_with_its_path(prefect_harness, use_local_api, sample_call,
                                                                     tmp_path):
    """Nested parameter models are closed: a flow called from Python refuses an unknown key inside a
    question or a rubric line, naming its path, before any request. (Through the Prefect API the
    same parameters get a 409: tests/test_deployments.py.)"""
    from prefect.exceptions import ParameterTypeError

    from flows.analyze import analyze_call
    from flows.scorecard import sales_scorecard
    from flows.sentiment import call_sentiment

    use_local_api.reset_request_counts()
    for flow, parameters, path in (
            (call_sentiment, {"questions": [{"question": "Why?", "contxt": "x"}]}, "questions.0.contxt"),
            (sales_scorecard, {"rubric": [{"name": "Greets", "optins": ["yes", "no"]}]}, "rubric.0.optins"),
            (analyze_call, {"questions": [{"question": "Why?", "answer_fromat": "x"}]}, "questions.0.answer_fromat")):
        with pytest.raises(ParameterTypeError, match=rf"{path}: Extra inputs are not permitted"):
            flow(audio=str(sample_call), results_dir=str(tmp_path / "results"), **parameters)
    assert use_local_api.api_counts() == {}
    assert not (tmp_path / "results").exists()

if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
