"""Serve the analysis flows as deployments from one process (no work pool needed).

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve

Each analysis is its own deployment, triggerable from the Prefect UI with new parameters
(for example a new ``prompt_template``); reruns reuse the cached transcript.
"""
from __future__ import annotations

from prefect import serve

from flows.scorecard import sales_scorecard
from flows.segmentation import call_segmentation
from flows.sentiment import call_sentiment


def deployments():
    return [
        call_sentiment.to_deployment(
            name="call-sentiment",
            description="Per-sentence sentiment with speakers, plus LLM answers to questions about the call.",
            tags=["callflows", "sentiment"],
            parameters={"audio": "samples/support_call.wav"},
        ),
        sales_scorecard.to_deployment(
            name="sales-scorecard",
            description="Speaker roles, talk/listen ratio, sentiment per speaker and an LLM coaching scorecard.",
            tags=["callflows", "scorecard"],
            parameters={"audio": "samples/support_call.wav"},
        ),
        call_segmentation.to_deployment(
            name="call-segmentation",
            description="The call's phases (Introduction, Complaint, Resolution, Goodbye, Other) as a timeline.",
            tags=["callflows", "segmentation"],
            parameters={"audio": "samples/support_call.wav"},
        ),
    ]


if __name__ == "__main__":
    serve(*deployments())
