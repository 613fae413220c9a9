"""LLM Gateway tasks, and ``ask_structured``: one structured answer with one retry on a bad answer."""
from __future__ import annotations

from typing import Callable, TypeVar

from prefect import get_run_logger, task
from pydantic import BaseModel

from callflows.client import LLMGatewayClient
from callflows.errors import LLMOutputError
from callflows.llm import LLMUsage
from callflows.models import (ChatCompletion, ChatCompletionRequest, ChatMessage, SpeakerIdentification,
                              UnderstandingResponse)
from callflows.structured import max_answer_chars, parse_answer, response_format_for

FALLBACK_MAX_TOKENS = 2000  # for a schema with an unbounded string or list
ANSWER_TOKENS_MARGIN = 64  # whitespace between JSON tokens
from tasks.common import RESULT_STORAGE, RETRYING, resolve_settings, says_when_retries_run_out
from tasks.limits import llm_gateway_slot


@task(name="chat_completion", **RETRYING)
@says_when_retries_run_out
def chat_completion(request: ChatCompletionRequest) -> ChatCompletion:
    """``POST /v1/chat/completions`` on the LLM Gateway. Transient failures (429/5xx, connection
    errors, timeouts) are retried; a 4xx fails at once with the gateway's message. Each attempt first
    takes a slot of the ``assemblyai-llm-gateway`` rate limit (``tasks.limits``)."""
    llm_gateway_slot()
    with LLMGatewayClient(resolve_settings()) as client:
        completion = client.chat_completion(request)
    usage = completion.usage
    details = usage and usage.prompt_tokens_details
    get_run_logger().info("LLM %s answered (%s prompt tokens, %s of them cached, + %s completion tokens, finish %s)",
                          request.model, usage and usage.prompt_tokens, details and details.cached_tokens,
                          usage and usage.completion_tokens, completion.finish_reason)
    return completion


M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def ask_structured(prompt: str, answer_model: type[M], *, schema_name: str, model: str, max_tokens: int | None,
                   temperature: float, schema_model: type[BaseModel] | None = None,
                   check: Callable[[M], R] | None = None,
                   review: Callable[[M | R], list[str]] | None = None) -> tuple[M | R, LLMUsage]:
    """Send ``prompt`` to the LLM Gateway (``chat_completion``) with ``answer_model``'s JSON schema (or
    ``schema_model``'s, when the schema sent should be stricter than the parsing) as
    ``response_format`` and validate the answer with ``answer_model``, then with ``check`` if given
    (which returns the final result, or raises ``LLMOutputError`` or ``ValueError`` for an answer it
    cannot use). An answer that is not valid JSON, does not match, or fails ``check`` is sent back
    once with the error; a second failure raises ``LLMOutputError`` (which keeps the raw answer).

    ``review`` (optional) lists the problems of a usable answer, one sentence each, with no
    transcript text (they are logged): a first answer with problems is sent back once with them, and
    the second answer is kept whatever its problems (or, when it is not usable, the first one is).

    ``max_tokens`` None: the longest answer the schema allows, at one token per character
    (``callflows.structured.max_answer_chars``), so a bounded answer is never cut off.

    Returns (parsed answer or ``check``'s result, the usage of both attempts).
    """
    if max_tokens is None:
        longest = max_answer_chars(schema_model or answer_model)
        max_tokens = FALLBACK_MAX_TOKENS if longest is None else longest + ANSWER_TOKENS_MARGIN
    request = ChatCompletionRequest(model=model, messages=[ChatMessage(role="user", content=prompt)],
                                    max_tokens=max_tokens, temperature=temperature,
                                    response_format=response_format_for(schema_model or answer_model, schema_name))
    completions: list[ChatCompletion] = []
    reviewed = None  # a usable first answer that was sent back for its problems
    for attempt in (1, 2):
        completion = chat_completion(request)
        completions.append(completion)
        try:
            parsed = parse_answer(completion.content, answer_model)
            result = check(parsed) if check else parsed
        except (LLMOutputError, ValueError) as caught:
            exc = caught if isinstance(caught, LLMOutputError) else LLMOutputError(str(caught), completion.content)
            if attempt == 2:
                if reviewed is not None:
                    get_run_logger().warning("The second answer was not usable (%s): keeping the first", exc)
                    return reviewed, LLMUsage.of(model, completions)
                raise exc from None
            reason = str(exc)
        else:
            problems = review(result) if review and attempt == 1 else []
            if not problems:
                return result, LLMUsage.of(model, completions)
            reviewed = result
            reason = "; ".join(problems)
        get_run_logger().warning("Asking again: %s", reason)
        request = request.model_copy(update={"messages": [
            *request.messages, ChatMessage(role="assistant", content=completion.content),
            ChatMessage(role="user", content=f"That answer was rejected: {reason}. Reply again with only the "
                                             f"JSON object described above.")]})
    raise AssertionError("unreachable")


def _identify_key(context, parameters) -> str:
    from tasks.common import stable_hash

    identification = parameters["identification"]
    return (f"speakers-{resolve_settings().account_fingerprint()}-"
            f"{stable_hash([parameters['transcript_id'], identification.model_dump(exclude_none=True)])}")


@task(name="identify_speakers", cache_key_fn=_identify_key, persist_result=True, result_storage=RESULT_STORAGE,
      **RETRYING)
@says_when_retries_run_out
def identify_speakers(transcript_id: str, identification: SpeakerIdentification) -> UnderstandingResponse:
    """``POST /v1/understanding`` speaker identification (roles or names) on a transcript with speaker
    labels. Cached by (transcript, request): a rerun asks once. Takes a slot of the
    ``assemblyai-llm-gateway`` rate limit first."""
    llm_gateway_slot()
    with LLMGatewayClient(resolve_settings()) as client:
        response = client.identify_speakers(transcript_id, identification)
    get_run_logger().info("Speakers identified: %s", response.mapping)
    return response
