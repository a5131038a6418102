"""Settings: one object from flags and YAML, checked before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqnn.data import ColumnSpec
from sqnn.errors import SqnnError
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings, columns_from, read_config, split_list, train_config_from


def test_flags_win_over_the_config() -> None:
    config = {"features": ["a", "b"], "label": "y", "weight": "w", "train": {"epochs": 5, "seed": 3}}
    columns = columns_from(config, features="c,d", weight="w2")
    assert columns == ColumnSpec(features=("c", "d"), label="y", weight="w2")
    assert columns_from(config).features == ("a", "b")
    assert train_config_from(config, epochs=7) == TrainConfig(epochs=7, seed=3)


def test_settings_merge_method_options_and_check_them() -> None:
    config = {"method": "sqnn", "gamma": 2.0, "method_options": {"region": "all", "warmup": 2}}
    settings = Settings.from_config(config, columns=ColumnSpec(label="y"), method_options={"region": "control"})
    assert settings.method == "sqnn" and settings.gamma == 2.0
    assert dict(settings.method_options) == {"region": "control", "warmup": 2}
    with pytest.raises(SqnnError, match="invalid settings for sqnn: method_options.region must be one of"):
        Settings.from_config({"method_options": {"region": "nowhere"}}, columns=ColumnSpec(label="y"))
    with pytest.raises(SqnnError, match="unknown method"):
        Settings(method="forest").objective()


def test_each_run_of_a_comparison_gets_its_own_method_and_seed() -> None:
    shared = Settings(columns=ColumnSpec(label="y"), train=TrainConfig(epochs=2, seed=5))
    run = shared.with_run(method="dann", gamma=0.1, seed=7)
    assert (run.method, run.gamma, run.train.seed, run.train.epochs) == ("dann", 0.1, 7, 2)
    assert run.objective().name == "dann" and shared.train.seed == 5


def test_config_file_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("features: [a]\nepoch: 3\n")
    with pytest.raises(SqnnError, match="unknown settings epoch"):
        read_config(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(SqnnError, match="mapping"):
        read_config(path)
    with pytest.raises(SqnnError, match="no such config file"):
        read_config(tmp_path / "missing.yaml")
    assert split_list(" a, ,b ") == ("a", "b") and split_list(",,") is None


def test_a_features_flag_that_names_no_column_is_an_error() -> None:
    """--features ",," would otherwise mean every column, the label's neighbours included."""
    with pytest.raises(SqnnError, match="names no column"):
        columns_from({}, features=",,")
    with pytest.raises(SqnnError, match="'is_signal' is both a feature and the label"):
        columns_from({"label": "is_signal"}, features="x0,is_signal")
    with pytest.raises(SqnnError, match="'mass' is both a feature and the observer"):
        columns_from({"features": ["x0", "mass"]}, observer="mass")
    with pytest.raises(SqnnError, match="'d' is both a feature and the domain"):
        Settings(columns=ColumnSpec(features=("x0", "d"), label="y"), domain_column="d")


def test_sqnn_joint_penalty_needs_a_small_layer() -> None:
    with pytest.raises(SqnnError, match="'joint' handles at most 16 units"):
        Settings.from_config({"network": {"hidden": [64, 32]}}, columns=ColumnSpec(label="y"))
