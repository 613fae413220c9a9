"""Closed parameter schemas: the Prefect server refuses unknown parameter names when a run is created.

Prefect stores each deployment's ``parameter_openapi_schema`` (built from the flow's signature) and,
with ``enforce_parameter_schema`` (on by default), validates a new run's parameters against it in
``POST /api/deployments/{id}/create_flow_run``: a value of the wrong type is refused with
``409 {"detail": "Error creating flow run: Validation failed for field 'max_tokens'. Failure reason:
'lots' is not of type 'integer'"}``. The schema Prefect builds is open, though (no
``additionalProperties``), so a misspelt name such as ``promt_template`` is accepted and stored, and
the run crashes later when the flow is called. Setting ``additionalProperties: false`` on the
schema's top level makes the same check refuse it at once: ``409 {"detail": "Error creating flow run:
Validation failed. Failure reason: Additional properties are not allowed ('promt_template' was
unexpected)"}``.

``prefect deploy`` always rebuilds the schema from the flow (anything set in prefect.yaml is
overwritten), so both ways of deploying close it afterwards through the API: ``deployments.serve``
right after registering its deployments, ``scripts/stack.py`` right after ``prefect deploy --all``.
A deployment deployed by hand with ``prefect deploy`` stays open until
``python -m deployments.schema FLOW/DEPLOYMENT ...`` is run (needs ``PREFECT_API_URL``).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable
from uuid import UUID


def closed_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of a deployment's ``parameter_openapi_schema`` (JSON Schema, top-level object) that
    refuses parameter names it does not list. Nested objects are closed by the flow's pydantic
    models themselves (``extra="forbid"``: a question's or a rubric line's keys)."""
    closed = dict(schema or {"type": "object", "properties": {}})
    closed["additionalProperties"] = False
    return closed


def close_parameter_schemas(deployments: Iterable[UUID | str]) -> list[UUID]:
    """Close the parameter schema of each deployment, given by id or by ``"flow-name/deployment-name"``,
    on the server at ``PREFECT_API_URL``; return their ids.

    Raises ``prefect.exceptions.ObjectNotFound`` for a deployment the server does not have.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate

    ids = []
    with get_client(sync_client=True) as client:
        for ref in deployments:
            if isinstance(ref, UUID):
                deployment = client.read_deployment(ref)
            else:
                deployment = client.read_deployment_by_name(ref)
            update = DeploymentUpdate(parameter_openapi_schema=closed_schema(deployment.parameter_openapi_schema))
            client.update_deployment(deployment.id, update)
            ids.append(deployment.id)
    return ids


def main(argv: list[str] | None = None) -> int:
    """``python -m deployments.schema FLOW/DEPLOYMENT ...``: close those deployments' schemas."""
    from flows.cli import project_env

    names = list(sys.argv[1:] if argv is None else argv)
    if not names or any("/" not in n for n in names):
        print("usage: python -m deployments.schema FLOW/DEPLOYMENT ... (e.g. call-sentiment/call-sentiment)",
              file=sys.stderr)
        return 2
    project_env()  # PREFECT_HOME inside the project, before prefect is imported
    if not os.environ.get("PREFECT_API_URL"):
        print("deployments.schema: error: PREFECT_API_URL is not set: point it at the server that has the "
              "deployments, e.g. PREFECT_API_URL=http://127.0.0.1:4200/api", file=sys.stderr)
        return 2
    for deployment_id, name in zip(close_parameter_schemas(names), names):
        print(f"{name} ({deployment_id}): unknown parameter names are now refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
