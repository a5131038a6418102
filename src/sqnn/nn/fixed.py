"""The fixed-point network: one definition of its arithmetic, for training and for every engine.

``network: {fixed_point: {...}}`` puts every number of a feed-forward SQNN on a grid:

- the standardised **inputs** on ``ap_fixed<W, I>`` (``input``);
- each hidden layer's **weights** on ``ap_fixed<W, I>`` (``weight``) and its **bias** on
  the grid of its pre-activation z (2^-(F_in + F_w)), so z is an exact fixed-point number;
- a **ReLU** layer's output rounded (half to even) and saturated onto ``ap_ufixed<W, I>``
  (``activation``);
- a **Bernoulli** layer scored by its expectation passes on θ = σ(τz) rounded to
  ``theta_bits`` = B bits, θ_q = m / 2^B with m the number of thresholds of
  :func:`sqnn.nn.quant.theta_thresholds` that z reaches (a staircase in z: comparisons
  on the grid of z, no σ anywhere); thresholded (``inference: deterministic``) it passes
  on the bit 1[z > 0];
- the **head**'s weights on ``ap_fixed<W, I>`` (``head``) and its bias on the logit's
  grid; the decision is the cut logit > 0.

A grid is a pair ``[W, I]``, or just the width W: the integer bits I are then chosen
from the training data once the first epoch has run in float — inputs and activations
from the values observed in it (the fewest bits that saturate at most a fraction
:data:`SATURATION` of them), weights from their largest magnitude with one bit of
headroom. The chosen pairs replace the widths in ``model.json``; training then goes on
quantisation-aware (straight-through gradients), and the torch model in eval mode
computes exactly what the packed engine, ONNX and the firmware compute.

>>> config = FixedPointConfig.parse({"input": [12, 4], "weight": [8, 2], "activation": [8, 3], "head": [10, 4]}, (False, True))
>>> config.resolved, config.grids().z_fractional(1), config.grids().logit_fractional
(True, 11, 10)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from sqnn.nn.quant import straight_through
from sqnn.nn.quant import MAX_THETA_BITS, MAX_WIDTH, FixedPoint, RangeObserver, integer_bits_for

__all__ = [
    "FixedPointConfig", "FixedGrids", "FixedLinear", "FixedReLU", "DEFAULT_WIDTHS", "DEFAULT_THETA_BITS", "SATURATION",
    "WEIGHT_HEADROOM", "UNRESOLVED", "NO_GRID",
]

GridSpec = Union[int, tuple[int, int]]
DEFAULT_WIDTHS = {"input": 12, "weight": 8, "activation": 8, "head": 10}
DEFAULT_THETA_BITS = 4
# fraction of the observed inputs (activations) allowed to saturate when the integer bits are chosen
SATURATION = 1e-4
# weights keep training after their grid is chosen: their range holds twice the largest weight then
WEIGHT_HEADROOM = 2.0
# entries of the integer-bits buffer: not chosen yet, and no grid (a Bernoulli layer's output)
UNRESOLVED = -1
NO_GRID = -2
_KEYS = ("input", "weight", "activation", "head", "theta_bits")


def _spec(value: Any, name: str, signed: bool) -> GridSpec:
    """A width (int) or a pair [W, I], validated."""
    if isinstance(value, bool):
        raise ValueError(f"fixed_point.{name} must be a width or a pair [W, I], got {value!r}")
    if isinstance(value, int):
        if not 2 <= value <= MAX_WIDTH:
            raise ValueError(f"fixed_point.{name}: width must lie in [2, {MAX_WIDTH}], got {value}")
        return int(value)
    grid = FixedPoint.parse(value, f"fixed_point.{name}", signed)
    assert grid is not None
    return (grid.width, grid.integer)


def _width(spec: GridSpec) -> int:
    return spec if isinstance(spec, int) else spec[0]


def _grid(spec: GridSpec, signed: bool) -> FixedPoint:
    assert not isinstance(spec, int), "grid not chosen yet"
    return FixedPoint(spec[0], spec[1], signed)


@dataclass(frozen=True)
class FixedGrids:
    """The resolved grids of a fixed-point network, and the fractional bits they imply."""

    input: FixedPoint
    weights: tuple[FixedPoint, ...]
    activations: tuple[FixedPoint | None, ...]  # None: a Bernoulli layer (θ levels on the 2^-B grid)
    head: FixedPoint
    theta_bits: int

    def input_fractional(self, layer: int) -> int:
        """Fractional bits of the values layer ``layer`` reads (``layer`` = number of hidden layers: the head)."""
        if layer == 0:
            return self.input.fractional
        previous = self.activations[layer - 1]
        # a Bernoulli layer passes on m / 2^B (or a bit, which lies on the same grid)
        return self.theta_bits if previous is None else previous.fractional

    def z_fractional(self, layer: int) -> int:
        """Fractional bits of hidden layer ``layer``'s pre-activation z (and of its bias)."""
        return self.input_fractional(layer) + self.weights[layer].fractional

    @property
    def logit_fractional(self) -> int:
        return self.input_fractional(len(self.weights)) + self.head.fractional


