"""Small trained runs for the engine tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_helpers import FIXED_NETWORK, QAT_NETWORK, TOY_FEATURES


def _train(toy_files: tuple[Path, Path], out: Path, network: dict[str, Any]) -> Path:
    from sqnn.data import ColumnSpec
    from sqnn.workflows.train import train_run
    from sqnn.training import TrainConfig
    from sqnn.workflows.settings import Settings

    spec = ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight")
    train_run(*toy_files, Settings(columns=spec, method="sqnn", gamma=0.5, network=network, train=TrainConfig(epochs=2, seed=0)), out)
    return out


@pytest.fixture(scope="session")
def qat_run(toy_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained quantisation-aware network with step hidden layers (binary weights in layer 2)."""
    return _train(toy_files, tmp_path_factory.mktemp("qat") / "run", QAT_NETWORK)


@pytest.fixture(scope="session")
def step_run(toy_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained float network whose hidden layers are all step layers."""
    network = {"hidden": [32, 16], "stochastic": [True, True], "binary_weights": [False, False], "inference": "deterministic"}
    return _train(toy_files, tmp_path_factory.mktemp("step") / "run", network)


@pytest.fixture(scope="session")
def fixed_run(toy_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default network (ReLU, then Bernoulli units scored by their mean) trained on fixed-point grids chosen from the data."""
    return _train(toy_files, tmp_path_factory.mktemp("fixed") / "run", FIXED_NETWORK)
