"""Claims checked against who said them, and repeated or missing content (callflows.quotes and the
analyses' answer_problems), on hand-built transcripts; then the one retry of ask_structured through
the Prefect engine against a scripted gateway. The flows on the local server are checked in
test_scorecard and test_sentiment_flow."""
from __future__ import annotations

import json

import pytest
from prefect import flow

from callflows.metrics import conversation_metrics
from callflows.models import Transcript, Utterance
from callflows.quotes import check_quote, repeats, restates, side_named_in
from callflows.scorecard import DEFAULT_ROLES, DEFAULT_RUBRIC, CriterionResult, RubricCriterion, Scorecard
from callflows.scorecard import answer_model, answer_problems, scorecard_of
from callflows.sentiment import DEFAULT_QUESTIONS, ROLES, Question, answers_model, needs_roles, question_answers
from callflows.sentiment import answer_problems as sentiment_problems
from callflows.structured import parse_answer
from stub_http import Canned, StubServer

LINES = [("A", "Thank you for calling Lakeside Energy, this is Maria speaking. How can I help you today?"),
         ("B", "Hi Maria. My bill doubled this month and I'm really frustrated."),
         ("A", "I am sorry to hear that, Tom. Let me look at your account."),
         ("B", "Thanks, that would be great.")]
UTTERANCES = [Utterance(speaker=s, text=t, start=i * 5000, end=i * 5000 + 4000, confidence=0.9)
              for i, (s, t) in enumerate(LINES)]
TEXT = " ".join(t for _, t in LINES)
AGENT, CUSTOMER = {"A"}, {"B"}


@pytest.mark.parametrize("quote", [
    "this is Maria speaking",
    "THANK YOU for calling lakeside energy",  # case folded
    "I am sorry to hear that Tom",  # punctuation folded
    '"Thank you for calling Lakeside Energy."',  # quote marks
    "Speaker A: this is Maria speaking",  # a speaker label in front
    "Thank you for calling... sorry to hear that",  # parts in order
    "I’m really frustrated",  # a typographic apostrophe
])
def test_quote_that_occurs_is_found(quote):
    assert check_quote(quote, UTTERANCES, None) == "verified"


@pytest.mark.parametrize("quote", [
    "We will give you a full refund today",  # invented
    "sorry to hear that... Thank you for calling",  # parts out of order
    "Maria speaking energy",  # words from the text, not a passage
    "bill doub",  # part of a word
    "his is Maria",  # part of a word at the start
    "",
])
def test_quote_that_does_not_occur_is_not_found(quote):
    assert check_quote(quote, UTTERANCES, None) == "not_found"


@pytest.mark.parametrize("quote, speakers, expected", [
    ("this is Maria speaking", AGENT, "verified"),
    ("My bill doubled this month", CUSTOMER, "verified"),
    ("My bill doubled this month", AGENT, "misattributed"),  # the customer's words, claimed for the agent
    ("Customer: my bill doubled this month", CUSTOMER, "verified"),
    ("Thank you for calling... Let me look at your account", AGENT, "verified"),  # two of the agent's turns
    ("Thank you for calling... my bill doubled", AGENT, "misattributed"),  # one part is the customer's
    ("How can I help you today? Hi Maria", AGENT, "misattributed"),  # runs across a change of speaker
    ("How can I help you today? Hi Maria", None, "verified"),  # anyone: it does occur
    ("My bill doubled this month", None, "verified"),
    ("My bill doubled this month", set(), "verified"),  # no speaker has the role: anyone's words
    ("We will refund you", AGENT, "not_found"),
    ("We will refund you", None, "not_found"),
])
def test_quote_is_checked_against_the_speaker_the_claim_is_about(quote, speakers, expected):
    assert check_quote(quote, UTTERANCES, speakers) == expected


def test_repeats_restatements_and_the_side_a_question_names():
    assert repeats(["Ask more questions.", "ask more questions", "Next steps.", "ASK MORE QUESTIONS!"]) == [1, 3]
    assert restates("", "yes") and restates("Yes.", "yes") and restates("frustrated", "The customer was frustrated.")
    assert not restates("She greeted the caller by name.", "yes")
    assert side_named_in("What quote best demonstrates the customer's level of interest?") == "customer"
    assert side_named_in("Provide a quote from the agent that demonstrates their level of enthusiasm.") == "agent"
    assert side_named_in("Quote the most important moment of the call.") == "anyone"
    assert side_named_in("What did the agent promise the customer?") == "anyone"  # both sides: not for us to guess


