"""What every task shares: settings resolution, the retry rule and cache keys.

Retry rule: only transient failures are retried (connection errors, timeouts, HTTP 408/429/5xx:
``APIError.retryable``), so they show in Prefect as AwaitingRetry → Retrying. A ``Retry-After``
header is honoured by waiting that long before the retry is scheduled. Permanent errors (other 4xx,
transcript errors, bad input) fail at once with the API's text.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.runtime import task_run

from callflows.errors import APIError, ConfigurationError
from callflows.settings import Settings
from tasks import logs

logs.install()  # every flow imports this module, in any process that runs one

HTTP_RETRIES = int(os.environ.get("CALLFLOWS_HTTP_RETRIES", "4"))
# One delay, not a list: the classic UI shows a task's retry delay list as "Retry Delay: NaNs". 5 s
# apart as AssemblyAI's upload-retry cookbook does; the jitter spreads it over 2.5-7.5 s.
RETRY_DELAY_S = float(os.environ.get("CALLFLOWS_RETRY_DELAY_S", "5"))
RETRY_JITTER = 0.5
MAX_RETRY_AFTER_S = 300.0
SECRET_BLOCK_ENV = "CALLFLOWS_API_KEY_SECRET_BLOCK"
RESULT_STORAGE_ENV = "CALLFLOWS_RESULT_STORAGE"


def result_storage() -> Path | None:
    """Where cached task results (upload URLs, transcript ids, transcripts) and analyze-call results
    are persisted: the folder ``$CALLFLOWS_RESULT_STORAGE`` (e.g. a mount every worker shares, at the
    same path on each machine), or Prefect's default (``PREFECT_LOCAL_STORAGE_PATH``, under
    ``$PREFECT_HOME/storage``; or ``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK``, e.g. a saved
    ``RemoteFileSystem`` block for an fsspec URL such as ``s3://bucket/callflows``) when unset."""
    folder = os.environ.get(RESULT_STORAGE_ENV)
    return Path(folder).expanduser().resolve() if folder else None  # Prefect: a Path is a LocalFileSystem


RESULT_STORAGE = result_storage()


def resolve_settings() -> Settings:
    """Settings from the environment; the key may come from a Prefect Secret block named by
    ``$CALLFLOWS_API_KEY_SECRET_BLOCK`` when ``ASSEMBLYAI_API_KEY`` is not set. The key is never a
    parameter or a task input, so it never reaches the Prefect database."""
    settings = Settings()
    block = os.environ.get(SECRET_BLOCK_ENV)
    if settings.uses_local_api and block:
        from prefect.blocks.system import Secret

        try:
            key = Secret.load(block).get()
        except ValueError as exc:
            raise ConfigurationError(f"Secret block {block!r} (from ${SECRET_BLOCK_ENV}) cannot be loaded: "
                                     f"{exc}. Create it with Secret(value=...).save({block!r})") from None
        settings = settings.with_api_key(str(key))
    return settings


def retry_if_transient(task, task_run, state) -> bool:
    """``retry_condition_fn``: retry only ``APIError.retryable`` failures; honour ``Retry-After``."""
    try:
        state.result()
    except APIError as exc:
        if not exc.retryable:
            return False
        if exc.retry_after_s:
            wait_s = min(exc.retry_after_s, MAX_RETRY_AFTER_S)
            get_run_logger().warning("%s: waiting %.0f s as Retry-After asks", type(exc).__name__, wait_s)
            time.sleep(wait_s)
        return True
    except Exception:
        return False
    return False


def says_when_retries_run_out(fn):
    """Decorate a task function (under ``@task``): a transient ``APIError`` raised by its last
    allowed attempt is re-raised saying how many attempts were made (``APIError.gave_up``), so the
    run names the retry limit, not just the last failure."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except APIError as exc:
            attempts = task_run.run_count
            if exc.retryable and attempts and attempts > HTTP_RETRIES:
                raise exc.gave_up(attempts) from None
            raise

    return wrapper


def stable_hash(value: Any) -> str:
    """SHA-256 (hex, 24 chars) of a JSON-serialisable value with sorted keys."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]


RETRYING = dict(retries=HTTP_RETRIES, retry_delay_seconds=RETRY_DELAY_S, retry_jitter_factor=RETRY_JITTER,
                retry_condition_fn=retry_if_transient)
