"""On-disk state of the local server: uploads, transcripts and downloaded audio.

Layout under the data folder::

    uploads/<uuid>             uploaded bytes, exactly as received
    uploads/<uuid>.json        {"size": n, "created": iso}
    transcripts/<uuid>.json    {"transcript": <API object>, "local": <server-only metadata>}
    downloads/<uuid>           audio fetched from a transcript's http(s) audio_url
    tmp/                       partial files; renamed into place when complete

Every JSON file is written to a temporary file and renamed over the old one, so a crash leaves
either the old or the new version. Ids are uuid4 strings; :func:`parse_id` is the only way an id
from a request reaches a path, and anything that is not a canonical uuid is treated as unknown.

``local`` holds what the API never shows: ``seq`` (creation order), ``created``/``completed``
timestamps, the webhook header value, the resolved audio file, and job timings
(``processing_ms`` etc., see jobs.py).
"""
from __future__ import annotations

import json
import os
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Iterator

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# The path of an upload URL we handed out (``/upload/<id>``), or AssemblyAI's CDN form.
UPLOAD_PATH_RE = re.compile(r"/(?:v2/)?upload/([0-9A-Fa-f-]{36})/?$")


def parse_id(value: str | None) -> str | None:
    """The canonical (lower-case) uuid in ``value``, or None when it is not one."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if _UUID_RE.match(value) else None


def new_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    """UTC ISO timestamp without a timezone suffix, like AssemblyAI's ``created``/``completed``."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


class UploadTooLarge(Exception):
    """The body exceeded the size cap; the partial file has been removed."""


class EmptyUpload(Exception):
    """The body had no bytes."""


@dataclass
class IndexEntry:
    """What the list endpoint needs, kept in memory for every transcript."""

    id: str
    seq: int
    status: str
    created: str
    completed: str | None
    audio_url: str
    error: str | None
    latency_s: float = 0.0  # the latency profile's delay for this transcript (local_api/latency.py)


class Store:
    """Thread-safe file store. One instance per server process (the in-memory index is per process)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).resolve()
        self.uploads = self.root / "uploads"
        self.transcripts = self.root / "transcripts"
        self.downloads = self.root / "downloads"
        self.tmp = self.root / "tmp"
        for d in (self.uploads, self.transcripts, self.downloads, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():  # partial uploads/downloads of a previous run
            try:
                leftover.unlink()
            except OSError:
                pass
        self._lock = threading.RLock()
        self._index: dict[str, IndexEntry] = {}
        self._seq = 0
        self._load_index()

    # ------------------------------------------------------------------ files
    def _atomic_write_json(self, path: Path, data: dict) -> None:
        tmp = self.tmp / f"{path.name}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def temp_path(self, suffix: str = "") -> Path:
        return self.tmp / f"{uuid.uuid4().hex}{suffix}.part"

    # ------------------------------------------------------------------ uploads
    async def save_upload(self, chunks: AsyncIterator[bytes], max_bytes: int) -> tuple[str, int]:
        """Stream ``chunks`` to ``uploads/<new id>``; return (id, size).

        Raises UploadTooLarge past ``max_bytes`` and EmptyUpload for a zero-byte body; in both
        cases nothing is left on disk.
        """
        upload_id = new_id()
        tmp = self.temp_path(".upload")
        size = 0
        try:
            with open(tmp, "wb") as f:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > max_bytes:
                        raise UploadTooLarge()
                    f.write(chunk)
            if size == 0:
                raise EmptyUpload()
            os.replace(tmp, self.uploads / upload_id)
        finally:
            tmp.unlink(missing_ok=True)
        self._atomic_write_json(self.uploads / f"{upload_id}.json", {"size": size, "created": now_iso()})
        return upload_id, size

    def upload_path(self, upload_id: str) -> Path | None:
        uid = parse_id(upload_id)
        if uid is None:
            return None
        p = self.uploads / uid
        return p if p.is_file() else None

    def delete_upload(self, upload_id: str) -> None:
        uid = parse_id(upload_id)
        if uid is None:
            return
        for p in (self.uploads / uid, self.uploads / f"{uid}.json"):
            p.unlink(missing_ok=True)

    def download_path(self, transcript_id: str) -> Path:
        tid = parse_id(transcript_id)
        if tid is None:
            raise ValueError("not a transcript id")
        return self.downloads / tid

    # ------------------------------------------------------------------ transcripts
    def _path(self, transcript_id: str) -> Path | None:
        tid = parse_id(transcript_id)
        return None if tid is None else self.transcripts / f"{tid}.json"

    def _load_index(self) -> None:
        for p in self.transcripts.glob("*.json"):
            if parse_id(p.stem) is None:
                continue
            try:
                record = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # unreadable leftovers are skipped, never fatal
            self._index_record(record)

    def _index_record(self, record: dict) -> None:
        t, local = record["transcript"], record["local"]
        seq = int(local.get("seq", 0))
        self._seq = max(self._seq, seq)
        self._index[t["id"]] = IndexEntry(
            id=t["id"], seq=seq, status=t["status"], created=local["created"],
            completed=local.get("completed"), audio_url=t.get("audio_url") or "", error=t.get("error"),
            latency_s=float(local.get("latency_s") or 0),
        )

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def save(self, record: dict) -> None:
        """Write a transcript record (``{"transcript": …, "local": …}``) and update the index."""
        path = self._path(record["transcript"]["id"])
        if path is None:
            raise ValueError("transcript id is not a uuid")
        with self._lock:
            self._atomic_write_json(path, record)
            self._index_record(record)

    def load(self, transcript_id: str) -> dict | None:
        """The stored record, or None for an unknown or malformed id."""
        path = self._path(transcript_id)
        if path is None:
            return None
        with self._lock:
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                return None

    def update(self, transcript_id: str, fn) -> dict | None:
        """Load, apply ``fn(record)`` (mutating it) and save, under the store lock."""
        with self._lock:
            record = self.load(transcript_id)
            if record is None:
                return None
            fn(record)
            self.save(record)
            return record

    def exists(self, transcript_id: str) -> bool:
        tid = parse_id(transcript_id)
        with self._lock:
            return tid is not None and tid in self._index

    def index(self) -> list[IndexEntry]:
        """All transcripts, newest first."""
        with self._lock:
            return sorted(self._index.values(), key=lambda e: e.seq, reverse=True)

    def ids_with_status(self, *statuses: str) -> list[str]:
        """Ids in creation order (oldest first) whose status is one of ``statuses``."""
        with self._lock:
            return [e.id for e in sorted(self._index.values(), key=lambda e: e.seq) if e.status in statuses]

    def iter_records(self) -> Iterator[dict]:
        for entry in self.index():
            record = self.load(entry.id)
            if record is not None:
                yield record
