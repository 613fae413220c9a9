"""How Prefect global concurrency limits (GCL) throttle under contention, per server setting.

When a slot is denied, the server answers 423 with a ``Retry-After`` computed in
``prefect/server/api/concurrency_limits_v2.py`` (``_generate_concurrency_locked_response``):

* concurrency limits: ``min(avg_slot_occupancy, cap) × (slots + denied_slots) / limit``, capped at
  ``cap`` = ``PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS`` (default 30);
* rate limits (``slot_decay_per_second > 0``): ``(slots + denied_slots) / slot_decay_per_second``,
  no cap;

both with Poisson jitter (up to +30 %). The client sleeps exactly that long before it asks again, and
it asks from one queue per process and set of limit names
(``ConcurrencySlotAcquisitionWithLeaseService``): in a process, a waiting acquisition holds up every
acquisition behind it. This script measures what that costs.

For each server configuration (``--configs``: ``default`` or a cap in seconds) it starts its own
``prefect server start`` on a free 127.0.0.1 port (fresh ``PREFECT_HOME`` in a temporary folder,
analytics off, UI off, the cap in the server's environment), waits for ``/api/health``, and runs:

``concurrency``
    a new GCL with limit 4; 40 calls, each holding a slot for 0.5 s in
    ``prefect.concurrency.sync.concurrency(name, occupy=1, strict=True)``, all started at once from
    40 threads of one process, and again from 4 processes of 10 threads (``--processes``: what several
    workers look like). Ideal wall time: 40 × 0.5 s / 4 = 5 s.
``long``
    (configurations in ``--long-on``) the same with holds longer than the lower caps, as for the
    transcripts limit: limit 2, 8 calls holding 5 s each. Ideal: 8 × 5 s / 2 = 20 s.
``rate``
    (configurations in ``--rate-on``) a new GCL with limit 30 and ``slot_decay_per_second`` 0.5
    (30 requests/min), 40 ``prefect.concurrency.sync.rate_limit(name, strict=True)`` calls at once.
    Ideal: 30 at once, then one every 2 s, the last at 20 s.
``lease``
    (configurations in ``--lease-on``) a GCL with limit 1, held by a process under
    ``concurrency(..., lease_duration=60)`` (the server's minimum: ``increment-with-lease`` rejects
    less with 422; probed here), a second process waiting for it, and the holder SIGKILLed: how long
    until the server frees the slot (its repossessor service revokes expired leases every
    ``PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS``, default 15) and until the waiter gets it.

Each run records per call its wait (start → slot granted), the wall time (first start → last
release, or last grant for rate limits), the 423 answers the clients got and their ``Retry-After``
values, the retryable HTTP errors (5xx: the server answers 503 when its SQLite database is locked)
and the client's back-off after each (``2 ** attempt`` s, jittered; not capped by any server
setting), both from the clients' debug logs (``PREFECT_LOGGING_INTERNAL_LEVEL=DEBUG`` and the
``prefect.client`` logger at DEBUG in the client processes), the most slots seen held at once, and
the limit's state on the server afterwards.
Every wait is bounded (``--run-timeout``); every server and client process started here is stopped.
Timings are wall-clock (``time.time()``, all processes on this machine); the jitter makes single runs
noisy: use ``--repeat`` for more than one sample per run.

Usage (on 2 cores: about 10 minutes with the defaults, 20 with --repeat 2)::

    .venv/bin/python bench/gcl_throttle.py [--configs default,5,2,1,0.5] [--processes 1,4]
        [--long-on default,5,1] [--rate-on default,1] [--lease-on default,1] [--repeat 1]
        [--out results/gcl_throttle.json] [--keep-logs DIR]

An empty list skips a part (``--processes ""`` runs only the lease test).

Prints a table and writes the raw numbers as JSON (``--out``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
CAP_ENV = "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS"
DEFAULT_CAP_S = 30.0  # Prefect's default for CAP_ENV
MARK = "@@gcl "  # prefix of the lines a client process reports on (its stdout)



@dataclass(frozen=True)
class Workload:
    calls: int
    limit: int
    hold_s: float = 0.0  # concurrency: how long each call holds its slot
    decay_per_s: float = 0.0  # > 0: a rate limit

    @property
    def ideal_s(self) -> float:
        if self.decay_per_s:  # `limit` at once, then one per 1/decay seconds
            return max(0, self.calls - self.limit) / self.decay_per_s
        return self.calls * self.hold_s / self.limit


WORKLOADS = {
    "concurrency": Workload(calls=40, limit=4, hold_s=0.5),
    "long": Workload(calls=8, limit=2, hold_s=5.0),  # holds ≫ the lower caps, like transcripts
    "rate": Workload(calls=40, limit=30, decay_per_s=0.5),  # 30 requests/min
}
LEASE_S = 60.0
MIN_LEASE_PROBES = (30.0, 59.0, 60.0)


# --------------------------------------------------------------------------------------------------
# client processes (``gcl_throttle.py _client ...``): import prefect, say ready, wait for "go" on
# stdin, run the calls, report.
# --------------------------------------------------------------------------------------------------

_RETRY_RE = re.compile(r"Retrying in ([0-9.eE+-]+) second")
_BACKOFF_RE = re.compile(r"retryable status code (\d+)\. Another attempt will be made in ([0-9.eE+-]+)s")


class _RetryLog(logging.Handler):
    """Collects the sleeps the client logs: ``Retry-After`` of a 423 (the acquisition services),
    and the HTTP client's back-off after a retryable status (503 when the server's database is
    locked)."""

    def __init__(self) -> None:
        super().__init__()
        self.retry_after: list[tuple[float, float]] = []  # (time, seconds)
        self.backoff: list[tuple[float, int, float]] = []  # (time, status, seconds)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if match := _RETRY_RE.search(message):
            self.retry_after.append((time.time(), float(match.group(1))))
        elif match := _BACKOFF_RE.search(message):
            self.backoff.append((time.time(), int(match.group(1)), float(match.group(2))))


def _say(kind: str, payload: Any = None) -> None:
    sys.stdout.write(f"{MARK}{kind} {json.dumps(payload)}\n")
    sys.stdout.flush()


def _client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gcl_throttle.py _client")
    parser.add_argument("--mode", choices=["concurrency", "rate", "hold", "wait"], required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hold", type=float, default=0.5)
    parser.add_argument("--lease", type=float, default=300.0)
    parser.add_argument("--deadline", type=float, required=True, help="seconds after go to give up")
    args = parser.parse_args(argv)

    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency, rate_limit

    # Warm up: settings, the API connection, and the limit exists.
    with get_client(sync_client=True) as client:
        client.read_global_concurrency_limit_by_name(args.name)

    retry_log = _RetryLog()
    for logger_name in ("prefect._internal", "prefect.client"):
        lg = logging.getLogger(logger_name)
        lg.addHandler(retry_log)
        lg.propagate = False  # keep these debug logs out of prefect's console handler
    logging.getLogger("prefect.client").setLevel(logging.DEBUG)

    if args.mode == "hold":
        with concurrency(args.name, occupy=1, lease_duration=args.lease, strict=True):
            _say("acquired", time.time())
            time.sleep(args.deadline)  # until SIGKILLed (bounded)
        return 0

    _say("ready")
    if sys.stdin.readline().strip() != "go":
        return 2
    go = threading.Event()
    calls: list[dict[str, Any]] = [{} for _ in range(args.threads)]

    def one(i: int) -> None:
        rec = calls[i]
        go.wait()
        rec["start"] = time.time()
        try:
            if args.mode == "rate":
                rate_limit(args.name, occupy=1, strict=True)
                rec["acquired"] = rec["end"] = time.time()
            else:
                lease = {"lease_duration": args.lease} if args.mode == "wait" else {}
                with concurrency(args.name, occupy=1, strict=True, **lease):
                    rec["acquired"] = time.time()
                    time.sleep(args.hold)
                    rec["release"] = time.time()
                rec["end"] = time.time()
        except BaseException as exc:  # reported, not raised: the run goes on
            rec["error"] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(args.threads)]
    for t in threads:
        t.start()
    go.set()
    stop = time.time() + args.deadline
    for t in threads:
        t.join(max(0.0, stop - time.time()))
    for rec in calls:
        if "end" not in rec and "error" not in rec:
            rec["error"] = f"unfinished after {args.deadline:.0f} s"
    _say("result", {"pid": os.getpid(), "calls": calls, "retry_after": retry_log.retry_after,
                    "backoff": retry_log.backoff})
    sys.stdout.flush()
    os._exit(0)  # threads still queued in prefect's services cannot be joined


# --------------------------------------------------------------------------------------------------
# the orchestrating process
# --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """This environment without Prefect settings that would point elsewhere or change the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


