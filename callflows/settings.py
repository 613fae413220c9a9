"""Settings, read from the same environment names as the official AssemblyAI SDK.

- ``ASSEMBLYAI_API_KEY``: the key. When neither it nor a Prefect Secret block holds one, the
  embedded default applies: both base URLs point at the local AssemblyAI-compatible server
  (``CALLFLOWS_LOCAL_API_URL``, default ``http://127.0.0.1:8765``).
- ``ASSEMBLYAI_BASE_URL`` (default ``https://api.assemblyai.com``) and
  ``ASSEMBLYAI_LLM_GATEWAY_BASE_URL`` (default ``https://llm-gateway.assemblyai.com``).
- ``ASSEMBLYAI_HTTP_TIMEOUT``: seconds to wait for an answer (read timeout, default 30).
- ``CALLFLOWS_UPLOAD_TIMEOUT_S`` (default 600) and ``CALLFLOWS_LLM_TIMEOUT_S`` (default 600): the same
  for uploads and for LLM Gateway requests, which legitimately take longer.

The key is a ``SecretStr``: it never shows in ``repr``, logs or tracebacks.
"""
from __future__ import annotations

import hashlib

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ASSEMBLYAI_BASE_URL = "https://api.assemblyai.com"
ASSEMBLYAI_LLM_GATEWAY_BASE_URL = "https://llm-gateway.assemblyai.com"
LOCAL_API_URL = "http://127.0.0.1:8765"


class Settings(BaseSettings):
    """Where to send requests and with which key. See the module docstring for the variables."""

    model_config = SettingsConfigDict(env_prefix="ASSEMBLYAI_", extra="ignore", populate_by_name=True)

    api_key: SecretStr | None = None
    base_url: str | None = None
    llm_gateway_base_url: str | None = None
    http_timeout: float = Field(30.0, gt=0)
    upload_timeout_s: float = Field(600.0, gt=0, validation_alias=AliasChoices(
        "upload_timeout_s", "CALLFLOWS_UPLOAD_TIMEOUT_S"))
    llm_timeout_s: float = Field(600.0, gt=0, validation_alias=AliasChoices(
        "llm_timeout_s", "CALLFLOWS_LLM_TIMEOUT_S"))
    local_api_url: str = Field(LOCAL_API_URL, validation_alias=AliasChoices(
        "local_api_url", "CALLFLOWS_LOCAL_API_URL"))

    @property
    def uses_local_api(self) -> bool:
        """True when no key is configured: the embedded default (the local server) is used."""
        return self.api_key is None or not self.api_key.get_secret_value()

    @property
    def api_base_url(self) -> str:
        """Base URL for ``/v2/*`` requests (no trailing slash)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return (self.local_api_url if self.uses_local_api else ASSEMBLYAI_BASE_URL).rstrip("/")

    @property
    def gateway_base_url(self) -> str:
        """Base URL for LLM Gateway ``/v1/*`` requests (no trailing slash)."""
        if self.llm_gateway_base_url:
            return self.llm_gateway_base_url.rstrip("/")
        return (self.local_api_url if self.uses_local_api else ASSEMBLYAI_LLM_GATEWAY_BASE_URL).rstrip("/")

    def with_api_key(self, key: str) -> "Settings":
        """A copy holding ``key`` (e.g. read from a Prefect Secret block)."""
        return self.model_copy(update={"api_key": SecretStr(key)})

    def account_fingerprint(self) -> str:
        """A short, one-way tag of (base URL, key) for cache keys: results made with one account or
        server are never reused with another. 16 hex chars of SHA-256; the key cannot be recovered."""
        key = self.api_key.get_secret_value() if self.api_key else ""
        return hashlib.sha256(f"{self.api_base_url}\0{key}".encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line saying where requests go, without the key."""
        if self.uses_local_api:
            return (f"No ASSEMBLYAI_API_KEY set: using the local AssemblyAI-compatible server at "
                    f"{self.api_base_url}")
        return f"Using AssemblyAI at {self.api_base_url} (LLM Gateway {self.gateway_base_url})"
