"""Standardisation fitted on simulation only and stored with the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Standardizer"]


@dataclass
class Standardizer:
    """x → (x − mean) / scale per feature, with constant features left unscaled.

    Fitted on simulation only: data must not leak into anything the model is trained with
    beyond the unlabelled penalty term.

    >>> s = Standardizer.fit(np.array([[0.0, 1.0], [2.0, 1.0]]))
    >>> s.transform(np.array([[2.0, 1.0]])).tolist()
    [[1.0, 0.0]]
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> "Standardizer":
        x = np.asarray(features, dtype=np.float64)
        mean = x.mean(0)
        scale = x.std(0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        return cls(mean=mean, scale=scale)

    def transform(self, features: np.ndarray) -> np.ndarray:
        return ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "standardize", "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], n_features: int) -> "Standardizer":
        mean = np.asarray(d["mean"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        if mean.shape != (n_features,) or scale.shape != (n_features,):
            raise ValueError(f"preprocessing has {mean.shape} / {scale.shape} entries for {n_features} features")
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("preprocessing holds non-finite or non-positive values")
        return cls(mean=mean, scale=scale)
