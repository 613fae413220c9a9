"""``python -m local_api``: run the local AssemblyAI-compatible server (also ``callflows local-api``).

Settings come from the environment (see local_api/config.py); flags override them. The server is
healthy within a couple of seconds: speech and LLM models load on the first job / first chat.
"""
from __future__ import annotations

import argparse
import logging
import sys

from .config import ConfigError, load_config


def build_parser(prog: str = "python -m local_api") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Offline AssemblyAI-compatible API server "
                                "(transcripts, captions, LLM Gateway) for callflows.")
    p.add_argument("--host", help="interface to bind (env CALLFLOWS_LOCAL_API_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (env CALLFLOWS_LOCAL_API_PORT, default 8765)")
    p.add_argument("--data-dir", help="uploads and transcripts (env CALLFLOWS_LOCAL_API_DATA, "
                   "default $CALLFLOWS_HOME/local_api)")
    p.add_argument("--stt-model", help="speech model: base | tiny.en (env CALLFLOWS_STT_MODEL, default base)")
    p.add_argument("--llm-model", help="LLM: qwen2.5-coder-1.5b | smollm2-135m (env CALLFLOWS_LOCAL_LLM, "
                   "default the first installed)")
    p.add_argument("--workers", type=int, help="transcription worker threads (env CALLFLOWS_LOCAL_API_WORKERS, "
                   "default 1)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def main(argv: list[str] | None = None, prog: str = "python -m local_api") -> int:
    """Parse ``argv``, print the URL, and serve until interrupted. Returns an exit code."""
    args = build_parser(prog).parse_args(argv)
    try:
        config = load_config(host=args.host, port=args.port, data_dir=args.data_dir,
                             stt_model=args.stt_model, llm_model=args.llm_model, workers=args.workers)
    except ConfigError as e:
        print(f"local_api: {e}", file=sys.stderr)
        return 2
    if config.workers < 0:
        print("local_api: --workers must be >= 0", file=sys.stderr)
        return 2

    import uvicorn

    from .app import create_app

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    auth = "API key required" if config.api_key else "no API key"
    print(f"callflows local AssemblyAI-compatible API on {config.base_url} "
          f"(data {app.state.store.root}, speech model {config.stt_model}, {auth})", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level=args.log_level,
                access_log=args.log_level == "debug", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