@dataclass
class Server:
    label: str
    cap_s: Optional[float]  # None: Prefect's default
    home: Path
    port: int
    proc: subprocess.Popen
    log_path: Path
    started_in_s: float = 0.0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def client_env(self) -> dict[str, str]:
        env = _clean_env()
        env.update(PREFECT_HOME=str(self.home), PREFECT_API_URL=self.api_url, DO_NOT_TRACK="1",
                   PREFECT_LOGGING_INTERNAL_LEVEL="DEBUG")
        return env

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def create_limit(self, limit: int, decay: float = 0.0, prefix: str = "bench") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        status, body = self.api("POST", "/v2/concurrency_limits/",
                                {"name": name, "limit": limit, "slot_decay_per_second": decay})
        if status != 201:
            raise RuntimeError(f"creating limit {name}: HTTP {status} {body}")
        return name

    def read_limit(self, name: str) -> dict[str, Any]:
        status, body = self.api("GET", f"/v2/concurrency_limits/{name}")
        if status != 200:
            raise RuntimeError(f"reading limit {name}: HTTP {status} {body}")
        return {k: body.get(k) for k in ("limit", "active_slots", "slot_decay_per_second")}


@contextmanager
def prefect_server(label: str, cap_s: Optional[float], health_timeout_s: float,
                   keep_logs: Optional[Path] = None) -> Iterator[Server]:
    home = Path(tempfile.mkdtemp(prefix="gcl-throttle-"))
    port = _free_port()
    env = _clean_env()
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PREFECT_SERVER_UI_ENABLED="false", PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false")
    if cap_s is not None:
        env[CAP_ENV] = f"{cap_s:g}"
    log_path = home / "server.log"
    prefect_bin = Path(sys.executable).with_name("prefect")
    cmd = ([str(prefect_bin)] if prefect_bin.exists() else [sys.executable, "-m", "prefect"])
    cmd += ["server", "start", "--host", "127.0.0.1", "--port", str(port)]
    t0 = time.time()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(label=label, cap_s=cap_s, home=home, port=port, proc=proc, log_path=log_path)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited ({proc.returncode}):\n{_tail(log_path)}")
            if time.time() - t0 > health_timeout_s:
                raise RuntimeError(f"prefect server not healthy after {health_timeout_s:.0f} s:\n"
                                   f"{_tail(log_path)}")
            try:
                if server.api("GET", "/health", timeout=2.0)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        server.started_in_s = time.time() - t0
        yield server
    finally:
        _stop_group(proc, grace_s=20.0)
        if keep_logs is not None:
            dest = keep_logs / re.sub(r"[^\w.-]+", "_", label)
            dest.mkdir(parents=True, exist_ok=True)
            for log_file in home.glob("*.log"):
                shutil.copy2(log_file, dest / log_file.name)
        shutil.rmtree(home, ignore_errors=True)


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _stop_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the process group started for ``proc``, then SIGKILL it after ``grace_s``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class Client:
    """One client process: its reported lines arrive on ``self.lines``."""

    def __init__(self, server: Server, log_dir: Path, *args: str) -> None:
        self.log = open(log_dir / f"client-{uuid.uuid4().hex[:8]}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_client", *args],
                                     env=server.client_env(), cwd=str(ROOT), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)
        self.lines: "queue.Queue[tuple[str, Any]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                kind, _, payload = line[len(MARK):].partition(" ")
                self.lines.put((kind, json.loads(payload)))
        self.lines.put(("eof", None))

    def expect(self, kind: str, timeout_s: float) -> Any:
        deadline = time.time() + timeout_s
        while True:
            try:
                got, payload = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                raise TimeoutError(f"client {self.proc.pid}: no {kind!r} within {timeout_s:.0f} s; "
                                   f"log:\n{_tail(Path(self.log.name))}") from None
            if got == kind:
                return payload
            if got == "eof":
                raise RuntimeError(f"client {self.proc.pid} exited ({self.proc.wait()}) before "
                                   f"{kind!r}; log:\n{_tail(Path(self.log.name))}")

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        _stop_group(self.proc, grace_s=2.0)
        self.log.close()


