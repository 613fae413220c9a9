"""A real PostgreSQL server for the stack, from Debian's packages, with its data in the project.

    python scripts/postgres.py start    # init (once), start, create the role and databases; idempotent
    python scripts/postgres.py stop     # pg_ctl stop -m fast; idempotent
    python scripts/postgres.py status   # running or not, where; exit code 3 when not running
    python scripts/postgres.py url      # the two URLs, password masked (--show-password to print it)

``make up DB=postgres`` (``scripts/stack.py``) runs ``start`` before the Prefect server and ``stop``
after it. What ``start`` does:

1. finds the server binaries in ``/usr/lib/postgresql/<version>/bin`` (the newest; or
   ``$CALLFLOWS_POSTGRES_BIN``); when there are none and this runs as root it installs them
   (``apt-get update && apt-get install -y postgresql``), otherwise it stops with that command;
2. once: ``initdb`` into ``$CALLFLOWS_HOME/postgres/data`` (SCRAM passwords over TCP, peer over the
   socket), and a password for the role ``callflows`` in ``$CALLFLOWS_HOME/postgres/password``
   (random, mode 0600);
3. ``pg_ctl start``: listening on 127.0.0.1 only, port ``$CALLFLOWS_POSTGRES_PORT`` (5433, clear of
   a system cluster on 5432), unix socket in the data folder, log in
   ``$CALLFLOWS_HOME/logs/postgres.log``;
4. the role ``callflows`` (its password set from the file, as a SCRAM verifier computed here, so the
   password never reaches a command line, the server or its log) and the databases ``prefect``
   (the Prefect server's) and ``callflows`` (the project's own tables), owned by it.

``initdb`` refuses to run as root: as root, every PostgreSQL command runs as the ``postgres`` OS user
(made by the Debian package) with ``runuser -u postgres --``; the data folder is owned by it, and the
folders above it must be traversable by it (``start`` says which one is not). As another user, the
commands run as that user.

From Python (the port is the running server's, else ``$CALLFLOWS_POSTGRES_PORT``)::

    from scripts.postgres import prefect_database_url, callflows_database_url
    prefect_database_url()    # postgresql+asyncpg://callflows:<pw>@127.0.0.1:5433/prefect
    callflows_database_url()  # postgresql+psycopg://callflows:<pw>@127.0.0.1:5433/callflows

Nothing here prints, logs or raises with the password in it; ``url`` masks it unless asked.
"""
from __future__ import annotations

import argparse
import base64
import grp
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]

PORT_ENV = "CALLFLOWS_POSTGRES_PORT"
BIN_ENV = "CALLFLOWS_POSTGRES_BIN"
DEFAULT_PORT = 5433
HOST = "127.0.0.1"
ROLE = "callflows"
PREFECT_DATABASE = "prefect"
CALLFLOWS_DATABASE = "callflows"
OS_USER = "postgres"  # the Debian package's user; the server runs as it when we are root
INSTALL_COMMAND = "apt-get update && apt-get install -y postgresql"
START_TIMEOUT_S = 120
SCRAM_ITERATIONS = 4096
SETTINGS_FILE = "callflows.conf"  # included by postgresql.conf; rewritten on each start


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, set up, started or stopped; the message says what to do
    (and never contains the password)."""


@dataclass(frozen=True)
class Postgres:
    """Where this project's PostgreSQL lives: ``$CALLFLOWS_HOME/postgres``."""

    home: Path
    port: int

    @classmethod
    def from_env(cls) -> "Postgres":
        home = Path(os.environ.get("CALLFLOWS_HOME") or ROOT / ".callflows").resolve()
        raw = os.environ.get(PORT_ENV, str(DEFAULT_PORT))
        try:
            port = int(raw)
        except ValueError:
            raise PostgresError(f"{PORT_ENV}={raw!r} is not a port number") from None
        return cls(home=home, port=port)

    @property
    def folder(self) -> Path:
        return self.home / "postgres"

    @property
    def data_dir(self) -> Path:
        """PGDATA (owned by the server's OS user, mode 0700); the unix socket is here too."""
        return self.folder / "data"

    @property
    def password_file(self) -> Path:
        return self.folder / "password"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "postgres.log"

    # ------------------------------------------------------------------------- the running server
    def postmaster(self) -> dict | None:
        """The running server's pid, port and socket folder (from ``postmaster.pid``), or None when
        it is not running."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        if b"postgres" not in cmdline:  # a stale pid file, the pid reused by something else
            return None
        return {"pid": pid, "port": port, "socket_dir": lines[4] if len(lines) > 4 else str(self.data_dir)}

    def running(self) -> bool:
        return self.postmaster() is not None

    def current_port(self) -> int:
        """The running server's port, else the configured one."""
        info = self.postmaster()
        return info["port"] if info else self.port

    def password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            raise PostgresError(f"no password in {self.password_file}: run `python scripts/postgres.py start` "
                                f"(or `make up DB=postgres`) first") from None

    def url(self, driver: str, database: str, *, show_password: bool = True) -> str:
        secret = quote(self.password(), safe="") if show_password else "***"
        return f"postgresql+{driver}://{ROLE}:{secret}@{HOST}:{self.current_port()}/{database}"


