"""Steps shared by the analysis flows."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from prefect import get_run_logger
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from pydantic import BaseModel

from callflows.errors import LLMOutputError
from callflows.models import ChatCompletion, ChatCompletionRequest, ChatMessage
from callflows.structured import parse_answer, response_format_for
from tasks.llm import chat_completion

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def subflow(flow_fn: Callable[..., R], *args, **kwargs) -> R:
    """Call the Prefect flow ``flow_fn`` as a subflow of the current run (same arguments, same result,
    same errors), without a heartbeat thread of its own.

    Prefect 3.8 gives every flow run a heartbeat thread (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, 180 s)
    and joins it when the run ends; the thread sleeps in 1 s steps, so the end of each run waits for
    up to 1 s. Measured on 2 cores (Prefect's temporary server): an empty subflow takes 1.3 s with it,
    0.4 s without, and analyze-call chains up to three subflows before its first LLM request. A
    subflow runs in its parent's process, and the top-level run's heartbeats still detect a crash.
    """
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return flow_fn(*args, **kwargs)


def result_dir(results_dir: str, audio_name: str, transcript_id: str) -> Path:
    """``<results_dir>/<audio name>-<first 8 chars of the transcript id>/``: one folder per call."""
    return Path(results_dir) / f"{audio_name}-{transcript_id[:8]}"


def ask_structured(prompt: str, answer_model: type[M], *, schema_name: str, model: str, max_tokens: int,
                   temperature: float, schema_model: type[BaseModel] | None = None,
                   check: Callable[[M], R] | None = None) -> tuple[M | R, ChatCompletion, int]:
    """Send ``prompt`` to the LLM Gateway with ``answer_model``'s JSON schema (or ``schema_model``'s,
    when the schema sent should be stricter than the parsing) as ``response_format`` and validate the
    answer with ``answer_model``, then with ``check`` if given (which returns the final result, or
    raises ``LLMOutputError`` or ``ValueError`` for an answer it cannot use). An answer that is not
    valid JSON, does not match, or fails ``check`` is sent back once with the error; a second failure
    raises ``LLMOutputError`` (which keeps the raw answer).

    Returns (parsed answer or ``check``'s result, the completion that produced it, attempts: 1 or 2).
    """
    request = ChatCompletionRequest(model=model, messages=[ChatMessage(role="user", content=prompt)],
                                    max_tokens=max_tokens, temperature=temperature,
                                    response_format=response_format_for(schema_model or answer_model, schema_name))
    for attempt in (1, 2):
        completion = chat_completion(request)
        try:
            parsed = parse_answer(completion.content, answer_model)
            return (check(parsed) if check else parsed), completion, attempt
        except (LLMOutputError, ValueError) as caught:
            exc = caught if isinstance(caught, LLMOutputError) else LLMOutputError(str(caught), completion.content)
            if attempt == 2:
                raise exc from None
            get_run_logger().warning("Asking again: %s", exc)
            request = request.model_copy(update={"messages": [
                *request.messages, ChatMessage(role="assistant", content=completion.content),
                ChatMessage(role="user", content=f"That answer was rejected: {exc}. Reply again with only the "
                                                 f"JSON object described above.")]})
    raise AssertionError("unreachable")
