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
from callflows.models import Transcript, TranscriptionOptions  # noqa: E402
from callflows.settings import Settings  # noqa: E402
from eval_stt import (  # noqa: E402
    eval_parser, harper_valley_channels, harper_valley_root, score_speakers, start_server, transcribe, write_wav,
)

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


def score(transcript: Transcript, segments) -> dict:
    """:func:`eval_stt.score_speakers`, with the agent's talk share error as ``talk_share_error_pp``."""
    out = score_speakers(transcript, segments)
    return dict(out, talk_share_error_pp=out["share_error_pp"]["agent"])


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
                print(f"{call['sid']}: mono: "
                      f"{mono['speakers']} spk, accuracy {mono['accuracy']:.1%}, share error "
                      f"{mono['talk_share_error_pp']:.1f} pp | stereo: accuracy {stereo['accuracy']:.1%}, "
                      f"share error {stereo['talk_share_error_pp']:.1f} pp"
                      + (f" | scorecard {row['scorecard']}" if args.scorecard else ""), flush=True)
        finally:
            proc.terminate()
            proc.wait()
    for mode in ("mono", "stereo_multichannel"):
        acc = np.mean([r[mode]["accuracy"] for r in rows])
        err = np.mean([r[mode]["talk_share_error_pp"] for r in rows])
        print(f"overall {mode}: {len(rows)} calls, mean diarization accuracy {acc:.1%}, "
              f"mean talk share error {err:.1f} pp (max {max(r[mode]['talk_share_error_pp'] for r in rows):.1f})")
    if args.out:
        args.out.write_text(json.dumps({"stt_model": args.stt_model, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
