"""Training objectives, one module each; a new method is one registry line here."""

from __future__ import annotations

from typing import Any

from sqnn.methods.base import Batch, Objective
from sqnn.methods.bdt import BDT
from sqnn.methods.dann import DANN
from sqnn.methods.disco import DisCo
from sqnn.methods.mlp import MLP
from sqnn.methods.mmd import MMD
from sqnn.methods.reweight import Reweight
from sqnn.methods.source_only import SourceOnly
from sqnn.methods.sqnn import SQNNObjective

__all__ = ["Batch", "METHODS", "Objective", "make_objective"]

METHODS: dict[str, type[Objective]] = {
    "source-only": SourceOnly,
    "sqnn": SQNNObjective,
    "dann": DANN,
    "disco": DisCo,
    "mmd": MMD,
    "mlp": MLP,
    "bdt": BDT,
    "reweight": Reweight,
}


def make_objective(method: str, gamma: float | None = None, **options: Any) -> Objective:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cls = METHODS[method]
    return cls(**options) if gamma is None else cls(gamma, **options)
