"""Tests of the rule-based PII redaction (local_api/engines/pii.py): pure functions, no server; and one
run of the offline pipeline (Whisper tiny.en) on the generated PII call, samples/pii_call.wav."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from local_api.engines.pii import SUPPORTED_POLICIES, redact_words, unsupported_policies

ALL = sorted(SUPPORTED_POLICIES)


def words_of(sentence: str) -> list[dict]:
    """AssemblyAI-shaped words, one per space-separated piece: word i spans 1000*i .. 1000*i+800 ms."""
    return [{"text": t, "start": 1000 * i, "end": 1000 * i + 800, "confidence": 0.9 - i / 100,
             "speaker": "A"} for i, t in enumerate(sentence.split())]


def text_of(words: list[dict]) -> str:
    return " ".join(w["text"] for w in words)


def redact(sentence: str, policies=ALL, substitution: str = "hash"):
    new_words, entities = redact_words(words_of(sentence), policies, substitution)
    return text_of(new_words), entities


def test_supported_policy_names_are_assemblyais():
    """The six names, spelled as in AssemblyAI's PII policy table."""
    assert SUPPORTED_POLICIES == {"credit_card_number", "phone_number", "email_address",
                                  "banking_information", "us_social_security_number", "date_of_birth"}


@pytest.mark.parametrize("sentence, redacted", [
    ("My card is 4111 1111 1111 1111.", "My card is #### #### #### ####."),
    ("Card 4111-1111-1111-1111, thanks.", "Card ####-####-####-####, thanks."),
    ("It's four one one one one one one one one one one one one one one one.",
     "It's #### ### ### ### ### ### ### ### ### ### ### ### ### ### ### ###."),
])
def test_card_number_written_grouped_hyphenated_and_spoken(sentence, redacted):
    """A Luhn-valid 16-digit number is a card however Whisper writes it; trailing punctuation stays."""
    text, entities = redact(sentence, ["credit_card_number"])
    assert text == redacted
    assert [e["entity_type"] for e in entities] == ["credit_card_number"]


def test_card_entity_spans_all_its_words():
    """Digits split over four words make one entity: start of the first word, end of the last."""
    _, entities = redact("My card is 4111 1111 1111 1111.", ["credit_card_number"])
    assert entities == [{"entity_type": "credit_card_number", "start": 3000, "end": 6800}]


def test_luhn_failure_is_not_a_card_but_banking_information_when_asked():
    """4111 1111 1111 1112 fails Luhn: no card; a long digit run is banking_information if requested."""
    sentence = "Number 4111 1111 1111 1112 please"
    assert redact(sentence, ["credit_card_number"]) == (sentence, [])
    text, entities = redact(sentence, ["credit_card_number", "banking_information"])
    assert text == "Number #### #### #### #### please"
    assert [e["entity_type"] for e in entities] == ["banking_information"]


@pytest.mark.parametrize("number, hashed", [
    ("555-0123", "###-####"),
    ("(415) 555-0123", "(###) ###-####"),
    ("+1 415 555 0123", "+# ### ### ####"),
    ("4155550123", "##########"),
])
def test_phone_number_forms(number, hashed):
    """Seven to eleven digits (or a "+" number) in the usual written forms are phone numbers."""
    text, entities = redact(f"Call me at {number} tomorrow", ["phone_number"])
    assert text == f"Call me at {hashed} tomorrow"
    assert [e["entity_type"] for e in entities] == ["phone_number"]


def test_email_keeps_trailing_full_stop_outside():
    """'help@bank.com.' is the address plus the sentence's full stop, which is not redacted."""
    assert redact("Write to help@bank.com.", ["email_address"])[0] == "Write to ####@####.###."
    assert redact("Write to help@bank.com.", ["email_address"], "entity_name")[0] == "Write to [EMAIL_ADDRESS]."


def test_spoken_email_after_cue():
    """'john dot smith at bank dot com' after 'email' is one address; without a cue 'at' is English."""
    text, entities = redact("My email is john dot smith at bank dot com, thanks.", ["email_address"])
    assert text == "My email is #### ### ##### ## #### ### ###, thanks."
    assert entities == [{"entity_type": "email_address", "start": 3000, "end": 9800}]
    assert redact("Look at this dot com", ALL) == ("Look at this dot com", [])


