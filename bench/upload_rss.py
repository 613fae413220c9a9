"""Benchmark 7's flow process: check and upload one file with the flows' own task, then print
``{"rss_before_upload_bytes", "peak_rss_bytes", "upload_s", "bytes"}`` as the last line (JSON).

Usage: ``python -m bench.upload_rss <file>`` with ``CALLFLOWS_LOCAL_API_URL`` pointing at a local
server (bench/run.py starts one). The peak is this process's ``ru_maxrss``: Prefect's temporary
server runs in a child process and is not counted.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) << 10
    return 0


def main(path: str) -> int:
    from prefect import flow

    from callflows.audio import check_audio
    from tasks.transcription import upload_audio

    @flow(name="bench-upload")
    def upload(path: str) -> dict:
        source = check_audio(path)  # reads the header, hashes the file (streamed)
        before = rss_bytes()
        started = time.monotonic()
        upload_audio(source.value, source.sha256)
        return {"rss_before_upload_bytes": before, "upload_s": round(time.monotonic() - started, 2)}

    report = upload(path)
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report["bytes"] = Path(path).stat().st_size
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
