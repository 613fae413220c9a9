"""Bring the callflows stack up on one machine, keep it running in the background, take it down.

    python scripts/stack.py up [--db sqlite|postgres] [--workers N]   # `make up [DB=postgres] [WORKERS=N]`
    python scripts/stack.py up --serve [--db sqlite|postgres]          # `make serve [DB=postgres]`
    python scripts/stack.py status                                    # `make status`
    python scripts/stack.py down                                      # `make down`

``up`` starts what is not already running, each process in its own session (so it outlives the
command that started it) with a pid file under ``$CALLFLOWS_HOME/run/`` and a log under
``$CALLFLOWS_HOME/logs/``:

0. with ``--db postgres``: PostgreSQL (``scripts/postgres.py start``: Debian's server, data in
   ``$CALLFLOWS_HOME/postgres``, 127.0.0.1:``$CALLFLOWS_POSTGRES_PORT``; it runs under ``pg_ctl``,
   not as a stack process). The choice is remembered in ``run/db`` for ``down`` and ``status``;
1. the Prefect server (``prefect server start``), then waits until ``/api/health`` answers. Its
   database is SQLite in ``$PREFECT_HOME`` (``--db sqlite``, the default) or the ``prefect`` database
   of that PostgreSQL (``PREFECT_API_DATABASE_CONNECTION_URL``). It gets
   ``PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS`` (default ``SLOT_WAIT_DEFAULT_S``,
   1 s instead of Prefect's 30 s: how long a client denied a global concurrency slot waits before
   asking again). Then the global concurrency limits of ``tasks/limits.py`` are created if missing;
2. the local AssemblyAI-compatible server (``callflows local-api``) when no ``ASSEMBLYAI_API_KEY``
   is set; one already answering at ``$CALLFLOWS_LOCAL_API_URL`` is reused (and left running by
   ``down``);
3. the ``callflows`` process work pool, if missing, with its concurrency limit
   (``$CALLFLOWS_POOL_CONCURRENCY``; default: call workers × ``$CALLFLOWS_WORKER_LIMIT`` + 1 for the
   inbox run), set again on each ``up``; and its work queues ``default`` and ``inbox``;
4. the deployments of ``prefect.yaml`` (``prefect --no-prompt deploy --all``), with their parameter
   schemas closed so that unknown parameter names are refused (``deployments/schema.py``);
   analyze-inbox goes to the ``inbox`` queue, the others to ``default``;
5. ``--workers N`` (default 1) call workers ``callflows-worker-1..N`` (stack processes ``worker-1..N``)
   on the ``default`` queue, each with ``--limit $CALLFLOWS_WORKER_LIMIT`` (default 1 flow run at a
   time: more workers is what adds throughput), plus one worker ``callflows-worker-inbox``
   (``worker-inbox``) on the ``inbox`` queue, without a limit: an analyze-inbox run waits for its
   analyze-call child runs and must not hold a call worker's slot (with one worker of limit 1 that
   would deadlock). Then waits until every worker is online. With ``--db postgres`` the workers (and
   their flow runs) get ``CALLFLOWS_DATABASE_URL``, the ``callflows`` database (the inbox ledger).

With ``--serve``, steps 3-5 are replaced by ``python -m deployments.serve`` (one process, no work
pool). ``up`` then prints the UI address. If a step fails, what this ``up`` started is stopped again
and the failing process's log is shown. A second ``up`` with more ``--workers`` starts the missing
ones; workers beyond ``N`` are left running (``down`` stops them). Changing ``--db`` needs a ``down``
first.

``down`` stops, in this order, the serve process and all workers (their flow runs included), the
local API, the Prefect server, then PostgreSQL when the stack uses it (``pg_ctl stop -m fast``):
SIGTERM to each process group and to any descendant, SIGKILL after ``$CALLFLOWS_STACK_STOP_TIMEOUT_S``
(20 s). It is idempotent.

Environment (the Makefile exports the first two):

| variable | default |
|---|---|
| ``CALLFLOWS_HOME`` | ``./.callflows`` (state, pid files, logs, PostgreSQL's data) |
| ``PREFECT_HOME`` | ``$CALLFLOWS_HOME/prefect`` |
| ``CALLFLOWS_PREFECT_HOST`` / ``CALLFLOWS_PREFECT_PORT`` | ``127.0.0.1`` / ``4200`` |
| ``CALLFLOWS_LOCAL_API_URL`` | ``http://127.0.0.1:8765`` |
| ``CALLFLOWS_STACK_START_TIMEOUT_S`` | ``300`` (per process; the machine may be busy) |
| ``CALLFLOWS_WORKER_LIMIT`` | ``1`` (flow runs at a time per call worker) |
| ``CALLFLOWS_POOL_CONCURRENCY`` | call workers × ``CALLFLOWS_WORKER_LIMIT`` + 1 |
| ``CALLFLOWS_POSTGRES_PORT`` | ``5433`` (``--db postgres``; see ``scripts/postgres.py``) |
| ``PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS`` | ``1`` (``SLOT_WAIT_DEFAULT_S``) |

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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from flows.cli import project_env  # noqa: E402
from scripts import postgres  # noqa: E402

# How long a client denied a global concurrency slot waits before asking again (Prefect's default: 30 s,
# far too long for the vendor limits of tasks/limits.py). One constant: being measured, may change.
SLOT_WAIT_ENV = "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS"
SLOT_WAIT_DEFAULT_S = "1"

WORK_POOL = "callflows"
CALL_QUEUE = "default"  # every deployment but analyze-inbox (prefect.yaml)
INBOX_QUEUE = "inbox"  # analyze-inbox only, with its own worker
INBOX_WORKER = "worker-inbox"
DATABASES = ("sqlite", "postgres")
DATABASE_URL_ENV = "CALLFLOWS_DATABASE_URL"  # the project's own tables (callflows.ledger)
BIN = Path(sys.executable).parent


class StackError(RuntimeError):
    """A step of ``up`` failed; the message says which and what to do."""


class ProcessRecord(BaseModel):
    """A background process of the stack, saved as ``$CALLFLOWS_HOME/run/<name>.json`` (its pid alone
    is in ``<name>.pid``)."""

    name: str = Field(..., description="prefect-server, local-api, worker-1..N, worker-inbox or serve")
    pid: int = Field(..., description="also its process group and session id (started with setsid)")
    start_ticks: int | None = Field(None, description="/proc/<pid>/stat start time (clock ticks since boot)")
    command: list[str]
    log: str = Field(..., description="path of its log file")
    url: str | None = Field(None, description="where it answers, for the servers")
    worker_name: str | None = Field(None, description="the Prefect worker's name, for workers")
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
    worker_limit: int = Field(1, ge=1, description="flow runs at a time per call worker")
    pool_concurrency: int | None = Field(None, ge=1, description="None: call workers × worker_limit + 1")
    slot_wait_s: str = Field(SLOT_WAIT_DEFAULT_S, description="the Prefect server's concurrency slot wait")

    @classmethod
    def from_env(cls) -> "StackConfig":
        os.environ.setdefault("CALLFLOWS_HOME", str(ROOT / ".callflows"))  # wherever the command is run from
        home = project_env()  # PREFECT_HOME and Prefect's offline settings, before importing prefect
        env = os.environ
        slot_wait_s = env.get(SLOT_WAIT_ENV) or SLOT_WAIT_DEFAULT_S
        try:
            float(slot_wait_s)
            return cls(home=home, prefect_home=Path(env["PREFECT_HOME"]).resolve(),
                       prefect_host=env.get("CALLFLOWS_PREFECT_HOST", "127.0.0.1"),
                       prefect_port=int(env.get("CALLFLOWS_PREFECT_PORT", "4200")),
                       local_api_url=env.get("CALLFLOWS_LOCAL_API_URL", "http://127.0.0.1:8765").rstrip("/"),
                       start_timeout_s=float(env.get("CALLFLOWS_STACK_START_TIMEOUT_S", "300")),
                       stop_timeout_s=float(env.get("CALLFLOWS_STACK_STOP_TIMEOUT_S", "20")),
                       worker_limit=int(env.get("CALLFLOWS_WORKER_LIMIT") or "1"),
                       pool_concurrency=int(env["CALLFLOWS_POOL_CONCURRENCY"])
                       if env.get("CALLFLOWS_POOL_CONCURRENCY") else None,
                       slot_wait_s=slot_wait_s)
        except ValueError as exc:
            errors = getattr(exc, "errors", None)  # pydantic's ValidationError: which field, why
            why = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in errors()) if errors else str(exc)
            raise StackError(f"a stack setting is not a (positive) number ({why}): check "
                             f"CALLFLOWS_PREFECT_PORT, CALLFLOWS_STACK_*_TIMEOUT_S, CALLFLOWS_WORKER_LIMIT, "
                             f"CALLFLOWS_POOL_CONCURRENCY and {SLOT_WAIT_ENV}") from None

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

    @property
    def db_file(self) -> Path:
        """The database chosen by the running stack's ``up`` (``sqlite`` or ``postgres``)."""
        return self.run_dir / "db"

    def child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """This process's environment with the stack's Prefect API and local server, and ``extra``."""
        env = dict(os.environ)
        env.update({"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.prefect_home),
                    "CALLFLOWS_HOME": str(self.home), "CALLFLOWS_LOCAL_API_URL": self.local_api_url,
                    "PYTHONUNBUFFERED": "1"})
        env.update(extra or {})
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


