"""The app's ASGI middleware (route key, API-key check, scripted and random faults, request counting)
and the request counters behind ``/_local/requests``."""
from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections import deque

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import Match

try:  # FastAPI >= 0.137.2 keeps each included router as one node of app.router.routes
    from fastapi.routing import iter_route_contexts
except ImportError:  # older FastAPI copies the included routes into app.router.routes
    def iter_route_contexts(routes):
        return iter(routes)

from .config import LocalApiConfig
from .faults import Chaos, Faults, fingerprint, hold_until_disconnect, reset_connection, status_response
from .latency import TIMING_SCOPE_KEY
from .store import new_id, now_iso

log = logging.getLogger("local_api")

AUTH_ERROR = "Authentication error, API token missing/invalid"
UNMATCHED = "<unmatched>"
NO_AUTH_ROUTES = {"GET /v1/models"}


class RequestCounters:
    """Requests per "METHOD /route/template" and per status code, since start or the last reset.

    Unknown paths count as ``"METHOD <unmatched>"``; the /_local/* routes are not counted, so the
    numbers are the API traffic of the clients under test."""

    LOG_SIZE = 10_000  # newest requests kept in the timing log

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.counts: dict[str, int] = {}
            self.status_codes: dict[str, int] = {}
            self.log: deque[dict] = deque(maxlen=self.LOG_SIZE)
            self.since = now_iso()

    def record(self, key: str, status: int | str, start: float | None = None, end: float | None = None,
               simulated_wait_s: float = 0.0) -> None:
        """Count one request; ``start``/``end`` (Unix time, s) and the latency profile's simulated wait
        within them (s) also go to the timing log."""
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.status_codes[str(status)] = self.status_codes.get(str(status), 0) + 1
            if start is not None and end is not None:
                self.log.append({"route": key, "status": status, "start": round(start, 4), "end": round(end, 4),
                                 "simulated_wait_s": round(simulated_wait_s, 4)})

    def timing_log(self) -> dict:
        with self._lock:
            return {"requests": list(self.log), "since": self.since}

    def snapshot(self) -> dict:
        with self._lock:
            return {"counts": dict(sorted(self.counts.items())),
                    "status_codes": dict(sorted(self.status_codes.items())),
                    "total": sum(self.counts.values()), "since": self.since}


class LocalMiddleware:
    """Pure ASGI middleware: route key, API-key check, fault injection, request counting."""

    def __init__(self, app, *, fastapi_app: FastAPI, config: LocalApiConfig, counters: RequestCounters,
                 faults: Faults, chaos: Chaos) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.config = config
        self.counters = counters
        self.faults = faults
        self.chaos = chaos

    def route_key(self, scope) -> str:
        method = scope.get("method", "GET")
        partial = None
        for route in iter_route_contexts(self.fastapi_app.router.routes):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return f"{method} {getattr(route, 'path', UNMATCHED)}"
            if match == Match.PARTIAL and partial is None:
                partial = f"{method} {getattr(route, 'path', UNMATCHED)}"
        return partial or f"{method} {UNMATCHED}"

    def authorized(self, scope) -> bool:
        key = self.config.api_key
        if not key:
            return True
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                return hmac.compare_digest(value.strip(), key.encode("utf-8"))
        return False

    async def chaos_request(self, key: str, scope, receive, send) -> str | None:
        """Serve one request under random faults (local_api.faults). ``send`` records the status of
        what is answered; returns the status to count when nothing is: ``"reset"``, or ``"lost"`` when
        a held response was never read."""
        app_receive, body = receive, b""
        if scope.get("method") != "GET" and key != "POST /v2/upload":  # small JSON: part of the fingerprint
            chunks, more = [], True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return "lost"
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body, replayed = b"".join(chunks), [False]

            async def replay():
                if not replayed[0]:
                    replayed[0] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            app_receive = replay

        kind = self.chaos.decide(key, fingerprint(scope, body))
        if kind is None:
            await self.app(scope, app_receive, send)
            return None
        log.info("chaos: %s on %s", kind, key)
        if kind == "reset":
            if reset_connection(receive):
                await asyncio.sleep(0)  # let uvicorn see the connection is gone (no 500 on a dead socket)
                return "reset"
            kind = "503"  # transport unreachable (not uvicorn): the nearest fault
        if kind == "slow":
            held: list[dict] = []

            async def hold(message):
                held.append(message)

            await self.app(scope, app_receive, hold)
            if await hold_until_disconnect(receive, self.chaos.config["slow_max_s"] if self.chaos.config else 0.1):
                return "lost"
            for message in held:
                await send(message)
            return None
        status = int(kind)
        retry_after = (self.chaos.config or {}).get("retry_after_s") if status == 429 else None
        await status_response(status, retry_after)(scope, app_receive, send)
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = self.route_key(scope)
        status_seen: list[int | str] = [500]
        started = time.time()
        timing = scope[TIMING_SCOPE_KEY] = {"arrived": time.monotonic(), "simulated_wait_s": 0.0}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_seen[0] = message["status"]
            await send(message)

        try:
            path = scope.get("path", "")
            if not path.startswith("/_local") and key not in NO_AUTH_ROUTES and not self.authorized(scope):
                body: dict = {"error": AUTH_ERROR}
                if path.startswith("/v1/"):
                    body.update({"status": "error", "request_id": new_id()})
                await JSONResponse(body, status_code=401)(scope, receive, send_wrapper)
                return
            if not path.startswith("/_local"):
                fault = self.faults.take(key)
                if fault is not None:
                    if fault["delay_ms"]:
                        await asyncio.sleep(fault["delay_ms"] / 1000)
                    if fault["status_code"] is not None:
                        response = status_response(fault["status_code"], fault.get("retry_after"), fault.get("body"))
                        await response(scope, receive, send_wrapper)
                        return
                if self.chaos.covers(key):
                    unanswered = await self.chaos_request(key, scope, receive, send_wrapper)
                    if unanswered:
                        status_seen[0] = unanswered
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            if not scope.get("path", "").startswith("/_local"):
                self.counters.record(key, status_seen[0], started, time.time(), timing["simulated_wait_s"])

