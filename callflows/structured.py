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


def max_answer_chars(model: type[BaseModel]) -> int | None:
    """The longest JSON text (characters, compact, no escapes) that ``model``'s schema allows, or
    None when a string or array in it is unbounded. With one token per character (the worst case: a
    small model looping on digits), an answer of that many tokens always ends inside the schema."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})

    def size(node: dict) -> int | None:
        if "$ref" in node:
            return size(defs[node["$ref"].rsplit("/", 1)[-1]])
        for key in ("anyOf", "oneOf"):
            if key in node:
                sizes = [size(n) for n in node[key]]
                return None if None in sizes else max(sizes)
        if "enum" in node or "const" in node:
            return max(len(json.dumps(v)) for v in node.get("enum", [node.get("const")]))
        kind = node.get("type")
        if kind == "string":
            return None if "maxLength" not in node else node["maxLength"] + 2
        if kind in ("integer", "number"):
            return 20
        if kind == "boolean":
            return 5
        if kind == "null":
            return 4
        if kind == "array":
            item = size(node.get("items", {}))
            return None if item is None or "maxItems" not in node else 2 + node["maxItems"] * (item + 1)
        if kind == "object":
            parts = [size(v) for v in node.get("properties", {}).values()]
            if None in parts:
                return None
            return 2 + sum(len(json.dumps(k)) + 1 + n + 1 for k, n in zip(node.get("properties", {}), parts))
        return None

    return size(schema)


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
