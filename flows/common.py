"""Steps shared by the analysis flows."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from prefect import get_run_logger
from pydantic import BaseModel

from callflows.errors import LLMOutputError
from callflows.models import ChatCompletion, ChatCompletionRequest, ChatMessage
from callflows.structured import parse_answer, response_format_for
from tasks.llm import chat_completion

M = TypeVar("M", bound=BaseModel)


def result_dir(results_dir: str, audio_name: str, transcript_id: str) -> Path:
    """``<results_dir>/<audio name>-<first 8 chars of the transcript id>/``: one folder per call."""
    return Path(results_dir) / f"{audio_name}-{transcript_id[:8]}"


def ask_structured(prompt: str, answer_model: type[M], *, schema_name: str, model: str, max_tokens: int,
                   temperature: float) -> tuple[M, ChatCompletion, int]:
    """Send ``prompt`` to the LLM Gateway with ``answer_model``'s JSON schema as ``response_format``
    and validate the answer. An answer that is not valid JSON or does not match is sent back once
    with the validation error; a second failure raises ``LLMOutputError`` (which keeps the raw answer).

    Returns (parsed answer, the completion that produced it, attempts used: 1 or 2).
    """
    request = ChatCompletionRequest(model=model, messages=[ChatMessage(role="user", content=prompt)],
                                    max_tokens=max_tokens, temperature=temperature,
                                    response_format=response_format_for(answer_model, schema_name))
    for attempt in (1, 2):
        completion = chat_completion(request)
        try:
            return parse_answer(completion.content, answer_model), completion, attempt
        except LLMOutputError as exc:
            if attempt == 2:
                raise
            get_run_logger().warning("Asking again: %s", exc)
            request = request.model_copy(update={"messages": [
                *request.messages, ChatMessage(role="assistant", content=completion.content),
                ChatMessage(role="user", content=f"That answer was rejected: {exc}. Reply again with only the "
                                                 f"JSON object described above.")]})
    raise AssertionError("unreachable")
