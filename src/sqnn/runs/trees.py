"""Tree runs (``model_kind: trees``): a :class:`~sqnn.nn.trees.TreeEnsemble` as tensors, loaded without pickles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.errors import ModelFileError
from sqnn.nn.trees import TreeEnsemble
from sqnn.runs.format import MAX_TENSOR_BYTES, MODEL_FILE, Run, model_file_error

__all__ = ["TreeRun", "load_trees", "save_trees"]


@dataclass
class TreeRun(Run):
    """A run whose model is a :class:`TreeEnsemble`; the same scoring interface as a network run."""

    model: TreeEnsemble

    def logit(self, features: np.ndarray, batch_size: int = 65536, inference: str | None = None, device: str | None = None,
              draws: int = 1, seed: int = 0) -> np.ndarray:
        return self.model.decision_function(features).astype(np.float32)

    def score(self, features: np.ndarray, inference: str | None = None, device: str | None = None, draws: int = 1,
              seed: int = 0) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.model.decision_function(features)))

    def representation(self, features: np.ndarray, batch_size: int = 65536, device: str | None = None) -> np.ndarray:
        return self.score(features).reshape(-1, 1)

    @property
    def n_params(self) -> int:
        return self.model.n_params


def save_trees(path: Path, ensemble: TreeEnsemble, metadata: dict[str, str]) -> None:
    from safetensors.numpy import save_file

    save_file(ensemble.to_tensors(), str(path), metadata=metadata)


def load_trees(run_dir: Path, meta: dict[str, Any]) -> TreeRun:
    """Load a tree run; its ``model.json`` has already passed the common checks."""
    from safetensors import safe_open

    tensor_path = run_dir / MODEL_FILE
    if not tensor_path.exists():
        raise ModelFileError(f"{tensor_path}: missing")
    if not isinstance(meta.get("trees"), dict):
        raise model_file_error(run_dir, "'trees' must be an object describing the ensemble")
    if tensor_path.stat().st_size > MAX_TENSOR_BYTES:
        raise ModelFileError(f"{tensor_path}: {tensor_path.stat().st_size} bytes, larger than the limit of {MAX_TENSOR_BYTES}")
    description = meta["trees"]
    shape = (max(int(description["n_trees"]), 1), int(description["max_nodes"]))
    try:
        with safe_open(str(tensor_path), framework="np") as handle:
            # the description's sizes are checked against the header before any array is read
            for key in handle.keys():
                found = tuple(handle.get_slice(key).get_shape())
                if found != shape:
                    raise ModelFileError(f"{tensor_path}: tensor {key!r} has shape {found}, model.json's trees need {shape}")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except ModelFileError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ModelFileError(f"{tensor_path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    try:
        ensemble = TreeEnsemble.from_tensors(tensors, meta["trees"])
    except ValueError as exc:
        raise ModelFileError(f"{tensor_path}: {exc}") from None
    if ensemble.n_features != len(meta["features"]):
        raise model_file_error(
            run_dir, f"the trees use {ensemble.n_features} features, 'features' lists {len(meta['features'])}"
        )
    return TreeRun(path=run_dir, model=ensemble, standardizer=None, meta=meta)
