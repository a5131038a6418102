"""The terminal tables the commands print."""

from __future__ import annotations

from typing import Any

__all__ = ["format_metrics"]

_TABLE_KEYS = ("auc_source", "auc_target", "ks", "ks_control", "domain_auc", "mi_bits", "mi_joint_bits", "sf_signal", "sf_background")


def format_metrics(rows: dict[str, dict[str, Any]], keys: tuple[str, ...] = _TABLE_KEYS) -> str:
    """A fixed-width table, one row per run."""
    width = max([len(name) for name in rows] + [6])
    header = "run".ljust(width) + "".join(k.rjust(15) for k in keys)
    lines = [header, "-" * len(header)]
    for name, metrics in rows.items():
        cells = []
        for key in keys:
            value = metrics.get(key)
            cells.append(("—" if value is None else f"{value:.4f}").rjust(15))
        lines.append(name.ljust(width) + "".join(cells))
    return "\n".join(lines)
