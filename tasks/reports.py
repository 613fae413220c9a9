"""Publish an analysis result: a JSON file under the results folder and a Prefect markdown artifact."""
from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel


def result_dir(results_dir: str, audio_name: str, transcript_id: str) -> Path:
    """``<results_dir>/<audio name>-<first 8 chars of the transcript id>/``: one folder per call."""
    return Path(results_dir) / f"{audio_name}-{transcript_id[:8]}"


@task(name="publish_report")
def publish_report(report: BaseModel, markdown: str, path: str, artifact_key: str) -> str:
    """Write ``report`` as JSON to ``path`` (folders created) and attach ``markdown`` to the flow run as
    the artifact ``artifact_key`` (lower-case letters, digits and dashes). Returns the file path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    create_markdown_artifact(key=artifact_key, markdown=markdown, description=f"Result file: {target}")
    get_run_logger().info("Wrote %s", target)
    return str(target)
