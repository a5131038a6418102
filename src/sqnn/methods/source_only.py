"""`source-only`: the same network trained on simulation alone (γ = 0)."""

from __future__ import annotations

from typing import Any

from sqnn.methods.base import DEPLOYABLE_NETWORK, Objective

__all__ = ["SourceOnly"]


class SourceOnly(Objective):
    name = "source-only"
    summary = "the default network trained on simulation alone (γ = 0)"
    default_network: dict[str, Any] = DEPLOYABLE_NETWORK
    colour = "#000000"
    demo = ("full", "quick")

    def __init__(self, gamma: float = 0.0, **options: object) -> None:
        super().__init__(0.0, **options)
