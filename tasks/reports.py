"""Publish an analysis result: a JSON file under the results folder and a Prefect markdown artifact.

An analysis result with a ``provenance`` (``callflows.provenance``) is kept per prompt version, and its
artifact compares it with the call's previous prompt version, if there is one."""
from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from callflows.compare import Result, compare, load_result
from callflows.errors import InputError
from callflows.provenance import other_versions
from callflows.report import build_report


def result_dir(results_dir: str, audio_name: str, transcript_id: str) -> Path:
    """``<results_dir>/<audio name>-<first 8 chars of the transcript id>/``: one folder per call."""
    return Path(results_dir) / f"{audio_name}-{transcript_id[:8]}"


def _write(report: BaseModel, target: Path) -> None:
    """``report`` as JSON at ``target`` (folders created), replaced atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)


@task(name="publish_report")
def publish_report(report: BaseModel, markdown: str, path: str, artifact_key: str) -> str:
    """Write ``report`` as JSON to ``path`` (folders created) and attach ``markdown`` to the flow run as
    the artifact ``artifact_key`` (lower-case letters, digits and dashes). Returns the file path."""
    target = Path(path)
    _write(report, target)
    create_markdown_artifact(key=artifact_key, markdown=markdown, description=f"Result file: {target}")
    get_run_logger().info("Wrote %s", target)
    return str(target)


@task(name="publish_result")
def publish_result(report: Result, markdown: str, out_dir: str, file_name: str, artifact_key: str) -> str:
    """Write an analysis result twice: as its prompt version's file
    (``<out_dir>/versions/<analysis>-<version>.json``, replacing an earlier run of the same version) and
    as the latest (``<out_dir>/<file_name>``). The artifact ``artifact_key`` is ``markdown``, followed by a
    comparison with the newest result of another prompt version in ``out_dir`` when there is one
    (``callflows.compare``). Returns the latest file's path."""
    logger = get_run_logger()
    provenance = report.provenance
    version_file = provenance.version_path(out_dir)
    _write(report, version_file)
    latest = Path(out_dir) / file_name
    _write(report, latest)
    previous = next(iter(other_versions(out_dir, provenance.analysis, provenance.version)), None)
    if previous:
        try:
            comparison = compare(load_result(previous), report, labels=("previous", "this run"))
        except InputError as exc:  # a hand-edited or older file: the result still stands
            logger.warning("Not compared with %s: %s", previous, exc)
        else:
            markdown = (f"{markdown.rstrip()}\n\n## Compared with the previous prompt's result\n\n"
                        f"Previous: `{previous}`.\n\n{comparison}")
    create_markdown_artifact(key=artifact_key, markdown=markdown,
                             description=f"Result file: {version_file} (latest: {latest})")
    logger.info("Wrote %s (prompt version %s) and %s", version_file, provenance.version, latest)
    return str(latest)


@task(name="publish_cross_call_report")
def publish_cross_call_report(results_dir: str, agent_pattern: str | None, artifact_key: str) -> str:
    """The cross-call report over every call stored in ``results_dir`` (``callflows.report.build_report``,
    from the stored results) as the markdown artifact ``artifact_key`` and as ``<results_dir>/report.csv``
    (one row per call) and ``report-agents.csv`` (one per agent). Returns the first CSV's path."""
    report = build_report(results_dir, agent_pattern=agent_pattern)
    calls, _ = report.write_csv(Path(results_dir) / "report.csv")
    create_markdown_artifact(key=artifact_key, markdown=report.to_markdown(),
                             description=f"Every call in {results_dir}; as CSV: {calls}")
    get_run_logger().info("Cross-call report: %d call(s) of %d agent(s); CSV %s", len(report.calls),
                          len(report.agents), calls)
    return str(calls)
