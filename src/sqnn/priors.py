"""The signal fraction of unlabelled data, estimated from a classifier's probabilities.

EM as in Saerens, Latinne & Decaestecker (2002): with P(signal|x) calibrated on simulation at
signal fraction π_sim, the fraction π in another sample is the fixed point of
π = mean_x P_π(signal|x), where P_π rescales the odds by π/(1−π) ÷ π_sim/(1−π_sim).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["rescale_to_prior", "estimate_prior", "PRIOR_BOUNDS"]

# the estimate is clamped here so that it cannot collapse onto one class
PRIOR_BOUNDS = (0.02, 0.98)


def rescale_to_prior(probability: torch.Tensor, train_prior: float, target_prior: float) -> torch.Tensor:
    """Bayes-correct P(signal|x) from the training prior to another prior."""
    odds = probability / (1 - probability).clamp(min=1e-6)
    ratio = (target_prior / max(1 - target_prior, 1e-6)) / (train_prior / max(1 - train_prior, 1e-6))
    scaled = odds * ratio
    return scaled / (1 + scaled)


def estimate_prior(
    probability: torch.Tensor | np.ndarray,
    weight: torch.Tensor | np.ndarray | None,
    train_prior: float,
    steps: int = 100,
) -> float:
    """EM estimate of the signal fraction of weighted, unlabelled events."""
    p = torch.as_tensor(probability, dtype=torch.float64)
    w = torch.ones_like(p) if weight is None else torch.as_tensor(weight, dtype=torch.float64)
    w = w / w.sum().clamp(min=1e-12)
    prior = float(train_prior)
    for _ in range(steps):
        posterior = rescale_to_prior(p, train_prior, prior)
        new = float((w * posterior).sum().clamp(*PRIOR_BOUNDS))
        if abs(new - prior) < 1e-7:
            return new
        prior = new
    return prior
