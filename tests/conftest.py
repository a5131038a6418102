"""Shared fixtures: small toy samples written to disk, and a trained run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from sqnn.cases.toy import generate

torch.set_num_threads(1)

# in CI every property test sees the same examples, so a red run can be reproduced
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

TOY_FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")


@pytest.fixture(scope="session")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("toy")
    sim = generate("sim", 3000, 1, folder / "sim.parquet")
    data = generate("data", 3000, 2, folder / "data.parquet")
    return sim, data


@pytest.fixture(scope="session")
def toy_run(toy_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sqnn.data import ColumnSpec
    from sqnn.workflows.train import train_run
    from sqnn.training import TrainConfig
    from sqnn.workflows.settings import Settings

    out = tmp_path_factory.mktemp("run") / "sqnn"
    spec = ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight", control="control", observer="mass")
    train_run(*toy_files, Settings(columns=spec, method="sqnn", gamma=1.0, train=TrainConfig(epochs=3, seed=0)), out)
    return out


@pytest.fixture(scope="session")
def float_run(toy_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default SQNN in float arithmetic (``fixed_point: null``): scored by its mean, which only torch and ONNX compute."""
    from sqnn.data import ColumnSpec
    from sqnn.training import TrainConfig
    from sqnn.workflows.settings import Settings
    from sqnn.workflows.train import train_run

    out = tmp_path_factory.mktemp("float") / "sqnn"
    spec = ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight", control="control", observer="mass")
    settings = Settings(columns=spec, method="sqnn", gamma=1.0, network={"fixed_point": None}, train=TrainConfig(epochs=3, seed=0))
    train_run(*toy_files, settings, out)
    return out
