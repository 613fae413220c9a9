"""Prefect automations the stack creates: a flow run that stops sending heartbeats is marked Crashed.

A worker killed with SIGKILL (or a lost machine) leaves its flow runs Running forever; the
analyze-inbox run waiting for one of them would wait forever too. Prefect's recipe
(docs: *How to detect and respond to zombie flows*): flow runs send a heartbeat event every
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (the stack gives its workers ``HEARTBEAT_FREQUENCY_S``),
and a proactive automation marks a run Crashed when none came for ``MISSED_HEARTBEATS`` periods.
The inbox run then reports that call as failed, and the next inbox run analyses it again from its
cached upload and transcript.
"""
from __future__ import annotations

from datetime import timedelta

ZOMBIE_AUTOMATION = "callflows: crash zombie flow runs"
HEARTBEAT_FREQUENCY_S = 30  # Prefect's minimum
MISSED_HEARTBEATS = 3


def ensure_zombie_automation() -> str:
    """Create the automation ``ZOMBIE_AUTOMATION`` unless it exists; return ``created`` or ``exists``.
    Needs ``PREFECT_API_URL`` (the server's events and automations services)."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.exceptions import ObjectNotFound

    try:
        Automation.read(name=ZOMBIE_AUTOMATION)
        return "exists"
    except (ObjectNotFound, ValueError):
        pass
    Automation(
        name=ZOMBIE_AUTOMATION,
        description="Marks a flow run Crashed when it sent no heartbeat for "
                    f"{MISSED_HEARTBEATS} x {HEARTBEAT_FREQUENCY_S} s (its worker or machine died).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=MISSED_HEARTBEATS * HEARTBEAT_FREQUENCY_S),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message="Marked Crashed: no heartbeat from this flow run (its worker or "
                                            "machine stopped)")],
    ).create()
    return "created"
