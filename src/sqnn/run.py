"""Run directories: writing a trained model and loading it back without executing code.

A run directory holds ``model.safetensors`` (tensors only) and ``model.json`` (method,
architecture, preprocessing, features, versions), ``history.json`` and ``metrics.json``.
Loading validates ``model.json`` field by field and checks every tensor's name and shape
against the architecture before any weight is read; nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sqnn._atomic import atomic_path, json_safe, write_json
from sqnn.data import ColumnSpec, Sample, Standardizer
from sqnn.data.io import split_path
from sqnn.errors import ModelFileError
from sqnn.nn import SQNN, NetworkConfig, build_network
from sqnn.nn.model import SCORING_MODES

__all__ = ["Run", "save_run", "load_run", "input_fingerprint", "input_spec", "json_safe", "MODEL_FILE", "MODEL_JSON"]

MODEL_FILE = "model.safetensors"
MODEL_JSON = "model.json"
FORMAT = "sqnn-run"
FORMAT_VERSION = 1
_MAX_JSON_BYTES = 4 << 20
_MAX_TENSOR_BYTES = 1 << 30
_MAX_WIDTH = 1 << 16
# "trees": a `bdt` run (see sqnn.methods.bdt); "set": a set model (sqnn.nn.set_model);
# absent means a network
MODEL_KINDS = ("network", "trees", "set")


def versions() -> dict[str, str]:
    found = {}
    for package in ("sqnn", "torch", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


def input_fingerprint(sample: Sample) -> dict[str, Any]:
    """What identifies a training input: evaluation on the same file uses only its test split."""
    path, _ = split_path(sample.source)
    size = path.stat().st_size if path.exists() else None
    return {"path": str(path.resolve()), "bytes": size, "events": len(sample)}


def input_spec(meta: dict[str, Any], **roles: Any) -> ColumnSpec:
    """Which columns feed the model of ``model.json``: its features, or a set model's objects column."""
    objects = meta.get("objects")
    if meta.get("model_kind") == "set" and isinstance(objects, dict):
        return ColumnSpec(
            features=tuple(objects.get("global_features") or ()),
            objects=str(objects["column"]),
            max_objects=int(objects["max_objects"]),
            **roles,
        )
    return ColumnSpec(features=tuple(meta["features"]), **roles)


@dataclass
class Run:
    """A trained model loaded from a run directory."""

    path: Path
    model: SQNN
    standardizer: Standardizer
    meta: dict[str, Any]

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    def input_spec(self, **roles: Any) -> ColumnSpec:
        """The columns to read for this model (see :func:`input_spec`)."""
        return input_spec(self.meta, **roles)

    @property
    def default_inference(self) -> str:
        """How this network scores unless told otherwise (``network.inference``)."""
        return str(getattr(getattr(self.model, "config", None), "inference", "deterministic"))

    def logit(self, features: np.ndarray, batch_size: int = 65536, inference: str | None = None) -> np.ndarray:
        """Logits for raw (unstandardised) features.

        ``inference`` is ``mean`` or ``deterministic``; by default the network's own
        (``model.json``, ``network.inference``). Stochastic draws go through
        :mod:`sqnn.engines.scoring`.
        """
        default = self.default_inference
        mode = default if inference is None else inference
        if mode not in SCORING_MODES:
            raise ValueError(f"inference must be one of {', '.join(SCORING_MODES)}, got {mode!r}")
        self.model.eval()
        self.model.set_inference(mode)  # type: ignore[arg-type]
        out = []
        try:
            with torch.no_grad():
                for start in range(0, len(features), batch_size):
                    x = torch.from_numpy(self.standardizer.transform(features[start : start + batch_size]))
                    out.append(self.model(x).numpy())
        finally:
            self.model.set_inference(default)  # type: ignore[arg-type]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def score(self, features: np.ndarray, inference: str | None = None) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(features, inference=inference).astype(np.float64)))

    @property
    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def representation(self, features: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """θ of the penalised layer (or its activations when it is not stochastic)."""
        self.model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(features), batch_size):
                x = torch.from_numpy(self.standardizer.transform(features[start : start + batch_size]))
                out.append(self.model.representation(x).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def save_run(run_dir: str | Path, model: SQNN, meta: dict[str, Any]) -> None:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / MODEL_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "versions": versions()}
    meta["model_bytes"] = (run_dir / MODEL_FILE).stat().st_size
    write_json(run_dir / MODEL_JSON, json_safe(meta))


