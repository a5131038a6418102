"""Training objectives, one module each; a new method is one module and one registry line here.

Each objective class describes its method (see :class:`~sqnn.methods.base.Objective`): its
options, its sweep, its penalty and unit, what it needs, how it is drawn. The order of the
registry is the order in which comparisons and the demo list the methods.
"""

from __future__ import annotations

from typing import Any

from sqnn.labels import strength_label
from sqnn.methods.base import Batch, Objective, OwnTrainer
from sqnn.methods.bdt import BDT
from sqnn.methods.dann import DANN
from sqnn.methods.disco import DisCo
from sqnn.methods.mlp import MLP
from sqnn.methods.mmd import MMD
from sqnn.methods.reweight import Reweight
from sqnn.methods.source_only import SourceOnly
from sqnn.methods.sqnn import SQNNObjective

__all__ = ["Batch", "METHODS", "Objective", "OwnTrainer", "demo_methods", "make_objective", "strength_of"]

METHODS: dict[str, type[Objective]] = {
    method.name: method for method in (SourceOnly, Reweight, SQNNObjective, DANN, DisCo, MMD, MLP, BDT)
}


def demo_methods(kind: str = "full") -> tuple[str, ...]:
    """The methods the demo compares (``kind``: ``full`` or ``quick``), in registry order."""
    return tuple(name for name, method in METHODS.items() if kind in method.demo)


def make_objective(method: str, gamma: float | None = None, **options: Any) -> Objective:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cls = METHODS[method]
    return cls(**options) if gamma is None else cls(gamma, **options)


def strength_of(method: str, gamma: float | None) -> str:
    """``γ=1`` or ``λ=0.3``, as ``method`` names its strength; empty for a method without one."""
    described = METHODS.get(method)
    return strength_label(described.strength_symbol if described is not None and described.uses_data else None, gamma)
