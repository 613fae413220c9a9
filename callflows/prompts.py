"""Prompt templates: Jinja2 files in ``prompts/`` (or template text), rendered in a sandbox.

``SandboxedEnvironment`` refuses access to Python internals (``__class__``, ``__globals__``, ...);
``StrictUndefined`` makes an undefined variable an error; there is no loader, so a template cannot
include or import files. Every failure is a ``PromptError`` that names the template and the fix.

Note: AssemblyAI's gateway tag ``{{ transcript }}`` is Jinja syntax too; to send it literally write
``{{ '{{ transcript }}' }}``. The flows send speaker-labelled lines themselves instead.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from callflows.errors import PromptError

TEMPLATE_SUFFIX = ".j2"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


def prompts_dir() -> Path:
    """The folder of template files: ``$CALLFLOWS_PROMPTS_DIR`` or the project's ``prompts/``."""
    return Path(os.environ.get("CALLFLOWS_PROMPTS_DIR") or Path(__file__).resolve().parents[1] / "prompts")


def available_templates() -> list[str]:
    return sorted(p.name[: -len(TEMPLATE_SUFFIX)] for p in prompts_dir().glob(f"*{TEMPLATE_SUFFIX}"))


@dataclass(frozen=True)
class PromptTemplate:
    """A template's source and where it came from (``name`` of a file in prompts/, or ``"<inline>"``)."""

    name: str
    source: str


def load_template(name_or_text: str) -> PromptTemplate:
    """Resolve a template parameter: a name of a file in prompts/ (with or without ``.j2``) or the
    template text itself (anything with a newline or Jinja markup).

    Raises ``PromptError`` for an unknown name.
    """
    value = name_or_text or ""
    if not value.strip():
        raise PromptError("prompt template is empty: pass a template name from prompts/ "
                          f"({', '.join(available_templates())}) or the template text")
    if "\n" in value or "{{" in value or "{%" in value or not _NAME_RE.match(value.strip()):
        return PromptTemplate(name="<inline>", source=value)
    name = value.strip()
    stem = name[: -len(TEMPLATE_SUFFIX)] if name.endswith(TEMPLATE_SUFFIX) else name
    path = prompts_dir() / f"{stem}{TEMPLATE_SUFFIX}"
    if not path.is_file():
        raise PromptError(f"unknown prompt template {name!r}: there is no {path}. Use one of "
                          f"{available_templates()} or pass the template text itself")
    return PromptTemplate(name=stem, source=path.read_text(encoding="utf-8"))


_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                            trim_blocks=True, lstrip_blocks=True)


def render(template: PromptTemplate, context: dict[str, Any]) -> str:
    """Render ``template`` with ``context``. Raises ``PromptError`` on a syntax error, an undefined
    variable, or a sandbox violation; the message names the template and the variables it may use."""
    label = f"prompt template {template.name!r}"
    try:
        compiled = _ENV.from_string(template.source)
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError(f"{label} has a syntax error on line {exc.lineno}: {(exc.message or '').rstrip('.')}. "
                          f"Fix the template (Jinja2 syntax)") from None
    try:
        return compiled.render(**context).strip() + "\n"
    except jinja2.UndefinedError as exc:
        raise PromptError(f"{label} uses an undefined variable ({exc.message}). Variables available: "
                          f"{', '.join(sorted(context))}") from None
    except SecurityError as exc:
        raise PromptError(f"{label} tried something the sandbox forbids ({exc}). Templates may only "
                          f"read the variables they are given: {', '.join(sorted(context))}") from None
    except TypeError as exc:
        if "no loader" in str(exc):
            raise PromptError(f"{label} tries to include or import another template; templates are "
                              f"self-contained and cannot read files. Put the text in the template itself") from None
        raise PromptError(f"{label} failed to render: {exc}") from None
    except jinja2.TemplateError as exc:
        raise PromptError(f"{label} failed to render: {exc}") from None
