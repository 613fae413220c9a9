"""The cross-call report (callflows.report, ``callflows report``) on hand-built result folders: five
calls of three agents (named by sidecar file, by pattern, by a URL's last segment), one with a
failed scorecard, one folder without analysis.json and one with a broken one. No server, no flow."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from callflows.errors import InputError
from callflows.llm import LLMUsage
from callflows.metrics import ConversationMetrics, SpeakerMetrics
from callflows.report import agent_name, build_report, compile_agent_pattern, negative_shares, parse_since
from callflows.scorecard import Scorecard, TalkListenAnalysis
from callflows.segmentation import OTHER, Phase, PhaseTimeline
from callflows.sentiment import SentenceSentiment, SentimentReport, count_sentiments
from flows.analyze import CallAnalysis
from flows.cli import main

DURATION_S = 90.0  # thirds: 0-30 s, 30-60 s, 60-90 s
PHASES = ["Introduction", "Complaint", "Resolution", "Goodbye"]
PATTERN = r"^(?P<agent>[^_]+)_"
LLM = LLMUsage(model="m")


def sentences(*items: tuple[str, str, float]) -> list[SentenceSentiment]:
    """(speaker, sentiment, start in s): one sentence of 2 s each."""
    return [SentenceSentiment(text=f"{label.lower()} at {start:.0f}.", start=round(start * 1000),
                              end=round(start * 1000) + 2000, sentiment=label, confidence=0.9, speaker=speaker)
            for speaker, label, start in items]


def sentiment(said: list[SentenceSentiment], unverified: int = 0, roles: dict | None = None) -> SentimentReport:
    counts, by_speaker = count_sentiments(said)
    return SentimentReport(audio="x", transcript_id="t", audio_duration_s=DURATION_S, sentences=said, counts=counts,
                           counts_by_speaker=by_speaker, answers=[], roles=roles or {}, unverified_quotes=unverified,
                           prompt_template="sentiment", llm=LLM)


def metrics(rep: str, share: float, monologue_s: float, questions: int) -> ConversationMetrics:
    """Speakers A and B; ``rep`` has these numbers, the other speaker the rest of the talk."""
    def speaker(label: str) -> SpeakerMetrics:
        s, mono_s, q = (share, monologue_s, questions) if label == rep else (1 - share, 5.0, 9)
        return SpeakerMetrics(speaker=label, talk_time_ms=round(s * 80_000), talk_share=s, talk_listen_ratio=None,
                              longest_monologue_ms=round(mono_s * 1000), interruptions=0, questions=q,
                              words=round(s * 200), words_per_minute=150.0)

    return ConversationMetrics(duration_ms=round(DURATION_S * 1000), speech_ms=80_000, silence_share=0.11,
                               speakers={label: speaker(label) for label in ("A", "B")})


def scorecard(rep: str, share: float, monologue_s: float, questions: int, unverified: int = 0) -> Scorecard:
    roles = {"A": "Sales Rep", "B": "Customer"} if rep == "A" else {"A": "Customer", "B": "Sales Rep"}
    return Scorecard(audio="x", transcript_id="t", roles=roles, metrics=metrics(rep, share, monologue_s, questions),
                     summary="s", talk_listen=TalkListenAnalysis(rep_role="Sales Rep", rep_talk_share=share,
                                                                 ideal_rep_talk_share=0.4, assessment="a"),
                     sentiment_shifts=[], coaching_suggestions=[], criteria=[], unverified_quotes=unverified,
                     prompt_template="scorecard", llm=LLM)


def timeline(*cuts: tuple[str, float]) -> PhaseTimeline:
    """Phases (name, end in s), each starting where the previous ends."""
    starts = [0.0] + [end for _, end in cuts[:-1]]
    return PhaseTimeline(audio="x", transcript_id="t", audio_duration_s=DURATION_S, phase_names=[*PHASES, OTHER],
                         phases=[Phase(name=n, start_time=s, end_time=e) for (n, e), s in zip(cuts, starts)])


def write_call(results: Path, audio: str, tid: str, day: int, **parts) -> Path:
    folder = results / f"{Path(audio.split('?')[0]).stem}-{tid[:8]}"
    folder.mkdir(parents=True)
    analysis = CallAnalysis(audio=audio, transcript_id=tid, audio_duration_s=DURATION_S, result_dir=str(folder),
                            created_at=datetime(2025, 1, day, 9, 30, tzinfo=timezone.utc), **parts)
    (folder / "analysis.json").write_text(analysis.model_dump_json(indent=2), encoding="utf-8")
    return folder


@pytest.fixture()
def results(tmp_path, monkeypatch) -> Path:
    """Recordings in ``inbox/`` (relative paths, as the inbox flow stores them), results in ``results/``."""
    monkeypatch.chdir(tmp_path)
    inbox, out = tmp_path / "inbox", tmp_path / "results"
    inbox.mkdir()
    out.mkdir()
    # Maria's calls: named by their sidecar files (the pattern would say "zed")
    for n in ("0001", "0002"):
        (inbox / f"zed_{n}.json").write_text(json.dumps({"agent": "Maria"}))
    write_call(out, "inbox/zed_0001.wav", "aaaa1111xyz", 10,
               scorecard=scorecard("A", 0.6, 30, 4, unverified=2),
               sentiment=sentiment(sentences(("B", "NEGATIVE", 5), ("B", "NEUTRAL", 10), ("A", "NEGATIVE", 12),
                                             ("B", "POSITIVE", 45), ("B", "NEGATIVE", 70), ("B", "NEGATIVE", 80),
                                             ("A", "NEGATIVE", 84)), unverified=1),
               segmentation=timeline(("Introduction", 10), ("Complaint", 60), ("Resolution", 85), ("Goodbye", 90)))
    write_call(out, "inbox/zed_0002.wav", "bbbb2222xyz", 12,  # the rep is speaker B this time
               scorecard=scorecard("B", 0.4, 20, 6),
               sentiment=sentiment(sentences(("A", "NEUTRAL", 3), ("A", "NEUTRAL", 20), ("B", "NEGATIVE", 40),
                                             ("A", "NEGATIVE", 65), ("A", "POSITIVE", 75))),
               segmentation=timeline(("Introduction", 20), ("Complaint", 50), ("Resolution", 80), ("Goodbye", 90)))
    # Tom's calls: named by the pattern; his sidecar has no "agent"
    (inbox / "tom_0003.json").write_text(json.dumps({"name": "Tom"}))
    write_call(out, "inbox/tom_0003.wav", "cccc3333xyz", 11,
               scorecard=scorecard("A", 0.7, 45, 1, unverified=1),
               sentiment=sentiment(sentences(("B", "NEGATIVE", 8), ("B", "NEUTRAL", 66))),
               segmentation=timeline(("Introduction", 30), ("Complaint", 90)))
    failed = write_call(out, "inbox/tom_0004.wav", "dddd4444xyz", 13,  # scorecard failed: metrics.json stands in
                        sentiment=sentiment(sentences(("A", "POSITIVE", 1), ("B", "NEUTRAL", 15),
                                                      ("B", "NEGATIVE", 88)),
                                            unverified=2, roles={"A": "Agent", "B": "Customer"}),
                        segmentation=timeline(("Introduction", 10), ("Complaint", 70), ("Resolution", 90)),
                        errors={"scorecard": "LLM answer invalid twice"})
    (failed / "metrics.json").write_text(metrics("A", 0.5, 15, 3).model_dump_json())
    # a URL: no sidecar, the pattern matches its last path segment; sentiment failed
    write_call(out, "https://example.com/calls/ann_0005.mp3?sig=abc", "eeee5555xyz", 1,
               scorecard=scorecard("A", 0.3, 10, 2), segmentation=timeline(("Introduction", 90)),
               errors={"sentiment": "HTTP 500"})
    (out / "zed_0006-ffff6666").mkdir()  # a crashed run: no analysis.json
    (out / "zed_0006-ffff6666" / "captions.vtt").write_text("WEBVTT\n")
    (out / "zed_0007-99997777").mkdir()
    (out / "zed_0007-99997777" / "analysis.json").write_text("{")
    (out / "inbox-report.json").write_text("{}")  # a file, not a call folder
    return out


def test_per_call_numbers_come_from_the_stored_results(results):
    report = build_report(results, agent_pattern=PATTERN)
    calls = {c.folder: c for c in report.calls}
    assert [c.folder for c in report.calls] == ["ann_0005-eeee5555", "zed_0001-aaaa1111", "tom_0003-cccc3333",
                                                "zed_0002-bbbb2222", "tom_0004-dddd4444"]  # oldest first
    first = calls["zed_0001-aaaa1111"]
    assert (first.agent, first.agent_source, first.rep_speakers) == ("Maria", "sidecar", ["A"])
    assert (first.rep_talk_share, first.longest_rep_monologue_ms, first.rep_questions) == (0.6, 30_000, 4)
    # the customer (B): 5 sentences, 3 negative; first third 1 of 2, last third 2 of 2 (the rep's don't count)
    assert (first.customer_sentences, first.customer_negative) == (5, 3)
    assert first.customer_negative_share == pytest.approx(0.6)
    assert (first.negative_share_start, first.negative_share_end) == (0.5, 1.0)
    assert first.unverified_quotes == 3  # 1 in the sentiment report + 2 in the scorecard
    assert first.phase_lengths_s == {"Introduction": 10, "Complaint": 50, "Resolution": 25, "Goodbye": 5, OTHER: 0}
    second = calls["zed_0002-bbbb2222"]
    assert (second.rep_speakers, second.rep_talk_share, second.customer_sentences) == (["B"], 0.4, 4)
    assert (second.negative_share_start, second.negative_share_end) == (0.0, 0.5)
    tom = calls["tom_0003-cccc3333"]
    assert (tom.agent, tom.agent_source) == ("tom", "pattern")
    assert tom.notes == ["sidecar inbox/tom_0003.json has no 'agent' text"]
    failed = calls["tom_0004-dddd4444"]  # rep from the sentiment report's roles, numbers from metrics.json
    assert failed.missing == {"scorecard": "LLM answer invalid twice"}
    assert (failed.rep_role, failed.rep_talk_share, failed.longest_rep_monologue_ms) == ("Agent", 0.5, 15_000)
    assert (failed.negative_share_start, failed.negative_share_end, failed.unverified_quotes) == (0.0, 1.0, 2)
    url = calls["ann_0005-eeee5555"]
    assert (url.agent, url.agent_source, url.rep_talk_share) == ("ann", "pattern", 0.3)
    assert url.customer_negative_share is None and url.negative_share_end is None
    assert url.missing == {"sentiment": "HTTP 500"}


def test_agents_are_aggregated_and_the_listen_first_order_is_end_then_quotes(results):
    report = build_report(results, agent_pattern=PATTERN)
    agents = {a.agent: a for a in report.agents}
    assert [a.agent for a in report.agents] == ["ann", "Maria", "tom"]
    maria = agents["Maria"]
    assert maria.calls == 2
    assert maria.rep_talk_share == pytest.approx(0.5) and maria.ideal_rep_talk_share == pytest.approx(0.4)
    assert maria.talk_share_off_ideal == pytest.approx(0.1)  # |0.6-0.4| and |0.4-0.4|
    assert (maria.longest_monologue_ms, maria.mean_longest_monologue_ms) == (30_000, 25_000)
    assert maria.questions_per_call == 5
    assert maria.customer_negative_share == pytest.approx(4 / 9)  # all her customers' sentences together
    assert (maria.negative_share_start, maria.negative_share_end) == (pytest.approx(0.25), pytest.approx(0.75))
    assert maria.phase_lengths_s == {"Introduction": 15, "Complaint": 40, "Resolution": 27.5, "Goodbye": 7.5,
                                     OTHER: 0}
    tom = agents["tom"]
    assert (tom.calls, tom.rep_talk_share, tom.talk_share_off_ideal) == (2, pytest.approx(0.6), pytest.approx(0.2))
    assert (tom.longest_monologue_ms, tom.questions_per_call, tom.customer_negative_share) == (45_000, 2, 0.5)
    # a phase missing from a call counts 0 s there: Resolution (0 + 20) / 2
    assert [tom.phase_lengths_s[p] for p in ("Introduction", "Complaint", "Resolution")] == [20, 60, 10]
    # end 1.0 with 3 unverified quotes, end 1.0 with 2, end 0.5, end 0.0 with 1, no sentiment with 0
    assert [c.folder for c in report.listen_first] == ["zed_0001-aaaa1111", "tom_0004-dddd4444", "zed_0002-bbbb2222",
                                                      "tom_0003-cccc3333", "ann_0005-eeee5555"]
    assert [c.folder for c in build_report(results, limit=2).listen_first] == ["zed_0001-aaaa1111",
                                                                               "tom_0004-dddd4444"]
    assert report.skipped == {
        "zed_0006-ffff6666": "no analysis.json: the run did not finish; analyse the recording again",
        "zed_0007-99997777": "analysis.json is not a valid analysis: Invalid JSON: EOF while parsing an object at "
                             "line 1 column 1"}


def test_without_a_pattern_unnamed_calls_go_to_unknown(results):
    report = build_report(results)
    assert [(a.agent, a.calls) for a in report.agents] == [("Maria", 2), ("unknown", 3)]


def test_since_leaves_out_earlier_calls(results):
    report = build_report(results, since="2025-01-11", agent_pattern=PATTERN)
    assert [c.folder for c in report.calls] == ["tom_0003-cccc3333", "zed_0002-bbbb2222", "tom_0004-dddd4444"]
    assert report.left_out == 2 and [(a.agent, a.calls) for a in report.agents] == [("Maria", 1), ("tom", 2)]
    assert len(build_report(results, since="2025-01-11T09:31").calls) == 2  # Jan 11 09:30 is earlier
    assert len(build_report(results, since="2025-01-11T10:00+02:00").calls) == 3  # 08:00 UTC
    assert "since 2025-01-11 00:00 UTC: 2 earlier calls left out" in report.to_markdown()


def test_markdown_has_the_agent_table_listen_first_and_skipped_folders(results):
    md = build_report("results", agent_pattern=PATTERN).to_markdown()
    assert "5 calls of 3 agents in `results`, analysed 2025-01-01 to 2025-01-13" in md
    assert ("| Maria | 2 | 50% (40%) | 10 pts | 30.0 / 25.0 | 5 | 44% | 25% → 75% "
            "| Introduction 15 · Complaint 40 · Resolution 28 · Goodbye 8 · Other 0 |") in md
    assert "| 1 | `zed_0001-aaaa1111` | Maria | 100% | 50% | 3 |" in md
    assert "| 5 | `ann_0005-eeee5555` | ann | – | – | 0 |" in md
    assert "Skipped 2 folders: `zed_0006-ffff6666` (no analysis.json" in md
    assert "Missing analyses in 2 calls: `ann_0005-eeee5555` (sentiment: HTTP 500); `tom_0004-dddd4444` " \
           "(scorecard: LLM answer invalid twice)." in md
    assert "Notes: `tom_0003-cccc3333`: sidecar inbox/tom_0003.json has no 'agent' text." in md


def test_csv_has_one_row_per_call_and_per_agent(results, tmp_path):
    report = build_report(results, agent_pattern=PATTERN)
    calls_file, agents_file = report.write_csv(tmp_path / "report.csv")
    assert agents_file == tmp_path / "report-agents.csv"
    rows = list(csv.DictReader(io.StringIO(calls_file.read_text())))
    assert [r["folder"] for r in rows] == [c.folder for c in report.calls]
    first = rows[1]
    assert (first["agent"], float(first["rep_talk_share"]), int(first["longest_rep_monologue_ms"])) == ("Maria", 0.6,
                                                                                                       30000)
    assert (float(first["negative_share_start"]), float(first["negative_share_end"])) == (0.5, 1.0)
    assert (float(first["phase_Complaint_s"]), first["created_at"]) == (50.0, "2025-01-10T09:30:00+00:00")
    assert rows[0]["customer_negative_share"] == "" and rows[0]["missing"] == "sentiment: HTTP 500"
    agents = list(csv.DictReader(io.StringIO(agents_file.read_text())))
    assert [(a["agent"], a["calls"]) for a in agents] == [("ann", "1"), ("Maria", "2"), ("tom", "2")]
    assert float(agents[1]["customer_negative_share"]) == 0.4444 and float(agents[1]["phase_Resolution_s"]) == 27.5


def test_agent_name_sources(tmp_path):
    pattern = compile_agent_pattern(PATTERN)
    (tmp_path / "bob_1.json").write_text("not json")
    assert agent_name(str(tmp_path / "bob_1.wav"), pattern) == ("bob", "pattern", [
        f"sidecar {tmp_path / 'bob_1.json'} not read (JSONDecodeError)"])
    (tmp_path / "bob_2.json").write_text('{"agent": " Bea "}')
    assert agent_name(str(tmp_path / "bob_2.wav"), pattern) == ("Bea", "sidecar", [])
    assert agent_name("https://host/a/carl_9.wav", pattern) == ("carl", "pattern", [])
    assert agent_name("https://host/a/carl_9.wav") == ("unknown", "none", [])
    assert agent_name(str(tmp_path / "nounderscore.wav"), pattern) == ("unknown", "none", [])


def test_negative_shares_use_the_trajectorys_thirds():
    said = sentences(("B", "NEGATIVE", 28.5), ("B", "NEUTRAL", 29.5), ("B", "NEGATIVE", 59), ("B", "POSITIVE", 60))
    # midpoints 29.5 s (first third), 30.5 s (middle), 60 s (last third: >= 60), 61 s
    assert negative_shares(said, 90_000) == (1.0, 0.5)
    assert negative_shares([], 90_000) == (None, None)


@pytest.mark.parametrize("call, message", [
    (lambda d: build_report(d / "nowhere"), "results folder '.*nowhere' does not exist: give the folder"),
    (lambda d: build_report(d / "inbox-report.json"), "is not a folder"),
    (lambda d: build_report(d, since="last week"), "--since 'last week' is not a date: give an ISO date"),
    (lambda d: build_report(d, agent_pattern="(?P<agent>"), "agent pattern .* is not a valid regular expression"),
    (lambda d: build_report(d, agent_pattern="^([^_]+)_"), "has no group named agent: write it as"),
])
def test_bad_input_names_the_input_and_the_fix(results, call, message):
    with pytest.raises(InputError, match=message):
        call(results)


def test_parse_since_is_utc_unless_a_zone_is_given():
    assert parse_since("2025-01-31") == datetime(2025, 1, 31, tzinfo=timezone.utc)
    assert parse_since("2025-01-31T14:00+01:00") == datetime(2025, 1, 31, 13, tzinfo=timezone.utc)


def test_cli_prints_the_report_and_writes_csv(results, tmp_path, capsys):
    assert main(["report", str(results), "--agent-pattern", PATTERN, "--csv", str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Calls by agent\n") and "| tom | 2 | 60% (40%) | 20 pts | 45.0 / 30.0 | 2 |" in out
    assert f"CSV written: {tmp_path / 'r.csv'} (one row per call), {tmp_path / 'r-agents.csv'}" in out
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 6  # header + 5 calls


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "callflows: error: results folder 'nowhere' does not exist"),
    (["results", "--since", "2025-13-01"], "callflows: error: --since '2025-13-01' is not a date"),
    (["results", "--csv", "no/such/dir/r.csv"], "callflows: error: --csv no/such/dir/r.csv: cannot write"),
])
def test_cli_bad_input_exits_2(results, capsys, args, message):
    assert main(["report", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.out == ""


def test_cli_report_does_not_import_prefect(results):
    code = ("import sys; from flows.cli import main; code = main(['report', 'results']); "
            "assert code == 0, code; print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=results.parent, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
