"""`dann`: domain-adversarial training (Ganin et al. 2016) through a gradient reversal layer.

A small domain head reads the penalised layer — the layer the sqnn penalty acts on — as
the network passes it on when it scores (θ under ``mean`` inference, the bits otherwise;
:meth:`Objective.served_representation`) and learns to tell
simulation from data with the event-weighted cross-entropy, each domain carrying half
of the total weight (so a head that guesses scores ln 2). Between that layer and the
head sits a gradient reversal layer: the identity going forward, ``−λ ×`` the gradient
going back. One backward pass therefore trains the head to find the domain and the
feature extractor to hide it. The head lives in ``self.extra``, so the shared loop's
optimiser updates it.

γ multiplies the domain term. Options:

- ``schedule``: ``constant`` (λ = 1) or ``dann`` — DANN's λ_p = 2 / (1 + exp(−10 p)) − 1
  with the training progress p = (epoch + 1) / ``schedule_epochs`` (capped at 1), so
  the feature extractor ignores the head while the head is still guessing;
- ``schedule_epochs``: epochs over which p runs from 0 to 1 (default 10);
- ``head_hidden``: width of the head's hidden layer (default 32);
- ``regions``, ``region_weight``, ``prior`` (:mod:`sqnn.methods.enriched`): with a
  signal-enriched region the same head also tells data from simulation inside each enriched
  region, simulation reweighted per class to the data's purity there; the advantages are
  averaged and added with ``region_weight``.

The value this penalty reports (and the loop logs and early-stops on) is the head's
advantage over guessing, ln 2 − domain loss, in nats: the quantity the feature
extractor minimises. Its gradient is DANN's: the head descends the domain loss, the
feature extractor ascends it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from sqnn.data.splits import DATA, SIMULATION
from sqnn.info import Reduce
from sqnn.labels import Penalty
from sqnn.methods.base import READS, Batch, Objective, RegionCounts
from sqnn.methods.enriched import REGION_OPTIONS, RegionTerms
from sqnn.priors import estimate_prior
from sqnn.nn.layers import StochasticModule
from sqnn.nn.model import MAX_WIDTH
from sqnn.schema import Choice, Integer

__all__ = ["DANN", "GradientReversal", "reverse_gradient", "domain_loss", "dann_lambda", "SCHEDULES"]

SCHEDULES = ("constant", "dann")


class GradientReversal(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the incoming gradient by ``−coefficient``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = float(coefficient)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad, None


def reverse_gradient(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    return GradientReversal.apply(x, coefficient)


def dann_lambda(progress: float) -> float:
    """DANN's schedule λ_p = 2 / (1 + exp(−10 p)) − 1 for the training progress p ∈ [0, 1]."""
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def domain_loss(
    head: nn.Module,
    sim_features: torch.Tensor,
    data_features: torch.Tensor,
    sim_weight: torch.Tensor,
    data_weight: torch.Tensor,
) -> torch.Tensor:
    """Weighted cross-entropy of ``head`` telling data (1) from simulation (0), domains weighted equally.

    A domain without events (or with non-positive total weight) drops out; with neither
    the loss is ln 2, the value of a guess.
    """
    logit = head(torch.cat([sim_features, data_features])).squeeze(-1)
    target = torch.cat(
        [sim_features.new_full((len(sim_features),), SIMULATION), data_features.new_full((len(data_features),), DATA)]
    )
    parts = []
    for weight in (sim_weight, data_weight):
        total = weight.sum()
        parts.append(weight / total if float(total) > 0 else torch.zeros_like(weight))
    weight = torch.cat(parts).to(logit.dtype)
    norm = float(weight.sum())
    if norm <= 0:
        return logit.sum() * 0.0 + math.log(2.0)
    per_event = nn.functional.binary_cross_entropy_with_logits(logit, target.to(logit.dtype), reduction="none")
    return (weight * per_event).sum() / norm


