"""Analyse every new recording in an inbox folder (and/or a list of URLs), for a scheduled deployment.

inbox/ files (not subfolders, not hidden files) + ``urls`` → each checked and identified by content
(``AudioSource.cache_key``: SHA-256 for files, the URL for URLs) → each new one **claimed** in the
ledger (``callflows.ledger``: a database table with an atomic claim, so overlapping runs and other
machines never take the same recording) → one ``analyze-call`` flow run per claimed recording,
at most ``max_in_flight`` at a time: a run of the ``analyze-call/analyze-call`` deployment
(``run_deployment``: any worker of the pool takes it; it shows as a child of the inbox run, with its
own logs, retries and Retry button) or, where that deployment does not exist, a subflow in this
process → each outcome recorded in the ledger → ``BatchReport`` (``<results_dir>/inbox-report.json``
+ markdown artifact ``analyze-inbox``).

A claim carries a lease that the waiting run renews; when a run dies (SIGKILL, lost machine), the
next run takes its claims over once the lease has run out: an analyze-call run still going is waited
for, a completed one is recorded from its persisted result, and only a failed or crashed one is
run again (its upload and transcript come from the task cache, so nothing is paid twice).

Final state: a recording that fails is reported (ERROR log line, ``failed`` row in the artifact and
the report) and marked failed in the ledger, so the next scheduled run retries it; the others are
kept. The run ends **Completed** when at least one recording was analysed or nothing needed
analysing, and **Failed** (``InboxFailedError``, after the report is written) only when every
recording it tried failed: that usually means a problem with the setup (server, key, model), not
with a file.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_client, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.futures import as_completed
from prefect.runtime import flow_run as current_flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import CommitMode, transaction
from pydantic import BaseModel, Field

from callflows.audio import AudioSource, check_audio
from callflows.errors import AudioInputError, CallflowsError, DamagedAudioError, InputError
from callflows.ledger import Claim, Ledger
from callflows.llm import DEFAULT_LLM_MODEL
from callflows.markdown import cell
from callflows.report import compile_agent_pattern
from callflows.scorecard import RubricCriterion, check_rubric
from callflows.sentiment import Question, check_questions
from callflows.usage import Usage, money
from flows.analyze import AnalysesFailedError, analyze_call
from flows.parameters import DEFAULT_PII_POLICIES, MaxTokens, RedactPiiSub, check_max_tokens, redaction
from tasks.logs import one_line
from tasks.reports import publish_cross_call_report, publish_report

ARTIFACT_KEY = "analyze-inbox"
CROSS_CALL_ARTIFACT_KEY = "calls-by-agent"
REPORT_FILE = "inbox-report.json"
ANALYZE_CALL_DEPLOYMENT = "analyze-call/analyze-call"
MAX_IN_FLIGHT = 64
CLAIM_LEASE_S = 600.0  # renewed while the run waits; a dead run's claims are free again after this
POLL_INTERVAL_S = 2.0


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
    flow_run_id: str | None = Field(None, description="the analyze-call flow run (a child of the inbox run)")
    usage: Usage | None = Field(None, description="analysed (or partly) in this run: what its analyze-call run used")


class UsageTotals(BaseModel):
    """The usage of the recordings analysed (or partly analysed) in one inbox run, summed."""

    calls: int = Field(0, description="recordings with a usage")
    audio_transcribed_s: float = Field(0.0, description="s of audio transcribed (billed) in this run")
    audio_reused_s: float = Field(0.0, description="s of audio whose cached transcript was reused (not billed)")
    prompt_tokens: int = 0
    cached_tokens: int = Field(0, description="prompt_tokens_details.cached_tokens, summed")
    completion_tokens: int = 0
    estimated_cost: float = Field(0.0, description="sum of the calls' estimates that have a price")
    calls_without_price: int = Field(0, description="calls whose estimate has a part without a price "
                                                    "(not in estimated_cost)")
    currency: str = "USD"
    prices_as_of: str | None = None

    @classmethod
    def of(cls, usages: list[Usage]) -> "UsageTotals":
        totals = cls()
        for u in usages:
            totals.calls += 1
            seconds = u.transcription.audio_duration_s or 0.0
            if u.transcription.billed:
                totals.audio_transcribed_s += seconds
            else:
                totals.audio_reused_s += seconds
            prompt, cached, completion = u.tokens()
            totals.prompt_tokens += prompt
            totals.cached_tokens += cached
            totals.completion_tokens += completion
            if u.cost.total is None:
                totals.calls_without_price += 1
            else:
                totals.estimated_cost += u.cost.total
            totals.currency, totals.prices_as_of = u.cost.currency, u.cost.prices_as_of
        totals.estimated_cost = round(totals.estimated_cost, 6)
        return totals

    def to_markdown(self) -> str:
        """One sentence."""
        missing = (f" ({self.calls_without_price} call(s) without a price not included)"
                   if self.calls_without_price else "")
        return (f"Usage of {self.calls} call(s): {self.audio_transcribed_s / 60:.1f} min of audio transcribed, "
                f"{self.audio_reused_s / 60:.1f} min reused from cached transcripts (not billed again); "
                f"{self.prompt_tokens} prompt tokens ({self.cached_tokens} cached) + {self.completion_tokens} "
                f"completion tokens; estimated cost {money(self.estimated_cost, self.currency)}{missing}, at the "
                f"prices of {self.prices_as_of} (an estimate: see callflows/prices.toml).")


class BatchReport(BaseModel):
    """Result of the analyze-inbox flow (written as ``<results_dir>/inbox-report.json``)."""

    inbox: str | None = Field(..., description="the inbox folder; None when it does not exist and URLs were given")
    urls: list[str]
    results_dir: str
    ledger: str = Field(..., description="the ledger's database (without password)")
    recordings: list[RecordingResult] = Field(default_factory=list, description="in inbox order, then the URLs")
    totals: UsageTotals = Field(default_factory=UsageTotals, description="usage and estimated cost of this run")
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
            out += ["| recording | status | flow run | result folder | error or note |", "|---|---|---|---|---|"]
            for r in self.recordings:
                status = "**failed**" if r.status == "failed" else r.status
                folder = f"`{r.result_dir}`" if r.result_dir else "–"
                run = f"`{r.flow_run_id}`" if r.flow_run_id else "–"
                out.append(f"| {cell(r.audio)} | {status} | {run} | {folder} | {cell(r.error or r.note or '')} |")
        if self.failed:
            out += ["", "Failed recordings are marked failed in the ledger: the next run retries them."]
        if self.totals.calls:
            out += ["", self.totals.to_markdown()]
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


def sidecar_files(files: list[Path]) -> set[Path]:
    """The ``.json`` files named like another file of the inbox (``call-0042.json`` beside ``call-0042.wav``):
    a recording's details, such as its agent's name (``callflows.report``), not recordings themselves."""
    stems = {}
    for p in files:
        stems.setdefault(p.stem, []).append(p)
    return {p for p in files if p.suffix.lower() == ".json" and len(stems[p.stem]) > 1}


# --- the flow ------------------------------------------------------------------------------------

def _deployment_id(name: str | None) -> str | None:
    """The id of the deployment ``name``, or None when there is none (a plain Python run or the CLI)."""
    if not name:
        return None
    with get_client(sync_client=True) as client:
        try:
            return str(client.read_deployment_by_name(name).id)
        except ObjectNotFound:
            return None


def _flow_run_state(flow_run_id: str):
    with get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(flow_run_id).state
        except ObjectNotFound:
            return None


def _usage_of(analysis) -> Usage | None:
    """The ``usage`` of an analyze-call result read by its fields (see ``_outcome``), or None."""
    usage = getattr(analysis, "usage", None)
    if usage is None:
        return None
    try:
        return Usage.model_validate(usage.model_dump() if hasattr(usage, "model_dump") else usage)
    except ValueError:  # an older result's shape: the run's totals leave it out
        return None


def _outcome(row: RecordingResult, state) -> RecordingResult:
    """Fill ``row`` from the final ``state`` of its analyze-call flow run (its persisted result).

    A worker loads the flow from its entrypoint file, so the result's classes come from a module
    named ``analyze``, not ``flows.analyze``: the result is read by its fields, not by its class.
    """
    if state.type == StateType.COMPLETED:
        try:
            analysis = state.result()
        except Exception as exc:  # noqa: BLE001 - e.g. result storage not shared with this machine
            analysis = exc
        if hasattr(analysis, "result_dir") and hasattr(analysis, "transcript_id"):
            row.status, row.result_dir, row.transcript_id = "analysed", analysis.result_dir, analysis.transcript_id
            row.usage = _usage_of(analysis)
        else:
            row.status, row.error = "failed", (f"analyze-call completed but its result cannot be read "
                                               f"({one_line(analysis)}): share the result storage "
                                               f"(CALLFLOWS_RESULT_STORAGE) with every worker")
        return row
    if state.type == StateType.FAILED:
        try:
            exc = state.result(raise_on_failure=False)
        except Exception as caught:  # noqa: BLE001 - the failure's details are unreadable here
            exc = caught
        if isinstance(exc, BaseException) and hasattr(getattr(exc, "analysis", None), "result_dir"):
            row.result_dir, row.transcript_id = exc.analysis.result_dir, exc.analysis.transcript_id
            row.usage = _usage_of(exc.analysis)
        row.status, row.error = "failed", one_line(exc) if isinstance(exc, BaseException) else state.message
        return row
    row.status, row.error = "failed", f"analyze-call run ended {state.name}: {state.message or 'no message'}"
    return row


@task(name="analyze-recording", task_run_name="{name}", cache_policy=NO_CACHE)
def analyze_recording(name: str, row: RecordingResult, parameters: dict[str, Any], deployment_id: str | None,
                      adopt_flow_run_id: str | None, ledger: Ledger, holder: str,
                      call_timeout_s: float) -> RecordingResult:
    """Analyse one claimed recording: a new ``analyze-call`` flow run (of the deployment, for any worker;
    in this process when ``deployment_id`` is None), or the one a dead inbox run left
    (``adopt_flow_run_id``); wait for it, renewing the claim, at most ``call_timeout_s`` (a run whose
    worker was killed stays Running in Prefect: it is then reported failed, and the next inbox run
    checks it again); record the outcome in the ledger.

    Returns ``row`` with the outcome (``analysed`` or ``failed``); never raises for the recording's own
    failure, so one recording cannot stop the others.
    """
    logger = get_run_logger()
    key = row.cache_key
    if deployment_id is None and adopt_flow_run_id is None:
        ledger.started(key, holder, holder, CLAIM_LEASE_S)
        try:
            # Without EAGER, the cached results of the call's tasks (upload, transcript) would be
            # committed only when this task ends: the call's own later steps would miss them.
            with transaction(commit_mode=CommitMode.EAGER):
                # no heartbeat thread of its own: Prefect joins it at the end of a run (up to 1 s); the
                # inbox run's heartbeats still detect a crash of this process
                with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
                    analysis = analyze_call.with_options(flow_run_name=name)(**parameters)
        except AnalysesFailedError as exc:
            row.status, row.error = "failed", one_line(exc)
            row.result_dir, row.transcript_id = exc.analysis.result_dir, exc.analysis.transcript_id
            row.usage = exc.analysis.usage
        except Exception as exc:  # noqa: BLE001 - one recording failing must not stop the others
            row.status, row.error = "failed", one_line(exc)
        else:
            row.status, row.result_dir, row.transcript_id = "analysed", analysis.result_dir, analysis.transcript_id
            row.usage = analysis.usage
    else:
        if adopt_flow_run_id:
            row.flow_run_id = adopt_flow_run_id
            logger.info("%s: waiting for flow run %s, left by an earlier inbox run", name, adopt_flow_run_id)
        else:
            child = run_deployment(deployment_id, parameters=parameters, flow_run_name=name, timeout=0,
                                   idempotency_key=f"{holder}:{key}")
            row.flow_run_id = str(child.id)
        ledger.started(key, holder, row.flow_run_id, CLAIM_LEASE_S)
        renewed = waiting_since = time.monotonic()
        while True:
            state = _flow_run_state(row.flow_run_id)
            if state is None:
                row.status, row.error = "failed", f"flow run {row.flow_run_id} was deleted"
                break
            if state.is_final():
                _outcome(row, state)
                break
            if time.monotonic() - waiting_since > call_timeout_s:
                row.status, row.error = "failed", (
                    f"flow run {row.flow_run_id} is still {state.name} after call_timeout_s={call_timeout_s:g}: its "
                    f"worker may have died (mark it Crashed in the UI); the next inbox run checks it again")
                break
            if time.monotonic() - renewed > CLAIM_LEASE_S / 4:
                ledger.renew(key, holder, CLAIM_LEASE_S)
                renewed = time.monotonic()
            time.sleep(POLL_INTERVAL_S)
    if not ledger.finish(key, holder, row.status, transcript_id=row.transcript_id, result_dir=row.result_dir,
                         error=row.error):
        logger.warning("%s: the claim was taken over by another inbox run meanwhile; its outcome is that run's "
                       "to record", name)
    if row.status == "failed":
        logger.error("%s failed (the next run retries it): %s", row.audio, row.error)
    return row


def _held(claim: Claim) -> tuple[str, str | None]:
    """For a claim another run holds: ``("adopt", flow run id)`` when its holder died and left an
    analyze-call run going or finished, ``("rerun", None)`` when that run failed or never started,
    ``("wait", None)`` when the holder is alive (its lease is current)."""
    held = claim.recording
    if not held.lease_expired():
        return "wait", None
    state = _flow_run_state(held.flow_run_id) if held.flow_run_id and held.flow_run_id != held.holder else None
    if state is not None and (not state.is_final() or state.type == StateType.COMPLETED):
        return "adopt", held.flow_run_id
    return "rerun", None


@flow(name="analyze-inbox", task_runner=ThreadPoolTaskRunner(max_workers=MAX_IN_FLIGHT))
def analyze_inbox(
    inbox: str = "inbox",
    urls: list[str] = [],
    results_dir: str = "results",
    model: str = DEFAULT_LLM_MODEL,
    max_recordings: Annotated[int, Field(ge=1, le=10000)] = 100,
    max_in_flight: Annotated[int, Field(ge=1, le=MAX_IN_FLIGHT)] = 4,
    deployment: str = ANALYZE_CALL_DEPLOYMENT,
    max_tokens: MaxTokens = 0,
    call_timeout_s: Annotated[float, Field(gt=0)] = 7200.0,
    questions: list[Question] | None = None,
    rubric: list[RubricCriterion] | None = None,
    redact_pii: bool = False,
    redact_pii_policies: list[str] = DEFAULT_PII_POLICIES,
    redact_pii_sub: RedactPiiSub = "hash",
    agent_pattern: str = "",
) -> BatchReport:
    """Analyse every new recording in ``inbox`` and every new URL in ``urls`` with ``analyze-call``
    (sentiment, scorecard and segmentation), ``max_in_flight`` at a time.

    Args:
        inbox: Folder of recordings; files in subfolders and hidden files are ignored.
        urls: http(s) URLs of recordings to analyse too.
        results_dir: Folder for the results (and the ledger, unless CALLFLOWS_DATABASE_URL names a
            database).
        model: LLM Gateway model for the analyses.
        max_recordings: At most this many new recordings per run; the rest wait for the next run.
        max_in_flight: At most this many analyze-call runs at a time.
        deployment: The analyze-call deployment to start runs of; when it does not exist (or is empty),
            each call runs in this process.
        max_tokens: Answer limit in tokens for each LLM request; 0 (the default) allows the longest
            answer the answer's schema permits.
        call_timeout_s: Seconds to wait for one call's analyze-call run before reporting it failed.
        questions: Sentiment questions for every call (see ``analyze-call``); None: analyze-call's default.
        rubric: Scorecard criteria for every call (see ``analyze-call``); None: analyze-call's default.
        redact_pii: Redact personal data in every transcript (see ``analyze-call``).
        redact_pii_policies: What to redact: AssemblyAI's policy names.
        redact_pii_sub: Replace redacted text with # marks (hash) or the policy's name (entity_name).
        agent_pattern: For the cross-call report: a regex with a group (?P<agent>...) that finds the agent's
            name in a recording's file name, for recordings without a sidecar <name>.json {"agent": ...}.

    A recording is new when its content (SHA-256; for a URL, the URL) has no row in the ledger
    (``callflows.ledger``), so a renamed file is not analysed again; one that another inbox run is analysing
    right now is skipped (``in progress``). Files that are not audio (by their content) are skipped with a log
    line; a file with the same content as one before it in this run is skipped too; a ``.json`` file named like
    a recording is its sidecar (``sidecar_files``), not listed. A damaged audio file (a WAV cut short, with a
    corrupt header or under the API's 160 ms) is reported as failed without any request. Each recording's
    results are in ``<results_dir>/<name>-<transcript id[:8]>/`` (see ``analyze-call``).

    With the deployment, each recording is one flow run of it, a child of this run, taken by any
    worker of its work pool: throughput grows with the workers (``make up WORKERS=N``).

    Returns a ``BatchReport`` with the run's usage and estimated cost (``totals``), also written as
    ``<results_dir>/inbox-report.json`` and published as the artifact ``analyze-inbox``. Then the cross-call
    report over every call in ``results_dir`` (``callflows.report``) is published as the artifact
    ``calls-by-agent`` and written as ``report.csv`` and ``report-agents.csv`` there. An empty inbox is not
    an error.

    Raises ``InputError`` before any request: the inbox folder is missing (and no URLs were given) or not a
    folder, a URL is not http(s), questions or rubric are empty or too many, a redaction policy is unknown,
    agent_pattern is not a regex with a group agent, or the ledger cannot be opened. Raises ``InboxFailedError``
    (the run ends Failed) when every recording it tried failed; when only some fail, the run ends Completed with
    each failure in the report, the artifact and an ERROR log line, and the failed recordings are retried by the
    next run.
    """
    logger = get_run_logger()
    started_at = datetime.now(timezone.utc)
    holder = current_flow_run.id or f"local-{time.time_ns()}"
    url_sources = check_urls(urls)
    check_max_tokens(max_tokens, 256)
    forwarded = {"max_tokens": max_tokens or None,  # analyze-call's parameters, JSON as run_deployment sends them
                 "questions": None if questions is None else [q.model_dump(mode="json")
                                                              for q in check_questions(questions)],
                 "rubric": None if rubric is None else [r.model_dump(mode="json") for r in check_rubric(rubric)],
                 **redaction(redact_pii, redact_pii_policies, redact_pii_sub)}
    if agent_pattern:
        compile_agent_pattern(agent_pattern)
    files = inbox_files(inbox, required=not url_sources)
    if files is None:
        logger.warning("Inbox folder %r does not exist: analysing the %d URL(s) only", inbox, len(url_sources))
    ledger = Ledger.open(results_dir)
    deployment_id = _deployment_id(deployment)
    logger.info("Ledger: %s. Each call runs %s, at most %d at a time", ledger.describe(),
                f"as a flow run of the deployment {deployment!r}" if deployment_id else "in this process",
                max_in_flight)

    # (audio, source, why it is not audio, why it cannot be transcribed as it is)
    candidates: list[tuple[str, AudioSource | None, str | None, str | None]] = []
    sidecars = sidecar_files(files or [])
    for path in files or []:
        if path in sidecars:
            continue
        try:
            candidates.append((str(path), check_audio(path), None, None))
        except DamagedAudioError as exc:  # audio that needs fixing: reported as failed, before any request
            candidates.append((str(path), None, None, str(exc)))
        except AudioInputError as exc:
            candidates.append((str(path), None, str(exc), None))
    candidates += [(s.value, s, None, None) for s in url_sources]

    rows: list[RecordingResult] = []
    todo: list[tuple[RecordingResult, AudioSource, str | None]] = []  # (row, source, flow run to adopt)
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
        rows.append(row)
        if key in seen:
            row.note = f"same recording as {seen[key]}"
            continue
        seen[key] = audio
        if len(todo) >= max_recordings:
            row.note = f"over max_recordings={max_recordings}: left for the next run"
            continue
        claim = ledger.claim(key, audio, holder, CLAIM_LEASE_S)
        adopt = None
        if claim.outcome == "held":
            action, adopt = _held(claim)
            if action == "wait":
                row.note = (f"in progress: claimed by inbox run {claim.recording.holder}"
                            + (f", flow run {claim.recording.flow_run_id}" if claim.recording.flow_run_id else ""))
                row.flow_run_id = claim.recording.flow_run_id
                continue
            claim = ledger.take_over(claim.recording, audio, holder, CLAIM_LEASE_S)
            if claim.outcome != "claimed":  # another run took it over first
                row.note = f"in progress: claimed by inbox run {claim.recording.holder}"
                continue
        if claim.outcome == "analysed":
            done = claim.recording
            row.note = f"already analysed as {done.audio} on {done.updated:%Y-%m-%d %H:%M} UTC"
            row.result_dir, row.transcript_id, row.flow_run_id = done.result_dir, done.transcript_id, done.flow_run_id
            continue
        todo.append((row, source, adopt))
    logger.info("%d recording(s) to analyse, %d skipped, %d damaged", len(todo),
                sum(r.status == "skipped" for r in rows), sum(r.status == "failed" for r in rows))
    for row in rows:
        if row.status == "failed":
            logger.error("%s failed (fix the file; the next run tries it again): %s", row.audio, row.error)

    def submit(item):
        row, source, adopt = item
        parameters = {"audio": row.audio, "results_dir": results_dir, "model": model,
                      **{k: v for k, v in forwarded.items() if v is not None}}
        return analyze_recording.submit(f"analyze-{source.name}", row, parameters, deployment_id, adopt,
                                        ledger, holder, call_timeout_s)

    pending = iter(todo)  # at most max_in_flight submitted; the next one as each finishes
    futures = {submit(item) for item in islice(pending, max_in_flight)}
    outcomes: dict[str, RecordingResult] = {}
    while futures:
        future = next(as_completed(futures))
        futures.remove(future)
        outcome = future.result()
        outcomes[outcome.cache_key] = outcome
        if (item := next(pending, None)) is not None:
            futures.add(submit(item))
    todo_rows = {id(row) for row, _, _ in todo}
    rows = [outcomes[r.cache_key] if id(r) in todo_rows else r for r in rows]

    report = BatchReport(inbox=None if files is None else inbox, urls=[s.value for s in url_sources],
                         results_dir=results_dir, ledger=ledger.describe(), recordings=rows,
                         totals=UsageTotals.of([r.usage for r in rows if r.usage]), started_at=started_at,
                         finished_at=datetime.now(timezone.utc))
    publish_report(report, report.to_markdown(), str(Path(results_dir) / REPORT_FILE), ARTIFACT_KEY)
    try:
        publish_cross_call_report(results_dir, agent_pattern or None, CROSS_CALL_ARTIFACT_KEY)
    except Exception as exc:  # noqa: BLE001 - the calls are analysed and reported; only the summary is lost
        logger.warning("The cross-call report was not made (%s); `callflows report %s` makes it", one_line(exc),
                       results_dir)
    if report.failed:
        if not report.analysed:
            raise InboxFailedError(report)
        logger.warning("%s: the failed recordings are retried by the next run", report.summary())
    else:
        logger.info("%s", report.summary())
    return report
