"""The vendor's limits as Prefect global concurrency limits, shared by every worker of the pool.

| limit | kind | default | source |
|---|---|---|---|
| ``assemblyai-transcripts`` | concurrency: transcripts from submission until completed | 200 | AssemblyAI, *Concurrency* (pre-recorded STT): 200+ concurrent transcriptions on paid accounts, 5 on free ones |
| ``assemblyai-llm-gateway`` | rate: LLM Gateway requests (chat, understanding) | 30, decaying 0.5 slot/s | AssemblyAI, *LLM Gateway rate limits*: 30 requests/min per model on paid accounts |

``make up`` creates them (``ensure_limits``) when missing and leaves existing ones alone, so a
``prefect gcl update assemblyai-transcripts --limit 5`` (a free account) survives restarts. Where a
limit does not exist (a plain Python run on Prefect's temporary server), the tasks run unlimited;
whether it exists is looked up at most once a minute per process (``LOOKUP_TTL_S``), so a missing
limit costs no request per task and no warning per task.

Slots are held under a lease (``TRANSCRIPT_LEASE_S``) that the holder renews while it runs: a worker
killed with SIGKILL gives its slots back when the lease runs out, instead of holding them forever.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import Iterator

from prefect.concurrency.sync import concurrency, rate_limit

TRANSCRIPTS_LIMIT = "assemblyai-transcripts"
LLM_GATEWAY_LIMIT = "assemblyai-llm-gateway"

_LLM_GATEWAY_RPM = int(os.environ.get("CALLFLOWS_LLM_GATEWAY_RPM", "30"))
# name → (limit, slot_decay_per_second): 0 decay is a concurrency limit, > 0 a rate limit
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    TRANSCRIPTS_LIMIT: (int(os.environ.get("CALLFLOWS_TRANSCRIPTS_LIMIT", "200")), 0.0),
    LLM_GATEWAY_LIMIT: (_LLM_GATEWAY_RPM, _LLM_GATEWAY_RPM / 60.0),
}
TRANSCRIPT_LEASE_S = 60.0
LOOKUP_TTL_S = 60.0
_exists: dict[str, tuple[float, bool]] = {}
_exists_lock = threading.Lock()


def limit_exists(name: str) -> bool:
    """Whether the global concurrency limit ``name`` exists (and is active) on the Prefect server;
    cached for ``LOOKUP_TTL_S``."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with _exists_lock:
        seen = _exists.get(name)
        if seen and time.monotonic() - seen[0] < LOOKUP_TTL_S:
            return seen[1]
    try:
        with get_client(sync_client=True) as client:
            exists = bool(client.read_global_concurrency_limit_by_name(name).active)
    except ObjectNotFound:
        exists = False
    with _exists_lock:
        _exists[name] = (time.monotonic(), exists)
    return exists


@contextmanager
def transcript_slot() -> Iterator[None]:
    """Hold one ``assemblyai-transcripts`` slot (a transcript in flight at AssemblyAI) for the block."""
    held = (concurrency(TRANSCRIPTS_LIMIT, occupy=1, lease_duration=TRANSCRIPT_LEASE_S, strict=False,
                        raise_on_lease_renewal_failure=False)
            if limit_exists(TRANSCRIPTS_LIMIT) else nullcontext())
    with held:
        yield


def llm_gateway_slot() -> None:
    """Wait for one ``assemblyai-llm-gateway`` request slot (a rate limit: nothing to release)."""
    if limit_exists(LLM_GATEWAY_LIMIT):
        rate_limit(LLM_GATEWAY_LIMIT, occupy=1, strict=False)


def ensure_limits(client) -> dict[str, str]:
    """Create the limits of ``DEFAULT_LIMITS`` that do not exist yet, with a sync Prefect ``client``
    (``prefect.get_client(sync_client=True)``); return name → ``created`` or ``exists``."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    done = {}
    for name, (limit, decay) in DEFAULT_LIMITS.items():
        try:
            client.read_global_concurrency_limit_by_name(name)
            done[name] = "exists"
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                name=name, limit=limit, slot_decay_per_second=decay, active=True))
            done[name] = "created"
    return done
