"""Serve the flows as deployments from one process (no work pool, no worker).

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve [--results-dir DIR] [--inbox DIR]

Deployments (flow name / deployment name), each triggerable from the Prefect UI with new parameters
(e.g. a new ``prompt_template``; reruns reuse the cached upload and transcript):

- ``call-sentiment/call-sentiment``, ``sales-scorecard/sales-scorecard``,
  ``call-segmentation/call-segmentation``: one analysis of ``audio`` (default the bundled sample call);
- ``analyze-call/analyze-call``: the three analyses on one transcript;
- ``analyze-inbox/analyze-inbox``: every new recording in ``inbox``, nightly at 02:00 UTC.

The deployments are read from ``prefect.yaml``, the worker way's definition (``make up``), so the
two ways cannot disagree. Use one way at a time on a server: both register the same deployment
names, and the last one registered wins.

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

RESULTS_DIR_ENV = "CALLFLOWS_RESULTS_DIR"
INBOX_ENV = "CALLFLOWS_INBOX"
PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"


def deployments(results_dir: str = "results", inbox: str = "inbox") -> list[RunnerDeployment]:
    """The deployments of ``prefect.yaml`` (the one definition: entrypoint, name, description, tags,
    parameters, schedules), with ``results_dir`` and ``inbox`` replacing those default parameters.
    The work pool entries do not apply: served deployments run in this process.

    Entrypoints are relative to the project root: call it from there.
    """
    import yaml
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    out = []
    for spec in yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))["deployments"]:
        parameters = dict(spec.get("parameters") or {})
        for key, value in (("results_dir", results_dir), ("inbox", inbox)):
            if key in parameters:
                parameters[key] = value
        schedules = [Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
                     for s in spec.get("schedules") or []]
        out.append(load_flow_from_entrypoint(spec["entrypoint"]).to_deployment(
            name=spec["name"], description=spec.get("description"), tags=spec.get("tags"), parameters=parameters,
            schedules=schedules or None))
    return out


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
