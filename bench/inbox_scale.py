"""Benchmark 8: the nightly inbox at volume, on PostgreSQL, 1 worker against 4 (``python -m bench.inbox_scale``).

For each worker count, a fresh stack (``scripts/stack.py up --db postgres --workers N`` in its own
CALLFLOWS_HOME, on free ports; test models, the local LLM with two contexts: ``CALLFLOWS_LLM_PARALLEL=2``)
and one analyze-inbox run of the deployment over an inbox of ``--recordings`` distinct two-speaker
recordings of 4-11 s (:func:`make_inbox`), with ``max_in_flight = N`` and short analyses
(:func:`analysis_parameters`: one question and one criterion by default).
The local server runs its latency profile (``POST /_local/latency``): a transcript is not completed
before ``--transcript-s`` after its creation and an LLM Gateway answer not returned before
``--llm-s``, as a client of the real API sees it, while the engines still do the real work (their
own time, from ``/_local/jobs`` and ``/_local/requests/log``, is reported beside it).

Then, on the 4-worker stack, with a shorter latency profile (``--resilience-transcript-s`` /
``--resilience-llm-s``) and fresh inboxes of as many other recordings:
- two analyze-inbox runs created at the same moment on one inbox: every recording uploaded and
  transcribed once (the local server's counts), each analysed by one of the runs;
- one of the 4 call workers SIGKILLed (its process group: the worker and the call it runs) while
  calls are running: its call stays Running in Prefect, the inbox run reports it failed after
  ``--kill-call-timeout-s``, and the next inbox run analyses it (and whatever else is left) without
  a second upload or transcript; every recording ends with its results on disk.

Counts are exact (asserted); times are wall-clock seconds. Prints a table and writes it with the raw
numbers to ``--out`` (default ``results/bench-inbox.json``). With the defaults it took 94 min on
2 cores (5623 s, ``took_s`` in the JSON).

"Prefect's overhead per call" is the wall time of an analyze-call run beyond its critical path at
the simulated vendor (one transcript, then the scorecard's two LLM requests in a row:
``transcript_s + 2 × llm_s``). The engines work inside those waits, so where they are busier than
the waits (the local LLM, shared by 4 calls at once) their queue shows in it too; their own time is
reported beside it. Pickup is the time from the run's creation to its start on a worker (process
start included).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import requests

from bench.run import LLM_ROUTES, ROOT, SAMPLE, free_port, iso_to_unix, log

PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TEST_MODELS = {"CALLFLOWS_STT_MODEL": "tiny.en", "CALLFLOWS_LOCAL_LLM": "smollm2-135m"}


def analysis_parameters(args) -> dict[str, Any]:
    """analyze-call's inputs for every call, as analyze-inbox passes them on: the first ``--questions``
    default questions and ``--criteria`` rubric criteria, answers of at most ``--max-tokens``."""
    from callflows.scorecard import DEFAULT_RUBRIC
    from callflows.sentiment import DEFAULT_QUESTIONS

    return {"max_tokens": args.max_tokens,
            "questions": [q.model_dump(mode="json") for q in DEFAULT_QUESTIONS[:args.questions]],
            "rubric": [r.model_dump(mode="json") for r in DEFAULT_RUBRIC[:args.criteria]]}


def make_inbox(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` two-speaker recordings of 4-11 s: each one sentence of the agent and one of the
    customer from the sample call (``samples/support_call.json``'s sentence times), in either order
    with a 0.7 s pause; a different pair for every recording of seeds 1, 2, … (distinct content, so
    the local server counts one upload and one transcript for each)."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = json.loads(SAMPLE.with_suffix(".json").read_text())["sentences"]
    spoken = [s for s in truth if s["end_ms"] - s["start_ms"] >= 1400]  # long enough to tell the voices apart
    agent = [s for s in spoken if s["speaker"] == "agent"]
    customer = [s for s in spoken if s["speaker"] == "customer"]
    pairs = [(a, c) for a in agent for c in customer]
    assert seed * count <= len(pairs), f"at most {len(pairs)} distinct recordings over all seeds"
    with wave.open(str(SAMPLE)) as w:
        rate, params, audio = w.getframerate(), w.getparams(), w.readframes(w.getnframes())
    width = params.sampwidth * params.nchannels
    pause = b"\0" * int(0.7 * rate) * width
    out = []
    for i in range(count):
        a, c = pairs[((seed - 1) * count + i) * 7 % len(pairs)]  # 7 and len(pairs) are coprime
        first, second = (a, c) if i % 2 else (c, a)
        cut = [audio[int(s["start_ms"] * rate / 1000) * width:int(s["end_ms"] * rate / 1000) * width]
               for s in (first, second)]
        path = folder / f"call-{seed}-{i:02d}.wav"
        with wave.open(str(path), "wb") as o:
            o.setparams(params)
            o.writeframes(pause.join(cut))
        out.append(path)
    return out


class Stack:
    """``scripts/stack.py`` in its own CALLFLOWS_HOME, and the REST APIs of what it started."""

    def __init__(self, home: Path, workers: int) -> None:
        self.home, self.workers = home, workers
        port = free_port()
        self.local = f"http://127.0.0.1:{free_port()}"
        self.api = f"http://127.0.0.1:{port}/api"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSEMBLYAI_", "PREFECT_API_"))}
        self.env.update(TEST_MODELS, CALLFLOWS_LLM_PARALLEL="2",
                        CALLFLOWS_HOME=str(home), PREFECT_HOME=str(home / "prefect"),
                        CALLFLOWS_PREFECT_PORT=str(port), CALLFLOWS_LOCAL_API_URL=self.local,
                        CALLFLOWS_POSTGRES_PORT=str(free_port()), PREFECT_WORKER_QUERY_SECONDS="1",
                        CALLFLOWS_POOL_CONCURRENCY=str(workers + 2),  # the calls + two overlapping inbox runs
                        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")

    def stack(self, *args: str, timeout_s: float = 900) -> str:
        out = subprocess.run([PYTHON, str(ROOT / "scripts" / "stack.py"), *args], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=timeout_s)
        if out.returncode:
            raise RuntimeError(f"stack.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def __enter__(self) -> "Stack":
        started = time.monotonic()
        self.stack("up", "--db", "postgres", "--workers", str(self.workers))
        log(f"stack up with {self.workers} worker(s) on PostgreSQL in {time.monotonic() - started:.0f} s")
        return self

    def __exit__(self, *exc) -> None:
        log(self.stack("down", timeout_s=300).strip().replace("\n", "; "))

    # the local server
    def latency(self, transcript_s: float, llm_s: float) -> None:
        requests.post(f"{self.local}/_local/latency", json={"transcript_s": transcript_s, "llm_s": llm_s},
                      timeout=10).raise_for_status()

    def reset_counts(self) -> None:
        requests.delete(f"{self.local}/_local/requests", timeout=10).raise_for_status()

    def counts(self) -> dict[str, int]:
        return requests.get(f"{self.local}/_local/requests", timeout=10).json()["counts"]

    def waited_s(self) -> float:
        """Simulated LLM waiting so far (``GET /_local/latency``), s."""
        return requests.get(f"{self.local}/_local/latency", timeout=10).json()["llm_waited_s"]

    def engine_time(self, started: float, ended: float, waited_s: float) -> dict[str, float]:
        """Seconds between the two times: transcription jobs' processing, and the LLM requests' time
        less ``waited_s`` of simulated waiting (the model's work plus the wait for the model, which
        serves one request at a time; concurrent requests add up)."""
        jobs = requests.get(f"{self.local}/_local/jobs", timeout=10).json()["jobs"]
        stt = sum((j.get("processing_ms") or 0.0) / 1000 for j in jobs
                  if j.get("started") and started <= iso_to_unix(j["started"]) <= ended)
        entries = requests.get(f"{self.local}/_local/requests/log", timeout=30).json()["requests"]
        llm = sum(e["end"] - e["start"] for e in entries if e["route"] in LLM_ROUTES and started <= e["start"] <= ended)
        return {"transcription_s": stt, "llm_s": llm - waited_s}

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far: by the whole machine (``/proc/stat``, all cores) and by the local
        server's process (its engines: transcription, sentiment, the LLM)."""
        busy = sum(int(v) for i, v in enumerate(Path("/proc/stat").read_text().split()[1:9]) if i != 3 and i != 4)
        pid = int((self.home / "run" / "local-api.pid").read_text())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return {"machine": busy / CLOCK_TICKS, "local_server": (int(fields[11]) + int(fields[12])) / CLOCK_TICKS}

    # Prefect's REST API
    def get(self, path: str) -> Any:
        r = requests.get(f"{self.api}{path}", timeout=60)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict) -> Any:
        r = requests.post(f"{self.api}{path}", json=body, timeout=60)
        r.raise_for_status()
        return r.json()

    def run_inbox(self, parameters: dict) -> str:
        deployment = self.get("/deployments/name/analyze-inbox/analyze-inbox")
        return self.post(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})["id"]

    def wait(self, ids: list[str], timeout_s: float = 5400) -> dict[str, dict]:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            runs = {i: self.get(f"/flow_runs/{i}") for i in ids}
            if all(r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs.values()):
                return runs
            time.sleep(3)
        raise TimeoutError(f"inbox runs {ids} not final after {timeout_s} s")

    def children(self, parent: str) -> list[dict]:
        return self.post("/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [parent]}}})


def _span(run: dict) -> float:
    return iso_to_unix(run["end_time"]) - iso_to_unix(run["start_time"])


def most_at_once(runs: list[dict]) -> int:
    """The most flow runs that were running at the same moment (from their start and end times)."""
    edges = sorted((iso_to_unix(r[key]), step) for r in runs if r.get("start_time") and r.get("end_time")
                   for key, step in (("start_time", 1), ("end_time", -1)))
    running = most = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start
        running += step
        most = max(most, running)
    return most


def throughput(work: Path, workers: int, args) -> dict[str, Any]:
    """One analyze-inbox run of ``args.recordings`` recordings with ``workers`` call workers."""
    inbox = work / f"inbox-w{workers}"
    recordings = make_inbox(inbox, args.recordings, seed=1)
    with Stack(work / f"home-w{workers}", workers) as stack:
        stack.latency(args.transcript_s, args.llm_s)
        stack.reset_counts()
        waited, cpu = stack.waited_s(), stack.cpu_s()
        started = time.time()
        run_id = stack.run_inbox({"inbox": str(inbox), "results_dir": str(work / f"results-w{workers}"),
                                  "max_in_flight": workers, **analysis_parameters(args)})
        [run] = stack.wait([run_id]).values()
        ended = time.time()
        counts = stack.counts()
        engines = stack.engine_time(started, ended, stack.waited_s() - waited)
        engines.update({f"cpu_{k}_s": v - cpu[k] for k, v in stack.cpu_s().items()})
        calls = stack.children(run_id)
    completed = [c for c in calls if c["state"]["type"] == "COMPLETED"]
    path_s = args.transcript_s + 2 * args.llm_s
    # the engines work inside the simulated waits; where they are busier than that, it shows here too
    overhead = [_span(c) - path_s for c in completed]
    pickup = [iso_to_unix(c["start_time"]) - iso_to_unix(c["created"]) for c in completed]
    result = {"workers": workers, "state": run["state"]["type"], "wall_s": ended - started,
              "calls": len(calls), "completed": len(completed), "uploads": counts.get("POST /v2/upload", 0),
              "transcripts": counts.get("POST /v2/transcript", 0), "engines": engines,
              "overhead_per_call_s": statistics.median(overhead) if overhead else None,
              "pickup_s": statistics.median(pickup) if pickup else None,
              "call_wall_s": statistics.median([_span(c) for c in completed]) if completed else None,
              "most_calls_at_once": most_at_once(calls)}
    log(f"{workers} worker(s): {json.dumps(result)}")
    # every call ran once to an end (the test LLM may break an analysis's JSON: that call ends Failed)
    assert result["calls"] == len(recordings) and all(c["state"]["type"] in ("COMPLETED", "FAILED") for c in calls)
    assert result["uploads"] == result["transcripts"] == len(recordings), result
    return result


def resilience(work: Path, args) -> dict[str, Any]:
    """Overlapping inbox runs, then a SIGKILLed worker, on a 4-worker stack."""
    out: dict[str, Any] = {}
    with Stack(work / "home-resilience", 4) as stack:
        stack.latency(args.resilience_transcript_s, args.resilience_llm_s)
        params = {"results_dir": str(work / "results-resilience"), "max_in_flight": 4,
                  **analysis_parameters(args)}

        inbox = work / "inbox-overlap"
        make_inbox(inbox, args.recordings, seed=2)
        stack.reset_counts()
        ids = [stack.run_inbox({**params, "inbox": str(inbox)}) for _ in range(2)]
        runs = stack.wait(ids)
        counts = stack.counts()
        calls = [c for i in ids for c in stack.children(i)]
        out["overlap"] = {"states": [r["state"]["type"] for r in runs.values()], "calls": len(calls),
                          "calls_per_run": [len(stack.children(i)) for i in ids],
                          "uploads": counts.get("POST /v2/upload", 0), "transcripts": counts.get("POST /v2/transcript", 0)}
        log(f"overlapping runs: {out['overlap']}")
        assert out["overlap"]["calls"] == out["overlap"]["uploads"] == out["overlap"]["transcripts"] == args.recordings

        inbox = work / "inbox-kill"
        make_inbox(inbox, args.recordings, seed=3)
        stack.reset_counts()
        first = stack.run_inbox({**params, "inbox": str(inbox), "call_timeout_s": args.kill_call_timeout_s})
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:  # kill once a few calls are running and some are done
            kids = stack.children(first)
            if sum(c["state"]["type"] == "COMPLETED" for c in kids) >= 2 and \
                    sum(c["state"]["type"] == "RUNNING" for c in kids) >= 2:
                break
            time.sleep(2)
        victim = int((stack.home / "run" / "worker-2.pid").read_text())
        os.killpg(victim, signal.SIGKILL)
        killed_at = time.time()
        log(f"SIGKILLed worker-2 (process group {victim})")
        [run] = stack.wait([first]).values()
        kids = stack.children(first)
        lost = [c for c in kids if c["state"]["type"] not in ("COMPLETED", "FAILED")]
        second = stack.run_inbox({**params, "inbox": str(inbox)})
        [again] = stack.wait([second]).values()
        rerun = stack.children(second)
        counts = stack.counts()
        results = list((work / "results-resilience").glob("call-3-*/analysis.json"))
        out["kill"] = {"first_state": run["state"]["type"], "lost_calls": len(lost),
                       "first_run_ended_after_kill_s": iso_to_unix(run["end_time"]) - killed_at,
                       "second_state": again["state"]["type"], "second_run_calls": len(rerun),
                       "uploads": counts.get("POST /v2/upload", 0), "transcripts": counts.get("POST /v2/transcript", 0),
                       "results_on_disk": len(results)}
        log(f"killed worker: {out['kill']}")
        assert out["kill"]["transcripts"] == args.recordings and out["kill"]["results_on_disk"] == args.recordings
        assert again["state"]["type"] == "COMPLETED"
    return out


def table(one: dict, four: dict, res: dict | None, args) -> list[tuple[str, str, str, str]]:
    rows = [("inbox of %d calls, 4 workers vs 1: wall time" % args.recordings, f"{four['wall_s']:.0f} s",
             f"{one['wall_s']:.0f} s", f"{four['wall_s'] / one['wall_s']:.3f} (goal ≤ 0.30)")]
    for r in (one, four):
        rows.append((f"{r['workers']} worker(s): uploads / transcripts / calls run (all 3 analyses ok)",
                     f"{r['uploads']} / {r['transcripts']} / {r['calls']} ({r['completed']})", f"{args.recordings} each",
                     "exact"))
        rows.append((f"{r['workers']} worker(s): most analyze-call runs at once", str(r["most_calls_at_once"]),
                     f"max_in_flight {r['workers']}", ""))
        rows.append((f"{r['workers']} worker(s): per call wall / Prefect overhead / pickup (medians)",
                     f"{r['call_wall_s']:.1f} / {r['overhead_per_call_s']:.1f} / {r['pickup_s']:.1f} s",
                     f"critical path {args.transcript_s + 2 * args.llm_s:.0f} s", ""))
        rows.append((f"{r['workers']} worker(s): transcription jobs; LLM requests less the simulated wait (model + its queue)",
                     f"{r['engines']['transcription_s']:.0f} s, {r['engines']['llm_s']:.0f} s",
                     f"{r['wall_s']:.0f} s wall", ""))
        e = r["engines"]
        rows.append((f"{r['workers']} worker(s): CPU of the local server (its engines) / of the whole machine",
                     f"{e['cpu_local_server_s']:.0f} / {e['cpu_machine_s']:.0f} s "
                     f"({e['cpu_local_server_s'] / e['cpu_machine_s']:.0%})",
                     f"{os.cpu_count() * r['wall_s']:.0f} s on {os.cpu_count()} cores", ""))
    if res:
        o, k = res["overlap"], res["kill"]
        rows.append(("two overlapping inbox runs: calls / uploads / transcripts",
                     f"{o['calls']} ({'+'.join(map(str, o['calls_per_run']))}) / {o['uploads']} / {o['transcripts']}",
                     f"{args.recordings} each", "exact"))
        rows.append(("1 of 4 workers SIGKILLed: calls left Running, first run ended after the kill",
                     f"{k['lost_calls']}, {k['first_run_ended_after_kill_s']:.0f} s", "", ""))
        rows.append(("…next inbox run: calls / uploads / transcripts / results on disk",
                     f"{k['second_run_calls']} / {k['uploads']} / {k['transcripts']} / {k['results_on_disk']}",
                     f"{args.recordings} transcripts, {args.recordings} results", "exact"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=24)
    # AssemblyAI: "the vast majority of files … complete in under 45 seconds" (FAQ, "How long does it
    # take to transcribe a file?"); 15 s for a structured LLM Gateway answer of a few hundred tokens
    parser.add_argument("--transcript-s", type=float, default=45.0, help="latency profile: transcript, s")
    parser.add_argument("--llm-s", type=float, default=15.0, help="latency profile: LLM Gateway answer, s")
    parser.add_argument("--resilience-transcript-s", type=float, default=8.0)
    parser.add_argument("--resilience-llm-s", type=float, default=3.0)
    parser.add_argument("--max-tokens", type=int, default=256)
    # few questions and criteria: the local LLM's own compute stays a small part of each call's time,
    # as the vendor's is for a client of the real API
    parser.add_argument("--questions", type=int, default=1, help="the first N default sentiment questions")
    parser.add_argument("--criteria", type=int, default=1, help="the first N default rubric criteria")
    parser.add_argument("--kill-call-timeout-s", type=float, default=150.0,
                        help="call_timeout_s of the inbox run whose worker is killed")
    parser.add_argument("--skip-resilience", action="store_true")
    parser.add_argument("--work", type=Path, default=ROOT / ".callflows" / "bench-inbox")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench-inbox.json")
    args = parser.parse_args(argv)
    if args.work.exists():
        subprocess.run(["rm", "-rf", str(args.work)], check=True)
    args.work.mkdir(parents=True)
    started = time.monotonic()
    one = throughput(args.work, 1, args)
    four = throughput(args.work, 4, args)
    res = None if args.skip_resilience else resilience(args.work, args)
    rows = table(one, four, res, args)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'benchmark 8':<{width}} | measured | against | ratio")
    for r in rows:
        print(f"{r[0]:<{width}} | {r[1]} | {r[2]} | {r[3]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                    "one_worker": one, "four_workers": four, "resilience": res,
                                    "took_s": time.monotonic() - started}, indent=2))
    log(f"written {args.out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
