"""`sqnn`: cross-entropy + γ · I(T;S) of the stochastic layer, in bits.

Options (``--config`` YAML ``method_options`` or the estimator's ``method_options``):

- ``region``: which events enter the penalty —
  ``all`` (marginal I(T;S)), ``control`` (only control-region events of both domains),
  ``class-conditional`` (I(T;S|Y): true labels in simulation, the classifier's own
  probability in data, reweighted to the estimated data signal fraction);
- ``estimator``: ``factorized`` (Σ over units, as the reference method) or ``joint``
  (exact over all 2^m codes, m ≤ 16);
- ``warmup``: epochs over which γ rises linearly from 0 (0 = constant γ).
"""

from __future__ import annotations

from typing import Any

import torch

from sqnn import info
from sqnn.methods.base import Batch, Objective

__all__ = ["SQNNObjective", "REGIONS", "ESTIMATORS"]

REGIONS = ("all", "control", "class-conditional")
ESTIMATORS = ("factorized", "joint")


def _rescale_to_prior(probability: torch.Tensor, train_prior: float, target_prior: float) -> torch.Tensor:
    """Bayes-correct P(signal|x) from the training prior to another prior (Saerens et al. 2002)."""
    odds = probability / (1 - probability).clamp(min=1e-6)
    ratio = (target_prior / max(1 - target_prior, 1e-6)) / (train_prior / max(1 - train_prior, 1e-6))
    scaled = odds * ratio
    return scaled / (1 + scaled)


def estimate_prior(probability: torch.Tensor, weight: torch.Tensor, train_prior: float, steps: int = 50) -> float:
    """EM estimate of the signal fraction of unlabelled events from calibrated probabilities.

    The estimate is clamped to [0.02, 0.98] so that it cannot collapse to a class.
    """
    prior = train_prior
    w = weight / weight.sum().clamp(min=1e-12)
    for _ in range(steps):
        posterior = _rescale_to_prior(probability, train_prior, prior)
        new = float((w * posterior).sum().clamp(0.02, 0.98))
        if abs(new - prior) < 1e-6:
            return new
        prior = new
    return prior


class SQNNObjective(Objective):
    name = "sqnn"
    uses_data = True
    options_allowed = ("region", "estimator", "warmup")
    default_network: dict[str, Any] = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False]}

    def __init__(self, gamma: float = 1.0, **options: Any) -> None:
        super().__init__(gamma, **options)
        self.region = str(self.options.get("region", "all"))
        self.estimator = str(self.options.get("estimator", "factorized"))
        self.warmup = int(self.options.get("warmup", 0))
        if self.region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {self.region!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {self.estimator!r}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be non-negative, got {self.warmup}")

    def gamma_at(self, epoch: int) -> float:
        if self.warmup <= 0:
            return self.gamma
        return self.gamma * min(1.0, (epoch + 1) / self.warmup)

    def penalty(self, batch: Batch) -> dict[str, torch.Tensor]:
        theta = torch.cat([batch.sim_theta, batch.data_theta])
        domain = torch.cat(
            [torch.zeros(len(batch.sim_theta), dtype=torch.long), torch.ones(len(batch.data_theta), dtype=torch.long)]
        )
        weight = torch.cat([batch.sim_weight, batch.data_weight])
        joint = self.estimator == "joint"
        if self.region == "control":
            if batch.sim_control is None or batch.data_control is None:
                raise ValueError("region 'control' needs a control-region column (--control COL)")
            weight = weight * torch.cat([batch.sim_control, batch.data_control]).to(weight.dtype)
        if self.region == "class-conditional":
            sim_signal = batch.sim_label.to(theta.dtype)
            data_probability = torch.sigmoid(batch.data_logit.detach()).to(theta.dtype)
            train_prior = float((batch.sim_weight * sim_signal).sum() / batch.sim_weight.sum().clamp(min=1e-12))
            prior = estimate_prior(data_probability, batch.data_weight, train_prior)
            data_signal = _rescale_to_prior(data_probability, train_prior, prior)
            # simulation reweighted per class to the data's estimated signal fraction
            sim_reweight = torch.where(sim_signal > 0.5, prior / max(train_prior, 1e-6), (1 - prior) / max(1 - train_prior, 1e-6))
            weight = weight * torch.cat([sim_reweight, torch.ones_like(data_signal)])
            signal = torch.cat([sim_signal, data_signal])
            condition = torch.stack([1 - signal, signal], dim=1)
            value = info.conditional_mi(theta, domain, condition, weight, joint=joint, n_values=2, prior="balanced")
            return {"penalty": value, "mi_bits": value.detach(), "data_prior": torch.tensor(prior)}
        value = info.mutual_information(theta, domain, weight, joint=joint, n_values=2, prior="balanced")
        return {"penalty": value, "mi_bits": value.detach()}
