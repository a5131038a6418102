"""`bdt`: gradient-boosted decision trees trained on simulation alone (source-only).

The trees are scikit-learn's histogram gradient boosting (binary log-loss), trained on
the simulation training split with its event weights (negative weights are accepted),
early-stopped on the simulation validation split; data is never used. γ does not exist
for this method and is always 0.

A run directory stays free of pickles: the fitted trees are copied into plain arrays
(per tree and node: feature, threshold, children, leaf flag, leaf value) and stored as
tensors in ``model.safetensors`` next to ``model.json``; :class:`TreeEnsemble` evaluates
them with numpy and gives the same decision function as scikit-learn. Loading checks
every index before any event is scored, so a tampered file cannot loop or read out of
bounds.

The "representation" of a tree model, used by the domain probe (``domain_auc``), is
its score. ``n_params`` counts the thresholds and leaf values.

Options: ``max_iter`` (trees, default 300), ``learning_rate`` (0.1),
``max_leaf_nodes`` (31), ``max_depth`` (none), ``min_samples_leaf`` (20),
``l2_regularization`` (0), ``n_iter_no_change`` (10). The training ``epochs`` setting
does not apply to trees.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sqnn.methods.base import Objective

from sqnn.run import Run

if TYPE_CHECKING:
    from sqnn.data import ColumnSpec, Sample
    from sqnn.train import TrainConfig

__all__ = ["BDT", "TreeEnsemble", "TreeRun", "load_tree_run", "MODEL_KIND"]

MODEL_KIND = "trees"
_ARRAYS = ("feature", "threshold", "left", "right", "is_leaf", "missing_left", "value")
_DTYPES = {
    "feature": np.int32,
    "threshold": np.float64,
    "left": np.int32,
    "right": np.int32,
    "is_leaf": np.uint8,
    "missing_left": np.uint8,
    "value": np.float64,
}
_MAX_TREES = 100_000
_MAX_NODES = 1 << 20
_CHUNK = 4096


@dataclass
class TreeEnsemble:
    """Additive trees: logit(x) = baseline + Σ_trees value(leaf reached by x).

    Arrays have shape (n_trees, max_nodes); node 0 is each tree's root; at a split
    ``x[feature] <= threshold`` goes to ``left`` (NaN goes left where ``missing_left``).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    baseline: float
    depth: int
    n_features: int

    representation_is_stochastic = False

    @property
    def n_trees(self) -> int:
        return int(self.feature.shape[0])

    @property
    def n_params(self) -> int:
        """Thresholds of the splits plus values of the leaves."""
        used = self.used_nodes()
        return int(used.sum())

    def used_nodes(self) -> np.ndarray:
        """Mask of the nodes reachable from each root."""
        used = np.zeros(self.feature.shape, dtype=bool)
        used[:, 0] = True
        for _ in range(self.depth):
            for tree in range(self.n_trees):
                nodes = np.flatnonzero(used[tree] & (self.is_leaf[tree] == 0))
                used[tree, self.left[tree, nodes]] = True
                used[tree, self.right[tree, nodes]] = True
        return used

    @classmethod
    def from_hist_gradient_boosting(cls, model: Any) -> "TreeEnsemble":
        """Copy a fitted binary ``HistGradientBoostingClassifier`` into arrays."""
        predictors = [tree[0] for tree in model._predictors]
        if any(len(tree) != 1 for tree in model._predictors):
            raise ValueError("only binary classification is supported")
        n_trees = len(predictors)
        max_nodes = max((len(p.nodes) for p in predictors), default=1)
        arrays = {name: np.zeros((max(n_trees, 1), max_nodes), dtype=_DTYPES[name]) for name in _ARRAYS}
        arrays["is_leaf"][:] = 1
        depth = 0
        for index, predictor in enumerate(predictors):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise ValueError("categorical splits are not supported")
            n = len(nodes)
            arrays["feature"][index, :n] = nodes["feature_idx"]
            arrays["threshold"][index, :n] = nodes["num_threshold"]
            arrays["left"][index, :n] = nodes["left"]
            arrays["right"][index, :n] = nodes["right"]
            arrays["is_leaf"][index, :n] = nodes["is_leaf"]
            arrays["missing_left"][index, :n] = nodes["missing_go_to_left"]
            arrays["value"][index, :n] = nodes["value"]
            depth = max(depth, int(nodes["depth"].max()))
        if n_trees == 0:
            arrays["value"][:] = 0.0
        baseline = float(np.asarray(model._baseline_prediction).reshape(-1)[0])
        return cls(**arrays, baseline=baseline, depth=depth, n_features=int(model.n_features_in_))

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """The logit of every event, (N,) float64."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected events with {self.n_features} features, got shape {x.shape}")
        n_trees, max_nodes = self.feature.shape
        offset = (np.arange(n_trees) * max_nodes).reshape(1, -1)
        feature, threshold = self.feature.reshape(-1), self.threshold.reshape(-1)
        left, right = self.left.reshape(-1), self.right.reshape(-1)
        is_leaf, missing_left = self.is_leaf.reshape(-1).astype(bool), self.missing_left.reshape(-1).astype(bool)
        value = self.value.reshape(-1)
        out = np.empty(len(x), dtype=np.float64)
        for start in range(0, len(x), _CHUNK):
            chunk = x[start : start + _CHUNK]
            rows = np.arange(len(chunk)).reshape(-1, 1)
            node = np.zeros((len(chunk), n_trees), dtype=np.int64)
            for _ in range(self.depth):
                flat = node + offset
                at_leaf = is_leaf[flat]
                if at_leaf.all():
                    break
                values = chunk[rows, feature[flat]]
                go_left = np.where(np.isnan(values), missing_left[flat], values <= threshold[flat])
                node = np.where(at_leaf, node, np.where(go_left, left[flat], right[flat]))
            out[start : start + len(chunk)] = self.baseline + value[node + offset].sum(1)
        return out

    def to_tensors(self) -> dict[str, np.ndarray]:
        return {f"trees.{name}": np.ascontiguousarray(getattr(self, name)) for name in _ARRAYS}

    def describe(self) -> dict[str, Any]:
        return {
            "n_trees": self.n_trees,
            "max_nodes": int(self.feature.shape[1]),
            "depth": self.depth,
            "baseline": self.baseline,
            "n_features": self.n_features,
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], description: dict[str, Any]) -> "TreeEnsemble":
        """Rebuild and validate; raises ValueError naming what is inconsistent."""
        expected = {f"trees.{name}" for name in _ARRAYS}
        if set(tensors) != expected:
            raise ValueError(f"tensors must be {', '.join(sorted(expected))}, got {', '.join(sorted(tensors)) or 'none'}")
        try:
            n_trees, max_nodes = int(description["n_trees"]), int(description["max_nodes"])
            depth, n_features = int(description["depth"]), int(description["n_features"])
            baseline = float(description["baseline"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the tree description is incomplete ({exc})") from None
        if not (0 <= n_trees <= _MAX_TREES and 1 <= max_nodes <= _MAX_NODES and 0 <= depth <= max_nodes):
            raise ValueError(f"implausible tree sizes: {n_trees} trees, {max_nodes} nodes, depth {depth}")
        if not np.isfinite(baseline) or n_features < 1:
            raise ValueError("the baseline must be finite and the model needs at least one feature")
        shape = (max(n_trees, 1), max_nodes)
        arrays = {}
        for name in _ARRAYS:
            array = np.asarray(tensors[f"trees.{name}"])
            if array.shape != shape:
                raise ValueError(f"tensor trees.{name} has shape {array.shape}, the description needs {shape}")
            if array.dtype != _DTYPES[name]:
                raise ValueError(f"tensor trees.{name} has dtype {array.dtype}, expected {np.dtype(_DTYPES[name])}")
            arrays[name] = array
        split = arrays["is_leaf"] == 0
        node = np.broadcast_to(np.arange(max_nodes), shape)
        for child in ("left", "right"):
            # children come after their parent: the walk from a root always ends at a leaf
            bad = split & ((arrays[child] <= node) | (arrays[child] >= max_nodes))
            if bad.any():
                raise ValueError(f"tensor trees.{child} points outside its tree or backwards")
        if (split & ((arrays["feature"] < 0) | (arrays["feature"] >= n_features))).any():
            raise ValueError(f"tensor trees.feature refers to a feature outside 0..{n_features - 1}")
        if not (np.isfinite(arrays["value"]).all() and np.isfinite(arrays["threshold"][split]).all()):
            raise ValueError("tree values or thresholds hold NaN or inf")
        return cls(**arrays, baseline=baseline, depth=depth, n_features=n_features)


@dataclass
class TreeRun(Run):
    """A run whose model is a :class:`TreeEnsemble`; the same scoring interface as a network run."""

    model: TreeEnsemble  # type: ignore[assignment]
    standardizer: None  # type: ignore[assignment]

    def logit(self, features: np.ndarray, batch_size: int = 65536, inference: str | None = None) -> np.ndarray:
        return self.model.decision_function(features).astype(np.float32)

    def score(self, features: np.ndarray, inference: str | None = None) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.model.decision_function(features)))

    def representation(self, features: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        return self.score(features).reshape(-1, 1)

    @property
    def n_params(self) -> int:
        return self.model.n_params


def load_tree_run(run_dir: Path, meta: dict[str, Any]) -> TreeRun:
    """Load a tree run; its ``model.json`` has already passed the common checks."""
    from safetensors import safe_open

    from sqnn.errors import ModelFileError
    from sqnn.run import MODEL_FILE, MODEL_JSON

    tensor_path = run_dir / MODEL_FILE
    if not tensor_path.exists():
        raise ModelFileError(f"{tensor_path}: missing")
    if not isinstance(meta.get("trees"), dict):
        raise ModelFileError(f"{run_dir / MODEL_JSON}: 'trees' must be an object describing the ensemble")
    try:
        with safe_open(str(tensor_path), framework="np") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ModelFileError(f"{tensor_path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    try:
        ensemble = TreeEnsemble.from_tensors(tensors, meta["trees"])
    except ValueError as exc:
        raise ModelFileError(f"{tensor_path}: {exc}") from None
    if ensemble.n_features != len(meta["features"]):
        raise ModelFileError(
            f"{run_dir / MODEL_JSON}: the trees use {ensemble.n_features} features, 'features' lists {len(meta['features'])}"
        )
    return TreeRun(path=run_dir, model=ensemble, standardizer=None, meta=meta)


class BDT(Objective):
    name = "bdt"
    options_allowed = (
        "max_iter",
        "learning_rate",
        "max_leaf_nodes",
        "max_depth",
        "min_samples_leaf",
        "l2_regularization",
        "n_iter_no_change",
    )

    def __init__(self, gamma: float = 0.0, **options: Any) -> None:
        super().__init__(0.0, **options)

    def classifier(self, seed: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        o = self.options
        return HistGradientBoostingClassifier(
            max_iter=int(o.get("max_iter", 300)),
            learning_rate=float(o.get("learning_rate", 0.1)),
            max_leaf_nodes=int(o.get("max_leaf_nodes", 31)),
            max_depth=None if o.get("max_depth") is None else int(o["max_depth"]),
            min_samples_leaf=int(o.get("min_samples_leaf", 20)),
            l2_regularization=float(o.get("l2_regularization", 0.0)),
            early_stopping=True,
            n_iter_no_change=int(o.get("n_iter_no_change", 10)),
            scoring="loss",
            random_state=seed,
        )

    def fit_trees(
        self, simulation: "Sample", data: "Sample", config: "TrainConfig"
    ) -> tuple[TreeEnsemble, list[dict[str, Any]], float]:
        """Train on the simulation training split; returns the trees, the history and CPU seconds."""
        from threadpoolctl import threadpool_limits

        from sqnn.train import make_splits

        if simulation.label is None:
            raise ValueError("simulation needs labels")
        splits = make_splits(simulation, data, config)
        train, validation = splits.simulation["train"], splits.simulation["validation"]
        scale = float(np.mean(simulation.weight[train]))
        scale = scale if scale > 0 else 1.0
        model = self.classifier(config.seed)
        started = time.process_time()
        with threadpool_limits(limits=config.threads):
            model.fit(
                simulation.features[train].astype(np.float64),
                simulation.label[train],
                sample_weight=simulation.weight[train] / scale,
                X_val=simulation.features[validation].astype(np.float64),
                y_val=simulation.label[validation],
                sample_weight_val=simulation.weight[validation] / scale,
            )
        seconds = time.process_time() - started
        history = [
            {
                "epoch": i,
                "gamma": 0.0,
                "loss_classification": float(-model.train_score_[i + 1]),
                "loss_penalty": 0.0,
                "val_classification": float(-model.validation_score_[i + 1]),
                "val_loss": float(-model.validation_score_[i + 1]),
            }
            for i in range(int(model.n_iter_))
        ]
        return TreeEnsemble.from_hist_gradient_boosting(model), history, seconds

    def fit_and_save(
        self,
        simulation: "Sample",
        data: "Sample",
        spec: "ColumnSpec",
        out: str | Path,
        config: "TrainConfig",
        *,
        progress: bool = False,
    ) -> Run:
        """Train and write the run directory (``model.safetensors``, ``model.json``, ``history.json``)."""
        from safetensors.numpy import save_file

        from sqnn._atomic import atomic_path, write_json
        from sqnn.run import FORMAT, FORMAT_VERSION, MODEL_FILE, MODEL_JSON, input_fingerprint, json_safe, load_run, versions

        ensemble, history, seconds = self.fit_trees(simulation, data, config)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / MODEL_FILE) as tmp:
            save_file(ensemble.to_tensors(), str(tmp), metadata={"format": FORMAT})
        meta: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_kind": MODEL_KIND,
            "method": self.name,
            "gamma": 0.0,
            "method_options": self.options,
            "trees": ensemble.describe(),
            "features": simulation.feature_names,
            "columns": {"label": spec.label, "weight": spec.weight, "control": spec.control, "observer": spec.observer},
            "preprocessing": {"kind": "none"},
            "train": config.to_dict(),
            "inputs": {"simulation": input_fingerprint(simulation), "data": input_fingerprint(data)},
            "best_epoch": len(history) - 1,
            "epochs_run": len(history),
            "stopped_early": len(history) < int(self.options.get("max_iter", 300)),
            "train_seconds": seconds,
            "n_params": ensemble.n_params,
            "versions": versions(),
            "model_bytes": (out / MODEL_FILE).stat().st_size,
        }
        write_json(out / MODEL_JSON, json_safe(meta))
        write_json(out / "history.json", json_safe(history))
        return load_run(out)