@contextmanager
def clients(server: Server, n: int, *args: str) -> Iterator[list[Client]]:
    started: list[Client] = []
    try:
        for _ in range(n):
            started.append(Client(server, server.home, *args))
        yield started
    finally:
        for c in started:
            c.stop()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals],
                   key=lambda e: (e[0], e[1]))
    held = peak = 0
    for _, step in edges:
        held += step
        peak = max(peak, held)
    return peak


def run_load(server: Server, mode: str, processes: int, run_timeout_s: float) -> dict[str, Any]:
    """A workload's calls at once from ``processes`` processes (an equal share of threads each)."""
    w = WORKLOADS[mode]
    name = server.create_limit(w.limit, w.decay_per_s, prefix=mode)
    threads = w.calls // processes
    args = ["--mode", "rate" if w.decay_per_s else "concurrency", "--name", name,
            "--threads", str(threads), "--hold", str(w.hold_s), "--deadline", str(run_timeout_s)]
    with clients(server, processes, *args) as procs:
        for c in procs:
            c.expect("ready", timeout_s=120)
        for c in procs:
            c.send("go")
        reports = [c.expect("result", timeout_s=run_timeout_s + 30) for c in procs]
    state = server.read_limit(name)

    calls = [dict(rec, process=i) for i, rep in enumerate(reports) for rec in rep["calls"]]
    retry_after = sorted(v for rep in reports for _, v in rep["retry_after"])
    backoff = [b for rep in reports for b in rep["backoff"]]
    done = [c for c in calls if "error" not in c]
    errors = [c["error"] for c in calls if "error" in c]
    t0 = min(c["start"] for c in calls if "start" in c)
    waits = [c["acquired"] - c["start"] for c in done]
    wall = max(c["end"] for c in done) - t0 if done else None
    result: dict[str, Any] = {
        "config": server.label, "cap_s": server.cap_s, "mode": mode, "limit": w.limit,
        "decay_per_s": w.decay_per_s, "calls": w.calls,
        "processes": processes, "threads_per_process": threads,
        "hold_s": None if w.decay_per_s else w.hold_s,
        "wall_s": wall, "ideal_s": w.ideal_s, "ratio": (wall / w.ideal_s) if wall else None,
        "median_wait_s": statistics.median(waits) if waits else None,
        "p90_wait_s": _percentile(waits, 0.9) if waits else None,
        "max_wait_s": max(waits) if waits else None,
        "completed": len(done), "errors": errors,
        "denials_423": len(retry_after),
        "http_backoffs": len(backoff), "http_backoff_statuses": sorted({b[1] for b in backoff}),
        "http_backoff_total_s": sum(b[2] for b in backoff),
        "retry_after_median_s": statistics.median(retry_after) if retry_after else None,
        "retry_after_max_s": max(retry_after) if retry_after else None,
        "limit_after": state,
        "calls_raw": [{k: round(v - t0, 4) if isinstance(v, float) else v for k, v in c.items()}
                      for c in calls],
        "retry_after_raw": [[i, round(t - t0, 4), v] for i, rep in enumerate(reports)
                            for t, v in rep["retry_after"]],
        "http_backoff_raw": [[i, round(t - t0, 4), code, v] for i, rep in enumerate(reports)
                             for t, code, v in rep["backoff"]],
    }
    if not w.decay_per_s:
        result["max_held_at_once"] = _max_overlap([(c["acquired"], c["release"]) for c in done])
    else:
        grants = sorted(c["acquired"] - t0 for c in done)
        result["granted_within_1s"] = sum(1 for g in grants if g <= 1.0)
        result["burst_complete_s"] = grants[w.limit - 1] if len(grants) >= w.limit else None
        later = grants[w.limit - 1:]
        result["grant_times_after_burst_s"] = [round(g, 2) for g in grants[w.limit:]]
        result["mean_interval_after_burst_s"] = (
            (later[-1] - later[0]) / (len(later) - 1) if len(later) > 1 else None)
        # a rate limit of L with decay d may grant at most L + floor(d·t) by time t
        result["max_grants_over_allowance"] = max(
            (i + 1 - (w.limit + int(w.decay_per_s * g)) for i, g in enumerate(grants)), default=0)
    return result