def _fail(run_dir: Path, message: str) -> ModelFileError:
    return ModelFileError(f"{run_dir / MODEL_JSON}: {message}")


def _read_meta(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MODEL_JSON
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir}: not a run directory (no such directory)")
    if not path.exists():
        raise ModelFileError(f"{path}: missing; {run_dir} is not a complete run directory")
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise _fail(run_dir, f"file is {path.stat().st_size} bytes, larger than any model description")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(run_dir, f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(run_dir, f"not an sqnn model description (format must be {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _fail(run_dir, f"format_version {meta.get('format_version')!r} is not supported (expected {FORMAT_VERSION})")
    features = meta.get("features")
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        raise _fail(run_dir, "'features' must be a non-empty list of column names")
    if len(features) > _MAX_WIDTH:
        raise _fail(run_dir, f"'features' lists {len(features)} columns, more than {_MAX_WIDTH}")
    if meta.get("model_kind", "network") not in MODEL_KINDS:
        raise _fail(run_dir, f"'model_kind' must be one of {', '.join(MODEL_KINDS)}")
    if meta.get("model_kind", "network") in ("network", "set") and not isinstance(meta.get("network"), dict):
        raise _fail(run_dir, "'network' must be an object")
    if not isinstance(meta.get("preprocessing"), dict):
        raise _fail(run_dir, "'preprocessing' must be an object")
    return meta


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Load a run directory; tampered or inconsistent files raise :class:`ModelFileError`."""
    run_dir = Path(run_dir)
    meta = _read_meta(run_dir)
    if meta.get("model_kind") == "trees":
        from sqnn.methods.bdt import load_tree_run

        return load_tree_run(run_dir, meta)
    n_inputs = len(meta["features"])
    # a set model (sqnn.nn.set_model) reads padded objects; its config validates its own widths
    set_model = meta.get("model_kind") == "set"
    try:
        if set_model:
            from sqnn.nn.set_model import SetConfig

            config = SetConfig.from_dict(meta["network"])
            objects = meta.get("objects")
            if not (isinstance(objects, dict) and isinstance(objects.get("column"), str)
                    and objects.get("max_objects") == config.max_objects):
                raise ValueError("a set model needs 'objects' naming its column and max_objects as in 'network'")
        else:
            config = NetworkConfig.from_dict(meta["network"])
    except (TypeError, ValueError, KeyError) as exc:
        raise _fail(run_dir, f"invalid network: {exc}") from None
    if not set_model and max(config.hidden) > _MAX_WIDTH:
        raise _fail(run_dir, f"a hidden layer of {max(config.hidden)} units exceeds the limit of {_MAX_WIDTH}")
    try:
        standardizer = Standardizer.from_dict(meta["preprocessing"], n_inputs)
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(run_dir, f"invalid preprocessing: {exc}") from None
    if set_model:
        from sqnn.nn.set_model import SetModel

        try:
            model = SetModel(n_inputs, config)
        except ValueError as exc:
            raise _fail(run_dir, f"invalid network: {exc}") from None
    else:
        model = build_network(n_inputs, config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tensor_path = run_dir / MODEL_FILE
    if not tensor_path.exists():
        raise ModelFileError(f"{tensor_path}: missing")
    if tensor_path.stat().st_size > _MAX_TENSOR_BYTES:
        raise ModelFileError(f"{tensor_path}: {tensor_path.stat().st_size} bytes, larger than the limit of {_MAX_TENSOR_BYTES}")
    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(tensor_path), framework="pt") as handle:
            keys = set(handle.keys())
            if keys != set(expected):
                extra, missing = sorted(keys - set(expected)), sorted(set(expected) - keys)
                raise ModelFileError(
                    f"{tensor_path}: tensors do not match the architecture in {MODEL_JSON} "
                    f"(unexpected: {', '.join(extra) or 'none'}; missing: {', '.join(missing) or 'none'})"
                )
            for key in sorted(keys):
                shape = tuple(handle.get_slice(key).get_shape())
                if shape != expected[key]:
                    raise ModelFileError(f"{tensor_path}: tensor {key!r} has shape {shape}, the architecture needs {expected[key]}")
                state[key] = handle.get_tensor(key)
    except ModelFileError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ModelFileError(f"{tensor_path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(f"{tensor_path}: tensor {key!r} holds NaN or inf")
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in state.items()})
    model.eval()
    return Run(path=run_dir, model=model, standardizer=standardizer, meta=meta)
