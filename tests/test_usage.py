"""Usage and cost estimates (callflows.usage), the flows' redaction options, the inbox's totals."""
from __future__ import annotations

import pytest

from callflows.errors import InputError
from callflows.llm import LLMUsage
from callflows.models import PromptTokensDetails, Transcript, TranscriptionOptions
from callflows.usage import estimate, load_prices, transcription_usage


@pytest.fixture()
def prices(tmp_path, monkeypatch):
    path = tmp_path / "prices.toml"
    path.write_text('currency = "USD"\nsource = "test"\nas_of = "2026-12-01"\n'
                    '[speech_models]\n"universal-3-pro" = 0.36\n"universal-2" = 0.18\n'
                    '[options]\nspeaker_labels = 0.036\nsentiment_analysis = 0.018\nredact_pii = 0.072\n'
                    'speaker_identification = 0.0\n'
                    '[llm."m1"]\ninput = 2.0\ncached_input = 0.5\noutput = 10.0\n')
    monkeypatch.setenv("CALLFLOWS_PRICES_FILE", str(path))
    return load_prices()


def _transcript(**fields) -> Transcript:
    return Transcript(id="t1", status="completed", audio_duration=360.0, **fields)


def _llm(prompt, cached, completion, model="m1") -> LLMUsage:
    return LLMUsage(model=model, prompt_tokens=prompt, completion_tokens=completion,
                    prompt_tokens_details=PromptTokensDetails(cached_tokens=cached))


def test_a_new_transcript_costs_its_model_and_priced_options_plus_each_llm_request(prices):
    options = TranscriptionOptions(speaker_labels=True, sentiment_analysis=True, redact_pii=True,
                                   redact_pii_policies=["phone_number"], multichannel=None)
    t = transcription_usage(_transcript(speech_model_used="universal-2"), options, True, True, prices)
    assert t.priced_options == ["redact_pii", "sentiment_analysis", "speaker_identification", "speaker_labels"]
    usage = estimate(t, {"sentiment": _llm(1000, 400, 100), "scorecard": _llm(2000, 0, 300)}, prices)
    # 0.1 h × (0.18 + 0.036 + 0.018 + 0.072 + 0) = 0.0306
    assert usage.cost.transcription == pytest.approx(0.0306)
    # (600 × 2 + 400 × 0.5 + 100 × 10) / 1e6 and (2000 × 2 + 300 × 10) / 1e6
    assert usage.cost.llm == {"sentiment": pytest.approx(0.0024), "scorecard": pytest.approx(0.007)}
    assert usage.cost.total == pytest.approx(0.0306 + 0.0024 + 0.007)
    assert usage.cost.estimate and usage.cost.prices_as_of == "2026-12-01" and usage.cost.notes == []
    assert "360 s of audio transcribed; 3000 prompt tokens (400 cached) + 400 completion tokens" in usage.summary()


def test_a_reused_transcript_costs_only_the_llm_requests_and_says_so(prices):
    t = transcription_usage(_transcript(speech_model_used="universal-3-pro"),
                            TranscriptionOptions(speaker_labels=True), False, False, prices)
    usage = estimate(t, {"segmentation": _llm(1000, 1000, 50)}, prices)
    assert usage.cost.transcription == 0 and usage.cost.total == pytest.approx((1000 * 0.5 + 50 * 10) / 1e6)
    assert "reused from the cache" in usage.cost.notes[0] and "not billed again" in usage.summary()


def test_a_local_speech_model_is_priced_as_the_requested_one_and_an_unknown_llm_leaves_the_total_open(prices):
    t = transcription_usage(_transcript(speech_model_used="whisper-tiny.en"), TranscriptionOptions(), True,
                            False, prices)
    assert (t.speech_model, t.priced_as) == ("whisper-tiny.en", "universal-3-pro")
    usage = estimate(t, {"sentiment": _llm(10, 0, 10, model="gpt-unknown")}, prices)
    assert usage.cost.transcription == pytest.approx(0.036) and usage.cost.llm == {"sentiment": None}
    assert usage.cost.total is None and "unknown" in usage.summary()
    assert any("priced as universal-3-pro" in n for n in usage.cost.notes)
    assert any("'gpt-unknown'" in n for n in usage.cost.notes)


