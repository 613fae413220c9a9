"""Scorecard evaluation on HarperValleyBank calls (../shared/evaldata/hvb-harper-valley, when present).

Per call, against the human segment times of each channel (agent, caller):
- talk share error: |measured agent talk share − true agent talk share|, in percentage points, where a
  talk share is the speaker's share of all speech time (callflows.metrics.talk_share);
- diarization accuracy: share of words whose speaker (mapped to agent/caller by best overlap, the
  usual oracle mapping) matches the role of the human segment under the word's midpoint; words under
  no segment or under both roles' segments are not counted;
for the mono mix (speaker_labels) and for the two channels stacked as stereo (multichannel). With
``--scorecard`` it also runs the sales scorecard flow on each mono mix and splits its wall time into
transcription, role identification and LLM (Prefect task run times).

Usage: python bench/eval_scorecard.py [--stt-model base] [--scorecard] [--out FILE.json]
Attribution: HarperValleyBank (Gridspace/Stanford), CC BY 4.0.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from callflows.client import AssemblyAIClient  # noqa: E402
from callflows.metrics import talk_share  # noqa: E402
from callflows.models import Transcript, TranscriptionOptions  # noqa: E402
from callflows.settings import Settings  # noqa: E402
from eval_stt import (  # noqa: E402
    eval_parser, harper_valley_channels, harper_valley_root, start_server, transcribe, write_wav,
)

ROLES = ("agent", "caller")


def load_calls(root: Path, tmp: Path) -> list[dict]:
    calls = []
    for sid, agent, caller, rate, segments in harper_valley_channels(root):
        mono = np.zeros(max(len(agent), len(caller)), np.float32)
        mono[: len(agent)] += agent
        mono[: len(caller)] += caller
        mono_path, stereo_path = tmp / f"{sid}-mono.wav", tmp / f"{sid}-stereo.wav"
        write_wav(mono_path, [mono], rate)
        write_wav(stereo_path, [agent, caller], rate)
        calls.append({"sid": sid, "mono": mono_path, "stereo": stereo_path,
                      "segments": [(s["speaker_role"], s["start_ms"], s["start_ms"] + s["duration_ms"])
                                   for s in segments]})
    return calls


def true_agent_share(segments) -> float:
    time_by_role = {r: 0 for r in ROLES}
    for role, start, end in segments:
        time_by_role[role] += end - start
    return time_by_role["agent"] / max(1, sum(time_by_role.values()))


def role_at(segments, ms: int) -> str | None:
    roles = {role for role, start, end in segments if start <= ms < end}
    return roles.pop() if len(roles) == 1 else None


def score(transcript: Transcript, segments) -> dict:
    """Oracle-map each speaker label to agent/caller by word overlap, then score words and talk share."""
    votes: dict[str, dict[str, int]] = {}
    judged = []
    for w in transcript.words or []:
        role = role_at(segments, (w.start + w.end) // 2)
        if role is None or w.speaker is None:
            continue
        votes.setdefault(w.speaker, {r: 0 for r in ROLES})[role] += 1
        judged.append((w.speaker, role))
    mapping = {label: max(v, key=v.get) for label, v in votes.items()}
    correct = sum(mapping[label] == role for label, role in judged)
    shares = talk_share(transcript.utterances or [])
    agent_share = sum(share for label, share in shares.items() if mapping.get(label) == "agent")
    truth = true_agent_share(segments)
    return {"speakers_found": len(shares), "diarization_accuracy": round(correct / max(1, len(judged)), 4),
            "agent_share": round(agent_share, 4), "true_agent_share": round(truth, 4),
            "talk_share_error_pp": round(abs(agent_share - truth) * 100, 2)}


def scorecard_timings(audio: Path, results: Path) -> dict:
    """Run the sales scorecard flow; split its wall time by task (Prefect task run durations)."""
    from datetime import datetime, timezone

    from flows.cli import project_env

    project_env()  # PREFECT_HOME inside the project, temp-server start-up timeout (before prefect loads)
    from flows.scorecard import sales_scorecard

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterStartTime

    since = datetime.now(timezone.utc)
    started = time.monotonic()
    report = sales_scorecard(audio=str(audio), results_dir=str(results))
    wall = time.monotonic() - started
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(start_time=TaskRunFilterStartTime(after_=since)))
    by_task: dict[str, float] = {}
    for run in runs:
        name = run.name.rsplit("-", 1)[0]  # "wait_for_transcript-487" → "wait_for_transcript"
        by_task[name] = by_task.get(name, 0) + (run.total_run_time.total_seconds() if run.total_run_time else 0)
    def pick(prefix):
        return round(sum(v for k, v in by_task.items() if k.startswith(prefix)), 1)
    transcription = pick("upload_audio") + pick("submit_transcript") + pick("wait_for_transcript")
    return {"wall_s": round(wall, 1), "transcription_s": round(transcription, 1),
            "role_identification_s": pick("identify_speakers"), "llm_s": pick("chat_completion"),
            "roles": report.roles, "unverified_quotes": report.unverified_quotes,
            "criteria": len(report.criteria)}


def main() -> int:
    parser = eval_parser(__doc__)
    parser.add_argument("--scorecard", action="store_true", help="also run the scorecard flow on each mono mix")
    args = parser.parse_args()
    root = harper_valley_root(args.evaldata)
    if root is None:
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        calls = load_calls(root, tmp)
        proc, url = start_server(tmp / "server", args.stt_model)
        try:
            client = AssemblyAIClient(Settings(base_url=url))
            for call in calls:
                mono = score(transcribe(client, url, call["mono"], TranscriptionOptions(speaker_labels=True))[0],
                             call["segments"])
                stereo = score(transcribe(client, url, call["stereo"], TranscriptionOptions(multichannel=True))[0],
                               call["segments"])
                row = {"call": call["sid"], "mono": mono, "stereo_multichannel": stereo}
                if args.scorecard:
                    os.environ["ASSEMBLYAI_BASE_URL"] = os.environ["ASSEMBLYAI_LLM_GATEWAY_BASE_URL"] = url
                    row["scorecard"] = scorecard_timings(call["mono"], tmp / "results")
                rows.append(row)
                print(f"{call['sid']}: true agent share {mono['true_agent_share']:.0%} | mono: "
                      f"{mono['speakers_found']} spk, accuracy {mono['diarization_accuracy']:.1%}, share error "
                      f"{mono['talk_share_error_pp']:.1f} pp | stereo: accuracy {stereo['diarization_accuracy']:.1%}, "
                      f"share error {stereo['talk_share_error_pp']:.1f} pp"
                      + (f" | scorecard {row['scorecard']}" if args.scorecard else ""), flush=True)
        finally:
            proc.terminate()
            proc.wait()
    for mode in ("mono", "stereo_multichannel"):
        acc = np.mean([r[mode]["diarization_accuracy"] for r in rows])
        err = np.mean([r[mode]["talk_share_error_pp"] for r in rows])
        print(f"overall {mode}: {len(rows)} calls, mean diarization accuracy {acc:.1%}, "
              f"mean talk share error {err:.1f} pp (max {max(r[mode]['talk_share_error_pp'] for r in rows):.1f})")
    if args.out:
        args.out.write_text(json.dumps({"stt_model": args.stt_model, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
