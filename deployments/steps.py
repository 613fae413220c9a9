"""Pull steps for prefect.yaml (run by the worker before each flow run).

``project_root`` gives the absolute path of this checkout, so prefect.yaml's
``set_working_directory`` step needs no machine-specific path or environment variable: the flow runs
in the project root, where the entrypoints (``flows/...``), ``prompts/`` and the default parameters
(``samples/support_call.wav``, ``results``, ``inbox``) resolve. It relies on the editable install
(``pip install -e .``, as the Makefile does), which makes ``deployments`` importable from the
worker's temporary working directory.
"""
from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_root() -> dict[str, str]:
    """``{"directory": "<absolute project root>"}`` for ``{{ project-root.directory }}``."""
    return {"directory": str(PROJECT_ROOT)}
