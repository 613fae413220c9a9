"""Quote attribution on HarperValleyBank calls (../shared/evaldata/hvb-harper-valley, when present):
the share of the LLM's quotes that are verified, misattributed and not found, per analysis.

Each call's two channels (agent, caller) are mixed to mono, as in eval_scorecard.py. On one local
server, the call sentiment flow (default questions: question 4 asks for a quote of the customer,
question 5 for one of the agent) and the sales scorecard flow (default rubric: each criterion's
quote must be the rep's words, each sentiment shift's the customer's) run on every call. Every quote
is then classified with ``callflows.quotes.check_quote`` against the server's transcript of the call
and the speaker roles ``/v1/understanding`` gave (so an error of diarization or of role
identification counts against the quote).

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
from eval_stt import eval_parser, harper_valley_channels, harper_valley_root, start_server, write_wav  # noqa: E402

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


def mono_calls(root: Path, folder: Path) -> list[Path]:
    calls = []
    for sid, agent, caller, rate, _ in harper_valley_channels(root):
        mono = np.zeros(max(len(agent), len(caller)), np.float32)
        mono[: len(agent)] += agent
        mono[: len(caller)] += caller
        write_wav(folder / f"{sid}.wav", [mono], rate)
        calls.append(folder / f"{sid}.wav")
    return calls


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


def utterances(url: str, transcript_id: str) -> list[Utterance]:
    body = requests.get(f"{url}/v2/transcript/{transcript_id}", timeout=30).json()
    return [Utterance.model_validate(u) for u in body["utterances"]]


def classify(results: Path, url: str) -> dict[str, dict[str, int]]:
    """analysis → class → number of quotes, over every call folder under ``results``; also each
    analysis's LLM attempts."""
    counts = {a: dict.fromkeys([*CLASSES, "answers", "attempts"], 0) for a in ("sentiment", "scorecard")}
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        scorecard, sentiment = (json.loads((folder / name).read_text()) if (folder / name).exists() else None
                                for name in ("scorecard.json", "sentiment.json"))
        said = utterances(url, (scorecard or sentiment)["transcript_id"])
        if scorecard:
            roles = scorecard["roles"]
            rep, customer = (speakers_for(side, "", roles, DEFAULT_ROLES) for side in ("agent", "customer"))
            quotes = [(c["quote"], rep) for c in scorecard["criteria"]]
            quotes += [(s["quote"], customer) for s in scorecard["sentiment_shifts"]]
            for quote, speakers in quotes:
                counts["scorecard"][check_quote(quote, said, speakers)] += 1
            counts["scorecard"]["answers"] += 1
            counts["scorecard"]["attempts"] += scorecard["llm"].get("attempts", 1)
        if sentiment:
            roles = sentiment.get("roles") or (scorecard or {}).get("roles", {})
            sides = ROLES if sentiment.get("roles") else DEFAULT_ROLES  # before: the scorecard's roles
            for question, answer in zip(DEFAULT_QUESTIONS, sentiment["answers"]):
                if not wants_quote(question):
                    continue
                quote = answer.get("quote") or next(iter(_QUOTED.findall(answer["answer"])), "")
                speakers = speakers_for(quote_side(question), "", roles, sides)
                counts["sentiment"][check_quote(quote, said, speakers) if quote else "no quote"] += 1
            counts["sentiment"]["answers"] += 1
            counts["sentiment"]["attempts"] += sentiment["llm"].get("attempts", 1)
    return counts


def table(rows: dict[str, dict[str, dict[str, int]]]) -> str:
    out = ["| code | analysis | calls | quotes | verified | misattributed | not found | no quote | LLM attempts |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for code, counts in rows.items():
        for analysis, c in counts.items():
            n = sum(c[k] for k in CLASSES)
            share = {k: f"{c[k]} ({c[k] / n:.0%})" if n else "0" for k in CLASSES}
            out.append(f"| {code} | {analysis} | {c['answers']} | {n} | {share['verified']} | {share['misattributed']} "
                       f"| {share['not_found']} | {share['no quote']} | {c['attempts']} |")
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
        calls = mono_calls(root, tmp / "calls")[: args.calls]
        codes = {"after": ROOT}
        if args.before:
            subprocess.run(["git", "worktree", "add", "--detach", str(tmp / "before"), args.before], cwd=ROOT,
                           check=True, capture_output=True)
            codes = {f"before ({args.before})": tmp / "before", **codes}
        proc, url = start_server(tmp / "server", args.stt_model)
        try:
            for name, code in codes.items():
                results = tmp / f"results-{len(rows)}"
                failures, wall = run_flows(code, calls, results, url, tmp / f"home-{len(rows)}")
                rows[name] = classify(results, url)
                report[name] = {"counts": rows[name], "failures": failures, "wall_s": round(wall, 1)}
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
