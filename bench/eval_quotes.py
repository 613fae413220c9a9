"""Quote attribution on HarperValleyBank calls (../shared/evaldata/hvb-harper-valley, when present):
the share of the LLM's quotes that are verified, misattributed and not found, per analysis.

Each call's two channels (agent, caller) are mixed to mono, as in eval_scorecard.py. On one local
server, the call sentiment flow (default questions: question 4 asks for a quote of the customer,
question 5 for one of the agent) and the sales scorecard flow (default rubric: each criterion's
quote must be the rep's words, each sentiment shift's the customer's) run on every call. Every quote
is then classified with ``callflows.quotes.check_quote`` against the server's transcript of the call
and the speaker roles ``/v1/understanding`` gave (so an error of diarization or of role
identification counts against the quote). To tell the two apart, each quote is also checked against
the true roles: each speaker label is given the role (agent or caller) of the human segments under
most of its words' midpoints, as in eval_scorecard.py; "roles right" counts the calls where
``/v1/understanding`` gave the rep role to exactly the labels the human segments call the agent.

``--before REF`` runs the same flows from that git commit too (a temporary git worktree), for
comparison: code whose quotes were only checked for occurring somewhere in the transcript and never
sent back. Its sentiment answers were free text: a span in quote marks (“…” or "…") of the answers
to questions 4 and 5 is taken as the quote, else the answer counts under "no quote".

Usage: python bench/eval_quotes.py [--before fc8820a] [--llm qwen2.5-coder-1.5b] [--out FILE.json]
(``make setup-demo`` installs the qwen2.5-coder-1.5b weights).
Attribution: HarperValleyBank (Gridspace/Stanford), CC BY 4.0.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from callflows.models import Utterance  # noqa: E402
from callflows.quotes import check_quote, speakers_for  # noqa: E402
from callflows.scorecard import DEFAULT_ROLES  # noqa: E402
from callflows.sentiment import DEFAULT_QUESTIONS, ROLES, quote_side, wants_quote  # noqa: E402
from eval_stt import (  # noqa: E402
    eval_parser, harper_valley_channels, harper_valley_root, role_at, start_server, write_wav,
)

CLASSES = ("verified", "misattributed", "not_found", "no quote")
# Runs in a child process from the code under test (its folder first on sys.path): both flows on each
# call, one Prefect home per code version. An analysis that fails is recorded, not fatal.
RUNNER = """
import json, sys, traceback
from flows.cli import project_env
project_env()
from flows.sentiment import call_sentiment
from flows.scorecard import sales_scorecard
out, calls = sys.argv[1], sys.argv[2:]
failures = {}
for audio in calls:
    for name, run in (("sentiment", call_sentiment), ("scorecard", sales_scorecard)):
        try:
            run(audio=audio, results_dir=out)
        except Exception as exc:
            failures[f"{audio}:{name}"] = f"{type(exc).__name__}: {exc}"[:300]
import callflows
print(json.dumps({"code": callflows.__file__, "failures": failures}))
"""
_QUOTED = re.compile(r"[“\"]([^”\"]{3,})[”\"]")


def mono_calls(root: Path, folder: Path) -> dict[Path, list[tuple[str, int, int]]]:
    """Each call's mono mix (written into ``folder``) → its human segments (role, start ms, end ms)."""
    calls = {}
    for sid, agent, caller, rate, segments in harper_valley_channels(root):
        mono = np.zeros(max(len(agent), len(caller)), np.float32)
        mono[: len(agent)] += agent
        mono[: len(caller)] += caller
        write_wav(folder / f"{sid}.wav", [mono], rate)
        calls[folder / f"{sid}.wav"] = [(s["speaker_role"], s["start_ms"], s["start_ms"] + s["duration_ms"])
                                        for s in segments]
    return calls


