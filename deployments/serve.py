"""Serve the flows as deployments from one process (no work pool, no worker).

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve [--results-dir DIR] [--inbox DIR]

Deployments (flow name / deployment name), each triggerable from the Prefect UI with new parameters
(e.g. a new ``prompt_template``; reruns reuse the cached upload and transcript):

- ``call-sentiment/call-sentiment``, ``sales-scorecard/sales-scorecard``,
  ``call-segmentation/call-segmentation``: one analysis of ``audio`` (default the bundled sample call);
- ``analyze-call/analyze-call``: the three analyses on one transcript;
- ``analyze-inbox/analyze-inbox``: every new recording in ``inbox``, nightly at 02:00 UTC.

The same deployments are defined for the worker way in ``prefect.yaml`` (``make up``);
``tests/test_deployments.py`` checks the two definitions agree. Use one way at a time on a server:
both register the same deployment names, and the last one registered wins.

Flow runs execute in the project root (this process changes to it), so the relative defaults
(``samples/support_call.wav``, ``results``, ``inbox``) mean the same as with the worker.
``--results-dir`` / ``$CALLFLOWS_RESULTS_DIR`` and ``--inbox`` / ``$CALLFLOWS_INBOX`` change the
deployments' default ``results_dir`` and ``inbox`` (relative to the project root).

After registering, the deployments' parameter schemas are closed (``deployments.schema``): the server
refuses a run with an unknown parameter name (409) instead of creating a run that crashes. Stopping
the process (Ctrl-C or SIGTERM) pauses its deployments.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING

from deployments.steps import PROJECT_ROOT

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

DEFAULT_AUDIO = "samples/support_call.wav"  # relative to the project root, the flow runs' working directory
NIGHTLY_CRON = "0 2 * * *"
NIGHTLY_TIMEZONE = "UTC"
RESULTS_DIR_ENV = "CALLFLOWS_RESULTS_DIR"
INBOX_ENV = "CALLFLOWS_INBOX"


def deployments(results_dir: str = "results", inbox: str = "inbox") -> list[RunnerDeployment]:
    """The five deployments, with ``results_dir`` and ``inbox`` as default parameters.

    Entrypoints are computed relative to the current directory: call it from the project root.
    """
    from prefect.schedules import Cron

    from flows.analyze import analyze_call
    from flows.batch import analyze_inbox
    from flows.scorecard import sales_scorecard
    from flows.segmentation import call_segmentation
    from flows.sentiment import call_sentiment

    one_call = {"audio": DEFAULT_AUDIO, "results_dir": results_dir}
    return [
        call_sentiment.to_deployment(
            name="call-sentiment",
            description="Per-sentence sentiment with speakers, plus LLM answers to questions about the call.",
            tags=["callflows", "sentiment"],
            parameters=one_call,
        ),
        sales_scorecard.to_deployment(
            name="sales-scorecard",
            description="Speaker roles, talk/listen ratio, sentiment per speaker and an LLM coaching scorecard.",
            tags=["callflows", "scorecard"],
            parameters=one_call,
        ),
        call_segmentation.to_deployment(
            name="call-segmentation",
            description="The call's phases (Introduction, Complaint, Resolution, Goodbye, Other) as a timeline.",
            tags=["callflows", "segmentation"],
            parameters=one_call,
        ),
        analyze_call.to_deployment(
            name="analyze-call",
            description="Sentiment, sales scorecard and segmentation of one call, run concurrently on one "
                        "transcript.",
            tags=["callflows", "analyze"],
            parameters=one_call,
        ),
        analyze_inbox.to_deployment(
            name="analyze-inbox",
            description="Every new recording in the inbox folder (and the given URLs) analysed; recordings "
                        "already analysed are skipped. Nightly at 02:00 UTC.",
            tags=["callflows", "batch"],
            parameters={"inbox": inbox, "results_dir": results_dir},
            schedules=[Cron(NIGHTLY_CRON, timezone=NIGHTLY_TIMEZONE)],
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=os.environ.get(RESULTS_DIR_ENV, "results"),
                        help=f"default results_dir parameter (${RESULTS_DIR_ENV}; default: results)")
    parser.add_argument("--inbox", default=os.environ.get(INBOX_ENV, "inbox"),
                        help=f"default inbox parameter of analyze-inbox (${INBOX_ENV}; default: inbox)")
    args = parser.parse_args(argv)

    from flows.cli import project_env

    project_env()  # PREFECT_HOME inside the project, before prefect is imported
    if not os.environ.get("PREFECT_API_URL"):
        print("deployments.serve: error: PREFECT_API_URL is not set, so the deployments would go to a temporary "
              "server that stops with this process. Start one (`make up`, or `prefect server start`) and set "
              "PREFECT_API_URL=http://127.0.0.1:4200/api", file=sys.stderr)
        return 2
    os.chdir(PROJECT_ROOT)

    from prefect.runner import Runner

    from deployments.schema import close_parameter_schemas

    runner = Runner(pause_on_shutdown=True)
    served = deployments(results_dir=args.results_dir, inbox=args.inbox)
    ids = [runner.add_deployment(deployment) for deployment in served]
    close_parameter_schemas(ids)
    names = ", ".join(f"{d.flow_name}/{d.name}" for d in served)
    print(f"Serving {len(served)} deployments from {PROJECT_ROOT} ({names}); "
          f"Prefect API {os.environ['PREFECT_API_URL']}. Ctrl-C stops and pauses them.", flush=True)
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
