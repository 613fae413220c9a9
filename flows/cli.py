"""The ``callflows`` command.

    callflows local-api [--host H] [--port P] [--data-dir D] [--stt-model M] [--llm-model M]
    callflows analyze AUDIO [--out DIR] [--model M] [--prompt-template T] [--questions FILE]
                            [--rubric FILE] [--speakers-expected N] [--max-tokens N] [--redact-pii [POLICIES]]
                            [--redact-pii-sub hash|entity_name]
    callflows analyze-inbox DIR [--out DIR] [--model M] [--questions FILE] [--rubric FILE]
                                [--max-tokens N] [--max-in-flight N] [--max-recordings N] [--deployment NAME]
                                [--redact-pii [POLICIES]] [--redact-pii-sub hash|entity_name] [--agent-pattern RE]
    callflows compare RESULT_A RESULT_B
    callflows report RESULTS_DIR [--since DATE] [--agent-pattern REGEX] [--csv FILE]

``analyze`` runs the analyze-call flow on one recording (sentiment, scorecard and segmentation,
concurrently, on one transcript), prints the three reports and writes JSON results under DIR. Exit
code 0 when all three succeeded, 1 when one failed (the others are still printed and written; each
failure is one ``callflows: error: <analysis> failed: <error>`` line on stderr) or the transcription
failed, 2 for bad input (before any request). With no ASSEMBLYAI_API_KEY it uses the local server
(started for the run, or already running) and says so in one line.

``analyze-inbox`` runs the analyze-inbox flow on the folder DIR: every new recording analysed, at
most N at a time (in this process, or as runs of ``--deployment`` when given and deployed), the
batch report printed. Exit code 0 when nothing failed, 1 when a recording failed (the report names
it), 2 for bad input.

``compare`` prints two results of one analysis side by side (``callflows.compare``): e.g. a call's
``versions/sentiment-<version>.json`` files from two prompts. Exit code 2 when a file is missing or
not a result, or the two are of different analyses.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from flows.parameters import DEFAULT_PII_POLICIES  # no Prefect import: the environment is set first

HOME_ENV = "CALLFLOWS_HOME"


def project_env() -> Path:
    """Keep Prefect's state inside the working folder and quiet offline (set before importing prefect)."""
    home = Path(os.environ.setdefault(HOME_ENV, str(Path.cwd() / ".callflows"))).resolve()
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # Prefect's SQLite file lives here
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT", "false")
    # With no PREFECT_API_URL each run starts a temporary server: 10-25 s, longer on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    return home


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callflows", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("local-api", help="start the local AssemblyAI-compatible server", add_help=False)
    an = sub.add_parser("analyze", help="analyse one recording and print the report")
    an.add_argument("audio", help="local recording path or http(s) URL")
    an.add_argument("--out", default="results", help="folder for JSON results (default: results)")
    an.add_argument("--model", default=None, help="LLM Gateway model")
    an.add_argument("--prompt-template", default="sentiment",
                    help="sentiment prompt: template name in prompts/ or template text")
    an.add_argument("--speakers-expected", type=int, default=0, help="exact number of speakers, only if certain")
    ib = sub.add_parser("analyze-inbox", help="analyse every new recording of a folder and print the batch report")
    ib.add_argument("inbox", help="folder of recordings")
    ib.add_argument("--out", default="results", help="folder for results and the ledger (default: results)")
    for command in (an, ib):
        command.add_argument("--questions", type=Path, default=None,
                             help="JSON file with a list of {question, context, answer_format}")
        command.add_argument("--rubric", type=Path, default=None, help="JSON file with a list of {name, options}")
        command.add_argument("--max-tokens", type=int, default=0,
                             help="answer limit per LLM request (default 0: enough for the longest allowed answer)")
        command.add_argument("--redact-pii", nargs="?", const=",".join(DEFAULT_PII_POLICIES), default=None,
                             metavar="POLICIES",
                             help="redact personal data in the transcript before any analysis: AssemblyAI's policy "
                                  f"names, comma-separated (default {','.join(DEFAULT_PII_POLICIES)})")
        command.add_argument("--redact-pii-sub", choices=["hash", "entity_name"], default="hash",
                             help="replace redacted text with # marks (default) or the policy's name")
    ib.add_argument("--model", default=None, help="LLM Gateway model")
    ib.add_argument("--max-in-flight", type=int, default=None, help="calls analysed at a time (default 4)")
    ib.add_argument("--max-recordings", type=int, default=None, help="new recordings per run (default 100)")
    ib.add_argument("--agent-pattern", default=None,
                    help="for the cross-call report: regex with a group (?P<agent>...) in the recordings' file names")
    ib.add_argument("--deployment", default=None,
                    help="start runs of this analyze-call deployment (e.g. analyze-call/analyze-call) instead of "
                         "analysing in this process; needs PREFECT_API_URL and a worker")
    cp = sub.add_parser("compare", help="print two results of one analysis side by side")
    cp.add_argument("result_a", type=Path, help="a result file (e.g. results/<call>/versions/sentiment-<v>.json)")
    cp.add_argument("result_b", type=Path, help="another result of the same analysis")
    rp = sub.add_parser("report", help="print a per-agent report over the stored results of many calls")
    rp.add_argument("results_dir", type=Path, help="the results folder (analyze-inbox --out)")
    rp.add_argument("--since", default=None,
                    help="leave out calls analysed before this ISO date or date-time (UTC unless a zone is given)")
    rp.add_argument("--agent-pattern", default=None,
                    help="regex with a group (?P<agent>...) searched in each recording's file name, for "
                         "recordings without a sidecar <name>.json {\"agent\": ...}")
    rp.add_argument("--csv", type=Path, default=None,
                    help="also write one row per call to FILE and one per agent to FILE-agents.csv")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["local-api"]:
        project_env()
        from local_api.__main__ import main as local_api_main

        return local_api_main(argv[1:]) or 0
    args = _parser().parse_args(argv)
    if args.command == "compare":
        return compare(args)
    if args.command == "report":
        return report(args)
    home = project_env()
    return analyze_inbox(args, home) if args.command == "analyze-inbox" else analyze(args, home)


