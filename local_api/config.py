"""Settings of the local AssemblyAI-compatible server: environment variables, overridden by CLI flags.

=====================================  ==========================================================
environment variable                   meaning (default)
=====================================  ==========================================================
``CALLFLOWS_LOCAL_API_HOST``           interface to bind (``127.0.0.1``; never all interfaces
                                       unless asked for)
``CALLFLOWS_LOCAL_API_PORT``           TCP port (``8765``)
``CALLFLOWS_LOCAL_API_DATA``           uploads, transcripts and downloads
                                       (``$CALLFLOWS_HOME/local_api``; ``CALLFLOWS_HOME`` defaults
                                       to ``<cwd>/.callflows``)
``CALLFLOWS_LOCAL_API_KEY``            when set, every API route requires ``Authorization: <key>``
``CALLFLOWS_STT_MODEL``                speech model: ``base`` | ``tiny.en`` (``base``)
``CALLFLOWS_LOCAL_LLM``                LLM: ``qwen2.5-coder-1.5b`` | ``smollm2-135m`` (the first
                                       one installed, in that order)
``CALLFLOWS_LOCAL_API_MAX_UPLOAD_BYTES``  upload size cap (2.2 GB, like AssemblyAI)
``CALLFLOWS_LOCAL_API_MAX_DOWNLOAD_BYTES``  cap on audio fetched from an ``audio_url`` (5 GB)
``CALLFLOWS_LOCAL_API_DOWNLOAD_TIMEOUT_S``  connect/read timeout for those downloads (30 s)
``CALLFLOWS_LOCAL_API_WORKERS``        transcription worker threads (1; 0 = accept jobs but leave
                                       them queued, used by restart tests)
``CALLFLOWS_LOCAL_API_JOB_DELAY_S``    fault injection: sleep this long in ``processing`` before
                                       each job (0)
``CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS``  a job found ``processing`` at start (the server crashed or
                                       stopped mid-job) is queued again, until it has been cut short
                                       this many times: then it ends in status ``error`` instead of
                                       looping (3; minimum 1)
=====================================  ==========================================================

The API key is held in a field excluded from ``repr`` and is never logged or printed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_STT_MODEL = "base"
PREFERRED_LLMS = ("qwen2.5-coder-1.5b", "smollm2-135m")
DEFAULT_MAX_UPLOAD_BYTES = 2_200_000_000  # AssemblyAI: 2.2 GB per upload
DEFAULT_MAX_DOWNLOAD_BYTES = 5_000_000_000  # AssemblyAI: 5 GB per audio URL
DEFAULT_MAX_INTERRUPTIONS = 3  # a job that kills the server every time ends in "error" after this


class ConfigError(ValueError):
    """A setting has an invalid value; the message names the variable or flag."""


@dataclass(frozen=True)
class LocalApiConfig:
    """Resolved settings of one server process."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path(".callflows/local_api")
    api_key: str | None = field(default=None, repr=False)
    stt_model: str = DEFAULT_STT_MODEL
    llm_model: str | None = None  # None: the first of PREFERRED_LLMS that is installed
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    download_timeout_s: float = 30.0
    workers: int = 1
    job_delay_s: float = 0.0
    max_interruptions: int = DEFAULT_MAX_INTERRUPTIONS

    @property
    def base_url(self) -> str:
        """URL clients on this machine use (a wildcard bind address is shown as loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def with_overrides(self, **overrides) -> "LocalApiConfig":
        """A copy with the non-None overrides applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be >= 0, got {value}")
    return value


def callflows_home(env: Mapping[str, str] | None = None) -> Path:
    """``$CALLFLOWS_HOME`` or ``<cwd>/.callflows``."""
    env = os.environ if env is None else env
    return Path(env.get("CALLFLOWS_HOME") or Path.cwd() / ".callflows").expanduser()


def load_config(env: Mapping[str, str] | None = None, **overrides) -> LocalApiConfig:
    """Settings from ``env`` (default ``os.environ``), then non-None keyword overrides (CLI flags).

    Override keys are the field names of :class:`LocalApiConfig` (``host``, ``port``,
    ``data_dir``, ``stt_model``, ``llm_model``, ``api_key``, ``workers`` …).
    """
    env = os.environ if env is None else env
    data = env.get("CALLFLOWS_LOCAL_API_DATA") or str(callflows_home(env) / "local_api")
    config = LocalApiConfig(
        host=(env.get("CALLFLOWS_LOCAL_API_HOST") or DEFAULT_HOST).strip(),
        port=_int(env, "CALLFLOWS_LOCAL_API_PORT", DEFAULT_PORT, minimum=0),
        data_dir=Path(data).expanduser(),
        api_key=env.get("CALLFLOWS_LOCAL_API_KEY") or None,
        stt_model=(env.get("CALLFLOWS_STT_MODEL") or DEFAULT_STT_MODEL).strip(),
        llm_model=(env.get("CALLFLOWS_LOCAL_LLM") or "").strip() or None,
        max_upload_bytes=_int(env, "CALLFLOWS_LOCAL_API_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, 1),
        max_download_bytes=_int(env, "CALLFLOWS_LOCAL_API_MAX_DOWNLOAD_BYTES", DEFAULT_MAX_DOWNLOAD_BYTES, 1),
        download_timeout_s=_float(env, "CALLFLOWS_LOCAL_API_DOWNLOAD_TIMEOUT_S", 30.0),
        workers=_int(env, "CALLFLOWS_LOCAL_API_WORKERS", 1, minimum=0),
        job_delay_s=_float(env, "CALLFLOWS_LOCAL_API_JOB_DELAY_S", 0.0),
        max_interruptions=_int(env, "CALLFLOWS_LOCAL_API_MAX_INTERRUPTIONS", DEFAULT_MAX_INTERRUPTIONS,
                               minimum=1),
    )
    if "data_dir" in overrides and overrides["data_dir"] is not None:
        overrides["data_dir"] = Path(overrides["data_dir"]).expanduser()
    config = config.with_overrides(**overrides)
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {config.port}")
    return config


def resolve_llm_model(config: LocalApiConfig) -> str:
    """The configured LLM, or the first installed one of :data:`PREFERRED_LLMS` (else the last)."""
    if config.llm_model:
        return config.llm_model
    try:
        from local_api.engines.models import available_llm_models
        installed = set(available_llm_models())
    except Exception:  # engines missing or broken: report it when a chat is attempted
        installed = set()
    for name in PREFERRED_LLMS:
        if name in installed:
            return name
    return PREFERRED_LLMS[-1]