@pytest.mark.parametrize("sentence, redacted", [
    ("My email is tom.fisher at example.com. Thanks", "My email is ###.###### ## #######.###. Thanks"),
    ("My email is tom.fisher, at example dot com.", "My email is ###.######, ## ####### ### ###."),
    ("It's tom.fisher at example.com.", "It's ###.###### ## #######.###."),
])
def test_spoken_email_with_written_local_part(sentence, redacted):
    """'tom.fisher at example.com', as Whisper writes a spoken address: the local part written with its
    dot, the domain written or spoken; a dotted local part, 'at' and a written domain need no cue."""
    text, entities = redact(sentence, ["email_address"])
    assert text == redacted
    assert [e["entity_type"] for e in entities] == ["email_address"]


@pytest.mark.parametrize("sentence, redacted", [
    ("My email is tomfisheratexample.com. Thanks", "My email is ##################.###. Thanks"),
    ("My email is tom.fisherat example.com.", "My email is ###.######## #######.###."),
    ("My email is tom.fisher.atemple.com thanks", "My email is ###.######.#######.### thanks"),
    ("My email is tom dot fisheratexample.com.", "My email is ### ### ###############.###."),
])
def test_email_whose_at_whisper_ran_into_a_word(sentence, redacted):
    """After an e-mail cue, a host name is an address whose '@' Whisper lost, with the written or
    spoken local part just before it."""
    text, entities = redact(sentence, ["email_address"])
    assert text == redacted
    assert len(entities) == 1


@pytest.mark.parametrize("sentence", ["I work at example.com now.", "Visit example.com today."])
def test_host_name_without_email_cue_is_not_redacted(sentence):
    """A web address, or 'at' before one, without an e-mail cue is not an e-mail address."""
    assert redact(sentence, ALL) == (sentence, [])


@pytest.mark.parametrize("sentence, redacted, policy", [
    ("It is 4242, 4242, 4242, 4242, thanks.", "It is ####, ####, ####, ####, thanks.", "credit_card_number"),
    ("It is 555, 212, 3456.", "It is ###, ###, ####.", "phone_number"),
    ("It is 555212, 3456.", "It is ######, ####.", "phone_number"),
])
def test_numbers_grouped_with_commas(sentence, redacted, policy):
    """Spoken digit groups with pauses, as Whisper writes them: the commas do not end the run."""
    text, entities = redact(sentence, ["credit_card_number", "phone_number"])
    assert text == redacted
    assert [e["entity_type"] for e in entities] == [policy]


def test_social_security_number():
    """NNN-NN-NNNN is a US social security number, not a phone number."""
    text, entities = redact("My SSN is 123-45-6789.", ALL)
    assert text == "My SSN is ###-##-####."
    assert [e["entity_type"] for e in entities] == ["us_social_security_number"]


def test_spoken_ssn_needs_its_cue():
    """Nine spoken digits after 'social security number' are an SSN; without the cue, a phone number."""
    nine = "one two three four five six seven eight nine"
    _, entities = redact(f"My social security number is {nine}.", ALL)
    assert [e["entity_type"] for e in entities] == ["us_social_security_number"]
    _, entities = redact(f"It is {nine}.", ALL)
    assert [e["entity_type"] for e in entities] == ["phone_number"]


@pytest.mark.parametrize("sentence, redacted", [
    ("I was born on March 3rd, 1985.", "I was born on ##### ###, ####."),
    ("My date of birth is 03/04/1985.", "My date of birth is ##/##/####."),
    ("My birthday is the 3rd of March.", "My birthday is the ### ## #####."),
])
def test_date_of_birth_after_cue(sentence, redacted):
    """The date after the cue is redacted, the cue itself is not."""
    text, entities = redact(sentence, ["date_of_birth"])
    assert text == redacted
    assert [e["entity_type"] for e in entities] == ["date_of_birth"]


def test_date_without_birth_cue_is_not_redacted():
    """A date alone is the 'date' policy, which this engine does not implement."""
    assert redact("The meeting is on March 3rd, 1985.", ["date_of_birth"]) == \
        ("The meeting is on March 3rd, 1985.", [])


def test_double_and_oh_spoken_digits():
    """'five double five oh one two three' reads 5550123: seven digits, a phone number."""
    text, entities = redact("It's five double five oh one two three.", ALL)
    assert text == "It's #### ###### #### ## ### ### #####."
    assert entities == [{"entity_type": "phone_number", "start": 1000, "end": 7800}]


def test_leading_oh_is_not_a_digit():
    """'Oh, 555-0123' is an interjection then a number: the run never starts with 'oh'."""
    assert redact("Oh, 555-0123 is it.", ALL)[0] == "Oh, ###-#### is it."


