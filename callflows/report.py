"""Cross-call report: per agent, numbers over many analysed calls, read from the stored results.

``callflows report RESULTS_DIR`` reads every call folder ``<RESULTS_DIR>/<audio stem>-<transcript id[:8]>/``
that the analyze-call flow wrote: its ``analysis.json`` (the sentiment, scorecard and segmentation
results embedded) and, when the scorecard failed, the ``metrics.json`` written before it. Nothing is
analysed again. A folder without a readable ``analysis.json`` (a crashed run) is skipped with the
reason; a call whose analyses partly failed is kept, with the numbers those analyses give left out
(``None``) and the failures listed in ``CallRow.missing``.

Who is who:

* **Rep**: the speaker label(s) with the rep's role: the scorecard's ``talk_listen.rep_role`` (the
  first role, ``Sales Rep`` by default) in its ``roles`` (speaker label → role); when the scorecard
  failed, the sentiment report's ``roles`` and its first role ``Agent``. **Customer**: every other
  labelled speaker (sentences without a speaker label count for nobody).
* **Agent name**, in this order: a sidecar JSON file next to the recording with the same stem and a
  key ``"agent"`` (``inbox/call-0042.wav`` + ``inbox/call-0042.json`` = ``{"agent": "Maria"}``),
  looked up at the audio path stored in ``analysis.json`` (as given to the flow, so a relative path is
  relative to the current folder); else ``agent_pattern``, a regex with a named group ``agent``
  searched in the recording's file name (for a URL: its last path segment; a URL has no sidecar);
  else ``"unknown"``. Calls are grouped into agents by this name.

Units: ``*_ms`` in ms (AssemblyAI's units), ``*_s`` in s, shares 0..1. The customer's negative share
at the start and the end: of the customer's sentences in the first and last third of the call (a
sentence's midpoint decides, as in :func:`callflows.metrics.sentiment_trajectory`).
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, ValidationError

from callflows.errors import InputError
from callflows.markdown import cell
from callflows.metrics import ConversationMetrics, sentiment_trajectory
from callflows.scorecard import DEFAULT_IDEAL_REP_TALK_SHARE, Scorecard
from callflows.segmentation import PhaseTimeline
from callflows.sentiment import ROLES as SENTIMENT_ROLES
from callflows.sentiment import SentenceSentiment, SentimentReport

ANALYSIS_FILE = "analysis.json"
METRICS_FILE = "metrics.json"
ANALYSIS_NAMES = ("sentiment", "scorecard", "segmentation")  # the fields of CallAnalysis
SIDECAR_KEY = "agent"
UNKNOWN_AGENT = "unknown"
LISTEN_FIRST = 5

AgentSource = Literal["sidecar", "pattern", "none"]


class StoredAnalysis(BaseModel):
    """The fields of ``analysis.json`` (``flows.analyze.CallAnalysis``) that the report reads. Read
    with this model rather than ``CallAnalysis`` so that the report does not import the flows (and
    Prefect); other fields are ignored."""

    audio: str = Field(..., description="the recording: local path or URL, as given to the flow")
    transcript_id: str
    audio_duration_s: float | None = Field(None, description="s")
    sentiment: SentimentReport | None = None
    scorecard: Scorecard | None = None
    segmentation: PhaseTimeline | None = None
    errors: dict[str, str] = Field(default_factory=dict, description="analysis name → one-line error")
    created_at: datetime


class CallRow(BaseModel):
    """One analysed call. ``None`` where the analysis the number comes from failed or is missing."""

    folder: str = Field(..., description="the call's folder name under the results folder")
    audio: str = Field(..., description="the recording: local path or URL, as stored in analysis.json")
    transcript_id: str
    agent: str = Field(..., description="agent name (sidecar, pattern) or 'unknown'")
    agent_source: AgentSource = Field(..., description="where the name came from")
    rep_role: str | None = Field(None, description="the rep's role; None without scorecard and sentiment roles")
    rep_speakers: list[str] = Field(default_factory=list, description="speaker labels with the rep's role")
    created_at: datetime = Field(..., description="when analysis.json was written (UTC)")
    duration_s: float | None = Field(None, description="call duration, s")
    rep_talk_share: float | None = Field(None, description="rep's share of all speech time, 0..1")
    ideal_rep_talk_share: float = Field(..., description="the scorecard's ideal rep talk share, 0..1")
    longest_rep_monologue_ms: int | None = Field(None, description="rep's longest monologue, ms")
    rep_questions: int | None = Field(None, description="questions the rep asked")
    customer_sentences: int | None = Field(None, description="the customer's sentences")
    customer_negative: int | None = Field(None, description="the customer's NEGATIVE sentences")
    customer_negative_share: float | None = Field(None, description="customer_negative / customer_sentences, 0..1")
    negative_share_start: float | None = Field(None, description="negative share of the customer's sentences in "
                                                                 "the call's first third, 0..1")
    negative_share_end: float | None = Field(None, description="same, in the call's last third, 0..1")
    unverified_quotes: int | None = Field(None, description="quotes not verified, sentiment + scorecard")
    phase_lengths_s: dict[str, float] = Field(default_factory=dict,
                                              description="phase name → total length in the call, s (0 for a "
                                                          "phase that did not occur); empty without segmentation")
    missing: dict[str, str] = Field(default_factory=dict, description="analysis name → why it is missing")
    notes: list[str] = Field(default_factory=list, description="e.g. a sidecar file that could not be used")


class AgentRow(BaseModel):
    """One agent's calls together. Means are over the calls that have the number."""

    agent: str
    calls: int
    rep_talk_share: float | None = Field(None, description="mean rep talk share, 0..1")
    ideal_rep_talk_share: float | None = Field(None, description="mean ideal of those calls, 0..1")
    talk_share_off_ideal: float | None = Field(None, description="mean |rep talk share - ideal|, 0..1")
    longest_monologue_ms: int | None = Field(None, description="longest rep monologue over the calls, ms")
    mean_longest_monologue_ms: float | None = Field(None, description="mean of each call's longest, ms")
    questions_per_call: float | None = Field(None, description="mean questions the rep asked per call")
    customer_negative_share: float | None = Field(None, description="NEGATIVE share of all the calls' customer "
                                                                    "sentences together, 0..1")
    negative_share_start: float | None = Field(None, description="mean customer negative share in the first "
                                                                 "third, over the calls with both thirds, 0..1")
    negative_share_end: float | None = Field(None, description="same, in the last third, 0..1")
    phase_lengths_s: dict[str, float] = Field(default_factory=dict,
                                              description="phase name → mean length over the calls with a "
                                                          "segmentation (0 where absent), s")


