"""The inbox ledger: which recordings are analysed, and who is analysing which, in a database table.

One row per recording content (``AudioSource.cache_key``: ``sha256:<hex>`` or ``url:<url>``) in the
table ``inbox_recordings``, with an atomic claim, so that overlapping analyze-inbox runs, on one
machine or many, never analyse the same recording twice, and a run killed mid-way leaves a claim
the next run can take over:

- ``claim``: ``INSERT … ON CONFLICT DO NOTHING``; when the row exists and failed, a compare-and-set
  ``UPDATE`` (``WHERE holder = <the holder read> AND attempts = <the attempts read>``) takes it over.
  Exactly one of any number of concurrent claimants wins; the others read who holds it.
- ``take_over``: the same compare-and-set, for a claim whose lease ran out (its holder died): the
  caller first checks, in Prefect, what became of the flow run the holder had started.
- The holder renews its lease (``renew``) while it waits for the analysis; ``finish`` records the
  outcome (``analysed`` or ``failed``), again only if it still holds the claim.

The database is ``$CALLFLOWS_DATABASE_URL`` (SQLAlchemy URL, e.g. PostgreSQL
``postgresql+psycopg://user:password@host:port/callflows``, which ``make up DB=postgres`` sets), or a
SQLite file ``<results_dir>/inbox-ledger.sqlite``. A ledger of the earlier JSON format
(``inbox-ledger.json`` in the same folder) is imported once into an empty table.

No Prefect imports: the flow decides, from Prefect's flow run states, whether a held claim is stale.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from pydantic import BaseModel, Field, ValidationError

from callflows.errors import InputError

DATABASE_URL_ENV = "CALLFLOWS_DATABASE_URL"
SQLITE_FILE = "inbox-ledger.sqlite"
LEGACY_JSON_FILE = "inbox-ledger.json"

_metadata = sa.MetaData()
recordings = sa.Table(
    "inbox_recordings", _metadata,
    sa.Column("cache_key", sa.String(600), primary_key=True),
    sa.Column("audio", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # claimed | analysed | failed
    sa.Column("holder", sa.String(64), nullable=False),  # the claiming analyze-inbox flow run id
    sa.Column("flow_run_id", sa.String(64)),  # the analyze-call flow run doing the work, once known
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_expires_at", sa.Float, nullable=False),  # epoch s
    sa.Column("updated_at", sa.Float, nullable=False),  # epoch s
    sa.Column("transcript_id", sa.String(128)),
    sa.Column("result_dir", sa.Text),
    sa.Column("error", sa.Text),
)


class Recording(BaseModel):
    """A row of ``inbox_recordings``."""

    cache_key: str
    audio: str = Field(..., description="the path or URL it was last claimed under (a file may be renamed since)")
    status: Literal["claimed", "analysed", "failed"]
    holder: str = Field(..., description="flow run id of the analyze-inbox run that claimed it")
    flow_run_id: str | None = Field(None, description="flow run id of the analyze-call run, once started")
    attempts: int = Field(..., description="claims so far (1 for the first)")
    lease_expires_at: float = Field(..., description="epoch s; a claim past it may be taken over")
    updated_at: float = Field(..., description="epoch s")
    transcript_id: str | None = None
    result_dir: str | None = None
    error: str | None = None

    @property
    def updated(self) -> datetime:
        return datetime.fromtimestamp(self.updated_at, timezone.utc)

    def lease_expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.lease_expires_at


class Claim(BaseModel):
    """What ``claim`` found: ``claimed`` (the caller holds it now; ``previous`` is the row it took over,
    if any), ``analysed`` (done before), or ``held`` (another holder's live claim)."""

    outcome: Literal["claimed", "analysed", "held"]
    recording: Recording
    previous: Recording | None = None


class Ledger:
    """The ``inbox_recordings`` table in the database at ``url`` (created if missing)."""

    def __init__(self, url: str) -> None:
        self.url = sa.engine.make_url(url)
        connect_args = {"timeout": 60} if self.url.get_backend_name() == "sqlite" else {}
        self.engine = sa.create_engine(self.url, connect_args=connect_args, pool_pre_ping=True)
        if self.url.get_backend_name() == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        _metadata.create_all(self.engine)

    @classmethod
    def open(cls, results_dir: str | Path) -> "Ledger":
        """The ledger of ``$CALLFLOWS_DATABASE_URL``, or the SQLite file in ``results_dir``. Raises
        ``InputError`` when the database cannot be opened (the message names the database without
        its password)."""
        url = os.environ.get(DATABASE_URL_ENV)
        folder = Path(results_dir)
        if not url:
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{(folder / SQLITE_FILE).absolute()}"
        try:
            ledger = cls(url)
        except (sa.exc.SQLAlchemyError, ValueError, ImportError) as exc:
            where = sa.engine.make_url(url).render_as_string(hide_password=True) if "://" in url else "(unparsable)"
            raise InputError(f"the inbox ledger database {where} cannot be opened ({type(exc).__name__}): check "
                             f"${DATABASE_URL_ENV} (or the SQLite file in {str(folder)!r}) and that the database "
                             f"is running") from None
        ledger.import_json(folder / LEGACY_JSON_FILE)
        return ledger

    def describe(self) -> str:
        """The database, without its password."""
        return self.url.render_as_string(hide_password=True)

    def get(self, cache_key: str) -> Recording | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(recordings).where(recordings.c.cache_key == cache_key)).mappings().first()
        return Recording(**row) if row else None

    def all(self) -> list[Recording]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(recordings).order_by(recordings.c.updated_at)).mappings().all()
        return [Recording(**row) for row in rows]

    def claim(self, cache_key: str, audio: str, holder: str, lease_s: float) -> Claim:
        """Claim the recording ``cache_key`` for ``holder`` for ``lease_s`` seconds: atomic across
        processes and machines. A failed recording is taken over; a claim held by another holder is
        returned as ``held``, also when its lease ran out (``Recording.lease_expired``: see ``take_over``)."""
        now = time.time()
        values = dict(cache_key=cache_key, audio=audio, status="claimed", holder=holder, flow_run_id=None,
                      attempts=1, lease_expires_at=now + lease_s, updated_at=now)
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql"
                  else sqlite.insert)(recordings).values(**values).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            inserted = conn.execute(insert).rowcount == 1
        if inserted:
            return Claim(outcome="claimed", recording=Recording(**values))
        current = self.get(cache_key)
        if current.status == "analysed":
            return Claim(outcome="analysed", recording=current)
        if current.holder == holder and current.status == "claimed":
            return Claim(outcome="claimed", recording=current)
        if current.status == "failed":
            return self.take_over(current, audio, holder, lease_s)
        return Claim(outcome="held", recording=current)  # the caller decides whether an expired lease is stale

    def take_over(self, seen: Recording, audio: str, holder: str, lease_s: float) -> Claim:
        """Take over the claim ``seen`` (as read) for ``holder``: succeeds only if nobody changed it
        since it was read; otherwise returns what is there now (``held`` or ``analysed``)."""
        now = time.time()
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.update(recordings)
                .where(recordings.c.cache_key == seen.cache_key, recordings.c.holder == seen.holder,
                       recordings.c.attempts == seen.attempts, recordings.c.status == seen.status)
                .values(audio=audio, status="claimed", holder=holder, flow_run_id=None, attempts=seen.attempts + 1,
                        lease_expires_at=now + lease_s, updated_at=now, error=None)).rowcount == 1
        current = self.get(seen.cache_key)
        if changed:
            return Claim(outcome="claimed", recording=current, previous=seen)
        return Claim(outcome="analysed" if current.status == "analysed" else "held", recording=current)

    def _update_held(self, cache_key: str, holder: str, **values) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(recordings)
                .where(recordings.c.cache_key == cache_key, recordings.c.holder == holder,
                       recordings.c.status == "claimed")
                .values(updated_at=time.time(), **values)).rowcount == 1

    def started(self, cache_key: str, holder: str, flow_run_id: str, lease_s: float) -> bool:
        """Record the flow run analysing a claimed recording; False if ``holder`` lost the claim."""
        return self._update_held(cache_key, holder, flow_run_id=flow_run_id, lease_expires_at=time.time() + lease_s)

    def renew(self, cache_key: str, holder: str, lease_s: float) -> bool:
        """Extend the claim's lease by ``lease_s`` from now; False if ``holder`` lost the claim."""
        return self._update_held(cache_key, holder, lease_expires_at=time.time() + lease_s)

    def finish(self, cache_key: str, holder: str, status: Literal["analysed", "failed"], *,
               transcript_id: str | None = None, result_dir: str | None = None, error: str | None = None) -> bool:
        """Record the outcome of a claimed recording; False if ``holder`` lost the claim meanwhile."""
        return self._update_held(cache_key, holder, status=status, transcript_id=transcript_id,
                                 result_dir=result_dir, error=error)

    def import_json(self, path: Path) -> int:
        """Import the analysed recordings of an ``inbox-ledger.json`` (the earlier format: ``{"version": 1,
        "recordings": {cache_key: {audio, transcript_id, result_dir, analysed_at}}}``) into an empty
        table; return how many. Raises ``InputError`` for a file that cannot be read."""
        if not path.exists():
            return 0
        with self.engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(recordings)).scalar():
                return 0
        try:
            legacy = _LegacyLedger.model_validate_json(path.read_bytes())
        except (ValidationError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"{exc.error_count()} validation error(s)"
            raise InputError(f"the inbox ledger {str(path)!r} cannot be read ({reason}): restore it from a backup, "
                             f"or delete it to analyse every recording in the inbox again") from None
        rows = [dict(cache_key=key, audio=e.audio, status="analysed", holder="imported", flow_run_id=None,
                     attempts=1, lease_expires_at=0.0, updated_at=e.analysed_at.timestamp(),
                     transcript_id=e.transcript_id, result_dir=e.result_dir, error=None)
                for key, e in legacy.recordings.items()]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(recordings), rows)
        return len(rows)


class _LegacyEntry(BaseModel):
    audio: str
    transcript_id: str
    result_dir: str
    analysed_at: datetime


class _LegacyLedger(BaseModel):
    version: Literal[1] = 1
    recordings: dict[str, _LegacyEntry] = Field(default_factory=dict)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL: readers do not block the writer; several processes on one machine share the file safely.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()
