"""What the routers share: the app's state (:class:`AppState`, reached with the :data:`State`
dependency), :class:`ApiError` and the JSON body reader."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from ..config import LocalApiConfig, resolve_llm_model
from ..faults import Chaos, Faults
from ..gateway import GatewayError, LocalLLM
from ..jobs import JobRunner
from ..latency import Latency
from ..middleware import RequestCounters
from ..store import Store

MAX_JSON_BYTES = 10 * 1024 * 1024


class ApiError(Exception):
    """An error answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclass
class AppState:
    """One app's shared objects, at ``app.state.local``."""

    config: LocalApiConfig
    store: Store
    runner: JobRunner
    counters: RequestCounters
    faults: Faults
    chaos: Chaos
    latency: Latency
    _llm_name: str | None = field(default=None, init=False, repr=False)
    _llm: LocalLLM | None = field(default=None, init=False, repr=False)
    _llm_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def served_by(self) -> str:
        """The local LLM's name, resolved from the config on first use."""
        with self._llm_guard:
            if self._llm_name is None:
                self._llm_name = resolve_llm_model(self.config)
            return self._llm_name

    def local_llm(self) -> LocalLLM:
        """The gateway's LocalLLM, created on first use (the model loads on its first request)."""
        name = self.served_by()
        with self._llm_guard:
            if self._llm is None:
                self._llm = LocalLLM(name)
            return self._llm


async def app_state(request: Request) -> AppState:
    return request.app.state.local


State = Annotated[AppState, Depends(app_state)]
"""A route parameter annotated ``State`` receives the app's AppState."""


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def json_body(request: Request, gateway: bool = False) -> Any:
    """The request body as JSON (at most MAX_JSON_BYTES); errors raise ApiError, or GatewayError for
    the /v1 routes (``gateway=True``)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            msg = f"request body is larger than {MAX_JSON_BYTES} bytes"
            raise GatewayError(413, msg) if gateway else ApiError(413, msg)
    if not raw.strip():
        msg = "request body is empty: send a JSON object"
        raise GatewayError(400, msg) if gateway else ApiError(400, "Request body is empty: send a JSON object")
    try:
        return json.loads(raw)
    except ValueError as e:
        msg = f"request body is not valid JSON: {e}"
        raise GatewayError(400, msg) if gateway else ApiError(400, f"Request body is not valid JSON: {e}")
