"""The local LLM's contexts (``CALLFLOWS_LLM_PARALLEL``): 4 chat requests at once, 1 context vs 2.

``python -m bench.llm_parallel [--model smollm2-135m] [--tokens 150]``: for each setting, in a fresh
process, one model and two rounds of 4 concurrent requests that share a ~300-token system prompt
(round 1 cold, round 2 with the prompt state cached); prints each round's wall time and the
requests' (seconds, completion_tokens, cached_tokens).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

BLOCK = "Transcript: " + "The customer says the bill is too high and the agent apologises. " * 20


def rounds(model: str, tokens: int) -> list[dict]:
    from local_api.engines.llm import get_llm

    llm = get_llm(model)
    out = []
    for _ in range(2):
        answers: dict[int, tuple] = {}

        def ask(i: int) -> None:
            messages = [{"role": "system", "content": BLOCK},
                        {"role": "user", "content": f"Question {i}: write a story about call {i}."}]
            t = time.monotonic()
            r = llm.chat(messages, max_tokens=tokens, temperature=0)
            answers[i] = (round(time.monotonic() - t, 1), r["completion_tokens"], r["cached_tokens"])

        started = time.monotonic()
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out.append({"wall_s": round(time.monotonic() - started, 1), "requests": [answers[i] for i in range(4)]})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(rounds(args.model, args.tokens)))
        return 0
    for parallel in (1, 2):
        out = subprocess.run([sys.executable, "-m", "bench.llm_parallel", "--child", "--model", args.model,
                              "--tokens", str(args.tokens)],
                             env={**os.environ, "CALLFLOWS_LLM_PARALLEL": str(parallel)},
                             capture_output=True, text=True, check=True)
        for i, r in enumerate(json.loads(out.stdout.strip().splitlines()[-1])):
            print(f"CALLFLOWS_LLM_PARALLEL={parallel} round {i + 1} ({'cold' if i == 0 else 'cached'}): "
                  f"{r['wall_s']} s; (s, completion_tokens, cached_tokens) {r['requests']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