@dataclass(frozen=True)
class FixedPointConfig:
    """Grids of a fixed-point network: each a width (integer bits from the data) or a pair (W, I)."""

    input: GridSpec
    weight: tuple[GridSpec, ...]
    activation: tuple[GridSpec | None, ...]
    head: GridSpec
    theta_bits: int = DEFAULT_THETA_BITS

    @classmethod
    def parse(cls, value: Any, stochastic: tuple[bool, ...]) -> "FixedPointConfig":
        """From ``model.json``/YAML: a mapping with any of ``input``, ``weight``, ``activation``, ``head``, ``theta_bits``.

        ``weight`` and ``activation`` take one grid (a width or a pair) for every layer,
        or a list of pairs with one per hidden layer (``null`` for a Bernoulli layer's
        activation), as ``model.json`` records them.
        """
        if isinstance(value, FixedPointConfig):
            value = value.to_dict()
        if not isinstance(value, dict):
            raise ValueError(f"fixed_point must be a mapping of grids ({', '.join(_KEYS)}), got {value!r}")
        unknown = set(value) - set(_KEYS)
        if unknown:
            raise ValueError(f"unknown fixed_point settings: {', '.join(sorted(unknown))}")
        n = len(stochastic)
        theta_bits = value.get("theta_bits", DEFAULT_THETA_BITS)
        if isinstance(theta_bits, bool) or not isinstance(theta_bits, int) or not 1 <= theta_bits <= MAX_THETA_BITS:
            raise ValueError(f"fixed_point.theta_bits must be an integer in [1, {MAX_THETA_BITS}], got {theta_bits!r}")

        def per_layer(key: str, signed: bool, only: tuple[bool, ...]) -> tuple[GridSpec | None, ...]:
            raw = value.get(key, DEFAULT_WIDTHS[key])
            # a list holding pairs (or nulls) has one entry per layer; a bare [W, I] is one grid for all
            is_list = isinstance(raw, (list, tuple)) and any(isinstance(v, (list, tuple)) or v is None for v in raw)
            entries = list(raw) if is_list else [raw] * n
            if len(entries) != n:
                raise ValueError(f"fixed_point.{key} needs one grid per hidden layer ({n}), got {raw!r}")
            out: list[GridSpec | None] = []
            for i, (entry, applies) in enumerate(zip(entries, only)):
                if not applies:
                    if is_list and entry is not None:
                        raise ValueError(f"fixed_point.{key}[{i}] must be null: hidden layer {i} is a Bernoulli layer")
                    out.append(None)
                else:
                    out.append(_spec(entry, f"{key}[{i}]" if is_list else key, signed))
            return tuple(out)

        weight = per_layer("weight", True, (True,) * n)
        activation = per_layer("activation", False, tuple(not s for s in stochastic))
        return cls(
            input=_spec(value.get("input", DEFAULT_WIDTHS["input"]), "input", True),
            weight=tuple(w for w in weight if w is not None),
            activation=activation,
            head=_spec(value.get("head", DEFAULT_WIDTHS["head"]), "head", True),
            theta_bits=int(theta_bits),
        )

    @property
    def resolved(self) -> bool:
        """Every grid has its integer bits."""
        specs = [self.input, self.head, *self.weight, *(a for a in self.activation if a is not None)]
        return all(not isinstance(s, int) for s in specs)

    def grids(self) -> FixedGrids:
        if not self.resolved:
            raise ValueError("the fixed-point grids are not chosen yet: train the network (the first epoch chooses them)")
        return FixedGrids(
            input=_grid(self.input, True),
            weights=tuple(_grid(w, True) for w in self.weight),
            activations=tuple(None if a is None else _grid(a, False) for a in self.activation),
            head=_grid(self.head, True),
            theta_bits=self.theta_bits,
        )

    def with_integer_bits(self, bits: list[int]) -> "FixedPointConfig":
        """The config with the integer bits of the buffer layout (see :meth:`integer_bits`) filled in."""
        n = len(self.weight)
        pair = lambda spec, b: (_width(spec), int(b))  # noqa: E731
        return replace(
            self,
            input=pair(self.input, bits[0]),
            weight=tuple(pair(w, b) for w, b in zip(self.weight, bits[1 : 1 + n])),
            activation=tuple(None if a is None else pair(a, b) for a, b in zip(self.activation, bits[1 + n : 1 + 2 * n])),
            head=pair(self.head, bits[1 + 2 * n]),
        )

    def integer_bits(self) -> list[int]:
        """[input, weight per layer, activation per layer, head]: I, or UNRESOLVED, or NO_GRID."""
        bits = lambda spec: NO_GRID if spec is None else (UNRESOLVED if isinstance(spec, int) else spec[1])  # noqa: E731
        return [bits(self.input), *map(bits, self.weight), *map(bits, self.activation), bits(self.head)]

    def to_dict(self) -> dict[str, Any]:
        as_json = lambda spec: None if spec is None else (spec if isinstance(spec, int) else list(spec))  # noqa: E731
        return {
            "input": as_json(self.input),
            "weight": [as_json(w) for w in self.weight],
            "activation": [as_json(a) for a in self.activation],
            "head": as_json(self.head),
            "theta_bits": self.theta_bits,
        }