def prefect_database_url() -> str:
    """``postgresql+asyncpg://callflows:<pw>@127.0.0.1:<port>/prefect``, for
    ``PREFECT_API_DATABASE_CONNECTION_URL`` (the Prefect server's database). Secret: do not log it."""
    return Postgres.from_env().url("asyncpg", PREFECT_DATABASE)


def callflows_database_url() -> str:
    """``postgresql+psycopg://callflows:<pw>@127.0.0.1:<port>/callflows``, for
    ``CALLFLOWS_DATABASE_URL`` (the project's own tables, SQLAlchemy + psycopg 3). Secret: do not log it."""
    return Postgres.from_env().url("psycopg", CALLFLOWS_DATABASE)


# ----------------------------------------------------------------------------------- binaries
def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb, pg_ctl and postgres (or
    ``$CALLFLOWS_POSTGRES_BIN``)."""
    wanted = ("initdb", "pg_ctl", "postgres", "psql")
    if os.environ.get(BIN_ENV):
        candidates = [Path(os.environ[BIN_ENV])]
    else:
        def version(path: Path) -> tuple[int, ...]:
            try:
                return tuple(int(p) for p in path.parent.name.split("."))
            except ValueError:
                return (0,)

        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for candidate in candidates:
        if all((candidate / name).is_file() for name in wanted):
            return candidate
    return None


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_installed(timeout_s: float = 900) -> Path:
    """The binaries' folder; installs Debian's ``postgresql`` package first when missing and we are root."""
    found = find_bin_dir()
    if found:
        return found
    where = os.environ.get(BIN_ENV) or "/usr/lib/postgresql/*/bin"
    if os.environ.get(BIN_ENV):
        raise PostgresError(f"{BIN_ENV}={where} has no initdb, pg_ctl, postgres and psql")
    if not is_root() or not shutil.which("apt-get"):
        raise PostgresError(f"the PostgreSQL server is not installed (nothing in {where}); install it with "
                            f"`sudo sh -c '{INSTALL_COMMAND}'` (Debian/Ubuntu), then run this again")
    print(f"PostgreSQL: not installed; running `{INSTALL_COMMAND}` (a few minutes)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        result = subprocess.run(["sh", "-c", INSTALL_COMMAND], env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise PostgresError(f"`{INSTALL_COMMAND}` did not finish within {timeout_s:.0f} s") from None
    found = find_bin_dir()
    if result.returncode != 0 or not found:
        raise PostgresError(f"`{INSTALL_COMMAND}` failed (exit {result.returncode}); it ended with:\n"
                            f"{(result.stdout + result.stderr)[-2000:]}")
    return found


# ------------------------------------------------------------------------------ OS user, files
def server_user() -> str:
    """The OS user that owns the data and runs the server: ``postgres`` as root, else ourselves."""
    return OS_USER if is_root() else pwd.getpwuid(os.geteuid()).pw_name


def as_server_user(command: list[str]) -> list[str]:
    if not is_root():
        return command
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresError(f"there is no {OS_USER!r} OS user (Debian's postgresql package creates it): "
                            f"`{INSTALL_COMMAND}`") from None
    return ["runuser", "-u", OS_USER, "--", *command]


def give_to_server_user(path: Path) -> None:
    if is_root():
        user = pwd.getpwnam(OS_USER)
        os.chown(path, user.pw_uid, user.pw_gid)


def check_traversable(path: Path) -> None:
    """As root: every folder above ``path`` must be searchable (x) by the ``postgres`` user."""
    if not is_root():
        return
    user = pwd.getpwnam(OS_USER)
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if OS_USER in g.gr_mem}
    for folder in reversed(path.parents):
        st = folder.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            raise PostgresError(f"the {OS_USER!r} user that runs PostgreSQL cannot enter {folder} (mode "
                                f"{st.st_mode & 0o777:o}): `chmod o+x {folder}`, or set CALLFLOWS_HOME elsewhere")


def run(command: list[str], what: str, timeout_s: float = START_TIMEOUT_S, stdin: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL command as the server's user, from a folder it can enter; its output in the
    error when it fails (our commands never carry the password)."""
    try:
        result = subprocess.run(as_server_user(command), input=stdin, capture_output=True, text=True,
                                timeout=timeout_s, cwd="/", stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise PostgresError(f"{what} did not finish within {timeout_s:.0f} s") from None
    if check and result.returncode != 0:
        raise PostgresError(f"{what} failed (exit {result.returncode}):\n{(result.stdout + result.stderr)[-2000:]}")
    return result


def scram_verifier(password: str) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677), computed here so
    that only the verifier is sent to the server."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return (f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}"
            f"${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}")