def test_the_bundled_price_table_names_its_source_and_date_and_prices_the_defaults(monkeypatch):
    from callflows.llm import DEFAULT_LLM_MODEL
    from callflows.models import DEFAULT_SPEECH_MODELS

    monkeypatch.delenv("CALLFLOWS_PRICES_FILE", raising=False)
    table = load_prices()
    assert "assemblyai.com/pricing" in table.source and table.as_of[:4] == "2026"
    assert DEFAULT_LLM_MODEL in table.llm and DEFAULT_SPEECH_MODELS[0] in table.speech_models
    assert {"speaker_labels", "sentiment_analysis", "redact_pii"} <= set(table.options)


def test_a_broken_price_table_is_an_input_error_naming_the_file(tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text("currency = \n")
    monkeypatch.setenv("CALLFLOWS_PRICES_FILE", str(bad))
    with pytest.raises(InputError, match="bad.toml cannot be used.*CALLFLOWS_PRICES_FILE"):
        load_prices()


# --- the flows' redaction parameters --------------------------------------------------------------

def test_redaction_parameters_become_the_api_options_or_nothing():
    from flows.parameters import redaction

    assert redaction(False, ["phone_number"], "hash") == {}
    assert redaction(True, ["phone_number", " email_address", "phone_number"], "entity_name") == {
        "redact_pii": True, "redact_pii_policies": ["phone_number", "email_address"], "redact_pii_sub": "entity_name"}
    with pytest.raises(InputError, match="redact_pii_policies is empty"):
        redaction(True, [], "hash")
    with pytest.raises(InputError, match=r"\['phone'\] are not AssemblyAI PII policies.*phone_number"):
        redaction(True, ["phone"], "hash")


def test_call_options_carry_the_redaction_and_leave_other_options_unchanged(sample_call):
    from callflows.audio import call_options, check_audio
    from flows.parameters import redaction

    source = check_audio(sample_call)
    plain = call_options(source, None, None)
    redacted = call_options(source, None, None, redaction(True, ["credit_card_number"], "hash"))
    assert plain.redact_pii is None and "redact_pii" not in plain.to_params("u").model_dump(exclude_none=True)
    assert redacted.model_dump(exclude={"redact_pii", "redact_pii_policies", "redact_pii_sub"}) == plain.model_dump(
        exclude={"redact_pii", "redact_pii_policies", "redact_pii_sub"})
    assert (redacted.redact_pii, redacted.redact_pii_policies, redacted.redact_pii_sub) == (
        True, ["credit_card_number"], "hash")


# --- the inbox ------------------------------------------------------------------------------------

def test_inbox_totals_add_up_the_calls_and_keep_unpriced_ones_apart(prices):
    from flows.batch import UsageTotals

    new = estimate(transcription_usage(_transcript(speech_model_used="universal-2"), TranscriptionOptions(), True,
                                       False, prices), {"sentiment": _llm(100, 20, 10)}, prices)
    reused = estimate(transcription_usage(_transcript(), TranscriptionOptions(), False, False, prices),
                      {"scorecard": _llm(200, 150, 20)}, prices)
    unpriced = estimate(transcription_usage(_transcript(), TranscriptionOptions(), False, False, prices),
                        {"scorecard": _llm(5, 0, 5, model="other")}, prices)
    totals = UsageTotals.of([new, reused, unpriced])
    assert (totals.calls, totals.audio_transcribed_s, totals.audio_reused_s) == (3, 360, 720)
    assert (totals.prompt_tokens, totals.cached_tokens, totals.completion_tokens) == (305, 170, 35)
    assert totals.estimated_cost == pytest.approx(new.cost.total + reused.cost.total)
    assert totals.calls_without_price == 1
    assert "6.0 min of audio transcribed, 12.0 min reused" in totals.to_markdown()


def test_sidecar_json_files_are_not_recordings(tmp_path):
    from flows.batch import sidecar_files

    files = [tmp_path / n for n in ("a.wav", "a.json", "b.json", "c.mp3", "c.JSON", "notes.txt")]
    assert sidecar_files(files) == {tmp_path / "a.json", tmp_path / "c.JSON"}
