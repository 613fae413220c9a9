"""Call segmentation evaluation on HarperValleyBank calls (../shared/evaldata/hvb-harper-valley, when present).

Reference phases are derived (not source ground truth) from the human segments and their Gridspace
dialog-act labels by this rule:

- Introduction: from 0 to the Request;
- Request: starts at the first caller segment labelled ``gridspace_problem_description``;
- Resolution: starts at the first agent segment that starts after the Request starts (the agent's
  first response to it);
- Goodbye: starts at the last agent segment labelled ``gridspace_open_question`` (the closing
  "anything else I can help you with?") and runs to the end of the audio.

Each call's two channels are stacked as a stereo WAV, so the flow transcribes it with multichannel
(speaker = channel). The call segmentation flow runs with phases Introduction, Request, Resolution,
Goodbye. Per call: the absolute error (s) of each predicted boundary, taken as the start of the first
predicted phase of that name (a phase the answer lacks counts as missing), the share of the call's
time whose predicted phase matches the reference, the repairs made, and the flow's wall time split
into transcription, captions and LLM; the same scores for a baseline with no model (the four phases
as equal quarters of the call). With ``--guide`` it also asks the same model the guide's way (raw
VTT in, ``start_time``/``end_time`` in seconds out) and reports whether that answer was a valid
timeline as it came, and its scores after the same repair.

Usage: python bench/eval_segmentation.py [--stt-model base] [--guide] [--out FILE.json]
Attribution: HarperValleyBank (Gridspace/Stanford), CC BY 4.0.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from eval_stt import eval_parser, harper_valley_channels, harper_valley_root, start_server, write_wav  # noqa: E402

PHASES = ["Introduction", "Request", "Resolution", "Goodbye"]
GUIDE_PROMPT = """Analyze the following transcript of a phone call conversation and divide it into the following phases:
{phases}

You will be given the transcript in the format of VTT captions.

For each phase:
1. Identify the start and end timestamps (in seconds)
2. Provide a brief summary of what happened in that phase

Format your response as a JSON object with the following structure:
{{"phases": [{{"name": "Phase Name", "start_time": start_time_in_seconds, "end_time": end_time_in_seconds, "summary": "Brief summary of the phase"}}, ...]}}

Ensure that all parts of the conversation are covered by a phase, using "Other" for any parts that don't fit into the specified phases.

Here's the VTT content:
{vtt}
"""


def reference_boundaries(segments: list[dict]) -> dict[str, float]:
    """Start (s) of Request, Resolution and Goodbye by the rule in the module docstring."""
    segs = sorted(segments, key=lambda s: s["start_ms"])
    request = next(s["start_ms"] for s in segs
                   if s["speaker_role"] == "caller" and "gridspace_problem_description" in s["dialog_acts"])
    resolution = next(s["start_ms"] for s in segs if s["speaker_role"] == "agent" and s["start_ms"] > request)
    goodbye = [s["start_ms"] for s in segs
               if s["speaker_role"] == "agent" and "gridspace_open_question" in s["dialog_acts"]][-1]
    return {"Request": request / 1000, "Resolution": resolution / 1000, "Goodbye": goodbye / 1000}


def reference_phase(boundaries: dict[str, float], t: float) -> str:
    name = "Introduction"
    for phase in ("Request", "Resolution", "Goodbye"):
        if t >= boundaries[phase]:
            name = phase
    return name


def score(phases, duration_s: float, boundaries: dict[str, float], step_s: float = 0.01) -> dict:
    """Boundary errors (s) and the share of time (sampled every ``step_s``) in the right phase."""
    errors, missing = {}, []
    for name, truth in boundaries.items():
        found = next((p.start_time for p in phases if p.name == name), None)
        if found is None:
            missing.append(name)
        else:
            errors[name] = round(abs(found - truth), 2)
    steps = int(duration_s / step_s)
    right = 0
    for i in range(steps):
        t = (i + 0.5) * step_s
        predicted = next((p.name for p in phases if p.start_time <= t < p.end_time), phases[-1].name)
        right += predicted == reference_phase(boundaries, t)
    return {"boundary_error_s": errors, "missing": missing,
            "mean_boundary_error_s": round(sum(errors.values()) / len(errors), 2) if errors else None,
            "time_accuracy": round(right / max(steps, 1), 4)}


def equal_quarters(duration_s: float) -> list:
    """Baseline with no model: the four phases as equal quarters of the call."""
    from callflows.segmentation import Phase

    step = duration_s / len(PHASES)
    return [Phase(name=n, start_time=i * step, end_time=(i + 1) * step) for i, n in enumerate(PHASES)]


def guide_way(url: str, transcript_id: str, duration_s: float, boundaries: dict[str, float]) -> dict:
    """The guide's method with the same model: raw VTT in, times out; validity as returned, then repaired."""
    from pydantic import BaseModel

    from callflows.client import LLMGatewayClient
    from callflows.models import ChatCompletionRequest, ChatMessage
    from callflows.segmentation import OTHER, RawPhase, TimelineError, repair_phases, timeline_problems, Phase
    from callflows.settings import Settings
    from callflows.structured import parse_answer, response_format_for

    class GuidePhase(BaseModel):
        name: str
        start_time: float
        end_time: float
        summary: str

    class GuideAnswer(BaseModel):
        phases: list[GuidePhase]

    import requests

    vtt = requests.get(f"{url}/v2/transcript/{transcript_id}/vtt", timeout=30).text
    names = [*PHASES, OTHER]
    request = ChatCompletionRequest(
        model="claude-sonnet-4-5-20250929", max_tokens=1500, temperature=0,
        messages=[ChatMessage(role="user", content=GUIDE_PROMPT.format(phases=", ".join(PHASES), vtt=vtt))],
        response_format=response_format_for(GuideAnswer, "call_phases"))
    started = time.monotonic()
    completion = LLMGatewayClient(Settings(base_url=url, llm_gateway_base_url=url)).chat_completion(request)
    llm_s = round(time.monotonic() - started, 1)
    try:
        answer = parse_answer(completion.content, GuideAnswer)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"valid_as_returned": False, "parse_error": str(exc)[:200], "llm_s": llm_s}
    as_returned = [Phase(name=p.name, start_time=max(p.start_time, 0), end_time=max(p.end_time, 0))
                   for p in answer.phases]
    problems = timeline_problems(as_returned, names, duration_s)
    try:
        repaired, repairs = repair_phases([RawPhase(**p.model_dump()) for p in answer.phases], names, duration_s)
    except TimelineError as exc:
        return {"valid_as_returned": False, "problems": problems, "unrepairable": str(exc), "llm_s": llm_s}
    return {"valid_as_returned": not problems, "problems": problems[:5], "repairs": len(repairs),
            "phases": [(p.name, p.start_time, p.end_time) for p in repaired], "llm_s": llm_s,
            **score(repaired, duration_s, boundaries)}


