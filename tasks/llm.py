"""LLM Gateway task."""
from __future__ import annotations

from prefect import get_run_logger, task

from callflows.client import LLMGatewayClient
from callflows.models import ChatCompletion, ChatCompletionRequest, SpeakerIdentification, UnderstandingResponse
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
    get_run_logger().info("LLM %s answered (%s prompt + %s completion tokens, finish %s)", request.model,
                          usage and usage.prompt_tokens, usage and usage.completion_tokens,
                          completion.finish_reason)
    return completion


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
