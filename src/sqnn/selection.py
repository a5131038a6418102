"""Label-free model selection, applied identically to every method.

Rule: among a method's settings (strengths γ, variants), keep those whose mean simulation
AUC (``auc_source``, held-out simulation) lies within ``delta`` of the best of that method;
of these, choose the smallest mean ``ks_reweighted`` — the Kolmogorov–Smirnov distance
between the data score distribution and the simulation score distribution reweighted per
class to the data signal fraction that EM estimates from the data scores. If the classifier
transfers, the two agree whatever the difference in signal fraction; nothing in the rule reads
a data label, so ``auc_target`` and the scale factors are reported, never used to choose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["RULE", "DEFAULT_DELTA", "summarise", "select"]

DEFAULT_DELTA = 0.01
RULE = (
    "among settings with mean auc_source within {delta} of the method's best, "
    "the smallest mean ks_reweighted (simulation reweighted to the EM-estimated data signal fraction)"
)
# keys the rule may read: none of them depends on data labels
LABEL_FREE_KEYS = ("auc_source", "ks_reweighted")


def summarise(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group runs by (family, setting); mean and standard deviation over seeds of every number."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run.get("family", run["method"]), run["setting"]), []).append(run)
    settings = []
    for (family, setting), members in groups.items():
        keys = sorted({k for m in members for k, v in m["metrics"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        mean, std = {}, {}
        for key in keys:
            values = np.array([m["metrics"][key] for m in members if isinstance(m["metrics"].get(key), (int, float))], dtype=float)
            values = values[np.isfinite(values)]
            mean[key] = float(values.mean()) if values.size else math.nan
            std[key] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        first = members[0]
        settings.append({
            "family": family, "setting": setting, "method": first["method"], "gamma": first.get("gamma"),
            "options": first.get("options", {}), "network": first.get("network"), "seeds": len(members),
            "mean": mean, "std": std,
        })
    return settings


def select(settings: Sequence[dict[str, Any]], delta: float = DEFAULT_DELTA) -> dict[str, Any] | None:
    """The setting the rule picks (see the module docstring); None for an empty list."""
    if not settings:
        return None
    best = max(s["mean"].get("auc_source", -math.inf) for s in settings)
    eligible = [s for s in settings if s["mean"].get("auc_source", -math.inf) >= best - delta]

    def disagreement(s: dict[str, Any]) -> float:
        value = s["mean"].get("ks_reweighted", math.nan)
        return math.inf if value is None or math.isnan(value) else value

    chosen = min(eligible, key=disagreement)
    return {**chosen, "rule": RULE.format(delta=delta)}
