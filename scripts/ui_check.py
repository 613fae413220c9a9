"""What a user sees in Prefect's classic UI, read with headless Chromium (``apt-get install chromium``).

``python scripts/ui_check.py [--keep]``: starts a Prefect server (classic UI, in a temporary
PREFECT_HOME) and the local server with the test models, runs call-sentiment on a 10 s cut of the
sample call with two 503s on the upload (so its task retries), registers the call-sentiment
deployment, then renders with ``chromium --headless --dump-dom`` the flow run page, the upload task
run page and the deployment's run form (parameter names and descriptions), and prints each page's
text with what it must and must not say. Exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import free_port, write_clip  # noqa: E402
from callflows.localserver import start_local_server  # noqa: E402
from scripts.stack import healthy  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def page_text(url: str, budget_ms: int = 20000) -> str:
    """The page's text after its scripts ran for ``budget_ms`` of virtual time."""
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,1200",
                          f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", out.stdout, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the servers running (prints their URLs)")
    args = parser.parse_args()
    if not CHROMIUM:
        print("chromium is not installed: apt-get install chromium")
        return 2
    work = Path(tempfile.mkdtemp(prefix="ui-check-"))
    port, local = free_port(), f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_SERVER_UI_V2_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "CALLFLOWS_STT_MODEL": "tiny.en", "CALLFLOWS_LOCAL_LLM": "smollm2-135m", "CALLFLOWS_RETRY_DELAY_S": "1",
           "ASSEMBLYAI_BASE_URL": local, "ASSEMBLYAI_LLM_GATEWAY_BASE_URL": local}
    env.pop("ASSEMBLYAI_API_KEY", None)
    os.environ.update(env)
    prefect = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                                str(port)], env=env, stdout=open(work / "prefect.log", "wb"), stderr=subprocess.STDOUT)
    server = start_local_server(local, work / "local.log", data_dir=work / "local", env=env)
    failures = []
    try:
        ui = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not healthy(f"{ui}/api/health"):
            time.sleep(1)
        from flows.sentiment import call_sentiment

        clip = write_clip(ROOT / "samples" / "support_call.wav", work / "call.wav", 0, 10)
        requests.post(f"{local}/_local/faults", json={"route": "POST /v2/upload", "status_code": 503, "times": 2},
                      timeout=10).raise_for_status()
        state = call_sentiment(audio=str(clip), results_dir=str(work / "results"), return_state=True)
        flow_run_id = state.state_details.flow_run_id
        api = requests.Session()
        tasks = api.post(f"{ui}/api/task_runs/filter", json={"flow_runs": {"id": {"any_": [str(flow_run_id)]}}},
                         timeout=10).json()
        upload = next(t for t in tasks if t["name"].startswith("upload_audio"))
        deployment_id = call_sentiment.to_deployment("ui-check").apply()
        pages = {
            "flow run": (f"{ui}/runs/flow-run/{flow_run_id}", [f"{len(tasks)} Task runs", "retry 1/4 in"],
                         ["No task runs", "second(s) from now", "Traceback"]),
            "upload task run": (f"{ui}/runs/task-run/{upload['id']}", ["Retry Delay 1s"], ["NaN"]),
            "deployment run form": (f"{ui}/deployments/deployment/{deployment_id}/run",
                                    ["speakers_expected", "Exact number of speakers", "Background that helps answer it"],
                                    ['type "None"']),
        }
        for name, (url, must, must_not) in pages.items():
            text = page_text(url)
            print(f"--- {name}: {url}\n{text[:3000]}\n")
            for needle in must:
                if needle not in text:
                    failures.append(f"{name}: does not say {needle!r}")
            for needle in must_not:
                if needle in text:
                    failures.append(f"{name}: says {needle!r}")
    finally:
        if args.keep:
            print(f"Prefect UI {ui}, local server {local}, files {work}")
        else:
            server.process.terminate()
            prefect.terminate()
    print("\n".join(failures) or "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
