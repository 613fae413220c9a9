"""Fault injection for the local server: scripted faults and seeded random faults.

Two kinds, both set through the local-only routes (never counted, never need the key):

* **Scripted** (``/_local/faults``): ``{"route": "GET /v2/transcript/{transcript_id}" | "*",
  "status_code": 503, "times": 1, "delay_ms": 0, "retry_after": null, "body": null}``. The next
  ``times`` matching requests get the status (after the delay); ``times`` null = until cleared.
* **Random** (``/_local/chaos``): ``{"seed": 7, "rate": 0.25, "kinds": [...], "routes": [...],
  "max_in_a_row": 2, "retry_after_s": 1, "slow_max_s": 900}``. Each request to one of ``routes``
  may get one of ``kinds``:

  ============  ==========================================================================
  ``429``       Too Many Requests with ``Retry-After: retry_after_s``, request not processed
  ``500``       ``{"error": "Internal Server Error"}``, request not processed
  ``502``       ``Bad Gateway`` (text, as proxies answer), request not processed
  ``503``       ``Service Unavailable`` (text), request not processed
  ``reset``     the TCP connection is reset (RST) before the request is read or processed
  ``slow``      the request **is processed**, then the response is held until the client gives
                up (its read timeout) or ``slow_max_s`` passes: a lost response, the case
                where a retried ``POST`` may create a second job
  ============  ==========================================================================

  Decisions are reproducible: every route has its own ``random.Random(f"{seed}:{route}")``. Each
  route first gets every kind once, in a seeded order (so every endpoint sees every fault), then
  a fault with probability ``rate``. The same request (method, path, query, body length and,
  for JSON bodies, the body's hash) never gets more than ``max_in_a_row`` faults in a row, so a
  client that retries at least that often always gets through. ``GET /_local/chaos`` reports
  the faults injected per route and kind, and the requests seen per route.
"""
from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import struct
import threading
from typing import Any

from fastapi.responses import JSONResponse, PlainTextResponse, Response

CHAOS_KINDS = ("429", "500", "502", "503", "reset", "slow")
FLOW_ROUTES = ("POST /v2/upload", "POST /v2/transcript", "GET /v2/transcript/{transcript_id}",
               "GET /v2/transcript/{transcript_id}/vtt", "POST /v1/chat/completions", "POST /v1/understanding")
"""The endpoints the flows' work goes through: upload, create, poll, captions, chat and speaker
identification (the default ``routes``). Not the list (``GET /v2/transcript``), which a retried
create asks first: faults there are possible (name it in ``routes``), but two fault streams in one
task attempt can outlast any retry limit, which would test the seed, not the client."""


class FaultSpecError(ValueError):
    """A fault or chaos specification is invalid; the message names the field."""


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())


