"""The inbox at volume as a user sees it: ``python scripts/ui_inbox_check.py [--recordings 8]``.

Runs what ``make up DB=postgres WORKERS=4`` runs (``scripts/stack.py up --db postgres --workers 4``,
in a temporary CALLFLOWS_HOME on free ports, test models), starts one run of the analyze-inbox
deployment over an inbox of distinct two-speaker recordings with ``max_in_flight`` 4, and checks:
through Prefect's API, one analyze-call child run per recording, at most and at some moment exactly 4
running at once (each worker runs one: ``CALLFLOWS_WORKER_LIMIT`` 1); in the classic UI (headless
Chromium, ``apt-get install chromium``), each call run's page shows the inbox run as its Parent Run.
Exits 1 when a check fails, 2 without Chromium.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.inbox_scale import Stack, make_inbox, most_at_once  # noqa: E402
from scripts.ui_check import CHROMIUM, page_text  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=8)
    args = parser.parse_args()
    if not CHROMIUM:
        print("chromium is not installed: apt-get install chromium")
        return 2
    work = Path(tempfile.mkdtemp(prefix="ui-inbox-"))
    work.chmod(0o755)  # PostgreSQL runs as the 'postgres' user: it must reach its data folder under here
    failures = []
    with Stack(work / "home", workers=4) as stack:
        make_inbox(work / "inbox", args.recordings, seed=1)
        run_id = stack.run_inbox({"inbox": str(work / "inbox"), "results_dir": str(work / "results"),
                                  "max_in_flight": 4, "max_tokens": 256})
        [run] = stack.wait([run_id], timeout_s=3600).values()
        calls = stack.children(run_id)
        at_once = most_at_once(calls)
        print(f"inbox run {run_id}: {run['state']['type']}; {len(calls)} analyze-call runs "
              f"({collections.Counter(c['state']['type'] for c in calls)}), at most {at_once} at once")
        if run["state"]["type"] != "COMPLETED":
            failures.append(f"the inbox run ended {run['state']['type']}")
        if len(calls) != args.recordings or any(c["deployment_id"] is None for c in calls):
            failures.append(f"{len(calls)} child runs of the analyze-call deployment, not {args.recordings}")
        if at_once != 4:
            failures.append(f"at most {at_once} calls ran at once, not 4")
        ui = stack.api.removesuffix("/api")
        print(f"--- inbox run page: {ui}/runs/flow-run/{run_id}\n{page_text(f'{ui}/runs/flow-run/{run_id}')[:1500]}\n")
        unlinked = [c["name"] for c in calls  # a child run's page heading names its parent run
                    if f"Parent Run {run['name']}" not in page_text(f"{ui}/runs/flow-run/{c['id']}")]
        if unlinked:
            failures.append(f"these call runs' pages do not show 'Parent Run {run['name']}': {unlinked}")
    print("\n".join(failures) or "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