class FixedLinear(nn.Linear):
    """A dense layer whose forward pass sees its weights on ``weight_grid`` and its bias on 2^-``bias_fractional``.

    Straight-through gradients; the bias is rounded but never saturated (it is one
    addition of whatever width it needs). Without a grid it is ``nn.Linear``. The
    parameters follow the input's dtype, so in float64 the products and sums of grid
    values are exact.
    """

    weight_grid: FixedPoint | None = None
    bias_fractional: int | None = None

    def quantized(self) -> tuple[torch.Tensor, torch.Tensor]:
        weight, bias = self.weight, self.bias
        if self.weight_grid is not None:
            assert self.bias_fractional is not None
            weight = self.weight_grid.quantize(weight)
            scale = 2.0**self.bias_fractional
            bias = straight_through(torch.round(bias * scale) / scale, bias)
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.quantized()
        return nn.functional.linear(x, weight.to(x.dtype), bias.to(x.dtype))


class FixedReLU(nn.ReLU):
    """ReLU whose output is rounded half to even and saturated onto the unsigned ``grid`` (clipped straight-through).

    While the grid is not chosen, ``observer`` (if set) records the outputs of training passes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.grid: FixedPoint | None = None
        self.observer: RangeObserver | None = None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(z)
        if self.observer is not None and self.training:
            self.observer.observe(h)
        if self.grid is None:
            return h
        return self.grid.quantize(h, clip_gradient=True)

    def extra_repr(self) -> str:
        return "" if self.grid is None else self.grid.hls_type


def choose_integer_bits(
    config: FixedPointConfig,
    input_observer: RangeObserver,
    activation_observers: list[RangeObserver | None],
    weights: list[np.ndarray],
    head_weight: np.ndarray,
) -> FixedPointConfig:
    """The grids' integer bits from observed inputs and activations and the current weights (explicit pairs kept)."""

    def observed(spec: GridSpec, observer: RangeObserver | None, signed: bool) -> int:
        if not isinstance(spec, int):
            return spec[1]
        if observer is None or observer.total == 0:
            raise ValueError("no values observed to choose the fixed-point grids from")
        return min(spec, observer.integer_bits(signed, SATURATION))

    def largest(spec: GridSpec, values: np.ndarray) -> int:
        if not isinstance(spec, int):
            return spec[1]
        top = float(np.abs(values).max()) if values.size else 0.0
        return min(spec, integer_bits_for(top, True, WEIGHT_HEADROOM))

    bits = [observed(config.input, input_observer, True)]
    bits += [largest(spec, w) for spec, w in zip(config.weight, weights)]
    bits += [NO_GRID if spec is None else observed(spec, obs, False) for spec, obs in zip(config.activation, activation_observers)]
    bits += [largest(config.head, head_weight)]
    return config.with_integer_bits(bits)