class DANN(Objective):
    name = "dann"
    summary = "domain-adversarial training through a gradient reversal layer"
    uses_data = True
    # the domain head needs every event of the batch, not sums over them
    distributable = False
    option_rules = {
        "schedule": Choice(*SCHEDULES),
        "schedule_epochs": Integer(1, 100_000),
        "head_hidden": Integer(1, MAX_WIDTH),
        "reads": READS,
        **REGION_OPTIONS,
    }
    default_network: dict[str, Any] = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False]}
    strengths = (0.03, 0.1, 0.3, 1.0)
    strength_symbol = "λ"
    penalty_label = Penalty("domain-head advantage", "nats")
    colour = "#0072B2"
    demo = ("full", "quick")

    def __init__(self, gamma: float = 0.1, **options: Any) -> None:
        super().__init__(gamma, **options)
        self.schedule = str(self.options.get("schedule", "constant"))
        self.schedule_epochs = int(self.options.get("schedule_epochs", 10))
        self.head_hidden = int(self.options.get("head_hidden", 32))
        self.enriched = RegionTerms(self.options)

    def region_roles(self) -> tuple[str, ...]:
        return self.enriched.roles

    def set_regions(self, counts: Mapping[str, RegionCounts], sim_prior: float) -> None:
        self.enriched.set_counts(counts, sim_prior)

    def start_epoch(self, epoch: int, data_probability: torch.Tensor, data_weight: torch.Tensor, sim_prior: float) -> dict[str, float]:
        """With enriched regions: their purities at the data's signal fraction of this epoch."""
        if not self.enriched.roles:
            return {}
        prior = self.enriched.data_prior(estimate_prior(data_probability, data_weight, sim_prior))
        return {"data_prior": prior, **self.enriched.update(prior)}

    def attach(self, model: StochasticModule) -> None:
        super().attach(model)
        width = model.representation_width
        self.extra["domain_head"] = nn.Sequential(
            nn.Linear(width, self.head_hidden), nn.ReLU(), nn.Linear(self.head_hidden, 1)
        )

    def reversal_at(self, epoch: int) -> float:
        """λ: how strongly the feature extractor's gradient is reversed at ``epoch`` (0-based)."""
        if self.schedule == "constant":
            return 1.0
        return dann_lambda((epoch + 1) / self.schedule_epochs)

    def penalty(self, batch: Batch, reduce: Reduce | None = None) -> dict[str, torch.Tensor]:
        if "domain_head" not in self.extra:
            raise RuntimeError("dann: attach() must run before penalty()")
        sim_output, data_output = self.served_representation(batch)
        coefficient = self.reversal_at(batch.epoch)
        features = reverse_gradient(torch.cat([sim_output, data_output]), coefficient)
        n = len(sim_output)
        loss = domain_loss(self.extra["domain_head"], features[:n], features[n:], batch.sim_weight, batch.data_weight)
        advantage = math.log(2.0) - loss.detach()
        # forward value: the head's advantage over guessing; gradient: that of the reversed domain loss
        value = loss - loss.detach() + advantage
        terms = {"domain_loss": loss.detach(), "reversal": torch.tensor(coefficient)}
        inside = []
        for role, events in batch.regions.items():
            sim_output, data_output = (events.sim_theta, events.data_theta) if self._reads_theta else (events.sim_output, events.data_output)
            assert sim_output is not None and data_output is not None
            reversed_ = reverse_gradient(torch.cat([sim_output, data_output]), coefficient)
            n_sim = len(sim_output)
            region_loss = domain_loss(self.extra["domain_head"], reversed_[:n_sim], reversed_[n_sim:],
                                      self.enriched.sim_weight(role, events), events.data_weight)
            inside.append(region_loss - region_loss.detach() + (math.log(2.0) - region_loss.detach()))
            terms[f"advantage_{role}"] = math.log(2.0) - region_loss.detach()
        if inside:
            value = value + self.enriched.weight * torch.stack(inside).mean()
        return {"penalty": value, **terms}

    @property
    def _reads_theta(self) -> bool:
        return self.scoring == "mean" and self.reads == "scored"
