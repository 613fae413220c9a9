"""Benchmark 7's flow process: check and upload one file with the flows' own task, then print
``{"rss_before_upload_bytes", "peak_rss_bytes", "upload_s", "bytes"}`` as the last line (JSON).

Usage: ``python -m bench.upload_rss <file>`` with ``CALLFLOWS_LOCAL_API_URL`` pointing at a local
server (bench/run.py starts one). The peak is this process's ``VmHWM``: Prefect's temporary
server runs in a child process and is not counted.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def status_bytes(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) << 10
    return 0


def main(path: str) -> int:
    from prefect import flow

    from callflows.audio import check_audio
    from tasks.transcription import upload_audio

    @flow(name="bench-upload")
    def upload(path: str) -> dict:
        source = check_audio(path)  # reads the header, hashes the file (streamed)
        before = status_bytes("VmRSS")
        started = time.monotonic()
        upload_audio(source.value, source.sha256)
        return {"rss_before_upload_bytes": before, "upload_s": round(time.monotonic() - started, 2)}

    report = upload(path)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child of a process that
    # had the LLM loaded would report the parent's gigabytes.
    report["peak_rss_bytes"] = status_bytes("VmHWM")
    report["bytes"] = Path(path).stat().st_size
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
