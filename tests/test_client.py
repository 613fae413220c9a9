"""The requests-based clients against the real local server (subprocess) and a scripted stub."""
import time

import pytest
from pydantic import SecretStr

from callflows.client import AssemblyAIClient, LLMGatewayClient
from callflows.errors import (
    AuthenticationError, BadRequestError, NotFoundError, RateLimitError, ServerError, TransportError,
)
from callflows.models import ChatCompletionRequest, ChatMessage, TranscriptionOptions, TranscriptStatus
from callflows.settings import Settings
from conftest import free_port, start_local_api
from stub_http import Canned, StubServer


def settings_for(url: str, key: str | None = None) -> Settings:
    return Settings(base_url=url, llm_gateway_base_url=url, api_key=SecretStr(key) if key else None)


@pytest.fixture(scope="module")
def completed(local_api, sample_call):
    """Upload and transcribe the sample once (speaker labels + sentiment) for the tests of this module."""
    client = AssemblyAIClient(settings_for(local_api.url))
    upload = client.upload(sample_call)
    created = client.create_transcript(
        TranscriptionOptions(speaker_labels=True, sentiment_analysis=True).to_params(upload.upload_url))
    deadline = time.monotonic() + 300
    transcript = created
    while not transcript.is_done and time.monotonic() < deadline:
        time.sleep(1)
        transcript = client.get_transcript(created.id)
    return client, upload, created, transcript


