"""Analyse every new recording in an inbox folder (and/or a list of URLs), for a scheduled deployment.

inbox/ files (not subfolders, not hidden files) + ``urls`` → each checked and identified by content
(``AudioSource.cache_key``: SHA-256 for files, the URL for URLs) → recordings in the ledger
(``<results_dir>/inbox-ledger.json``) are skipped, even when renamed → ``analyze-call`` as a subflow
for each new one, one after the other → the ledger is updated (atomically) after each success →
``BatchReport`` (``<results_dir>/inbox-report.json`` + markdown artifact ``analyze-inbox``).

Final state: a recording that fails is reported (ERROR log line, ``failed`` row in the artifact and
the report) and left out of the ledger, so the next scheduled run retries it; the others are kept.
The run ends **Completed** when at least one recording was analysed or nothing needed analysing,
and **Failed** (``InboxFailedError``, after the report is written) only when every recording it
tried failed: that usually means a problem with the setup (server, key, model), not with a file.
"""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field, ValidationError

from callflows.audio import AudioSource, check_audio
from callflows.errors import AudioInputError, CallflowsError, DamagedAudioError, InputError
from callflows.sentiment import DEFAULT_LLM_MODEL
from flows.analyze import AnalysesFailedError, analyze_call, one_line
from flows.common import subflow
from tasks.reports import publish_report

ARTIFACT_KEY = "analyze-inbox"
LEDGER_FILE = "inbox-ledger.json"
REPORT_FILE = "inbox-report.json"


# --- the ledger: recordings already analysed successfully ----------------------------------------

class LedgerEntry(BaseModel):
    """A recording analysed successfully (all three analyses)."""

    audio: str = Field(..., description="the path or URL it was analysed under (a file may be renamed since)")
    transcript_id: str
    result_dir: str = Field(..., description="folder of its analysis.json")
    analysed_at: datetime


class Ledger(BaseModel):
    """``inbox-ledger.json``: recording ``cache_key`` (``sha256:<hex>`` or ``url:<url>``) → entry."""

    version: Literal[1] = 1
    recordings: dict[str, LedgerEntry] = Field(default_factory=dict)


