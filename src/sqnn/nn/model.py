"""The SQNN network and the small config it is built from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from sqnn.errors import ModelFileError
from sqnn.nn.fixed import UNRESOLVED, FixedLinear, FixedPointConfig, FixedReLU, choose_integer_bits
from sqnn.nn.layers import BernoulliActivation, BinaryLinear, Outputs, Scoring, StochasticModule
from sqnn.nn.quant import FixedPoint, RangeObserver
from sqnn.schema import Choice, Flag, Integer, Nullable, Real, Rule, SchemaError, Sequence, check_fields

__all__ = ["MAX_LAYERS", "MAX_WIDTH", "NETWORK_FIELDS", "NetworkConfig", "SQNN", "SCORING_MODES", "build_network"]

# how a trained network scores by default (stochastic draws are asked for explicitly)
SCORING_MODES = ("mean", "deterministic")
# bounds of an architecture, whether it comes from settings or from a model.json
MAX_WIDTH = 1 << 16
MAX_LAYERS = 64

NETWORK_FIELDS: dict[str, Rule] = {
    "hidden": Sequence(Integer(1, MAX_WIDTH), 1, MAX_LAYERS),
    "stochastic": Sequence(Flag(), 1, MAX_LAYERS),
    "binary_weights": Sequence(Flag(), 1, MAX_LAYERS),
    # τ·z must stay finite in float32 and θ = σ(τ·z) must still move with z
    "temperature": Real(1e-3, 1e3),
    "samples": Integer(1, 1024),
    "representation": Nullable(Integer(-MAX_LAYERS, MAX_LAYERS)),
    "inference": Choice(*SCORING_MODES),
}


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

    ``fixed_point`` (a :class:`~sqnn.nn.fixed.FixedPointConfig`, from a mapping) puts the
    whole network on fixed-point grids — inputs, every layer's weights and bias, ReLU
    outputs, θ of the Bernoulli units (a B-bit table) and the head — so that a network
    with ReLU layers, scored by the expectation of its Bernoulli units, runs in every
    engine as trained; see :mod:`sqnn.nn.fixed`. It excludes ``input_fixed``,
    ``first_layer_fixed`` and binary weights.

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
    fixed_point: FixedPointConfig | None = None

    def __post_init__(self) -> None:
        # types and ranges first, nothing coerced: "64" is no width and "false" no boolean
        for name, value in check_fields(self, NETWORK_FIELDS, "network").items():
            object.__setattr__(self, name, value)
        n = len(self.hidden)
        for name in ("stochastic", "binary_weights"):
            if len(getattr(self, name)) != n:
                raise SchemaError(f"network.{name}", f"must have one entry per hidden layer ({n}), got {list(getattr(self, name))}")
        if self.representation is not None and not -n <= self.representation < n:
            raise SchemaError("network.representation", f"must index a hidden layer (-{n} to {n - 1}), got {self.representation}")
        for name in ("input_fixed", "first_layer_fixed"):
            grid = FixedPoint.parse(getattr(self, name), name)
            object.__setattr__(self, name, None if grid is None else (grid.width, grid.integer))
        if self.first_layer_fixed is not None and self.binary_weights[0]:
            raise ValueError("first_layer_fixed and binary_weights[0] exclude each other: the first layer is either on a fixed-point grid or binary")
        if self.fixed_point is not None:
            object.__setattr__(self, "fixed_point", FixedPointConfig.parse(self.fixed_point, self.stochastic))
            if self.input_fixed is not None or self.first_layer_fixed is not None:
                raise ValueError("fixed_point sets every grid; it excludes input_fixed and first_layer_fixed")
            if any(self.binary_weights):
                raise ValueError("fixed_point and binary_weights exclude each other: weights are either on a fixed-point grid or binary")

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
        # absent rather than null: runs without it read as before, also by older versions
        d.pop("fixed_point")
        if self.fixed_point is not None:
            d["fixed_point"] = self.fixed_point.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NetworkConfig":
        if not isinstance(d, dict) or not all(isinstance(k, str) for k in d):
            raise SchemaError("network", f"must be a mapping of settings, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown network settings: {', '.join(sorted(unknown))}")
        return cls(**d)


class SQNN(StochasticModule):
    """Feed-forward classifier with Bernoulli layers; ``forward`` returns the logit (N,).

    ``forward(x, outputs=True)`` returns the :class:`~sqnn.nn.layers.Outputs` of the pass:
    the logit, θ of the penalised layer (or its activations if that layer is not
    stochastic) and what the layer passed on.

    A ``fixed_point`` network whose grids are not all chosen yet trains in float and
    records the ranges of its inputs and ReLU outputs; the training loop's explicit step at
    the end of the first epoch (:meth:`finish_epoch`) chooses the grids from them
    (:meth:`choose_grids`), and from then on every pass is on the grids. The chosen
    integer bits are part of the network's config (``model.json``) and live in the buffer
    ``fixed_point_integer_bits``, so checkpoints and resumed trainings keep them.
    """

    def __init__(self, n_inputs: int, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.n_inputs = int(n_inputs)
        fixed = config.fixed_point is not None
        layers: list[nn.Module] = []
        activations: list[nn.Module] = []
        width = self.n_inputs
        for size, stochastic, binary in zip(config.hidden, config.stochastic, config.binary_weights):
            layers.append((FixedLinear if fixed else BinaryLinear if binary else nn.Linear)(width, size))
            if stochastic:
                activations.append(BernoulliActivation(config.temperature, config.samples))
            else:
                activations.append(FixedReLU() if fixed else nn.ReLU())
            width = size
        self.layers = nn.ModuleList(layers)
        self.activations = nn.ModuleList(activations)
        self.head = (FixedLinear if fixed else nn.Linear)(width, 1)
        self.representation_index = config.representation_index()
        self.input_grid = config.input_grid()
        self.first_layer_grid = config.first_layer_grid()
        self.input_observer: RangeObserver | None = None
        if config.fixed_point is not None:
            bits = torch.tensor(config.fixed_point.integer_bits(), dtype=torch.int64)
            self.register_buffer("fixed_point_integer_bits", bits)
            self.register_load_state_dict_post_hook(_sync_fixed_point)
            self._apply_fixed_point(config.fixed_point)
        self.set_inference(config.inference)  # type: ignore[arg-type]

    # ---------------------------------------------------------- fixed point
    @property
    def grids_pending(self) -> bool:
        """A fixed-point network whose grids are still to be chosen from the data."""
        return self.config.fixed_point is not None and not self.config.fixed_point.resolved

    def _apply_fixed_point(self, fixed_point: FixedPointConfig) -> None:
        """Put every layer on its grid (or, while grids are pending, attach the range observers)."""
        resolved = fixed_point.resolved
        grids = fixed_point.grids() if resolved else None
        self.input_grid = grids.input if grids is not None else None
        self.input_observer = None if resolved else RangeObserver()
        for i, (layer, activation) in enumerate(zip(self.layers, self.activations)):
            assert isinstance(layer, FixedLinear)
            layer.weight_grid = None if grids is None else grids.weights[i]
            layer.bias_fractional = None if grids is None else grids.z_fractional(i)
            if isinstance(activation, FixedReLU):
                activation.grid = None if grids is None else grids.activations[i]
                activation.observer = None if resolved else RangeObserver()
            else:
                assert isinstance(activation, BernoulliActivation)
                activation.levels = fixed_point.theta_bits
                activation.z_fractional = None if grids is None else grids.z_fractional(i)
        assert isinstance(self.head, FixedLinear)
        self.head.weight_grid = None if grids is None else grids.head
        self.head.bias_fractional = None if grids is None else grids.logit_fractional

    def _set_fixed_point(self, fixed_point: FixedPointConfig) -> None:
        self.config = replace(self.config, fixed_point=fixed_point)
        self.fixed_point_integer_bits.copy_(torch.tensor(fixed_point.integer_bits(), dtype=torch.int64))
        self._apply_fixed_point(fixed_point)

    def choose_grids(self) -> None:
        """Choose the pending grids' integer bits from the ranges observed so far and the current weights."""
        fixed_point = self.config.fixed_point
        if fixed_point is None or fixed_point.resolved:
            return
        assert self.input_observer is not None
        observers = [a.observer if isinstance(a, FixedReLU) else None for a in self.activations]
        with torch.no_grad():
            weights = [layer.weight.detach().numpy() for layer in self.layers]
            head = self.head.weight.detach().numpy()
        self._set_fixed_point(choose_integer_bits(fixed_point, self.input_observer, observers, weights, head))

    def calibrate(self, standardized: torch.Tensor) -> None:
        """Choose the pending grids from these (standardised) events with the current weights, in one float pass."""
        if not self.grids_pending:
            return
        mode = self.training
        generator = [layer.generator for layer in self.bernoulli_layers()]
        super().train(True)
        try:
            with torch.no_grad():
                self.forward(standardized)
        finally:
            super().train(mode)
            for layer, g in zip(self.bernoulli_layers(), generator):
                layer.generator = g
        self.choose_grids()

    def finish_epoch(self) -> None:
        """After a training epoch: pending grids are chosen from the ranges that epoch observed."""
        if self.grids_pending and self.input_observer is not None and self.input_observer.total > 0:
            self.choose_grids()

    # -------------------------------------------------------------- forward
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

    def forward(self, x: torch.Tensor, *, outputs: bool = False, scoring: Scoring | None = None) -> torch.Tensor | Outputs:
        if self.config.fixed_point is not None:
            result = self._forward_fixed(x, scoring)
        else:
            result = self._forward_float(x, scoring)
        return result if outputs else result.logit

    @staticmethod
    def _hidden(activation: nn.Module, z: torch.Tensor, scoring: Scoring | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A hidden layer's output and θ (its output when it is not stochastic)."""
        if isinstance(activation, BernoulliActivation):
            return activation(z, scoring=scoring, with_theta=True)
        h = activation(z)
        return h, h

    def _forward_float(self, x: torch.Tensor, scoring: Scoring | None) -> Outputs:
        h = x
        theta = output = x
        for i, (layer, activation) in enumerate(zip(self.layers, self.activations)):
            h, probabilities = self._hidden(activation, self.first_layer(h) if i == 0 else layer(h), scoring)
            if i == self.representation_index:
                output, theta = h, probabilities
        return Outputs(self.head(h).squeeze(-1), theta, output)

    def _forward_fixed(self, x: torch.Tensor, scoring: Scoring | None) -> Outputs:
        """The fixed-point network; in eval mode in float64, where every value and sum on the grids is exact."""
        dtype = x.dtype
        if self.input_observer is not None and self.training:
            self.input_observer.observe(x)
        h = x if self.input_grid is None else self.input_grid.quantize(x)
        if not self.training and not self.grids_pending:
            h = h.double()
        theta = output = x
        for i, (layer, activation) in enumerate(zip(self.layers, self.activations)):
            h, probabilities = self._hidden(activation, layer(h), scoring)
            if i == self.representation_index:
                output, theta = h.to(dtype), probabilities.to(dtype)
        # a float64 logit on the grid keeps its sign (and zero) when it becomes float32
        return Outputs(self.head(h).squeeze(-1).to(dtype), theta, output)

    @property
    def representation_is_stochastic(self) -> bool:
        return self.config.stochastic[self.representation_index]

    @property
    def representation_width(self) -> int:
        return self.config.hidden[self.representation_index]


def _sync_fixed_point(module: nn.Module, incompatible: Any) -> None:
    """After loading a state: grids chosen in the loaded buffer become the config's (a resumed training)."""
    assert isinstance(module, SQNN) and module.config.fixed_point is not None
    loaded = [int(b) for b in module.fixed_point_integer_bits.tolist()]
    current = module.config.fixed_point.integer_bits()
    if loaded == current or UNRESOLVED in loaded:
        if UNRESOLVED in loaded and loaded != current:
            module.fixed_point_integer_bits.copy_(torch.tensor(current, dtype=torch.int64))
        return
    if module.config.fixed_point.resolved:
        raise ModelFileError(
            f"the fixed-point integer bits in the tensors ({loaded}) disagree with the network's fixed_point grids ({current})"
        )
    module._set_fixed_point(module.config.fixed_point.with_integer_bits(loaded))


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
