"""The stored reweighter of a run: the density ratio data/simulation that its simulation was weighted with.

A run trained on reweighted simulation (the ``reweight`` method, or ``sqnn`` with the option
``reweight``) keeps the fitted ratio as a tree run of its own inside its directory
(``RUN/reweighter``); ``model.json`` names it under ``reweight``. Training writes it with
:func:`save_reweighter`; evaluation weights the held-out simulation with it through the one
loader :func:`load_reweighter`, so that efficiencies are compared with the reweighted
simulation, as an analysis using it would. How the ratio is learnt is
:mod:`sqnn.training.reweight`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.data import Sample
from sqnn.nn.trees import TreeEnsemble
from sqnn.runs.store import load_run, write_run

__all__ = [
    "DEFAULT_CLIP",
    "REWEIGHTER_DIR",
    "Reweighter",
    "effective_fraction",
    "load_reweighter",
    "reweighted",
    "save_reweighter",
]

REWEIGHTER_DIR = "reweighter"
DEFAULT_CLIP = 10.0

@dataclass
class Reweighter:
    """The density ratio data/simulation as a function of the features, and how it is applied."""

    trees: TreeEnsemble
    region: str
    clip: float
    # per class, the factor that took simulation to the data's signal fraction before the ratio was learnt
    data_signal_fraction: float | None = None

    def ratio(self, features: np.ndarray) -> np.ndarray:
        """w(x) = p/(1 − p), clipped to [1/clip, clip]."""
        logit = np.clip(self.trees.decision_function(features), -50.0, 50.0)
        return np.clip(np.exp(logit), 1.0 / self.clip, self.clip)

    def weights(self, sample: Sample) -> np.ndarray:
        """The simulated events' weights times the ratio, each class keeping its total weight."""
        if sample.label is None:
            raise ValueError("reweighting simulation needs its labels (class totals are kept)")
        new = sample.weight * self.ratio(sample.features)
        for cls in (0, 1):
            members = sample.label == cls
            before, after = float(sample.weight[members].sum()), float(new[members].sum())
            if members.any() and after != 0:
                new[members] *= before / after
        return new

    def describe(self, sample: Sample) -> dict[str, Any]:
        """What model.json records, with the effect on ``sample`` (the training simulation)."""
        ratio = self.ratio(sample.features)
        weights = self.weights(sample)
        return {
            "region": self.region,
            "clip": self.clip,
            "data_signal_fraction": self.data_signal_fraction,
            "clipped_fraction": float(np.mean((ratio <= 1.0 / self.clip) | (ratio >= self.clip))),
            "effective_fraction": effective_fraction(weights),
            "run": REWEIGHTER_DIR,
        }


def effective_fraction(weights: np.ndarray) -> float:
    """Kish's effective sample size over the number of events: (Σw)² / Σw² / N."""
    total, squares = float(np.sum(weights)), float(np.sum(np.square(weights)))
    return total * total / squares / len(weights) if squares > 0 and len(weights) else 0.0


def save_reweighter(run_dir: str | Path, reweighter: Reweighter, features: list[str]) -> None:
    """The reweighter as a tree run inside the run directory (``RUN/reweighter``)."""
    meta = {
        "method": "reweighter",
        "trees": reweighter.trees.describe(),
        "features": features,
        "preprocessing": {"kind": "none"},
        "reweight": {"region": reweighter.region, "clip": reweighter.clip,
                     "data_signal_fraction": reweighter.data_signal_fraction},
    }
    write_run(Path(run_dir) / REWEIGHTER_DIR, "trees", reweighter.trees, meta)


def load_reweighter(run_dir: str | Path, meta: dict[str, Any]) -> Reweighter | None:
    """The reweighter a run's ``model.json`` names, or None when it was trained on plain simulation."""
    if not isinstance(meta.get("reweight"), dict):
        return None
    stored = load_run(Path(run_dir) / REWEIGHTER_DIR)
    described = stored.meta.get("reweight") or {}
    return Reweighter(stored.model, str(described.get("region")), float(described.get("clip", DEFAULT_CLIP)),
                      described.get("data_signal_fraction"))


def reweighted(sample: Sample, reweighter: Reweighter | None) -> Sample:
    """``sample`` with the reweighter's weights (itself when there is none)."""
    return sample if reweighter is None else replace(sample, weight=reweighter.weights(sample))