def compare(args) -> int:
    from callflows.compare import compare as compare_results, load_result
    from callflows.errors import InputError

    try:
        table = compare_results(load_result(args.result_a), load_result(args.result_b))
    except InputError as exc:
        print(f"callflows: error: {exc}", file=sys.stderr)
        return 2
    print(f"A = `{args.result_a}`, B = `{args.result_b}`\n\n{table}", end="")
    return 0


def report(args) -> int:
    """``callflows report``: the cross-call report from the stored results (no Prefect, no server)."""
    from callflows.errors import InputError
    from callflows.report import build_report

    try:
        result = build_report(args.results_dir, since=args.since, agent_pattern=args.agent_pattern)
        written = result.write_csv(args.csv) if args.csv is not None else None
    except InputError as exc:
        print(f"callflows: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"callflows: error: --csv {args.csv}: cannot write ({exc.strerror or exc}): give a file in an "
              f"existing folder you can write to", file=sys.stderr)
        return 2
    print(result.to_markdown(), end="")
    if written:
        print(f"\nCSV written: {written[0]} (one row per call), {written[1]} (one row per agent).")
    return 0


def _redaction_parameters(args: argparse.Namespace) -> dict:
    """The flows' redaction parameters from --redact-pii [POLICIES] and --redact-pii-sub ({} without
    --redact-pii); the flow checks the policy names."""
    if args.redact_pii is None:
        return {}
    return {"redact_pii": True, "redact_pii_policies": [p for p in args.redact_pii.split(",") if p.strip()],
            "redact_pii_sub": args.redact_pii_sub}


def _json_parameters(args: argparse.Namespace) -> dict:
    """``questions`` and ``rubric`` from the JSON files named by --questions / --rubric (those given).
    Raises ``OSError`` or ``json.JSONDecodeError`` for a missing or malformed file."""
    return {name: json.loads(path.read_text()) for name in ("questions", "rubric")
            if (path := getattr(args, name)) is not None}


