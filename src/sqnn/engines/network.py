"""What every deployment engine runs: an exact, engine-neutral description of a trained SQNN.

A network for the packed engine and the firmware has float inputs, a first layer, any
number of step layers on bits, and a linear head that gives the logit:

- the **first layer** multiplies the standardised (and, with quantisation-aware
  training, fixed-point) inputs. With both ``input_fixed`` and ``first_layer_fixed``
  it is exact integer arithmetic: ``z_int = W_int · x_int + b_int`` in units of
  2^-(F_x + F_w);
- a **binary layer** (sign weights α·s, bias b) on bits t fires when
  α·c + b > 0 with c = Σ s_j t_j: an integer threshold ``c ≥ T``;
- a **grid layer** (float weights on bits) and the **head** have their float32 weights
  written on a fine fixed-point grid 2^-F (F ≤ 40, every float32 weight above 2^-17 is
  exactly on it), so their sums are exact integers in every engine.

A step unit fires when z > 0, as the Bernoulli layer does at deterministic inference
(θ = σ(τz) > 1/2). :meth:`DeployedNetwork.reference` evaluates the description with
numpy in exact arithmetic; engines are tested against it and against torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqnn.errors import ModelFileError, SqnnError, option
from sqnn.nn import SQNN, BernoulliActivation, BinaryLinear
from sqnn.nn.quant import FixedPoint
from sqnn.runs import Run

__all__ = [
    "DeployedNetwork", "FirstLayer", "BinaryLayer", "GridLayer", "Reference", "unpack_bits", "pack_bits", "require_network", "FLOAT32_EXACT",
]

FLOAT32_EXACT = 1 << 24
_GRID_MAX_FRACTIONAL = 40
_DOUBLE_BITS = 52
NETWORK_FILE = "network.safetensors"
NETWORK_JSON = "network.json"
FORMAT = "sqnn-deployed"


@dataclass(frozen=True)
class FirstLayer:
    """Dense layer on the standardised inputs; ``weight``/``bias`` are what torch multiplies (float32)."""

    weight: np.ndarray
    bias: np.ndarray
    input_grid: FixedPoint | None
    weight_grid: FixedPoint | None

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def is_integer(self) -> bool:
        """Exact integer arithmetic: inputs and weights both on fixed-point grids."""
        return self.input_grid is not None and self.weight_grid is not None

    @property
    def z_fractional(self) -> int:
        """Fractional bits of z in the integer form."""
        assert self.input_grid is not None and self.weight_grid is not None
        return self.input_grid.fractional + self.weight_grid.fractional

    def integer_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(W_int, b_int) as int64, z_int = W_int · x_int + b_int in units of 2^-(F_x + F_w)."""
        assert self.input_grid is not None and self.weight_grid is not None
        w = np.rint(self.weight.astype(np.float64) * 2.0**self.weight_grid.fractional).astype(np.int64)
        b = np.rint(self.bias.astype(np.float64) * 2.0**self.z_fractional).astype(np.int64)
        return w, b

    def z_bound(self) -> int:
        """Largest |z_int| any input can reach (integer form only)."""
        assert self.input_grid is not None
        w, b = self.integer_weights()
        x_max = 1 << (self.input_grid.width - 1)
        return int((np.abs(w).sum(1) * x_max + np.abs(b)).max())

    @property
    def float32_exact(self) -> bool:
        """Float32 arithmetic on the integer form cannot round (every partial sum < 2^24)."""
        return self.is_integer and self.z_bound() < FLOAT32_EXACT


@dataclass(frozen=True)
class BinaryLayer:
    """Sign weights α·s on bits: fires when c = Σ s_j t_j ≥ ``threshold`` (⇔ α·c + b > 0)."""

    positive: np.ndarray  # bool (n_out, n_in): s = +1
    alpha: float
    bias: np.ndarray  # float32 (n_out,)
    threshold: np.ndarray  # int64 (n_out,)

    @property
    def n_out(self) -> int:
        return int(self.positive.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.positive.shape[1])

    def signs(self) -> np.ndarray:
        return np.where(self.positive, 1, -1).astype(np.int64)


@dataclass(frozen=True)
class GridLayer:
    """Float weights on bits, held exactly as integers in units of 2^-``fractional``."""

    weight_int: np.ndarray  # int64 (n_out, n_in)
    bias_int: np.ndarray  # int64 (n_out,)
    fractional: int
    integer: int  # bits before the binary point of the weights (sign included)

    @property
    def n_out(self) -> int:
        return int(self.weight_int.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.weight_int.shape[1])

    @property
    def lsb(self) -> float:
        return 2.0**-self.fractional