def probe_min_lease(server: Server) -> list[dict[str, Any]]:
    """What ``increment-with-lease`` answers to short leases (the server validates the minimum)."""
    name = server.create_limit(1, prefix="lease-probe")
    out = []
    for lease in MIN_LEASE_PROBES:
        status, body = server.api("POST", "/v2/concurrency_limits/increment-with-lease",
                                  {"names": [name], "slots": 1, "mode": "concurrency",
                                   "lease_duration": lease})
        if status == 200:
            server.api("POST", "/v2/concurrency_limits/decrement-with-lease",
                       {"lease_id": body["lease_id"]})
        detail = None
        if status != 200:
            detail = body
            if isinstance(body, dict):
                found = body.get("exception_detail") or body.get("detail") or body
                detail = [d.get("msg", d) if isinstance(d, dict) else d for d in found] \
                    if isinstance(found, list) else found
        out.append({"lease_duration_s": lease, "http_status": status, "detail": detail})
    return out


def run_lease(server: Server, lease_s: float, run_timeout_s: float) -> dict[str, Any]:
    """Holder SIGKILLed while holding the only slot: when is it freed, when does a waiter get it."""
    name = server.create_limit(1, prefix="lease")
    with clients(server, 1, "--mode", "hold", "--name", name, "--lease", str(lease_s),
                 "--deadline", str(run_timeout_s)) as (holder,), \
            clients(server, 1, "--mode", "wait", "--name", name, "--threads", "1", "--hold", "0.1",
                    "--lease", str(lease_s), "--deadline", str(run_timeout_s)) as (waiter,):
        t_holder_acquired = holder.expect("acquired", timeout_s=120)
        waiter.expect("ready", timeout_s=120)
        waiter.send("go")
        time.sleep(2.0)  # the waiter is being denied now
        t_kill = time.time()
        os.kill(holder.proc.pid, signal.SIGKILL)
        holder.proc.wait(10)
        t_freed = None
        deadline = t_kill + run_timeout_s
        report = None
        while time.time() < deadline:
            try:
                kind, payload = waiter.lines.get(timeout=0.5)
                if kind == "result":
                    report = payload
                    break
                if kind == "eof":
                    break
            except queue.Empty:
                pass
            if t_freed is None and server.read_limit(name)["active_slots"] == 0:
                t_freed = time.time()
    call = (report or {}).get("calls", [{}])[0]
    got = call.get("acquired")
    if t_freed is None and got is not None:
        t_freed = got  # the waiter took it before a poll saw it free
    retry_after = [v for _, v in (report or {}).get("retry_after", [])]
    return {
        "config": server.label, "cap_s": server.cap_s, "lease_duration_s": lease_s,
        "kill_after_acquire_s": t_kill - t_holder_acquired,
        "lease_expires_after_kill_s": t_holder_acquired + lease_s - t_kill,
        "slot_freed_after_kill_s": (t_freed - t_kill) if t_freed else None,
        "waiter_acquired_after_kill_s": (got - t_kill) if got else None,
        "waiter_acquired_after_freed_s": (got - t_freed) if (got and t_freed) else None,
        "waiter_denials_423": len(retry_after),
        "waiter_http_backoffs": len((report or {}).get("backoff", [])),
        "waiter_retry_after_max_s": max(retry_after) if retry_after else None,
        "waiter_error": call.get("error") if report else "no report",
        "repossessor_loop_s": 15.0,  # Prefect's default; not changed here
    }


