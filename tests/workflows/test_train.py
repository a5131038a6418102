"""train_run on a mixed file and on samples too small in one class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sqnn.data import ColumnSpec
from sqnn.errors import DataError
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
NETWORK = {"hidden": [8, 4], "stochastic": [False, True], "binary_weights": [False, False]}


def _settings(domain: str | None = None) -> Settings:
    return Settings(columns=ColumnSpec(features=FEATURES, label="is_signal"), method="sqnn", gamma=1.0,
                    network=NETWORK, train=TrainConfig(epochs=1, seed=2, batch_size=512), domain_column=domain)


def test_the_data_label_of_a_mixed_file_never_reaches_training(tmp_path: Path, toy_files) -> None:
    """Shuffling (or breaking) the labels of the data rows leaves the trained model bit-identical."""
    sim, data = (pd.read_parquet(f).iloc[:1500] for f in toy_files)
    mixed = pd.concat([sim.assign(origin=0), data.assign(origin=1)], ignore_index=True)
    mixed.to_parquet(tmp_path / "mixed.parquet")
    is_data = mixed["origin"] == 1
    shuffled = mixed.copy()
    shuffled.loc[is_data, "is_signal"] = np.random.default_rng(0).permutation(mixed.loc[is_data, "is_signal"].to_numpy())
    assert (shuffled["is_signal"] != mixed["is_signal"]).any()
    shuffled.to_parquet(tmp_path / "shuffled.parquet")
    broken = mixed.astype({"is_signal": float})
    broken.loc[is_data, "is_signal"] = np.nan
    broken.to_parquet(tmp_path / "broken.parquet")
    models = []
    for name in ("mixed", "shuffled", "broken"):
        train_run(tmp_path / f"{name}.parquet", None, _settings("origin"), tmp_path / f"run_{name}")
        models.append((tmp_path / f"run_{name}" / "model.safetensors").read_bytes())
    assert models[0] == models[1] == models[2]


def test_one_signal_event_is_a_data_error_not_a_crash(tmp_path: Path, toy_files) -> None:
    frame = pd.read_parquet(toy_files[0])
    one = pd.concat([frame[frame.is_signal == 1].iloc[:1], frame[frame.is_signal == 0].iloc[:500]])
    one.sample(frac=1.0, random_state=0).to_parquet(tmp_path / "one.parquet")
    with pytest.raises(DataError, match="1 signal events in simulation leave the (train|validation) split"):
        train_run(tmp_path / "one.parquet", toy_files[1], _settings(), tmp_path / "run")
    assert not (tmp_path / "run").exists()