class CrossCallReport(BaseModel):
    """The report over a results folder: ``calls`` (oldest first), ``agents`` (by name, unknown last),
    ``listen_first`` (most negative customer end first, then most unverified quotes), ``skipped``
    (folder name → why it was not read) and ``left_out`` (calls analysed before ``since``)."""

    results_dir: str
    since: datetime | None = None
    calls: list[CallRow] = Field(default_factory=list)
    agents: list[AgentRow] = Field(default_factory=list)
    listen_first: list[CallRow] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)
    left_out: int = Field(0, description="calls analysed before since")

    def to_markdown(self) -> str:
        """The agents table, the listen-first table, then one line each on skipped folders, calls
        with missing analyses and notes."""
        out = ["# Calls by agent", "", self._headline(), ""]
        if self.agents:
            out += ["| agent | calls | rep talk share (ideal) | off ideal | longest monologue max / mean (s) "
                    "| questions per call | customer negative | negative start → end | mean phase lengths (s) |",
                    "|---|---:|---:|---:|---:|---:|---:|---|---|"]
            for a in self.agents:
                monologue = "–" if a.longest_monologue_ms is None else (
                    f"{a.longest_monologue_ms / 1000:.1f} / {a.mean_longest_monologue_ms / 1000:.1f}")
                out.append(f"| {cell(a.agent)} | {a.calls} | {_pct(a.rep_talk_share)} ({_pct(a.ideal_rep_talk_share)}) "
                           f"| {_points(a.talk_share_off_ideal)} | {monologue} | {_num(a.questions_per_call)} "
                           f"| {_pct(a.customer_negative_share)} | {_pct(a.negative_share_start)} → "
                           f"{_pct(a.negative_share_end)} | {_phases(a.phase_lengths_s)} |")
        if self.listen_first:
            out += ["", "## Listen first", "", "Most negative customer at the end of the call, then most "
                    "unverified quotes.", "",
                    "| # | call | agent | customer negative at the end | at the start | unverified quotes |",
                    "|---:|---|---|---:|---:|---:|"]
            for i, c in enumerate(self.listen_first, 1):
                out.append(f"| {i} | `{cell(c.folder)}` | {cell(c.agent)} | {_pct(c.negative_share_end)} "
                           f"| {_pct(c.negative_share_start)} | {_num(c.unverified_quotes)} |")
        out.append("")
        if self.skipped:
            out.append(f"Skipped {_plural(len(self.skipped), 'folder')}: "
                       + "; ".join(f"`{k}` ({v})" for k, v in self.skipped.items()) + ".")
        partial = [c for c in self.calls if c.missing]
        if partial:
            out.append(f"Missing analyses in {_plural(len(partial), 'call')}: " + "; ".join(
                f"`{c.folder}` ({'; '.join(f'{k}: {v}' for k, v in c.missing.items())})" for c in partial) + ".")
        notes = [f"`{c.folder}`: {n}" for c in self.calls for n in c.notes]
        if notes:
            out.append("Notes: " + "; ".join(notes) + ".")
        return "\n".join(out).rstrip() + "\n"

    def _headline(self) -> str:
        if not self.calls:
            text = f"No analysed calls in `{self.results_dir}`"
        else:
            first, last = self.calls[0].created_at, self.calls[-1].created_at
            text = (f"{_plural(len(self.calls), 'call')} of {_plural(len(self.agents), 'agent')} in "
                    f"`{self.results_dir}`, analysed {first:%Y-%m-%d} to {last:%Y-%m-%d}")
        if self.since is not None:
            text += f" (since {self.since:%Y-%m-%d %H:%M} UTC: {_plural(self.left_out, 'earlier call')} left out)"
        return text + (". Talk share: of the speech time; negative: share of the customer's sentences, start and "
                       "end: in the first and last third of each call." if self.calls else ".")

    def to_csv(self, table: Literal["calls", "agents"] = "calls") -> str:
        """CSV text, one row per call (``"calls"``) or per agent (``"agents"``), with a header row of
        the field names (units in the names: ``_ms``, ``_s``; shares 0..1). Plain numbers rounded to 4
        decimals, ISO dates, empty cells for missing numbers, and one column ``phase_<name>_s`` per
        phase name, so a spreadsheet can sort, filter and pivot it as it is."""
        rows: Sequence[BaseModel] = self.calls if table == "calls" else self.agents
        phases = _phase_names(r.phase_lengths_s for r in rows)
        model = CallRow if table == "calls" else AgentRow
        header: list[str] = []
        for name in model.model_fields:
            header += [f"phase_{p}_s" for p in phases] if name == "phase_lengths_s" else [name]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            record = {k: _csv_value(v) for k, v in row.model_dump(exclude={"phase_lengths_s"}).items()}
            record.update({f"phase_{p}_s": _csv_value(row.phase_lengths_s.get(p)) for p in phases})
            writer.writerow(record)
        return buffer.getvalue()

    def write_csv(self, path: str | Path) -> tuple[Path, Path]:
        """Write the per-call CSV to ``path`` and the per-agent CSV next to it as ``<stem>-agents<suffix>``
        (``report.csv`` → ``report-agents.csv``). Returns both paths. Raises ``OSError``."""
        calls = Path(path)
        agents = calls.with_name(f"{calls.stem}-agents{calls.suffix or '.csv'}")
        calls.write_text(self.to_csv("calls"), encoding="utf-8")
        agents.write_text(self.to_csv("agents"), encoding="utf-8")
        return calls, agents