def ensure_password(pg: Postgres) -> str:
    """The role's password, generated once into ``password`` (mode 0600)."""
    if pg.password_file.exists():
        return pg.password()
    password = secrets.token_urlsafe(24)  # URL-safe: no quoting needed in connection URLs
    try:
        fd = os.open(pg.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another start got there first
        return pg.password()
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


# ----------------------------------------------------------------------------------- commands
def init(pg: Postgres, bin_dir: Path) -> bool:
    """``initdb`` once; True if it ran now."""
    pg.folder.mkdir(parents=True, exist_ok=True)
    pg.folder.chmod(0o711)  # the server's user passes through; it cannot list or read the password
    check_traversable(pg.data_dir)
    if (pg.data_dir / "PG_VERSION").exists():
        return False
    if pg.data_dir.exists() and any(pg.data_dir.iterdir()):
        raise PostgresError(f"{pg.data_dir} is not empty but holds no PostgreSQL cluster: move it away")
    pg.data_dir.mkdir(mode=0o700, exist_ok=True)
    give_to_server_user(pg.data_dir)
    run([str(bin_dir / "initdb"), "-D", str(pg.data_dir), "-U", server_user(), "-E", "UTF8",
         "--no-locale", "--auth-local=peer", "--auth-host=scram-sha-256"], "initdb")
    conf = pg.data_dir / "postgresql.conf"
    with open(conf, "a") as f:
        f.write(f"\n# callflows (scripts/postgres.py): listen address, port and socket\n"
                f"include_if_exists = '{SETTINGS_FILE}'\n")
    return True


def write_settings(pg: Postgres) -> None:
    socket_path = pg.data_dir / f".s.PGSQL.{pg.port}"
    if len(str(socket_path).encode()) > 107:
        raise PostgresError(f"the unix socket path {socket_path} is too long (107 bytes at most): set "
                            f"CALLFLOWS_HOME to a shorter path")
    quoted = str(pg.data_dir).replace("'", "''")
    settings = pg.data_dir / SETTINGS_FILE
    settings.write_text(f"listen_addresses = '{HOST}'\nport = {pg.port}\nunix_socket_directories = '{quoted}'\n"
                        f"max_connections = 200\npassword_encryption = 'scram-sha-256'\n")
    give_to_server_user(settings)


def psql(pg: Postgres, bin_dir: Path, sql: str, database: str = "postgres") -> None:
    """SQL as the superuser, over the unix socket (peer authentication), SQL on stdin."""
    run([str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(pg.data_dir),
         "-p", str(pg.current_port()), "-U", server_user(), "-d", database], f"psql on {database}", stdin=sql)


def ensure_role_and_databases(pg: Postgres, bin_dir: Path) -> None:
    verifier = scram_verifier(ensure_password(pg))
    psql(pg, bin_dir, f"""
SELECT 'CREATE ROLE {ROLE} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')\\gexec
ALTER ROLE {ROLE} WITH LOGIN PASSWORD '{verifier}';
SELECT 'CREATE DATABASE {PREFECT_DATABASE} OWNER {ROLE}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{PREFECT_DATABASE}')\\gexec
SELECT 'CREATE DATABASE {CALLFLOWS_DATABASE} OWNER {ROLE}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{CALLFLOWS_DATABASE}')\\gexec
""")
    # Prefect's migrations create pg_trgm (a trusted extension, but make sure of it as the superuser)
    psql(pg, bin_dir, "CREATE EXTENSION IF NOT EXISTS pg_trgm;", database=PREFECT_DATABASE)


def start(pg: Postgres | None = None, timeout_s: float = START_TIMEOUT_S) -> str:
    """Start (initialising once); idempotent. Returns a line saying what was done."""
    pg = pg or Postgres.from_env()
    bin_dir = ensure_installed()
    info = pg.postmaster()
    if info:
        ensure_role_and_databases(pg, bin_dir)
        return (f"already running on {HOST}:{info['port']} (pid {info['pid']}, data in {pg.data_dir})"
                + (f"; {PORT_ENV}={pg.port} applies after a restart" if info["port"] != pg.port else ""))
    started = time.monotonic()
    fresh = init(pg, bin_dir)
    write_settings(pg)
    if not port_free(pg.port):
        raise PostgresError(f"port {pg.port} on {HOST} is in use (another PostgreSQL?): set {PORT_ENV} to a free port")
    pg.log_file.parent.mkdir(parents=True, exist_ok=True)
    check_traversable(pg.log_file)
    pg.log_file.touch()
    give_to_server_user(pg.log_file)
    result = run([str(bin_dir / "pg_ctl"), "start", "-D", str(pg.data_dir), "-l", str(pg.log_file), "-w",
                  "-t", str(int(timeout_s)), "-s"], "pg_ctl start", timeout_s=timeout_s + 10, check=False)
    if result.returncode != 0:
        try:
            tail = pg.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            tail = ""
        raise PostgresError(f"pg_ctl start failed (exit {result.returncode}): {(result.stdout + result.stderr)[-1000:]}"
                            f"\n{pg.log_file} ends with:\n{tail}")
    ensure_role_and_databases(pg, bin_dir)
    info = pg.postmaster() or {"pid": "?"}
    return (f"started on {HOST}:{pg.port} (pid {info['pid']}, {'initialised, ' if fresh else ''}ready after "
            f"{time.monotonic() - started:.0f} s; data in {pg.data_dir}, log {pg.log_file}; databases "
            f"{PREFECT_DATABASE!r} and {CALLFLOWS_DATABASE!r}, role {ROLE!r})")


def stop(pg: Postgres | None = None, timeout_s: float = 60) -> str:
    """``pg_ctl stop -m fast``; idempotent. Returns a line saying what was done."""
    pg = pg or Postgres.from_env()
    info = pg.postmaster()
    if not info:
        return "not running"
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresError(f"PostgreSQL (pid {info['pid']}) is running but its pg_ctl is gone")
    run([str(bin_dir / "pg_ctl"), "stop", "-D", str(pg.data_dir), "-m", "fast", "-w", "-t", str(int(timeout_s)), "-s"],
        "pg_ctl stop", timeout_s=timeout_s + 10)
    return f"stopped (pid {info['pid']})"


def status(pg: Postgres | None = None) -> tuple[bool, str]:
    pg = pg or Postgres.from_env()
    info = pg.postmaster()
    if info:
        return True, f"running on {HOST}:{info['port']} (pid {info['pid']}, data in {pg.data_dir}, log {pg.log_file})"
    if (pg.data_dir / "PG_VERSION").exists():
        return False, f"stopped (data in {pg.data_dir})"
    return False, f"stopped (not initialised: no {pg.data_dir})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="postgres.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("start", help="initialise once, start, create the role and databases (idempotent)")
    sub.add_parser("stop", help="stop (pg_ctl stop -m fast; idempotent)")
    sub.add_parser("status", help="running or not; exit code 3 when not running")
    url_parser = sub.add_parser("url", help="the Prefect and callflows database URLs (password masked)")
    url_parser.add_argument("--show-password", action="store_true", help="print the real password (a secret)")
    args = parser.parse_args(argv)
    try:
        pg = Postgres.from_env()
        if args.command == "start":
            print(f"PostgreSQL: {start(pg)}")
        elif args.command == "stop":
            print(f"PostgreSQL: {stop(pg)}")
        elif args.command == "status":
            up, line = status(pg)
            print(f"PostgreSQL: {line}")
            return 0 if up else 3
        else:
            for name, driver, database in (("PREFECT_API_DATABASE_CONNECTION_URL", "asyncpg", PREFECT_DATABASE),
                                           ("CALLFLOWS_DATABASE_URL", "psycopg", CALLFLOWS_DATABASE)):
                print(f"{name}={pg.url(driver, database, show_password=args.show_password)}")
            if not args.show_password:
                print(f"(password in {pg.password_file}; --show-password prints it)", file=sys.stderr)
        return 0
    except PostgresError as exc:
        print(f"postgres.py {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