class Faults:
    """Scripted faults: each use decrements ``times`` (null = until cleared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[dict] = []

    def add(self, spec: Any) -> dict:
        if not isinstance(spec, dict):
            raise FaultSpecError("fault must be a JSON object")
        route = spec.get("route")
        if not isinstance(route, str) or not route:
            raise FaultSpecError('route is required, e.g. "GET /v2/transcript/{transcript_id}" or "*"')
        status = spec.get("status_code")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise FaultSpecError("status_code must be an HTTP status code or null")
        times = spec.get("times", 1)
        if times is not None and (not isinstance(times, int) or times < 1):
            raise FaultSpecError("times must be a positive integer or null")
        delay = spec.get("delay_ms", 0) or 0
        if not isinstance(delay, (int, float)) or delay < 0:
            raise FaultSpecError("delay_ms must be a non-negative number")
        if status is None and not delay:
            raise FaultSpecError("a fault needs a status_code, a delay_ms, or both")
        fault = {"id": _new_id(), "route": route, "status_code": status, "times": times,
                 "delay_ms": delay, "retry_after": spec.get("retry_after"), "body": spec.get("body")}
        with self._lock:
            self.items.append(fault)
        return fault

    def take(self, route_key: str) -> dict | None:
        with self._lock:
            for fault in self.items:
                if fault["route"] in (route_key, "*"):
                    if fault["times"] is not None:
                        fault["times"] -= 1
                        if fault["times"] <= 0:
                            self.items.remove(fault)
                    return dict(fault)
        return None

    def clear(self) -> None:
        with self._lock:
            self.items.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [dict(f) for f in self.items]


def status_response(status: int, retry_after: Any = None, body: Any = None) -> Response:
    """The error response a fault answers with: ``body`` if given, else the text real proxies send for
    502/503/504, else ``{"error": ...}``."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if body is not None:
        return JSONResponse(body, status_code=status, headers=headers) if not isinstance(body, str) \
            else PlainTextResponse(body, status_code=status, headers=headers)
    if status in (502, 503, 504):  # real gateways answer these without a JSON body
        text = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
        return PlainTextResponse(text, status_code=status, headers=headers)
    message = {429: "Too Many Requests", 500: "Internal Server Error"}.get(status, f"Injected fault {status}")
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Chaos:
    """Seeded random faults (see the module docstring). Thread-safe; inactive until configured."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.config: dict | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._rngs: dict[str, random.Random] = {}
        self._pending: dict[str, list[str]] = {}
        self._streaks: dict[str, int] = {}
        self.injected: dict[str, dict[str, int]] = {}
        self.seen: dict[str, int] = {}

    def configure(self, spec: Any) -> dict:
        if not isinstance(spec, dict):
            raise FaultSpecError("chaos must be a JSON object")
        unknown = set(spec) - {"seed", "rate", "kinds", "routes", "max_in_a_row", "retry_after_s", "slow_max_s"}
        if unknown:
            raise FaultSpecError(f"unknown chaos field(s) {sorted(unknown)}")
        seed = spec.get("seed", 0)
        rate = spec.get("rate", 0.25)
        kinds = spec.get("kinds", list(CHAOS_KINDS))
        routes = spec.get("routes", list(FLOW_ROUTES))
        max_in_a_row = spec.get("max_in_a_row", 2)
        retry_after = spec.get("retry_after_s", 1)
        slow_max = spec.get("slow_max_s", 900)
        if not isinstance(seed, int):
            raise FaultSpecError("seed must be an integer")
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise FaultSpecError("rate must be a number from 0 to 1")
        if not isinstance(kinds, list) or not kinds or any(k not in CHAOS_KINDS for k in kinds):
            raise FaultSpecError(f"kinds must be a non-empty list of {list(CHAOS_KINDS)}")
        if not isinstance(routes, list) or not routes or not all(isinstance(r, str) and r for r in routes):
            raise FaultSpecError('routes must be a non-empty list of route keys such as "POST /v2/upload"')
        if not isinstance(max_in_a_row, int) or max_in_a_row < 1:
            raise FaultSpecError("max_in_a_row must be a positive integer")
        if not isinstance(retry_after, (int, float)) or retry_after < 0:
            raise FaultSpecError("retry_after_s must be a non-negative number")
        if not isinstance(slow_max, (int, float)) or slow_max <= 0:
            raise FaultSpecError("slow_max_s must be a positive number")
        with self._lock:
            self.config = {"seed": seed, "rate": float(rate), "kinds": list(kinds), "routes": list(routes),
                           "max_in_a_row": max_in_a_row, "retry_after_s": retry_after, "slow_max_s": slow_max}
            self._reset_state()
        return self.report()

    def clear(self) -> dict:
        with self._lock:
            self.config = None
        return self.report()

    def covers(self, route_key: str) -> bool:
        config = self.config
        return config is not None and route_key in config["routes"]

    def decide(self, route_key: str, fingerprint: str) -> str | None:
        """The fault kind for this request, or None to serve it normally."""
        with self._lock:
            config = self.config
            if config is None or route_key not in config["routes"]:
                return None
            self.seen[route_key] = self.seen.get(route_key, 0) + 1
            rng = self._rngs.get(route_key)
            if rng is None:
                rng = self._rngs[route_key] = random.Random(f"{config['seed']}:{route_key}")
                self._pending[route_key] = rng.sample(config["kinds"], len(config["kinds"]))
            streak = self._streaks.get(fingerprint, 0)
            kind = None
            if streak < config["max_in_a_row"]:
                if self._pending[route_key]:
                    kind = self._pending[route_key].pop(0)
                elif rng.random() < config["rate"]:
                    kind = rng.choice(config["kinds"])
            self._streaks[fingerprint] = streak + 1 if kind else 0
            if kind:
                per_route = self.injected.setdefault(route_key, {})
                per_route[kind] = per_route.get(kind, 0) + 1
            return kind

    def report(self) -> dict:
        with self._lock:
            return {"config": None if self.config is None else dict(self.config),
                    "injected": {r: dict(k) for r, k in sorted(self.injected.items())},
                    "requests": dict(sorted(self.seen.items())),
                    "total_injected": sum(sum(k.values()) for k in self.injected.values())}


def fingerprint(scope, body: bytes) -> str:
    """Identity of a request for the in-a-row limit: method, path, query, Content-Length, body hash."""
    length = next((v for k, v in scope.get("headers") or () if k == b"content-length"), b"")
    digest = hashlib.sha256()
    for part in (scope.get("method", ""), scope.get("path", ""), scope.get("query_string", b""), length, body):
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def reset_connection(receive) -> bool:
    """Reset the client's TCP connection (RST, via SO_LINGER 0) without answering. Works with
    uvicorn's HTTP protocols, whose ``receive`` is a method of the request cycle holding the
    transport; returns False when the transport cannot be reached."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None or transport.is_closing():
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
    return True


async def hold_until_disconnect(receive, max_s: float) -> bool:
    """Wait until the client disconnects (True) or ``max_s`` passes (False). Call it after the request
    body has been read: uvicorn's ``receive`` then only returns ``http.disconnect``."""
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), timeout=max_s)
        return True
    except asyncio.TimeoutError:
        return False
