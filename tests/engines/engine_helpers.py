"""Helpers of the engine tests: runs with random weights of a chosen architecture, and events for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqnn.data import Standardizer
from sqnn.nn import build_network
from sqnn.runs import Run, load_run, write_run

TOY_FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
QAT_NETWORK = {
    "hidden": [24, 16], "stochastic": [True, True], "binary_weights": [False, True],
    "input_fixed": [10, 4], "first_layer_fixed": [8, 2], "inference": "deterministic",
}
# the method's default network with every grid chosen from the data
FIXED_NETWORK = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False], "samples": 4, "fixed_point": {}}


def make_run(path: Path, n_inputs: int, network: dict[str, Any], seed: int = 0, weight_scale: float = 0.5) -> Run:
    """A run directory holding a network with random weights and a random standardizer."""
    rng = np.random.default_rng(seed)
    model = build_network(n_inputs, network)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.from_numpy(rng.normal(scale=weight_scale, size=tuple(parameter.shape)).astype(np.float32)))
    standardizer = Standardizer(mean=rng.normal(scale=3.0, size=n_inputs), scale=np.exp(rng.normal(size=n_inputs)))
    meta = {
        "method": "test", "network": model.config.to_dict(), "features": [f"f{i}" for i in range(n_inputs)],
        "preprocessing": standardizer.to_dict(),
    }
    write_run(path, "network", model, meta)
    return load_run(path)


def events(run: Run, n: int, seed: int = 1, spread: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean, scale = np.asarray(run.standardizer.mean), np.asarray(run.standardizer.scale)
    return mean + scale * rng.normal(scale=spread, size=(n, len(mean)))
