"""The run directory: what ``model.json`` holds and the :class:`Run` a loaded network becomes.

A run directory holds ``model.safetensors`` (tensors only), ``model.json`` (method,
architecture, preprocessing, features, versions), ``history.json`` and ``metrics.json``.
``model.json`` is read strictly (no NaN, bounded size and depth) and checked against a
versioned schema with bounds (:data:`META_RULES`, :func:`read_meta`) before any tensor is
touched; nothing is ever unpickled.

The two model files are one bound unit (format version 2): ``model.json`` records the
SHA-256 of ``model.safetensors`` (``tensors_sha256``) and the digest of its own content
(``description_sha256``), and the tensors' metadata the digest of the fields that define
the model they hold (``model_sha256``: features, architecture, preprocessing; see
:data:`MODEL_FIELDS`). A JSON or a tensor file from another run, an edited field (features
permuted, another temperature, another seed) or a pair half-written by a killed job is
refused before anything is scored, and the same weights of the same model are the same
bytes whatever else differs between two runs (their CPU time). Version 1 runs, written
before the digests, load with every other check.
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
from sqnn.data.sample import MAX_ABS_VALUE, ROLES
from sqnn.devices import resolve_device
from sqnn.errors import ModelFileError, SqnnError
from sqnn.files import digest, file_digest, read_json
from sqnn.nn.layers import Scoring, StochasticModule
from sqnn.nn.model import MAX_WIDTH, SCORING_MODES
from sqnn.schema import Choice, Fields, Flag, Integer, Name, Nullable, Real, SchemaError, Sequence, Text

__all__ = [
    "DESCRIPTION_DIGEST",
    "FORMAT",
    "FORMAT_VERSION",
    "META_RULES",
    "READABLE_VERSIONS",
    "TENSORS_DIGEST",
    "MODEL_DIGEST",
    "MODEL_FIELDS",
    "description_digest",
    "model_digest",
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
    "verify_binding",
    "versions",
]

MODEL_FILE = "model.safetensors"
MODEL_JSON = "model.json"
FORMAT = "sqnn-run"
# 2: model.json and model.safetensors carry each other's digests
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
TENSORS_DIGEST = "tensors_sha256"
DESCRIPTION_DIGEST = "description_sha256"
MODEL_DIGEST = "model_sha256"
# the fields of model.json that define the model the tensors hold
MODEL_FIELDS = ("format", "format_version", "model_kind", "features", "network", "preprocessing", "trees", "objects")
MAX_JSON_BYTES = 4 << 20
MAX_TENSOR_BYTES = 1 << 30
# "network": a feed-forward SQNN (the default when absent); "set": a set model
# (sqnn.nn.set_model); "trees": a `bdt` run (sqnn.nn.trees)
MODEL_KINDS = ("network", "trees", "set")
DEFAULT_BATCH = 65536
MAX_SEED = 2**32 - 1
# the smallest scale Standardizer.fit gives a feature (constant ones get 1)
MIN_SCALE = 1e-12

_SHA256 = Text(64)
_FINGERPRINT = Nullable(
    Fields({"path": Text(4096), "bytes": Nullable(Integer(0)), "events": Integer(0)}, open=True)
)
_COUNT = Integer(0, 1 << 40)

# model.json's fields by type and range; "network" and "trees" are checked in full by their loaders
META_RULES = Fields(
    {
        "format": Choice(FORMAT),
        "format_version": Integer(min(READABLE_VERSIONS), FORMAT_VERSION),
        "model_kind": Choice(*MODEL_KINDS),
        "method": Text(64),
        "gamma": Nullable(Real(0.0, 1e6)),
        "method_options": Nullable(Fields({}, open=True)),
        "features": Sequence(Name(), 1, MAX_WIDTH, unique=True),
        "columns": Nullable(Fields({role: Nullable(Name()) for role in ROLES})),
        "train": Nullable(
            Fields(
                {
                    "seed": Integer(0, MAX_SEED),
                    "validation_fraction": Real(0.0, 1.0, low_open=True, high_open=True),
                    "test_fraction": Real(0.0, 1.0, high_open=True),
                },
                open=True,
            )
        ),
        "inputs": Nullable(Fields({"simulation": _FINGERPRINT, "data": _FINGERPRINT}, open=True)),
        "network": Fields({}, open=True),
        "preprocessing": Fields(
            {
                "kind": Choice("standardize", "none"),
                "mean": Sequence(Real(-MAX_ABS_VALUE, MAX_ABS_VALUE), 1, MAX_WIDTH),
                "scale": Sequence(Real(MIN_SCALE, MAX_ABS_VALUE), 1, MAX_WIDTH),
            }
        ),
        "trees": Fields(
            {
                "n_trees": Integer(0, 100_000),
                "max_nodes": Integer(1, 1 << 20),
                "depth": Integer(0, 1 << 20),
                "baseline": Real(-1e6, 1e6),
                "n_features": Integer(1, MAX_WIDTH),
            },
            required=("n_trees", "max_nodes", "depth", "baseline", "n_features"),
        ),
        "objects": Nullable(
            Fields(
                {
                    "column": Name(),
                    "max_objects": Integer(1, 1024),
                    "fields": Sequence(Name(), 1, 256, unique=True),
                    "global_features": Sequence(Name(), 0, MAX_WIDTH, unique=True),
                },
                required=("column", "max_objects"),
            )
        ),
        "best_epoch": Integer(-1, 1_000_000),
        "epochs_run": Integer(0, 1_000_000),
        "stopped_early": Flag(),
        "n_params": _COUNT,
        "model_bytes": _COUNT,
        "train_seconds": Nullable(Real(0.0)),
        "trained_on": Text(64),
        "versions": Nullable(Fields({}, open=True)),
        TENSORS_DIGEST: _SHA256,
        DESCRIPTION_DIGEST: _SHA256,
    },
    required=("format", "format_version", "features", "preprocessing"),
    open=True,
)


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


def description_digest(meta: dict[str, Any]) -> str:
    """The digest ``model.json`` records of itself: of every field but that digest."""
    return digest({k: v for k, v in meta.items() if k != DESCRIPTION_DIGEST})


def model_digest(meta: dict[str, Any]) -> str:
    """The digest the tensors record of the model they hold: :data:`MODEL_FIELDS` of ``model.json``."""
    return digest({k: meta.get(k) for k in MODEL_FIELDS})


def read_meta(run_dir: Path) -> dict[str, Any]:
    """``model.json`` of ``run_dir``, read strictly and checked against :data:`META_RULES`."""
    path = run_dir / MODEL_JSON
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir}: not a run directory (no such directory)")
    if not path.exists():
        raise ModelFileError(f"{path}: missing; {run_dir} is not a complete run directory")
    try:
        meta = read_json(path, MAX_JSON_BYTES, "model description")
    except SqnnError as exc:
        raise ModelFileError(str(exc)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise model_file_error(run_dir, f"not an sqnn model description (format must be {FORMAT!r})")
    version = meta.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise model_file_error(
            run_dir, f"format_version {version!r} is not supported (this sqnn reads {', '.join(map(str, READABLE_VERSIONS))})"
        )
    features = meta.get("features")
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        raise model_file_error(run_dir, "'features' must be a non-empty list of column names")
    if len(features) > MAX_WIDTH:
        raise model_file_error(run_dir, f"'features' lists {len(features)} columns, more than {MAX_WIDTH}")
    if meta.get("model_kind", "network") not in MODEL_KINDS:
        raise model_file_error(run_dir, f"'model_kind' must be one of {', '.join(MODEL_KINDS)}")
    kind = meta.get("model_kind", "network")
    if kind in ("network", "set") and not isinstance(meta.get("network"), dict):
        raise model_file_error(run_dir, "'network' must be an object")
    if not isinstance(meta.get("preprocessing"), dict):
        raise model_file_error(run_dir, "'preprocessing' must be an object")
    if kind == "trees" and not isinstance(meta.get("trees"), dict):
        raise model_file_error(run_dir, "'trees' must be an object describing the ensemble")
    try:
        META_RULES.check(meta, "")
    except SchemaError as exc:
        raise model_file_error(run_dir, str(exc)) from None
    for bound in (TENSORS_DIGEST, DESCRIPTION_DIGEST):
        if version >= 2 and bound not in meta:
            raise model_file_error(run_dir, f"'{bound}' is missing: format version {version} binds its files by their digests")
    return meta


def verify_binding(run_dir: Path, meta: dict[str, Any]) -> None:
    """Refuse a ``model.json`` and a ``model.safetensors`` that were not written together (format version 2).

    ``model.json`` must hold the digest of its own content and the SHA-256 of the tensor
    file; the tensors' metadata the digest of the model ``model.json`` describes.
    """
    if meta["format_version"] < 2:
        return
    from safetensors import safe_open

    if meta[DESCRIPTION_DIGEST] != description_digest(meta):
        raise model_file_error(
            run_dir, f"edited after it was written (its content no longer has the digest '{DESCRIPTION_DIGEST}' records)"
        )
    tensor_path = run_dir / MODEL_FILE
    if file_digest(tensor_path) != meta[TENSORS_DIGEST]:
        raise ModelFileError(
            f"{tensor_path}: not the tensors {MODEL_JSON} was written with (their SHA-256 differs from "
            f"'{TENSORS_DIGEST}'); the two files come from different trainings or one was replaced"
        )
    try:
        with safe_open(str(tensor_path), framework="np") as handle:
            recorded = (handle.metadata() or {}).get(MODEL_DIGEST)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for corrupt headers
        raise ModelFileError(f"{tensor_path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    if recorded != model_digest(meta):
        raise model_file_error(
            run_dir,
            f"its features, network or preprocessing are not those {MODEL_FILE} was trained with (the tensors' "
            f"'{MODEL_DIGEST}' differs); the file comes from another run or was edited",
        )


def forward_in_batches(
    model: StochasticModule,
    standardizer: Standardizer | None,
    features: np.ndarray,
    *,
    representation: bool = False,
    batch_size: int = DEFAULT_BATCH,
    device: str | torch.device | None = None,
    scoring: Scoring | None = None,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """The model's logits (or its penalised layer's θ) for features, in batches, without gradients.

    The one batched scoring loop of the package. ``standardizer`` takes raw features to the
    network's inputs (None: they are its inputs already); ``scoring`` says how the Bernoulli
    units score in this call (default: the network's own); ``dtype`` float64 evaluates the
    trained weights in float64 (a row then scores the same wherever it sits in a batch). With
    ``device`` (e.g. a GPU) the batches are scored there by a copy of the model. The model is
    not changed: nothing of a pass stays on it.
    """
    model.eval()
    where = resolve_device(device)
    scorer = model if where.type == "cpu" else copy.deepcopy(model).to(where)
    state = None
    if dtype is not None:
        state = {key: value.to(dtype) if value.is_floating_point() else value for key, value in scorer.state_dict().items()}
    out = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            rows = features[start : start + batch_size]
            x = torch.from_numpy(rows if standardizer is None else standardizer.transform(rows)).to(where)
            if dtype is not None:
                x = x.to(dtype)
            kwargs = {"outputs": True, "scoring": scoring}
            result = scorer(x, **kwargs) if state is None else torch.func.functional_call(scorer, state, (x,), kwargs)
            out.append((result.theta if representation else result.logit).cpu().numpy())
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
        scoring = None if mode == default else Scoring.of(mode, seed=seed, draws=draws)
        logits = forward_in_batches(self.model, self.standardizer, features, batch_size=batch_size, device=device,
                                    scoring=scoring)
        undefined = np.isnan(logits)
        if undefined.any():
            # inputs are finite and bounded when they get here: a NaN score is the model's, never a result
            raise ModelFileError(
                f"{self.path}: the model gives NaN scores for {int(undefined.sum())} of {len(logits)} events "
                f"(first at event {int(np.flatnonzero(undefined)[0])}); its model files do not describe a usable network"
            )
        return logits

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
