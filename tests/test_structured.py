"""Structured LLM output: schema for response_format and validation of the answer."""
import pytest

from callflows.errors import LLMOutputError
from callflows.sentiment import Question, answers_model

Q = Question(question="How did it go?")
from callflows.structured import parse_answer, response_format_for


def test_response_format_is_a_closed_json_schema():
    fmt = response_format_for(answers_model([Q, Q]), "answers").model_dump(by_alias=True)
    schema = fmt["json_schema"]["schema"]
    assert fmt["type"] == "json_schema"
    assert schema["required"] == ["answer_1", "answer_2"]
    assert schema["additionalProperties"] is False


def test_valid_answer_parses_even_in_a_code_fence():
    parsed = parse_answer('```json\n{"answer_1": {"answer": "Positive."}}\n```', answers_model([Q]))
    assert parsed.answer_1.answer == "Positive."


def test_invalid_json_keeps_the_raw_answer():
    with pytest.raises(LLMOutputError, match="not valid JSON") as info:
        parse_answer("The call was positive.", answers_model([Q]))
    assert info.value.raw == "The call was positive."


def test_missing_key_is_named():
    with pytest.raises(LLMOutputError, match=r"answer_2: Field required"):
        parse_answer('{"answer_1": {"answer": "ok"}}', answers_model([Q, Q]))


def test_max_answer_chars_is_the_longest_json_the_schema_allows():
    """Bounded strings, lists, enums and numbers add up to the longest compact JSON answer; an
    unbounded string makes it None (the caller then falls back to a fixed max_tokens)."""
    import json
    from typing import Literal

    from pydantic import BaseModel, Field

    from callflows.structured import max_answer_chars

    class Item(BaseModel):
        kind: Literal["a", "bbb"]
        text: str = Field(max_length=5)

    class Answer(BaseModel):
        items: list[Item] = Field(max_length=2)
        n: int

    longest = Answer(items=[Item(kind="bbb", text="x" * 5)] * 2, n=-10 ** 18)
    assert len(longest.model_dump_json()) <= max_answer_chars(Answer) <= len(longest.model_dump_json()) + 10
    assert json.loads(longest.model_dump_json())

    class Open(BaseModel):
        text: str

    assert max_answer_chars(Open) is None
