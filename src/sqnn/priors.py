"""The signal fraction of unlabelled data, estimated from a classifier's probabilities.

EM as in Saerens, Latinne & Decaestecker (2002): with P(signal|x) calibrated on simulation at
signal fraction π_sim, the fraction π in another sample is the fixed point of
π = mean_x P_π(signal|x), where P_π rescales the odds by π/(1−π) ÷ π_sim/(1−π_sim).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["rescale_to_prior", "estimate_prior", "PRIOR_BOUNDS", "prior_factors", "reweight_to_prior", "signal_fraction"]

# the estimate is clamped here so that it cannot collapse onto one class
PRIOR_BOUNDS = (0.02, 0.98)


def prior_factors(train_prior: float, target_prior: float) -> tuple[float, float]:
    """The (signal, background) weight factors that take a sample at signal fraction ``train_prior`` to ``target_prior``."""
    return target_prior / max(train_prior, 1e-6), (1 - target_prior) / max(1 - train_prior, 1e-6)


def reweight_to_prior(weight: Any, is_signal: Any, train_prior: float, target_prior: float) -> Any:
    """Event weights reweighted per class from ``train_prior`` to ``target_prior`` (numpy or torch, as given).

    The one place a sample is taken to another signal fraction: the class-conditional
    penalty, the label-free closure of evaluation and the report's reweighted distributions.
    """
    signal, background = prior_factors(train_prior, target_prior)
    if isinstance(weight, torch.Tensor):
        factors = [torch.tensor(f, dtype=weight.dtype, device=weight.device) for f in (signal, background)]
        return weight * torch.where(torch.as_tensor(is_signal, device=weight.device), *factors)
    return weight * np.where(is_signal, signal, background)


def signal_fraction(label: np.ndarray, weight: np.ndarray) -> float:
    """The weighted signal fraction of a labelled sample."""
    return float(weight[label == 1].sum() / weight.sum())


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
