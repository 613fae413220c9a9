"""Structured LLM output: a pydantic model → ``response_format`` json_schema, and the answer back.

Source: LLM Gateway structured outputs (``response_format: {"type": "json_schema", "json_schema":
{"name", "schema", "strict"}}``). Small local models need bounded schemas (``maxItems``,
``maxLength``, ``enum``) or they loop until ``max_tokens``.
"""
from __future__ import annotations

import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from callflows.errors import LLMOutputError
from callflows.models import JsonSchemaSpec, ResponseFormat

M = TypeVar("M", bound=BaseModel)
_FENCE_RE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def response_format_for(model: type[BaseModel], name: str) -> ResponseFormat:
    """``response_format`` whose schema is ``model``'s JSON schema (closed: no extra properties)."""
    schema = model.model_json_schema()
    schema.setdefault("additionalProperties", False)
    return ResponseFormat(json_schema=JsonSchemaSpec(name=name, schema=schema, strict=True))


def parse_answer(content: str, model: type[M]) -> M:
    """Parse the LLM's ``content`` as JSON and validate it against ``model``.

    Tolerates a Markdown code fence around the JSON and raw control characters inside strings. Raises ``LLMOutputError`` (keeping the raw
    answer) when the text is not JSON or does not match.
    """
    text = content.strip()
    fenced = _FENCE_RE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text, strict=False)  # tolerate raw newlines/tabs inside strings
    except json.JSONDecodeError as exc:
        raise LLMOutputError(f"the LLM answer is not valid JSON ({exc.msg} at char {exc.pos})", content) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5])
        raise LLMOutputError(f"the LLM answer does not match the {model.__name__} schema ({problems})",
                             content) from None
