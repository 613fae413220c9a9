"""Prompt-lookup speculative decoding (llama-cpp-python's ``LlamaPromptLookupDecoding``) on the
analyses' own prompts: is generation faster with it on this machine?

    .venv/bin/python -m bench.prompt_lookup [--model qwen2.5-coder-1.5b] [--repeats 3] [--tokens 0,2,10]

The prompts are the three analyses' templates rendered over the sample call's script
(``samples/support_call.json``, as captions with speakers A and B), each with its JSON schema as
``response_format`` and temperature 0, so every setting generates the same answer. For each
``num_pred_tokens`` (0: off) the local LLM is loaded with ``CALLFLOWS_LLM_PROMPT_LOOKUP`` set to it;
each prompt is evaluated once first, so the timed requests measure generation (the prompt prefix is
cached). Prints the median seconds per analysis and the tokens generated.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def prompts() -> dict[str, tuple[str, dict]]:
    """analysis → (prompt, response_format) over the sample call's script."""
    from callflows.captions import Caption
    from callflows.metrics import conversation_metrics
    from callflows.models import Utterance
    from callflows.prompts import load_template, render
    from callflows.scorecard import DEFAULT_ROLES, DEFAULT_RUBRIC, answer_model
    from callflows.scorecard import prompt_context as scorecard_context
    from callflows.segmentation import DEFAULT_PHASES, answer_schema_model, check_phase_names
    from callflows.segmentation import prompt_context as segmentation_context
    from callflows.sentiment import DEFAULT_QUESTIONS, SentenceSentiment, answers_model
    from callflows.sentiment import prompt_context as sentiment_context
    from callflows.structured import response_format_for

    script = json.loads((ROOT / "samples" / "support_call.json").read_text())
    label = {"agent": "A", "customer": "B"}
    captions = [Caption(line=i, start=s["start_ms"], end=s["end_ms"], text=s["text"], speaker=label[s["speaker"]])
                for i, s in enumerate(script["sentences"], 1)]
    sentences = [SentenceSentiment(text=c.text, start=c.start, end=c.end, sentiment=s["sentiment"], confidence=1.0,
                                   speaker=c.speaker) for c, s in zip(captions, script["sentences"])]
    utterances = [Utterance(speaker=c.speaker, text=c.text, start=c.start, end=c.end, confidence=1.0) for c in captions]
    metrics = conversation_metrics(utterances, [], script["duration_ms"])
    names = check_phase_names(DEFAULT_PHASES)

    def fmt(model, name):
        return response_format_for(model, name).model_dump(exclude_none=True, by_alias=True)

    return {
        "sentiment": (render(load_template("sentiment"), sentiment_context(captions, DEFAULT_QUESTIONS, sentences)),
                      fmt(answers_model(DEFAULT_QUESTIONS), "sentiment_answers")),
        "scorecard": (render(load_template("scorecard"), scorecard_context(
            captions, {"A": DEFAULT_ROLES[0], "B": DEFAULT_ROLES[1]}, DEFAULT_ROLES, metrics, 0.4, DEFAULT_RUBRIC)),
            fmt(answer_model(DEFAULT_RUBRIC), "sales_scorecard")),
        "segmentation": (render(load_template("segmentation"), segmentation_context(captions, names)),
                         fmt(answer_schema_model(names, len(captions)), "call_phases")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", default="0,2,10", help="num_pred_tokens values to compare (0: off)")
    args = parser.parse_args(argv)
    from local_api.engines.llm import LocalLLM

    todo = prompts()
    rows = []
    for n in [int(v) for v in args.tokens.split(",")]:
        os.environ["CALLFLOWS_LLM_PROMPT_LOOKUP"] = str(n)
        llm = LocalLLM(args.model)
        for name, (prompt, response_format) in todo.items():
            messages = [{"role": "user", "content": prompt}]
            llm.chat(messages, max_tokens=1, temperature=0)  # evaluate the prompt once
            times, out = [], {}
            for _ in range(args.repeats):
                started = time.monotonic()
                out = llm.chat(messages, max_tokens=2000, temperature=0, response_format=response_format)
                times.append(time.monotonic() - started)
            rows.append({"num_pred_tokens": n, "analysis": name, "median_s": round(statistics.median(times), 2),
                         "completion_tokens": out["completion_tokens"], "times_s": [round(t, 2) for t in times]})
            print(json.dumps(rows[-1]), flush=True)
        del llm
    os.environ.pop("CALLFLOWS_LLM_PROMPT_LOOKUP", None)
    print("\n| num_pred_tokens | analysis | median s | tokens |\n|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['num_pred_tokens']} | {r['analysis']} | {r['median_s']} | {r['completion_tokens']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
