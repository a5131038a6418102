"""ONNX export of a run's inference, and an onnxruntime engine.

The exported graph takes the **raw** features in float64 and does everything inside:
standardisation in float64 then float32 (as :class:`sqnn.data.Standardizer`), the
fixed-point input grid (Round is half-to-even in ONNX, as in torch), the first layer,
and each step activation as a comparison ``z > 0`` cast to float. Bernoulli units of a
float network scored by their expectation (``mean``) are σ(τz) in float32, as torch
computes them. Exactness where the torch model is exact:

- a quantisation-aware first layer is exported in its integer form (x_int, W_int,
  b_int); float32 Gemm is exact there while every partial sum is below 2^24, otherwise
  it runs in float64;
- a binary layer on bits is exported as ±1 weights and the half-integer bias 0.5 − T
  (T the integer threshold that holds α and b), so its decisions are exact integers;
- a fixed-point network (:mod:`sqnn.engines.fixed_network`) is exported in its integer
  form: every layer a Gemm on integer-valued floats (float32 while the sums stay below
  2^24, else float64), ReLU codes by Mul, Round and Clip, θ levels by comparing z with
  the table's thresholds and summing, so the graph computes the reference exactly.

``torch.onnx.export(dynamo=False)`` with ``dynamic_axes``: the dynamo exporter fails on
step modules.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sqnn.engines.fixed_network import RELU, FixedLayer, FixedNetwork
from sqnn.engines.network import FLOAT32_EXACT, FirstLayer, binary_threshold, require_network
from sqnn.errors import SqnnError
from sqnn.nn import BernoulliActivation, BinaryLinear
from sqnn.runs import Run

__all__ = ["InferenceModule", "FixedInferenceModule", "export_onnx", "OnnxEngine", "OPSET"]

OPSET = 17


class _Step(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z > 0).to(torch.float32)


class _Sigmoid(nn.Module):
    """θ = σ(τz): a Bernoulli unit scored by its expectation, in float32 as torch computes it."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.temperature * z)