def test_upload_create_poll_gives_words_utterances_and_sentiment(completed):
    """Upload → create (status queued) → poll to completed, with AssemblyAI's shapes and ms units."""
    _, upload, created, transcript = completed
    assert upload.upload_url.startswith("http")
    assert created.status == TranscriptStatus.queued and created.text is None
    assert transcript.status == TranscriptStatus.completed, transcript.error
    words = transcript.words
    assert len(words) > 100
    assert all(isinstance(w.start, int) and w.start <= w.end for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    assert words[-1].end > 60_000  # the sample is 70 s long: times are in ms
    assert {u.speaker for u in transcript.utterances} == {"A", "B"}
    assert {s.sentiment for s in transcript.sentiment_analysis_results} <= {"POSITIVE", "NEUTRAL", "NEGATIVE"}
    assert all(word in transcript.text.lower() for word in ("maria", "bill", "refund", "wonderful day"))
    assert 65 <= transcript.audio_duration <= 75


def test_vtt_and_sentences(completed):
    """GET …/vtt returns WebVTT captions; GET …/sentences returns sentences with words."""
    client, _, _, transcript = completed
    vtt = client.get_subtitles(transcript.id, "vtt", chars_per_caption=40)
    assert vtt.startswith("WEBVTT")
    assert "-->" in vtt
    sentences = client.get_sentences(transcript.id)
    assert len(sentences.sentences) >= 10 and sentences.sentences[0].words


def test_unknown_transcript_is_not_found_and_not_retryable(local_api):
    """An unknown id maps to NotFoundError (AssemblyAI answers 400 "transcript id not found")."""
    client = AssemblyAIClient(settings_for(local_api.url))
    with pytest.raises(NotFoundError) as info:
        client.get_transcript("3f1c8a9e-0000-4000-8000-000000000000")
    assert info.value.status_code in (400, 404) and not info.value.retryable
    assert "not found" in info.value.error.lower()


def test_wrong_key_is_401_without_leaking_the_key(tmp_path):
    """A server with a key refuses another key with 401: AuthenticationError, not retryable, no key in text."""
    server = start_local_api(tmp_path / "keyed", api_key="right-key-0123456789")
    try:
        client = AssemblyAIClient(settings_for(server.url, "wrong-key-SECRET-9876"))
        with pytest.raises(AuthenticationError) as info:
            client.get_transcript("3f1c8a9e-0000-4000-8000-000000000000")
        assert info.value.status_code == 401 and not info.value.retryable
        assert "SECRET" not in str(info.value) and "right-key" not in str(info.value)
        ok = AssemblyAIClient(settings_for(server.url, "right-key-0123456789"))
        with pytest.raises(NotFoundError):
            ok.get_transcript("3f1c8a9e-0000-4000-8000-000000000000")
    finally:
        server.stop()


def test_chat_completion_with_structured_output(local_api):
    """POST /v1/chat/completions returns a choice with content and all usage keys."""
    client = LLMGatewayClient(settings_for(local_api.url))
    completion = client.chat_completion(ChatCompletionRequest(
        model="claude-sonnet-4-5-20250929", max_tokens=30, temperature=0,
        messages=[ChatMessage(role="user", content="Say hello.")]))
    assert completion.content.strip()
    assert completion.served_by == "smollm2-135m"  # the local model, named by the X-Callflows-Served-By header
    assert completion.usage.prompt_tokens > 0 and completion.usage.total_tokens >= completion.usage.prompt_tokens


def test_transient_statuses_are_retryable_and_keep_retry_after():
    """503 and 429 are retryable; Retry-After (seconds) is parsed; a non-JSON body is kept as text."""
    with StubServer({
        "GET /v2/transcript/a": [Canned(503, "<html>upstream unavailable</html>", {"Retry-After": "3"})],
        "GET /v2/transcript/b": [Canned(429, {"error": "Too Many Requests"}, {"Retry-After": "7"})],
        "GET /v2/transcript/c": [Canned(400, {"error": "format_text must be a Boolean"})],
    }) as stub:
        client = AssemblyAIClient(settings_for(stub.url))
        with pytest.raises(ServerError) as e503:
            client.get_transcript("a")
        with pytest.raises(RateLimitError) as e429:
            client.get_transcript("b")
        with pytest.raises(BadRequestError) as e400:
            client.get_transcript("c")
    assert e503.value.retryable and e503.value.retry_after_s == 3 and "upstream unavailable" in e503.value.error
    assert e429.value.retryable and e429.value.retry_after_s == 7
    assert not e400.value.retryable and e400.value.error == "format_text must be a Boolean"


@pytest.mark.parametrize("body, expected", [
    ({"error": {"code": 400, "message": "bad messages", "metadata": {}}}, "bad messages"),
    ({"message": "Bad request", "code": 400, "request_id": "r1",
      "metadata": {"errors": ["model nope is not supported"]}}, "model nope is not supported"),
    ({"error": "Authentication error, API token missing/invalid", "status": "error"}, "Authentication error"),
])
def test_gateway_error_shapes_are_all_read(body, expected):
    """The three LLM Gateway error shapes documented in the contract give the API's text."""
    with StubServer({"POST /v1/chat/completions": [Canned(400, body)]}) as stub:
        client = LLMGatewayClient(settings_for(stub.url))
        with pytest.raises(BadRequestError, match=expected):
            client.chat_completion(ChatCompletionRequest(model="nope", messages=[ChatMessage(role="user", content="x")]))


def test_connection_refused_is_a_retryable_transport_error():
    client = AssemblyAIClient(settings_for(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(TransportError) as info:
        client.get_transcript("x")
    assert info.value.retryable and info.value.status_code is None


def test_upload_streams_the_file_with_a_content_length(tmp_path, sample_call):
    """The upload sends the raw bytes with Content-Length (streamed from the file object) and the raw key."""
    with StubServer({"POST /v2/upload": [Canned(200, {"upload_url": "https://cdn.example/upload/1"})]}) as stub:
        AssemblyAIClient(settings_for(stub.url, "k-123")).upload(sample_call)
    method, _, headers, length = stub.requests[0]
    assert length == sample_call.stat().st_size
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["content-length"] == str(length) and lowered["authorization"] == "k-123"


def test_speaker_options_are_sent_as_assemblyai_names_and_checked_first():
    """speaker_options goes out as AssemblyAI's object; bounds out of order, or given together with
    speakers_expected (AssemblyAI takes one or the other), fail before any request."""
    from pydantic import ValidationError

    options = TranscriptionOptions(speaker_labels=True,
                                   speaker_options={"min_speakers_expected": 2, "max_speakers_expected": 4})
    body = options.to_params("https://example.invalid/a.wav").model_dump(exclude_none=True)
    assert body["speaker_options"] == {"min_speakers_expected": 2, "max_speakers_expected": 4}
    assert "speakers_expected" not in body
    with pytest.raises(ValidationError, match="greater than max_speakers_expected"):
        TranscriptionOptions(speaker_options={"min_speakers_expected": 3, "max_speakers_expected": 2})
    with pytest.raises(ValidationError, match="not both"):
        TranscriptionOptions(speakers_expected=2, speaker_options={"max_speakers_expected": 3})


def test_pii_redaction_options_are_checked_before_any_request():
    """redact_pii goes out with AssemblyAI's policy names and substitution; without a policy, or with a
    name that is not one of AssemblyAI's, it fails before any request, naming the input."""
    from pydantic import ValidationError

    options = TranscriptionOptions(redact_pii=True, redact_pii_policies=["credit_card_number", "phone_number"],
                                   redact_pii_sub="entity_name")
    body = options.to_params("https://example.invalid/a.wav").model_dump(exclude_none=True)
    assert (body["redact_pii"], body["redact_pii_policies"], body["redact_pii_sub"]) == (
        True, ["credit_card_number", "phone_number"], "entity_name")
    assert "redact_pii" not in TranscriptionOptions().model_dump(exclude_none=True)  # unset: nothing sent
    with pytest.raises(ValidationError, match="needs redact_pii_policies"):
        TranscriptionOptions(redact_pii=True)
    with pytest.raises(ValidationError, match=r"\['card_number'\] are not AssemblyAI PII policies"):
        TranscriptionOptions(redact_pii=True, redact_pii_policies=["card_number"])
