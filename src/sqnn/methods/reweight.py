"""`reweight`: the baseline physicists use — simulation reweighted to data, then a classifier trained on it.

The network is trained as source-only (γ = 0) on simulation whose weights are multiplied by
the density ratio data/simulation that a domain classifier learns (:mod:`sqnn.training.reweight`),
clipped and normalised per class. Options: ``region`` — ``control`` (the ratio learnt on the
control region, applied everywhere; default) or ``all`` (on every event, with simulation
first taken to the data's signal fraction); ``clip`` — the largest ratio (and 1/clip the
smallest), default 10.

The same reweighting combines with the SQNN penalty through its option ``reweight``
(:mod:`sqnn.methods.sqnn`).
"""

from __future__ import annotations

from typing import Any

from sqnn.methods.base import DEPLOYABLE_NETWORK, Objective

__all__ = ["REWEIGHT_REGIONS", "Reweight", "reweighting_options"]

REWEIGHT_REGIONS = ("control", "all")


def reweighting_options(region: Any, clip: Any) -> dict[str, Any] | None:
    """The checked reweighting of an objective: None for ``none``, else its region and clip."""
    if region in (None, "none"):
        return None
    if region not in REWEIGHT_REGIONS:
        raise ValueError(f"reweighting region must be one of none, {', '.join(REWEIGHT_REGIONS)}, got {region!r}")
    clip = float(clip)
    if not clip > 1:
        raise ValueError(f"the reweighting clip must be above 1, got {clip}")
    return {"region": str(region), "clip": clip}


class Reweight(Objective):
    name = "reweight"
    options_allowed = ("region", "clip")
    # the network of source-only: what changes is the simulation it is trained on
    default_network: dict[str, Any] = DEPLOYABLE_NETWORK

    def __init__(self, gamma: float = 0.0, **options: Any) -> None:
        super().__init__(0.0, **options)
        self.reweighting = reweighting_options(self.options.get("region", "control"), self.options.get("clip", 10.0))