# --- inputs --------------------------------------------------------------------------------------

def parse_since(value: str | date | datetime) -> datetime:
    """``value`` as an aware datetime: an ISO date (``2025-01-31``, midnight UTC) or date-time
    (``2025-01-31T14:00``, UTC unless it gives a zone). Raises ``InputError``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"--since {value!r} is not a date: give an ISO date or date-time, e.g. 2025-01-31 "
                             f"or 2025-01-31T14:00 (UTC unless a zone is given)") from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return _aware(value)


def compile_agent_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled; it must have a named group ``agent``. Raises ``InputError``."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InputError(f"agent pattern {pattern!r} (--agent-pattern, agent_pattern) is not a valid regular "
                         f"expression ({exc}): e.g. '^(?P<agent>[^_]+)_' for recordings named "
                         f"<agent>_<anything>.wav") from None
    if "agent" not in compiled.groupindex:
        raise InputError(f"agent pattern {pattern!r} (--agent-pattern, agent_pattern) has no group named agent: "
                         f"write it as (?P<agent>...), e.g. '^(?P<agent>[^_]+)_'")
    return compiled


def agent_name(audio: str, pattern: re.Pattern[str] | None = None) -> tuple[str, AgentSource, list[str]]:
    """The agent of the recording ``audio`` (a path or URL as stored): ``(name, source, notes)``, from
    the sidecar ``<same stem>.json`` key ``"agent"``, else ``pattern``'s group ``agent`` in the file
    name, else ``"unknown"``. ``notes`` says why a sidecar file that exists was not used."""
    notes: list[str] = []
    url = urlsplit(audio)
    if url.scheme in ("http", "https"):
        file_name = PurePosixPath(unquote(url.path)).name
    else:
        path = Path(audio)
        file_name = path.name
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            try:
                name = json.loads(sidecar.read_text(encoding="utf-8")).get(SIDECAR_KEY)
            except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
                name = None
                notes.append(f"sidecar {sidecar} not read ({type(exc).__name__})")
            if isinstance(name, str) and name.strip():
                return name.strip(), "sidecar", notes
            if not notes:
                notes.append(f"sidecar {sidecar} has no {SIDECAR_KEY!r} text")
    if pattern is not None and (match := pattern.search(file_name)) and match.group("agent"):
        return match.group("agent").strip(), "pattern", notes
    return UNKNOWN_AGENT, "none", notes


# --- one call ------------------------------------------------------------------------------------

def call_row(folder: Path, analysis: StoredAnalysis, pattern: re.Pattern[str] | None = None) -> CallRow:
    """The numbers of one call from its stored results (``metrics.json`` in ``folder`` stands in for
    the metrics when the scorecard failed)."""
    sentiment, scorecard, timeline = analysis.sentiment, analysis.scorecard, analysis.segmentation
    agent, source, notes = agent_name(analysis.audio, pattern)
    missing = {name: analysis.errors.get(name, "not in analysis.json")
               for name in ANALYSIS_NAMES if getattr(analysis, name) is None}
    if scorecard is not None:
        rep_role, roles = scorecard.talk_listen.rep_role, scorecard.roles
    elif sentiment is not None and sentiment.roles:
        rep_role, roles = SENTIMENT_ROLES[0], sentiment.roles
    else:
        rep_role, roles = None, {}
    rep = [label for label, role in roles.items() if role == rep_role]
    duration_s = analysis.audio_duration_s or (sentiment.audio_duration_s if sentiment else None) or (
        timeline.audio_duration_s if timeline else None)
    row = CallRow(folder=folder.name, audio=analysis.audio, transcript_id=analysis.transcript_id, agent=agent,
                  agent_source=source, rep_role=rep_role, rep_speakers=rep, created_at=_aware(analysis.created_at),
                  duration_s=duration_s, missing=missing, notes=notes,
                  ideal_rep_talk_share=(scorecard.talk_listen.ideal_rep_talk_share if scorecard
                                        else DEFAULT_IDEAL_REP_TALK_SHARE),
                  unverified_quotes=None if sentiment is None and scorecard is None else
                  sum(r.unverified_quotes for r in (sentiment, scorecard) if r is not None))
    metrics = scorecard.metrics if scorecard else _stored_metrics(folder)
    if metrics is not None and rep:
        rep_metrics = [metrics.speakers[label] for label in rep if label in metrics.speakers]
        row.rep_talk_share = sum(m.talk_share for m in rep_metrics)
        row.longest_rep_monologue_ms = max((m.longest_monologue_ms for m in rep_metrics), default=0)
        row.rep_questions = sum(m.questions for m in rep_metrics)
    if sentiment is not None and rep_role is not None:
        customer = [s for s in sentiment.sentences if s.speaker is not None and roles.get(s.speaker) != rep_role]
        row.customer_sentences = len(customer)
        row.customer_negative = sum(s.sentiment == "NEGATIVE" for s in customer)
        row.customer_negative_share = row.customer_negative / len(customer) if customer else None
        duration_ms = round(duration_s * 1000) if duration_s else max((s.end for s in sentiment.sentences), default=0)
        row.negative_share_start, row.negative_share_end = negative_shares(customer, duration_ms)
    if timeline is not None:
        row.phase_lengths_s = {name: 0.0 for name in timeline.phase_names}
        for phase in timeline.phases:
            row.phase_lengths_s[phase.name] = round(row.phase_lengths_s.get(phase.name, 0.0) + phase.duration_s, 3)
    return row


def negative_shares(sentences: Sequence[SentenceSentiment], duration_ms: int) -> tuple[float | None, float | None]:
    """Share of NEGATIVE sentences among ``sentences`` in the first and in the last third of a call
    of ``duration_ms`` ms (0..1 each; ``None`` for a third without sentences). The thirds are
    :func:`callflows.metrics.sentiment_trajectory`'s (a sentence's midpoint decides)."""
    # The trajectory's mean score, with only NEGATIVE scoring (-1), is minus the negative share.
    marked = [s.model_copy(update={"sentiment": "NEGATIVE" if s.sentiment == "NEGATIVE" else "NEUTRAL"})
              for s in sentences]
    trajectory = sentiment_trajectory(marked, duration_ms if duration_ms > 0 else None)
    start, end = trajectory.start_score, trajectory.end_score
    return (None if start is None else abs(start)), (None if end is None else abs(end))


def _stored_metrics(folder: Path) -> ConversationMetrics | None:
    try:
        return ConversationMetrics.model_validate_json((folder / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- all calls -----------------------------------------------------------------------------------

def agent_rows(calls: Sequence[CallRow]) -> list[AgentRow]:
    """One ``AgentRow`` per agent name, sorted by name (``unknown`` last)."""
    by_agent: dict[str, list[CallRow]] = {}
    for c in calls:
        by_agent.setdefault(c.agent, []).append(c)
    rows = []
    for agent in sorted(by_agent, key=lambda a: (a == UNKNOWN_AGENT, a.casefold(), a)):
        group = by_agent[agent]
        talk = [c for c in group if c.rep_talk_share is not None]
        monologues = [c.longest_rep_monologue_ms for c in group if c.longest_rep_monologue_ms is not None]
        counted = [c for c in group if c.customer_sentences]
        both = [c for c in group if c.negative_share_start is not None and c.negative_share_end is not None]
        segmented = [c for c in group if c.phase_lengths_s]
        rows.append(AgentRow(
            agent=agent, calls=len(group),
            rep_talk_share=_mean(c.rep_talk_share for c in talk),
            ideal_rep_talk_share=_mean(c.ideal_rep_talk_share for c in talk),
            talk_share_off_ideal=_mean(abs(c.rep_talk_share - c.ideal_rep_talk_share) for c in talk),
            longest_monologue_ms=max(monologues, default=None), mean_longest_monologue_ms=_mean(monologues),
            questions_per_call=_mean(c.rep_questions for c in group),
            customer_negative_share=(sum(c.customer_negative for c in counted)
                                     / sum(c.customer_sentences for c in counted)) if counted else None,
            negative_share_start=_mean(c.negative_share_start for c in both),
            negative_share_end=_mean(c.negative_share_end for c in both),
            phase_lengths_s={p: round(sum(c.phase_lengths_s.get(p, 0.0) for c in segmented) / len(segmented), 3)
                             for p in _phase_names(c.phase_lengths_s for c in segmented)}))
    return rows


def listen_first(calls: Sequence[CallRow], limit: int = LISTEN_FIRST) -> list[CallRow]:
    """The ``limit`` calls to listen to first: highest customer negative share at the end, then most
    unverified quotes (a missing number counts as 0), then folder name."""
    return sorted(calls, key=lambda c: (-(c.negative_share_end or 0.0), -(c.unverified_quotes or 0),
                                        c.folder))[:limit]


def build_report(results_dir: str | Path, since: str | date | datetime | None = None,
                 agent_pattern: str | None = None, limit: int = LISTEN_FIRST) -> CrossCallReport:
    """The report over every call folder in ``results_dir`` (its subfolders; files such as
    ``inbox-report.json`` are ignored), from the stored results only. ``since``: leave out calls whose
    ``analysis.json`` was written earlier (see :func:`parse_since`). ``agent_pattern``: regex with a
    group ``agent`` for recordings without a sidecar file. ``limit``: length of ``listen_first``.

    Raises ``InputError`` when ``results_dir`` is not a folder, ``since`` is not a date or
    ``agent_pattern`` not a regex with a group ``agent``. A folder that cannot be read is skipped
    (``skipped``: folder name → reason), never raised.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise InputError(f"results folder {str(root)!r} {'is not a folder' if root.exists() else 'does not exist'}: "
                         f"give the folder the analyses wrote to (analyze --out / analyze-inbox --out, "
                         f"default results)")
    cutoff = parse_since(since) if since is not None else None
    pattern = compile_agent_pattern(agent_pattern) if agent_pattern else None
    report = CrossCallReport(results_dir=str(root), since=cutoff)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        analysis = _read_analysis(folder, report.skipped)
        if analysis is None:
            continue
        if cutoff is not None and _aware(analysis.created_at) < cutoff:
            report.left_out += 1
            continue
        report.calls.append(call_row(folder, analysis, pattern))
    report.calls.sort(key=lambda c: (c.created_at, c.folder))
    report.agents = agent_rows(report.calls)
    report.listen_first = listen_first(report.calls, limit)
    return report


def _read_analysis(folder: Path, skipped: dict[str, str]) -> StoredAnalysis | None:
    file = folder / ANALYSIS_FILE
    if not file.is_file():
        skipped[folder.name] = f"no {ANALYSIS_FILE}: the run did not finish; analyse the recording again"
        return None
    try:
        return StoredAnalysis.model_validate_json(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        skipped[folder.name] = f"{ANALYSIS_FILE} not readable: {exc}"
    except ValidationError as exc:
        error = exc.errors()[0]
        where = f" at {'.'.join(map(str, error['loc']))}" if error["loc"] else ""
        skipped[folder.name] = f"{ANALYSIS_FILE} is not a valid analysis: {error['msg']}{where}"
    return None


# --- helpers -------------------------------------------------------------------------------------

def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _phase_names(lengths: Iterable[dict[str, float]]) -> list[str]:
    return list(dict.fromkeys(name for d in lengths for name in d))


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    return value


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _points(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f} pts"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}".removesuffix(".0")


def _phases(lengths: dict[str, float]) -> str:
    return " · ".join(f"{cell(name)} {seconds:.0f}" for name, seconds in lengths.items()) or "–"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