def load_ledger(path: Path) -> Ledger:
    """The ledger at ``path`` (an empty one when the file does not exist). Raises ``InputError`` for
    a file that is not a valid ledger: analysing everything again could be expensive."""
    if not path.exists():
        return Ledger()
    try:
        return Ledger.model_validate_json(path.read_bytes())
    except (ValidationError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"{exc.error_count()} validation error(s)"
        raise InputError(f"the inbox ledger {str(path)!r} cannot be read ({reason}): restore it from a backup, or "
                         f"delete it to analyse every recording in the inbox again") from None


def record_in_ledger(path: Path, cache_key: str, entry: LedgerEntry) -> None:
    """Add ``entry`` under ``cache_key`` to the ledger at ``path``: read again (keeps what another run
    added meanwhile), then written to a temporary file in the same folder and renamed over it, so the
    ledger is never half-written."""
    ledger = load_ledger(path)
    ledger.recordings[cache_key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(ledger.model_dump_json(indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- the report ----------------------------------------------------------------------------------

class RecordingResult(BaseModel):
    """What happened to one recording in this run."""

    audio: str = Field(..., description="inbox file path or URL")
    status: Literal["analysed", "skipped", "failed"]
    error: str | None = Field(None, description="failed: the one-line error")
    note: str | None = Field(None, description="skipped: why (already analysed, not audio, duplicate, limit)")
    result_dir: str | None = Field(None, description="folder of analysis.json (also for a partial failure)")
    cache_key: str | None = Field(None, description="sha256:<hex> or url:<url>; None when not audio")
    transcript_id: str | None = None


class BatchReport(BaseModel):
    """Result of the analyze-inbox flow (written as ``<results_dir>/inbox-report.json``)."""

    inbox: str | None = Field(..., description="the inbox folder; None when it does not exist and URLs were given")
    urls: list[str]
    results_dir: str
    ledger: str = Field(..., description="path of the ledger file")
    recordings: list[RecordingResult] = Field(default_factory=list, description="in inbox order, then the URLs")
    started_at: datetime
    finished_at: datetime | None = None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.recordings)

    @property
    def analysed(self) -> int:
        return self.count("analysed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    def summary(self) -> str:
        return f"{self.analysed} analysed, {self.skipped} skipped, {self.failed} failed"

    def to_markdown(self) -> str:
        """A table: one row per recording with its status, result folder and error or note."""
        source = " and ".join(filter(None, [f"`{self.inbox}`" if self.inbox else None,
                                            f"{len(self.urls)} URL(s)" if self.urls else None])) or "nothing"
        out = [f"# Inbox analysis: {source}", "", f"{self.summary()}. Ledger: `{self.ledger}`.", ""]
        if not self.recordings:
            out.append("No recordings found.")
        else:
            out += ["| recording | status | result folder | error or note |", "|---|---|---|---|"]
            for r in self.recordings:
                status = "**failed**" if r.status == "failed" else r.status
                folder = f"`{r.result_dir}`" if r.result_dir else "–"
                out.append(f"| {_cell(r.audio)} | {status} | {folder} | {_cell(r.error or r.note or '')} |")
        if self.failed:
            out += ["", "Failed recordings are not in the ledger: the next run retries them."]
        return "\n".join(out) + "\n"


class InboxFailedError(CallflowsError):
    """Every recording the analyze-inbox run tried failed. ``report`` is the ``BatchReport``."""

    def __init__(self, report: BatchReport) -> None:
        self.report = report
        first = next(r for r in report.recordings if r.status == "failed")
        super().__init__(f"every recording this run tried failed ({report.summary()}); first: "
                         f"{first.audio}: {first.error}. Check the setup (server, key, model); the next run "
                         f"retries them")

    def __reduce__(self):
        return (InboxFailedError, (self.report,))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- input checks --------------------------------------------------------------------------------

def check_urls(urls: list[str]) -> list[AudioSource]:
    """Each entry must be an http(s) URL. Raises ``AudioInputError`` naming the entry."""
    sources = []
    for i, url in enumerate(urls or []):
        try:
            source = check_audio(url)
        except AudioInputError as exc:
            raise AudioInputError(f"urls[{i}]: {exc}") from None
        if source.kind != "url":
            raise AudioInputError(f"urls[{i}] is {url!r}, not an http(s) URL: put local recordings in the inbox "
                                  f"folder instead")
        sources.append(source)
    return sources


def inbox_files(inbox: str, required: bool) -> list[Path] | None:
    """The files directly in ``inbox`` (no subfolders, no hidden files), sorted by name; None when the
    folder does not exist and ``required`` is False. Raises ``InputError`` when it is missing (and
    required) or not a folder."""
    folder = Path(inbox).expanduser()
    if not folder.exists():
        if not required:
            return None
        raise InputError(f"inbox folder {inbox!r} does not exist (resolved to {folder.absolute()}): create it and "
                         f"put recordings in it, pass another folder as inbox, or pass urls")
    if not folder.is_dir():
        raise InputError(f"inbox {inbox!r} is not a folder: pass the folder that holds the recordings "
                         f"(analyze-call takes a single file)")
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
                  key=lambda p: p.name)


# --- the flow ------------------------------------------------------------------------------------

@flow(name="analyze-inbox")
def analyze_inbox(
    inbox: Annotated[str, Field(description="Folder of recordings; files in subfolders and hidden files are "
                                "ignored.")] = "inbox",
    urls: Annotated[list[str], Field(description="http(s) URLs of recordings to analyse too.")] = [],
    results_dir: Annotated[str, Field(description="Folder for the results and the ledger "
                                      "(inbox-ledger.json).")] = "results",
    model: Annotated[str, Field(description="LLM Gateway model for the analyses.")] = DEFAULT_LLM_MODEL,
    max_recordings: Annotated[int, Field(ge=1, le=1000, description="At most this many new recordings per run; "
                                         "the rest wait for the next run.")] = 100,
) -> BatchReport:
    """Analyse every new recording in ``inbox`` and every new URL in ``urls`` with ``analyze-call``
    (sentiment, scorecard and segmentation, with their defaults), one recording after the other.

    Args:
        inbox: folder of recordings; files in subfolders and hidden files are ignored.
        urls: http(s) URLs of recordings to analyse too.
        results_dir: folder for the results and the ledger (``inbox-ledger.json``).
        model: LLM Gateway model for the analyses.
        max_recordings: at most this many new recordings per run; the rest wait for the next run.

    A recording is new when its content (SHA-256; for a URL, the URL) is not in the ledger
    ``<results_dir>/inbox-ledger.json``, so a renamed file is not analysed again. Files that are not
    audio (by their content) are skipped with a log line; a file with the same content as one before
    it in this run is skipped too. A damaged audio file (a WAV cut short, with a corrupt header or
    under the API's 160 ms) is reported as failed without any request. Each recording's results are in
    ``<results_dir>/<name>-<transcript id[:8]>/`` (see ``analyze-call``).

    Returns a ``BatchReport`` (also written as ``<results_dir>/inbox-report.json`` and published as the
    artifact ``analyze-inbox``). An empty inbox is not an error.

    Raises ``InputError`` before any request: the inbox folder is missing (and no URLs were given) or
    not a folder, a URL is not http(s), or the ledger cannot be read. Raises ``InboxFailedError``
    (the run ends Failed) when every recording it tried failed; when only some fail, the run ends
    Completed with each failure in the report, the artifact and an ERROR log line, and the failed
    recordings are retried by the next run.
    """
    logger = get_run_logger()
    started_at = datetime.now(timezone.utc)
    url_sources = check_urls(urls)
    files = inbox_files(inbox, required=not url_sources)
    if files is None:
        logger.warning("Inbox folder %r does not exist: analysing the %d URL(s) only", inbox, len(url_sources))
    ledger_path = Path(results_dir) / LEDGER_FILE
    ledger = load_ledger(ledger_path)

    # (audio, source, why it is not audio, why it cannot be transcribed as it is)
    candidates: list[tuple[str, AudioSource | None, str | None, str | None]] = []
    for path in files or []:
        try:
            candidates.append((str(path), check_audio(path), None, None))
        except DamagedAudioError as exc:  # audio that needs fixing: reported as failed, before any request
            candidates.append((str(path), None, None, str(exc)))
        except AudioInputError as exc:
            candidates.append((str(path), None, str(exc), None))
    candidates += [(s.value, s, None, None) for s in url_sources]

    rows: list[RecordingResult] = []
    todo: list[tuple[RecordingResult, AudioSource]] = []
    seen: dict[str, str] = {}
    for audio, source, not_audio, damaged in candidates:
        if damaged:
            rows.append(RecordingResult(audio=audio, status="failed", error=damaged))
            continue
        if source is None:
            logger.info("Skipping %s: %s", audio, not_audio)
            rows.append(RecordingResult(audio=audio, status="skipped", note=f"not a recording: {not_audio}"))
            continue
        key = source.cache_key
        row = RecordingResult(audio=audio, status="skipped", cache_key=key)
        if key in ledger.recordings:
            done = ledger.recordings[key]
            row.note = f"already analysed as {done.audio} on {done.analysed_at:%Y-%m-%d %H:%M} UTC"
            row.result_dir, row.transcript_id = done.result_dir, done.transcript_id
        elif key in seen:
            row.note = f"same recording as {seen[key]}"
        elif len(todo) >= max_recordings:
            row.note = f"over max_recordings={max_recordings}: left for the next run"
        else:
            seen[key] = audio
            todo.append((row, source))
        rows.append(row)
    logger.info("%d recording(s) to analyse, %d skipped, %d damaged", len(todo),
                sum(r.status == "skipped" for r in rows), sum(r.status == "failed" for r in rows))
    for row in rows:
        if row.status == "failed":
            logger.error("%s failed (fix the file; the next run tries it again): %s", row.audio, row.error)

    for row, source in todo:
        try:
            analysis = subflow(analyze_call.with_options(flow_run_name=f"analyze-{source.name}"),
                               audio=row.audio, results_dir=results_dir, model=model)
        except AnalysesFailedError as exc:
            row.status, row.error = "failed", one_line(exc)
            row.result_dir, row.transcript_id = exc.analysis.result_dir, exc.analysis.transcript_id
        except Exception as exc:  # noqa: BLE001 - one recording failing must not stop the others
            row.status, row.error = "failed", one_line(exc)
        else:
            row.status, row.result_dir, row.transcript_id = "analysed", analysis.result_dir, analysis.transcript_id
            record_in_ledger(ledger_path, source.cache_key, LedgerEntry(
                audio=row.audio, transcript_id=analysis.transcript_id, result_dir=analysis.result_dir,
                analysed_at=datetime.now(timezone.utc)))
        if row.status == "failed":
            logger.error("%s failed (the next run retries it): %s", row.audio, row.error)

    report = BatchReport(inbox=None if files is None else inbox, urls=[s.value for s in url_sources],
                         results_dir=results_dir, ledger=str(ledger_path), recordings=rows, started_at=started_at,
                         finished_at=datetime.now(timezone.utc))
    publish_report(report, report.to_markdown(), str(Path(results_dir) / REPORT_FILE), ARTIFACT_KEY)
    if report.failed:
        if not report.analysed:
            raise InboxFailedError(report)
        logger.warning("%s: the failed recordings are retried by the next run", report.summary())
    else:
        logger.info("%s", report.summary())
    return report
