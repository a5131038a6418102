"""A tiny comparison on the toy, shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqnn.cases.toy import generate
from sqnn.workflows.compare import run_compare
from sqnn.data import ColumnSpec
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings


@pytest.fixture(scope="package")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report")
    sim = generate("sim", 900, 1, directory / "sim.parquet")
    data = generate("data", 900, 2, directory / "data.parquet", signal_fraction=0.3)
    spec = ColumnSpec(features=("x0", "x1", "x2", "x3", "x4", "x5"), label="is_signal", control="control")
    out = directory / "out"
    run_compare(
        sim, data, Settings(columns=spec, train=TrainConfig(epochs=2, batch_size=128, monitor_events=200)), out,
        methods=["source-only", "sqnn", "bdt"], gammas={"sqnn": (0.3, 3.0)}, seeds=2, data_label="is_signal",
    )
    return out
