"""Paired differences between methods: closure and scale factors on the same held-out events, with their error.

Two methods scored on the same events share most of their statistical fluctuation: the
difference of their closures has a much smaller error than either closure. For every seed
that both methods ran, their stored held-out scores (``scores.parquet``) are on the same
events (the test split is fixed by the seed); the events are resampled together (bootstrap)
and the difference's spread over the resamplings is its statistical error. Over several
seeds the difference is averaged; its error adds the spread over seeds (standard error) and
the statistical error of the average in quadrature.

A difference is called *beyond the errors* when it exceeds two of its errors
(:data:`sqnn.labels.RESOLVED_SIGMA`, :func:`sqnn.labels.verdict`); the tables say "within
errors" otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from sqnn import metrics
from sqnn.runs.scores import Scores

__all__ = ["PAIRED_KEYS", "closures", "paired_differences"]

PAIRED_KEYS = ("closure", "closure_80", "sf_signal", "sf_background", "sf_signal_80", "sf_background_80")
DEFAULT_BOOTSTRAP = 200


def closures(scores: Scores, sim_index: np.ndarray | None = None, data_index: np.ndarray | None = None) -> np.ndarray:
    """The values of :data:`PAIRED_KEYS` on the given events (all by default); needs the data labels."""
    s, d = scores.simulation, scores.data
    if s.label is None or d.label is None:
        raise ValueError("paired differences of closure need the data labels in the stored scores")
    si = slice(None) if sim_index is None else sim_index
    di = slice(None) if data_index is None else data_index
    score_s, label_s, weight_s = s.score[si], s.label[si], s.weight[si]
    score_d, label_d, weight_d = d.score[di], d.label[di], d.weight[di]
    out = {}
    for efficiency, suffix in ((0.5, ""), (0.8, "_80")):
        point = metrics.WorkingPoint.from_simulation(score_s, label_s, weight_s, efficiency)
        sf = [metrics.scale_factor(point, score_s, label_s, weight_s, score_d, label_d, weight_d, c)[0] for c in (1, 0)]
        out[f"closure{suffix}"] = abs(1 - sf[0]) + abs(1 - sf[1])
        out[f"sf_signal{suffix}"], out[f"sf_background{suffix}"] = sf
    return np.array([out[k] for k in PAIRED_KEYS])


def paired_differences(
    runs: Mapping[str, Mapping[int, Scores]], reference: str, *, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Each method's :data:`PAIRED_KEYS` minus the reference's, on the seeds both ran, with the error of the difference.

    ``runs`` maps a method to its stored scores by seed. Methods without a seed in common with
    the reference, or without data labels, are left out.
    """
    if reference not in runs:
        return {}
    rng = np.random.default_rng(seed)
    result: dict[str, dict[str, dict[str, float | None]]] = {}
    draws_by_seed: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for method, by_seed in runs.items():
        if method == reference:
            continue
        common = sorted(set(by_seed) & set(runs[reference]))
        if not common:
            continue
        differences, variances = [], []
        try:
            for s in common:
                ours, theirs = by_seed[s], runs[reference][s]
                n_sim, n_data = len(theirs.simulation), len(theirs.data)
                if len(ours.simulation) != n_sim or len(ours.data) != n_data:
                    raise ValueError("not the same events")
                if s not in draws_by_seed:
                    draws_by_seed[s] = [(rng.integers(0, n_sim, n_sim), rng.integers(0, n_data, n_data))
                                        for _ in range(bootstrap)]
                differences.append(closures(ours) - closures(theirs))
                resampled = np.array([closures(ours, *d) - closures(theirs, *d) for d in draws_by_seed[s]])
                variances.append(_variance(resampled))
        except ValueError:
            continue
        mean = np.mean(differences, axis=0)
        statistical = np.sqrt(np.mean(variances, axis=0) / len(common))
        over_seeds = (np.std(differences, axis=0, ddof=1) / math.sqrt(len(common)) if len(common) > 1
                      else np.zeros(len(PAIRED_KEYS)))
        error = np.sqrt(statistical**2 + over_seeds**2)
        result[method] = {
            key: {"difference": float(v), "error": float(e), "seeds": len(common),
                  "sigma": float(v / e) if e > 0 and math.isfinite(e) else None}
            for key, v, e in zip(PAIRED_KEYS, mean, error)
        }
    return result


def _variance(values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape[1], math.nan)
    for k in range(values.shape[1]):
        finite = values[:, k][np.isfinite(values[:, k])]
        if len(finite) > 1:
            out[k] = float(np.var(finite, ddof=1))
    return out