class _Linear(nn.Module):
    """A fixed linear map (weights as buffers) computed in ``dtype``; output float32."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.register_buffer("weight", torch.from_numpy(np.ascontiguousarray(weight)).to(dtype))
        self.register_buffer("bias", torch.from_numpy(np.ascontiguousarray(bias)).to(dtype))
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.to(self.dtype), self.weight, self.bias).to(torch.float32)


class InferenceModule(nn.Module):
    """Raw features (float64) → logit (float32), and optionally every hidden layer's output.

    ``inference`` is ``deterministic`` (step units) or ``mean`` (θ of a float network).
    """

    def __init__(self, run: Run, with_hidden: bool = False, inference: str = "deterministic") -> None:
        super().__init__()
        model = require_network(run)
        config = model.config
        self.with_hidden = with_hidden
        self.register_buffer("mean", torch.from_numpy(np.asarray(run.standardizer.mean, dtype=np.float64)))
        self.register_buffer("scale", torch.from_numpy(np.asarray(run.standardizer.scale, dtype=np.float64)))
        self.input_grid = config.input_grid()
        weight_grid = config.first_layer_grid()
        with torch.no_grad():
            effective = [
                ((layer.binary_weight() if isinstance(layer, BinaryLinear) else layer.weight).numpy().astype(np.float32),
                 layer.bias.numpy().astype(np.float32))
                for layer in model.layers
            ]
        w1, b1 = effective[0]
        self.integer_input = False
        if weight_grid is not None:
            first = FirstLayer(weight_grid.quantize_numpy(w1).astype(np.float32), weight_grid.quantize_numpy(b1).astype(np.float32),
                               self.input_grid, weight_grid)
            if first.is_integer:
                w_int, b_int = first.integer_weights()
                dtype = torch.float32 if first.z_bound() < FLOAT32_EXACT else torch.float64
                self.first: nn.Module = _Linear(w_int.astype(np.float64), b_int.astype(np.float64), dtype)
                self.integer_input = True
            else:
                self.first = _Linear(first.weight.astype(np.float64), first.bias.astype(np.float64), torch.float64)
        else:
            self.first = _Linear(w1, b1)
        layers: list[nn.Module] = []
        activations: list[nn.Module] = []
        steps = [isinstance(a, BernoulliActivation) for a in model.activations]
        mean = inference == "mean"
        for i, (w, b) in enumerate(effective):
            if i > 0:
                if config.binary_weights[i] and steps[i] and steps[i - 1] and not mean:
                    alpha = float(np.abs(w).max())
                    threshold = binary_threshold(alpha, b, w.shape[1])
                    signs = np.where(w >= 0, 1.0, -1.0) if alpha > 0 else np.ones_like(w)
                    layers.append(_Linear(signs.astype(np.float32), (0.5 - threshold).astype(np.float32)))
                else:
                    layers.append(_Linear(w, b))
            activations.append((_Sigmoid(config.temperature) if mean else _Step()) if steps[i] else nn.ReLU())
        self.layers = nn.ModuleList(layers)
        self.activations = nn.ModuleList(activations)
        self.head = _Linear(model.head.weight.detach().numpy().astype(np.float32), model.head.bias.detach().numpy().astype(np.float32))
        # the integer form gives z in units of its lsb: a step only needs its sign, anything else its value
        self.first_scale = None
        if self.integer_input and (mean or not steps[0]):
            self.first_scale = 2.0**-first.z_fractional

    def forward(self, features: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        x = ((features - self.mean) / self.scale).to(torch.float32)
        if self.input_grid is not None:
            scale = float(2**self.input_grid.fractional)
            x = torch.clamp(torch.round(x * scale), float(self.input_grid.min_int), float(self.input_grid.max_int))
            if not self.integer_input:
                x = x / scale
        z = self.first(x)
        if self.first_scale is not None:
            z = z * self.first_scale
        h = self.activations[0](z)
        hidden = [h]
        for layer, activation in zip(self.layers, self.activations[1:]):
            h = activation(layer(h))
            hidden.append(h)
        logit = self.head(h).squeeze(-1)
        return (logit, *hidden) if self.with_hidden else logit


class _Codes(nn.Module):
    """One fixed-point layer: integer z in ``dtype``, then its codes (integer-valued float32)."""

    def __init__(self, layer: FixedLayer, dtype: torch.dtype) -> None:
        super().__init__()
        self.linear = _Linear(layer.weight_int.astype(np.float64), layer.bias_int.astype(np.float64), dtype)
        self.relu = layer.activation == RELU
        if self.relu:
            self.scale = 2.0**-layer.relu_shift
            self.top = float(layer.max_code)
        else:
            assert layer.thresholds is not None
            self.register_buffer("thresholds", torch.from_numpy(layer.thresholds.astype(np.float64)).to(dtype))
            self.level = float(layer.level)
        self.dtype = dtype

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        z = nn.functional.linear(codes.to(self.dtype), self.linear.weight, self.linear.bias)
        if self.relu:
            return torch.clamp(torch.round(z * self.scale), 0.0, self.top).to(torch.float32)
        reached = (z.unsqueeze(-1) >= self.thresholds).to(torch.float32)
        return reached.sum(-1) * self.level


class FixedInferenceModule(nn.Module):
    """Raw features (float64) → logit (float32, exact) of a :class:`FixedNetwork`, and optionally every layer's codes."""

    def __init__(self, network: FixedNetwork, with_hidden: bool = False) -> None:
        super().__init__()
        self.with_hidden = with_hidden
        self.register_buffer("mean", torch.from_numpy(network.mean.astype(np.float64)))
        self.register_buffer("scale", torch.from_numpy(network.scale.astype(np.float64)))
        grid = network.input_grid
        self.input_scale, self.lo, self.hi = float(2**grid.fractional), float(grid.min_int), float(grid.max_int)
        bounds = network.bounds()
        dtype = lambda bound: torch.float32 if bound < FLOAT32_EXACT else torch.float64  # noqa: E731
        self.layers = nn.ModuleList(_Codes(layer, dtype(bound)) for layer, bound in zip(network.layers, bounds))
        head_dtype = dtype(bounds[-1])
        self.head = _Linear(network.head_weight_int[None, :].astype(np.float64), np.array([network.head_bias_int], np.float64), head_dtype)
        self.head_dtype = head_dtype
        self.lsb = network.logit_lsb

    def forward(self, features: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        x = ((features - self.mean) / self.scale).to(torch.float32)
        codes = torch.clamp(torch.round(x * self.input_scale), self.lo, self.hi)
        hidden = []
        for layer in self.layers:
            codes = layer(codes)
            hidden.append(codes)
        logit_int = nn.functional.linear(codes.to(self.head_dtype), self.head.weight, self.head.bias)
        logit = (logit_int * self.lsb).to(torch.float32).squeeze(-1)
        return (logit, *hidden) if self.with_hidden else logit


def _module(run: Run, with_hidden: bool, inference: str | None) -> tuple[nn.Module, int]:
    """The graph's module for the run and the number of hidden outputs; refuses a scoring it cannot compute."""
    model = require_network(run)
    mode = run.default_inference if inference is None else inference
    if model.config.fixed_point is not None:
        network = FixedNetwork.from_run(run, mode)
        return FixedInferenceModule(network, with_hidden=with_hidden), len(network.layers)
    if mode not in ("mean", "deterministic"):
        raise SqnnError("the ONNX export is deterministic or the expectation (mean); stochastic (LFSR) inference runs in the packed engine and the hls4ml firmware")
    return InferenceModule(run, with_hidden=with_hidden, inference=mode), len(model.layers)


def _export_bytes(run: Run, with_hidden: bool, inference: str | None = None) -> bytes:
    module, n_hidden = _module(run, with_hidden, inference)
    module.eval()
    outputs = ["logit"] + ([f"hidden{i}" for i in range(n_hidden)] if with_hidden else [])
    example = torch.from_numpy(np.asarray(run.standardizer.mean, dtype=np.float64)[None, :].copy())
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript-based exporter announces its own deprecation; it is the one that handles step modules
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=OPSET,
            input_names=["features"], output_names=outputs,
            dynamic_axes={name: {0: "events"} for name in ["features", *outputs]},
        )
    return buffer.getvalue()


