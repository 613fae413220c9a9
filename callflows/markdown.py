"""Markdown helpers shared by the reports."""
from __future__ import annotations


def cell(text: str) -> str:
    """``text`` made safe for one Markdown table cell: ``|`` escaped, newlines as spaces."""
    return text.replace("|", "\\|").replace("\n", " ")