def _scorecard_answer(rubric, **changes):
    good = {"summary": "A billing complaint.", "talk_listen_assessment": "Balanced.",
            "sentiment_shifts": [{"shift": "frustrated to calm", "cause": "the apology",
                                  "quote": "Thanks, that would be great"}],
            "coaching_suggestions": ["Ask more questions.", "Summarise next steps.", "Offer a payment plan."],
            **{f"criterion_{i}": {"answer": "yes", "reason": f"reason {i}", "quote": "this is Maria speaking"}
               for i in range(1, len(rubric) + 1)}}
    return parse_answer(json.dumps({**good, **changes}), answer_model(rubric))


def test_scorecard_answer_problems_name_each_field():
    """Rubric quotes need the rep's words (or the side quote_from names), shifts the customer's;
    repeats and reasons that only restate the answer are problems; none of them quotes the call."""
    rubric = [*DEFAULT_RUBRIC[:2], RubricCriterion(name="Customer agreed to a follow-up", quote_from="customer")]
    mapping = {"A": "Sales Rep", "B": "Customer"}
    clean = _scorecard_answer(rubric, criterion_3={"answer": "yes", "reason": "r3", "quote": "that would be great"})
    assert answer_problems(clean, rubric, UTTERANCES, mapping, DEFAULT_ROLES) == []
    shift = {"shift": "frustrated to calm", "cause": "the apology", "quote": "I am sorry to hear that"}
    bad = _scorecard_answer(
        rubric, sentiment_shifts=[shift, {**shift, "quote": "Thanks, that would be great"}],
        coaching_suggestions=["Ask more questions.", "ask more questions", "Offer a payment plan."],
        criterion_1={"answer": "yes", "reason": "Yes.", "quote": "My bill doubled this month"},
        criterion_2={"answer": "no", "reason": "reason 3", "quote": "We will refund you"},
        criterion_3={"answer": "yes", "reason": "reason 3", "quote": "this is Maria speaking"})
    problems = answer_problems(bad, rubric, UTTERANCES, mapping, DEFAULT_ROLES)
    assert problems == [
        "sentiment_shifts[0].quote was said by another speaker, not the Customer: quote the Customer's own words",
        "criterion_1.quote was said by another speaker, not the Sales Rep: quote the Sales Rep's own words",
        "criterion_2.quote does not occur in the transcript: copy the Sales Rep's words exactly",
        "criterion_3.quote was said by another speaker, not the Customer: quote the Customer's own words",
        "sentiment_shifts[1] repeats an earlier shift: list only different moments",
        "coaching_suggestions[1] repeats an earlier suggestion: give different suggestions",
        "criterion_3.reason repeats an earlier criterion's reason: give each criterion its own reason",
        "criterion_1.reason only repeats the answer: say why"]
    assert not any(t.casefold() in p.casefold() for p in problems for _, t in LINES for t in t.split(". "))

    metrics = conversation_metrics(UTTERANCES, [], 20000)
    transcript = Transcript(id="t1", status="completed", text=TEXT, utterances=UTTERANCES)
    card = scorecard_of(bad, rubric, transcript, mapping, DEFAULT_ROLES, metrics, 0.5, 0.4, audio="call.wav",
                        transcript_id="t1", prompt_template="scorecard", llm={"model": "m"})
    assert [s.quote_check for s in card.sentiment_shifts] == ["misattributed"]  # the repeat is dropped
    assert card.coaching_suggestions == ["Ask more questions.", "Offer a payment plan."]
    assert [c.quote_check for c in card.criteria] == ["misattributed", "not_found", "misattributed"]
    assert (card.unverified_quotes, card.misattributed_quotes) == (4, 3)
    assert card.problems == problems[-2:]  # the repeated shift and suggestion were dropped, not left over
    markdown = card.to_markdown()
    assert "“My bill doubled this month” *(misattributed)*" in markdown and "*(not found)*" in markdown
    assert "4 quote(s) not verified (3 misattributed)" in markdown and "Left after one retry" in markdown


def test_results_written_before_quote_checks_still_load():
    old = {"name": "Greeted", "answer": "yes", "reason": "r", "quote": "hello", "quote_verified": True}
    assert CriterionResult.model_validate(old).quote_check == "verified"
    assert CriterionResult.model_validate({**old, "quote_verified": False}).quote_check == "not_found"
    assert "quote_verified" not in CriterionResult.model_validate(old).model_dump()