def true_roles(body: dict, segments) -> dict[str, str]:
    """Speaker label → ``Sales Rep`` (the human agent) or ``Customer`` (the caller), by the human
    segment under most of the label's words."""
    votes: dict[str, dict[str, int]] = {}
    for w in body.get("words") or []:
        role = role_at(segments, (w["start"] + w["end"]) // 2)
        if role and w.get("speaker"):
            votes.setdefault(w["speaker"], {"agent": 0, "caller": 0})[role] += 1
    return {label: DEFAULT_ROLES[0] if v["agent"] >= v["caller"] else DEFAULT_ROLES[1] for label, v in votes.items()}


def run_flows(code: Path, calls: list[Path], results: Path, url: str, home: Path) -> tuple[dict, float]:
    env = dict(os.environ, ASSEMBLYAI_BASE_URL=url, ASSEMBLYAI_LLM_GATEWAY_BASE_URL=url, CALLFLOWS_HOME=str(home),
               PREFECT_HOME=str(home / "prefect"), PYTHONPATH=str(code))
    env.pop("ASSEMBLYAI_API_KEY", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", RUNNER, str(results), *map(str, calls)], cwd=code, env=env,
                          capture_output=True, text=True, check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if not answer["code"].startswith(str(code)):
        raise RuntimeError(f"the flows ran from {answer['code']}, not from {code}")
    return answer["failures"], time.monotonic() - started


def classify(results: Path, url: str, calls: dict[Path, list]) -> tuple[dict, list[dict]]:
    """(analysis → class → number of quotes, also under the true roles (``true: <class>``), the calls
    whose roles were right and the LLM attempts; one row per quote) over the call folders in ``results``."""
    segments = {path.stem: s for path, s in calls.items()}
    counts = {a: dict.fromkeys([*CLASSES, *(f"true: {c}" for c in CLASSES), "answers", "roles right", "attempts"], 0)
              for a in ("sentiment", "scorecard")}
    rows = []
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        scorecard, sentiment = (json.loads((folder / name).read_text()) if (folder / name).exists() else None
                                for name in ("scorecard.json", "sentiment.json"))
        body = requests.get(f"{url}/v2/transcript/{(scorecard or sentiment)['transcript_id']}", timeout=30).json()
        said = [Utterance.model_validate(u) for u in body["utterances"]]
        truth = true_roles(body, segments[folder.name.rsplit("-", 1)[0]])
        # Each analysis's roles (label → role) and their order (agent side first). Before, sentiment
        # had no roles of its own: the scorecard's, of the same transcript.
        roles = {"scorecard": (scorecard["roles"], DEFAULT_ROLES) if scorecard else None}
        roles["sentiment"] = (sentiment["roles"], ROLES) if sentiment and sentiment.get("roles") else roles["scorecard"]
        quotes = []  # (analysis, quote, side)
        if scorecard:
            quotes += [("scorecard", c["quote"], "agent") for c in scorecard["criteria"]]
            quotes += [("scorecard", s["quote"], "customer") for s in scorecard["sentiment_shifts"]]
        if sentiment:
            for question, answer in zip(DEFAULT_QUESTIONS, sentiment["answers"]):
                if wants_quote(question):
                    quote = answer.get("quote") or next(iter(_QUOTED.findall(answer["answer"])), "")
                    quotes.append(("sentiment", quote, quote_side(question)))
        true_rep = {label for label, role in truth.items() if role == DEFAULT_ROLES[0]}
        for analysis, result in (("scorecard", scorecard), ("sentiment", sentiment)):
            if result:
                mapping, order = roles[analysis]
                counts[analysis]["answers"] += 1
                counts[analysis]["attempts"] += result["llm"].get("attempts", 1)
                counts[analysis]["roles right"] += {k for k, v in mapping.items() if v == order[0]} == true_rep
        for analysis, quote, side in quotes:
            check = check_quote(quote, said, speakers_for(side, *roles[analysis])) if quote else "no quote"
            true = check_quote(quote, said, speakers_for(side, truth, DEFAULT_ROLES)) if quote else "no quote"
            counts[analysis][check] += 1
            counts[analysis][f"true: {true}"] += 1
            rows.append({"call": folder.name, "analysis": analysis, "side": side, "quote": quote, "check": check,
                         "check_with_true_roles": true})
    return counts, rows


def table(rows: dict[str, dict[str, dict[str, int]]]) -> str:
    out = ["| code | analysis | calls (roles right) | quotes | verified | misattributed | not found | no quote "
           "| verified, true roles | misattributed, true roles | LLM requests |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for code, counts in rows.items():
        for analysis, c in counts.items():
            n = sum(c[k] for k in CLASSES)
            share = {k: f"{c[k]} ({c[k] / n:.0%})" if n else "0" for k in c}
            out.append(f"| {code} | {analysis} | {c['answers']} ({c['roles right']}) | {n} | {share['verified']} "
                       f"| {share['misattributed']} | {share['not_found']} | {share['no quote']} "
                       f"| {share['true: verified']} | {share['true: misattributed']} | {c['attempts']} |")
    return "\n".join(out)


def main() -> int:
    parser = eval_parser(__doc__)
    parser.add_argument("--before", default=None, help="git commit to compare with (its flows run too)")
    parser.add_argument("--llm", default="qwen2.5-coder-1.5b", help="the local server's LLM (CALLFLOWS_LOCAL_LLM)")
    parser.add_argument("--calls", type=int, default=None, help="only the first N calls")
    args = parser.parse_args()
    root = harper_valley_root(args.evaldata)
    if root is None:
        return 0
    os.environ["CALLFLOWS_LOCAL_LLM"] = args.llm
    rows, report = {}, {"llm": args.llm, "stt_model": args.stt_model}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "calls").mkdir()
        calls = dict(list(mono_calls(root, tmp / "calls").items())[: args.calls])
        codes = {"after": ROOT}
        if args.before:
            subprocess.run(["git", "worktree", "add", "--detach", str(tmp / "before"), args.before], cwd=ROOT,
                           check=True, capture_output=True)
            codes = {f"before ({args.before})": tmp / "before", **codes}
        proc, url = start_server(tmp / "server", args.stt_model)
        try:
            for name, code in codes.items():
                results = tmp / f"results-{len(rows)}"
                failures, wall = run_flows(code, list(calls), results, url, tmp / f"home-{len(rows)}")
                rows[name], quotes = classify(results, url, calls)
                report[name] = {"counts": rows[name], "quotes": quotes, "failures": failures, "wall_s": round(wall, 1)}
                print(f"{name}: {len(calls)} calls in {wall:.0f} s; failures: {failures or 'none'}", flush=True)
        finally:
            proc.terminate()
            proc.wait()
            if args.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "before")], cwd=ROOT, check=False)
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
