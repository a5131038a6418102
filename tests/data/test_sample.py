"""Loaders for every format and the one-line validation errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import uproot

from sqnn.data import ColumnSpec, Standardizer, load_mixed, load_sample
from sqnn.errors import DataError

COLUMNS = {
    "a": np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32),
    "b": np.array([0.5, -0.5, 0.25, 0.0]),
    "is_signal": np.array([1, 0, 1, 0], dtype=np.int8),
    "w": np.array([1.0, -0.5, 2.0, 1.0]),
    "cr": np.array([True, False, False, True]),
    "mass": np.array([80.0, 30.0, 85.0, 140.0]),
}
SPEC = ColumnSpec(features=("a", "b"), label="is_signal", weight="w", control="cr", observer="mass")


def write(path: Path, columns: dict[str, np.ndarray]) -> Path:
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".rntuple.root") else path.suffix
    if suffix == ".parquet":
        pd.DataFrame(columns).to_parquet(path)
    elif suffix == ".csv":
        pd.DataFrame(columns).to_csv(path, index=False)
    elif suffix == ".h5":
        with h5py.File(path, "w") as handle:
            for name, values in columns.items():
                handle[name] = values
    elif suffix == ".root":
        branches = {k: (v.astype(np.int32) if v.dtype == bool else v) for k, v in columns.items()}
        with uproot.recreate(path) as handle:
            handle.mktree("events", {k: v.dtype for k, v in branches.items()})
            handle["events"].extend(branches)
    elif suffix == ".rntuple.root":
        with uproot.recreate(path) as handle:
            handle["events"] = {k: (v.astype(np.int32) if v.dtype == bool else v) for k, v in columns.items()}
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".h5", ".root", ".rntuple.root"])
def test_every_format_loads_into_the_same_sample(tmp_path: Path, suffix: str) -> None:
    sample = load_sample(write(tmp_path / f"events{suffix}", COLUMNS), SPEC, "simulation", require_label=True)
    assert sample.feature_names == ["a", "b"]
    np.testing.assert_allclose(sample.features, np.column_stack([COLUMNS["a"], COLUMNS["b"]]).astype(np.float32))
    np.testing.assert_allclose(sample.weight, COLUMNS["w"])
    assert sample.label.tolist() == [1, 0, 1, 0]
    assert sample.control.tolist() == [True, False, False, True]
    np.testing.assert_allclose(sample.observer, COLUMNS["mass"])


def test_default_features_exclude_roles_and_reserved_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "e.parquet", {**COLUMNS, "event": np.arange(4), "weight": np.ones(4)})
    sample = load_sample(path, ColumnSpec(label="is_signal", weight="w", control="cr", observer="mass"), "data")
    assert sample.feature_names == ["a", "b"]


def one_line_error(path: Path, spec: ColumnSpec = SPEC, **kwargs: object) -> str:
    with pytest.raises(DataError) as caught:
        load_sample(path, spec, "simulation", require_label=True, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_column_suggests_the_closest_name(tmp_path: Path) -> None:
    path = write(tmp_path / "e.parquet", COLUMNS)
    message = one_line_error(path, ColumnSpec(features=("a", "bb"), label="is_signal"))
    assert "'bb' not found" in message and "did you mean 'b'" in message


def test_nan_in_a_feature_names_column_and_count(tmp_path: Path) -> None:
    path = write(tmp_path / "e.parquet", {**COLUMNS, "b": np.array([0.0, np.nan, np.inf, 1.0])})
    message = one_line_error(path)
    assert "'b'" in message and "2 NaN/inf values out of 4" in message


def test_label_other_than_zero_or_one(tmp_path: Path) -> None:
    path = write(tmp_path / "e.parquet", {**COLUMNS, "is_signal": np.array([1, 2, 0, 3])})
    assert "2 values other than 0/1 out of 4" in one_line_error(path)


def test_single_class_zero_weight_empty_file_and_jagged(tmp_path: Path) -> None:
    assert "no background events" in one_line_error(
        write(tmp_path / "one.parquet", {**COLUMNS, "is_signal": np.ones(4, dtype=np.int8)})
    )
    assert "sums to 0" in one_line_error(write(tmp_path / "zero.parquet", {**COLUMNS, "w": np.array([1.0, -1.0, 0.5, -0.5])}))
    empty = write(tmp_path / "empty.parquet", {k: v[:0] for k, v in COLUMNS.items()})
    assert "0 events" in one_line_error(empty)
    (tmp_path / "blank.csv").write_text("")
    assert "empty" in one_line_error(tmp_path / "blank.csv")
    import awkward as ak

    jagged = tmp_path / "jagged.parquet"
    ak.to_parquet(ak.Array({**{k: v.tolist() for k, v in COLUMNS.items()}, "b": [[1.0], [], [2.0, 3.0], [4.0]]}), jagged)
    assert "jagged" in one_line_error(jagged)


def test_wrong_file_type_and_corrupt_file(tmp_path: Path) -> None:
    assert "unknown file type" in one_line_error(tmp_path / "e.txt")
    corrupt = tmp_path / "bad.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    assert "cannot read" in one_line_error(corrupt)


def test_mixed_file_splits_by_domain_column(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.parquet", {**COLUMNS, "dom": np.array([0, 0, 1, 1])})
    sim, data = load_mixed(path, SPEC, "dom")
    assert len(sim) == 2 and len(data) == 2 and sim.label.tolist() == [1, 0]
    assert data.label is None and data.domain == "data"
    assert sim.feature_names == ["a", "b"]


def test_standardizer_round_trips_and_rejects_bad_values() -> None:
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    s = Standardizer.fit(x)
    again = Standardizer.from_dict(s.to_dict(), 2)
    np.testing.assert_allclose(again.transform(x), [[-1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError):
        Standardizer.from_dict({"mean": [0.0], "scale": [1.0]}, 2)
    with pytest.raises(ValueError):
        Standardizer.from_dict({"mean": [0.0, 0.0], "scale": [1.0, 0.0]}, 2)


# ---- column roles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (dict(features=("a", "is_signal"), label="is_signal"), "'is_signal' is both a feature and the label"),
        (dict(features=("a", "mass"), observer="mass"), "'mass' is both a feature and the observer"),
        (dict(features=("a", "w"), weight="w"), "'w' is both a feature and the weight"),
        (dict(features=("a", "cr"), control="cr"), "'cr' is both a feature and the control"),
        (dict(features=("a",), label="y", weight="y"), "'y' is both the label and the weight"),
        (dict(features=("a", "a")), r"features\[1\] repeats"),
        (dict(features=()), "features lists no column"),
        (dict(features=("a",), label=""), "label must be a column name"),
    ],
)
def test_each_column_plays_one_role(spec: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        ColumnSpec(**spec)


def test_the_domain_column_is_no_feature(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.parquet", {**COLUMNS, "dom": np.array([0, 0, 1, 1])})
    with pytest.raises(ValueError, match="'dom' is both a feature and the domain"):
        load_mixed(path, ColumnSpec(features=("a", "dom"), label="is_signal"), "dom")


def test_a_mixed_file_reads_the_label_of_simulation_rows_only(tmp_path: Path) -> None:
    """Data rows may hold anything in the label column: training never reads it."""
    columns = {**COLUMNS, "is_signal": np.array([1, 0, np.nan, 7.0]), "dom": np.array([0, 0, 1, 1])}
    path = write(tmp_path / "mixed.parquet", columns)
    sim, data = load_mixed(path, SPEC, "dom")
    assert sim.label.tolist() == [1, 0] and data.label is None
    with pytest.raises(DataError, match=r"'is_signal' has 1 NaN/inf values out of the 2 events of this domain \(first at row 2\)"):
        load_mixed(path, SPEC, "dom", data_label="is_signal")


def test_a_mixed_file_counts_classes_in_its_simulation_rows(tmp_path: Path) -> None:
    # both classes in the file, but the simulation rows hold signal only
    path = write(tmp_path / "mixed.parquet", {**COLUMNS, "dom": np.array([0, 1, 0, 1])})
    with pytest.raises(DataError, match="no background events among the simulation rows"):
        load_mixed(path, SPEC, "dom")


def test_errors_in_a_mixed_file_name_rows_of_the_file(tmp_path: Path) -> None:
    columns = {**COLUMNS, "a": np.array([1.0, 2.0, 3.0, np.inf]), "dom": np.array([0, 0, 1, 1])}
    with pytest.raises(DataError, match=r"feature column 'a' has 1 NaN/inf values .* \(first at row 3\)"):
        load_mixed(write(tmp_path / "mixed.parquet", columns), SPEC, "dom")


# ---- numbers ------------------------------------------------------------------------------------


def test_weights_whose_sum_overflows_are_refused(tmp_path: Path) -> None:
    big = {**COLUMNS, "w": np.array([1e308, 1e308, 1e308, 1e308])}
    with pytest.raises(DataError, match="'w' has 4 values beyond"):
        load_sample(write(tmp_path / "big.parquet", big), SPEC, "simulation")
    # each value allowed, the total still finite and positive: accepted
    fine = {**COLUMNS, "w": np.array([1e15, 1e15, 1e15, 1e15])}
    assert load_sample(write(tmp_path / "fine.parquet", fine), SPEC, "simulation").weight.sum() == 4e15


def test_text_values_in_a_csv_column_are_counted_and_located(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    frame = pd.DataFrame(COLUMNS)
    frame["b"] = frame["b"].astype(object)
    frame.loc[2, "b"] = "abc"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'b' has non-numeric type object: 1 values out of 4 events are not numbers \(first at row 2: 'abc'\)"):
        load_sample(path, SPEC, "simulation")