def export_onnx(run: Run, path: str | Path, with_hidden: bool = False, inference: str | None = None) -> Path:
    """Write ``path`` (an ``.onnx`` file) for the run scored ``inference`` (default: its own); returns the path."""
    path = Path(path)
    model = _export_bytes(run, with_hidden, inference)
    path.parent.mkdir(parents=True, exist_ok=True)
    from sqnn.files import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(model)
    return path


class OnnxEngine:
    """onnxruntime session over an exported model (a file, or built in memory from a run)."""

    def __init__(self, model: str | Path | bytes, threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError:  # pragma: no cover
            raise SqnnError("the onnx engine needs onnxruntime: pip install 'sqnn[deploy]'") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        source = model if isinstance(model, bytes) else str(model)
        self.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.n_inputs = int(self.session.get_inputs()[0].shape[1])
        self.model_bytes = len(model) if isinstance(model, bytes) else Path(model).stat().st_size

    @classmethod
    def from_run(cls, run: Run, threads: int = 1, with_hidden: bool = False, inference: str | None = None) -> "OnnxEngine":
        return cls(_export_bytes(run, with_hidden, inference), threads=threads)

    def _input(self, features: np.ndarray) -> np.ndarray:
        x = features if isinstance(features, np.ndarray) and features.dtype == np.float64 else np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise SqnnError(f"expected events with {self.n_inputs} features, got an array of shape {x.shape}")
        return x

    def logit(self, features: np.ndarray) -> np.ndarray:
        return self.session.run(self.outputs[:1], {"features": self._input(features)})[0]

    def hidden_outputs(self, features: np.ndarray) -> list[np.ndarray]:
        """Outputs of every hidden layer (the model must be exported ``with_hidden``)."""
        if len(self.outputs) == 1:
            raise SqnnError("this ONNX model has no hidden outputs; export it with with_hidden=True")
        return list(self.session.run(self.outputs[1:], {"features": self._input(features)}))

    def hidden_bits(self, features: np.ndarray) -> list[np.ndarray]:
        """Outputs of every hidden layer as booleans (step units)."""
        return [h > 0.5 for h in self.hidden_outputs(features)]

    def hidden_codes(self, features: np.ndarray) -> list[np.ndarray]:
        """Codes of every hidden layer of a fixed-point network, int64."""
        return [np.rint(h).astype(np.int64) for h in self.hidden_outputs(features)]
