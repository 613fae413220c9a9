"""Bring the callflows stack up on one machine, keep it running in the background, take it down.

    python scripts/stack.py up [--serve]   # `make up` (`make serve`)
    python scripts/stack.py status         # `make status`
    python scripts/stack.py down           # `make down`

``up`` starts what is not already running, each process in its own session (so it outlives the
command that started it) with a pid file under ``$CALLFLOWS_HOME/run/`` and a log under
``$CALLFLOWS_HOME/logs/``:

1. the Prefect server (``prefect server start``, database in ``$PREFECT_HOME``), then waits until
   ``/api/health`` answers;
2. the local AssemblyAI-compatible server (``callflows local-api``) when no ``ASSEMBLYAI_API_KEY``
   is set; one already answering at ``$CALLFLOWS_LOCAL_API_URL`` is reused (and left running by
   ``down``);
3. the ``callflows`` process work pool, if missing;
4. the deployments of ``prefect.yaml`` (``prefect --no-prompt deploy --all``), with their parameter
   schemas closed so that unknown parameter names are refused (``deployments/schema.py``);
5. a worker on the pool (``prefect worker start --pool callflows``), then waits until it is online.

With ``--serve``, steps 3-5 are replaced by ``python -m deployments.serve`` (one process, no work
pool). ``up`` then prints the UI address. If a step fails, what this ``up`` started is stopped again
and the failing process's log is shown.

``down`` stops, in this order, the serve process and the worker (their flow runs included), the local
API, then the Prefect server: SIGTERM to each process group and to any descendant, SIGKILL after
``$CALLFLOWS_STACK_STOP_TIMEOUT_S`` (20 s). It is idempotent.

Environment (the Makefile exports the first two):

| variable | default |
|---|---|
| ``CALLFLOWS_HOME`` | ``./.callflows`` (state, pid files, logs) |
| ``PREFECT_HOME`` | ``$CALLFLOWS_HOME/prefect`` |
| ``CALLFLOWS_PREFECT_HOST`` / ``CALLFLOWS_PREFECT_PORT`` | ``127.0.0.1`` / ``4200`` |
| ``CALLFLOWS_LOCAL_API_URL`` | ``http://127.0.0.1:8765`` |
| ``CALLFLOWS_STACK_START_TIMEOUT_S`` | ``300`` (per process; the machine may be busy) |

Processes are identified by pid and start time (``/proc``), so a stale pid file never makes ``down``
signal an unrelated process. Linux only.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from flows.cli import project_env  # noqa: E402

WORK_POOL = "callflows"
UP_ORDER = ("prefect-server", "local-api", "worker", "serve")
DOWN_ORDER = ("serve", "worker", "local-api", "prefect-server")
BIN = Path(sys.executable).parent


class StackError(RuntimeError):
    """A step of ``up`` failed; the message says which and what to do."""


class ProcessRecord(BaseModel):
    """A background process of the stack, saved as ``$CALLFLOWS_HOME/run/<name>.json`` (its pid alone
    is in ``<name>.pid``)."""

    name: str = Field(..., description="prefect-server, local-api, worker or serve")
    pid: int = Field(..., description="also its process group and session id (started with setsid)")
    start_ticks: int | None = Field(None, description="/proc/<pid>/stat start time (clock ticks since boot)")
    command: list[str]
    log: str = Field(..., description="path of its log file")
    url: str | None = Field(None, description="where it answers, for the servers")
    started_at: datetime


class StackConfig(BaseModel):
    """Where everything lives and listens (see the module docstring for the variables)."""

    home: Path
    prefect_home: Path
    prefect_host: str
    prefect_port: int
    local_api_url: str
    start_timeout_s: float
    stop_timeout_s: float

    @classmethod
    def from_env(cls) -> "StackConfig":
        os.environ.setdefault("CALLFLOWS_HOME", str(ROOT / ".callflows"))  # wherever the command is run from
        home = project_env()  # PREFECT_HOME and Prefect's offline settings, before importing prefect
        env = os.environ
        try:
            return cls(home=home, prefect_home=Path(env["PREFECT_HOME"]).resolve(),
                       prefect_host=env.get("CALLFLOWS_PREFECT_HOST", "127.0.0.1"),
                       prefect_port=int(env.get("CALLFLOWS_PREFECT_PORT", "4200")),
                       local_api_url=env.get("CALLFLOWS_LOCAL_API_URL", "http://127.0.0.1:8765").rstrip("/"),
                       start_timeout_s=float(env.get("CALLFLOWS_STACK_START_TIMEOUT_S", "300")),
                       stop_timeout_s=float(env.get("CALLFLOWS_STACK_STOP_TIMEOUT_S", "20")))
        except ValueError as exc:
            raise StackError(f"a stack setting is not a number ({exc}): check CALLFLOWS_PREFECT_PORT and "
                             f"CALLFLOWS_STACK_*_TIMEOUT_S") from None

    @property
    def ui_url(self) -> str:
        return f"http://{self.prefect_host}:{self.prefect_port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def child_env(self) -> dict[str, str]:
        """This process's environment with the stack's Prefect API and local server."""
        env = dict(os.environ)
        env.update({"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.prefect_home),
                    "CALLFLOWS_HOME": str(self.home), "CALLFLOWS_LOCAL_API_URL": self.local_api_url,
                    "PYTHONUNBUFFERED": "1"})
        return env


# ------------------------------------------------------------------------------------- processes
def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, start ticks) of ``pid`` from /proc, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _all_processes() -> dict[int, tuple[str, int, int, int]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    return table


def _alive(pid: int, table: dict[int, tuple[str, int, int, int]] | None = None) -> bool:
    stat = table.get(pid) if table is not None else _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def tree(pid: int) -> set[int]:
    """Live processes in ``pid``'s process group or descended from ``pid`` (flow runs started in
    their own session included)."""
    table = _all_processes()
    members = {p for p, (_, _, pgid, _) in table.items() if pgid == pid}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for p, (_, ppid, _, _) in table.items():
            if ppid == parent and p not in members:
                members.add(p)
                frontier.append(p)
    members.add(pid)
    return {p for p in members if _alive(p, table)}


def record_alive(record: ProcessRecord) -> bool:
    """True if ``record``'s process is still the one we started (same pid and start time)."""
    stat = _stat(record.pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return record.start_ticks is None or stat[3] == record.start_ticks


def record_path(config: StackConfig, name: str) -> Path:
    return config.run_dir / f"{name}.json"


def read_record(config: StackConfig, name: str) -> ProcessRecord | None:
    path = record_path(config, name)
    try:
        return ProcessRecord.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        print(f"stack: ignoring unreadable {path}", file=sys.stderr)
        return None


def forget(config: StackConfig, name: str) -> None:
    for path in (record_path(config, name), config.run_dir / f"{name}.pid"):
        path.unlink(missing_ok=True)


def spawn(config: StackConfig, name: str, command: list[str], url: str | None = None) -> ProcessRecord:
    """Start ``command`` in its own session (it survives the caller and its terminal), output appended
    to ``logs/<name>.log``; write its pid files."""
    config.run_dir.mkdir(parents=True, exist_ok=True)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        log.write(f"\n=== {datetime.now(timezone.utc).isoformat()} {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(command, cwd=ROOT, env=config.child_env(), stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stat = _stat(process.pid)
    record = ProcessRecord(name=name, pid=process.pid, start_ticks=stat[3] if stat else None, command=command,
                           log=str(log_path), url=url, started_at=datetime.now(timezone.utc))
    record_path(config, name).write_text(record.model_dump_json(indent=2) + "\n")
    (config.run_dir / f"{name}.pid").write_text(f"{process.pid}\n")
    return record


def log_tail(record: ProcessRecord, chars: int = 3000) -> str:
    try:
        text = Path(record.log).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return text[-chars:]


def wait_for(record: ProcessRecord, ready: Callable[[], bool], what: str, timeout_s: float) -> float:
    """Poll ``ready`` until true; return the seconds it took. Raises ``StackError`` (with the end of
    the log) if the process exits or ``timeout_s`` passes."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not record_alive(record):
            raise StackError(f"{record.name} exited before {what}; its log {record.log} ends with:\n"
                             f"{log_tail(record)}")
        if ready():
            return time.monotonic() - started
        time.sleep(0.5)
    raise StackError(f"{record.name} did not get {what} within {timeout_s:.0f} s (raise "
                     f"CALLFLOWS_STACK_START_TIMEOUT_S on a busy machine); see {record.log}")


def stop(config: StackConfig, name: str) -> str:
    """Stop ``name``'s process tree: SIGTERM, then SIGKILL after the stop timeout. Returns what was done."""
    record = read_record(config, name)
    if record is None:
        return "not running"
    stat = _stat(record.pid)
    reused = stat is not None and record.start_ticks is not None and stat[3] != record.start_ticks
    members = set() if reused else tree(record.pid)  # the leader may be gone and its children not
    if not members:
        forget(config, name)
        return "was not running (stale pid file removed)"
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in sorted(members):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (config.stop_timeout_s if sig == signal.SIGTERM else 10)
        while time.monotonic() < deadline:
            members = {p for p in members if _alive(p)}
            if not members:
                forget(config, name)
                return f"stopped (pid {record.pid})" + (" after SIGKILL" if sig == signal.SIGKILL else "")
            time.sleep(0.2)
    raise StackError(f"{name} (pid {record.pid}) did not stop: processes {sorted(members)} are left")


def running(config: StackConfig, name: str) -> ProcessRecord | None:
    record = read_record(config, name)
    if record is not None and not record_alive(record):
        forget(config, name)
        return None
    return record


# --------------------------------------------------------------------------------------- checks
def healthy(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def prefect_healthy(config: StackConfig) -> bool:
    return healthy(f"{config.api_url}/health")


def local_api_healthy(config: StackConfig) -> bool:
    return healthy(f"{config.local_api_url}/_local/health")


def uses_local_api() -> bool:
    from callflows.settings import Settings

    return Settings().uses_local_api and not os.environ.get("CALLFLOWS_API_KEY_SECRET_BLOCK")


def prefect_deployment_names() -> list[str]:
    """Deployment names in prefect.yaml."""
    import yaml

    return [d["name"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]]


# ------------------------------------------------------------------------------------------- up
def start_prefect_server(config: StackConfig, started: list[str]) -> None:
    if running(config, "prefect-server"):
        if not prefect_healthy(config):
            raise StackError(f"the Prefect server of a previous `up` is running but {config.api_url}/health does "
                             f"not answer: run `make down`, then `make up`")
        print(f"Prefect server: already running at {config.ui_url}")
        return
    if prefect_healthy(config):
        raise StackError(f"a Prefect server not started by `make up` already answers at {config.ui_url}: stop it, "
                         f"or set CALLFLOWS_PREFECT_PORT to a free port")
    record = spawn(config, "prefect-server", [str(BIN / "prefect"), "server", "start", "--host", config.prefect_host,
                                              "--port", str(config.prefect_port)], url=config.ui_url)
    started.append("prefect-server")
    took = wait_for(record, lambda: prefect_healthy(config), "healthy", config.start_timeout_s)
    print(f"Prefect server: started at {config.ui_url} (pid {record.pid}, healthy after {took:.0f} s; "
          f"database in {config.prefect_home})")


def start_local_api(config: StackConfig, started: list[str]) -> None:
    if not uses_local_api():
        print("Local API: not needed (ASSEMBLYAI_API_KEY or a Secret block is configured)")
        return
    if running(config, "local-api") or local_api_healthy(config):
        owner = "started by `make up`" if running(config, "local-api") else "not ours: left running by `make down`"
        print(f"Local API: already running at {config.local_api_url} ({owner})")
        return
    from urllib.parse import urlparse

    parsed = urlparse(config.local_api_url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise StackError(f"CALLFLOWS_LOCAL_API_URL={config.local_api_url} is not on this machine and does not "
                         f"answer: start the local server there, or set ASSEMBLYAI_API_KEY")
    record = spawn(config, "local-api", [str(BIN / "callflows"), "local-api", "--host", parsed.hostname,
                                         "--port", str(parsed.port or 80)], url=config.local_api_url)
    started.append("local-api")
    took = wait_for(record, lambda: local_api_healthy(config), "healthy", config.start_timeout_s)
    print(f"Local API: started at {config.local_api_url} (pid {record.pid}, healthy after {took:.0f} s)")


def ensure_work_pool(config: StackConfig) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(WORK_POOL)
            print(f"Work pool {WORK_POOL!r}: exists")
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process",
                                                   base_job_template=ProcessWorker.get_default_base_job_template()))
            print(f"Work pool {WORK_POOL!r}: created (type process)")


def deploy(config: StackConfig) -> None:
    """``prefect --no-prompt deploy --all`` from the project root, then close the parameter schemas."""
    from deployments.schema import close_parameter_schemas

    config.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.log_dir / "deploy.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            result = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], cwd=ROOT,
                                    env=config.child_env(), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, timeout=config.start_timeout_s)
        except subprocess.TimeoutExpired:
            raise StackError(f"`prefect deploy --all` did not finish within {config.start_timeout_s:.0f} s (raise "
                             f"CALLFLOWS_STACK_START_TIMEOUT_S on a busy machine); see {log_path}") from None
    if result.returncode != 0:
        raise StackError(f"`prefect deploy --all` failed (exit {result.returncode}); {log_path} ends with:\n"
                         f"{log_path.read_text(errors='replace')[-3000:]}")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, WorkPoolFilter, \
        WorkPoolFilterName

    names = prefect_deployment_names()
    with get_client(sync_client=True) as client:
        found = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names)),
                                        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[WORK_POOL])))
    close_parameter_schemas([d.id for d in found])
    missing = sorted(set(names) - {d.name for d in found})
    if missing:
        raise StackError(f"`prefect deploy --all` did not create {', '.join(missing)}; see {log_path}")
    print(f"Deployments: {', '.join(names)} deployed to pool {WORK_POOL!r} in {time.monotonic() - started:.0f} s "
          f"(unknown parameter names refused)")


