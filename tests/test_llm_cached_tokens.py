"""``usage.prompt_tokens_details.cached_tokens`` of the local LLM Gateway: the prompt tokens llama.cpp
did not evaluate again because an earlier prompt shared them (the session's shared local server)."""
from __future__ import annotations

import uuid

import requests

WORDS = ("the customer called about a billing error on her last invoice and the agent checked the "
         "account found a duplicate charge from march and promised a refund within five business days").split()
SHARED = " ".join(WORDS[i % len(WORDS)] for i in range(150))  # 150 words


def chat(local_api, system: str, user: str) -> dict:
    r = requests.post(f"{local_api.url}/v1/chat/completions", timeout=300, headers=local_api.headers(),
                      json={"model": "gpt-4.1", "max_tokens": 8, "temperature": 0,
                            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]})
    assert r.status_code == 200, r.text
    return r.json()["usage"]


def test_cached_tokens_count_the_reused_prefix(local_api):
    from assemblyai.llm_gateway.v1.models import LLMGatewayUsage

    # A new start (the system message opens with a fresh id): only the chat template's first tokens
    # can match an earlier prompt.
    system = f"{uuid.uuid4().hex} You answer questions about one support call."
    first = chat(local_api, system, SHARED + "\nQuestion: what was wrong with the invoice?")
    assert set(first["prompt_tokens_details"]) == {"cached_tokens", "audio_tokens"}
    LLMGatewayUsage.model_validate(first)  # the SDK's model accepts the shape
    assert first["prompt_tokens"] > 150
    assert 0 <= first["prompt_tokens_details"]["cached_tokens"] < 0.1 * first["prompt_tokens"], first

    # The same system message and 150 words, another question: all but the end is reused.
    second = chat(local_api, system, SHARED + "\nQuestion: when will the refund arrive?")
    cached = second["prompt_tokens_details"]["cached_tokens"]
    shared_at_most = min(first["prompt_tokens"], second["prompt_tokens"])  # >= the shared prefix's tokens
    assert 0.8 * shared_at_most <= cached < second["prompt_tokens"], (first, second)