def test_words_outside_entities_unchanged():
    """Every word outside an entity is equal to its input (times, speaker, confidence); input untouched."""
    words = words_of("Hi, call 555-0123 now, please.")
    before = copy.deepcopy(words)
    new_words, _ = redact_words(words, ALL)
    assert words == before
    assert len(new_words) == len(words)
    for i in (0, 1, 3, 4):
        assert new_words[i] == words[i]
    assert new_words[2] == {**words[2], "text": "###-####"}


def test_entity_name_merges_entity_words():
    """entity_name: one '[POLICY]' word from the first word's start to the last word's end."""
    words = words_of("My card is 4111 1111 1111 1111. Thanks")
    new_words, entities = redact_words(words, ALL, "entity_name")
    assert text_of(new_words) == "My card is [CREDIT_CARD_NUMBER]. Thanks"
    merged = new_words[3]
    assert (merged["start"], merged["end"], merged["speaker"]) == (3000, 6800, "A")
    assert merged["confidence"] == min(w["confidence"] for w in words[3:7])
    assert new_words[4] == words[7]
    assert entities == [{"entity_type": "credit_card_number", "start": 3000, "end": 6800}]


@pytest.mark.parametrize("substitution", ["hash", "entity_name"])
def test_no_value_survives_in_output(substitution):
    """Entities carry type and times only; no digit or address of the values is left anywhere."""
    sentence = ("Card 4111 1111 1111 1111, phone (415) 555-0123, mail help@bank.com, SSN 123-45-6789, "
                "born on 03/04/1985.")
    new_words, entities = redact_words(words_of(sentence), ALL, substitution)
    assert all(set(e) == {"entity_type", "start", "end"} for e in entities)
    assert len(entities) == 5
    dumped = json.dumps([new_words, entities])
    for value in ("4111", "1111", "415", "0123", "help", "bank.com", "6789", "1985"):
        assert value not in dumped


def test_only_requested_policies_are_redacted():
    """With only email_address asked for, the phone number and card stay as spoken."""
    sentence = "Call 555-0123 or mail help@bank.com about 4111 1111 1111 1111."
    text, entities = redact(sentence, ["email_address"])
    assert text == "Call 555-0123 or mail ####@####.### about 4111 1111 1111 1111."
    assert [e["entity_type"] for e in entities] == ["email_address"]
    assert redact(sentence, []) == (sentence, [])


@pytest.mark.parametrize("sentence", [
    "I'd like 2 checkbooks at 9:30 a.m.",
    "The fee is $45.50, or 45.50 dollars.",
    "Oh, I see. One or two of them, maybe three.",
    "I was born in Boston, may I ask why?",
])
def test_ordinary_numbers_and_words_not_redacted(sentence):
    """Short numbers, times, amounts, 'oh' and 'may' are not PII."""
    assert redact(sentence, ALL) == (sentence, [])


def test_unsupported_policy_raises_and_is_listed():
    """Names not implemented are listed in input order, once; redact_words refuses them by name."""
    assert unsupported_policies(["person_name", "phone_number", "location", "person_name"]) == \
        ["person_name", "location"]
    with pytest.raises(ValueError, match="person_name") as err:
        redact_words(words_of("hello"), ["phone_number", "person_name"])
    assert "credit_card_number" in str(err.value)  # the allowed values are named


def test_bad_substitution_and_string_policies_raise():
    """An unknown redact_pii_sub, or one string instead of a list of policies, is a ValueError."""
    with pytest.raises(ValueError, match="'stars'.*hash, entity_name"):
        redact_words(words_of("hello"), ["phone_number"], "stars")
    with pytest.raises(ValueError, match="list of policy names"):
        redact_words(words_of("hello"), "phone_number")


def test_policies_may_be_a_generator():
    """The policies are read once, so a generator works like a list."""
    text, _ = redact("Call 555-0123", (p for p in ["phone_number"]))
    assert text == "Call ###-####"


def test_create_options_are_checked_before_the_job():
    """POST /v2/transcript: redact_pii needs a policy, refuses (400) the policies the offline rules do
    not find, naming them and the supported ones, and an unknown redact_pii_sub; valid options are kept."""
    from local_api.transcripts import ParamError, validate_params

    body = {"audio_url": "https://example.invalid/call.wav", "redact_pii": True}
    with pytest.raises(ParamError, match="at least one PII policy"):
        validate_params(body)
    with pytest.raises(ParamError, match=r"person_name: not supported .* credit_card_number"):
        validate_params(dict(body, redact_pii_policies=["phone_number", "person_name"]))
    with pytest.raises(ParamError, match="redact_pii_sub must be one of hash, entity_name"):
        validate_params(dict(body, redact_pii_policies=["phone_number"], redact_pii_sub="stars"))
    params = validate_params(dict(body, redact_pii_policies=["phone_number"], redact_pii_sub="entity_name"))
    assert (params["redact_pii"], params["redact_pii_policies"], params["redact_pii_sub"]) == (
        True, ["phone_number"], "entity_name")


