"""ONNX export of a run's deterministic inference, and an onnxruntime engine.

The exported graph takes the **raw** features in float64 and does everything inside:
standardisation in float64 then float32 (as :class:`sqnn.data.Standardizer`), the
fixed-point input grid (Round is half-to-even in ONNX, as in torch), the first layer,
and each step activation as a comparison ``z > 0`` cast to float. Exactness where the
torch model is exact:

- a quantisation-aware first layer is exported in its integer form (x_int, W_int,
  b_int); float32 Gemm is exact there while every partial sum is below 2^24, otherwise
  it runs in float64;
- a binary layer on bits is exported as ±1 weights and the half-integer bias 0.5 − T
  (T the integer threshold that holds α and b), so its decisions are exact integers.

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

from sqnn.engines.network import FLOAT32_EXACT, FirstLayer, binary_threshold, require_network
from sqnn.errors import SqnnError
from sqnn.nn import BernoulliActivation, BinaryLinear
from sqnn.runs import Run

__all__ = ["InferenceModule", "export_onnx", "OnnxEngine", "OPSET"]

OPSET = 17


class _Step(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z > 0).to(torch.float32)


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
    """Raw features (float64) → logit (float32), and optionally every hidden layer's output."""

    def __init__(self, run: Run, with_hidden: bool = False) -> None:
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
        for i, (w, b) in enumerate(effective):
            if i > 0:
                if config.binary_weights[i] and steps[i] and steps[i - 1]:
                    alpha = float(np.abs(w).max())
                    threshold = binary_threshold(alpha, b, w.shape[1])
                    signs = np.where(w >= 0, 1.0, -1.0) if alpha > 0 else np.ones_like(w)
                    layers.append(_Linear(signs.astype(np.float32), (0.5 - threshold).astype(np.float32)))
                else:
                    layers.append(_Linear(w, b))
            activations.append(_Step() if steps[i] else nn.ReLU())
        self.layers = nn.ModuleList(layers)
        self.activations = nn.ModuleList(activations)
        self.head = _Linear(model.head.weight.detach().numpy().astype(np.float32), model.head.bias.detach().numpy().astype(np.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        x = ((features - self.mean) / self.scale).to(torch.float32)
        if self.input_grid is not None:
            scale = float(2**self.input_grid.fractional)
            x = torch.clamp(torch.round(x * scale), float(self.input_grid.min_int), float(self.input_grid.max_int))
            if not self.integer_input:
                x = x / scale
        h = self.activations[0](self.first(x))
        hidden = [h]
        for layer, activation in zip(self.layers, self.activations[1:]):
            h = activation(layer(h))
            hidden.append(h)
        logit = self.head(h).squeeze(-1)
        return (logit, *hidden) if self.with_hidden else logit


def _export_bytes(run: Run, with_hidden: bool) -> bytes:
    module = InferenceModule(run, with_hidden=with_hidden).eval()
    n_hidden = len(require_network(run).layers)
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


def export_onnx(run: Run, path: str | Path, with_hidden: bool = False) -> Path:
    """Write ``path`` (an ``.onnx`` file) for the run; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from sqnn.files import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(_export_bytes(run, with_hidden))
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
    def from_run(cls, run: Run, threads: int = 1, with_hidden: bool = False) -> "OnnxEngine":
        return cls(_export_bytes(run, with_hidden), threads=threads)

    def _input(self, features: np.ndarray) -> np.ndarray:
        x = features if isinstance(features, np.ndarray) and features.dtype == np.float64 else np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise SqnnError(f"expected events with {self.n_inputs} features, got an array of shape {x.shape}")
        return x

    def logit(self, features: np.ndarray) -> np.ndarray:
        return self.session.run(self.outputs[:1], {"features": self._input(features)})[0]

    def hidden_bits(self, features: np.ndarray) -> list[np.ndarray]:
        """Outputs of every hidden layer as booleans (the model must be exported ``with_hidden``)."""
        if len(self.outputs) == 1:
            raise SqnnError("this ONNX model has no hidden outputs; export it with with_hidden=True")
        return [h > 0.5 for h in self.session.run(self.outputs[1:], {"features": self._input(features)})]