def spawn(config: StackConfig, name: str, command: list[str], url: str | None = None,
          env: dict[str, str] | None = None, worker_name: str | None = None) -> ProcessRecord:
    """Start ``command`` in its own session (it survives the caller and its terminal), output appended
    to ``logs/<name>.log``; write its pid files. ``env`` is added to ``config.child_env()`` (never
    written anywhere: it may hold database passwords)."""
    config.run_dir.mkdir(parents=True, exist_ok=True)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.log_dir / f"{name}.log"
    started_at = datetime.now(timezone.utc)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {datetime.now(timezone.utc).isoformat()} {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(command, cwd=ROOT, env=config.child_env(env), stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stat = _stat(process.pid)
    record = ProcessRecord(name=name, pid=process.pid, start_ticks=stat[3] if stat else None, command=command,
                           log=str(log_path), url=url, worker_name=worker_name, started_at=started_at)
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


def worker_records(config: StackConfig) -> list[str]:
    """Names of the worker records in the run folder: ``worker-1``, ``worker-2``, …, ``worker-inbox``
    (and ``worker``, from an older ``up``)."""
    def order(name: str) -> tuple[int, int]:
        number = name.removeprefix("worker-")
        return (0, int(number)) if number.isdigit() else (1, 0)

    return sorted((p.stem for p in config.run_dir.glob("worker*.json")), key=order)


def call_worker_names(count: int) -> list[str]:
    return [f"worker-{i}" for i in range(1, count + 1)]


def recorded_db(config: StackConfig) -> str | None:
    try:
        return config.db_file.read_text().strip() or None
    except FileNotFoundError:
        return None


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
def start_postgres(config: StackConfig, started: list[str]) -> None:
    """PostgreSQL through ``scripts/postgres.py`` (under ``pg_ctl``, not a stack process)."""
    pg = postgres.Postgres.from_env()
    was_running = pg.running()
    try:
        done = postgres.start(pg, timeout_s=config.start_timeout_s)
    except postgres.PostgresError as exc:
        raise StackError(f"PostgreSQL: {exc}") from None
    if not was_running:
        started.append("postgres")
    print(f"PostgreSQL: {done}")


def server_env(config: StackConfig, db: str) -> dict[str, str]:
    """The Prefect server's own settings: the slot wait, and its database for ``--db postgres``."""
    env = {SLOT_WAIT_ENV: config.slot_wait_s}
    if db == "postgres":
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = postgres.prefect_database_url()
    return env


def flow_env(db: str) -> dict[str, str]:
    """What the processes that run flows (workers, serve) get: the project's database for ``--db postgres``."""
    return {DATABASE_URL_ENV: postgres.callflows_database_url()} if db == "postgres" else {}


def database_label(config: StackConfig, db: str) -> str:
    if db == "postgres":
        return (f"PostgreSQL {postgres.HOST}:{postgres.Postgres.from_env().current_port()}/"
                f"{postgres.PREFECT_DATABASE}")
    return f"SQLite in {config.prefect_home}"


def start_prefect_server(config: StackConfig, db: str, started: list[str]) -> None:
    if running(config, "prefect-server"):
        if not prefect_healthy(config):
            raise StackError(f"the Prefect server of a previous `up` is running but {config.api_url}/health does "
                             f"not answer: run `make down`, then `make up`")
        print(f"Prefect server: already running at {config.ui_url}")
        return
    if prefect_healthy(config):
        raise StackError(f"a Prefect server not started by `make up` already answers at {config.ui_url}: stop it, "
                         f"or set CALLFLOWS_PREFECT_PORT to a free port")
    env = server_env(config, db)
    record = spawn(config, "prefect-server", [str(BIN / "prefect"), "server", "start", "--host", config.prefect_host,
                                              "--port", str(config.prefect_port)], url=config.ui_url, env=env)
    started.append("prefect-server")
    took = wait_for(record, lambda: prefect_healthy(config), "healthy", config.start_timeout_s)
    print(f"Prefect server: started at {config.ui_url} (pid {record.pid}, healthy after {took:.0f} s; "
          f"database: {database_label(config, db)}; concurrency slot wait {env[SLOT_WAIT_ENV]} s)")


def ensure_global_limits() -> None:
    """The vendor limits of ``tasks/limits.py`` as global concurrency limits (existing ones kept)."""
    from prefect.client.orchestration import get_client

    from tasks.limits import DEFAULT_LIMITS, ensure_limits

    with get_client(sync_client=True) as client:
        done = ensure_limits(client)
    described = []
    for name, what in done.items():
        limit, decay = DEFAULT_LIMITS.get(name, (None, 0.0))
        kind = f"{limit}, decaying {decay:g} slot/s" if decay else f"{limit}"
        described.append(f"{name} {what}" + (f" ({kind})" if what == "created" else ""))
    print(f"Global concurrency limits: {'; '.join(described)}")


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


def pool_concurrency(config: StackConfig, call_workers: int) -> int:
    """``$CALLFLOWS_POOL_CONCURRENCY``, else one slot per call worker run plus one for the inbox run."""
    return config.pool_concurrency or call_workers * config.worker_limit + 1


def ensure_work_pool(config: StackConfig, concurrency: int) -> None:
    """The process work pool with its concurrency limit (set again each time), and its two queues."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(WORK_POOL)
            if pool.concurrency_limit != concurrency:
                client.update_work_pool(WORK_POOL, WorkPoolUpdate(concurrency_limit=concurrency))
                done = f"exists, concurrency limit {pool.concurrency_limit} -> {concurrency}"
            else:
                done = f"exists (concurrency limit {concurrency})"
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process", concurrency_limit=concurrency,
                                                   base_job_template=ProcessWorker.get_default_base_job_template()))
            done = f"created (type process, concurrency limit {concurrency})"
        queues = []
        for queue in (CALL_QUEUE, INBOX_QUEUE):
            try:
                client.read_work_queue_by_name(queue, work_pool_name=WORK_POOL)
            except ObjectNotFound:
                client.create_work_queue(name=queue, work_pool_name=WORK_POOL)
                queue += " (created)"
            queues.append(queue)
    print(f"Work pool {WORK_POOL!r}: {done}; work queues {', '.join(queues)}")


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


def start_workers(config: StackConfig, count: int, db: str, started: list[str]) -> None:
    """``count`` call workers on the ``default`` queue (``--limit``) and the inbox worker on ``inbox``,
    then wait until each new one is online."""
    from prefect.client.orchestration import get_client

    wanted = [(name, CALL_QUEUE, config.worker_limit) for name in call_worker_names(count)]
    wanted.append((INBOX_WORKER, INBOX_QUEUE, None))
    new: list[ProcessRecord] = []
    for name, queue, limit in wanted:
        if record := running(config, name):
            print(f"Worker {record.worker_name or name}: already running (pid {record.pid})")
            continue
        worker_name = f"callflows-{name}"
        command = [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--work-queue", queue,
                   "--name", worker_name] + (["--limit", str(limit)] if limit else [])
        new.append(spawn(config, name, command, env=flow_env(db), worker_name=worker_name))
        started.append(name)
    call_workers = [n for n in worker_records(config) if n != INBOX_WORKER and running(config, n)]
    extra = sorted(set(call_workers) - set(call_worker_names(count)))
    if extra:
        print(f"Workers beyond WORKERS={count} left running: {', '.join(extra)} (`make down` stops them)")

    def online(record: ProcessRecord, workers) -> bool:
        # a worker of the same name from an earlier `up` may still look ONLINE: only a heartbeat from
        # after this start counts
        return any(w.name == record.worker_name and w.status == "ONLINE" and w.last_heartbeat_time is not None
                   and w.last_heartbeat_time >= record.started_at for w in workers)

    t0 = time.monotonic()
    pending = list(new)
    while pending:
        for record in pending:
            if not record_alive(record):
                raise StackError(f"{record.name} exited before online; its log {record.log} ends with:\n"
                                 f"{log_tail(record)}")
        with get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(WORK_POOL)
        for record in [r for r in pending if online(r, workers)]:
            pending.remove(record)
            queue = INBOX_QUEUE if record.name == INBOX_WORKER else CALL_QUEUE
            limit = "no limit" if record.name == INBOX_WORKER else f"limit {config.worker_limit}"
            print(f"Worker {record.worker_name}: online on {WORK_POOL}/{queue} ({limit}; pid {record.pid}, "
                  f"after {time.monotonic() - t0:.0f} s)")
        if pending and time.monotonic() - t0 > config.start_timeout_s:
            names = ", ".join(r.name for r in pending)
            raise StackError(f"{names} did not get online within {config.start_timeout_s:.0f} s (raise "
                             f"CALLFLOWS_STACK_START_TIMEOUT_S on a busy machine); see {config.log_dir}")
        if pending:
            time.sleep(0.5)


def start_serve(config: StackConfig, db: str, started: list[str]) -> None:
    if running(config, "serve"):
        print(f"Serve: already running (pid {read_record(config, 'serve').pid})")
        return
    record = spawn(config, "serve", [sys.executable, "-m", "deployments.serve"], env=flow_env(db))
    started.append("serve")
    offset = Path(record.log).stat().st_size  # earlier runs' lines are in the same log

    def serving() -> bool:
        with open(record.log, "rb") as log:
            log.seek(offset)
            return b"Serving " in log.read()

    took = wait_for(record, serving, "its deployments registered", config.start_timeout_s)
    print(f"Serve: deployments served by pid {record.pid} (ready after {took:.0f} s)")


def stop_postgres(config: StackConfig) -> str:
    try:
        return postgres.stop(postgres.Postgres.from_env(), timeout_s=config.stop_timeout_s * 3)
    except postgres.PostgresError as exc:
        raise StackError(f"PostgreSQL: {exc}") from None


def stop_started(config: StackConfig, started: list[str]) -> None:
    """Undo a failed ``up``: stop what it started, newest first (workers together)."""
    workers = [n for n in started if n.startswith("worker")]
    with ThreadPoolExecutor(max_workers=max(1, len(workers))) as pool:
        list(pool.map(lambda n: stop(config, n), workers))
    for name in reversed([n for n in started if not n.startswith("worker")]):
        if name == "postgres":
            stop_postgres(config)
        else:
            stop(config, name)
    if not running(config, "prefect-server"):
        config.db_file.unlink(missing_ok=True)


def up(config: StackConfig, serve: bool, db: str = "sqlite", workers: int = 1) -> int:
    if workers < 1:
        raise StackError(f"--workers {workers}: at least 1 (WORKERS=1, 2, …)")
    if serve and any(running(config, n) for n in worker_records(config)):
        raise StackError("the stack is already up with workers: run `make down` first (both register the same "
                         "deployments)")
    if not serve and running(config, "serve"):
        raise StackError("the stack is already up with serve: run `make down` first (both register the same "
                         "deployments)")
    before = recorded_db(config) or "sqlite"
    if before != db and (running(config, "prefect-server")
                         or (before == "postgres" and postgres.Postgres.from_env().running())):
        raise StackError(f"the stack is up with DB={before}: run `make down` first, then `make up DB={db}`")
    os.environ["PREFECT_API_URL"] = config.api_url  # for the Prefect client in this process
    started: list[str] = []
    t0 = time.monotonic()
    try:
        config.run_dir.mkdir(parents=True, exist_ok=True)
        config.db_file.write_text(f"{db}\n")
        if db == "postgres":
            start_postgres(config, started)
        start_prefect_server(config, db, started)
        ensure_global_limits()
        start_local_api(config, started)
        if serve:
            start_serve(config, db, started)
        else:
            call_workers = len(set(call_worker_names(workers)) | {
                n for n in worker_records(config) if n != INBOX_WORKER and running(config, n)})
            ensure_work_pool(config, pool_concurrency(config, call_workers))
            deploy(config)
            start_workers(config, workers, db, started)
    except BaseException:
        stop_started(config, started)
        raise
    print(f"\nUp in {time.monotonic() - t0:.0f} s. Prefect UI: {config.ui_url}  (API {config.api_url}; logs and "
          f"pid files in {config.home}/logs and {config.home}/run)")
    print(f"CLI: export PREFECT_API_URL={config.api_url}   Stop everything: make down")
    if db == "postgres":
        print(f"Database: PostgreSQL; {DATABASE_URL_ENV} is set for the flow runs "
              f"(`python scripts/postgres.py url` shows the URLs)")
    print(f"analyze-inbox runs nightly at 02:00 UTC on {ROOT / 'inbox'} (create it and put recordings there).")
    return 0


# ----------------------------------------------------------------------------------- down, status
def down(config: StackConfig) -> int:
    print(f"serve: {stop(config, 'serve')}")
    workers = worker_records(config)
    if workers:  # all at once: each may wait for its flow runs to stop
        with ThreadPoolExecutor(max_workers=len(workers)) as pool:
            for name, done in zip(workers, pool.map(lambda n: stop(config, n), workers)):
                print(f"{name}: {done}")
    else:
        print("worker: not running")
    for name in ("local-api", "prefect-server"):
        done = stop(config, name)
        if name == "local-api" and done == "not running" and local_api_healthy(config):
            done = f"not started by `make up`: left running at {config.local_api_url}"
        print(f"{name}: {done}")
    if recorded_db(config) == "postgres":
        print(f"postgres: {stop_postgres(config)}")
    config.db_file.unlink(missing_ok=True)
    return 0


def status(config: StackConfig) -> int:
    health = {"prefect-server": prefect_healthy(config), "local-api": local_api_healthy(config)}
    db = recorded_db(config)
    any_running = False
    if db == "postgres" or postgres.Postgres.from_env().data_dir.exists():
        pg_up, line = postgres.status()
        any_running |= pg_up and db == "postgres"
        print(f"{'postgres':15} {line}" + (" (not used by the stack)" if pg_up and db != "postgres" else ""))
    names = ["prefect-server", "local-api", *(worker_records(config) or ["worker"]), "serve"]
    for name in names:
        record = running(config, name)
        any_running |= record is not None
        if record is not None:
            worker = f"worker {record.worker_name}, " if record.worker_name else ""
            state = f"running (pid {record.pid}, {worker}log {record.log})"
        elif name == "local-api" and health[name]:
            state = f"running at {config.local_api_url} (not started by `make up`)"
        else:
            state = "stopped"
        if name in health and record is not None:
            state += ", healthy" if health[name] else ", NOT answering"
        if name == "prefect-server" and record is not None:
            state += f"; database: {database_label(config, db or 'sqlite')}"
        print(f"{name:15} {state}")
    if health["prefect-server"]:
        print(f"Prefect UI: {config.ui_url}")
    return 0 if any_running else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start the stack (reusing what already runs)")
    up_parser.add_argument("--serve", action="store_true",
                           help="serve the deployments from one process instead of a work pool and workers")
    up_parser.add_argument("--db", choices=DATABASES, default="sqlite",
                           help="the Prefect server's database (and the flows' own, with postgres); "
                                "default: sqlite")
    up_parser.add_argument("--workers", type=int, default=1,
                           help="call workers on the pool's default queue (default 1; plus one inbox worker)")
    sub.add_parser("down", help="stop the stack: serve/workers, local API, Prefect server, PostgreSQL")
    sub.add_parser("status", help="what is running; exit code 3 when nothing is")
    args = parser.parse_args(argv)
    try:
        config = StackConfig.from_env()
        if args.command == "up":
            return up(config, args.serve, db=args.db, workers=args.workers)
        if args.command == "down":
            return down(config)
        return status(config)
    except StackError as exc:
        print(f"stack {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