def main() -> int:
    parser = eval_parser(__doc__)
    parser.add_argument("--guide", action="store_true", help="also run the guide's times-from-the-LLM method")
    args = parser.parse_args()
    root = harper_valley_root(args.evaldata)
    if root is None:
        return 0

    from flows.cli import project_env

    project_env()  # PREFECT_HOME inside the project, temp-server start-up timeout (before prefect loads)
    from flows.segmentation import call_segmentation

    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        proc, url = start_server(tmp / "server", args.stt_model)
        os.environ["ASSEMBLYAI_BASE_URL"] = os.environ["ASSEMBLYAI_LLM_GATEWAY_BASE_URL"] = url
        try:
            for sid, agent, caller, rate, segments in harper_valley_channels(root):
                audio = tmp / f"{sid}.wav"
                write_wav(audio, [agent, caller], rate)
                boundaries = reference_boundaries(segments)
                started = time.monotonic()
                timeline = call_segmentation(audio=str(audio), phases=PHASES, results_dir=str(tmp / "results"))
                row = {"call": sid, "duration_s": timeline.audio_duration_s, "reference": boundaries,
                       "phases": [(p.name, p.start_time, p.end_time) for p in timeline.phases],
                       "repairs": timeline.repairs, "attempts": timeline.llm.attempts if timeline.llm else 0,
                       "captions": timeline.captions, "wall_s": round(time.monotonic() - started, 1),
                       "timings_s": timeline.timings_s, **score(timeline.phases, timeline.audio_duration_s, boundaries),
                       "equal_quarters": score(equal_quarters(timeline.audio_duration_s), timeline.audio_duration_s,
                                               boundaries)}
                if args.guide:
                    row["guide"] = guide_way(url, timeline.transcript_id, timeline.audio_duration_s, boundaries)
                rows.append(row)
                print(f"{sid}: {timeline.audio_duration_s:.1f} s, {len(timeline.phases)} phases, time in the right "
                      f"phase {row['time_accuracy']:.1%}, boundary errors {row['boundary_error_s']} missing "
                      f"{row['missing']}, {len(timeline.repairs)} repairs,"
                      f" LLM {timeline.timings_s.get('llm', 0):.1f} s"
                      + (f" | guide way: valid as returned {row['guide'].get('valid_as_returned')}, "
                         f"time accuracy {row['guide'].get('time_accuracy')}" if args.guide else ""), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if rows:
        n = len(rows)
        errors = [e for r in rows for e in r["boundary_error_s"].values()]
        summary = {"calls": n, "mean_time_accuracy": round(sum(r["time_accuracy"] for r in rows) / n, 4),
                   "mean_boundary_error_s": round(sum(errors) / len(errors), 2) if errors else None,
                   "boundaries_missing": sum(len(r["missing"]) for r in rows),
                   "mean_llm_s": round(sum(r["timings_s"].get("llm", 0) for r in rows) / n, 1),
                   "calls_repaired": sum(bool(r["repairs"]) for r in rows),
                   "equal_quarters_mean_time_accuracy": round(sum(r["equal_quarters"]["time_accuracy"] for r in rows)
                                                              / n, 4)}
        if args.guide:
            guide = [r["guide"] for r in rows]
            scored = [g for g in guide if "time_accuracy" in g]
            summary["guide"] = {"valid_as_returned": sum(bool(g.get("valid_as_returned")) for g in guide),
                                "mean_time_accuracy_after_repair": round(sum(g["time_accuracy"] for g in scored)
                                                                         / len(scored), 4) if scored else None}
        print(json.dumps(summary, indent=2))
        if args.out:
            args.out.write_text(json.dumps({"summary": summary, "calls": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
