"""Serve the analysis flows as deployments from one process (no work pool needed).

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve

Each analysis is its own deployment, triggerable from the Prefect UI with new parameters
(for example a new ``prompt_template``); reruns reuse the cached transcript.
"""
from __future__ import annotations

from prefect import serve

from flows.sentiment import call_sentiment


def deployments():
    return [
        call_sentiment.to_deployment(
            name="call-sentiment",
            description="Per-sentence sentiment with speakers, plus LLM answers to questions about the call.",
            tags=["callflows", "sentiment"],
            parameters={"audio": "samples/support_call.wav"},
        ),
    ]


if __name__ == "__main__":
    serve(*deployments())
