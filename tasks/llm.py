"""LLM Gateway task."""
from __future__ import annotations

from prefect import get_run_logger, task

from callflows.client import LLMGatewayClient
from callflows.models import ChatCompletion, ChatCompletionRequest
from tasks.common import RETRYING, resolve_settings


@task(name="chat_completion", **RETRYING)
def chat_completion(request: ChatCompletionRequest) -> ChatCompletion:
    """``POST /v1/chat/completions`` on the LLM Gateway. Transient failures (429/5xx, connection
    errors, timeouts) are retried; a 4xx fails at once with the gateway's message."""
    with LLMGatewayClient(resolve_settings()) as client:
        completion = client.chat_completion(request)
    usage = completion.usage
    get_run_logger().info("LLM %s answered (%s prompt + %s completion tokens, finish %s)", request.model,
                          usage and usage.prompt_tokens, usage and usage.completion_tokens,
                          completion.finish_reason)
    return completion
