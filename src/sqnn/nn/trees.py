"""Gradient-boosted trees as plain arrays: a tree model that is evaluated, stored and loaded without pickles.

The fitted trees are copied into arrays (per tree and node: feature, threshold, children,
leaf flag, leaf value); :class:`TreeEnsemble` evaluates them with numpy and gives the same
decision function as scikit-learn. :meth:`TreeEnsemble.from_tensors` checks every index
before any event is scored, so a tampered file cannot loop or read out of bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TreeEnsemble"]

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