def start_worker(config: StackConfig, started: list[str]) -> None:
    if running(config, "worker"):
        print(f"Worker: already running (pid {read_record(config, 'worker').pid})")
        return
    from prefect.client.orchestration import get_client

    name = f"callflows-{uuid.uuid4().hex[:8]}"
    record = spawn(config, "worker", [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--name", name])
    started.append("worker")

    def online() -> bool:
        with get_client(sync_client=True) as client:
            return any(w.name == name and w.status == "ONLINE" for w in client.read_workers_for_work_pool(WORK_POOL))

    took = wait_for(record, online, "online", config.start_timeout_s)
    print(f"Worker: {name} online on pool {WORK_POOL!r} (pid {record.pid}, after {took:.0f} s)")


def start_serve(config: StackConfig, started: list[str]) -> None:
    if running(config, "serve"):
        print(f"Serve: already running (pid {read_record(config, 'serve').pid})")
        return
    record = spawn(config, "serve", [sys.executable, "-m", "deployments.serve"])
    started.append("serve")
    offset = Path(record.log).stat().st_size  # earlier runs' lines are in the same log

    def serving() -> bool:
        with open(record.log, "rb") as log:
            log.seek(offset)
            return b"Serving " in log.read()

    took = wait_for(record, serving, "its deployments registered", config.start_timeout_s)
    print(f"Serve: deployments served by pid {record.pid} (ready after {took:.0f} s)")


def up(config: StackConfig, serve: bool) -> int:
    other = "worker" if serve else "serve"
    if running(config, other):
        raise StackError(f"the stack is already up with {'a worker' if serve else 'serve'}: run `make down` first "
                         f"(both register the same deployments)")
    os.environ["PREFECT_API_URL"] = config.api_url  # for the Prefect client in this process
    started: list[str] = []
    t0 = time.monotonic()
    try:
        start_prefect_server(config, started)
        start_local_api(config, started)
        if serve:
            start_serve(config, started)
        else:
            ensure_work_pool(config)
            deploy(config)
            start_worker(config, started)
    except BaseException:
        for name in reversed(started):
            stop(config, name)
        raise
    print(f"\nUp in {time.monotonic() - t0:.0f} s. Prefect UI: {config.ui_url}  (API {config.api_url}; logs and "
          f"pid files in {config.home}/logs and {config.home}/run)")
    print(f"CLI: export PREFECT_API_URL={config.api_url}   Stop everything: make down")
    print(f"analyze-inbox runs nightly at 02:00 UTC on {ROOT / 'inbox'} (create it and put recordings there).")
    return 0


# ----------------------------------------------------------------------------------- down, status
def down(config: StackConfig) -> int:
    for name in DOWN_ORDER:
        done = stop(config, name)
        if name == "local-api" and done == "not running" and local_api_healthy(config):
            done = f"not started by `make up`: left running at {config.local_api_url}"
        print(f"{name}: {done}")
    return 0


def status(config: StackConfig) -> int:
    health = {"prefect-server": prefect_healthy(config), "local-api": local_api_healthy(config)}
    for name in UP_ORDER:
        record = running(config, name)
        if record is not None:
            state = f"running (pid {record.pid}, log {record.log})"
        elif name == "local-api" and health[name]:
            state = f"running at {config.local_api_url} (not started by `make up`)"
        else:
            state = "stopped"
        if name in health and record is not None:
            state += ", healthy" if health[name] else ", NOT answering"
        print(f"{name:15} {state}")
    if health["prefect-server"]:
        print(f"Prefect UI: {config.ui_url}")
    return 0 if any(running(config, n) for n in UP_ORDER) else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start the stack (reusing what already runs)")
    up_parser.add_argument("--serve", action="store_true",
                           help="serve the deployments from one process instead of a work pool and worker")
    sub.add_parser("down", help="stop the stack: worker/serve, local API, Prefect server")
    sub.add_parser("status", help="what is running; exit code 3 when nothing is")
    args = parser.parse_args(argv)
    try:
        config = StackConfig.from_env()
        if args.command == "up":
            return up(config, args.serve)
        if args.command == "down":
            return down(config)
        return status(config)
    except StackError as exc:
        print(f"stack {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