def _local_server(home: Path):
    """Start (or reuse) the local server when no key is configured; None when the real API is used.
    Raises ``RuntimeError`` when it cannot be started."""
    from callflows.localserver import ensure_local_server
    from callflows.settings import Settings

    settings = Settings()
    if settings.uses_local_api and not os.environ.get("CALLFLOWS_API_KEY_SECRET_BLOCK"):
        server = ensure_local_server(settings.api_base_url, home / "logs" / "local_api.log")
        print(f"{settings.describe()} ({'started for this run' if server.started_here else 'already running'}).",
              flush=True)
        return server
    print(settings.describe(), flush=True)
    return None


def analyze_inbox(args: argparse.Namespace, home: Path) -> int:
    from prefect.exceptions import ParameterTypeError

    from callflows.errors import InputError
    from flows.batch import InboxFailedError
    from flows.batch import analyze_inbox as analyze_inbox_flow

    try:
        kwargs = {"inbox": args.inbox, "results_dir": args.out, "deployment": args.deployment or "",  # "": in this process
                  "max_tokens": args.max_tokens, **_json_parameters(args), **_redaction_parameters(args)}
    except (OSError, json.JSONDecodeError) as exc:
        print(f"callflows: error: {exc}", file=sys.stderr)
        return 2
    for name, value in (("model", args.model), ("max_in_flight", args.max_in_flight),
                        ("max_recordings", args.max_recordings), ("agent_pattern", args.agent_pattern)):
        if value is not None:
            kwargs[name] = value
    try:
        server = _local_server(home)
    except RuntimeError as exc:
        print(f"callflows: error: {exc}", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        report = analyze_inbox_flow(**kwargs)
    except InboxFailedError as exc:
        report = exc.report
    except (InputError, ParameterTypeError) as exc:
        print(f"callflows: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
    print()
    print(report.to_markdown())
    print(f"{report.summary()}; report written to {Path(args.out).resolve() / 'inbox-report.json'} "
          f"({time.monotonic() - started:.0f} s).")
    return 1 if report.failed else 0


def analyze(args: argparse.Namespace, home: Path) -> int:
    from callflows.audio import check_audio
    from callflows.errors import CallflowsError, InputError

    try:
        check_audio(args.audio)
        parameters = _json_parameters(args)
    except (CallflowsError, OSError, json.JSONDecodeError) as exc:
        print(f"callflows: error: {exc}", file=sys.stderr)
        return 2

    try:
        server = _local_server(home)
    except RuntimeError as exc:
        print(f"callflows: error: {exc}", file=sys.stderr)
        return 1

    from prefect.exceptions import ParameterTypeError

    from flows.analyze import ANALYSES, AnalysesFailedError, analyze_call

    kwargs = {"audio": args.audio, "results_dir": args.out, "speakers_expected": args.speakers_expected,
              "sentiment_prompt_template": args.prompt_template, "max_tokens": args.max_tokens, **parameters,
              **_redaction_parameters(args)}
    if args.model is not None:
        kwargs["model"] = args.model
    started = time.monotonic()
    try:
        analysis = analyze_call(**kwargs)  # one flow run: the three analyses run concurrently on one transcript
    except AnalysesFailedError as exc:  # the others' results are written and printed
        analysis = exc.analysis
    except (InputError, ParameterTypeError) as exc:  # before any request
        print(f"callflows: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except CallflowsError as exc:  # the shared transcription failed: no analysis could run
        print(f"callflows: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
    for name, (title, _) in ANALYSES.items():
        report = getattr(analysis, name)
        if report is None:
            print(f"callflows: error: {title} failed: {analysis.errors[name]}", file=sys.stderr)
            continue
        print()
        print(report.to_markdown())
    if analysis.usage:
        print(f"Usage: {analysis.usage.summary()} (an estimate at the prices of {analysis.usage.cost.prices_as_of}).")
    print(f"Results written under {Path(args.out).resolve()} ({time.monotonic() - started:.0f} s).")
    return 1 if analysis.errors else 0


if __name__ == "__main__":
    sys.exit(main())
