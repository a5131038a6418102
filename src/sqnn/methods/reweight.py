"""`reweight`: the baseline physicists use — simulation reweighted to data, then a classifier trained on it.

The network is trained as source-only (γ = 0) on simulation whose weights are multiplied by
the density ratio data/simulation that a domain classifier learns (:mod:`sqnn.training.reweight`),
clipped and normalised per class. Options: ``region`` — ``control`` (the ratio learnt on the
control region, applied everywhere; default), ``all`` (on every event, with simulation
first taken to the data's signal fraction) or ``enriched`` (within each enriched region, a
signal-enriched tag-and-probe region needed: :mod:`sqnn.training.reweight`); ``clip`` — the largest ratio (and 1/clip the
smallest), default 10.

The same reweighting combines with the SQNN penalty through its option ``reweight``
(:mod:`sqnn.methods.sqnn`).
"""

from __future__ import annotations

from typing import Any

from collections.abc import Mapping

from sqnn.methods.base import DEPLOYABLE_NETWORK, Objective, Reweighting
from sqnn.schema import Choice, Real

__all__ = ["CLIP", "REWEIGHT_REGIONS", "Reweight", "reweighting_options"]

REWEIGHT_REGIONS = ("control", "all", "enriched")
# the largest density ratio of a reweighting (and 1/clip the smallest)
CLIP = Real(1.0, 1e6, low_open=True)


def reweighting_options(region: Any, clip: Any) -> Reweighting | None:
    """The reweighting of an objective from its checked options: None for ``none``, else its region and clip."""
    if region in (None, "none"):
        return None
    return Reweighting(str(region), float(clip))


class Reweight(Objective):
    name = "reweight"
    summary = "simulation reweighted to data by a domain classifier, then trained as source-only"
    option_rules = {"region": Choice(*REWEIGHT_REGIONS), "clip": CLIP}
    # the network of source-only: what changes is the simulation it is trained on
    default_network: dict[str, Any] = DEPLOYABLE_NETWORK
    colour = "#7F7F7F"
    demo = ("full",)

    def __init__(self, gamma: float = 0.0, **options: Any) -> None:
        super().__init__(0.0, **options)
        self.reweighting = reweighting_options(self.options.get("region", "control"), self.options.get("clip", 10.0))

    @classmethod
    def needs(cls, options: Mapping[str, Any]) -> frozenset[str]:
        region = options.get("region", "control")
        return frozenset({"control"} if region == "control" else {"signal_control"} if region == "enriched" else ())
