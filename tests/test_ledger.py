"""The inbox ledger's atomic claim (``callflows.ledger``) on a real SQLite file shared by processes,
and on a real PostgreSQL server (the ``postgres_url`` fixture)."""
from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from callflows.errors import InputError
from callflows.ledger import LEGACY_JSON_FILE, Ledger

KEYS = [f"sha256:{i:064x}" for i in range(30)]


def _claim_all(url: str, holder: str, start, out) -> None:
    ledger = Ledger(url)
    start.wait()
    won = [key for key in KEYS if ledger.claim(key, f"{key}.wav", holder, lease_s=600).outcome == "claimed"]
    out.put((holder, won))


def overlapping_claims(url: str, claimants: int = 6) -> dict[str, list[str]]:
    """``claimants`` processes claim the same 30 recordings at the same moment; holder → keys won."""
    Ledger(url)  # create the table first, as the flow does before it claims
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(url, f"run-{i}", start, out)) for i in range(claimants)]
    for p in procs:
        p.start()
    time.sleep(2)  # let every process import and connect, so the claims really overlap
    start.set()
    won = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    return won


def assert_each_claimed_once(url: str) -> None:
    won = overlapping_claims(url)
    claimed = [key for keys in won.values() for key in keys]
    assert sorted(claimed) == sorted(KEYS), "every recording claimed exactly once"
    ledger = Ledger(url)
    for key in KEYS:
        row = ledger.get(key)
        assert row.status == "claimed" and row.attempts == 1 and key in won[row.holder]


def test_overlapping_runs_claim_each_recording_exactly_once_sqlite(tmp_path):
    """Six processes claiming the same 30 recordings at once in one SQLite file: each recording is
    won by exactly one of them, and the row names the winner."""
    assert_each_claimed_once(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def test_overlapping_runs_claim_each_recording_exactly_once_postgres(postgres_url):
    """The same on a real PostgreSQL server."""
    Ledger(postgres_url).engine.dispose()
    import sqlalchemy as sa

    with sa.create_engine(postgres_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM inbox_recordings"))
    assert_each_claimed_once(postgres_url)


def test_claim_lifecycle(tmp_path):
    """A live claim is held; a failed one is taken over (attempts + 1, the old row returned as
    ``previous``), an expired one when the claimant takes it over; an analysed one stays analysed; a holder that lost its claim can
    no longer finish it."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    key = KEYS[0]
    first = ledger.claim(key, "a.wav", "run-1", lease_s=600)
    assert first.outcome == "claimed" and first.previous is None
    assert ledger.claim(key, "a.wav", "run-1", lease_s=600).outcome == "claimed"  # the holder itself
    assert ledger.started(key, "run-1", "flow-run-1", lease_s=600)
    held = ledger.claim(key, "renamed.wav", "run-2", lease_s=600)
    assert held.outcome == "held" and held.recording.holder == "run-1" and held.recording.flow_run_id == "flow-run-1"

    assert ledger.finish(key, "run-1", "failed", error="boom")
    retried = ledger.claim(key, "renamed.wav", "run-2", lease_s=0.2)
    assert retried.outcome == "claimed" and retried.recording.attempts == 2
    assert retried.previous.error == "boom" and retried.recording.error is None
    assert not ledger.finish(key, "run-1", "analysed"), "run-1 no longer holds it"

    time.sleep(0.3)  # run-2's lease runs out: held, until the claimant decides to take it over
    expired = ledger.claim(key, "renamed.wav", "run-3", lease_s=600)
    assert expired.outcome == "held" and expired.recording.lease_expired()
    taken = ledger.take_over(expired.recording, "renamed.wav", "run-3", lease_s=600)
    assert taken.outcome == "claimed" and taken.recording.attempts == 3 and taken.previous.holder == "run-2"
    assert not ledger.renew(key, "run-2", lease_s=600)
    assert ledger.renew(key, "run-3", lease_s=600)
    assert ledger.finish(key, "run-3", "analysed", transcript_id="t1", result_dir="results/a-t1")
    done = ledger.claim(key, "again.wav", "run-4", lease_s=600)
    assert done.outcome == "analysed" and done.recording.transcript_id == "t1"

    stale = ledger.get(KEYS[1]) or ledger.claim(KEYS[1], "b.wav", "run-1", lease_s=600).recording
    assert ledger.take_over(stale, "b.wav", "run-5", lease_s=600).outcome == "claimed"
    assert ledger.take_over(stale, "b.wav", "run-6", lease_s=600).outcome == "held", "the row changed since read"


def test_earlier_json_ledger_is_imported_once(tmp_path):
    """An ``inbox-ledger.json`` from before is imported into an empty table, so nothing it lists is
    analysed (and paid) again; a broken one is an ``InputError`` naming the file and the fix."""
    (tmp_path / LEGACY_JSON_FILE).write_text(json.dumps({"version": 1, "recordings": {KEYS[0]: {
        "audio": "inbox/a.wav", "transcript_id": "t1", "result_dir": "results/a-t1",
        "analysed_at": "2026-11-30T02:00:00Z"}}}))
    ledger = Ledger.open(tmp_path)
    assert ledger.claim(KEYS[0], "inbox/a.wav", "run-1", 600).outcome == "analysed"
    assert Ledger.open(tmp_path).import_json(tmp_path / LEGACY_JSON_FILE) == 0
    broken = tmp_path / "other"
    broken.mkdir()
    (broken / LEGACY_JSON_FILE).write_text("{not json")
    with pytest.raises(InputError, match=r"inbox-ledger.json.*cannot be read.*delete it"):
        Ledger.open(broken)


def test_unreachable_database_names_it_without_the_password(tmp_path, monkeypatch):
    """A ``$CALLFLOWS_DATABASE_URL`` that cannot be reached is an ``InputError`` naming the database
    and the variable, never the password."""
    monkeypatch.setenv("CALLFLOWS_DATABASE_URL", "postgresql+psycopg://callflows:s3cret-pw@127.0.0.1:9/callflows")
    with pytest.raises(InputError) as info:
        Ledger.open(tmp_path)
    assert "CALLFLOWS_DATABASE_URL" in str(info.value) and "127.0.0.1:9" in str(info.value)
    assert "s3cret-pw" not in str(info.value)