@dataclass
class Reference:
    """Exact evaluation of a deployed network on some events."""

    standardized: np.ndarray  # float32 (N, n_in), what torch gets
    first_z: np.ndarray  # float64 (N, n_out): z of the first layer (exact in the integer form)
    hidden: list[np.ndarray]  # bool (N, n_units) per step layer
    logit: np.ndarray  # float64 (N,)

    @property
    def decision(self) -> np.ndarray:
        return self.logit > 0


def require_network(run: Run) -> SQNN:
    """The run's feed-forward SQNN; other model kinds (trees, set models) raise."""
    if not isinstance(run.model, SQNN):
        kind = run.meta.get("model_kind", type(run.model).__name__)
        raise SqnnError(f"{run.path}: the deployment engines run feed-forward SQNN networks; this run holds a {kind} model")
    return run.model


def unpack_bits(words: np.ndarray, n: int) -> np.ndarray:
    """(N, n_words) uint64 → (N, n) bool, bit j of word j // 64."""
    words = np.ascontiguousarray(words, dtype=np.uint64)
    as_bytes = words.view(np.uint8).reshape(len(words), -1)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :n].astype(bool)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(N, n) bool → (N, ceil(n/64)) uint64; inverse of :func:`unpack_bits`."""
    bits = np.asarray(bits, dtype=bool)
    n_words = max(1, -(-bits.shape[1] // 64))
    padded = np.zeros((len(bits), n_words * 64), dtype=bool)
    padded[:, : bits.shape[1]] = bits
    return np.packbits(padded, axis=1, bitorder="little").view(np.uint64).reshape(len(bits), n_words)


def binary_threshold(alpha: float, bias: np.ndarray, n_in: int) -> np.ndarray:
    """Smallest integer c in [-n, n + 1] with α·c + b > 0, evaluated exactly (float64 of float32 values)."""
    candidates = np.arange(-n_in, n_in + 1, dtype=np.float64)
    fires = float(alpha) * candidates[None, :] + bias.astype(np.float64)[:, None] > 0
    # fires is monotone in c for α ≥ 0: the threshold is the first True (n + 1 when none)
    first = np.where(fires.any(1), fires.argmax(1), 2 * n_in + 1)
    return (first - n_in).astype(np.int64)


def to_grid(values: np.ndarray, n_in: int) -> tuple[np.ndarray, int, int]:
    """Integers and (fractional, integer) bits of the finest grid on which every sum of ``n_in`` values stays exact in float64."""
    largest = float(np.abs(values).max()) if values.size else 0.0
    integer = max(1, math.floor(math.log2(largest)) + 2) if largest > 0 else 1
    headroom = math.ceil(math.log2(n_in + 2))
    fractional = int(min(_GRID_MAX_FRACTIONAL, _DOUBLE_BITS - integer - headroom))
    ints = np.rint(values.astype(np.float64) * 2.0**fractional).astype(np.int64)
    return ints, fractional, integer


@dataclass(frozen=True)
class DeployedNetwork:
    """Standardisation, first layer, step layers on bits and the head of one trained run."""

    features: tuple[str, ...]
    mean: np.ndarray  # float64
    scale: np.ndarray  # float64
    temperature: float
    first: FirstLayer
    hidden: tuple[BinaryLayer | GridLayer, ...]
    head: GridLayer
    source: str = ""

    @property
    def n_inputs(self) -> int:
        return len(self.features)

    @property
    def widths(self) -> list[int]:
        return [self.first.n_out] + [layer.n_out for layer in self.hidden]

    # ----------------------------------------------------------------- building
    @classmethod
    def from_run(cls, run: Run) -> "DeployedNetwork":
        """Extract the exact arithmetic of a run; hidden layers must be step (Bernoulli) layers."""
        model = require_network(run)
        config = model.config
        if config.fixed_point is not None:
            raise SqnnError(
                f"{run.path}: a fixed-point network runs in the engines scored by its mean or thresholded; "
                "stochastic (LFSR) inference of a fixed-point network is not implemented"
            )
        for i, stochastic in enumerate(config.stochastic):
            if not stochastic:
                raise SqnnError(
                    f"{run.path}: hidden layer {i} is a full-precision ReLU layer; the packed engine and the firmware "
                    f"need step (Bernoulli) hidden layers: use {option('engine', 'torch', repr('torch'))} or onnx, "
                    "or train with stochastic: true for every layer"
                )
        assert all(isinstance(a, BernoulliActivation) for a in model.activations)
        weights = []
        with torch.no_grad():
            for layer in model.layers:
                w = layer.binary_weight() if isinstance(layer, BinaryLinear) else layer.weight
                weights.append((w.detach().numpy().astype(np.float32), layer.bias.detach().numpy().astype(np.float32)))
        input_grid, weight_grid = config.input_grid(), config.first_layer_grid()
        w1, b1 = weights[0]
        if weight_grid is not None:
            w1, b1 = weight_grid.quantize_numpy(w1).astype(np.float32), weight_grid.quantize_numpy(b1).astype(np.float32)
        first = FirstLayer(weight=w1, bias=b1, input_grid=input_grid, weight_grid=weight_grid)
        hidden: list[BinaryLayer | GridLayer] = []
        for (w, b), binary in zip(weights[1:], config.binary_weights[1:]):
            if binary:
                alpha = float(np.abs(w).max()) if w.size else 0.0
                positive = w >= 0 if alpha > 0 else np.ones_like(w, dtype=bool)
                hidden.append(BinaryLayer(positive=positive, alpha=alpha, bias=b, threshold=binary_threshold(alpha, b, w.shape[1])))
            else:
                hidden.append(_grid_layer(w, b))
        head_w = model.head.weight.detach().numpy().astype(np.float32)
        head_b = model.head.bias.detach().numpy().astype(np.float32)
        return cls(
            features=tuple(run.features),
            mean=np.asarray(run.standardizer.mean, dtype=np.float64),
            scale=np.asarray(run.standardizer.scale, dtype=np.float64),
            temperature=float(config.temperature),
            first=first,
            hidden=tuple(hidden),
            head=_grid_layer(head_w, head_b),
            source=str(run.path),
        )

    # ---------------------------------------------------------------- reference
    def standardize(self, features: np.ndarray) -> np.ndarray:
        """Exactly what :class:`sqnn.data.Standardizer` gives torch: float64 arithmetic, then float32."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.n_inputs:
            raise SqnnError(f"expected events with {self.n_inputs} features ({', '.join(self.features[:4])}…), got shape {features.shape}")
        return ((features.astype(np.float64) - self.mean) / self.scale).astype(np.float32)

    def first_layer_inputs(self, standardized: np.ndarray) -> np.ndarray:
        """The first layer's inputs: x_int (int64) in the integer form, else float32 (on the input grid if set)."""
        grid = self.first.input_grid
        if grid is None:
            return standardized
        ints = grid.to_integers_numpy(standardized.astype(np.float32))
        return ints.astype(np.int64) if self.first.is_integer else (ints * np.float32(grid.lsb)).astype(np.float32)

    def first_layer_z(self, standardized: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """z of the first layer as float64, and as exact integers (units 2^-F_z) in the integer form."""
        x = self.first_layer_inputs(standardized)
        if self.first.is_integer:
            w, b = self.first.integer_weights()
            z_int = x @ w.T + b
            return z_int * 2.0**-self.first.z_fractional, z_int
        z = x.astype(np.float64) @ self.first.weight.astype(np.float64).T + self.first.bias.astype(np.float64)
        return z, None

    def reference(self, features: np.ndarray) -> Reference:
        """Deterministic inference in exact arithmetic (float64 sums of float32 products for a float first layer)."""
        standardized = self.standardize(features)
        z, z_int = self.first_layer_z(standardized)
        bits = (z_int > 0) if z_int is not None else (z > 0)
        hidden = [bits]
        for layer in self.hidden:
            bits = hidden_step(layer, bits)
            hidden.append(bits)
        logit = (bits.astype(np.int64) @ self.head.weight_int[0] + self.head.bias_int[0]) * self.head.lsb
        return Reference(standardized=standardized, first_z=z, hidden=hidden, logit=logit)

    # --------------------------------------------------------------- on disk
    def save(self, directory: str | Path) -> None:
        """``network.safetensors`` (arrays) + ``network.json`` (everything else); no pickles."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, np.ndarray] = {
            "mean": self.mean, "scale": self.scale,
            "first.weight": self.first.weight, "first.bias": self.first.bias,
            "head.weight_int": self.head.weight_int, "head.bias_int": self.head.bias_int,
        }
        layers: list[dict[str, Any]] = []
        for i, layer in enumerate(self.hidden):
            if isinstance(layer, BinaryLayer):
                tensors[f"hidden{i}.positive"] = layer.positive.astype(np.uint8)
                tensors[f"hidden{i}.bias"] = layer.bias
                tensors[f"hidden{i}.threshold"] = layer.threshold
                layers.append({"kind": "binary", "alpha": layer.alpha})
            else:
                tensors[f"hidden{i}.weight_int"] = layer.weight_int
                tensors[f"hidden{i}.bias_int"] = layer.bias_int
                layers.append({"kind": "grid", "fractional": layer.fractional, "integer": layer.integer})
        meta = {
            "format": FORMAT,
            "features": list(self.features),
            "temperature": self.temperature,
            "input_fixed": None if self.first.input_grid is None else self.first.input_grid.to_list(),
            "first_layer_fixed": None if self.first.weight_grid is None else self.first.weight_grid.to_list(),
            "hidden": layers,
            "head": {"fractional": self.head.fractional, "integer": self.head.integer},
            "source": self.source,
        }
        write_export(directory, tensors, meta)

    @classmethod
    def load(cls, directory: str | Path) -> "DeployedNetwork":
        directory = Path(directory)
        meta, tensors = read_export(directory, FORMAT, "a packed export")
        try:
            hidden: list[BinaryLayer | GridLayer] = []
            for i, spec in enumerate(meta["hidden"]):
                if spec["kind"] == "binary":
                    hidden.append(BinaryLayer(
                        positive=tensors[f"hidden{i}.positive"].astype(bool), alpha=float(spec["alpha"]),
                        bias=tensors[f"hidden{i}.bias"], threshold=tensors[f"hidden{i}.threshold"],
                    ))
                else:
                    hidden.append(GridLayer(
                        weight_int=tensors[f"hidden{i}.weight_int"], bias_int=tensors[f"hidden{i}.bias_int"],
                        fractional=int(spec["fractional"]), integer=int(spec["integer"]),
                    ))
            return cls(
                features=tuple(meta["features"]),
                mean=tensors["mean"], scale=tensors["scale"], temperature=float(meta["temperature"]),
                first=FirstLayer(
                    weight=tensors["first.weight"], bias=tensors["first.bias"],
                    input_grid=FixedPoint.parse(meta["input_fixed"], "input_fixed"),
                    weight_grid=FixedPoint.parse(meta["first_layer_fixed"], "first_layer_fixed"),
                ),
                hidden=tuple(hidden),
                head=GridLayer(
                    weight_int=tensors["head.weight_int"], bias_int=tensors["head.bias_int"],
                    fractional=int(meta["head"]["fractional"]), integer=int(meta["head"]["integer"]),
                ),
                source=str(meta.get("source", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{directory}: inconsistent packed export ({type(exc).__name__}: {exc})") from None


def _grid_layer(weight: np.ndarray, bias: np.ndarray) -> GridLayer:
    ints, fractional, integer = to_grid(np.concatenate([weight.ravel(), bias.ravel()]), weight.shape[1])
    return GridLayer(
        weight_int=ints[: weight.size].reshape(weight.shape), bias_int=ints[weight.size :], fractional=fractional, integer=integer
    )


def hidden_step(layer: BinaryLayer | GridLayer, bits: np.ndarray) -> np.ndarray:
    """Bits of a step layer on bits, exactly."""
    return hidden_preactivation(layer, bits) > (layer.threshold - 1 if isinstance(layer, BinaryLayer) else 0)


def hidden_preactivation(layer: BinaryLayer | GridLayer, bits: np.ndarray) -> np.ndarray:
    """c = Σ s_j t_j (binary layer) or z_int = W_int · t + b_int (grid layer), int64."""
    t = bits.astype(np.int64)
    if isinstance(layer, BinaryLayer):
        return t @ layer.signs().T
    return t @ layer.weight_int.T + layer.bias_int


def write_export(directory: Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """``network.safetensors`` (arrays) and ``network.json`` (everything else) of an export, each atomically."""
    from safetensors.numpy import save_file

    from sqnn.files import atomic_path, write_json

    with atomic_path(directory / NETWORK_FILE) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
    write_json(directory / NETWORK_JSON, meta)


def read_export(directory: Path, format: str, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The description and arrays of an export of ``format``; anything else is a one-line error."""
    from safetensors.numpy import load_file

    try:
        meta = json.loads((directory / NETWORK_JSON).read_text())
        tensors = load_file(str(directory / NETWORK_FILE))
    except FileNotFoundError as exc:
        raise ModelFileError(f"{exc.filename}: missing; {directory} is not a packed export") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{directory / NETWORK_JSON}: not valid JSON ({exc})") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelFileError(f"{directory / NETWORK_FILE}: not a readable safetensors file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != format:
        raise ModelFileError(f"{directory / NETWORK_JSON}: not {what} (format must be {format!r})")
    return meta, tensors
