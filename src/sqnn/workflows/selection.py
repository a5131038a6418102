"""The label-free selection rule: which strength of a method a comparison keeps.

Selection rule (the same for every method, never reading a data label)
-----------------------------------------------------------------------
1. Accuracy guard: keep the settings whose simulation AUC (``auc_source``, mean over
   seeds) is within δ (default 0.005) of the best setting of that method.
2. Among those, take the one with the smallest label-free disagreement between data and
   simulation: ``insitu_closure_80`` — the closure |1 − sf_S| + |1 − sf_B| at the 80 %
   working point measured in the enriched regions without data labels (:mod:`sqnn.regions`)
   — when every setting of the comparison has it (a signal-enriched region was given);
   else ``ks_control`` — the KS distance of the score between the domains in the control
   region, background-dominated in both and so nearly free of the signal-fraction
   difference that moves the plain ``ks`` — when every setting has it (a ``--control``
   column was given); otherwise ``domain_auc``, the domain probe on the representation.
   The same metric is used for all methods of one comparison.
3. Settings whose disagreement is within the resolution of the smallest one count as
   equal: the standard error over seeds, or with one seed the statistical error of the
   metric itself (``<metric>_err`` where evaluation gives one). Of those the one with the
   highest ``auc_source`` is taken, and of exact ties the smaller γ.

``disagreement=`` (``--select-by``) can name another label-free metric instead:
``domain_auc`` or ``ks_reweighted`` (simulation reweighted per class to the data signal
fraction that EM estimates from the data scores). Measured on the W-jet case, the latter
is fooled by marginally aligned models, whose EM estimate drifts towards the simulation
fraction: it then picks the strengths that over-correct (background scale factor 2–4).

Without the guard the smallest disagreement always goes with the largest γ and the
worst classifier. ``auc_target`` and the per-class metrics are reported for the chosen
setting but never used to choose it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sqnn.evaluation import METRIC_KEYS

__all__ = [
    "ACCURACY_METRIC",
    "DEFAULT_DELTA",
    "DISAGREEMENT_METRICS",
    "SELECTION_RULE",
    "aggregate",
    "choose_disagreement",
    "select_setting",
]

DEFAULT_DELTA = 0.005
ACCURACY_METRIC = "auc_source"
DISAGREEMENT_METRICS = ("insitu_closure_80", "insitu_closure", "ks_control", "domain_auc", "ks_reweighted")

SELECTION_RULE = (
    "Per method: keep the settings whose mean simulation AUC (auc_source) over seeds is within "
    "delta of the method's best; among them find the smallest mean label-free data/simulation "
    "disagreement (insitu_closure_80, the closure measured in the enriched regions, when every setting "
    "has it, else ks_control when every setting has it, else domain_auc, unless another label-free "
    "metric is named; the same metric for all methods); of the settings whose disagreement is within "
    "the resolution of that smallest one (the standard error over seeds, or with one seed the metric's "
    "own statistical error), take the one with the highest auc_source, and of those the smaller gamma. "
    "Data labels (auc_target, per-class metrics) are never used."
)


def aggregate(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and sample standard deviation over seeds of every numeric metric.

    Keys missing or None in some runs are averaged over the others (``n`` says how many);
    ``std`` is None with fewer than two values.
    """
    keys = list(METRIC_KEYS) + sorted({k for r in runs for k in r} - set(METRIC_KEYS))
    result: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = [
            float(r[key])
            for r in runs
            if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and math.isfinite(float(r[key]))
        ]
        result[key] = {
            "mean": float(np.mean(values)) if values else None,
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values),
        }
    return result


def _mean(setting: Mapping[str, Any], key: str) -> float | None:
    value = setting.get("metrics", {}).get(key, {}).get("mean")
    return None if value is None or not math.isfinite(value) else float(value)


def choose_disagreement(settings_by_method: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """``insitu_closure_80``, else ``ks_control``, when every setting of every method has it; else ``domain_auc``."""
    all_settings = [s for settings in settings_by_method.values() for s in settings]
    for metric in ("insitu_closure_80", "ks_control"):
        if all_settings and all(_mean(s, metric) is not None for s in all_settings):
            return metric
    return "domain_auc"


def select_setting(
    settings: Sequence[Mapping[str, Any]], disagreement: str, delta: float = DEFAULT_DELTA
) -> tuple[int, dict[str, Any]]:
    """Index of the chosen setting and how it was chosen; reads only ``auc_source`` and ``disagreement``."""
    if disagreement not in DISAGREEMENT_METRICS:
        raise ValueError(f"disagreement must be one of {', '.join(DISAGREEMENT_METRICS)}, got {disagreement!r}")
    if not settings:
        raise ValueError("no settings to select from")
    accuracy = [_mean(s, ACCURACY_METRIC) for s in settings]
    known = [a for a in accuracy if a is not None]
    if not known:
        return 0, {"reason": "no setting has a simulation AUC; took the first", "candidates": [settings[0]["gamma"]]}
    best = max(known)
    candidates = [i for i, a in enumerate(accuracy) if a is not None and a >= best - delta]

    def key(i: int) -> tuple[float, float]:
        value = _mean(settings[i], disagreement)
        return (math.inf if value is None else value, float(settings[i]["gamma"]))

    closest = min(candidates, key=key)
    smallest = key(closest)[0]
    # a difference in disagreement below its statistical resolution is no reason to give up accuracy
    resolution = _standard_error(settings[closest], disagreement)
    agreeing = [i for i in candidates if key(i)[0] <= smallest + resolution]
    chosen = min(agreeing, key=lambda i: (-(accuracy[i] or -math.inf), float(settings[i]["gamma"])))
    return chosen, {
        "best_auc_source": best,
        "candidates": [float(settings[i]["gamma"]) for i in candidates],
        "smallest_disagreement": None if math.isinf(smallest) else smallest,
        "resolution": resolution,
        "agreeing": [float(settings[i]["gamma"]) for i in agreeing],
        "disagreement": _mean(settings[chosen], disagreement),
    }


def _standard_error(setting: Mapping[str, Any], key: str) -> float:
    """The resolution of a setting's mean: its standard error over seeds, or with one seed the metric's own
    statistical error (``<key>_err``); 0 when neither is known."""
    stats = setting.get("metrics", {}).get(key, {})
    std, n = stats.get("std"), stats.get("n") or 0
    if std is not None and n >= 2 and math.isfinite(std):
        return float(std) / math.sqrt(n)
    own = _mean(setting, f"{key}_err")
    return float(own) if own is not None else 0.0
