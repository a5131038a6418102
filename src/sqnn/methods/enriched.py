"""The enriched regions of data as a penalty reads them: which regions, the data's purity in each, simulation standing for them.

A method whose penalty also acts inside the enriched regions (:mod:`sqnn.regions`) holds a
:class:`RegionTerms` and takes its options (:data:`REGION_OPTIONS`):

- ``regions``: ``auto`` (default) — with a signal-enriched (tag-and-probe) region, every
  enriched region given (``signal_control``, and ``control`` when given); without one, none
  (the method behaves as without regions); ``signal`` — the signal-enriched region alone;
  ``none``;
- ``region_weight``: the factor of the mean of the region terms (default 1);
- ``prior``: ``auto`` — with a signal-enriched region the data's signal fraction is the one
  its share of data gives (nothing of the probe jet enters it), else the EM estimate; ``em``
  — always the EM estimate.

The training loop draws, at each penalised step, events of each region the method reads
(:attr:`RegionTerms.roles`): data inside the region, and simulation standing for it —
every simulated event for a tag-and-probe region, those inside it for a control region —
reweighted per class to the data's purity in the region (:meth:`RegionTerms.sim_weight`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from sqnn import regions
from sqnn.methods.base import RegionBatch, RegionCounts
from sqnn.priors import reweight_to_prior
from sqnn.schema import Choice, Real, Rule

__all__ = ["PRIOR_CHOICES", "REGION_CHOICES", "REGION_OPTIONS", "RegionTerms"]

REGION_CHOICES = ("auto", "signal", "none")
PRIOR_CHOICES = ("auto", "em")
REGION_OPTIONS: dict[str, Rule] = {
    "regions": Choice(*REGION_CHOICES),
    "region_weight": Real(0.0, 1e6),
    "prior": Choice(*PRIOR_CHOICES),
}


class RegionTerms:
    """What a penalty needs of the enriched regions of one training."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.mode = str(options.get("regions", "auto"))
        self.weight = float(options.get("region_weight", 1.0))
        self.prior_from = str(options.get("prior", "auto"))
        self.counts: dict[str, RegionCounts] = {}
        self.purity: dict[str, float] = {}
        self.sim_fraction: dict[str, float] = {}

    @property
    def roles(self) -> tuple[str, ...]:
        """The regions the penalty reads: none without a signal-enriched region."""
        if self.mode == "none" or self.weight == 0 or "signal_control" not in self.counts:
            return ()
        if self.mode == "signal":
            return ("signal_control",)
        return tuple(role for role in regions.REGION_ROLES if role in self.counts)

    def set_counts(self, counts: Mapping[str, RegionCounts], sim_prior: float) -> None:
        self.counts = dict(counts)
        self.sim_fraction = {
            # a tag-and-probe region stands for every simulated event; a control region for those inside it
            role: sim_prior if regions.INDEPENDENT[role]
            else regions.region_purity(sim_prior, c.signal_efficiency, c.background_efficiency)
            for role, c in self.counts.items()
        }

    def data_prior(self, em: float) -> float:
        """The data's signal fraction: from the signal-enriched region's share of data when there is one, else ``em``."""
        counts = self.counts.get("signal_control")
        if counts is None or self.prior_from == "em":
            return em
        prior = regions.prior_from_rate(counts.data_fraction, counts.signal_efficiency, counts.background_efficiency)
        return prior if math.isfinite(prior) else em

    def update(self, prior: float) -> dict[str, float]:
        """The purities at the data's signal fraction ``prior``; returns what to log."""
        self.purity = {role: regions.region_purity(prior, c.signal_efficiency, c.background_efficiency)
                       for role, c in self.counts.items()}
        return {f"purity_{role}": self.purity[role] for role in self.roles}

    def sim_weight(self, role: str, events: RegionBatch) -> torch.Tensor:
        """The weights of the simulated events standing for region ``role``, per class at the data's purity in it."""
        return reweight_to_prior(events.sim_weight, events.sim_label > 0.5, self.sim_fraction[role], self.purity[role])