def test_pipeline_redacts_before_text_and_sentiment(monkeypatch):
    """transcribe_file with redact_pii_policies: the text, words and sentiment results hold the
    redacted words only (the speech engine is replaced by fixed words here)."""
    import numpy as np

    from local_api.engines import pipeline, stt

    spoken = words_of("Sure, my number is 555-0123 and my card is 4111 1111 1111 1111. Thanks!")
    monkeypatch.setattr(pipeline, "decode_file", lambda path: np.zeros(16_000 * 20, np.float32))
    monkeypatch.setattr(stt, "transcribe_words", lambda audio, model, lang: ([dict(w) for w in spoken], "en_us"))
    result = pipeline.transcribe_file("call.wav", speech_model="tiny.en", sentiment_analysis=True,
                                      redact_pii_policies=["phone_number", "credit_card_number"])
    dumped = json.dumps(result)
    assert "555" not in dumped and "4111" not in dumped and "1111" not in dumped
    assert result["text"] == "Sure, my number is ###-#### and my card is #### #### #### ####. Thanks!"
    assert "###-####" in result["sentiment_analysis_results"][0]["text"]


# samples/pii_call.wav (scripts/make_sample_call.py --call pii) speaks the card 4242 4242 4242 4242,
# the phone number 555 212 3456 and tom.fisher@example.com; Whisper tiny.en writes them "4242, 4242,
# 4242, 4242,", "555, 212, 3456." and "tom.fisher at example.com.". These are their pieces.
PII_CALL = Path(__file__).resolve().parents[1] / "samples" / "pii_call.wav"
PII_PIECES = {"4242", "555", "212", "3456", "tom", "fisher", "example"}
SPOKEN_DIGITS = {"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
CALL_OPTIONS = dict(speech_model="tiny.en", speaker_labels=True, sentiment_analysis=True)


def texts_in(value) -> list[str]:
    """Every "text" value in a transcript (or part of one), at any depth."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in ([v] if k == "text" and isinstance(v, str) else texts_in(v))]
    if isinstance(value, list):
        return [t for v in value for t in texts_in(v)]
    return []


def tokens_of(texts) -> set[str]:
    return {t for text in texts for t in re.findall(r"[a-z0-9]+", text.lower())}


@pytest.fixture(scope="module")
def pii_call_plain():
    """The PII call transcribed once without redaction (the positive control)."""
    from local_api.engines.pipeline import transcribe_file

    return transcribe_file(PII_CALL, **CALL_OPTIONS)


def test_pii_call_redacted_end_to_end(pii_call_plain):
    """The real pipeline (tiny.en, diarization, sentiment) on the generated PII call with hash redaction:
    the card, phone and e-mail pieces that the unredacted transcript has are in none of text, words,
    utterances, sentences, sentiment results or VTT captions; the rest of the call is still there."""
    from local_api.engines.pipeline import sentences_of, transcribe_file
    from local_api.subtitles import to_vtt

    plain_tokens = tokens_of(texts_in(pii_call_plain))
    assert PII_PIECES <= plain_tokens, f"positive control: {sorted(PII_PIECES - plain_tokens)} not transcribed"

    result = transcribe_file(PII_CALL, redact_pii_policies=["credit_card_number", "phone_number", "email_address"],
                             redact_pii_sub="hash", **CALL_OPTIONS)
    captions = [line for line in to_vtt(result["words"]).splitlines() if "-->" not in line]
    parts = {"text": [result["text"]], "words": texts_in(result["words"]),
             "utterances": texts_in(result["utterances"]), "sentences": texts_in(sentences_of(result["words"])),
             "sentiment": texts_in(result["sentiment_analysis_results"]), "captions": captions}
    for name, texts in parts.items():
        assert texts, name
        tokens = tokens_of(texts)
        assert not tokens & PII_PIECES, (name, sorted(tokens & PII_PIECES))
        assert not {t for t in tokens if any(c.isdigit() for c in t)}, name  # the call has no other numbers
        assert not tokens & SPOKEN_DIGITS, name
    assert "#" in result["text"] and "#" in " ".join(parts["sentiment"])
    assert {"card", "phone", "email", "payment"} <= tokens_of([result["text"]])  # the rest is still there
    assert len(result["words"]) == len(pii_call_plain["words"])  # hash keeps every word
