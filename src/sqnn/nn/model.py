"""The SQNN network and the small config it is built from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from sqnn.nn.layers import BernoulliActivation, BinaryLinear, StochasticModule
from sqnn.nn.quant import FixedPoint

__all__ = ["NetworkConfig", "SQNN", "SCORING_MODES", "build_network"]

# how a trained network scores by default (stochastic draws are asked for explicitly)
SCORING_MODES = ("mean", "deterministic")


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of a feed-forward SQNN.

    ``hidden`` are the layer widths; ``stochastic[i]`` makes layer i a Bernoulli layer
    (else ReLU, full precision); ``binary_weights[i]`` gives layer i sign weights.
    The information penalty applies to ``representation`` (an index into the hidden
    layers, default the last stochastic one).

    ``inference`` is how the trained network scores events: ``mean`` (default) passes on
    each Bernoulli unit's expectation θ, so with a linear head the logit is the exact
    expectation over the binary code; ``deterministic`` thresholds the units (z > 0), the
    arithmetic of the packed engine, ONNX export and firmware.

    Quantisation-aware training: ``input_fixed = [W, I]`` rounds the standardised inputs
    and ``first_layer_fixed = [W, I]`` the first layer's weights and biases to the grid of
    ``ap_fixed<W, I>`` in the forward pass (straight-through gradient); ``None`` (the
    default) leaves them in float. With both set, the first layer is exact integer
    arithmetic, which the packed engine and the hls4ml firmware reproduce bit for bit.

    >>> NetworkConfig(hidden=(64, 16), stochastic=(False, True)).representation_index()
    1
    """

    hidden: tuple[int, ...] = (64, 16)
    stochastic: tuple[bool, ...] = (False, True)
    binary_weights: tuple[bool, ...] = (False, False)
    temperature: float = 6.0
    samples: int = 1
    representation: int | None = None
    input_fixed: tuple[int, int] | None = None
    first_layer_fixed: tuple[int, int] | None = None
    inference: str = "mean"

    def __post_init__(self) -> None:
        n = len(self.hidden)
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "stochastic", tuple(bool(s) for s in self.stochastic))
        object.__setattr__(self, "binary_weights", tuple(bool(b) for b in self.binary_weights))
        if n == 0:
            raise ValueError("the network needs at least one hidden layer")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden layer widths must be positive, got {self.hidden}")
        for name in ("stochastic", "binary_weights"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one entry per hidden layer ({n}), got {getattr(self, name)}")
        for name in ("input_fixed", "first_layer_fixed"):
            grid = FixedPoint.parse(getattr(self, name), name)
            object.__setattr__(self, name, None if grid is None else (grid.width, grid.integer))
        if self.inference not in SCORING_MODES:
            raise ValueError(f"inference must be one of {', '.join(SCORING_MODES)}, got {self.inference!r}")
        if self.first_layer_fixed is not None and self.binary_weights[0]:
            raise ValueError("first_layer_fixed and binary_weights[0] exclude each other: the first layer is either on a fixed-point grid or binary")

    def input_grid(self) -> FixedPoint | None:
        return None if self.input_fixed is None else FixedPoint(*self.input_fixed)

    def first_layer_grid(self) -> FixedPoint | None:
        return None if self.first_layer_fixed is None else FixedPoint(*self.first_layer_fixed)

    def representation_index(self) -> int:
        if self.representation is not None:
            if not -len(self.hidden) <= self.representation < len(self.hidden):
                raise ValueError(f"representation index {self.representation} out of range")
            return self.representation % len(self.hidden)
        stochastic = [i for i, s in enumerate(self.stochastic) if s]
        return stochastic[-1] if stochastic else len(self.hidden) - 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("hidden", "stochastic", "binary_weights"):
            d[k] = list(d[k])
        for k in ("input_fixed", "first_layer_fixed"):
            d[k] = None if d[k] is None else list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NetworkConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown network settings: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class SQNN(StochasticModule):
    """Feed-forward classifier with Bernoulli layers; ``forward`` returns the logit (N,).

    After each forward pass ``self.representation_theta`` holds θ of the penalised
    layer (or its activations if that layer is not stochastic) and
    ``self.representation_output`` what the layer passed on.
    """

    def __init__(self, n_inputs: int, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.n_inputs = int(n_inputs)
        layers: list[nn.Module] = []
        activations: list[nn.Module] = []
        width = self.n_inputs
        for size, stochastic, binary in zip(config.hidden, config.stochastic, config.binary_weights):
            layers.append((BinaryLinear if binary else nn.Linear)(width, size))
            activations.append(
                BernoulliActivation(config.temperature, config.samples) if stochastic else nn.ReLU()
            )
            width = size
        self.layers = nn.ModuleList(layers)
        self.activations = nn.ModuleList(activations)
        self.head = nn.Linear(width, 1)
        self.representation_index = config.representation_index()
        self.representation_theta: torch.Tensor | None = None
        self.representation_output: torch.Tensor | None = None
        self.input_grid = config.input_grid()
        self.first_layer_grid = config.first_layer_grid()
        self.set_inference(config.inference)  # type: ignore[arg-type]

    def first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation of the first layer, on the fixed-point grids when they are set.

        In eval mode a quantised first layer is computed in float64: the grid values and
        their products are exact there, so z = 0 ties and signs come out exactly as in
        integer arithmetic (float32 could round a tiny sum either way).
        """
        layer = self.layers[0]
        if self.input_grid is not None:
            x = self.input_grid.quantize(x)
        if self.first_layer_grid is None:
            return layer(x)
        weight = self.first_layer_grid.quantize(layer.weight)
        bias = self.first_layer_grid.quantize(layer.bias)
        if self.training:
            return nn.functional.linear(x, weight, bias)
        return nn.functional.linear(x.double(), weight.double(), bias.double()).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (layer, activation) in enumerate(zip(self.layers, self.activations)):
            h = activation(self.first_layer(h) if i == 0 else layer(h))
            if i == self.representation_index:
                self.representation_output = h
                theta = getattr(activation, "theta", None)
                self.representation_theta = theta if theta is not None else h
        return self.head(h).squeeze(-1)

    @property
    def representation_is_stochastic(self) -> bool:
        return self.config.stochastic[self.representation_index]

    @property
    def representation_width(self) -> int:
        return self.config.hidden[self.representation_index]


def build_network(n_inputs: int, config: NetworkConfig | dict[str, Any] | None = None) -> SQNN:
    """Build an SQNN from a config (dataclass or dict).

    >>> net = build_network(4, {"hidden": [8, 4], "stochastic": [True, True], "binary_weights": [False, True]})
    >>> net(torch.zeros(3, 4)).shape
    torch.Size([3])
    """
    if config is None:
        config = NetworkConfig()
    elif isinstance(config, dict):
        config = NetworkConfig.from_dict(config)
    return SQNN(n_inputs, config)