def test_sentiment_answers_have_a_reason_and_a_quote_where_the_question_asks():
    """The default questions' answer format asks for a reason; questions 4 and 5 ask for a quote of
    the customer and of the agent."""
    schema = answers_model(DEFAULT_QUESTIONS).model_json_schema()
    shapes = [sorted(schema["$defs"][f"Answer{i}"]["required"]) for i in range(1, 6)]
    assert shapes == [["answer", "reason"]] * 3 + [["answer", "quote", "reason"]] * 2
    assert needs_roles(DEFAULT_QUESTIONS) and not needs_roles([Question(question="Quote the best moment.")])
    assert sorted(answers_model([Question(question="How did it go?")]).model_json_schema()["$defs"]["Answer1"]
                  ["required"]) == ["answer"]

    answer = {f"answer_{i}": {"answer": f"Answer {i}.", "reason": f"Because of {i}."} for i in range(1, 4)}
    answer["answer_2"] = {"answer": "Positive.", "reason": "positive"}
    answer["answer_4"] = {"answer": "Interested.", "reason": "They asked.", "quote": "Let me look at your account"}
    answer["answer_5"] = {"answer": "Keen.", "reason": "Warm.", "quote": "How can I help you today"}
    parsed = parse_answer(json.dumps(answer), answers_model(DEFAULT_QUESTIONS))
    mapping = {"A": "Agent", "B": "Customer"}
    assert sentiment_problems(parsed, DEFAULT_QUESTIONS, UTTERANCES, mapping) == [
        "answer_4.quote was said by another speaker, not the Customer: quote the Customer's own words",
        "answer_2.reason only repeats the answer: say why, as the answer format asks"]
    fields = question_answers(parsed, DEFAULT_QUESTIONS, UTTERANCES, mapping, ROLES)
    assert [a.quote_check for a in fields["answers"]] == [None, None, None, "misattributed", "verified"]
    assert (fields["unverified_quotes"], fields["misattributed_quotes"]) == (1, 1)
    assert fields["problems"] == ["answer_2.reason only repeats the answer: say why, as the answer format asks"]
    assert fields["answers"][4].markdown == "Keen. Warm. — “How can I help you today”"


QUESTION = [Question(question="What quote best demonstrates the customer's interest?",
                     answer_format="<answer> <reason>")]
MISATTRIBUTED = {"answer_1": {"answer": "Keen.", "reason": "They asked for help.", "quote": "How can I help you"}}
MAPPING = {"A": "Agent", "B": "Customer"}
VERIFIED = {"answer_1": {"answer": "Keen.", "reason": "They thanked the agent.", "quote": "that would be great"}}


def _chat(content: str) -> Canned:
    return Canned(200, {"request_id": "r", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": content}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                                              "total_tokens": 2}})


@pytest.mark.parametrize("second, expected", [
    (json.dumps(VERIFIED), "verified"),  # the retry fixed it
    (json.dumps(MISATTRIBUTED), "misattributed"),  # still wrong: kept, marked
    ("not JSON", "misattributed"),  # the retry is unusable: the first answer is kept
])
def test_an_answer_with_problems_is_sent_back_once_with_them(prefect_harness, monkeypatch, second, expected):
    from tasks.llm import ask_structured

    @flow
    def ask():
        answer, usage = ask_structured(
            "prompt", answers_model(QUESTION), schema_name="sentiment_answers", model="m", max_tokens=100,
            temperature=0.0, review=lambda a: sentiment_problems(a, QUESTION, UTTERANCES, MAPPING))
        return question_answers(answer, QUESTION, UTTERANCES, MAPPING, ROLES), usage

    with StubServer({"POST /v1/chat/completions": [_chat(json.dumps(MISATTRIBUTED)), _chat(second)]}) as gateway:
        monkeypatch.setenv("ASSEMBLYAI_BASE_URL", gateway.url)
        monkeypatch.setenv("ASSEMBLYAI_LLM_GATEWAY_BASE_URL", gateway.url)
        fields, usage = ask()
    assert gateway.count("POST", "/v1/chat/completions") == 2 and usage.completion_tokens == 2
    retry = json.loads(gateway.bodies[1])["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert "answer_1.quote was said by another speaker, not the Customer" in retry[-1]["content"]
    assert fields["answers"][0].quote_check == expected
