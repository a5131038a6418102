"""Network runs (``model_kind: network`` or ``set``): the architecture from ``model.json``, the weights checked against it.

The architecture is first built on torch's ``meta`` device, which allocates nothing, and
every tensor's name and shape in the header of ``model.safetensors`` is compared with it;
only then is the network built and its weights read. So a ``model.json`` and a
``model.safetensors`` that do not belong together fail with one line instead of scoring
something else, and sizes in ``model.json`` cannot make the loader allocate more than the
tensor file holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sqnn.data import Standardizer
from sqnn.errors import ModelFileError
from sqnn.nn import NetworkConfig, build_network
from sqnn.nn.set_model import SetConfig, SetModel
from sqnn.runs.format import MAX_TENSOR_BYTES, MODEL_FILE, Run, model_file_error

__all__ = ["load_network", "load_set_model", "save_network"]


def save_network(path: Path, model: torch.nn.Module, metadata: dict[str, str]) -> None:
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)


def _standardizer(run_dir: Path, meta: dict[str, Any]) -> Standardizer:
    try:
        return Standardizer.from_dict(meta["preprocessing"], len(meta["features"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise model_file_error(run_dir, f"invalid preprocessing: {exc}") from None


def _expected_shapes(run_dir: Path, build: Callable[[], torch.nn.Module]) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of the architecture, from a model built on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            model = build()
    except ValueError as exc:
        raise model_file_error(run_dir, f"invalid network: {exc}") from None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _load_weights(run_dir: Path, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Check every name and shape of ``model.safetensors`` against the architecture, then build it and read them."""
    expected = _expected_shapes(run_dir, build)
    tensor_path = run_dir / MODEL_FILE
    if not tensor_path.exists():
        raise ModelFileError(f"{tensor_path}: missing")
    if tensor_path.stat().st_size > MAX_TENSOR_BYTES:
        raise ModelFileError(f"{tensor_path}: {tensor_path.stat().st_size} bytes, larger than the limit of {MAX_TENSOR_BYTES}")
    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(tensor_path), framework="pt") as handle:
            keys = set(handle.keys())
            if keys != set(expected):
                extra, missing = sorted(keys - set(expected)), sorted(set(expected) - keys)
                raise ModelFileError(
                    f"{tensor_path}: tensors do not match the architecture in model.json "
                    f"(unexpected: {', '.join(extra) or 'none'}; missing: {', '.join(missing) or 'none'})"
                )
            for key in sorted(keys):
                shape = tuple(handle.get_slice(key).get_shape())
                if shape != expected[key]:
                    raise ModelFileError(f"{tensor_path}: tensor {key!r} has shape {shape}, the architecture needs {expected[key]}")
            # every shape is the architecture's, so reading them allocates no more than the file holds
            for key in sorted(keys):
                state[key] = handle.get_tensor(key)
    except ModelFileError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ModelFileError(f"{tensor_path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(f"{tensor_path}: tensor {key!r} holds NaN or inf")
    try:
        model = build()
    except ValueError as exc:
        raise model_file_error(run_dir, f"invalid network: {exc}") from None
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in state.items()})
    model.eval()
    return model


def load_network(run_dir: Path, meta: dict[str, Any]) -> Run:
    """A feed-forward SQNN run."""
    try:
        config = NetworkConfig.from_dict(meta["network"])
    except (TypeError, ValueError, KeyError) as exc:
        raise model_file_error(run_dir, f"invalid network: {exc}") from None
    standardizer = _standardizer(run_dir, meta)
    model = _load_weights(run_dir, lambda: build_network(len(meta["features"]), config))
    return Run(path=run_dir, model=model, standardizer=standardizer, meta=meta)


def load_set_model(run_dir: Path, meta: dict[str, Any]) -> Run:
    """A set-model run; its config validates its own widths."""
    try:
        config = SetConfig.from_dict(meta["network"])
        objects = meta.get("objects")
        if not (isinstance(objects, dict) and isinstance(objects.get("column"), str)
                and objects.get("max_objects") == config.max_objects):
            raise ValueError("a set model needs 'objects' naming its column and max_objects as in 'network'")
    except (TypeError, ValueError, KeyError) as exc:
        raise model_file_error(run_dir, f"invalid network: {exc}") from None
    standardizer = _standardizer(run_dir, meta)
    model = _load_weights(run_dir, lambda: SetModel(len(meta["features"]), config))
    return Run(path=run_dir, model=model, standardizer=standardizer, meta=meta)
