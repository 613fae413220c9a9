"""What produced an analysis result, and where each prompt version's result is kept.

A result records its ``Provenance``: the template (name and SHA-256 of its text), the parameters that
shape the prompt, the model and its settings, and the flow run. ``version`` is a hash of all of it but
the flow run, so a rerun with the same prompt has the same version (and replaces its own file) and a
rerun with a new prompt has a new one (and is written beside the old):

    <out_dir>/<analysis>.json                      the latest result, whatever its version
    <out_dir>/versions/<analysis>-<version>.json   every prompt version's result
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from callflows.prompts import PromptTemplate

VERSIONS_DIR = "versions"


class Provenance(BaseModel):
    """What produced a result. ``parameters``: the analysis's prompt parameters as JSON values
    (sentiment: questions; scorecard: roles, rubric, ideal_rep_talk_share; segmentation: phases,
    chars_per_caption). ``max_tokens`` None: the schema's bound (``callflows.structured``)."""

    analysis: str = Field(..., description="sentiment, scorecard or segmentation")
    template: str = Field(..., description="template name in prompts/, or <inline>")
    template_sha256: str
    parameters: dict[str, Any]
    model: str
    max_tokens: int | None = None
    temperature: float
    flow_run_id: str | None = None

    @computed_field(description="12 hex digits of the SHA-256 of the fields above but flow_run_id")
    @property
    def version(self) -> str:
        canonical = json.dumps(self.model_dump(exclude={"flow_run_id", "version"}), sort_keys=True,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    @classmethod
    def of(cls, analysis: str, template: PromptTemplate, parameters: dict[str, Any], *, model: str,
           max_tokens: int | None, temperature: float, flow_run_id: str | None = None) -> Provenance:
        """The provenance of a result; ``parameters`` may hold pydantic models (dumped to JSON values)."""
        values = json.loads(json.dumps(parameters, default=lambda m: m.model_dump(mode="json")))
        return cls(analysis=analysis, template=template.name,
                   template_sha256=hashlib.sha256(template.source.encode("utf-8")).hexdigest(), parameters=values,
                   model=model, max_tokens=max_tokens or None, temperature=temperature, flow_run_id=flow_run_id)

    def differences(self, other: Provenance) -> list[str]:
        """What differs from ``other``'s prompt, one line per field (parameters per key)."""
        out = []
        for name in ("template", "template_sha256", "model", "max_tokens", "temperature"):
            if getattr(self, name) != getattr(other, name):
                out.append(f"{name}: {getattr(other, name)!r} → {getattr(self, name)!r}")
        for key in sorted(set(self.parameters) | set(other.parameters)):
            if self.parameters.get(key) != other.parameters.get(key):
                out.append(f"parameters.{key} changed")
        return out

    def version_path(self, out_dir: str | Path) -> Path:
        """``<out_dir>/versions/<analysis>-<version>.json``."""
        return Path(out_dir) / VERSIONS_DIR / f"{self.analysis}-{self.version}.json"


def other_versions(out_dir: str | Path, analysis: str, version: str) -> list[Path]:
    """The result files of ``analysis``'s other prompt versions in ``out_dir``, newest first."""
    found = [p for p in (Path(out_dir) / VERSIONS_DIR).glob(f"{analysis}-*.json")
             if p.stem != f"{analysis}-{version}"]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
