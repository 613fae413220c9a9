"""The PostgreSQL path (``make up DB=postgres``) with real servers: ``scripts/postgres.py`` starts
Debian's PostgreSQL in a temporary CALLFLOWS_HOME on a free port (conftest's ``postgres_server``);
SQLAlchemy + psycopg 3 work with ``callflows_database_url()``; a real ``prefect server start`` on
``prefect_database_url()`` runs its migrations and a flow run against it lands in PostgreSQL. The
password never appears in anything printed.

One PostgreSQL (~5 s) and one Prefect server (20-60 s to healthy on a busy 2-core machine) for the file.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from conftest import ROOT, PostgresServer, free_port, postgres_script

PREFECT = str(Path(sys.executable).parent / "prefect")
SERVER_TIMEOUT_S = 300

pytestmark = pytest.mark.timeout(600)


def clean_env(**extra: str) -> dict[str, str]:
    """Subprocess environment: no stray Prefect API or database, quiet offline."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE_")) and k != "CALLFLOWS_DATABASE_URL"}
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def prefect_on_postgres(postgres_server: PostgresServer):
    """``prefect server start`` on a free port with its database in PostgreSQL (``prefect``).
    Yields ``{"url": API URL, "home": its PREFECT_HOME, "log": its log file, "healthy_s": seconds}``."""
    home = Path(tempfile.mkdtemp(prefix="callflows-prefect-pg-"))
    port, log = free_port(), home / "server.log"
    env = clean_env(PREFECT_HOME=str(home), PREFECT_API_DATABASE_CONNECTION_URL=postgres_server.prefect_url)
    with open(log, "ab") as out:
        process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        started = time.monotonic()
        while True:
            assert process.poll() is None, f"prefect server exited ({process.returncode}):\n{log.read_text()[-3000:]}"
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - started > SERVER_TIMEOUT_S:
                pytest.fail(f"Prefect server on PostgreSQL not healthy in {SERVER_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        healthy_s = time.monotonic() - started
        print(f"\nPrefect server on PostgreSQL healthy after {healthy_s:.1f} s (migrations included)")
        yield {"url": url, "home": home, "log": log, "healthy_s": healthy_s}
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def test_postgres_script_serves_sql_through_sqlalchemy_and_psycopg(postgres_server: PostgresServer):
    """The server listens on 127.0.0.1 only; the role ``callflows`` owns ``callflows`` and ``prefect``;
    the password file is 0600; SQL works through SQLAlchemy + psycopg with ``callflows_database_url()``;
    ``start`` again says it is already running; ``stop`` then ``start`` keeps the data and the password;
    ``url`` masks the password, and no output of the script contains it."""
    outputs = []
    assert postgres_server.callflows_url.startswith(
        f"postgresql+psycopg://callflows:{postgres_server.password}@127.0.0.1:{postgres_server.port}/callflows")
    assert postgres_server.prefect_url.startswith("postgresql+asyncpg://") and postgres_server.prefect_url.endswith(
        f"@127.0.0.1:{postgres_server.port}/prefect")
    assert (postgres_server.home / "postgres" / "password").stat().st_mode & 0o777 == 0o600

    engine = sa.create_engine(postgres_server.callflows_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT current_user, current_database()")).one() == ("callflows", "callflows")
            assert conn.execute(sa.text("SHOW listen_addresses")).scalar() == "127.0.0.1"
            owners = dict(conn.execute(sa.text(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ('prefect', 'callflows')")).all())
            assert owners == {"prefect": "callflows", "callflows": "callflows"}
            conn.execute(sa.text("DROP TABLE IF EXISTS pg_smoke"))
            conn.execute(sa.text("CREATE TABLE pg_smoke (id serial PRIMARY KEY, note text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO pg_smoke (note) VALUES (:a), (:b)"), [{"a": "one", "b": "two"}])

        for command in ("start", "status", "url"):
            result = postgres_script(command, postgres_server.env, timeout_s=120)
            outputs.append(result.stdout + result.stderr)
            assert result.returncode == 0, outputs[-1]
        assert "already running on 127.0.0.1" in outputs[0]
        assert f"running on 127.0.0.1:{postgres_server.port}" in outputs[1]
        assert f"postgresql+psycopg://callflows:***@127.0.0.1:{postgres_server.port}/callflows" in outputs[2]

        engine.dispose()
        restart_started = time.monotonic()
        for command in ("stop", "status", "start"):
            result = postgres_script(command, postgres_server.env, timeout_s=120)
            outputs.append(result.stdout + result.stderr)
            assert result.returncode == (3 if command == "status" else 0), outputs[-1]
        restart_s = time.monotonic() - restart_started
        assert "stopped (pid" in outputs[3] and "stopped (data in" in outputs[4] and "started on" in outputs[5]
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT note FROM pg_smoke ORDER BY id")).scalars().all() == ["one", "two"]
            conn.execute(sa.text("DROP TABLE pg_smoke"))
    finally:
        engine.dispose()
    assert all(postgres_server.password not in out for out in outputs)
    assert postgres_server.password not in (postgres_server.home / "logs" / "postgres.log").read_text(errors="replace")
    print(f"\nPostgreSQL stop + status + start: {restart_s:.1f} s")


def test_prefect_server_on_postgres_runs_a_flow(prefect_on_postgres, postgres_server: PostgresServer, tmp_path):
    """A trivial flow run in a subprocess (``PREFECT_API_URL`` set) completes against the Prefect
    server on PostgreSQL; its run is in PostgreSQL's ``prefect`` database; neither the server's log nor
    the flow's output contains the password."""
    script = tmp_path / "smoke_flow.py"
    script.write_text("from prefect import flow\n\n\n@flow(name='postgres-smoke')\n"
                      "def smoke(x: int) -> int:\n    return x + 1\n\n\nprint('result', smoke(41))\n")
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=clean_env(PREFECT_API_URL=prefect_on_postgres["url"],
                                          PREFECT_HOME=str(prefect_on_postgres["home"])))
    flow_s = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "result 42" in result.stdout, output

    runs = requests.post(f"{prefect_on_postgres['url']}/flow_runs/filter", timeout=30,
                         json={"flows": {"name": {"any_": ["postgres-smoke"]}}}).json()
    assert [r["state_type"] for r in runs] == ["COMPLETED"], runs
    engine = sa.create_engine(postgres_server.prefect_url.replace("+asyncpg", "+psycopg"))
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT state_type FROM flow_run WHERE id = :id"), {"id": runs[0]["id"]})
            assert stored.scalar() == "COMPLETED"
    finally:
        engine.dispose()
    assert postgres_server.password not in output
    assert postgres_server.password not in prefect_on_postgres["log"].read_text(errors="replace")
    print(f"\ntrivial flow against the PostgreSQL-backed server: {flow_s:.1f} s (process start included)")
