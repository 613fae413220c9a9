"""A scripted HTTP server (stdlib) for status codes the local server does not produce on its own.

Each route has a queue of canned responses; the last one repeats. Every request is recorded.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Canned:
    status: int
    body: object = None  # dict/list → JSON, str → text
    headers: dict = field(default_factory=dict)


class StubServer:
    def __init__(self, routes: dict[str, list[Canned]]):
        self.routes = {k: list(v) for k, v in routes.items()}
        self.requests: list[tuple[str, str, dict, int]] = []  # (method, path, headers, body length)
        self.bodies: list[bytes] = []  # each request's body, in the same order
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                key = f"{self.command} {self.path.split('?')[0]}"
                stub.requests.append((self.command, self.path, dict(self.headers), len(body)))
                stub.bodies.append(body)
                queue = stub.routes.get(key) or [Canned(404, {"error": "Not found"})]
                canned = queue.pop(0) if len(queue) > 1 else queue[0]
                payload = canned.body if isinstance(canned.body, str) else json.dumps(canned.body)
                data = (payload or "").encode()
                self.send_response(canned.status)
                for k, v in canned.headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if m == method and p.split("?")[0] == path)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
