"""`mlp`: the full-precision reference — every hidden layer ReLU, no Bernoulli units, trained
on simulation alone (γ = 0). Same widths as the SQNN network, so the difference to
`source-only` is the cost of the stochastic binary layer."""

from __future__ import annotations

from typing import Any

from sqnn.methods.base import Objective
from sqnn.nn import SQNN, NetworkConfig

__all__ = ["MLP"]


class MLP(Objective):
    name = "mlp"
    summary = "the full-precision reference: ReLU layers of the same widths, on simulation alone"
    # it builds its own full-precision network
    trains_set_models = False
    colour = "#E69F00"
    linestyle = "--"
    demo = ("full",)
    default_network: dict[str, Any] = {"hidden": [64, 16], "stochastic": [False, False], "binary_weights": [False, False]}

    def __init__(self, gamma: float = 0.0, **options: Any) -> None:
        super().__init__(0.0, **options)

    def network_config(self, overrides: dict[str, Any] | None = None) -> NetworkConfig:
        # widths may change; the layers stay full precision whatever the overrides say
        settings = {**self.default_network, **(overrides or {})}
        n = len(settings["hidden"])
        return NetworkConfig.from_dict({**settings, "stochastic": [False] * n, "binary_weights": [False] * n})

    def build(self, n_inputs: int, config: NetworkConfig) -> SQNN:
        if any(config.stochastic) or any(config.binary_weights):
            raise ValueError("mlp is full precision: no stochastic layers and no binary weights")
        return super().build(n_inputs, config)
