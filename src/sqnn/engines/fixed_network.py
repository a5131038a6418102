"""What every engine runs for a fixed-point network: its exact integer arithmetic.

A network trained with ``network: {fixed_point: ...}`` (:mod:`sqnn.nn.fixed`) is, after
standardisation, a chain of integer operations:

- inputs: x_int = clip(round_half_even(x · 2^F_x), −2^(W−1), 2^(W−1) − 1);
- each hidden layer: z_int = W_int · c + b_int in units of 2^-(F_in + F_w), c the
  previous layer's codes (x_int for the first);
- a **ReLU** layer's codes: clip(round_half_even(z_int / 2^(F_z − F_a)), 0, 2^W_a − 1);
- a **Bernoulli** layer's codes: ``level`` · #{k : z_int ≥ T_k} — the θ table
  (:func:`sqnn.nn.quant.theta_thresholds`) under ``mean`` scoring (level 1, codes
  m = 2^B θ_q), or the threshold z > 0 (T = [1], level 2^B) under ``deterministic``;
- the head: logit_int = w_int · c + b_int in units of 2^-F_logit; the decision is logit > 0.

:meth:`FixedNetwork.reference` evaluates it in int64 numpy; the torch model, the packed
engine, the ONNX graph and the hls4ml firmware are tested against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqnn.engines.network import read_export, require_network, write_export
from sqnn.errors import ModelFileError, SqnnError
from sqnn.nn import BernoulliActivation
from sqnn.nn.fixed import FixedLinear, FixedReLU
from sqnn.nn.quant import FixedPoint, round_shift, theta_levels_numpy, theta_thresholds
from sqnn.runs import Run

__all__ = ["FixedLayer", "FixedNetwork", "FixedReference", "FORMAT", "RELU", "THETA", "SCORING"]

FORMAT = "sqnn-fixed"
RELU, THETA = "relu", "theta"
# how a fixed-point network's Bernoulli units can be scored by the engines
SCORING = ("mean", "deterministic")


@dataclass(frozen=True)
class FixedLayer:
    """One hidden layer in integers: weights (units 2^-F_w), bias and z (units 2^-z_fractional), and its activation."""

    weight_int: np.ndarray  # int64 (n_out, n_in)
    bias_int: np.ndarray  # int64 (n_out,)
    weight_grid: FixedPoint
    input_fractional: int
    activation: str  # RELU or THETA
    output_grid: FixedPoint | None = None  # RELU: the unsigned grid of the outputs
    thresholds: np.ndarray | None = None  # THETA: int64 T_k in units of 2^-z_fractional
    level: int = 1  # THETA: code per threshold reached
    theta_bits: int = 0  # THETA: B, the codes are in units of 2^-B

    @property
    def n_out(self) -> int:
        return int(self.weight_int.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.weight_int.shape[1])

    @property
    def z_fractional(self) -> int:
        return self.input_fractional + self.weight_grid.fractional

    @property
    def output_fractional(self) -> int:
        return self.output_grid.fractional if self.activation == RELU and self.output_grid is not None else self.theta_bits

    @property
    def max_code(self) -> int:
        if self.activation == RELU:
            assert self.output_grid is not None
            return self.output_grid.max_int
        assert self.thresholds is not None
        return self.level * len(self.thresholds)

    @property
    def relu_shift(self) -> int:
        """codes = z_int / 2^shift rounded (a left shift when negative)."""
        assert self.output_grid is not None
        return self.z_fractional - self.output_grid.fractional

    def activate(self, z_int: np.ndarray) -> np.ndarray:
        """Codes (int64) of pre-activations z_int."""
        if self.activation == RELU:
            return np.clip(round_shift(np.maximum(z_int, 0), self.relu_shift), 0, self.max_code)
        assert self.thresholds is not None
        return self.level * theta_levels_numpy(z_int, self.thresholds)

    def z_bound(self, input_bound: int) -> int:
        """Largest |z_int| (and partial sum) any input codes up to ``input_bound`` can reach."""
        return int((np.abs(self.weight_int).sum(1) * input_bound + np.abs(self.bias_int)).max()) if self.n_out else 0


@dataclass
class FixedReference:
    """Exact evaluation of a fixed-point network on some events."""

    standardized: np.ndarray  # float32 (N, n_in)
    inputs: np.ndarray  # int64 (N, n_in): x_int
    z: list[np.ndarray]  # int64 (N, n_out) per hidden layer
    codes: list[np.ndarray]  # int64 (N, n_out) per hidden layer
    logit_int: np.ndarray  # int64 (N,)
    logit: np.ndarray  # float64 (N,)

    @property
    def decision(self) -> np.ndarray:
        return self.logit > 0


@dataclass(frozen=True)
class FixedNetwork:
    """Standardisation, input grid, integer hidden layers and the integer head of one fixed-point run."""

    features: tuple[str, ...]
    mean: np.ndarray  # float64
    scale: np.ndarray  # float64
    temperature: float
    scoring: str  # "mean" or "deterministic"
    input_grid: FixedPoint
    layers: tuple[FixedLayer, ...]
    head_weight_int: np.ndarray  # int64 (n_in,)
    head_bias_int: int
    head_grid: FixedPoint
    source: str = ""

    @property
    def n_inputs(self) -> int:
        return len(self.features)

    @property
    def widths(self) -> list[int]:
        return [layer.n_out for layer in self.layers]

    @property
    def head_input_fractional(self) -> int:
        return self.layers[-1].output_fractional

    @property
    def logit_fractional(self) -> int:
        return self.head_input_fractional + self.head_grid.fractional

    @property
    def logit_lsb(self) -> float:
        return 2.0**-self.logit_fractional

    def input_bound(self, layer: int) -> int:
        """Largest |code| entering hidden layer ``layer`` (``len(layers)``: the head)."""
        if layer == 0:
            return -self.input_grid.min_int
        return self.layers[layer - 1].max_code

    def bounds(self) -> list[int]:
        """Largest |z_int| of every hidden layer, then of the logit."""
        out = [layer.z_bound(self.input_bound(i)) for i, layer in enumerate(self.layers)]
        head = int(np.abs(self.head_weight_int).sum() * self.input_bound(len(self.layers)) + abs(self.head_bias_int))
        return out + [head]

    # ----------------------------------------------------------------- building
    @classmethod
    def from_run(cls, run: Run, inference: str | None = None) -> "FixedNetwork":
        """The integer arithmetic of a fixed-point run, scored ``inference`` (default: the run's own)."""
        model = require_network(run)
        config = model.config
        fixed_point = config.fixed_point
        if fixed_point is None:
            raise SqnnError(f"{run.path}: not a fixed-point network (no network.fixed_point in model.json)")
        if not fixed_point.resolved:
            raise SqnnError(f"{run.path}: the fixed-point grids were never chosen (the network was not trained); train it first")
        scoring = config.inference if inference is None else inference
        if scoring not in SCORING:
            raise SqnnError(
                f"{run.path}: the engines score a fixed-point network with its expectation (mean) or thresholded "
                f"(deterministic), not {scoring!r}"
            )
        grids = fixed_point.grids()
        layers = []
        with torch.no_grad():
            for i, (layer, activation) in enumerate(zip(model.layers, model.activations)):
                assert isinstance(layer, FixedLinear)
                weight_int, bias_int = _integers(layer, grids.weights[i], grids.z_fractional(i))
                common = dict(weight_int=weight_int, bias_int=bias_int, weight_grid=grids.weights[i], input_fractional=grids.input_fractional(i))
                if isinstance(activation, FixedReLU):
                    layers.append(FixedLayer(activation=RELU, output_grid=grids.activations[i], **common))  # type: ignore[arg-type]
                else:
                    assert isinstance(activation, BernoulliActivation)
                    bits = fixed_point.theta_bits
                    if scoring == "mean":
                        thresholds = theta_thresholds(config.temperature, bits, grids.z_fractional(i))
                        layers.append(FixedLayer(activation=THETA, thresholds=thresholds, level=1, theta_bits=bits, **common))  # type: ignore[arg-type]
                    else:
                        # z > 0 on the grid: z_int ≥ 1; the bit is 2^B in units of 2^-B
                        layers.append(FixedLayer(activation=THETA, thresholds=np.ones(1, np.int64), level=1 << bits, theta_bits=bits, **common))  # type: ignore[arg-type]
            assert isinstance(model.head, FixedLinear)
            head_weight, head_bias = _integers(model.head, grids.head, grids.logit_fractional)
        return cls(
            features=tuple(run.features),
            mean=np.asarray(run.standardizer.mean, dtype=np.float64),
            scale=np.asarray(run.standardizer.scale, dtype=np.float64),
            temperature=float(config.temperature),
            scoring=scoring,
            input_grid=grids.input,
            layers=tuple(layers),
            head_weight_int=head_weight[0],
            head_bias_int=int(head_bias[0]),
            head_grid=grids.head,
            source=str(run.path),
        )

    # ---------------------------------------------------------------- reference
    def standardize(self, features: np.ndarray) -> np.ndarray:
        """Exactly what :class:`sqnn.data.Standardizer` gives torch: float64 arithmetic, then float32."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.n_inputs:
            raise SqnnError(f"expected events with {self.n_inputs} features ({', '.join(self.features[:4])}…), got shape {features.shape}")
        return ((features.astype(np.float64) - self.mean) / self.scale).astype(np.float32)

    def input_integers(self, standardized: np.ndarray) -> np.ndarray:
        """x_int (int64): the standardised float32 inputs rounded onto the input grid, as torch rounds them."""
        return self.input_grid.to_integers_numpy(np.asarray(standardized, dtype=np.float32)).astype(np.int64)

    def reference(self, features: np.ndarray) -> FixedReference:
        standardized = self.standardize(features)
        codes = self.input_integers(standardized)
        inputs = codes
        zs, all_codes = [], []
        for layer in self.layers:
            z = codes @ layer.weight_int.T + layer.bias_int
            codes = layer.activate(z)
            zs.append(z)
            all_codes.append(codes)
        logit_int = codes @ self.head_weight_int + self.head_bias_int
        return FixedReference(standardized=standardized, inputs=inputs, z=zs, codes=all_codes, logit_int=logit_int,
                              logit=logit_int * self.logit_lsb)

    # --------------------------------------------------------------- on disk
    def save(self, directory: str | Path) -> None:
        """``network.safetensors`` (arrays) + ``network.json`` (everything else); no pickles."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, np.ndarray] = {"mean": self.mean, "scale": self.scale, "head.weight_int": self.head_weight_int}
        layers: list[dict[str, Any]] = []
        for i, layer in enumerate(self.layers):
            tensors[f"layer{i}.weight_int"] = layer.weight_int
            tensors[f"layer{i}.bias_int"] = layer.bias_int
            spec: dict[str, Any] = {"activation": layer.activation, "weight_grid": layer.weight_grid.to_list(),
                                    "input_fractional": layer.input_fractional}
            if layer.activation == RELU:
                assert layer.output_grid is not None
                spec["output_grid"] = layer.output_grid.to_list()
            else:
                assert layer.thresholds is not None
                tensors[f"layer{i}.thresholds"] = layer.thresholds
                spec.update(level=layer.level, theta_bits=layer.theta_bits)
            layers.append(spec)
        meta = {
            "format": FORMAT,
            "features": list(self.features),
            "temperature": self.temperature,
            "scoring": self.scoring,
            "input_grid": self.input_grid.to_list(),
            "layers": layers,
            "head": {"grid": self.head_grid.to_list(), "bias_int": self.head_bias_int},
            "source": self.source,
        }
        write_export(directory, tensors, meta)

    @classmethod
    def load(cls, directory: str | Path) -> "FixedNetwork":
        directory = Path(directory)
        meta, tensors = read_export(directory, FORMAT, "a fixed-point export")
        try:
            layers = []
            for i, spec in enumerate(meta["layers"]):
                grid = lambda value, signed=True: FixedPoint(int(value[0]), int(value[1]), signed)  # noqa: E731
                common = dict(weight_int=tensors[f"layer{i}.weight_int"].astype(np.int64), bias_int=tensors[f"layer{i}.bias_int"].astype(np.int64),
                              weight_grid=grid(spec["weight_grid"]), input_fractional=int(spec["input_fractional"]))
                if spec["activation"] == RELU:
                    layers.append(FixedLayer(activation=RELU, output_grid=grid(spec["output_grid"], False), **common))  # type: ignore[arg-type]
                elif spec["activation"] == THETA:
                    layers.append(FixedLayer(activation=THETA, thresholds=tensors[f"layer{i}.thresholds"].astype(np.int64),
                                             level=int(spec["level"]), theta_bits=int(spec["theta_bits"]), **common))  # type: ignore[arg-type]
                else:
                    raise ValueError(f"unknown activation {spec['activation']!r}")
            head = meta["head"]
            return cls(
                features=tuple(meta["features"]), mean=tensors["mean"], scale=tensors["scale"],
                temperature=float(meta["temperature"]), scoring=str(meta["scoring"]),
                input_grid=FixedPoint(*map(int, meta["input_grid"])), layers=tuple(layers),
                head_weight_int=tensors["head.weight_int"].astype(np.int64), head_bias_int=int(head["bias_int"]),
                head_grid=FixedPoint(*map(int, head["grid"])), source=str(meta.get("source", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{directory}: inconsistent fixed-point export ({type(exc).__name__}: {exc})") from None


def _integers(layer: FixedLinear, grid: FixedPoint, bias_fractional: int) -> tuple[np.ndarray, np.ndarray]:
    """(W_int, b_int) as int64 exactly as the torch layer rounds its float32 parameters."""
    weight = layer.weight.detach().numpy().astype(np.float32)
    bias = layer.bias.detach().numpy().astype(np.float32)
    weight_int = grid.to_integers_numpy(weight).astype(np.int64)
    bias_int = np.rint(bias.astype(np.float64) * 2.0**bias_fractional).astype(np.int64)
    return weight_int, bias_int
