"""The run directory: what ``model.json`` holds and the :class:`Run` a loaded network becomes.

A run directory holds ``model.safetensors`` (tensors only), ``model.json`` (method,
architecture, preprocessing, features, versions), ``history.json`` and ``metrics.json``.
``model.json`` is read and checked field by field (:func:`read_meta`) before any tensor
is touched; nothing is ever unpickled.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqnn.data import ColumnSpec, Sample, Standardizer
from sqnn.data.io import split_path
from sqnn.devices import resolve_device
from sqnn.errors import ModelFileError
from sqnn.nn.layers import StochasticModule
from sqnn.nn.model import SCORING_MODES

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "MODEL_JSON",
    "MODEL_KINDS",
    "Run",
    "file_fingerprint",
    "forward_in_batches",
    "input_fingerprint",
    "input_spec",
    "model_file_error",
    "read_meta",
    "versions",
]

MODEL_FILE = "model.safetensors"
MODEL_JSON = "model.json"
FORMAT = "sqnn-run"
FORMAT_VERSION = 1
MAX_JSON_BYTES = 4 << 20
MAX_TENSOR_BYTES = 1 << 30
MAX_WIDTH = 1 << 16
# "network": a feed-forward SQNN (the default when absent); "set": a set model
# (sqnn.nn.set_model); "trees": a `bdt` run (sqnn.nn.trees)
MODEL_KINDS = ("network", "trees", "set")
DEFAULT_BATCH = 65536


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
    return file_fingerprint(sample.source, len(sample))


def file_fingerprint(source: str, events: int) -> dict[str, Any]:
    """The fingerprint of a file of ``events`` events (:func:`input_fingerprint` of a file not loaded whole)."""
    path, _ = split_path(source)
    size = path.stat().st_size if path.exists() else None
    return {"path": str(path.resolve()), "bytes": size, "events": int(events)}


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


def model_file_error(run_dir: Path, message: str) -> ModelFileError:
    return ModelFileError(f"{run_dir / MODEL_JSON}: {message}")


def read_meta(run_dir: Path) -> dict[str, Any]:
    """``model.json`` of ``run_dir``, checked for the fields every kind of run has."""
    path = run_dir / MODEL_JSON
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir}: not a run directory (no such directory)")
    if not path.exists():
        raise ModelFileError(f"{path}: missing; {run_dir} is not a complete run directory")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise model_file_error(run_dir, f"file is {path.stat().st_size} bytes, larger than any model description")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise model_file_error(run_dir, f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise model_file_error(run_dir, f"not an sqnn model description (format must be {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise model_file_error(run_dir, f"format_version {meta.get('format_version')!r} is not supported (expected {FORMAT_VERSION})")
    features = meta.get("features")
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        raise model_file_error(run_dir, "'features' must be a non-empty list of column names")
    if len(features) > MAX_WIDTH:
        raise model_file_error(run_dir, f"'features' lists {len(features)} columns, more than {MAX_WIDTH}")
    if meta.get("model_kind", "network") not in MODEL_KINDS:
        raise model_file_error(run_dir, f"'model_kind' must be one of {', '.join(MODEL_KINDS)}")
    if meta.get("model_kind", "network") in ("network", "set") and not isinstance(meta.get("network"), dict):
        raise model_file_error(run_dir, "'network' must be an object")
    if not isinstance(meta.get("preprocessing"), dict):
        raise model_file_error(run_dir, "'preprocessing' must be an object")
    return meta


def forward_in_batches(
    model: StochasticModule,
    standardizer: Standardizer,
    features: np.ndarray,
    *,
    representation: bool = False,
    batch_size: int = DEFAULT_BATCH,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """The model's logits (or its penalised layer's θ) for raw features, in batches, without gradients.

    With ``device`` (e.g. a GPU) the batches are scored there by a copy of the model.
    """
    model.eval()
    where = resolve_device(device)
    scorer = model if where.type == "cpu" else copy.deepcopy(model).to(where)
    out = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            x = torch.from_numpy(standardizer.transform(features[start : start + batch_size])).to(where)
            out.append((scorer.representation(x) if representation else scorer(x)).cpu().numpy())
    if out:
        return np.concatenate(out)
    return np.zeros((0, 0) if representation else 0, dtype=np.float32)


@dataclass
class Run:
    """A trained network (feed-forward or set model) loaded from a run directory."""

    path: Path
    model: Any
    standardizer: Standardizer | None
    meta: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.meta.get("model_kind", "network"))

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

    def logit(
        self, features: np.ndarray, batch_size: int = DEFAULT_BATCH, inference: str | None = None,
        device: str | None = None, draws: int = 1, seed: int = 0,
    ) -> np.ndarray:
        """Logits for raw (unstandardised) features, scored on ``device`` (default the CPU).

        ``inference`` is ``mean`` or ``deterministic``, by default the network's own
        (``model.json``, ``network.inference``), or ``stochastic``: ``draws`` seeded torch
        draws of every Bernoulli unit averaged before the next layer (the firmware's LFSR
        draws go through :mod:`sqnn.engines.scoring`).
        """
        default = self.default_inference
        mode = default if inference is None else inference
        if mode not in (*SCORING_MODES, "stochastic"):
            raise ValueError(f"inference must be one of {', '.join(SCORING_MODES)} or stochastic, got {mode!r}")
        assert self.standardizer is not None
        self.model.set_inference(mode, seed=seed, draws=draws)
        try:
            return forward_in_batches(self.model, self.standardizer, features, batch_size=batch_size, device=device)
        finally:
            self.model.set_inference(default)

    def score(
        self, features: np.ndarray, inference: str | None = None, device: str | None = None, draws: int = 1, seed: int = 0
    ) -> np.ndarray:
        logit = self.logit(features, inference=inference, device=device, draws=draws, seed=seed)
        return 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))

    @property
    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def representation(self, features: np.ndarray, batch_size: int = DEFAULT_BATCH, device: str | None = None) -> np.ndarray:
        """θ of the penalised layer (or its activations when it is not stochastic)."""
        assert self.standardizer is not None
        return forward_in_batches(
            self.model, self.standardizer, features, representation=True, batch_size=batch_size, device=device
        )

    @property
    def representation_is_stochastic(self) -> bool:
        return bool(getattr(self.model, "representation_is_stochastic", False))
