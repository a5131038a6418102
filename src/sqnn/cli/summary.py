"""The blocks of numbers the commands print: at most 100 columns, closure first, with uncertainties."""

from __future__ import annotations

from typing import Any

from sqnn.workflows.tables import terminal_metrics, terminal_summary

__all__ = ["format_metrics", "terminal_metrics", "terminal_summary"]


def format_metrics(rows: dict[str, dict[str, Any]]) -> str:
    """One compact block per run (named by the keys of ``rows``)."""
    return "\n\n".join(terminal_metrics(name, "", metrics) for name, metrics in rows.items())