def _fmt(v: Any, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_table(runs: list[dict[str, Any]], leases: list[dict[str, Any]]) -> None:
    head = (f"{'config':<14} {'mode':<12} {'procs×thr':>9} {'wall s':>7} {'ideal s':>7} {'ratio':>6} "
            f"{'med wait':>8} {'max wait':>8} {'423s':>5} {'max R-A':>7} {'5xx':>5} {'backoff':>7} {'ok':>5}")
    print(head)
    print("-" * len(head))
    for r in runs:
        print(f"{r['config']:<14} {r['mode']:<12} {r['processes']:>4}×{r['threads_per_process']:<4} "
              f"{_fmt(r['wall_s']):>7} {_fmt(r['ideal_s']):>7} {_fmt(r['ratio'], '.2f'):>6} "
              f"{_fmt(r['median_wait_s']):>8} {_fmt(r['max_wait_s']):>8} {r['denials_423']:>5} "
              f"{_fmt(r['retry_after_max_s']):>7} {r['http_backoffs']:>5} {_fmt(r['http_backoff_total_s']):>7} "
              f"{r['completed']:>2}/{r['calls']:<2}")
    rates = [r for r in runs if r["decay_per_s"]]
    if rates:
        print()
        for r in rates:
            print(f"{r['config']:<14} rate {r['processes']}×{r['threads_per_process']}: burst of {r['limit']} "
                  f"complete after {_fmt(r['burst_complete_s'])} s, then a grant every "
                  f"{_fmt(r['mean_interval_after_burst_s'], '.2f')} s (ideal {1 / r['decay_per_s']:.2f})")
    if leases:
        print()
        head = (f"{'config':<14} {'lease s':>7} {'expiry after kill':>17} {'freed after kill':>16} "
                f"{'waiter got it after kill':>24} {'423s':>5} {'max R-A':>7}")
        print(head)
        print("-" * len(head))
        for r in leases:
            print(f"{r['config']:<14} {r['lease_duration_s']:>7.0f} {_fmt(r['lease_expires_after_kill_s']):>17} "
                  f"{_fmt(r['slot_freed_after_kill_s']):>16} {_fmt(r['waiter_acquired_after_kill_s']):>24} "
                  f"{r['waiter_denials_423']:>5} {_fmt(r['waiter_retry_after_max_s']):>7}")


def _parse_configs(text: str) -> list[tuple[str, Optional[float]]]:
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        if item == "default":
            out.append((f"default ({DEFAULT_CAP_S:g} s)", None))
        else:
            out.append((f"cap {float(item):g} s", float(item)))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="default,5,2,1,0.5",
                        help=f"server configurations: 'default' or a {CAP_ENV} value (comma-separated)")
    parser.add_argument("--processes", default="1,4", help="client process counts for the 40 calls")
    parser.add_argument("--long-on", default="default,5,1",
                        help="configurations to run the long-hold concurrency workload on")
    parser.add_argument("--rate-on", default="default,1", help="configurations to run the rate limit on")
    parser.add_argument("--lease-on", default="default,1", help="configurations to run the lease test on")
    parser.add_argument("--repeat", type=int, default=1, help="samples of each load run")
    parser.add_argument("--run-timeout", type=float, default=180.0, help="bound of each run, seconds")
    parser.add_argument("--health-timeout", type=float, default=120.0, help="server start bound, seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gcl_throttle.json")
    parser.add_argument("--keep-logs", type=Path, help="copy the server and client logs here")
    args = parser.parse_args(argv)

    configs = _parse_configs(args.configs)
    long_on = {c for c, _ in _parse_configs(args.long_on)}
    rate_on = {c for c, _ in _parse_configs(args.rate_on)}
    lease_on = {c for c, _ in _parse_configs(args.lease_on)}
    process_counts = [int(p) for p in args.processes.split(",") if p.strip()]
    for p in process_counts:
        for mode, w in WORKLOADS.items():
            if w.calls % p:
                parser.error(f"--processes: {w.calls} {mode} calls do not split over {p} processes")

    import prefect  # only for the version in the report

    report: dict[str, Any] = {
        "what": "Prefect global concurrency limits under contention (bench/gcl_throttle.py)",
        "prefect": prefect.__version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "workloads": {mode: vars(w) | {"ideal_s": w.ideal_s} for mode, w in WORKLOADS.items()},
        "lease_s": LEASE_S,
        "args": {k: str(v) for k, v in vars(args).items()},
        "servers": [], "runs": [], "leases": [], "min_lease_probe": None,
    }

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))

    for label, cap in configs:
        print(f"== {label}: starting prefect server", flush=True)
        with prefect_server(label, cap, args.health_timeout, args.keep_logs) as server:
            report["servers"].append({"config": label, "cap_s": cap, "healthy_after_s": server.started_in_s})
            print(f"   healthy after {server.started_in_s:.1f} s on port {server.port}", flush=True)
            modes = (["concurrency"] + (["long"] if label in long_on else [])
                     + (["rate"] if label in rate_on else []))
            for mode in modes:
                for procs in process_counts:
                    for i in range(args.repeat):
                        r = run_load(server, mode, procs, args.run_timeout)
                        r["sample"] = i
                        report["runs"].append(r)
                        save()
                        print(f"   {mode:<11} {procs}×{r['threads_per_process']}: wall {_fmt(r['wall_s'])} s "
                              f"(ideal {r['ideal_s']:.0f}), max wait {_fmt(r['max_wait_s'])} s, "
                              f"{r['denials_423']} × 423, {r['http_backoffs']} × 5xx, "
                              f"{r['completed']}/{r['calls']} done", flush=True)
            if label in lease_on:
                if report["min_lease_probe"] is None:
                    report["min_lease_probe"] = probe_min_lease(server)
                r = run_lease(server, LEASE_S, args.run_timeout)
                report["leases"].append(r)
                save()
                print(f"   lease {LEASE_S:.0f} s, holder SIGKILLed: slot freed after "
                      f"{_fmt(r['slot_freed_after_kill_s'])} s, waiter got it after "
                      f"{_fmt(r['waiter_acquired_after_kill_s'])} s", flush=True)

    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    print()
    print_table(report["runs"], report["leases"])
    if report["min_lease_probe"]:
        print("\nincrement-with-lease: " + ", ".join(
            f"lease {p['lease_duration_s']:g} s → HTTP {p['http_status']}" for p in report["min_lease_probe"]))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        sys.exit(_client_main(sys.argv[2:]))
    sys.exit(main())
